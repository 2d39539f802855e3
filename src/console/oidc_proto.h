/*
 * oidc_proto.h: the pure parts of OpenID Connect login for the console
 * (CONSOLE.md "Login"): the authorization code flow with PKCE S256 (RFC
 * 7636), the login state a browser holds between start and callback, the
 * provider's discovery document and token response, and the ID token's
 * checks of OIDC Core 1.0 section 3.1.3.7. No I/O here: src/console/oidc.c
 * fetches, caches and calls these.
 *
 * The login state lives only in the browser, in the __Host-pcl_oidc cookie
 * (Secure, HttpOnly, SameSite=Lax, Path=/, ten minutes): the provider's
 * name, when it started, and three values of 256 random bits each, the
 * state (sent to the provider and checked on the way back against the
 * cookie, so a callback not started in this browser is refused), the nonce
 * (which the ID token must carry: a token issued for another login is
 * refused) and the PKCE code verifier (its S256 challenge goes to the
 * provider; the code is redeemed only with it). A browser that edits its own
 * cookie only spoils its own login: nothing of it is trusted beyond
 * "this browser started this login".
 */
#ifndef PORTCULLIS_CONSOLE_OIDC_PROTO_H
#define PORTCULLIS_CONSOLE_OIDC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "console/creds.h"
#include "core/str.h"
#include "crypto/jose.h"

/** Longest provider name ([oidc.NAME]; config_oidc_name_valid says which are names). */
#define OIDC_NAME_MAX CONFIG_OIDC_NAME_MAX
/** base64url of 32 random bytes: state, nonce and code verifier (console_secret_new). */
#define OIDC_RANDOM_LEN CONSOLE_SECRET_LEN
/** base64url of a SHA-256 digest: the S256 code challenge. */
#define OIDC_CHALLENGE_LEN 43
/** A login must come back within this many seconds (also the cookie's Max-Age). */
#define OIDC_LOGIN_TTL_S 600
/** Clock skew allowed between this node and the provider, both ways. */
#define OIDC_SKEW_S 60
/** An ID token issued longer ago than this (plus the skew) is refused. */
#define OIDC_IAT_MAX_AGE_S 600
/** The browser cookie carrying the login state. */
#define OIDC_COOKIE_NAME "__Host-pcl_oidc"
/** Room for the cookie value (oidc_login_encode). */
#define OIDC_LOGIN_TEXT_MAX 192
/** Longest URL accepted from a discovery document or configuration. */
#define OIDC_URL_MAX 2048
/** Longest sub and email kept from an ID token. */
#define OIDC_SUB_MAX        255
#define OIDC_EMAIL_MAX      320
#define OIDC_NAME_CLAIM_MAX 200
/** Largest discovery document and token response parsed. */
#define OIDC_DOC_MAX (64 * 1024)

/** Outcomes (0 or negative; each refusal its own code, for the log and the tests). */
enum oidc_result {
	OIDC_OK = 0,
	OIDC_ERR_FORMAT = -1,    /**< a document or token that is not what it must be */
	OIDC_ERR_SIGNATURE = -2, /**< alg refused, signature bad, unusable key */
	OIDC_ERR_KID = -3,       /**< the signing key is not in the key set (fetch it again) */
	OIDC_ERR_ISS = -4,       /**< iss is not the discovered issuer */
	OIDC_ERR_AUD = -5,       /**< aud does not contain the client_id */
	OIDC_ERR_AZP = -6,       /**< several audiences and no azp, or azp not the client_id */
	OIDC_ERR_EXP = -7,       /**< exp missing or past (beyond the skew) */
	OIDC_ERR_IAT = -8,       /**< iat missing, in the future or too old (beyond the skew) */
	OIDC_ERR_NONCE = -9,     /**< nonce missing or not the browser's */
	OIDC_ERR_STATE = -10,    /**< the callback's state is not the browser's login */
	OIDC_ERR_EXPIRED = -11,  /**< the browser's login is older than OIDC_LOGIN_TTL_S */
	OIDC_ERR_NBF = -12,      /**< nbf in the future (beyond the skew) */
	OIDC_ERR_SUB = -13,      /**< sub missing or not a string of 1 to OIDC_SUB_MAX bytes */
};

/** A short stable name of a result ("iss", "aud"...), for logs and problem details. */
const char *oidc_result_name(int rc);

/**
 * The S256 code challenge of the n-byte code verifier: base64url of its
 * SHA-256 (RFC 7636 section 4.2), OIDC_CHALLENGE_LEN characters and a NUL.
 */
void oidc_pkce_challenge(const char *verifier, size_t n, char out[OIDC_CHALLENGE_LEN + 1]);

/** A browser's login in progress. */
struct oidc_login {
	char provider[OIDC_NAME_MAX + 1];
	int64_t created_s; /**< Unix seconds */
	char state[OIDC_RANDOM_LEN + 1];
	char nonce[OIDC_RANDOM_LEN + 1];
	char verifier[OIDC_RANDOM_LEN + 1];
};

/**
 * Start a login for provider (a valid name) at now_s: three fresh 256-bit
 * values from crypto_random. Never fails.
 */
void oidc_login_new(struct oidc_login *l, const char *provider, int64_t now_s);

/**
 * The cookie value of l: "1.<provider>.<created>.<state>.<nonce>.<verifier>"
 * (cookie-octets only), NUL-terminated in out (cap >= OIDC_LOGIN_TEXT_MAX).
 * Returns the length, or 0 when it does not fit.
 */
size_t oidc_login_encode(const struct oidc_login *l, char *out, size_t cap);

/**
 * Parse a cookie value of n bytes made by oidc_login_encode. OIDC_OK, or
 * OIDC_ERR_STATE for anything else (l is then zeroed).
 */
int oidc_login_decode(const char *s, size_t n, struct oidc_login *l);

/**
 * Whether a callback for provider carrying state (state_len bytes, from the
 * query) at now_s belongs to the browser's login l (NULL: the browser sent
 * no cookie): OIDC_OK, OIDC_ERR_STATE (no login, another provider, another
 * state, compared in constant time) or OIDC_ERR_EXPIRED.
 */
int oidc_login_check(const struct oidc_login *l, const char *provider, const char *state,
                     size_t state_len, int64_t now_s);

/**
 * The Set-Cookie value that stores l (console_set_cookie: "__Host-pcl_oidc=
 * ...; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=600"), or with l NULL
 * the one that deletes it (Max-Age=0). NUL-terminated in out (cap >= 300); the length,
 * 0 when it does not fit.
 */
size_t oidc_login_cookie(const struct oidc_login *l, char *out, size_t cap);

/** What the provider's discovery document says (OpenID Connect Discovery 1.0). */
struct oidc_discovery {
	char issuer[OIDC_URL_MAX + 1];
	char authorization_endpoint[OIDC_URL_MAX + 1];
	char token_endpoint[OIDC_URL_MAX + 1];
	char jwks_uri[OIDC_URL_MAX + 1];
	bool auth_basic; /**< token endpoint takes client_secret_basic (also when not listed) */
	bool auth_post;  /**< token endpoint takes client_secret_post */
	char userinfo_endpoint[OIDC_URL_MAX + 1]; /**< "" when the document names none */
};

/**
 * Parse a discovery document of len bytes (at most OIDC_DOC_MAX). The issuer
 * must equal expected_issuer exactly (Discovery section 4.3); the
 * authorization, token and JWKS endpoints must be https URLs without a
 * fragment, at most OIDC_URL_MAX bytes (the userinfo_endpoint too, when
 * present); response_types_supported must
 * include "code"; code_challenge_methods_supported, when present, must
 * include "S256"; id_token_signing_alg_values_supported, when present, must
 * include RS256 or ES256; token_endpoint_auth_methods_supported (default
 * client_secret_basic) must include client_secret_basic or
 * client_secret_post. OIDC_OK, or OIDC_ERR_FORMAT with a reason in err
 * (nothing of the document quoted but the member name).
 */
int oidc_discovery_parse(const char *doc, size_t len, const char *expected_issuer,
                         struct oidc_discovery *out, char *err, size_t cap);

/**
 * The authorization request URL (section 3.1.2.1) into b: the endpoint,
 * then response_type=code, client_id, redirect_uri, scope, state, nonce,
 * code_challenge (S256 of l's verifier) and code_challenge_method=S256,
 * each percent-encoded, after '?' or, when the endpoint already has a
 * query, '&'. 0, or -1 past b's limit.
 */
int oidc_authorize_url(struct buf *b, const struct oidc_discovery *d, const char *client_id,
                       const char *redirect_uri, const char *scopes, const struct oidc_login *l);

/**
 * The token request body (section 3.1.3.1, RFC 7636 section 4.5) into b:
 * grant_type=authorization_code, code, redirect_uri, code_verifier, and,
 * with post true (client_secret_post), client_id and client_secret. 0 or -1.
 */
int oidc_token_body(struct buf *b, const char *code, const char *redirect_uri, const char *verifier,
                    bool post, const char *client_id, const char *client_secret);

/**
 * The client_secret_basic Authorization value into b: "Basic " and base64
 * of form-encoded client_id ":" form-encoded secret (RFC 6749 section
 * 2.3.1). 0 or -1.
 */
int oidc_basic_auth(struct buf *b, const char *client_id, const char *client_secret);

/** Longest access token kept from a token response (for the UserInfo request only). */
#define OIDC_ACCESS_TOKEN_MAX 8192

/**
 * Read a token response (a JSON object of len bytes with token_type Bearer,
 * any case): its id_token copied, NUL-terminated, into id_tok (id_cap bytes,
 * at most JOSE_JWS_MAX_BYTES + 1 used) and, when access is not NULL, its
 * access_token into access (access_cap bytes; "" when absent or longer than
 * OIDC_ACCESS_TOKEN_MAX). OIDC_OK or OIDC_ERR_FORMAT (outputs "").
 */
int oidc_token_response(const char *body, size_t len, char *id_tok, size_t id_cap, char *access,
                        size_t access_cap);

/** What the ID token is checked against. */
struct oidc_expect {
	const char *issuer;    /**< the discovered issuer */
	const char *client_id; /**< this client */
	const char *nonce;     /**< the browser's login nonce */
	int64_t now_s;         /**< Unix seconds */
	/** The claim whose JSON true marks the email verified; NULL or "": OIDC_VERIFIED_CLAIM. */
	const char *verified_email_claim;
};

/** The standard claim that marks an email address verified (OIDC Core 5.1). */
#define OIDC_VERIFIED_CLAIM "email_verified"

/** Who the ID token names. */
struct oidc_identity {
	char sub[OIDC_SUB_MAX + 1];
	char email[OIDC_EMAIL_MAX + 1]; /**< "" when the token has no email */
	bool email_verified; /**< the verified-email claim is the JSON value true (nothing else) */
	char name[OIDC_NAME_CLAIM_MAX + 1];
};

/**
 * Validate an ID token (len bytes) as OIDC Core 3.1.3.7 says, in this order:
 * the signature with a key of keys (jose_jws_verify: RS256 or ES256, the
 * kid's key; OIDC_ERR_KID when the kid is unknown, with the kid in kid so
 * the caller may fetch the set once more), iss equal to e->issuer, aud (a
 * string or an array of strings) containing e->client_id, azp present when
 * aud has several members and, when present, equal to e->client_id, exp
 * after now (minus OIDC_SKEW_S), nbf (when present) not after now plus the
 * skew, iat neither after now plus the skew nor before now minus
 * OIDC_IAT_MAX_AGE_S and the skew, nonce equal to e->nonce (constant time),
 * and sub a string of 1 to OIDC_SUB_MAX bytes. On OIDC_OK *out holds the
 * identity; email and name are copied only when strings that fit (an email
 * too long to keep is dropped, never cut), and email_verified is true only
 * when the claim e->verified_email_claim (email_verified unless set, Entra
 * ID's xms_edov for one) is the JSON value true: a string "true", 1 or
 * any other claim is not. Thread-safe.
 */
int oidc_id_token_validate(const char *tok, size_t len, const struct jose_jwks *keys,
                           const struct oidc_expect *e, struct oidc_identity *out,
                           char kid[JOSE_KID_MAX + 1]);

/**
 * Complete id from a UserInfo response (OIDC Core 5.3.2; a JSON object of
 * len bytes): its sub must equal id->sub (else OIDC_ERR_SUB: a response for
 * another user is never used); email, email_verified (from the claim
 * verified_claim, as oidc_id_token_validate reads it; NULL or "": email_verified)
 * and name replace what the ID token had. Providers that issue an access token
 * may keep the email claims out of the ID token (Core 5.4), so they come from
 * here. OIDC_OK, OIDC_ERR_FORMAT or OIDC_ERR_SUB (id unchanged on failure).
 */
int oidc_userinfo_apply(const char *body, size_t len, const char *verified_claim,
                        struct oidc_identity *id);

#endif
