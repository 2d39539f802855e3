/*
 * kv_redis.c: the Redis kv backend (hiredis, blocking API), for several
 * gateway nodes that must share rate limits, idempotency records and change
 * notices.
 *
 * Connections: a bounded pool of POOL_SIZE connections, opened lazily. A
 * caller waits at most POOL_WAIT_MS for a free one. Connect and every
 * command time out after about a second. After a failed connect, a failure
 * on a fresh connection or a command that ran into the timeout (Redis
 * stopped, hung or cut off), every call fails fast for DOWN_BACKOFF_MS,
 * doubling up to DOWN_BACKOFF_MAX_MS while it lasts; then one caller probes
 * (a fresh connection and a PING, PROBE_TIMEOUT_MS each) while the others
 * keep failing fast. So an unreachable or unresponsive Redis costs the data
 * plane a KV_EUNAVAILABLE, not a wait per request. A connection that saw an
 * I/O error is dropped and reopened on next use; a command that failed
 * quickly on a reused (possibly stale) connection is retried once on a fresh
 * one, except idem_claim, where a second run would report our own claim as
 * in flight.
 *
 * Atomicity: every read-modify-write is one Lua script (EVALSHA, EVAL on
 * NOSCRIPT). GCRA runs the same math as gcra_step on the server's clock
 * (redis.call('TIME')), so every node agrees on now; the TAT is stored as
 * whole microseconds with PX = the step's TTL. An idempotency record is a
 * hash {s: i|d, f: fingerprint, c: status, t: content type, b: body}.
 *
 * Keys are the caller's key prefixed with "pcl:"; every key is written with
 * an expiry. Notices are PUBLISHed on "pcl:notices", or "pcl:notices:<db>"
 * for a database other than 0 (pub/sub ignores SELECT: deployments sharing
 * a server through separate databases must not hear each other). subscribe
 * starts a thread with its own connection that reconnects with exponential
 * backoff when Redis goes away, pings it to notice dead peers, delivers
 * KV_NOTICE_RESYNC after a gap, and stops when a byte arrives on its pipe
 * (close).
 *
 * Writing to a connection Redis has closed raises SIGPIPE: the process must
 * ignore it (main does).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/thread.h"
#include "crypto/hash.h"
#include "kv/gcra.h"
#include "kv/kv.h"
#include "kv/kv_internal.h"

#define POOL_SIZE           8
#define POOL_WAIT_MS        1000
#define IO_TIMEOUT_MS       1000 /* connect, and each command */
#define DOWN_BACKOFF_MS     250
#define DOWN_BACKOFF_MAX_MS 2000
#define PROBE_TIMEOUT_MS    200 /* connect, and the PING, while finding out whether Redis is back */
#define SUB_BACKOFF_MIN_MS  100
#define SUB_BACKOFF_MAX_MS  5000
#define SUB_PING_MS         5000
#define DEFAULT_PORT        6379
#define HOST_MAX            255
#define AUTH_MAX            255
#define DB_MAX              65535
#define KEY_PREFIX          "pcl:"
#define KEY_PREFIX_LEN      4
#define CHANNEL             "pcl:notices"
#define CHANNEL_MAX         32
#define SCRIPT_ARGS_MAX     10

/* KEYS[1]: TAT key. ARGV: T us, dvt us, limit, quantity. Returns {limited, ttl us, retry us}. */
static const char gcra_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local dvt = tonumber(ARGV[2])\n"
    "local limit = tonumber(ARGV[3])\n"
    "local q = tonumber(ARGV[4])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '')\n"
    "if tat == nil or tat < now then tat = now end\n"
    "if tat - now > dvt then tat = now + dvt end\n"
    "if q > limit then return {1, tat - now, -1} end\n"
    "local new_tat = tat + T * q\n"
    "local allow_at = new_tat - dvt\n"
    "if now < allow_at then return {1, tat - now, allow_at - now} end\n"
    "local ttl = new_tat - now\n"
    "if q > 0 and ttl > 0 then\n"
    "  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ttl / 1000))\n"
    "end\n"
    "return {0, ttl, -1}\n";

/* KEYS[1]: record. ARGV: fingerprint, ttl ms. Returns 0 (claimed) or {s, f, c, t, b}. */
static const char claim_lua[] = "local v = redis.call('HMGET', KEYS[1], 's', 'f', 'c', 't', 'b')\n"
                                "if v[1] then return v end\n"
                                "redis.call('DEL', KEYS[1])\n"
                                "redis.call('HSET', KEYS[1], 's', 'i', 'f', ARGV[1])\n"
                                "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "return 0\n";

/*
 * KEYS[1]: record. ARGV: fingerprint, status, body, ttl ms, has content
 * type (0/1), content type. Returns 1 (stored or already stored) or 0
 * (another request's record).
 */
static const char complete_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 's', 'f')\n"
    "if v[1] then\n"
    "  if v[2] ~= ARGV[1] then return 0 end\n"
    "  if v[1] == 'd' then return 1 end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 's', 'd', 'f', ARGV[1], 'c', ARGV[2], 'b', ARGV[3])\n"
    "if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 't', ARGV[6]) end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "return 1\n";

/* KEYS[1]: record. Deletes it only while in flight. */
static const char release_lua[] =
    "if redis.call('HGET', KEYS[1], 's') == 'i' then redis.call('DEL', KEYS[1]) end\n"
    "return 1\n";

struct script {
	const char *src;
	char sha[41]; /* hex SHA-1 of src: the EVALSHA name */
};

/* The same for every handle: filled once by scripts_init. */
static struct script scripts[] = {
    {gcra_lua, ""},
    {claim_lua, ""},
    {complete_lua, ""},
    {release_lua, ""},
};
enum { SCRIPT_GCRA, SCRIPT_CLAIM, SCRIPT_COMPLETE, SCRIPT_RELEASE };
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

struct slot {
	redisContext *ctx; /* NULL until connected, and after an I/O error */
	bool busy;
};

struct kv_redis {
	struct kv base; /* first: a struct kv * is a struct kv_redis * */
	char host[HOST_MAX + 1];
	int port;
	int db;
	char user[AUTH_MAX + 1];
	char password[AUTH_MAX + 1];
	bool has_auth;
	char channel[CHANNEL_MAX]; /* CHANNEL, or CHANNEL:<db> */

	pthread_mutex_t lock; /* guards slots, down_until_ms, backoff_ms, was_down, probing */
	pthread_cond_t freed;
	struct slot slots[POOL_SIZE];
	int64_t down_until_ms; /* clock_mono_ms: fail fast until then */
	int64_t backoff_ms;    /* the next fail-fast period: doubles while Redis stays away */
	bool was_down;
	bool probing; /* one caller is finding out whether Redis is back: the others fail fast */

	/* Subscriber thread: started by subscribe, stopped by close. */
	struct bg_thread sub_thread; /* under lock; stopped through stop_pipe */
	int stop_pipe[2];
	kv_notice_fn fn;
	void *fn_arg;
};

static struct kv_redis *rds(struct kv *kv)
{
	return (struct kv_redis *)kv;
}

/* --- connections -------------------------------------------------------- */

static bool reply_ok(const redisReply *rep)
{
	return rep && rep->type != REDIS_REPLY_ERROR;
}

static struct timeval timeout_of(int ms)
{
	return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/*
 * Open and prepare one connection (AUTH, SELECT when select_db), each step
 * timing out after timeout_ms; commands later after IO_TIMEOUT_MS. NULL on
 * failure.
 */
static redisContext *connect_ctx(struct kv_redis *r, bool select_db, int timeout_ms)
{
	struct timeval tv = timeout_of(timeout_ms);
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	redisReply *rep = NULL;

	if (!c || c->err)
		goto fail;
	if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK)
		goto fail;
	if (r->has_auth) {
		const char *argv[3] = {"AUTH", r->user, r->password};
		size_t lens[3] = {4, strlen(r->user), strlen(r->password)};
		if (r->user[0])
			rep = redisCommandArgv(c, 3, argv, lens);
		else
			rep = redisCommandArgv(c, 2, (const char *[]){"AUTH", r->password},
			                       (size_t[]){4, lens[2]});
		if (!reply_ok(rep)) {
			log_warn("kv redis: authentication to %s:%d failed", r->host, r->port);
			goto fail;
		}
		freeReplyObject(rep);
		rep = NULL;
	}
	if (select_db && r->db != 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", r->db);
		rep = redisCommandArgv(c, 2, (const char *[]){"SELECT", db},
		                       (size_t[]){6, strlen(db)});
		if (!reply_ok(rep))
			goto fail;
		freeReplyObject(rep);
		rep = NULL;
	}
	if (timeout_ms != IO_TIMEOUT_MS &&
	    redisSetTimeout(c, timeout_of(IO_TIMEOUT_MS)) != REDIS_OK)
		goto fail;
	return c;
fail:
	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
	return NULL;
}

/* Redis did not answer: fail fast for a while, longer each time. Under lock. */
static void mark_down_locked(struct kv_redis *r)
{
	if (r->backoff_ms < DOWN_BACKOFF_MS)
		r->backoff_ms = DOWN_BACKOFF_MS;
	r->down_until_ms = clock_mono_ms() + r->backoff_ms;
	r->backoff_ms =
	    r->backoff_ms * 2 > DOWN_BACKOFF_MAX_MS ? DOWN_BACKOFF_MAX_MS : r->backoff_ms * 2;
	if (!r->was_down)
		log_warn("kv redis: cannot reach %s:%d", r->host, r->port);
	r->was_down = true;
}

static void mark_down(struct kv_redis *r)
{
	pthread_mutex_lock(&r->lock);
	mark_down_locked(r);
	pthread_mutex_unlock(&r->lock);
}

/* A fresh connection that answers a PING within PROBE_TIMEOUT_MS, or NULL. */
static redisContext *probe_ctx(struct kv_redis *r)
{
	redisContext *c = connect_ctx(r, true, PROBE_TIMEOUT_MS);
	if (!c)
		return NULL;
	redisReply *rep = NULL;
	if (redisSetTimeout(c, timeout_of(PROBE_TIMEOUT_MS)) == REDIS_OK)
		rep = redisCommandArgv(c, 1, (const char *[]){"PING"}, (size_t[]){4});
	bool ok = reply_ok(rep) && redisSetTimeout(c, timeout_of(IO_TIMEOUT_MS)) == REDIS_OK;
	if (rep)
		freeReplyObject(rep);
	if (!ok) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/*
 * Take a free slot and a live connection on it. *fresh says whether the
 * connection was opened just now. KV_EUNAVAILABLE at once while Redis is
 * down (see the top of the file), or when no slot frees up in time or
 * Redis cannot be reached.
 */
static int pool_get(struct kv_redis *r, int *idx_out, redisContext **ctx_out, bool *fresh)
{
	struct timespec deadline;
	int idx = -1;

	deadline = clock_mono_deadline(POOL_WAIT_MS);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		if (clock_mono_ms() < r->down_until_ms || r->probing) {
			pthread_mutex_unlock(&r->lock);
			return KV_EUNAVAILABLE;
		}
		for (int i = 0; i < POOL_SIZE; i++) {
			if (r->slots[i].busy)
				continue;
			if (r->slots[i].ctx || idx < 0)
				idx = i;
			if (r->slots[i].ctx)
				break;
		}
		if (idx >= 0)
			break;
		if (pthread_cond_timedwait(&r->freed, &r->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&r->lock);
			return KV_EUNAVAILABLE;
		}
	}
	r->slots[idx].busy = true;
	redisContext *c = r->slots[idx].ctx;
	bool probe = r->was_down;
	if (probe)
		r->probing = true;
	pthread_mutex_unlock(&r->lock);

	*idx_out = idx;
	*fresh = false;
	if (probe && c) { /* a connection from before the outage proves nothing */
		redisFree(c);
		c = NULL;
	}
	if (!c) {
		c = probe ? probe_ctx(r) : connect_ctx(r, true, IO_TIMEOUT_MS);
		*fresh = true;
	}
	pthread_mutex_lock(&r->lock);
	r->probing = false;
	if (!c) {
		mark_down_locked(r);
		r->slots[idx].ctx = NULL;
		r->slots[idx].busy = false;
		pthread_cond_signal(&r->freed);
	} else if (probe) {
		log_info("kv redis: %s:%d reachable again", r->host, r->port);
		r->was_down = false;
		r->backoff_ms = DOWN_BACKOFF_MS;
	}
	pthread_mutex_unlock(&r->lock);
	if (!c)
		return KV_EUNAVAILABLE;
	*ctx_out = c;
	return KV_OK;
}

/* Give the slot back; a broken connection is closed (reopened on next use). */
static void pool_put(struct kv_redis *r, int idx, redisContext *c, bool broken)
{
	if (broken && c) {
		redisFree(c);
		c = NULL;
	}
	pthread_mutex_lock(&r->lock);
	r->slots[idx].ctx = c;
	r->slots[idx].busy = false;
	pthread_cond_signal(&r->freed);
	pthread_mutex_unlock(&r->lock);
}

/* Is rep an error reply starting with prefix? */
static bool error_is(const redisReply *rep, const char *prefix)
{
	size_t n = strlen(prefix);
	return rep && rep->type == REDIS_REPLY_ERROR && rep->len >= n &&
	       memcmp(rep->str, prefix, n) == 0;
}

static bool error_mentions(const redisReply *rep, const char *word)
{
	return rep && rep->type == REDIS_REPLY_ERROR && rep->str && strstr(rep->str, word);
}

/*
 * Run one command (argv[0] "EVALSHA" means a script: on NOSCRIPT it is sent
 * again as EVAL with script's source). Retries once on a fresh connection
 * when a reused one fails quickly with an I/O error and retry_safe is set; a
 * failure on a fresh connection, or one that took about the timeout, marks
 * Redis down (see the top of the file). On KV_OK
 * *out is a reply that is not an error (free it); a WRONGTYPE error gives
 * KV_EINVAL, anything else KV_EUNAVAILABLE.
 */
static int run(struct kv_redis *r, const struct script *script, int argc, const char **argv,
               const size_t *lens, bool retry_safe, redisReply **out)
{
	redisReply *rep = NULL;
	int rc = KV_EUNAVAILABLE;

	*out = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		int idx;
		redisContext *c;
		bool fresh;
		rc = pool_get(r, &idx, &c, &fresh);
		if (rc)
			return rc;
		int64_t t0 = clock_mono_ms();
		rep = redisCommandArgv(c, argc, argv, lens);
		if (script && argc <= SCRIPT_ARGS_MAX && error_is(rep, "NOSCRIPT")) {
			const char *eargv[SCRIPT_ARGS_MAX];
			size_t elens[SCRIPT_ARGS_MAX];
			memcpy(eargv, argv, (size_t)argc * sizeof(*argv));
			memcpy(elens, lens, (size_t)argc * sizeof(*lens));
			eargv[0] = "EVAL";
			elens[0] = 4;
			eargv[1] = script->src;
			elens[1] = strlen(script->src);
			freeReplyObject(rep);
			rep = redisCommandArgv(c, argc, eargv, elens);
		}
		if (!rep) {
			/*
			 * Quickly on a reused connection: a stale one (Redis restarted).
			 * On a fresh one, or after about the timeout: Redis is not answering.
			 */
			bool down = fresh || clock_mono_ms() - t0 >= IO_TIMEOUT_MS / 2;
			bool retry = retry_safe && !down && attempt == 0;
			log_debug("kv redis: I/O error: %s%s", c->errstr,
			          retry ? ", retrying" : "");
			pool_put(r, idx, c, true);
			if (down)
				mark_down(r);
			if (retry)
				continue;
			return KV_EUNAVAILABLE;
		}
		pool_put(r, idx, c, false);
		break;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		rc = error_mentions(rep, "WRONGTYPE") ? KV_EINVAL : KV_EUNAVAILABLE;
		if (rc == KV_EUNAVAILABLE)
			log_warn("kv redis: command failed: %.200s", rep->str);
		freeReplyObject(rep);
		return rc;
	}
	*out = rep;
	return KV_OK;
}

/* Build "pcl:<key>" into buf (KEY_PREFIX_LEN + KV_KEY_MAX + 1 bytes). */
static size_t prefixed(char *buf, const char *key)
{
	size_t n = strlen(key);
	memcpy(buf, KEY_PREFIX, KEY_PREFIX_LEN);
	memcpy(buf + KEY_PREFIX_LEN, key, n);
	buf[KEY_PREFIX_LEN + n] = '\0';
	return KEY_PREFIX_LEN + n;
}

static const redisReply *element(const redisReply *rep, size_t i)
{
	return rep->type == REDIS_REPLY_ARRAY && i < rep->elements ? rep->element[i] : NULL;
}

/* --- operations --------------------------------------------------------- */

static int redis_ping(struct kv *kv)
{
	redisReply *rep;
	int rc = run(rds(kv), NULL, 1, (const char *[]){"PING"}, (size_t[]){4}, true, &rep);
	if (rc)
		return KV_EUNAVAILABLE;
	freeReplyObject(rep);
	return KV_OK;
}

static int redis_gcra(struct kv *kv, const char *key, const struct gcra_params *p, int64_t now_ms,
                      int64_t quantity, struct gcra_result *out)
{
	int rc = kv_check_gcra(key, p, now_ms, quantity, out);
	if (rc)
		return rc;
	struct kv_redis *r = rds(kv);
	char k[KEY_PREFIX_LEN + KV_KEY_MAX + 1];
	char a_t[24], a_dvt[24], a_limit[24], a_q[24];
	int64_t t_us, dvt_us;
	redisReply *rep;

	gcra_intervals(p, &t_us, &dvt_us);
	snprintf(a_t, sizeof(a_t), "%" PRId64, t_us);
	snprintf(a_dvt, sizeof(a_dvt), "%" PRId64, dvt_us);
	snprintf(a_limit, sizeof(a_limit), "%" PRId64, p->max_burst + 1);
	snprintf(a_q, sizeof(a_q), "%" PRId64, quantity);
	const char *argv[] = {"EVALSHA", scripts[SCRIPT_GCRA].sha, "1", k, a_t, a_dvt, a_limit,
	                      a_q};
	size_t lens[] = {
	    7, 40, 1, prefixed(k, key), strlen(a_t), strlen(a_dvt), strlen(a_limit), strlen(a_q)};
	rc = run(r, &scripts[SCRIPT_GCRA], 8, argv, lens, true, &rep);
	if (rc)
		return rc;
	const redisReply *lim = element(rep, 0), *ttl = element(rep, 1), *retry = element(rep, 2);
	if (!lim || !ttl || !retry || lim->type != REDIS_REPLY_INTEGER ||
	    ttl->type != REDIS_REPLY_INTEGER || retry->type != REDIS_REPLY_INTEGER) {
		rc = KV_EUNAVAILABLE;
		goto out;
	}
	gcra_result_fill(p, lim->integer != 0, ttl->integer, retry->integer, out);
out:
	freeReplyObject(rep);
	return rc;
}

/* Copy a bulk string reply element into a fresh NUL-terminated string. */
static char *dup_bulk(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_STRING ? xstrndup(e->str, e->len) : NULL;
}

static int parse_record(const redisReply *rep, struct kv_idem_record *out)
{
	const redisReply *s = element(rep, 0), *f = element(rep, 1), *c = element(rep, 2),
	                 *b = element(rep, 4);
	int64_t status = 0;

	if (!s || !f || s->type != REDIS_REPLY_STRING || s->len != 1 ||
	    f->type != REDIS_REPLY_STRING || f->len != 64)
		return KV_EUNAVAILABLE;
	memcpy(out->fingerprint, f->str, 64);
	out->fingerprint[64] = '\0';
	if (!kv_fingerprint_ok(out->fingerprint))
		return KV_EUNAVAILABLE;
	if (s->str[0] == 'i') {
		out->state = KV_IDEM_IN_FLIGHT;
		return KV_OK;
	}
	if (s->str[0] != 'd' || !c || c->type != REDIS_REPLY_STRING ||
	    kv_parse_num(c->str, c->len, 100, 599, &status) != 0)
		return KV_EUNAVAILABLE;
	out->state = KV_IDEM_DONE;
	out->status = (int)status;
	out->content_type = dup_bulk(element(rep, 3));
	if (b && b->type == REDIS_REPLY_STRING && b->len > 0) {
		out->body = xstrndup(b->str, b->len);
		out->body_len = b->len;
	}
	return KV_OK;
}

static int redis_idem_claim(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
                            struct kv_idem_record *out)
{
	if (kv_check_claim(key, fingerprint, ttl_s, out) != KV_OK)
		return KV_EINVAL;
	struct kv_redis *r = rds(kv);
	char k[KEY_PREFIX_LEN + KV_KEY_MAX + 1];
	char ttl[24];
	redisReply *rep;

	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s * 1000);
	const char *argv[] = {"EVALSHA", scripts[SCRIPT_CLAIM].sha, "1", k, fingerprint, ttl};
	size_t lens[] = {7, 40, 1, prefixed(k, key), 64, strlen(ttl)};
	/* Not retry_safe: a replay of a claim that went through would look in flight. */
	int rc = run(r, &scripts[SCRIPT_CLAIM], 6, argv, lens, false, &rep);
	if (rc)
		return rc;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
		out->state = KV_IDEM_CLAIMED;
		memcpy(out->fingerprint, fingerprint, sizeof(out->fingerprint));
	} else {
		rc = parse_record(rep, out);
		if (rc) {
			log_warn("kv redis: malformed idempotency record");
			kv_idem_record_clear(out);
		}
	}
	freeReplyObject(rep);
	return rc;
}

static int redis_idem_complete(struct kv *kv, const char *key, const char *fingerprint, int status,
                               const char *content_type, const char *body, size_t body_len,
                               int ttl_s)
{
	int rc = kv_check_complete(key, fingerprint, status, content_type, body, body_len, ttl_s);
	if (rc)
		return rc;
	struct kv_redis *r = rds(kv);
	char k[KEY_PREFIX_LEN + KV_KEY_MAX + 1];
	char st[8], ttl[24];
	redisReply *rep;

	snprintf(st, sizeof(st), "%d", status);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s * 1000);
	const char *argv[] = {"EVALSHA",
	                      scripts[SCRIPT_COMPLETE].sha,
	                      "1",
	                      k,
	                      fingerprint,
	                      st,
	                      body ? body : "",
	                      ttl,
	                      content_type ? "1" : "0",
	                      content_type ? content_type : ""};
	size_t lens[] = {7,        40,
	                 1,        prefixed(k, key),
	                 64,       strlen(st),
	                 body_len, strlen(ttl),
	                 1,        content_type ? strlen(content_type) : 0};
	rc = run(r, &scripts[SCRIPT_COMPLETE], 10, argv, lens, true, &rep);
	if (rc)
		return rc;
	if (rep->type != REDIS_REPLY_INTEGER)
		rc = KV_EUNAVAILABLE;
	else if (rep->integer == 0)
		rc = KV_ECONFLICT;
	freeReplyObject(rep);
	return rc;
}

static int redis_idem_release(struct kv *kv, const char *key)
{
	if (!kv_key_ok(key))
		return KV_EINVAL;
	struct kv_redis *r = rds(kv);
	char k[KEY_PREFIX_LEN + KV_KEY_MAX + 1];
	redisReply *rep;
	const char *argv[] = {"EVALSHA", scripts[SCRIPT_RELEASE].sha, "1", k};
	size_t lens[] = {7, 40, 1, prefixed(k, key)};

	int rc = run(r, &scripts[SCRIPT_RELEASE], 4, argv, lens, true, &rep);
	if (rc)
		return rc;
	freeReplyObject(rep);
	return KV_OK;
}

static int redis_publish(struct kv *kv, const char *message)
{
	if (!kv_notice_ok(message))
		return KV_EINVAL;
	redisReply *rep;
	struct kv_redis *r = rds(kv);
	const char *argv[] = {"PUBLISH", r->channel, message};
	size_t lens[] = {7, strlen(r->channel), strlen(message)};
	/* A duplicate notice only refreshes a cache twice: safe to retry. */
	int rc = run(r, NULL, 3, argv, lens, true, &rep);
	if (rc)
		return rc;
	freeReplyObject(rep);
	return KV_OK;
}

/* --- subscriber --------------------------------------------------------- */

/* Wait up to ms for the stop byte; true when close asked us to stop. */
static bool stop_wait(struct kv_redis *r, int ms)
{
	struct pollfd pfd = {.fd = r->stop_pipe[0], .events = POLLIN};
	int n;
	do {
		n = poll(&pfd, 1, ms);
	} while (n < 0 && errno == EINTR);
	return n > 0;
}

static void deliver(struct kv_redis *r, const redisReply *rep, bool *awaiting_pong)
{
	const redisReply *kind = element(rep, 0), *payload = element(rep, 2);
	if (!kind || kind->type != REDIS_REPLY_STRING)
		return;
	if (kind->len == 4 && memcmp(kind->str, "pong", 4) == 0) {
		*awaiting_pong = false;
		return;
	}
	if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0 || !payload ||
	    payload->type != REDIS_REPLY_STRING)
		return;
	/* Bounded, NUL-free text only: anything else is not ours. */
	if (payload->len < 1 || payload->len > KV_NOTICE_MAX ||
	    strlen(payload->str) != payload->len)
		return;
	r->fn(payload->str, r->fn_arg);
}

static bool send_ping(redisContext *c)
{
	int done = 0;
	if (redisAppendCommandArgv(c, 1, (const char *[]){"PING"}, (size_t[]){4}) != REDIS_OK)
		return false;
	while (!done) {
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return false;
	}
	return true;
}

/* Read notices until the connection fails (returns false) or close (true). */
static bool read_notices(struct kv_redis *r, redisContext *c)
{
	bool awaiting_pong = false;

	for (;;) {
		void *reply = NULL;
		if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
			return false;
		if (reply) {
			deliver(r, reply, &awaiting_pong);
			freeReplyObject(reply);
			continue;
		}
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
		                        {.fd = r->stop_pipe[0], .events = POLLIN}};
		int n = poll(pfd, 2, SUB_PING_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (pfd[1].revents)
			return true;
		if (n == 0) {
			/* Quiet for a while: a PING tells a dead peer from a calm one. */
			if (awaiting_pong || !send_ping(c))
				return false;
			awaiting_pong = true;
			continue;
		}
		if (redisBufferRead(c) != REDIS_OK)
			return false;
	}
}

/* bg_thread_stop's interrupt: the subscriber sleeps in poll(2) on stop_pipe. */
static void stop_subscriber(void *arg)
{
	struct kv_redis *r = arg;
	ssize_t n;
	do {
		n = write(r->stop_pipe[1], "x", 1);
	} while (n < 0 && errno == EINTR);
}

/* The subscriber thread (lock held on entry and return, not in between). */
static void subscriber_main(struct bg_thread *t, void *arg)
{
	struct kv_redis *r = arg;
	int backoff = SUB_BACKOFF_MIN_MS;
	bool gap = false; /* notices may have been missed since the last subscription */

	(void)t;
	pthread_mutex_unlock(&r->lock);
	while (!stop_wait(r, 0)) {
		redisContext *c = connect_ctx(r, false, IO_TIMEOUT_MS);
		redisReply *rep = NULL;
		if (c) {
			rep = redisCommandArgv(c, 2, (const char *[]){"SUBSCRIBE", r->channel},
			                       (size_t[]){9, strlen(r->channel)});
		}
		if (reply_ok(rep)) {
			freeReplyObject(rep);
			rep = NULL;
			if (gap) {
				log_info("kv redis: notice subscription restored");
				r->fn(KV_NOTICE_RESYNC, r->fn_arg);
			}
			backoff = SUB_BACKOFF_MIN_MS;
			if (read_notices(r, c)) {
				redisFree(c);
				break;
			}
			log_warn("kv redis: notice subscription lost; reconnecting");
		}
		if (rep)
			freeReplyObject(rep);
		if (c)
			redisFree(c);
		gap = true;
		if (stop_wait(r, backoff))
			break;
		backoff = backoff * 2 > SUB_BACKOFF_MAX_MS ? SUB_BACKOFF_MAX_MS : backoff * 2;
	}
	pthread_mutex_lock(&r->lock);
}

static int redis_subscribe(struct kv *kv, kv_notice_fn fn, void *arg)
{
	struct kv_redis *r = rds(kv);
	int rc = KV_OK;

	if (!fn)
		return KV_EINVAL;
	pthread_mutex_lock(&r->lock);
	if (bg_thread_started(&r->sub_thread)) {
		rc = KV_EINVAL;
		goto out;
	}
	if (pipe2(r->stop_pipe, O_CLOEXEC) != 0) {
		rc = KV_EUNAVAILABLE;
		goto out;
	}
	r->fn = fn;
	r->fn_arg = arg;
	if (bg_thread_start(&r->sub_thread, "kv-redis-sub", &r->lock, subscriber_main, r) != 0) {
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
		rc = KV_EUNAVAILABLE;
		goto out;
	}
	bg_thread_set_interrupt(&r->sub_thread, stop_subscriber);
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* --- open / close ------------------------------------------------------- */

/* Percent-decode n bytes at s into out (cap bytes, NUL-terminated). 0 or -1. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = str_hex_digit(s[i + 1]), lo = str_hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static bool host_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '-';
}

/* Parse "redis://[[user]:password@]host[:port][/db]" into r. 0 or -1. */
static int parse_url(const char *url, struct kv_redis *r)
{
	static const char prefix[] = "redis://";
	const char *s = url + sizeof(prefix) - 1;
	int64_t v;

	if (strncmp(url, prefix, sizeof(prefix) - 1) != 0 || strpbrk(s, "?#"))
		return -1;
	const char *slash = strchr(s, '/');
	const char *auth_end = slash ? slash : s + strlen(s);
	const char *at = memchr(s, '@', (size_t)(auth_end - s));
	if (at) {
		const char *colon = memchr(s, ':', (size_t)(at - s));
		if (!colon || pct_decode(s, (size_t)(colon - s), r->user, sizeof(r->user)) != 0 ||
		    pct_decode(colon + 1, (size_t)(at - colon - 1), r->password,
		               sizeof(r->password)) != 0 ||
		    r->password[0] == '\0')
			return -1;
		r->has_auth = true;
		s = at + 1;
	}

	const char *host = s, *host_end;
	if (*s == '[') {
		host = s + 1;
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end)
			return -1;
		for (const char *p = host; p < host_end; p++) {
			if (!(str_hex_digit(*p) >= 0 || *p == ':' || *p == '.'))
				return -1;
		}
		s = host_end + 1;
	} else {
		while (s < auth_end && host_char(*s))
			s++;
		host_end = s;
	}
	size_t host_len = (size_t)(host_end - host);
	if (host_len < 1 || host_len > HOST_MAX)
		return -1;
	memcpy(r->host, host, host_len);
	r->host[host_len] = '\0';

	r->port = DEFAULT_PORT;
	if (s < auth_end && *s == ':') {
		s++;
		if (kv_parse_num(s, (size_t)(auth_end - s), 1, 65535, &v) != 0)
			return -1;
		r->port = (int)v;
		s = auth_end;
	}
	if (s != auth_end)
		return -1;

	r->db = 0;
	if (slash && slash[1] != '\0') {
		if (kv_parse_num(slash + 1, strlen(slash + 1), 0, DB_MAX, &v) != 0)
			return -1;
		r->db = (int)v;
	}
	return 0;
}

static void scripts_init(void)
{
	for (size_t k = 0; k < sizeof(scripts) / sizeof(scripts[0]); k++) {
		struct script *s = &scripts[k];
		uint8_t d[SHA1_LEN];
		sha1(s->src, strlen(s->src), d);
		hex_encode(d, sizeof(d), s->sha);
	}
}

static void redis_close(struct kv *kv)
{
	struct kv_redis *r = rds(kv);

	if (bg_thread_started(&r->sub_thread)) {
		bg_thread_stop(&r->sub_thread);
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
	}
	for (int i = 0; i < POOL_SIZE; i++) {
		if (r->slots[i].ctx)
			redisFree(r->slots[i].ctx);
	}
	pthread_cond_destroy(&r->freed);
	pthread_mutex_destroy(&r->lock);
	explicit_bzero(r->password, sizeof(r->password));
	free(r);
}

static int redis_open(const char *url, struct kv **out)
{
	struct kv_redis *r = xcalloc(1, sizeof(*r));

	if (parse_url(url, r) != 0) {
		explicit_bzero(r->password, sizeof(r->password));
		free(r);
		return KV_EINVAL;
	}
	r->base.backend = &kv_redis_backend;
	r->backoff_ms = DOWN_BACKOFF_MS;
	if (r->db == 0)
		snprintf(r->channel, sizeof(r->channel), "%s", CHANNEL);
	else
		snprintf(r->channel, sizeof(r->channel), "%s:%d", CHANNEL, r->db);
	pthread_once(&scripts_once, scripts_init);

	pthread_mutex_init(&r->lock, NULL);
	clock_cond_init_mono(&r->freed);

	*out = &r->base;
	return KV_OK;
}

const struct kv_backend kv_redis_backend = {
    .scheme = "redis",
    .remote = true,
    .open = redis_open,
    .close = redis_close,
    .ping = redis_ping,
    .gcra = redis_gcra,
    .idem_claim = redis_idem_claim,
    .idem_complete = redis_idem_complete,
    .idem_release = redis_idem_release,
    .publish = redis_publish,
    .subscribe = redis_subscribe,
};
