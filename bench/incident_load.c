/*
 * incident_load.c: load a request log for bench/incident.sh through the
 * project's own write path: store_request_log_insert, in batches of the
 * writer's size, so the usage rollups (usage_hour, usage_key_agents,
 * usage_key_seen, usage_minute) are written as in production.
 *
 *   incident_load STORE_URL N [BATCH]
 *
 * Makes ORGS organisations of PROJECTS projects of KEYS keys each (2000
 * keys), then N rows spread evenly over the last 30 days, oldest first (as
 * the writer sees them). One key, the first project's first key, is busy:
 * 5 % of all rows, from the US and DE with its two clients, and in the last
 * two days also from NL with curl (the leak), with refused wrong-secret
 * attempts naming it; the other keys share the rest unevenly (the square of
 * a uniform draw picks the key), from 8 regions, 12 user agents, 6 routes
 * and a few statuses, 1 % of them refused. Prints the busy key and its
 * project, then rows/s and the table's row count.
 */
#include "core/clock.h"
#include "core/log.h"
#include "core/ulid.h"
#include "store/store.h"
#include "store/store_usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORGS     50
#define PROJECTS 4
#define KEYS     10
#define NKEYS    (ORGS * PROJECTS * KEYS)
#define DAY_MS   ((int64_t)86400 * 1000)

static const char *const regions[] = {"US", "DE", "GB", "FR", "JP", "BR", "IN", "CA"};
static const char *const agents[] = {
    "billing-sync/1.4",   "billing-sync/1.5", "okhttp/4.12.0",     "python-requests/2.31.0",
    "Go-http-client/1.1", "axios/1.6.2",      "node-fetch/1.0",    "Java/17.0.9",
    "curl/8.4.0",         "ruby/3.2",         "Mozilla/5.0 (X11)", "PostmanRuntime/7.36.0"};
static const char *const routes[] = {"proxy:default",    "proxy:orders",     "proxy:payments",
                                     "GET /v1/requests", "GET /v1/api-keys", "GET /v1/verify"};

/* xorshift64*: the load is the same every run. */
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}
static double unit(void)
{
	return (double)(next() >> 11) / 9007199254740992.0;
}

static char key_ids[NKEYS][STORE_ID_LEN + 1], proj_ids[ORGS * PROJECTS][STORE_ID_LEN + 1],
    org_ids[ORGS][STORE_ID_LEN + 1];

static int make_tenants(struct store *st, int64_t now)
{
	for (int o = 0; o < ORGS; o++) {
		struct store_org org = {.rl_requests = -1,
		                        .rl_per_seconds = -1,
		                        .rl_burst = -1,
		                        .created_at = now - 60 * DAY_MS,
		                        .updated_at = now};
		ulid_new(org_ids[o]);
		memcpy(org.id, org_ids[o], sizeof org.id);
		snprintf(org.name, sizeof org.name, "org %d", o);
		struct audit_input a = {.org_id = org.id,
		                        .actor_type = "system",
		                        .actor_id = "bench",
		                        .action = "org.created",
		                        .target_type = "org",
		                        .target_id = org.id};
		if (store_org_insert(st, &org, &a) != STORE_OK)
			return -1;
		for (int p = 0; p < PROJECTS; p++) {
			int pi = o * PROJECTS + p;
			struct store_project pr = {.created_at = now - 60 * DAY_MS};
			ulid_new(proj_ids[pi]);
			memcpy(pr.id, proj_ids[pi], sizeof pr.id);
			memcpy(pr.org_id, org.id, sizeof pr.org_id);
			snprintf(pr.name, sizeof pr.name, "project %d", p);
			a.action = "project.created";
			a.target_type = "project";
			a.target_id = pr.id;
			if (store_project_insert(st, &pr, &a) != STORE_OK)
				return -1;
			for (int k = 0; k < KEYS; k++) {
				int ki = pi * KEYS + k;
				struct store_key key = {.prev_expires_at = -1,
				                        .last_used_at = -1,
				                        .expires_at = -1,
				                        .revoked_at = -1,
				                        .version = 1,
				                        .created_at = now - 45 * DAY_MS};
				ulid_new(key_ids[ki]);
				memcpy(key.id, key_ids[ki], sizeof key.id);
				memcpy(key.org_id, org.id, sizeof key.org_id);
				memcpy(key.project_id, pr.id, sizeof key.project_id);
				snprintf(key.name, sizeof key.name, "key %d", k);
				snprintf(key.env, sizeof key.env, "live");
				snprintf(key.scopes, sizeof key.scopes, "gateway");
				snprintf(key.secret_hash, sizeof key.secret_hash, "$2b$04$bench");
				snprintf(key.start, sizeof key.start, "pcl_live_%.3s", key.id);
				a.action = "api_key.created";
				a.target_type = "api_key";
				a.target_id = key.id;
				if (store_key_insert(st, &key, &a) != STORE_OK)
					return -1;
			}
		}
	}
	return 0;
}

/* Row i of n, received at t. */
static void make_row(struct store_request_row *r, long i, int64_t t, int64_t now)
{
	memset(r, 0, sizeof *r);
	uint8_t rnd[10] = {0};
	for (int b = 0; b < 8; b++)
		rnd[2 + b] = (uint8_t)((uint64_t)i >> (8 * (7 - b)));
	char id[ULID_LEN + 1];
	ulid_encode((uint64_t)t, rnd, id);
	snprintf(r->request_id, sizeof r->request_id, "req_%s", id);
	r->received_at = t;
	bool busy = unit() < 0.05;
	int ki = busy ? 0 : 1 + (int)(unit() * unit() * (NKEYS - 1));
	int pi = ki / KEYS, oi = pi / PROJECTS;
	const char *region = regions[next() % 8], *agent = agents[next() % 12];
	bool refused = unit() < 0.01;
	if (busy) {
		double u = unit();
		bool leak = t > now - 2 * DAY_MS && u < 0.2;
		region = leak ? "NL" : u < 0.9 ? "US" : "DE";
		agent = leak ? "curl/8.4.0" : u < 0.6 ? "billing-sync/1.4" : "billing-sync/1.5";
		refused = leak && unit() < 0.3;
	}
	memcpy(r->org_id, org_ids[oi], sizeof r->org_id);
	memcpy(r->project_id, proj_ids[pi], sizeof r->project_id);
	memcpy(r->key_id, key_ids[ki], sizeof r->key_id);
	snprintf(r->method, sizeof r->method, "GET");
	snprintf(r->path, sizeof r->path, "/orders/%ld", i % 1000);
	snprintf(r->route, sizeof r->route, "%s", routes[busy ? next() % 3 : next() % 6]);
	uint64_t s = next() % 1000;
	r->status = refused ? 401 : s < 30 ? 404 : s < 35 ? 500 : 200;
	if (refused)
		snprintf(r->refusal, sizeof r->refusal, "wrong_secret");
	r->duration_ms = (int64_t)(next() % 50);
	snprintf(r->region, sizeof r->region, "%s", region);
	r->bytes_in = 0;
	r->bytes_out = 200 + (int64_t)(next() % 2000);
	snprintf(r->user_agent, sizeof r->user_agent, "%s", agent);
}

int main(int argc, char **argv)
{
	log_setup(LOG_WARN, false);
	if (argc < 3) {
		fprintf(stderr, "usage: incident_load STORE_URL N [BATCH]\n");
		return 2;
	}
	long n = strtol(argv[2], NULL, 10), batch = argc > 3 ? strtol(argv[3], NULL, 10) : 512;
	if (n < 1 || batch < 1 || batch > 4096) {
		fprintf(stderr, "incident_load: bad N or BATCH\n");
		return 2;
	}
	struct store *st = NULL;
	char err[512];
	if (store_open(argv[1], 1, &st, err, sizeof err) != STORE_OK ||
	    store_migrate(st, NULL) != STORE_OK) {
		fprintf(stderr, "incident_load: store: %s\n", err);
		return 1;
	}
	int64_t now = clock_now_ms();
	if (make_tenants(st, now) < 0) {
		fprintf(stderr, "incident_load: making tenants failed\n");
		return 1;
	}
	printf("busy_key %s\nbusy_project %s\n", key_ids[0], proj_ids[0]);
	fflush(stdout);
	struct store_request_row *rows = calloc((size_t)batch, sizeof *rows);
	int64_t start = now - 30 * DAY_MS, t0 = clock_mono_ms(), last = t0;
	for (long i = 0; i < n;) {
		int m = 0;
		for (; m < batch && i < n; m++, i++)
			make_row(&rows[m], i,
			         start + (int64_t)((double)i * (30.0 * DAY_MS) / (double)n), now);
		if (store_request_log_insert(st, rows, m) != STORE_OK) {
			fprintf(stderr, "incident_load: insert failed at row %ld\n", i);
			return 1;
		}
		if (clock_mono_ms() - last > 30000) {
			last = clock_mono_ms();
			fprintf(stderr, "incident_load: %ld rows, %.0f rows/s\n", i,
			        (double)i * 1000.0 / (double)(last - t0));
		}
	}
	int64_t ms = clock_mono_ms() - t0;
	int64_t count = 0;
	store_request_log_count(st, &count);
	printf("loaded %ld rows in %.1f s: %.0f rows/s (batch %ld); request_log holds %lld\n", n,
	       (double)ms / 1000.0, (double)n * 1000.0 / (double)(ms ? ms : 1), batch,
	       (long long)count);
	/* What serve's retention thread does at start, all at once: the usage series. */
	int64_t c0 = clock_mono_ms();
	int hours = 0;
	for (bool more = true; more;) {
		int h = 0;
		if (store_usage_compact(st, now, 60000, &h, &more) != STORE_OK) {
			fprintf(stderr, "incident_load: compacting the usage series failed\n");
			return 1;
		}
		hours += h;
	}
	printf("compacted %d hours into the usage series in %.1f s\n", hours,
	       (double)(clock_mono_ms() - c0) / 1000.0);
	free(rows);
	store_close(st);
	return 0;
}
