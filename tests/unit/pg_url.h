/*
 * pg_url.h: the URL of another database on the server of a PostgreSQL URL
 * (the suites' own databases, and the maintenance database "postgres" that
 * creates and drops them). Administrative statements connect there, never
 * to PORTCULLIS_TEST_PG_URL's own database: test_store ends every other
 * session of that one (terminate_others), which must not cut a CREATE
 * DATABASE of a suite running at the same time.
 */
#ifndef PORTCULLIS_TESTS_PG_URL_H
#define PORTCULLIS_TESTS_PG_URL_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* base with its database name replaced by name (the query string kept); false if none. */
static inline bool pg_url_with_db(const char *base, const char *name, char *out, size_t cap)
{
	const char *q = strchr(base, '?');
	size_t end = q ? (size_t)(q - base) : strlen(base);
	size_t slash = end;
	while (slash > 0 && base[slash - 1] != '/')
		slash--;
	if (slash <= strlen("postgres://"))
		return false;
	int n = snprintf(out, cap, "%.*s%s%s", (int)slash, base, name, q ? q : "");
	return n > 0 && (size_t)n < cap;
}

#endif
