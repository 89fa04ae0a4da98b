#ifndef ALERT_EXEC_DELIVER_H
#define ALERT_EXEC_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "engine_core.h"
#include "store.h"

/*
 * Delivery of the outbox. A worker claims a batch of calls (each the
 * oldest pending call of its alert, so calls of one alert go out one at
 * a time and in order), sends them one after the other, and writes each
 * outcome fenced by the claim's lease token: delivered; failed and due
 * again after a backoff (exponential, jittered, or the server's
 * Retry-After); or dead (a 4xx three times, or older than
 * --give-up-after).
 */

/* What a worker sends its calls through: the alerts server (http), or a
 * test's fake. */
struct sender {
	/* Sends the call; an enum http_status, the message in err. */
	int (*send)(void *ctx, const struct store_call *call, char *err, size_t errlen);
	/* The last answer's Retry-After in ms (0: none). */
	int64_t (*retry_after_ms)(void *ctx);
	/* Whether the last failed send may have reached the server. */
	int (*maybe_sent)(void *ctx);
	void *ctx;
};

/* The wait before attempt number `attempts` + 1: BACKOFF_FIRST_MS
 * doubling per attempt up to BACKOFF_CAP_MS, the upper half jittered by
 * *rng (a xorshift state, nonzero). */
int64_t deliver_backoff_ms(int attempts, uint64_t *rng);

/* One round of a worker: claims up to a batch of deliverable calls and
 * delivers them. Returns how many were claimed (0: none is due), or -1
 * when the claim failed (reported; *claim_failures counts them). */
int deliver_round(struct worker *w, struct store *st, struct sender *s, int *claim_failures);

/* Makes the calls waiting in backoff due now, because the server answers
 * again; itself backed off (BACKOFF_FIRST_MS doubling to BACKOFF_CAP_MS
 * while it keeps being asked for). */
void deliver_retry_waiting(struct engine *e, struct store *st);

/* Makes every call waiting in backoff due now (--once: each run is one
 * round of attempts). -1 when it could not be written. */
int deliver_retry_now(struct engine *e, struct store *st, int64_t *n);

/* The delivery worker thread. */
void *deliver_thread(void *worker);

#endif
