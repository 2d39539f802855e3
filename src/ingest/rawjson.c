/*
 * rawjson.c: the span tree of rawjson.h. A recursive descent over the
 * bytes, one node per value from the arena; a string is scanned once (its
 * UTF-8 and escapes checked, its compact length counted) and decoded only
 * when it holds a backslash; a number is checked against jansson's limits
 * without being converted unless it could overflow. Objects check repeated
 * names by comparing with the members before (with a keyed hash once an
 * object is past a few members, so a large object is not quadratic).
 */
#include "ingest/rawjson.h"

#include "core/json.h"
#include "core/siphash.h"
#include "crypto/random.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	struct arena *a;
	const unsigned char *p, *start, *end;
	const unsigned char *err; /* where the first error was found */
};

static struct rj *fail(struct parser *ps, const unsigned char *at)
{
	if (!ps->err)
		ps->err = at;
	return NULL;
}

static struct rj *new_node(struct arena *a, uint8_t type)
{
	struct rj *v = arena_alloc(a, sizeof *v);
	memset(v, 0, sizeof *v);
	v->type = type;
	return v;
}

/* Skip JSON whitespace; true when there was some. */
static bool skip_ws(struct parser *ps)
{
	const unsigned char *p = ps->p;
	while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	bool any = p != ps->p;
	ps->p = p;
	return any;
}

static int hex4(const unsigned char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The escape at p (a backslash): its code point and length, or 0 when invalid. */
static size_t escape_at(const unsigned char *p, const unsigned char *end, int32_t *cp)
{
	if (end - p < 2)
		return 0;
	switch (p[1]) {
	case '"':
	case '\\':
	case '/':
		*cp = p[1];
		return 2;
	case 'b':
		*cp = '\b';
		return 2;
	case 'f':
		*cp = '\f';
		return 2;
	case 'n':
		*cp = '\n';
		return 2;
	case 'r':
		*cp = '\r';
		return 2;
	case 't':
		*cp = '\t';
		return 2;
	case 'u':
		break;
	default:
		return 0;
	}
	int v = end - p >= 6 ? hex4(p + 2) : -1;
	if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF)) /* \u0000, a lone low surrogate */
		return 0;
	if (v < 0xD800 || v > 0xDBFF) {
		*cp = v;
		return 6;
	}
	if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
		return 0;
	int lo = hex4(p + 8);
	if (lo < 0xDC00 || lo > 0xDFFF)
		return 0;
	*cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
	return 12;
}

/* The bytes of cp as jansson's compact dump writes it. */
static uint32_t written_len(int32_t cp)
{
	if (cp == '"' || cp == '\\' || cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' ||
	    cp == '\t')
		return 2;
	if (cp < 0x20)
		return 6;
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static size_t utf8_put(char *d, int32_t cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * The string at ps->p (its opening quote): *text and *len its content (the
 * bytes as sent, or decoded into the arena and NUL-terminated when *esc),
 * *clen its compact length as written, quotes included. false on an error.
 */
static bool scan_string(struct parser *ps, const char **text, uint32_t *len, bool *esc,
                        uint32_t *clen)
{
	const unsigned char *s = ps->p + 1, *q = s, *end = ps->end;
	size_t cl = 2;
	bool bs = false;
	for (;;) {
		const unsigned char *run = q;
		while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
			q++;
		cl += (size_t)(q - run);
		if (q >= end) {
			fail(ps, q);
			return false;
		}
		int32_t cp;
		size_t n;
		if (*q == '"')
			break;
		if (*q == '\\') {
			n = escape_at(q, end, &cp);
			bs = true;
		} else if (*q < 0x20) {
			n = 0;
		} else {
			unsigned char buf[4] = {0};
			size_t want = *q >= 0xF0 ? 4 : *q >= 0xE0 ? 3 : 2;
			if ((size_t)(end - q) < want) {
				fail(ps, q);
				return false;
			}
			memcpy(buf, q, want);
			n = json_utf8_next(buf, &cp);
			if (n != want)
				n = 0;
		}
		if (!n) {
			fail(ps, q);
			return false;
		}
		cl += written_len(cp);
		q += n;
	}
	size_t raw = (size_t)(q - s);
	ps->p = q + 1;
	if (cl > UINT32_MAX || raw > UINT32_MAX) {
		fail(ps, q);
		return false;
	}
	*clen = (uint32_t)cl;
	*esc = bs;
	if (!bs) {
		*text = (const char *)s;
		*len = (uint32_t)raw;
		return true;
	}
	/* Decoded is never longer than as sent. */
	char *d = arena_alloc(ps->a, raw + 1);
	size_t o = 0;
	for (const unsigned char *r = s; r < q;) {
		if (*r != '\\') {
			d[o++] = (char)*r++;
			continue;
		}
		int32_t cp = 0;
		r += escape_at(r, q, &cp);
		o += utf8_put(d + o, cp);
	}
	d[o] = '\0';
	*text = d;
	*len = (uint32_t)o;
	return true;
}

/*
 * A number: RFC 8259's grammar; an integer within int64 (jansson's strtoll
 * range check), a real that does not overflow a double (jansson's strtod
 * check). The text is kept as it is.
 */
static struct rj *parse_number(struct parser *ps)
{
	const unsigned char *st = ps->p, *q = st, *end = ps->end;
	bool neg = false, real = false, exp = false;
	if (*q == '-') {
		neg = true;
		q++;
	}
	const unsigned char *digits = q;
	if (q >= end || *q < '0' || *q > '9')
		return fail(ps, q);
	if (*q == '0')
		q++;
	else
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	size_t int_digits = (size_t)(q - digits);
	if (q < end && *q == '.') {
		q++;
		if (q >= end || *q < '0' || *q > '9')
			return fail(ps, q);
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		real = true;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q >= end || *q < '0' || *q > '9')
			return fail(ps, q);
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		real = exp = true;
	}
	size_t n = (size_t)(q - st);
	if (n > UINT32_MAX)
		return fail(ps, st);
	if (!real && int_digits >= 19 &&
	    (int_digits > 19 ||
	     memcmp(digits, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
		return fail(ps, st); /* jansson: too big an integer */
	if (real && (exp || int_digits > 300)) {
		/* Only these can pass DBL_MAX. */
		char *t = arena_alloc(ps->a, n + 1);
		memcpy(t, st, n);
		t[n] = '\0';
		errno = 0;
		double d = strtod(t, NULL);
		if (errno == ERANGE && isinf(d))
			return fail(ps, st); /* jansson: real number overflow */
	}
	struct rj *v = new_node(ps->a, RJ_NUMBER);
	v->text = (const char *)st;
	v->text_len = (uint32_t)n;
	v->clen = (uint32_t)n;
	ps->p = q;
	return v;
}

static struct rj *parse_literal(struct parser *ps, const char *word, uint8_t type)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, ps->p);
	ps->p += n;
	struct rj *v = new_node(ps->a, type);
	v->clen = (uint32_t)n;
	return v;
}

static struct rj *parse_value(struct parser *ps, int depth);

static void append(struct rj *parent, struct rj *v)
{
	v->parent = parent;
	if (parent->last)
		parent->last->next = v;
	else
		parent->kids = v;
	parent->last = v;
	parent->n++;
}

/* The end of a container at ps->p (its closing bracket): its span, length and verbatim. */
static struct rj *close_container(struct parser *ps, struct rj *v, const unsigned char *open,
                                  size_t clen, bool verbatim)
{
	ps->p++;
	size_t span = (size_t)(ps->p - open);
	if (clen > UINT32_MAX || span > UINT32_MAX)
		return fail(ps, open);
	v->span = (const char *)open;
	v->span_len = (uint32_t)span;
	v->clen = (uint32_t)clen;
	v->verbatim = verbatim && clen == span;
	return v;
}

/*
 * After the element or member e: whether the container stays verbatim (e
 * written as sent, no whitespace around), then 0 after a ',' (the next one
 * follows), 1 at the closer (not consumed), -1 on an error.
 */
static int after_item(struct parser *ps, const struct rj *e, bool *verbatim, unsigned char closer)
{
	bool as_sent = e->type == RJ_STRING                          ? !e->esc
	               : e->type == RJ_ARRAY || e->type == RJ_OBJECT ? e->verbatim
	                                                             : true;
	*verbatim = !skip_ws(ps) && *verbatim && as_sent;
	if (ps->p >= ps->end || (*ps->p != closer && *ps->p != ',')) {
		fail(ps, ps->p);
		return -1;
	}
	if (*ps->p == closer)
		return 1;
	ps->p++;
	*verbatim = !skip_ws(ps) && *verbatim;
	return 0;
}

static struct rj *parse_array(struct parser *ps, int depth)
{
	const unsigned char *open = ps->p++;
	struct rj *v = new_node(ps->a, RJ_ARRAY);
	size_t clen = 2;
	bool verbatim = !skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']')
		return close_container(ps, v, open, clen, verbatim);
	for (;;) {
		struct rj *e = parse_value(ps, depth + 1);
		if (!e)
			return NULL;
		append(v, e);
		clen += e->clen + (v->n > 1);
		int next = after_item(ps, e, &verbatim, ']');
		if (next != 0)
			return next < 0 ? NULL : close_container(ps, v, open, clen, verbatim);
	}
}

/* The process's key for the member-name hash (siphash: names come from the network). */
static uint64_t hash_k0, hash_k1;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static void hash_key_init(void)
{
	uint64_t k[2];
	crypto_random(k, sizeof k);
	hash_k0 = k[0];
	hash_k1 = k[1];
}

#define LINEAR_MEMBERS 16 /* up to this many members, repeats are found by comparing */

struct name_set {
	struct rj **slot;
	size_t cap; /* a power of two, at least twice the members */
};

static size_t name_slot(const struct name_set *h, const struct rj *m)
{
	size_t i = (size_t)siphash24(m->key, m->key_len, hash_k0, hash_k1) & (h->cap - 1);
	while (h->slot[i] && !(h->slot[i]->key_len == m->key_len &&
	                       memcmp(h->slot[i]->key, m->key, m->key_len) == 0))
		i = (i + 1) & (h->cap - 1);
	return i;
}

/* A member of the same name as m in obj (m not yet in it)? */
static bool repeated(struct arena *a, struct name_set *h, const struct rj *obj, struct rj *m)
{
	if (obj->n < LINEAR_MEMBERS) {
		for (const struct rj *k = obj->kids; k; k = k->next)
			if (k->key_len == m->key_len && memcmp(k->key, m->key, m->key_len) == 0)
				return true;
		return false;
	}
	if ((size_t)obj->n * 2 >= h->cap) { /* (re)build at twice the room */
		pthread_once(&hash_once, hash_key_init);
		h->cap = h->cap ? h->cap * 2 : 4 * LINEAR_MEMBERS;
		h->slot = arena_alloc(a, h->cap * sizeof(struct rj *));
		memset(h->slot, 0, h->cap * sizeof(struct rj *));
		for (struct rj *k = obj->kids; k; k = k->next)
			h->slot[name_slot(h, k)] = k;
	}
	size_t i = name_slot(h, m);
	if (h->slot[i])
		return true;
	h->slot[i] = m;
	return false;
}

static struct rj *parse_object(struct parser *ps, int depth)
{
	const unsigned char *open = ps->p++;
	struct rj *v = new_node(ps->a, RJ_OBJECT);
	struct name_set names = {NULL, 0};
	size_t clen = 2;
	bool verbatim = !skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
		return close_container(ps, v, open, clen, verbatim);
	for (;;) {
		if (ps->p >= ps->end || *ps->p != '"')
			return fail(ps, ps->p);
		const unsigned char *at = ps->p;
		const char *key;
		uint32_t key_len, key_clen;
		bool key_esc;
		if (!scan_string(ps, &key, &key_len, &key_esc, &key_clen))
			return NULL;
		verbatim = !skip_ws(ps) && verbatim && !key_esc;
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, ps->p);
		ps->p++;
		verbatim = !skip_ws(ps) && verbatim;
		struct rj *m = parse_value(ps, depth + 1);
		if (!m)
			return NULL;
		m->key = key;
		m->key_len = key_len;
		m->key_esc = key_esc;
		if (repeated(ps->a, &names, v, m))
			return fail(ps, at);
		append(v, m);
		clen += key_clen + 1 + m->clen + (v->n > 1);
		int next = after_item(ps, m, &verbatim, '}');
		if (next != 0)
			return next < 0 ? NULL : close_container(ps, v, open, clen, verbatim);
	}
}

static struct rj *parse_value(struct parser *ps, int depth)
{
	if (depth > RJ_MAX_DEPTH || ps->p >= ps->end)
		return fail(ps, ps->p);
	switch (*ps->p) {
	case '{':
		return parse_object(ps, depth);
	case '[':
		return parse_array(ps, depth);
	case '"': {
		struct rj *v = new_node(ps->a, RJ_STRING);
		if (!scan_string(ps, &v->text, &v->text_len, &v->esc, &v->clen))
			return NULL;
		return v;
	}
	case 't':
		return parse_literal(ps, "true", RJ_TRUE);
	case 'f':
		return parse_literal(ps, "false", RJ_FALSE);
	case 'n':
		return parse_literal(ps, "null", RJ_NULL);
	default:
		return parse_number(ps);
	}
}

struct rj *rj_parse(struct arena *a, const char *s, size_t len, size_t *err_pos)
{
	struct parser ps = {.a = a,
	                    .p = (const unsigned char *)s,
	                    .start = (const unsigned char *)s,
	                    .end = (const unsigned char *)s + len};
	struct rj *root = NULL;
	skip_ws(&ps);
	/* jansson without JSON_DECODE_ANY: an object or an array, then nothing. */
	if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '['))
		root = parse_value(&ps, 1);
	else
		fail(&ps, ps.p);
	if (root) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			root = fail(&ps, ps.p);
	}
	if (!root)
		*err_pos = (size_t)(ps.err - ps.start);
	return root;
}

struct rj *rj_get(const struct rj *obj, const char *key)
{
	if (!rj_is(obj, RJ_OBJECT))
		return NULL;
	size_t n = strlen(key);
	for (struct rj *m = obj->kids; m; m = m->next)
		if (m->key_len == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}

const char *rj_str(struct arena *a, struct rj *v, size_t *len)
{
	if (!rj_is(v, RJ_STRING))
		return NULL;
	if (!v->esc && !v->nul) {
		char *t = arena_alloc(a, (size_t)v->text_len + 1);
		memcpy(t, v->text, v->text_len);
		t[v->text_len] = '\0';
		v->text = t;
		v->nul = true;
	}
	if (len)
		*len = v->text_len;
	return v->text;
}

/* v (an array or object) and the containers above it are no longer as sent. */
static void touch(struct rj *v)
{
	for (; v && v->verbatim; v = v->parent)
		v->verbatim = false;
}

void rj_del(struct rj *obj, const char *key)
{
	if (!rj_is(obj, RJ_OBJECT))
		return;
	size_t n = strlen(key);
	struct rj *prev = NULL;
	for (struct rj *m = obj->kids; m; prev = m, m = m->next) {
		if (m->key_len != n || memcmp(m->key, key, n) != 0)
			continue;
		if (prev)
			prev->next = m->next;
		else
			obj->kids = m->next;
		if (obj->last == m)
			obj->last = prev;
		obj->n--;
		m->parent = NULL;
		m->next = NULL;
		touch(obj);
		return;
	}
}

static bool needs_escape(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == '"' || *p == '\\')
			return true;
	return false;
}

void rj_set(struct rj *obj, const char *key, struct rj *v)
{
	size_t n = strlen(key);
	struct rj *prev = NULL;
	touch(obj);
	v->parent = obj;
	for (struct rj *m = obj->kids; m; prev = m, m = m->next) {
		if (m->key_len != n || memcmp(m->key, key, n) != 0)
			continue;
		v->key = m->key; /* its place and its name as it was */
		v->key_len = m->key_len;
		v->key_esc = m->key_esc;
		v->next = m->next;
		if (prev)
			prev->next = v;
		else
			obj->kids = v;
		if (obj->last == m)
			obj->last = v;
		m->parent = NULL;
		return;
	}
	v->key = key;
	v->key_len = (uint32_t)n;
	v->key_esc = needs_escape(key);
	v->next = NULL;
	append(obj, v);
}

void rj_append(struct rj *obj, struct rj *m)
{
	touch(obj);
	m->next = NULL;
	append(obj, m);
}

struct rj *rj_new_string(struct arena *a, const char *s)
{
	struct rj *v = new_node(a, RJ_STRING);
	size_t n = strlen(s);
	char *t = arena_alloc(a, n + 1);
	memcpy(t, s, n + 1);
	v->text = t;
	v->text_len = (uint32_t)n;
	v->nul = true;
	v->esc = needs_escape(s);
	return v;
}

struct rj *rj_new_object(struct arena *a)
{
	return new_node(a, RJ_OBJECT);
}

struct rj *rj_copy(struct arena *a, const struct rj *v)
{
	struct rj *c = arena_alloc(a, sizeof *c);
	*c = *v;
	c->parent = c->next = c->kids = c->last = NULL;
	c->n = 0;
	for (const struct rj *k = v->kids; k; k = k->next)
		append(c, rj_copy(a, k));
	return c;
}

/*
 * strbuf_put without its NUL after each piece (rj_write ends the text once):
 * the writing is many small pieces. What does not fit goes to strbuf_put,
 * which cuts it and marks the overflow.
 */
static inline void put(struct strbuf *out, const void *p, size_t n)
{
	if (out->len + n < out->cap) {
		memcpy(out->data + out->len, p, n);
		out->len += n;
	} else {
		strbuf_put(out, p, n);
	}
}

static void put_string(struct strbuf *out, const char *text, size_t len, bool esc)
{
	if (esc) {
		(void)json_put_string_utf8(out, text); /* decoded: NUL-terminated, valid UTF-8 */
		return;
	}
	put(out, "\"", 1);
	put(out, text, len);
	put(out, "\"", 1);
}

static void put_value(struct strbuf *out, const struct rj *v)
{
	switch (v->type) {
	case RJ_NULL:
		put(out, "null", 4);
		return;
	case RJ_FALSE:
		put(out, "false", 5);
		return;
	case RJ_TRUE:
		put(out, "true", 4);
		return;
	case RJ_NUMBER:
		put(out, v->text, v->text_len);
		return;
	case RJ_STRING:
		put_string(out, v->text, v->text_len, v->esc);
		return;
	default:
		break;
	}
	if (v->verbatim) {
		put(out, v->span, v->span_len);
		return;
	}
	bool obj = v->type == RJ_OBJECT;
	put(out, obj ? "{" : "[", 1);
	for (const struct rj *k = v->kids; k && !out->overflow; k = k->next) {
		if (k != v->kids)
			put(out, ",", 1);
		if (obj) {
			put_string(out, k->key, k->key_len, k->key_esc);
			put(out, ":", 1);
		}
		put_value(out, k);
	}
	put(out, obj ? "}" : "]", 1);
}

int rj_write(struct strbuf *out, const struct rj *v)
{
	put_value(out, v);
	out->data[out->len] = '\0'; /* put keeps room for it */
	return out->overflow ? -1 : 0;
}
