/*
 * resolve.c: the upstream name table and its refresher (see resolve.h).
 *
 * A small fixed table under one mutex: lookups copy a sockaddr out, the
 * refresher resolves without the lock held and swaps the result in. The
 * first address getaddrinfo returns is used (it already orders them per
 * RFC 6724).
 */
#include "http/resolve.h"

#include "core/log.h"
#include "core/thread.h"
#include "core/str.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct name {
	char host[256];
	char port[8];
	struct sockaddr_storage addr;
	socklen_t addr_len; /* 0 until it first resolves */
	bool failing;       /* the last attempt failed (logged once per outage) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct name names[RESOLVE_MAX_NAMES];
static int n_names;
static struct bg_thread refresher; /* shares lock */

static int literal(const char *host, const char *port, struct sockaddr_storage *out,
                   socklen_t *out_len)
{
	uint64_t p;
	if (parse_uint64(port, strlen(port), 65535, &p) != 0)
		return -1;
	memset(out, 0, sizeof *out);
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		*out_len = sizeof *v4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		*out_len = sizeof *v6;
		return 0;
	}
	return -1;
}

/* getaddrinfo, no lock held. 0 with the first address, or the gai error. */
static int resolve_now(const char *host, const char *port, struct sockaddr_storage *out,
                       socklen_t *out_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return rc;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*out_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Store one attempt's outcome for names[i] (lock held). */
static void store_result(int i, int rc, const struct sockaddr_storage *addr, socklen_t len)
{
	struct name *n = &names[i];
	if (rc == 0) {
		n->addr = *addr;
		n->addr_len = len;
		if (n->failing)
			log_info("upstream host %s resolves again", n->host);
		n->failing = false;
	} else if (!n->failing) {
		/* The host name is configuration, not client data: safe to log. */
		log_warn("cannot resolve upstream host %s: %s%s", n->host, gai_strerror(rc),
		         n->addr_len ? " (keeping the last address)" : "");
		n->failing = true;
	}
}

/* The refresher thread (lock held): every RESOLVE_REFRESH_S, each name again. */
static void refresh_main(struct bg_thread *t, void *arg)
{
	(void)arg;
	while (bg_thread_wait(t, RESOLVE_REFRESH_S * 1000)) {
		for (int i = 0; i < n_names && !bg_thread_stopping(t); i++) {
			char host[sizeof names[i].host], port[sizeof names[i].port];
			memcpy(host, names[i].host, sizeof host);
			memcpy(port, names[i].port, sizeof port);
			pthread_mutex_unlock(&lock);
			struct sockaddr_storage addr;
			socklen_t len = 0;
			int rc = resolve_now(host, port, &addr, &len);
			pthread_mutex_lock(&lock);
			if (i < n_names)
				store_result(i, rc, &addr, len);
		}
	}
}

static int find(const char *host, const char *port)
{
	for (int i = 0; i < n_names; i++)
		if (strcmp(names[i].host, host) == 0 && strcmp(names[i].port, port) == 0)
			return i;
	return -1;
}

int resolve_register(const char *host, const char *port)
{
	struct sockaddr_storage addr;
	socklen_t len = 0;
	if (literal(host, port, &addr, &len) == 0)
		return 0;
	if (strlen(host) >= sizeof names[0].host || strlen(port) >= sizeof names[0].port)
		return -1;
	pthread_mutex_lock(&lock);
	int i = find(host, port);
	if (i < 0) {
		if (n_names == RESOLVE_MAX_NAMES) {
			pthread_mutex_unlock(&lock);
			return -1;
		}
		i = n_names++;
		memset(&names[i], 0, sizeof names[i]);
		snprintf(names[i].host, sizeof names[i].host, "%s", host);
		snprintf(names[i].port, sizeof names[i].port, "%s", port);
	}
	if (!bg_thread_started(&refresher) &&
	    bg_thread_start(&refresher, "resolve", &lock, refresh_main, NULL) != 0)
		log_warn("cannot start the upstream name refresher");
	pthread_mutex_unlock(&lock);

	int rc = resolve_now(host, port, &addr, &len);
	pthread_mutex_lock(&lock);
	store_result(i, rc, &addr, len);
	int ok = names[i].addr_len ? 0 : -1;
	pthread_mutex_unlock(&lock);
	return ok;
}

int resolve_lookup(const char *host, const char *port, struct sockaddr_storage *out,
                   socklen_t *out_len)
{
	if (literal(host, port, out, out_len) == 0)
		return 0;
	pthread_mutex_lock(&lock);
	int i = find(host, port);
	int rc = -1;
	if (i >= 0 && names[i].addr_len) {
		*out = names[i].addr;
		*out_len = names[i].addr_len;
		rc = 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void resolve_shutdown(void)
{
	bg_thread_stop(&refresher);
	pthread_mutex_lock(&lock);
	n_names = 0;
	pthread_mutex_unlock(&lock);
}
