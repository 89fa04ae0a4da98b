#include "hash.h"

#include <assert.h>
#include <stdlib.h>

uint64_t hash_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t h = UINT64_C(14695981039346656037);

	while (*p != '\0') {
		h ^= *p++;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

uint64_t hash_u64(uint64_t x)
{
	/* The finaliser of splitmix64: every input bit reaches every output bit. */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

int hash_set_init(struct hash_set *set, size_t max)
{
	size_t size = 16;

	while (size < max * 2)
		size *= 2;
	set->slot = calloc(size, sizeof(*set->slot));
	set->mask = size - 1;
	set->n = 0;
	set->max = max;
	return set->slot != NULL ? 0 : -1;
}

void hash_set_free(struct hash_set *set)
{
	free(set->slot);
	set->slot = NULL;
	set->n = 0;
	set->max = 0;
}

uint64_t hash_set_find(const struct hash_set *set, uint64_t h,
		       int (*match)(uint64_t entry, const void *arg), const void *arg)
{
	for (size_t i = h & set->mask; set->slot[i].entry != 0; i = (i + 1) & set->mask)
		if (set->slot[i].hash == h && match(set->slot[i].entry, arg))
			return set->slot[i].entry;
	return 0;
}

int hash_set_has(const struct hash_set *set, uint64_t h, uint64_t entry)
{
	for (size_t i = h & set->mask; set->slot[i].entry != 0; i = (i + 1) & set->mask)
		if (set->slot[i].entry == entry)
			return 1;
	return 0;
}

void hash_set_add(struct hash_set *set, uint64_t h, uint64_t entry)
{
	size_t i = h & set->mask;

	assert(entry != 0 && set->n < set->max);
	while (set->slot[i].entry != 0) {
		assert(set->slot[i].entry != entry);
		i = (i + 1) & set->mask;
	}
	set->slot[i].hash = h;
	set->slot[i].entry = entry;
	set->n++;
}

void hash_set_remove(struct hash_set *set, uint64_t h, uint64_t entry)
{
	size_t i = h & set->mask;

	while (set->slot[i].entry != entry) {
		if (set->slot[i].entry == 0)
			return;
		i = (i + 1) & set->mask;
	}
	/* Backward shift: a later member of the run moves into the hole when
	 * its home is not between the hole and it (cyclically). */
	for (size_t j = (i + 1) & set->mask; set->slot[j].entry != 0; j = (j + 1) & set->mask) {
		size_t home = set->slot[j].hash & set->mask;

		if (((j - home) & set->mask) >= ((j - i) & set->mask)) {
			set->slot[i] = set->slot[j];
			i = j;
		}
	}
	set->slot[i].entry = 0;
	set->slot[i].hash = 0;
	set->n--;
}
