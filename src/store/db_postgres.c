/*
 * db_postgres.c: the PostgreSQL driver (placeholder until the scale-out
 * work lands: connecting reports that the backend is not built yet).
 */
#include "store/db.h"

#include <stdio.h>

static int pg_connect(const char *url, struct db_conn **out, char *err, size_t cap)
{
	(void)url;
	(void)out;
	snprintf(err, cap, "the PostgreSQL store is not available in this build yet");
	return DB_ERROR;
}

const struct db_driver db_postgres_driver = {
	.scheme = "postgres",
	.dialect = "postgres",
	.connect = pg_connect,
};
