/*
 * connlimit.h: open client connections per address, one table for every
 * worker of the server. The count is exact (no estimate, no eviction): the
 * accept path (http/h1conn.c) takes a slot before it makes a connection
 * and closing the connection gives it back, so a limit holds across workers.
 * Placement uses the process's keyed hash (core/siphash.h), so clients
 * cannot aim for one chain. Addresses are kept only in memory, never logged.
 */
#ifndef PORTCULLIS_HTTP_CONNLIMIT_H
#define PORTCULLIS_HTTP_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct connlimit;

/** What connections are counted by: an IPv4 address, or an IPv6 /64 (one client's prefix). */
struct connlimit_key {
	uint8_t b[16];
};

/**
 * A table for at most max_open connections at a time, each address holding
 * at most per_addr of them (at least 1).
 */
struct connlimit *connlimit_create(unsigned max_open, unsigned per_addr);
/** Free the table. NULL is a no-op. */
void connlimit_destroy(struct connlimit *t);

/**
 * The key of a client address: IPv4 and IPv4-mapped IPv6 by the address,
 * other IPv6 by its first 64 bits. False for other families (not counted).
 */
bool connlimit_key(const struct sockaddr *sa, socklen_t len, struct connlimit_key *out);

/**
 * Take one connection for k. False when k already holds per_addr (or the
 * table is full): nothing was taken. Thread-safe.
 */
bool connlimit_acquire(struct connlimit *t, const struct connlimit_key *k);
/** Give back one connection connlimit_acquire took for k. Thread-safe. */
void connlimit_release(struct connlimit *t, const struct connlimit_key *k);
/** Connections k holds now. */
unsigned connlimit_count(struct connlimit *t, const struct connlimit_key *k);
/** Addresses holding at least one connection now. */
unsigned connlimit_addresses(struct connlimit *t);

#endif
