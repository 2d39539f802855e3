/*
 * db.c: result helpers shared by the SQL drivers (see db.h).
 */
#include "store/db.h"

#include "core/alloc.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

struct db_result *db_result_new(int nrows, int ncols, char **cells)
{
	struct db_result *r = xcalloc(1, sizeof *r);
	r->nrows = nrows;
	r->ncols = ncols;
	r->cells = cells;
	return r;
}

void db_result_free(struct db_result *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
	free(r);
}

const char *db_text(const struct db_result *r, int row, int col)
{
	if (!r || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
		return NULL;
	return r->cells[row * r->ncols + col];
}

const char *db_text_or_empty(const struct db_result *r, int row, int col)
{
	const char *s = db_text(r, row, col);
	return s ? s : "";
}

int64_t db_int_or(const struct db_result *r, int row, int col, int64_t def)
{
	const char *s = db_text(r, row, col);
	int64_t v;
	if (!s || parse_int64_z(s, INT64_MIN, INT64_MAX, &v) < 0)
		return def;
	return v;
}

int64_t db_int(const struct db_result *r, int row, int col)
{
	return db_int_or(r, row, col, 0);
}
