#ifndef ALERT_EXEC_TEST_CAPTURE_H
#define ALERT_EXEC_TEST_CAPTURE_H

/* For cmocka tests: what log_msg writes to stderr while the code under
 * test runs, and counting in it. Include after cmocka.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Collects what log_msg writes to stderr. */
struct capture {
	FILE *file;
	int saved;
};

static void capture_begin(struct capture *c)
{
	c->file = tmpfile();
	assert_non_null(c->file);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns what was written (malloc'd). */
static char *capture_end(struct capture *c)
{
	char *text;
	long size;

	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	assert_int_equal(fseek(c->file, 0, SEEK_END), 0);
	size = ftell(c->file);
	assert_true(size >= 0);
	rewind(c->file);
	text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, c->file), (size_t)size);
	fclose(c->file);
	return text;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	return n;
}

#endif
