#ifndef ALERT_EXEC_HASH_H
#define ALERT_EXEC_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The one hash function and the one hash table of the engine.
 */

/* FNV-1a, 64 bit, over a NUL-terminated string: the same value for the
 * same bytes on every run and platform (no seed), so it may decide
 * something stored, like when a new alert is first evaluated. */
uint64_t hash_str(const char *s);

/* A mix of an integer key (ids are dense: their low bits alone would
 * crowd the table). */
uint64_t hash_u64(uint64_t x);

/*
 * A set of entries, open addressing with linear probing, at most half
 * full. An entry is a nonzero uint64_t that the caller gives a meaning
 * (an id; an index + 1 into an array of its own) and a hash it computes;
 * the set keeps both, so it never calls back to rehash. Its size is fixed
 * at init: the caller says how many entries it will hold at most.
 */
struct hash_slot {
	uint64_t hash;
	uint64_t entry; /* 0: empty */
};

struct hash_set {
	struct hash_slot *slot;
	size_t mask;
	size_t n;   /* entries held */
	size_t max; /* entries it has room for */
};

/* Room for max entries. 0, or -1 when out of memory. */
int hash_set_init(struct hash_set *set, size_t max);
void hash_set_free(struct hash_set *set);

/* The entry of hash h that match accepts (match(entry, arg) != 0), or 0. */
uint64_t hash_set_find(const struct hash_set *set, uint64_t h,
		       int (*match)(uint64_t entry, const void *arg), const void *arg);

/* The entry equal to `entry` with hash h, or 0: for sets whose entries
 * are their own keys (ids). */
int hash_set_has(const struct hash_set *set, uint64_t h, uint64_t entry);

/* Adds entry (nonzero, not already in the set) with hash h; the set must
 * have room (n < max). */
void hash_set_add(struct hash_set *set, uint64_t h, uint64_t entry);

/* Removes the entry equal to `entry` with hash h; nothing when absent. */
void hash_set_remove(struct hash_set *set, uint64_t h, uint64_t entry);

#endif
