/* file: whole-file reading for the emulator's input files, and the error
 * codes its loaders share (mapped to sysexits by main). */
#ifndef EMU_FILE_H
#define EMU_FILE_H

#include <stddef.h>

#define FILE_ERR_READ (-1)    /* the file cannot be read: exit 66 */
#define FILE_ERR_CONTENT (-2) /* the content is invalid: exit 65 */

/* Reads the whole file at path into *data (NUL-terminated, *len bytes
 * without the NUL; the caller frees it). Returns 0, or FILE_ERR_READ with
 * "cannot read PATH: reason" in err. */
int file_read(const char *path, char **data, size_t *len, char *err,
	      size_t errlen);

#endif
