#ifndef ALERT_EXEC_SDNOTIFY_H
#define ALERT_EXEC_SDNOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * The sd_notify protocol of systemd, spoken without libsystemd: each state
 * is one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or the abstract namespace when it starts with
 * '@'). A service of Type=notify sends READY=1 when it serves, RELOADING=1
 * and READY=1 around a reload, STOPPING=1 when it stops, and, when
 * WatchdogSec= is set ($WATCHDOG_USEC, for the process $WATCHDOG_PID),
 * WATCHDOG=1 more often than that: systemd kills a service whose
 * watchdog is late.
 *
 * Not under systemd ($NOTIFY_SOCKET unset), every call is a no-op after
 * the one getenv of sdnotify_open. Threads: sdnotify_send may be called
 * from any thread once sdnotify_open returned (one sendto, no state).
 */

struct sdnotify {
	int fd; /* -1: nobody to notify */
	struct sockaddr_un addr;
	socklen_t addrlen;
	int64_t watchdog_ms; /* send WATCHDOG=1 this often (half of
			      * WATCHDOG_USEC); 0: no watchdog */
};

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID into *n and
 * opens the socket to send on. 0 (n->fd -1 when $NOTIFY_SOCKET is unset),
 * or -1 with the message in err when the variable names no usable socket
 * (then n->fd is -1 too: the daemon runs, unnotified). The watchdog is on
 * when WATCHDOG_USEC is a positive number and WATCHDOG_PID is unset or
 * this process's pid. */
int sdnotify_open(struct sdnotify *n, char *err, size_t errlen);

/* Closes the socket; a closed or never opened one is a no-op. */
void sdnotify_close(struct sdnotify *n);

/* Sends state ("READY=1", "WATCHDOG=1", ...). 0, or -1 when the datagram
 * could not be sent (systemd gone: nothing to do about it). A NULL n or
 * one not under systemd sends nothing and returns 0. */
int sdnotify_send(const struct sdnotify *n, const char *state);

/* Sends RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC time of the
 * reload's start in microseconds, which systemd 253 and later want with
 * it to tell this reload from an older one. As sdnotify_send. */
int sdnotify_reloading(const struct sdnotify *n);

/* The interval of WATCHDOG=1 in ms; 0 when there is no watchdog (or n is
 * NULL). */
int64_t sdnotify_watchdog_ms(const struct sdnotify *n);

#endif
