#include "stats.h"

#include "buf.h"

#include <assert.h>

static const char *const names[EP_COUNT] = {
	"alerts", "query", "notify", "resolve", "stats", "other",
};

void stats_init(struct stats *s)
{
	int e;
	int c;

	for (e = 0; e < EP_COUNT; e++)
		for (c = 0; c < STATS_MAX_STATUS; c++)
			atomic_init(&s->count[e][c], 0);
}

void stats_count(struct stats *s, enum endpoint ep, unsigned status)
{
	assert(ep < EP_COUNT);
	if (status >= STATS_MAX_STATUS)
		status = 0;
	atomic_fetch_add_explicit(&s->count[ep][status], 1,
				  memory_order_relaxed);
}

char *stats_json(struct stats *s)
{
	struct buf b;
	int e;
	unsigned c;

	buf_init(&b);
	buf_puts(&b, "{");
	for (e = 0; e < EP_COUNT; e++) {
		int first = 1;

		buf_printf(&b, "%s\"%s\": {", e > 0 ? ", " : "", names[e]);
		for (c = 0; c < STATS_MAX_STATUS; c++) {
			unsigned long n = atomic_load_explicit(
				&s->count[e][c], memory_order_relaxed);

			if (n == 0)
				continue;
			buf_printf(&b, "%s\"%u\": %lu", first ? "" : ", ", c, n);
			first = 0;
		}
		buf_puts(&b, "}");
	}
	buf_puts(&b, "}\n");
	return buf_take(&b);
}
