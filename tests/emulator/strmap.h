/* strmap: an open-addressing hash map from strings to non-negative ints,
 * built once at start and read concurrently afterwards (no locking: it is
 * never modified while the server runs). */
#ifndef EMU_STRMAP_H
#define EMU_STRMAP_H

#include <stddef.h>

struct strmap;

/* Creates a map sized for about expected entries. Returns NULL when out of
 * memory. The map borrows the key strings: they must outlive it. */
struct strmap *strmap_new(size_t expected);

/* Releases the map (not the keys). strmap_free(NULL) is a no-op. */
void strmap_free(struct strmap *m);

/* Inserts key -> value (value >= 0). Returns 0 when inserted, 1 when the
 * key was already present (the old value stays), -1 when out of memory. */
int strmap_put(struct strmap *m, const char *key, int value);

/* Returns the value stored for key, or -1 when absent. m may be NULL. */
int strmap_get(const struct strmap *m, const char *key);

/* The 64-bit FNV-1a hash of the string s, also used to derive per-target
 * phases. */
unsigned long long strmap_hash(const char *s);

#endif
