#ifndef ALERT_EXEC_STATUS_H
#define ALERT_EXEC_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "strbuf.h"

/*
 * The state of the alerts for people: the status page of the listener
 * (web.c) and the `alert-exec status` command, both read through the
 * store's reader (store.h, "Reading for people").
 */

#define STATUS_PAGE_ALERTS 1000 /* alerts listed on the page, firing first */
#define STATUS_PAGE_CALLS 20    /* oldest pending calls listed on the page */

/* Appends the status page (one HTML document, every value from the
 * database escaped) as of wall time now (ms). -1 with a message when the
 * database could not be read. */
int status_page(struct store_reader *r, int64_t now, struct strbuf *out, char *err, size_t errlen);

/* `alert-exec status [--db PATH] [--json]`: argv[0] is "status". Prints
 * the alerts, firing first, and a line of outbox totals to stdout.
 * Returns an exit status: 0, 64 (usage), 71 (out of memory) or 74 (the
 * database is missing or cannot be read). */
int status_main(int argc, char **argv);

#endif
