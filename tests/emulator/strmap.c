#include "strmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	const char *key; /* NULL: empty */
	unsigned long long hash;
	int value;
};

struct strmap {
	struct slot *slots;
	size_t mask; /* capacity - 1, capacity is a power of two */
	size_t count;
};

unsigned long long strmap_hash(const char *s)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int alloc_slots(struct strmap *m, size_t cap)
{
	m->slots = calloc(cap, sizeof(*m->slots));
	if (m->slots == NULL)
		return -1;
	m->mask = cap - 1;
	return 0;
}

struct strmap *strmap_new(size_t expected)
{
	struct strmap *m = NULL;
	size_t cap = 16;

	while (cap < expected * 2 + 2)
		cap *= 2;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	if (alloc_slots(m, cap) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static struct slot *find(const struct strmap *m, const char *key,
			 unsigned long long h)
{
	size_t i = (size_t)h & m->mask;

	for (;;) {
		struct slot *s = &m->slots[i];

		if (s->key == NULL)
			return s;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
		i = (i + 1) & m->mask;
	}
}

static int grow(struct strmap *m)
{
	struct slot *old = m->slots;
	size_t oldcap = m->mask + 1;
	size_t i;

	if (alloc_slots(m, oldcap * 2) != 0) {
		m->slots = old;
		return -1;
	}
	for (i = 0; i < oldcap; i++) {
		if (old[i].key != NULL)
			*find(m, old[i].key, old[i].hash) = old[i];
	}
	free(old);
	return 0;
}

int strmap_put(struct strmap *m, const char *key, int value)
{
	unsigned long long h;
	struct slot *s;

	assert(m != NULL && key != NULL && value >= 0);
	if ((m->count + 1) * 2 > m->mask + 1 && grow(m) != 0)
		return -1;
	h = strmap_hash(key);
	s = find(m, key, h);
	if (s->key != NULL)
		return 1;
	s->key = key;
	s->hash = h;
	s->value = value;
	m->count++;
	return 0;
}

int strmap_get(const struct strmap *m, const char *key)
{
	const struct slot *s;

	if (m == NULL || key == NULL)
		return -1;
	s = find(m, key, strmap_hash(key));
	return s->key != NULL ? s->value : -1;
}
