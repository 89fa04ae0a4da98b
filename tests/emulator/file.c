#include "file.h"

#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int file_read(const char *path, char **data, size_t *len, char *err,
	      size_t errlen)
{
	FILE *f = NULL;
	struct buf b;
	char chunk[65536];
	size_t n;
	int rc = FILE_ERR_READ;

	buf_init(&b);
	*data = NULL;
	*len = 0;
	f = fopen(path, "rb");
	if (f == NULL) {
		fmt_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0)
			break;
		if (buf_append(&b, chunk, n) != 0) {
			fmt_err(err, errlen, "cannot read %s: out of memory", path);
			goto out;
		}
	}
	if (ferror(f)) {
		fmt_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (buf_append(&b, "", 0) != 0) {
		fmt_err(err, errlen, "cannot read %s: out of memory", path);
		goto out;
	}
	*len = b.len;
	*data = buf_take(&b);
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	buf_free(&b);
	return rc;
}
