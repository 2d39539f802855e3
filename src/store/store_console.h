/*
 * store_console.h: the people of the browser console (migrations/
 * 0014_console.*.sql): users, their memberships (role per organisation),
 * invitations, magic-link tokens and sessions. Same rules as store.h:
 * blocking, thread-safe, STORE_OK or a negative STORE_E*, every value
 * bound, both dialects.
 *
 * Secrets never reach a row: a magic-link token and a session id are stored
 * as the SHA-256 hex of their bytes only (src/console/ makes and hashes
 * them). Addresses are stored lower-case (src/console/ normalises them;
 * PostgreSQL checks it).
 */
#ifndef PORTCULLIS_STORE_STORE_CONSOLE_H
#define PORTCULLIS_STORE_STORE_CONSOLE_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_HASH_HEX_LEN 64  /* SHA-256 as hex */
#define STORE_ROLE_MAX     9   /* "developer" */
#define STORE_UA_MAX       256 /* bytes of a User-Agent kept with a session */

struct store_user {
	char id[STORE_ID_LEN + 1];
	char email[STORE_EMAIL_MAX + 1]; /* lower-case */
	char name[STORE_NAME_MAX + 1];   /* "" when none */
	bool operator;
	int64_t created_at, last_login_at, disabled_at; /* -1 when unset */
};

/** Insert u (its audit event a). STORE_ECONFLICT when the address is taken. */
int store_user_insert(struct store *st, const struct store_user *u, const struct audit_input *a);
/** The user with this (lower-case) address; STORE_ENOTFOUND when none. */
int store_user_by_email(struct store *st, const char *email, struct store_user *out);
/**
 * Disable the user at `at` (an already disabled user keeps its first time)
 * and delete every session of theirs, with the audit event a, in one
 * transaction: every node refuses those sessions from its next request.
 * *ended (may be NULL) gets how many sessions ended.
 */
int store_user_disable(struct store *st, const char *id, int64_t at, const struct audit_input *a,
                       int64_t *ended);

struct store_membership {
	char user_id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];
	char org_name[STORE_NAME_MAX + 1];
	char role[STORE_ROLE_MAX + 1]; /* owner | admin | developer | viewer */
	int64_t created_at;
};

/** user's membership of org_id; STORE_ENOTFOUND when none. */
int store_membership_get(struct store *st, const char *user_id, const char *org_id,
                         struct store_membership *out);
/** Every membership of user_id, by organisation id (*out malloc'd). */
int store_memberships_of(struct store *st, const char *user_id, struct store_membership **out,
                         int *n);

struct store_invitation {
	char id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];
	char email[STORE_EMAIL_MAX + 1]; /* lower-case */
	char role[STORE_ROLE_MAX + 1];
	char invited_by_type[8]; /* user | root | key */
	char invited_by[STORE_ID_LEN + 1];
	int64_t created_at, expires_at, accepted_at; /* accepted_at -1 while pending */
};

/** Insert inv with its audit event a (and a's webhook message). */
int store_invitation_insert(struct store *st, const struct store_invitation *inv,
                            const struct audit_input *a);
/** The newest invitation of email still pending at now; STORE_ENOTFOUND when none. */
int store_invitation_pending(struct store *st, const char *email, int64_t now,
                             struct store_invitation *out);

/**
 * A magic link: who it signs in (user_id, or invitation_id, or
 * signup_email; all "" for the dummy row of an address that may not sign
 * in) and the browser it is bound to (nonce_hash; "" for an invitation's
 * link, which any browser may open).
 */
struct store_login_token {
	char token_hash[STORE_HASH_HEX_LEN + 1];
	char nonce_hash[STORE_HASH_HEX_LEN + 1];
	char user_id[STORE_ID_LEN + 1];
	char invitation_id[STORE_ID_LEN + 1];
	char signup_email[STORE_EMAIL_MAX + 1];
	int64_t created_at, expires_at, used_at; /* used_at -1 until used */
};

/**
 * Insert t; in the same transaction delete a bounded batch of tokens that
 * expired more than a day before t->created_at (the table stays small
 * without a purge job). One write either way: the dummy row of an unknown
 * address costs what a real one does.
 */
int store_login_token_insert(struct store *st, const struct store_login_token *t);
/** The token with this hash (used or not, expired or not); STORE_ENOTFOUND when none. */
int store_login_token_get(struct store *st, const char *token_hash, struct store_login_token *out);

struct store_session {
	char id[STORE_ID_LEN + 1];
	char token_hash[STORE_HASH_HEX_LEN + 1];
	char user_id[STORE_ID_LEN + 1];
	int64_t created_at, last_seen_at, expires_at;
	char user_agent[STORE_UA_MAX + 1];
};

/**
 * One sign-in, in one transaction: consume the magic link token_hash when
 * set (unused and unexpired at now, else STORE_ENOTFOUND and nothing
 * changes), find who signs in (the token's user, or the token's
 * invitation, or its signup address; without a token: the user of email,
 * else email's pending invitation, else a new user when allow_signup), accept
 * the invitation (the user created when needed, the membership set), record
 * last_login_at, end the browser's previous session (end_token_hash) and
 * the user's expired ones, insert session (user_id filled in) and audit
 * user.login (actor the user; details method and session id), plus
 * invitation.accepted. STORE_ENOTFOUND when nobody may sign in (unknown,
 * disabled, invitation gone): nothing changes.
 */
struct store_login {
	const char *token_hash;     /* NULL: a login not by magic link (OIDC) */
	const char *email;          /* without a token: the verified address (lower-case) */
	bool allow_signup;          /* without a token: create a user for an unknown address */
	const char *method;         /* "magic_link", "oidc:NAME": the audit event's details */
	const char *end_token_hash; /* the browser's previous session, or NULL */
	int64_t now;
	int64_t idle_ms;              /* sessions idle this long are expired (deleted here) */
	const char *request_id;       /* for the audit events */
	struct store_session session; /* the new session; user_id is filled in */
};

int store_session_begin(struct store *st, struct store_login *in, struct store_user *user);

/** The session with this token hash and its user; STORE_ENOTFOUND when none. */
int store_session_get(struct store *st, const char *token_hash, struct store_session *s,
                      struct store_user *u);
/** Record that session id was used at now (no audit: bookkeeping). */
int store_session_touch(struct store *st, const char *id, int64_t now);
/**
 * End (delete) user_id's session id, with the audit event a (NULL: none, an
 * expiry). STORE_ENOTFOUND when user_id has no such session.
 */
int store_session_end(struct store *st, const char *user_id, const char *id,
                      const struct audit_input *a);
/** user_id's sessions, newest first, at most 100 (*out malloc'd). */
int store_sessions_of(struct store *st, const char *user_id, struct store_session **out, int *n);

#endif
