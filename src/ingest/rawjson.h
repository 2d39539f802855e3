/*
 * rawjson.h: the ingest's JSON reader and writer (segment.c's, for SDK
 * request bodies). One pass over the bytes builds a tree of spans in an
 * arena: each value points at its text in the body, nothing is decoded that
 * needs no decoding (a string without a backslash is its bytes, a number is
 * its text, never converted), nothing is hashed, nothing is malloc'd. The
 * tree can be changed (a member removed, set, added, a subtree copied), and
 * rj_write writes a value compact: a subtree that was sent compact and was
 * not changed is copied as one span, numbers always as sent.
 *
 * What it accepts is exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES)
 * accepts, so that a stored body reads back with jansson (GET /v1/events):
 * an object or array at the top (then only whitespace), RFC 8259's grammar,
 * valid UTF-8 (no overlong form, no surrogate, nothing past U+10FFFF), no
 * \u0000 and no lone surrogate escape, no control character unescaped, no
 * member repeated in an object (compared as decoded), at most 2048 levels,
 * integers within int64 and reals that do not overflow a double. One
 * difference, stricter: jansson's reader loses a NUL byte that follows a
 * number or a literal (its one-byte lookahead uses NUL as "empty"), so it
 * takes [null\0] as [null]; here any NUL byte outside a string is an error.
 *
 * Strings are written as jansson's compact dump writes them (UTF-8 kept;
 * only " \\ and control characters escaped, \b \f \n \r \t by name): a
 * string sent without a backslash is written as sent, one with escapes is
 * decoded and written that way (\u00e9 as the two bytes of é, \/ as /).
 * Numbers are written as sent (129.95 stays 129.95, 1E2 stays 1E2).
 */
#ifndef PORTCULLIS_INGEST_RAWJSON_H
#define PORTCULLIS_INGEST_RAWJSON_H

#include "core/arena.h"
#include "core/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rj_type { RJ_NULL = 1, RJ_FALSE, RJ_TRUE, RJ_NUMBER, RJ_STRING, RJ_ARRAY, RJ_OBJECT };

#define RJ_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

struct rj {
	struct rj *next;   /* the next element or member of the parent */
	struct rj *parent; /* NULL at the top */
	struct rj *kids;   /* arrays and objects: the first element or member */
	struct rj *last;   /* ... and the last */
	const char *key;   /* a member: its name as decoded (no NUL in it) */
	const char *text;  /* number: its text; string: its content (decoded when esc) */
	const char *span;  /* arrays and objects: their text as sent (verbatim: copied) */
	uint32_t key_len, text_len, span_len;
	uint32_t n;    /* arrays and objects: elements or members */
	uint32_t clen; /* the compact length as parsed (before any change) */
	uint8_t type;  /* enum rj_type */
	bool key_esc;  /* the key needs escaping when written (key is NUL-terminated then) */
	bool esc;      /* a string that needs escaping when written (text NUL-terminated) */
	bool nul;      /* a string whose text is NUL-terminated (decoded, or copied by rj_str) */
	bool verbatim; /* arrays and objects: span is the compact text, unchanged */
};

/**
 * Parse the len bytes at s (need not be NUL-terminated; they must outlive
 * the tree) into nodes allocated from a. NULL when jansson would refuse
 * them (or on a NUL byte outside a string, see above); *err_pos then gets the byte offset where the
 * error was found.
 */
struct rj *rj_parse(struct arena *a, const char *s, size_t len, size_t *err_pos);

static inline bool rj_is(const struct rj *v, enum rj_type t)
{
	return v && v->type == t;
}

/** obj's member named key (a NUL-terminated name), or NULL (also when obj is no object). */
struct rj *rj_get(const struct rj *obj, const char *key);

/**
 * A string's value, NUL-terminated (an arena copy made once, on first use);
 * *len (may be NULL) its length. It holds no NUL byte (the parse refuses
 * \u0000). NULL when v is not a string.
 */
const char *rj_str(struct arena *a, struct rj *v, size_t *len);

/** Remove obj's member key when there is one. */
void rj_del(struct rj *obj, const char *key);

/**
 * Set obj's member key (a NUL-terminated name that lives as long as the
 * tree) to v (a node of no parent): in the place of the member of that name
 * when there is one, else at the end (jansson's json_object_set_new).
 */
void rj_set(struct rj *obj, const char *key, struct rj *v);

/** Append m (a member of no parent, its key set: from rj_copy of a member) to obj. */
void rj_append(struct rj *obj, struct rj *m);

/** A new string node holding a copy of the NUL-terminated valid UTF-8 s. */
struct rj *rj_new_string(struct arena *a, const char *s);
/** A new empty object. */
struct rj *rj_new_object(struct arena *a);
/** A deep copy of v (its own nodes; the texts are shared, never changed). */
struct rj *rj_copy(struct arena *a, const struct rj *v);

/** Append v's compact JSON to out. Returns 0, or -1 when out overflowed. */
int rj_write(struct strbuf *out, const struct rj *v);

#endif
