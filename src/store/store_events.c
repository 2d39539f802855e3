/*
 * store_events.c: the SDK events of store_events.h over the db.h drivers
 * (migrations/0006_events.sql has the tables).
 *
 * An insert is one durable transaction, the group commit's (src/ingest/
 * commit.c): first the dedupe claims, then the events that won theirs,
 * then their held advertising ids, each in multi-row statements of up to
 * 64 rows (st_multi_run) on both backends.
 *
 * Dedupe: event_dedupe's primary key (project_id, message_id) is the one
 * unique constraint. Each event upserts its claim; the upsert takes a
 * claim again only when the stored one is at least the window older than
 * the event (ON CONFLICT ... DO UPDATE ... WHERE), and the change counts
 * (or, when one was refused, RETURNING: below) say which claims were taken,
 * so exactly those events are stored. Repeats inside one
 * batch are settled before (the first of them wins): PostgreSQL refuses an
 * upsert that touches one row twice. Two nodes inserting one messageId at
 * once on PostgreSQL: the second upsert waits for the first transaction's
 * row, then (READ COMMITTED) evaluates the WHERE against it, so one of them
 * stores the event. Claims go in sorted by (project, messageId), so two
 * batches overlapping in any order lock their rows in one order and never
 * deadlock. SQLite has one writer (BEGIN IMMEDIATE).
 *
 * Each event's id is "ev_" and the ULID of its received_at (checked here),
 * so received_at >= t is id >= store_event_id_floor(t): the lists' since
 * and until and the retention purge are id ranges on the indexes the lists
 * walk (events_org, events_project, ...; migration 0015 dropped the index
 * on received_at, one b-tree less per event). The lists keep the
 * received_at condition beside the id range (exact for rows stored before
 * 0015, whose id's time can be a few ms after their received_at).
 */
#include "store/store_events.h"

#include "core/alloc.h"
#include "core/ulid.h"
#include "store/db.h"
#include "store/store_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_COLS     15
#define EV_PREFIX   "ev_"
#define ULID_MS_MAX 0xFFFFFFFFFFFFLL /* 48 bits */

void store_event_set_id(struct store_event *e)
{
	ulid_prefixed_at("ev", e->received_at, e->id, sizeof e->id);
}

void store_event_id_floor(int64_t ms, char out[STORE_EV_ID_MAX + 1])
{
	ulid_prefixed_floor("ev", ms > ULID_MS_MAX ? ULID_MS_MAX : ms, out, STORE_EV_ID_MAX + 1);
}

/* The id is "ev_" and a ULID of received_at (store_event_set_id). */
static bool id_ok(const struct store_event *e)
{
	const size_t pl = sizeof EV_PREFIX - 1;
	return memcmp(e->id, EV_PREFIX, pl) == 0 && ulid_valid(e->id + pl, strlen(e->id + pl)) &&
	       e->received_at >= 0 && ulid_time(e->id + pl) == (uint64_t)e->received_at;
}

/* ---------- insert ---------- */

/* An event of the batch, in (project_id, message_id, index) order. */
struct ev_ref {
	const struct store_event *e;
	int i;
};

static int ref_key_cmp(const struct ev_ref *a, const struct store_event *b)
{
	int c = strcmp(a->e->project_id, b->project_id);
	return c ? c : strcmp(a->e->message_id, b->message_id);
}

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ev_ref *a = pa, *b = pb;
	int c = ref_key_cmp(a, b->e);
	return c ? c : (a->i > b->i) - (a->i < b->i);
}

struct insert_args {
	const struct store_event *const *evs; /* by batch index */
	int n;
	int64_t dedupe_ms;
	struct ev_ref *cand; /* the first event of each key, sorted */
	int n_cand;
	bool *claimed; /* by batch index */
	int *stored;   /* batch indexes of the claimed events, in batch order */
	int n_stored;
	int *adids; /* batch indexes of stored events holding an id */
	int n_adids;
	bool returning;    /* the claims name the ones taken (else: every one must be) */
	int64_t n_changes; /* claims taken, by the statements' change counts */
	bool refused;      /* a claim was refused without RETURNING: run again with it */
};

#define CLAIM_COLS 3
#define CLAIM_ROW  "(?, ?, ?)"
/*
 * The claims go without RETURNING first (SQLite keeps every returned row in
 * a temporary table; ingest_raw without it: +10 to +35 %, bench/README.md):
 * an upsert whose DO UPDATE is not done changes no row, so the change counts
 * say whether every claim was taken, as they all are but for a messageId
 * sent again. Only then the transaction runs again (nothing but claims was
 * written yet) with RETURNING, which names the claims taken.
 */
#define CLAIM_UPSERT(values)                                                                       \
	"INSERT INTO event_dedupe (project_id, message_id, received_at) VALUES " values            \
	" ON CONFLICT (project_id, message_id) DO UPDATE SET received_at = excluded.received_at "  \
	"WHERE event_dedupe.received_at <= excluded.received_at - ?"
#define CLAIM_RETURNING(values) CLAIM_UPSERT(values) " RETURNING project_id, message_id"
static const char *const claim_sql[] = MR_SIZES(CLAIM_UPSERT, CLAIM_ROW);
static const char *const claim_ret_sql[] = MR_SIZES(CLAIM_RETURNING, CLAIM_ROW);

static void fill_claim(const void *ctx, int i, struct db_param *p)
{
	const struct insert_args *ia = ctx;
	const struct store_event *e = ia->cand[i].e;
	p[0] = P_TEXT(e->project_id);
	p[1] = P_TEXT(e->message_id);
	p[2] = P_INT(e->received_at);
}

/* Mark the events whose claims r returned (candidates are unique and sorted). */
static int claims_taken(void *ctx, const struct db_result *r)
{
	struct insert_args *ia = ctx;
	for (int row = 0; row < r->nrows; row++) {
		struct store_event key;
		st_copy_str(key.project_id, sizeof key.project_id, db_text(r, row, 0));
		st_copy_str(key.message_id, sizeof key.message_id, db_text(r, row, 1));
		int lo = 0, hi = ia->n_cand;
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;
			int c = ref_key_cmp(&ia->cand[mid], &key);
			if (c == 0) {
				ia->claimed[ia->cand[mid].i] = true;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= hi)
			return STORE_ERROR; /* a claim of no event of ours: never expected */
	}
	return STORE_OK;
}

/* Without RETURNING: count the claims the statement took. */
static int claims_counted(void *ctx, const struct db_result *r)
{
	struct insert_args *ia = ctx;
	ia->n_changes += r->changes;
	return STORE_OK;
}

#define EV_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define EV_INSERT(values)                                                                          \
	"INSERT INTO events (id, org_id, project_id, key_id, message_id, type, event, user_id, "   \
	"anonymous_id, email_sha256, phone_sha256, region, timestamp, received_at, body) "         \
	"VALUES " values
static const char *const ev_sql[] = MR_SIZES(EV_INSERT, EV_ROW);

static const char *opt(const char *s)
{
	return s[0] ? s : NULL;
}

static void fill_event(const void *ctx, int i, struct db_param *p)
{
	const struct insert_args *ia = ctx;
	const struct store_event *e = ia->evs[ia->stored[i]];
	p[0] = P_TEXT(e->id);
	p[1] = P_TEXT(e->org_id);
	p[2] = P_TEXT(e->project_id);
	p[3] = P_TEXT(opt(e->key_id));
	p[4] = P_TEXT(e->message_id);
	p[5] = P_TEXT(e->type);
	p[6] = P_TEXT(opt(e->event));
	p[7] = P_TEXT(opt(e->user_id));
	p[8] = P_TEXT(opt(e->anonymous_id));
	p[9] = P_TEXT(opt(e->email_sha256));
	p[10] = P_TEXT(opt(e->phone_sha256));
	p[11] = P_TEXT(opt(e->region));
	p[12] = P_INT(e->timestamp);
	p[13] = P_INT(e->received_at);
	p[14] = P_TEXTN(e->body, e->body_len); /* bound where it is: no copy */
}

#define ADID_COLS 4
#define ADID_ROW  "(?, ?, ?, ?)"
#define ADID_INSERT(values)                                                                        \
	"INSERT INTO event_adids (event_id, project_id, adid_sealed, received_at) VALUES " values
static const char *const adid_sql[] = MR_SIZES(ADID_INSERT, ADID_ROW);

static void fill_adid(const void *ctx, int i, struct db_param *p)
{
	const struct insert_args *ia = ctx;
	const struct store_event *e = ia->evs[ia->adids[i]];
	p[0] = P_TEXT(e->id);
	p[1] = P_TEXT(e->project_id);
	p[2] = P_TEXT(e->adid_sealed);
	p[3] = P_INT(e->received_at);
}

static int insert_fn(struct db_conn *c, void *arg)
{
	struct insert_args *ia = arg;
	struct db_param window = P_INT(ia->dedupe_ms);
	struct multi claims = {
	    ia->returning ? claim_ret_sql : claim_sql,     CLAIM_COLS, fill_claim, ia, &window, 1,
	    ia->returning ? claims_taken : claims_counted, ia};
	ia->n_changes = 0;
	int rc = st_multi_run(c, &claims, ia->n_cand);
	if (rc != STORE_OK)
		return rc;
	if (!ia->returning && ia->n_changes != ia->n_cand) {
		ia->refused = true; /* rolled back, and again naming the claims taken */
		return STORE_ECONFLICT;
	}
	for (int i = 0; !ia->returning && i < ia->n_cand; i++)
		ia->claimed[ia->cand[i].i] = true;
	for (int i = 0; i < ia->n; i++) {
		if (!ia->claimed[i])
			continue;
		const struct store_event *e = ia->evs[i];
		ia->stored[ia->n_stored++] = i;
		if (e->adid_sealed[0])
			ia->adids[ia->n_adids++] = i;
	}
	struct multi events = {ev_sql, EV_COLS, fill_event, ia, NULL, 0, NULL, NULL};
	rc = st_multi_run(c, &events, ia->n_stored);
	struct multi adids = {adid_sql, ADID_COLS, fill_adid, ia, NULL, 0, NULL, NULL};
	if (rc == STORE_OK)
		rc = st_multi_run(c, &adids, ia->n_adids);
	return rc;
}

/* Every string member fits its field, the body its limit. */
static bool event_ok(const struct store_event *e)
{
#define FITS(f) (memchr(e->f, 0, sizeof e->f) != NULL)
	return FITS(id) && FITS(org_id) && FITS(project_id) && FITS(key_id) && FITS(message_id) &&
	       FITS(type) && FITS(event) && FITS(user_id) && FITS(anonymous_id) &&
	       FITS(email_sha256) && FITS(phone_sha256) && FITS(region) && FITS(adid_sealed) &&
	       id_ok(e) && e->org_id[0] && e->project_id[0] && e->message_id[0] && e->type[0] &&
	       e->body_len <= STORE_EV_BODY_MAX && (e->body || e->body_len == 0) &&
	       !memchr(e->body ? e->body : "", 0, e->body_len);
#undef FITS
}

int store_events_insert_refs(struct store *st, const struct store_event *const *evs, int n,
                             int64_t dedupe_ms, bool *stored)
{
	if (n <= 0)
		return n == 0 ? STORE_OK : STORE_ERROR;
	for (int i = 0; i < n; i++)
		if (!event_ok(evs[i]))
			return STORE_ERROR;
	size_t un = (size_t)n;
	struct insert_args ia = {.evs = evs, .n = n, .dedupe_ms = dedupe_ms};
	ia.cand = xmalloc(un * sizeof *ia.cand);
	ia.claimed = xcalloc(un, sizeof *ia.claimed);
	ia.stored = xmalloc(un * sizeof *ia.stored);
	ia.adids = xmalloc(un * sizeof *ia.adids);
	for (int i = 0; i < n; i++)
		ia.cand[i] = (struct ev_ref){evs[i], i};
	qsort(ia.cand, un, sizeof *ia.cand, ref_cmp);
	/* Keep the first of each key: a later repeat in the batch is not stored. */
	for (int i = 0; i < n; i++)
		if (ia.n_cand == 0 || ref_key_cmp(&ia.cand[ia.n_cand - 1], ia.cand[i].e) != 0)
			ia.cand[ia.n_cand++] = ia.cand[i];
	int rc = st_in_tx(st, insert_fn, &ia, NULL, NO_CHANGE);
	if (rc == STORE_ECONFLICT && ia.refused) {
		ia.returning = true;
		memset(ia.claimed, 0, un * sizeof *ia.claimed);
		ia.n_stored = ia.n_adids = 0;
		rc = st_in_tx(st, insert_fn, &ia, NULL, NO_CHANGE);
	}
	for (int i = 0; stored && i < n; i++)
		stored[i] = rc == STORE_OK && ia.claimed[i];
	free(ia.cand);
	free(ia.claimed);
	free(ia.stored);
	free(ia.adids);
	return rc;
}

int store_events_insert(struct store *st, const struct store_event *evs, int n, int64_t dedupe_ms,
                        bool *stored)
{
	if (n <= 0)
		return n == 0 ? STORE_OK : STORE_ERROR;
	const struct store_event **refs = xmalloc((size_t)n * sizeof(const struct store_event *));
	for (int i = 0; i < n; i++)
		refs[i] = &evs[i];
	int rc = store_events_insert_refs(st, refs, n, dedupe_ms, stored);
	free(refs);
	return rc;
}

/* ---------- list ---------- */

/*
 * One statement per combination of filters (each a fixed fragment, every
 * value bound), built once: a statement with only the conditions asked for
 * lets SQLite, which plans a statement once without its values, use the
 * index of the filter ("? IS NULL OR col = ?" would walk the primary key).
 * The addresses stay put, so both drivers' statement caches keep them.
 */
enum {
	F_ORG,
	F_PROJECT,
	F_TYPE,
	F_USER,
	F_SINCE,
	F_UNTIL,
	F_BEFORE,
	F_COUNT,
};
#define SINCE_SQL " AND id >= ? AND received_at >= ?"
static const char *const filter_sql[F_COUNT] = {
    " AND org_id = ?",
    " AND project_id = ?",
    " AND type = ?",
    " AND user_id = ?",
    SINCE_SQL, /* the id's time is received_at: the id range finds the rows */
    " AND id < ? AND received_at < ?",
    " AND id < ?",
};
#define LIST_HEAD                                                                                  \
	"SELECT id, org_id, project_id, key_id, message_id, type, event, user_id, anonymous_id, "  \
	"email_sha256, phone_sha256, region, body, timestamp, received_at FROM events WHERE 1 = 1"
#define LIST_TAIL    " ORDER BY id DESC LIMIT ?"
#define LIST_SQL_MAX (sizeof LIST_HEAD + sizeof LIST_TAIL + F_COUNT * sizeof SINCE_SQL)
static char list_sql[1 << F_COUNT][LIST_SQL_MAX];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

static void list_build(void)
{
	for (unsigned mask = 0; mask < (1u << F_COUNT); mask++) {
		char *s = list_sql[mask];
		size_t len = (size_t)snprintf(s, LIST_SQL_MAX, "%s", LIST_HEAD);
		for (int f = 0; f < F_COUNT; f++)
			if (mask & (1u << f))
				len += (size_t)snprintf(s + len, LIST_SQL_MAX - len, "%s",
				                        filter_sql[f]);
		snprintf(s + len, LIST_SQL_MAX - len, "%s", LIST_TAIL);
	}
}

static unsigned list_mask(const struct event_filter *f)
{
	const bool set[F_COUNT] = {f->org_id,     f->project_id, f->type,     f->user_id,
	                           f->since >= 0, f->until >= 0, f->before_id};
	unsigned mask = 0;
	for (int i = 0; i < F_COUNT; i++)
		if (set[i])
			mask |= 1u << i;
	return mask;
}

const char *store_events_list_sql(const struct event_filter *f)
{
	pthread_once(&list_once, list_build);
	return list_sql[list_mask(f)];
}

int store_events_list(struct store *st, const struct event_filter *f,
                      void (*each)(void *ctx, const struct store_event_read *row), void *ctx)
{
	char since_id[STORE_EV_ID_MAX + 1], until_id[STORE_EV_ID_MAX + 1];
	store_event_id_floor(f->since, since_id);
	store_event_id_floor(f->until, until_id);
	/* Each filter's parameters in its fragment's order (at most two). */
	const struct db_param val[F_COUNT][2] = {
	    {P_TEXT(f->org_id)},
	    {P_TEXT(f->project_id)},
	    {P_TEXT(f->type)},
	    {P_TEXT(f->user_id)},
	    {P_TEXT(since_id), P_INT(f->since)},
	    {P_TEXT(until_id), P_INT(f->until)},
	    {P_TEXT(f->before_id)},
	};
	static const int n_val[F_COUNT] = {1, 1, 1, 1, 2, 2, 1};
	unsigned mask = list_mask(f);
	struct db_param p[2 * F_COUNT + 1];
	int n = 0;
	for (int i = 0; i < F_COUNT; i++)
		for (int k = 0; (mask & (1u << i)) && k < n_val[i]; k++)
			p[n++] = val[i][k];
	p[n++] = P_INT(f->limit < 0 ? 0 : f->limit);
	struct db_result *r = NULL;
	int rc = st_read_q(st, store_events_list_sql(f), p, n, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		struct store_event_read row = {
		    .id = db_text_or_empty(r, i, 0),
		    .org_id = db_text_or_empty(r, i, 1),
		    .project_id = db_text_or_empty(r, i, 2),
		    .key_id = db_text_or_empty(r, i, 3),
		    .message_id = db_text_or_empty(r, i, 4),
		    .type = db_text_or_empty(r, i, 5),
		    .event = db_text_or_empty(r, i, 6),
		    .user_id = db_text_or_empty(r, i, 7),
		    .anonymous_id = db_text_or_empty(r, i, 8),
		    .email_sha256 = db_text_or_empty(r, i, 9),
		    .phone_sha256 = db_text_or_empty(r, i, 10),
		    .region = db_text_or_empty(r, i, 11),
		    .body = db_text_or_empty(r, i, 12),
		    .timestamp = db_int(r, i, 13),
		    .received_at = db_int(r, i, 14),
		};
		each(ctx, &row);
	}
	db_result_free(r);
	return STORE_OK;
}

/* ---------- retention and held ids ---------- */

struct delete_args {
	const char *const *sql; /* NULL-terminated, each with one parameter */
	const struct db_param *p;
	int n;           /* how many parameters (each statement once per parameter) */
	int64_t deleted; /* what sql[0] deleted */
};

static int delete_fn(struct db_conn *c, void *arg)
{
	struct delete_args *da = arg;
	int rc = STORE_OK;
	for (int k = 0; rc == STORE_OK && da->sql[k]; k++)
		for (int i = 0; rc == STORE_OK && i < da->n; i++) {
			struct db_result *r = NULL;
			rc = sq(c, da->sql[k], &da->p[i], 1, &r);
			if (rc == STORE_OK && k == 0)
				da->deleted += r->changes;
			db_result_free(r);
		}
	return rc;
}

static int purge(struct store *st, const char *const *sql, int64_t cutoff_ms, int64_t *deleted)
{
	struct db_param p = P_INT(cutoff_ms);
	struct delete_args da = {sql, &p, 1, 0};
	int rc = st_maint_tx(st, delete_fn, &da);
	if (deleted)
		*deleted = rc == STORE_OK ? da.deleted : 0;
	return rc;
}

/* The events received before the cutoff, found by id (ordered as received_at), then the rest. */
struct purge_args {
	struct delete_args rest;
	const char *floor_id;
	int64_t events; /* deleted */
};

static int purge_events_fn(struct db_conn *c, void *arg)
{
	struct purge_args *pa = arg;
	struct db_param p[] = {P_TEXT(pa->floor_id), pa->rest.p[0]};
	struct db_result *r = NULL;
	int rc = sq(c, "DELETE FROM events WHERE id < ? AND received_at < ?", p, 2, &r);
	if (rc == STORE_OK)
		pa->events = r->changes;
	db_result_free(r);
	return rc == STORE_OK ? delete_fn(c, &pa->rest) : rc;
}

int store_events_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	static const char *const sql[] = {
	    "DELETE FROM event_adids WHERE received_at < ?",
	    /* The CAPI forward's claims of those events, and its finished batch records. */
	    "DELETE FROM capi_batch_events WHERE received_at < ?",
	    "DELETE FROM capi_batches WHERE created_at < ? AND status <> 'pending'",
	    NULL,
	};
	char floor_id[STORE_EV_ID_MAX + 1];
	store_event_id_floor(cutoff_ms, floor_id);
	struct db_param p = P_INT(cutoff_ms);
	struct purge_args pa = {{sql, &p, 1, 0}, floor_id, 0};
	int rc = st_maint_tx(st, purge_events_fn, &pa);
	if (deleted)
		*deleted = rc == STORE_OK ? pa.events : 0;
	return rc;
}

int store_events_dedupe_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	static const char *const sql[] = {"DELETE FROM event_dedupe WHERE received_at < ?", NULL};
	return purge(st, sql, cutoff_ms, deleted);
}

int store_events_retention(struct store *st, int64_t days, int64_t now_ms, int64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	if (days < 1 || days > INT64_MAX / 86400000LL)
		return STORE_ERROR;
	int rc = store_events_purge(st, now_ms - days * 86400000LL, deleted);
	if (rc == STORE_OK)
		rc = store_events_dedupe_purge(st, now_ms - STORE_EV_DEDUPE_MS, NULL);
	return rc;
}

int store_events_adids_delete(struct store *st, const char *const *ids, int n)
{
	if (n <= 0)
		return n == 0 ? STORE_OK : STORE_ERROR;
	static const char *const sql[] = {"DELETE FROM event_adids WHERE event_id = ?", NULL};
	struct db_param *p = xmalloc((size_t)n * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i] = P_TEXT(ids[i]);
	struct delete_args da = {sql, p, n, 0};
	int rc = st_in_tx(st, delete_fn, &da, NULL, NO_CHANGE);
	free(p);
	return rc;
}
