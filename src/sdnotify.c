#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads the watchdog's interval: half of $WATCHDOG_USEC, as systemd
 * advises, so that one late tick is not yet a kill. */
static int64_t watchdog_interval_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end = NULL;
	unsigned long long v, p;

	if (usec == NULL || *usec == '\0')
		return 0;
	if (pid != NULL && *pid != '\0') {
		errno = 0;
		p = strtoull(pid, &end, 10);
		if (errno != 0 || *end != '\0' || p != (unsigned long long)getpid())
			return 0; /* meant for another process */
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return 0;
	return v / 2000 > 0 ? (int64_t)(v / 2000) : 1;
}

int sdnotify_open(struct sdnotify *n, char *err, size_t errlen)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (path == NULL || *path == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
		snprintf(err, errlen, "NOTIFY_SOCKET: not an absolute path or @name: %.100s", path);
		return -1;
	}
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0'; /* the abstract namespace */
	/* An abstract name's length is the address's: no trailing NUL. */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
				 (path[0] == '@' ? 0 : 1));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
		return -1;
	}
	n->watchdog_ms = watchdog_interval_ms();
	return 0;
}

void sdnotify_close(struct sdnotify *n)
{
	if (n == NULL || n->fd < 0)
		return;
	close(n->fd);
	n->fd = -1;
}

int sdnotify_send(const struct sdnotify *n, const char *state)
{
	ssize_t sent;

	if (n == NULL || n->fd < 0)
		return 0;
	sent = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
		      n->addrlen);
	return sent < 0 ? -1 : 0;
}

int sdnotify_reloading(const struct sdnotify *n)
{
	struct timespec ts;
	char state[96];

	if (n == NULL || n->fd < 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000ULL);
	return sdnotify_send(n, state);
}

int64_t sdnotify_watchdog_ms(const struct sdnotify *n)
{
	return n != NULL && n->fd >= 0 ? n->watchdog_ms : 0;
}
