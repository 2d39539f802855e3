/*
 * changes.c: change notices and the state-version safety net (see
 * changes.h). Notices are "<node> <kind> <id>" strings; a node ignores its
 * own, having already applied the change locally.
 */
#include "app/changes.h"

#include "auth/keycache.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/ulid.h"
#include "policy/killswitch.h"
#include "policy/orgcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS     1000
#define RECHECK_MAX 100000

struct changefeed {
	char node[ULID_LEN + 1];
	pthread_t poller;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	int64_t version;
};

int changes_reload_kills(struct app *app)
{
	struct store_kill *kills = NULL;
	int n = 0;
	int rc = store_kill_list(app->store, &kills, &n);
	if (rc == STORE_OK)
		killset_load(app->kills, kills, n);
	free(kills);
	return rc;
}

static void reload_key(struct app *app, const char *key_id)
{
	struct store_key row;
	int rc = store_key_get(app->store, key_id, &row);
	if (rc == STORE_OK)
		keycache_refresh(app->keys, &row);
	else if (rc == STORE_ENOTFOUND)
		keycache_invalidate(app->keys, key_id);
	else
		keycache_invalidate(app->keys, key_id); /* safest: force a reload later */
	explicit_bzero(&row, sizeof row);
}

static void publish(struct app *app, const char *kind, const char *id)
{
	char msg[96];
	snprintf(msg, sizeof msg, "%s %s %s", app->feed->node, kind, id && *id ? id : "-");
	if (kv_publish(app->kv, msg) != KV_OK)
		log_warn("change notice not published (kv unavailable): other nodes will see it "
		         "within a second");
}

void changes_key(struct app *app, const char *key_id)
{
	reload_key(app, key_id);
	publish(app, "key", key_id);
}

void changes_kills(struct app *app)
{
	if (changes_reload_kills(app) != STORE_OK)
		log_warn("kill switches not reloaded (store unavailable)");
	publish(app, "kills", NULL);
}

void changes_org(struct app *app, const char *org_id)
{
	orgcache_invalidate(app->orgs, org_id);
	publish(app, "org", org_id);
}

/* The version moved without (or despite) notices: re-check everything cached. */
static void recheck_all(struct app *app)
{
	changes_reload_kills(app);
	orgcache_clear(app->orgs);
	char(*ids)[STORE_ID_LEN + 1] = xcalloc(RECHECK_MAX, sizeof *ids);
	size_t n = keycache_ids(app->keys, ids, RECHECK_MAX);
	for (size_t i = 0; i < n; i++)
		reload_key(app, ids[i]);
	free(ids);
}

static void on_notice(const char *message, void *arg)
{
	struct app *app = arg;
	char node[40], kind[16], id[40];
	const char *p = message;
	size_t n = strcspn(p, " ");
	if (n >= sizeof node)
		return;
	memcpy(node, p, n);
	node[n] = '\0';
	p += n + (p[n] == ' ');
	n = strcspn(p, " ");
	if (n >= sizeof kind)
		return;
	memcpy(kind, p, n);
	kind[n] = '\0';
	p += n + (p[n] == ' ');
	snprintf(id, sizeof id, "%s", p);
	if (strcmp(message, KV_NOTICE_RESYNC) == 0) {
		recheck_all(app); /* notices may have been lost while disconnected */
		return;
	}
	if (strcmp(node, app->feed->node) == 0)
		return;
	if (strcmp(kind, "key") == 0)
		reload_key(app, id);
	else if (strcmp(kind, "kills") == 0)
		changes_reload_kills(app);
	else if (strcmp(kind, "org") == 0)
		orgcache_invalidate(app->orgs, id);
}

static void *poller(void *arg)
{
	struct app *app = arg;
	struct changefeed *f = app->feed;
	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += POLL_MS / 1000;
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
		if (f->stopping)
			break;
		pthread_mutex_unlock(&f->lock);
		int64_t v;
		int rc = store_state_version(app->store, &v);
		if (rc == STORE_OK) {
			if (atomic_exchange(&app->store_down_since, 0) != 0)
				log_event(LOG_INFO, "store_recovered", NULL);
			if (v != f->version) {
				f->version = v;
				recheck_all(app);
			}
		} else {
			int64_t zero = 0;
			if (atomic_compare_exchange_strong(&app->store_down_since, &zero,
			                                   clock_now_ms()))
				log_event(LOG_ERROR, "store_unreachable", "note",
				          "cached keys keep working for [auth] stale_grace_seconds",
				          NULL);
		}
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int changes_start(struct app *app)
{
	struct changefeed *f = xcalloc(1, sizeof *f);
	ulid_new(f->node);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	app->feed = f;
	store_state_version(app->store, &f->version);
	if (changes_reload_kills(app) != STORE_OK)
		return -1;
	if (kv_subscribe(app->kv, on_notice, app) != KV_OK)
		log_warn("change notices unavailable: relying on the one-second version check");
	if (pthread_create(&f->poller, NULL, poller, app) != 0)
		fatal("cannot start the change poller");
	pthread_setname_np(f->poller, "changes");
	return 0;
}

void changes_stop(struct app *app)
{
	struct changefeed *f = app->feed;
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->poller, NULL);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
	app->feed = NULL;
}
