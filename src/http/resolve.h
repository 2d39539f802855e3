/*
 * resolve.h: upstream host names resolved off the request path.
 *
 * getaddrinfo blocks, so a worker loop never calls it. Names are resolved
 * when they are first registered (at start-up, for every configured
 * upstream) and again every RESOLVE_REFRESH_S seconds by one background
 * thread, so an upstream that moves is followed without a restart. A failed
 * refresh keeps the last good address. IP literals never touch the table.
 */
#ifndef PORTCULLIS_HTTP_RESOLVE_H
#define PORTCULLIS_HTTP_RESOLVE_H

#include <sys/socket.h>

#define RESOLVE_REFRESH_S 10
#define RESOLVE_MAX_NAMES 64

/**
 * Register host:port and resolve it now (blocking: call at start-up).
 * 0 when an address is known, -1 when the name does not resolve (yet; the
 * refresher keeps trying) or the table is full.
 */
int resolve_register(const char *host, const char *port);

/**
 * The current address of host:port without blocking: an IP literal is
 * converted, a registered name is copied from the table. -1 when the name
 * is unknown or has never resolved.
 */
int resolve_lookup(const char *host, const char *port, struct sockaddr_storage *out,
                   socklen_t *out_len);

/** Stop the refresher and forget every name (at shutdown, and in tests). */
void resolve_shutdown(void);

#endif
