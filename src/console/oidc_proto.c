/*
 * oidc_proto.c: OpenID Connect's pure steps (see oidc_proto.h): PKCE, the browser's
 * login state, discovery and token documents, and the ID token's checks.
 *
 * The ID token checks run in the order OIDC Core 3.1.3.7 lists them, the
 * signature first: no claim of an unverified token is looked at.
 */
#include "console/oidc_proto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/str.h"
#include "crypto/ct.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "console/creds.h"
#include "crypto/random.h"

const char *oidc_result_name(int rc)
{
	switch (rc) {
	case OIDC_OK:
		return "ok";
	case OIDC_ERR_FORMAT:
		return "format";
	case OIDC_ERR_SIGNATURE:
		return "signature";
	case OIDC_ERR_KID:
		return "kid";
	case OIDC_ERR_ISS:
		return "iss";
	case OIDC_ERR_AUD:
		return "aud";
	case OIDC_ERR_AZP:
		return "azp";
	case OIDC_ERR_EXP:
		return "exp";
	case OIDC_ERR_IAT:
		return "iat";
	case OIDC_ERR_NONCE:
		return "nonce";
	case OIDC_ERR_STATE:
		return "state";
	case OIDC_ERR_EXPIRED:
		return "expired";
	case OIDC_ERR_NBF:
		return "nbf";
	case OIDC_ERR_SUB:
		return "sub";
	default:
		return "unknown";
	}
}

void oidc_pkce_challenge(const char *verifier, size_t n, char out[OIDC_CHALLENGE_LEN + 1])
{
	uint8_t d[SHA256_LEN];

	sha256(verifier, n, d);
	(void)base64url_encode(d, sizeof d, out, OIDC_CHALLENGE_LEN + 1);
}

void oidc_login_new(struct oidc_login *l, const char *provider, int64_t now_s)
{
	memset(l, 0, sizeof(*l));
	str_copy(l->provider, sizeof l->provider, provider, OIDC_NAME_MAX);
	l->created_s = now_s;
	console_secret_new(l->state);
	console_secret_new(l->nonce);
	console_secret_new(l->verifier);
}

size_t oidc_login_encode(const struct oidc_login *l, char *out, size_t cap)
{
	struct strbuf s;

	if (cap == 0)
		return 0;
	strbuf_init(&s, out, cap);
	strbuf_puts(&s, "1.");
	strbuf_puts(&s, l->provider);
	strbuf_puts(&s, ".");
	strbuf_put_i64(&s, l->created_s);
	strbuf_puts(&s, ".");
	strbuf_puts(&s, l->state);
	strbuf_puts(&s, ".");
	strbuf_puts(&s, l->nonce);
	strbuf_puts(&s, ".");
	strbuf_puts(&s, l->verifier);
	if (s.overflow) {
		out[0] = '\0';
		return 0;
	}
	return s.len;
}

int oidc_login_decode(const char *s, size_t n, struct oidc_login *l)
{
	struct slice part[6];
	size_t k = 0, start = 0;
	uint64_t created;

	memset(l, 0, sizeof(*l));
	if (!s || n > OIDC_LOGIN_TEXT_MAX)
		return OIDC_ERR_STATE;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (k == 6)
			return OIDC_ERR_STATE;
		part[k].ptr = s + start;
		part[k].len = i - start;
		k++;
		start = i + 1;
	}
	if (k != 6 || part[0].len != 1 || part[0].ptr[0] != '1' ||
	    !config_oidc_name_valid(part[1].ptr, part[1].len) ||
	    parse_uint64(part[2].ptr, part[2].len, INT64_MAX, &created) != 0 ||
	    !console_secret_valid(part[3].ptr, part[3].len) ||
	    !console_secret_valid(part[4].ptr, part[4].len) ||
	    !console_secret_valid(part[5].ptr, part[5].len))
		return OIDC_ERR_STATE;
	memcpy(l->provider, part[1].ptr, part[1].len);
	l->created_s = (int64_t)created;
	memcpy(l->state, part[3].ptr, OIDC_RANDOM_LEN);
	memcpy(l->nonce, part[4].ptr, OIDC_RANDOM_LEN);
	memcpy(l->verifier, part[5].ptr, OIDC_RANDOM_LEN);
	return OIDC_OK;
}

int oidc_login_check(const struct oidc_login *l, const char *provider, const char *state,
                     size_t state_len, int64_t now_s)
{
	if (!l || !state || strcmp(l->provider, provider) != 0 || state_len != OIDC_RANDOM_LEN ||
	    !ct_equal(l->state, state, OIDC_RANDOM_LEN))
		return OIDC_ERR_STATE;
	if (now_s - l->created_s > OIDC_LOGIN_TTL_S || l->created_s - now_s > OIDC_SKEW_S)
		return OIDC_ERR_EXPIRED;
	return OIDC_OK;
}

size_t oidc_login_cookie(const struct oidc_login *l, char *out, size_t cap)
{
	char value[OIDC_LOGIN_TEXT_MAX] = "";
	int rc;

	if (cap)
		out[0] = '\0';
	if (l && oidc_login_encode(l, value, sizeof value) == 0)
		return 0;
	rc = console_set_cookie(out, cap, OIDC_COOKIE_NAME, l ? value : "",
	                        l ? OIDC_LOGIN_TTL_S : 0);
	explicit_bzero(value, sizeof value);
	if (rc < 0) {
		if (cap)
			out[0] = '\0';
		return 0;
	}
	return strlen(out);
}

/* ---------- discovery ---------- */

/* Copy the https URL member name of doc into out (OIDC_URL_MAX + 1 bytes). 0 or -1. */
static int url_member(const json_t *doc, const char *name, char *out, char *err, size_t cap)
{
	const json_t *v = json_object_get(doc, name);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!json_is_string(v) || n == 0 || n > OIDC_URL_MAX || strlen(s) != n ||
	    !str_has_prefix(s, "https://") || strchr(s, '#') || n == 8) {
		snprintf(err, cap, "%s is not an https URL of at most %d bytes", name,
		         OIDC_URL_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			snprintf(err, cap, "%s is not an https URL of at most %d bytes", name,
			         OIDC_URL_MAX);
			return -1;
		}
	memcpy(out, s, n + 1);
	return 0;
}

/* Whether the string array member name of doc contains want; absent gives dflt. */
static bool list_has(const json_t *doc, const char *name, const char *want, bool dflt)
{
	const json_t *a = json_object_get(doc, name);
	const json_t *v;
	size_t i;

	if (!a)
		return dflt;
	json_array_foreach(a, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

int oidc_discovery_parse(const char *doc, size_t len, const char *expected_issuer,
                         struct oidc_discovery *out, char *err, size_t cap)
{
	json_error_t je;
	json_t *root = NULL;
	const json_t *iss;
	int rc = OIDC_ERR_FORMAT;

	memset(out, 0, sizeof(*out));
	if (len > OIDC_DOC_MAX) {
		snprintf(err, cap, "discovery document larger than %d bytes", OIDC_DOC_MAX);
		goto out;
	}
	root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		snprintf(err, cap, "discovery document is not a JSON object");
		goto out;
	}
	iss = json_object_get(root, "issuer");
	if (!json_is_string(iss) || strlen(json_string_value(iss)) != json_string_length(iss) ||
	    strcmp(json_string_value(iss), expected_issuer) != 0) {
		snprintf(err, cap, "issuer is not the configured issuer");
		goto out;
	}
	str_copy(out->issuer, sizeof out->issuer, expected_issuer, OIDC_URL_MAX);
	if (url_member(root, "authorization_endpoint", out->authorization_endpoint, err, cap) < 0 ||
	    url_member(root, "token_endpoint", out->token_endpoint, err, cap) < 0 ||
	    url_member(root, "jwks_uri", out->jwks_uri, err, cap) < 0)
		goto out;
	if (!list_has(root, "response_types_supported", "code", false)) {
		snprintf(err, cap, "response_types_supported lacks \"code\"");
		goto out;
	}
	if (!list_has(root, "code_challenge_methods_supported", "S256", true)) {
		snprintf(err, cap, "code_challenge_methods_supported lacks \"S256\"");
		goto out;
	}
	if (!list_has(root, "id_token_signing_alg_values_supported", "RS256", true) &&
	    !list_has(root, "id_token_signing_alg_values_supported", "ES256", true)) {
		snprintf(err, cap,
		         "id_token_signing_alg_values_supported has neither RS256 nor ES256");
		goto out;
	}
	out->auth_basic =
	    list_has(root, "token_endpoint_auth_methods_supported", "client_secret_basic", true);
	out->auth_post =
	    list_has(root, "token_endpoint_auth_methods_supported", "client_secret_post", false);
	if (json_object_get(root, "userinfo_endpoint") &&
	    url_member(root, "userinfo_endpoint", out->userinfo_endpoint, err, cap) < 0)
		goto out;
	if (!out->auth_basic && !out->auth_post) {
		snprintf(
		    err, cap,
		    "token_endpoint_auth_methods_supported has neither client_secret_basic nor "
		    "client_secret_post");
		goto out;
	}
	rc = OIDC_OK;
out:
	json_decref(root);
	if (rc != OIDC_OK)
		memset(out, 0, sizeof(*out));
	else if (cap)
		err[0] = '\0';
	return rc;
}

/* Append sep (none when '\0'), "name=" and the encoded value. */
static int param(struct buf *b, char sep, const char *name, const char *value)
{
	if ((sep && buf_append(b, &sep, 1) < 0) || buf_append_str(b, name) < 0 ||
	    buf_append(b, "=", 1) < 0)
		return -1;
	return buf_append_pct(b, value, strlen(value));
}

int oidc_authorize_url(struct buf *b, const struct oidc_discovery *d, const char *client_id,
                       const char *redirect_uri, const char *scopes, const struct oidc_login *l)
{
	char challenge[OIDC_CHALLENGE_LEN + 1];
	const char *ep = d->authorization_endpoint;
	size_t n = strlen(ep);
	char sep = '?';

	/* An endpoint with a query of its own keeps it (Core 3.1.2.1 allows one). */
	if (strchr(ep, '?'))
		sep = ep[n - 1] == '?' || ep[n - 1] == '&' ? '\0' : '&';
	oidc_pkce_challenge(l->verifier, strlen(l->verifier), challenge);
	if (buf_append(b, ep, n) < 0 || param(b, sep, "response_type", "code") < 0 ||
	    param(b, '&', "client_id", client_id) < 0 ||
	    param(b, '&', "redirect_uri", redirect_uri) < 0 || param(b, '&', "scope", scopes) < 0 ||
	    param(b, '&', "state", l->state) < 0 || param(b, '&', "nonce", l->nonce) < 0 ||
	    param(b, '&', "code_challenge", challenge) < 0 ||
	    param(b, '&', "code_challenge_method", "S256") < 0)
		return -1;
	return 0;
}

int oidc_token_body(struct buf *b, const char *code, const char *redirect_uri, const char *verifier,
                    bool post, const char *client_id, const char *client_secret)
{
	if (buf_append_str(b, "grant_type=authorization_code") < 0 ||
	    param(b, '&', "code", code) < 0 || param(b, '&', "redirect_uri", redirect_uri) < 0 ||
	    param(b, '&', "code_verifier", verifier) < 0)
		return -1;
	if (post && (param(b, '&', "client_id", client_id) < 0 ||
	             param(b, '&', "client_secret", client_secret) < 0))
		return -1;
	return 0;
}

int oidc_basic_auth(struct buf *b, const char *client_id, const char *client_secret)
{
	struct buf pair;
	char *enc = NULL;
	size_t need;
	int rc = -1;

	buf_init(&pair, 4096);
	if (buf_append_pct(&pair, client_id, strlen(client_id)) < 0 ||
	    buf_append(&pair, ":", 1) < 0 ||
	    buf_append_pct(&pair, client_secret, strlen(client_secret)) < 0)
		goto out;
	need = base64_encoded_len(pair.len) + 1;
	enc = xmalloc(need);
	if (base64_encode(pair.data, pair.len, enc, need) < 0)
		goto out;
	if (buf_append_str(b, "Basic ") < 0 || buf_append_str(b, enc) < 0)
		goto out;
	rc = 0;
out:
	if (enc) {
		explicit_bzero(enc, strlen(enc));
		free(enc);
	}
	if (pair.data)
		explicit_bzero(pair.data, pair.len);
	buf_free(&pair);
	return rc;
}

/* Copy the string member name of obj (no NUL inside, shorter than cap) into out. 0 or -1. */
static int copy_string(const json_t *obj, const char *name, char *out, size_t cap)
{
	const json_t *v = json_object_get(obj, name);

	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

int oidc_token_response(const char *body, size_t len, char *id_tok, size_t id_cap, char *access,
                        size_t access_cap)
{
	json_error_t je;
	json_t *root;
	const json_t *type;
	int rc = OIDC_ERR_FORMAT;

	if (id_cap)
		id_tok[0] = '\0';
	if (access && access_cap)
		access[0] = '\0';
	if (len > OIDC_DOC_MAX)
		return OIDC_ERR_FORMAT;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	type = json_object_get(root, "token_type");
	if (json_is_object(root) && json_is_string(type) &&
	    ascii_ieq(json_string_value(type), json_string_length(type), "Bearer", 6) &&
	    copy_string(root, "id_token", id_tok, min_size(id_cap, JOSE_JWS_MAX_BYTES + 1)) == 0 &&
	    id_tok[0]) {
		rc = OIDC_OK;
		/* An access token that is absent or too long only means no UserInfo request. */
		if (access && access_cap &&
		    copy_string(root, "access_token", access,
		                min_size(access_cap, OIDC_ACCESS_TOKEN_MAX + 1)) != 0)
			access[0] = '\0';
	} else if (id_cap) {
		id_tok[0] = '\0';
	}
	json_decref(root);
	return rc;
}

/* ---------- the ID token ---------- */

/* A NumericDate claim as whole seconds (fractions cut). 0, or -1 when absent or not a number. */
static int numeric_date(const json_t *claims, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	/* NaN fails both comparisons. */
	if (json_is_real(v) && json_real_value(v) > -1e15 && json_real_value(v) < 1e15) {
		*out = (int64_t)json_real_value(v);
		return 0;
	}
	return -1;
}

static bool str_claim_is(const json_t *v, const char *want)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
	       strcmp(json_string_value(v), want) == 0;
}

static int check_aud(const json_t *claims, const char *client_id)
{
	const json_t *aud = json_object_get(claims, "aud");
	const json_t *azp = json_object_get(claims, "azp");
	const json_t *v;
	size_t i, n = 0;
	bool found = false;

	if (json_is_string(aud)) {
		found = str_claim_is(aud, client_id);
		n = 1;
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v)
		{
			if (!json_is_string(v))
				return OIDC_ERR_AUD;
			found = found || str_claim_is(v, client_id);
			n++;
		}
	}
	if (!found)
		return OIDC_ERR_AUD;
	if (n > 1 && !azp)
		return OIDC_ERR_AZP;
	if (azp && !str_claim_is(azp, client_id))
		return OIDC_ERR_AZP;
	return OIDC_OK;
}

static int check_claims(const json_t *c, const struct oidc_expect *e)
{
	const json_t *nonce = json_object_get(c, "nonce");
	const json_t *sub = json_object_get(c, "sub");
	int64_t exp, iat, nbf;
	int rc;

	if (!str_claim_is(json_object_get(c, "iss"), e->issuer))
		return OIDC_ERR_ISS;
	rc = check_aud(c, e->client_id);
	if (rc != OIDC_OK)
		return rc;
	if (numeric_date(c, "exp", &exp) < 0 || e->now_s - OIDC_SKEW_S >= exp)
		return OIDC_ERR_EXP;
	if (json_object_get(c, "nbf") &&
	    (numeric_date(c, "nbf", &nbf) < 0 || nbf > e->now_s + OIDC_SKEW_S))
		return OIDC_ERR_NBF;
	if (numeric_date(c, "iat", &iat) < 0 || iat > e->now_s + OIDC_SKEW_S ||
	    iat < e->now_s - OIDC_IAT_MAX_AGE_S - OIDC_SKEW_S)
		return OIDC_ERR_IAT;
	if (!json_is_string(nonce) || json_string_length(nonce) != strlen(e->nonce) ||
	    !ct_equal(json_string_value(nonce), e->nonce, strlen(e->nonce)))
		return OIDC_ERR_NONCE;
	if (!json_is_string(sub) || json_string_length(sub) == 0 ||
	    json_string_length(sub) > OIDC_SUB_MAX ||
	    strlen(json_string_value(sub)) != json_string_length(sub))
		return OIDC_ERR_SUB;
	return OIDC_OK;
}

/* Whether claims c mark the email verified: the claim name (NULL or "": email_verified) is
 * the JSON value true, exactly. */
static bool email_verified(const json_t *c, const char *name)
{
	return json_is_true(json_object_get(c, name && name[0] ? name : OIDC_VERIFIED_CLAIM));
}

/* A string claim that fits whole (no NUL inside) into out; else out is "". */
static void copy_claim(const json_t *c, const char *name, char *out, size_t cap)
{
	if (copy_string(c, name, out, cap) < 0)
		out[0] = '\0';
}

int oidc_id_token_validate(const char *tok, size_t len, const struct jose_jwks *keys,
                           const struct oidc_expect *e, struct oidc_identity *out,
                           char kid[JOSE_KID_MAX + 1])
{
	struct jose_verified v;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = jose_jws_verify(tok, len, keys, &v, kid);
	if (rc == JOSE_ERR_KID)
		return OIDC_ERR_KID;
	if (rc == JOSE_ERR_FORMAT)
		return OIDC_ERR_FORMAT;
	if (rc != JOSE_OK)
		return OIDC_ERR_SIGNATURE;
	rc = check_claims(v.payload, e);
	if (rc == OIDC_OK) {
		copy_claim(v.payload, "sub", out->sub, sizeof out->sub);
		copy_claim(v.payload, "email", out->email, sizeof out->email);
		copy_claim(v.payload, "name", out->name, sizeof out->name);
		out->email_verified = email_verified(v.payload, e->verified_email_claim);
	}
	jose_verified_clear(&v);
	return rc;
}

int oidc_userinfo_apply(const char *body, size_t len, const char *verified_claim,
                        struct oidc_identity *id)
{
	json_error_t je;
	json_t *root;
	int rc = OIDC_ERR_FORMAT;

	if (len > OIDC_DOC_MAX)
		return OIDC_ERR_FORMAT;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (json_is_object(root)) {
		rc = str_claim_is(json_object_get(root, "sub"), id->sub) && id->sub[0]
		         ? OIDC_OK
		         : OIDC_ERR_SUB;
		if (rc == OIDC_OK) {
			copy_claim(root, "email", id->email, sizeof id->email);
			id->email_verified = email_verified(root, verified_claim);
			if (json_object_get(root, "name"))
				copy_claim(root, "name", id->name, sizeof id->name);
		}
	}
	json_decref(root);
	return rc;
}
