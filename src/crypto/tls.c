/*
 * tls.c: GnuTLS server sessions on non-blocking sockets (see tls.h).
 *
 * Credentials are reference counted: the server holds one reference to
 * the current set, every session one to the set it started with, so a
 * reload never frees what an open session still uses. The mutex guards
 * only the swap and the reference counts (taken once per handshake).
 */
#include "crypto/tls.h"

#include "core/alloc.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEM_BYTES (1024 * 1024)

/*
 * TLS 1.2 and 1.3 only; forward secrecy only (ECDHE, DHE: no RSA key
 * exchange); AEAD only (no CBC, so no HMAC-SHA1/SHA256 suites and no
 * Lucky13); the server's order, not the client's, picks the suite. Check
 * with `gnutls-cli --priority STRING --list`.
 */
#define TLS_PRIORITIES                                                                             \
	"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-MAC-ALL:+AEAD:"            \
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:%SERVER_PRECEDENCE"

struct tls_creds {
	gnutls_certificate_credentials_t cert;
	gnutls_datum_t ticket_key; /* the master session-ticket key */
	int refs;                  /* under tls_server.lock */
};

struct tls_server {
	pthread_mutex_t lock;
	char *cert_path, *key_path;
	gnutls_priority_t prio;
	struct tls_creds *cur;
};

struct tls_session {
	gnutls_session_t s;
	struct tls_server *t;
	struct tls_creds *creds;
};

static char *read_file_bounded(const char *path, size_t *len, char *err, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	char *data = xmalloc(MAX_PEM_BYTES + 1);
	size_t n = fread(data, 1, MAX_PEM_BYTES + 1, f);
	fclose(f);
	if (n > MAX_PEM_BYTES) {
		free(data);
		snprintf(err, cap, "%s is larger than 1 MiB", path);
		return NULL;
	}
	data[n] = '\0';
	*len = n;
	return data;
}

static void creds_free(struct tls_creds *c)
{
	gnutls_certificate_free_credentials(c->cert);
	if (c->ticket_key.data) {
		gnutls_memset(c->ticket_key.data, 0, c->ticket_key.size);
		gnutls_free(c->ticket_key.data);
	}
	free(c);
}

static struct tls_creds *creds_load(const struct tls_server *t, char *err, size_t cap)
{
	size_t cert_len = 0, key_len = 0;
	char *cert = read_file_bounded(t->cert_path, &cert_len, err, cap);
	char *key = cert ? read_file_bounded(t->key_path, &key_len, err, cap) : NULL;
	struct tls_creds *c = NULL;
	if (!key)
		goto out;
	c = xcalloc(1, sizeof *c);
	c->refs = 1;
	gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)cert_len};
	gnutls_datum_t kd = {(unsigned char *)key, (unsigned)key_len};
	int rc = gnutls_certificate_allocate_credentials(&c->cert);
	if (rc == 0)
		rc = gnutls_certificate_set_x509_key_mem2(c->cert, &cd, &kd, GNUTLS_X509_FMT_PEM,
		                                          NULL, 0);
	if (rc < 0) {
		snprintf(err, cap, "cannot use %s with %s: %s", t->cert_path, t->key_path,
		         gnutls_strerror(rc));
		goto fail;
	}
	/* DHE suites use the RFC 7919 group of the key's strength. */
	gnutls_certificate_set_known_dh_params(c->cert, GNUTLS_SEC_PARAM_HIGH);
	rc = gnutls_session_ticket_key_generate(&c->ticket_key);
	if (rc < 0) {
		snprintf(err, cap, "cannot make a session ticket key: %s", gnutls_strerror(rc));
		goto fail;
	}
	goto out;
fail:
	if (c->cert)
		gnutls_certificate_free_credentials(c->cert);
	free(c);
	c = NULL;
out:
	if (key) {
		gnutls_memset(key, 0, key_len);
		free(key);
	}
	free(cert);
	return c;
}

struct tls_server *tls_server_create(const char *cert_path, const char *key_path, char *err,
                                     size_t cap)
{
	struct tls_server *t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->lock, NULL);
	t->cert_path = xstrdup(cert_path);
	t->key_path = xstrdup(key_path);
	const char *where = NULL;
	if (gnutls_priority_init2(&t->prio, TLS_PRIORITIES, &where, 0) < 0) {
		snprintf(err, cap, "the TLS priority string is refused near %s",
		         where ? where : "?");
		t->prio = NULL;
		goto fail;
	}
	t->cur = creds_load(t, err, cap);
	if (!t->cur)
		goto fail;
	return t;
fail:
	tls_server_destroy(t);
	return NULL;
}

static void creds_release(struct tls_server *t, struct tls_creds *c)
{
	pthread_mutex_lock(&t->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (last)
		creds_free(c);
}

int tls_server_reload(struct tls_server *t, char *err, size_t cap)
{
	struct tls_creds *c = creds_load(t, err, cap);
	if (!c)
		return -1;
	pthread_mutex_lock(&t->lock);
	struct tls_creds *old = t->cur;
	t->cur = c;
	pthread_mutex_unlock(&t->lock);
	creds_release(t, old);
	return 0;
}

void tls_server_destroy(struct tls_server *t)
{
	if (!t)
		return;
	/* Sessions still open (abandoned at shutdown) keep theirs; the set is freed with the last.
	 */
	if (t->cur)
		creds_release(t, t->cur);
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	free(t->cert_path);
	free(t->key_path);
	/* The lock stays: an abandoned session may still release through it. */
	free(t);
}

/* ALPN (RFC 7301): h2 first when offered, then http/1.1; the server's order decides. */
static int offer_alpn(gnutls_session_t s, bool h2)
{
	gnutls_datum_t protos[2] = {
	    {(unsigned char *)"h2", 2},
	    {(unsigned char *)"http/1.1", 8},
	};
	return h2 ? gnutls_alpn_set_protocols(s, protos, 2, GNUTLS_ALPN_SERVER_PRECEDENCE)
	          : gnutls_alpn_set_protocols(s, protos + 1, 1, 0);
}

bool tls_session_h2(struct tls_session *s)
{
	gnutls_datum_t p;
	return gnutls_alpn_get_selected_protocol(s->s, &p) == 0 && p.size == 2 &&
	       memcmp(p.data, "h2", 2) == 0;
}

struct tls_session *tls_session_new(struct tls_server *t, int fd, bool h2)
{
	struct tls_session *s = xcalloc(1, sizeof *s);
	s->t = t;
	pthread_mutex_lock(&t->lock);
	s->creds = t->cur;
	s->creds->refs++;
	pthread_mutex_unlock(&t->lock);
	if (gnutls_init(&s->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
		s->s = NULL;
		goto fail;
	}
	if (gnutls_priority_set(s->s, t->prio) < 0 ||
	    gnutls_credentials_set(s->s, GNUTLS_CRD_CERTIFICATE, s->creds->cert) < 0 ||
	    gnutls_session_ticket_enable_server(s->s, &s->creds->ticket_key) < 0 ||
	    offer_alpn(s->s, h2) < 0)
		goto fail;
	gnutls_certificate_server_set_request(s->s, GNUTLS_CERT_IGNORE);
	/* The connection layer's header deadline bounds the handshake. */
	gnutls_handshake_set_timeout(s->s, GNUTLS_INDEFINITE_TIMEOUT);
	gnutls_transport_set_int(s->s, fd);
	return s;
fail:
	tls_session_free(s);
	return NULL;
}

static int again_or_fail(int rc)
{
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return TLS_AGAIN;
	return TLS_FAIL;
}

int tls_session_handshake(struct tls_session *s)
{
	int rc = gnutls_handshake(s->s);
	if (rc == 0)
		return 0;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    (rc < 0 && !gnutls_error_is_fatal(rc)))
		return TLS_AGAIN;
	return TLS_FAIL;
}

ssize_t tls_session_recv(struct tls_session *s, void *buf, size_t n)
{
	for (;;) {
		ssize_t r = gnutls_record_recv(s->s, buf, n);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_REHANDSHAKE || r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue; /* ignored: no renegotiation in TLS 1.3, refused in 1.2 */
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		return again_or_fail((int)r);
	}
}

ssize_t tls_session_send(struct tls_session *s, const void *buf, size_t n)
{
	ssize_t r = gnutls_record_send(s->s, buf, n);
	return r >= 0 ? r : again_or_fail((int)r);
}

bool tls_session_pending(struct tls_session *s)
{
	return gnutls_record_check_pending(s->s) > 0;
}

void tls_session_bye(struct tls_session *s)
{
	(void)gnutls_bye(s->s, GNUTLS_SHUT_WR);
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	if (s->s)
		gnutls_deinit(s->s);
	creds_release(s->t, s->creds);
	free(s);
}
