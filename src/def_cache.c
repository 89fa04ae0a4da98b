#include "def_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define DEF_CACHE_FIRST 1024 /* entries the cache first has room for */

/* Whether the cache has been given no version yet: every stored one is
 * 0 or more. */
#define DEF_CACHE_NO_VERSION INT64_C(-1)

int def_cache_init(struct def_cache *c)
{
	c->version = DEF_CACHE_NO_VERSION;
	return hash_set_init(&c->set, DEF_CACHE_FIRST);
}

static struct def_entry *entry_of(uint64_t slot)
{
	return (struct def_entry *)(uintptr_t)slot;
}

/* Drops the cache's reference to every entry. */
static void drop_all(struct def_cache *c)
{
	for (size_t i = 0; i <= c->set.mask; i++) {
		if (c->set.slot[i].entry != 0)
			def_entry_unref(entry_of(c->set.slot[i].entry));
		c->set.slot[i].entry = 0;
		c->set.slot[i].hash = 0;
	}
	c->set.n = 0;
}

void def_cache_free(struct def_cache *c)
{
	if (c->set.slot == NULL)
		return;
	drop_all(c);
	hash_set_free(&c->set);
}

void def_cache_check(struct def_cache *c, int64_t version)
{
	assert(version >= 0);
	if (version == c->version)
		return;
	drop_all(c);
	c->version = version;
}

static int same_alert(uint64_t slot, const void *arg)
{
	return entry_of(slot)->alert_id == *(const int64_t *)arg;
}

struct def_entry *def_cache_get(struct def_cache *c, int64_t alert_id)
{
	uint64_t slot = hash_set_find(&c->set, hash_u64((uint64_t)alert_id), same_alert, &alert_id);
	struct def_entry *e;

	if (slot == 0)
		return NULL;
	e = entry_of(slot);
	e->refs++;
	return e;
}

/* Twice the room, the entries moved over. */
static int grow(struct def_cache *c)
{
	struct hash_set bigger;

	if (hash_set_init(&bigger, c->set.max * 2) != 0)
		return -1;
	for (size_t i = 0; i <= c->set.mask; i++)
		if (c->set.slot[i].entry != 0)
			hash_set_add(&bigger, c->set.slot[i].hash, c->set.slot[i].entry);
	hash_set_free(&c->set);
	c->set = bigger;
	return 0;
}

/* Copies s to *at and moves *at past it. */
static char *place(char **at, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = *at;

	memcpy(p, s, n);
	*at += n;
	return p;
}

struct def_entry *def_cache_put(struct def_cache *c, int64_t alert_id, int64_t version,
				const struct alert_def *def)
{
	size_t len = strlen(def->name) + strlen(def->query) + strlen(def->warn_message) +
		     strlen(def->crit_message) + 4;
	struct def_entry *e;
	char *at;

	assert(hash_set_find(&c->set, hash_u64((uint64_t)alert_id), same_alert, &alert_id) == 0);
	if (c->set.n == c->set.max && grow(c) != 0)
		return NULL;
	e = malloc(sizeof(*e) + len);
	if (e == NULL)
		return NULL;
	at = (char *)(e + 1);
	e->refs = 2; /* the cache's and the caller's */
	e->alert_id = alert_id;
	e->version = version;
	e->defs_version = c->version;
	e->def = *def;
	e->def.name = place(&at, def->name);
	e->def.query = place(&at, def->query);
	e->def.warn_message = place(&at, def->warn_message);
	e->def.crit_message = place(&at, def->crit_message);
	hash_set_add(&c->set, hash_u64((uint64_t)alert_id), (uint64_t)(uintptr_t)e);
	return e;
}

void def_entry_unref(struct def_entry *e)
{
	if (e == NULL)
		return;
	assert(e->refs > 0);
	if (--e->refs == 0)
		free(e);
}

size_t def_cache_size(const struct def_cache *c)
{
	return c->set.n;
}
