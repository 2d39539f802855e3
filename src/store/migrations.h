/*
 * migrations.h: the numbered schema migrations compiled into the binary
 * (generated from src/store/migrations/ by scripts/embed_sql.py).
 */
#ifndef PORTCULLIS_STORE_MIGRATIONS_H
#define PORTCULLIS_STORE_MIGRATIONS_H

#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *dialect; /* NULL: every dialect */
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t n_migrations;

#endif
