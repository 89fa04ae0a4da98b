#include "journal.h"

#include "buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFFERED_BYTES (1 << 20)

struct journal {
	FILE *f;
	char *path;
	int flush_each;
	pthread_mutex_t lock;
};

int journal_open(struct journal **out, const char *path, int flush_each,
		 char *err, size_t errlen)
{
	struct journal *j = NULL;
	size_t n = strlen(path) + 1;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto oom;
	j->path = malloc(n);
	if (j->path == NULL)
		goto oom;
	memcpy(j->path, path, n);
	j->f = fopen(path, "a");
	if (j->f == NULL) {
		fmt_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		free(j->path);
		free(j);
		return -1;
	}
	if (!flush_each)
		setvbuf(j->f, NULL, _IOFBF, BUFFERED_BYTES);
	j->flush_each = flush_each;
	pthread_mutex_init(&j->lock, NULL);
	*out = j;
	return 0;
oom:
	fmt_err(err, errlen, "cannot open %s: out of memory", path);
	if (j != NULL)
		free(j->path);
	free(j);
	return -1;
}

int journal_write(struct journal *j, const char *line, size_t len, char *err,
		  size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	if (fwrite(line, 1, len, j->f) != len || fputc('\n', j->f) == EOF ||
	    (j->flush_each && fflush(j->f) != 0)) {
		fmt_err(err, errlen, "write %s: %s", j->path, strerror(errno));
		clearerr(j->f);
		rc = -1;
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int journal_flush(struct journal *j)
{
	int rc;

	if (j == NULL)
		return 0;
	pthread_mutex_lock(&j->lock);
	rc = fflush(j->f) == 0 ? 0 : -1;
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int journal_close(struct journal *j)
{
	int rc;

	if (j == NULL)
		return 0;
	rc = fclose(j->f) == 0 ? 0 : -1;
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
	return rc;
}
