/*
 * curl_ceiling: the bare libcurl ceiling of the benchmark (workload 1b).
 *
 * Sends GET /query?target=PREFIX<i> to the alerts server over a fixed
 * number of keep-alive connections for a fixed time, cycling i through
 * 1..count as the engine does, and prints one JSON line:
 *
 *   {"mode":"multi","connections":4,"requests":123456,"errors":0,
 *    "seconds":5.000,"rps":24691.2,"cpu_s":1.234,"cpu_us_per_req":9.99}
 *
 * Two modes: "multi" keeps `connections` transfers in flight from one
 * thread with the multi interface; "easy" runs one thread per connection,
 * each doing one blocking curl_easy_perform() after the other (what the
 * engine's evaluation workers do). The body is read and its value parsed
 * with strtod: the engine's JSON parsing, SQLite and scheduling are what
 * the benchmark compares against this.
 *
 * CPU is getrusage(RUSAGE_SELF) user + system over the timed window.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#define MAX_CONNECTIONS 256
#define URL_MAX 512
#define BODY_MAX 256

struct options {
	const char *base;     /* http://127.0.0.1:PORT */
	const char *prefix;   /* target prefix, e.g. "q-" */
	long count;           /* targets prefix1..prefixN */
	int connections;
	double seconds;
	int multi;
};

/* One connection's transfer: its handle, URL and body. */
struct conn {
	CURL *curl;
	char url[URL_MAX];
	char body[BODY_MAX];
	size_t len;
	long next;            /* next target index of this connection */
	long requests;
	long errors;
	double sink;          /* parsed values, so the parse is not optimised away */
};

struct shared {
	const struct options *opt;
	atomic_int stop;
};

struct easy_thread {
	pthread_t thread;
	struct conn c;
	struct shared *sh;
	int stride;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct conn *c = arg;
	size_t n = size * nmemb;

	if (n > BODY_MAX - 1 - c->len)
		return 0;
	memcpy(c->body + c->len, data, n);
	c->len += n;
	c->body[c->len] = '\0';
	return n;
}

/* Points c at its next target. */
static void next_url(struct conn *c, const struct options *opt, int stride)
{
	snprintf(c->url, sizeof(c->url), "%s/query?target=%s%ld", opt->base, opt->prefix,
		 c->next + 1);
	c->next = (c->next + stride) % opt->count;
	c->len = 0;
	c->body[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
}

/* Counts a finished transfer: ok when 200 with a "value". */
static void finish(struct conn *c, CURLcode cc)
{
	long code = 0;
	const char *v;

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	v = strstr(c->body, "\"value\":");
	if (cc != CURLE_OK || code != 200 || v == NULL) {
		c->errors++;
		return;
	}
	c->sink += strtod(v + 8, NULL);
	c->requests++;
}

static int conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		return -1;
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, 5000L);
	return 0;
}

static void *easy_main(void *arg)
{
	struct easy_thread *t = arg;

	while (!atomic_load(&t->sh->stop)) {
		next_url(&t->c, t->sh->opt, t->stride);
		finish(&t->c, curl_easy_perform(t->c.curl));
	}
	return NULL;
}

static int run_easy(const struct options *opt, struct conn *total)
{
	struct easy_thread t[MAX_CONNECTIONS];
	struct shared sh = {.opt = opt};
	struct timespec d;
	int started = 0;
	int rc = 0;

	atomic_init(&sh.stop, 0);
	for (int i = 0; i < opt->connections; i++) {
		if (conn_init(&t[i].c) != 0)
			return -1;
		t[i].c.next = i;
		t[i].sh = &sh;
		t[i].stride = opt->connections;
	}
	for (; started < opt->connections; started++)
		if (pthread_create(&t[started].thread, NULL, easy_main, &t[started]) != 0) {
			rc = -1;
			break;
		}
	d.tv_sec = (time_t)opt->seconds;
	d.tv_nsec = (long)((opt->seconds - (double)d.tv_sec) * 1e9);
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	atomic_store(&sh.stop, 1);
	for (int i = 0; i < started; i++) {
		pthread_join(t[i].thread, NULL);
		total->requests += t[i].c.requests;
		total->errors += t[i].c.errors;
		total->sink += t[i].c.sink;
	}
	for (int i = 0; i < opt->connections; i++)
		curl_easy_cleanup(t[i].c.curl);
	return rc;
}

static int run_multi(const struct options *opt, struct conn *total)
{
	static struct conn c[MAX_CONNECTIONS];
	CURLM *m = curl_multi_init();
	double end = now_s() + opt->seconds;
	int running = 0;

	if (m == NULL)
		return -1;
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)opt->connections);
	for (int i = 0; i < opt->connections; i++) {
		if (conn_init(&c[i]) != 0)
			return -1;
		curl_easy_setopt(c[i].curl, CURLOPT_PRIVATE, &c[i]);
		c[i].next = i;
		next_url(&c[i], opt, opt->connections);
		curl_multi_add_handle(m, c[i].curl);
	}
	for (;;) {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct conn *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			finish(x, msg->data.result);
			curl_multi_remove_handle(m, x->curl);
			if (now_s() < end) {
				next_url(x, opt, opt->connections);
				curl_multi_add_handle(m, x->curl);
				running++;
			}
		}
		if (running == 0)
			break;
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (int i = 0; i < opt->connections; i++) {
		total->requests += c[i].requests;
		total->errors += c[i].errors;
		total->sink += c[i].sink;
		curl_easy_cleanup(c[i].curl);
	}
	curl_multi_cleanup(m);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: curl_ceiling --url BASE [--prefix P] [--count N] [--connections C]\n"
		   "                    [--seconds S] [--mode multi|easy]\n"
		   "GETs BASE/query?target=P<i> (i cycling 1..N) over C keep-alive connections\n"
		   "for S seconds and prints one JSON line of throughput and CPU.\n");
}

int main(int argc, char **argv)
{
	struct options opt = {
		.prefix = "test-query-", .count = 1, .connections = 4, .seconds = 5, .multi = 1,
	};
	struct conn total;
	double t0, c0, t1, c1;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (v == NULL) {
			usage(stderr);
			return 64;
		}
		i++;
		if (strcmp(a, "--url") == 0)
			opt.base = v;
		else if (strcmp(a, "--prefix") == 0)
			opt.prefix = v;
		else if (strcmp(a, "--count") == 0)
			opt.count = strtol(v, NULL, 10);
		else if (strcmp(a, "--connections") == 0)
			opt.connections = (int)strtol(v, NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			opt.seconds = strtod(v, NULL);
		else if (strcmp(a, "--mode") == 0 && (strcmp(v, "multi") == 0 || strcmp(v, "easy") == 0))
			opt.multi = strcmp(v, "multi") == 0;
		else {
			usage(stderr);
			return 64;
		}
	}
	if (opt.base == NULL || opt.count < 1 || opt.connections < 1 ||
	    opt.connections > MAX_CONNECTIONS || opt.seconds <= 0) {
		usage(stderr);
		return 64;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 70;
	memset(&total, 0, sizeof(total));
	t0 = now_s();
	c0 = cpu_s();
	rc = opt.multi ? run_multi(&opt, &total) : run_easy(&opt, &total);
	t1 = now_s();
	c1 = cpu_s();
	curl_global_cleanup();
	if (rc != 0) {
		fprintf(stderr, "curl_ceiling: setup failed\n");
		return 70;
	}
	printf("{\"mode\":\"%s\",\"connections\":%d,\"requests\":%ld,\"errors\":%ld,"
	       "\"seconds\":%.3f,\"rps\":%.1f,\"cpu_s\":%.3f,\"cpu_us_per_req\":%.2f}\n",
	       opt.multi ? "multi" : "easy", opt.connections, total.requests, total.errors,
	       t1 - t0, (double)total.requests / (t1 - t0), c1 - c0,
	       total.requests > 0 ? (c1 - c0) * 1e6 / (double)total.requests : 0.0);
	return total.requests > 0 ? 0 : 1;
}
