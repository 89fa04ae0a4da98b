#ifndef ALERT_EXEC_DEF_CACHE_H
#define ALERT_EXEC_DEF_CACHE_H

#include <stdint.h>

#include "alerts.h"
#include "hash.h"

/*
 * The definitions a connection's picks handed out, kept between picks so
 * that a pick reads an alert's row only when its definition may have
 * changed. Every transaction that changes a definition (adds, changes,
 * retires or revives an alert) also moves the version of the definitions
 * kept in the database (its definitions table); a pick reads that version
 * in the snapshot it picks from and gives it to def_cache_check, which
 * drops every entry when it moved. So an entry the cache still holds was
 * read at the version the pick sees: it is the definition as stored now,
 * and a refresh is seen before the next pick.
 *
 * An entry never changes once made, and is counted: the cache holds one
 * reference, and every picked evaluation that borrows its definition
 * (store_due.entry) holds one, so an entry dropped while its evaluation
 * is in flight lives until the evaluation is written. A cache, and the
 * counts of the entries it made, belong to the one thread that uses its
 * connection (the scheduler's); another thread may read an entry's
 * definition while a reference held for it keeps the entry alive.
 */

struct def_entry {
	unsigned refs;
	int64_t alert_id;
	int64_t version;      /* the alert's own (the row's updated) */
	int64_t defs_version; /* of the definitions, when it was read */
	struct alert_def def; /* its strings lie in the entry's allocation */
};

struct def_cache {
	struct hash_set set; /* of struct def_entry *, by alert_id */
	int64_t version;     /* of the definitions the entries were read at */
};

/* An empty cache. 0, or -1 when out of memory. */
int def_cache_init(struct def_cache *c);

/* Drops the cache's references (entries still borrowed live on). */
void def_cache_free(struct def_cache *c);

/* The definitions' version, as the pick's snapshot reads it: every entry
 * is dropped when it differs from the one the entries were read at. */
void def_cache_check(struct def_cache *c, int64_t version);

/* The entry of alert_id, with a reference for the caller; NULL when the
 * cache has none. */
struct def_entry *def_cache_get(struct def_cache *c, int64_t alert_id);

/* Keeps a copy of def (read at the version def_cache_check was last
 * given) as the entry of alert_id, which the cache must not hold, and
 * returns it with a reference for the caller. NULL when out of memory. */
struct def_entry *def_cache_put(struct def_cache *c, int64_t alert_id, int64_t version,
				const struct alert_def *def);

/* Gives back a reference; the last one frees the entry. NULL: nothing. */
void def_entry_unref(struct def_entry *e);

/* Entries held. */
size_t def_cache_size(const struct def_cache *c);

#endif
