/* Tests of hash.c: the FNV-1a values, and the set against a plain array
 * under many adds and removes (the backward shift keeps every entry
 * findable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"

static void test_fnv1a_values(void **state)
{
	(void)state;
	/* FNV-1a 64 test vectors */
	assert_true(hash_str("") == UINT64_C(0xcbf29ce484222325));
	assert_true(hash_str("a") == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(hash_str("foobar") == UINT64_C(0x85944171f73967e8));
	assert_true(hash_u64(1) != hash_u64(2));
}

static int same_id(uint64_t entry, const void *arg)
{
	return entry == *(const uint64_t *)arg;
}

/* Hashes that collide on purpose (few distinct values), so that runs are
 * long and removal has to shift entries back across the table's end. */
static uint64_t bad_hash(uint64_t id)
{
	return (id % 7) * 0x1000 + 14;
}

static void test_set_matches_array(void **state)
{
	enum { MAX = 200, ROUNDS = 20000 };
	struct hash_set set;
	char in[MAX * 4 + 1] = {0};
	unsigned seed = 7;

	(void)state;
	assert_int_equal(hash_set_init(&set, MAX), 0);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t id = 1 + (uint64_t)(rand_r(&seed) % (MAX * 4));
		/* an id always has the same hash; a third of them collide */
		uint64_t h = id % 3 ? hash_u64(id) : bad_hash(id);
		if (in[id]) {
			hash_set_remove(&set, h, id);
			in[id] = 0;
		} else if (set.n < MAX) {
			hash_set_add(&set, h, id);
			in[id] = 1;
		}
		if (r % 97 == 0) {
			size_t count = 0;

			for (uint64_t k = 1; k <= MAX * 4; k++) {
				uint64_t hk = k % 3 ? hash_u64(k) : bad_hash(k);

				assert_int_equal(hash_set_has(&set, hk, k), in[k]);
				assert_int_equal(hash_set_find(&set, hk, same_id, &k) == k, in[k]);
				count += in[k];
			}
			assert_int_equal(count, set.n);
		}
	}
	hash_set_remove(&set, hash_u64(MAX * 8), MAX * 8); /* absent: nothing */
	hash_set_free(&set);
	hash_set_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnv1a_values),
		cmocka_unit_test(test_set_matches_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
