/*
 * tls.h: server-side TLS for the connection layer (src/http/h1conn.c),
 * through GnuTLS on non-blocking sockets. One tls_server per process holds
 * the certificate, the priority string and the session-ticket key; each
 * accepted connection gets a tls_session over its fd.
 *
 * What is offered: TLS 1.2 and 1.3 only; forward-secret key exchange only
 * (ECDHE, DHE; no RSA key exchange); AEAD suites only (AES-GCM,
 * ChaCha20-Poly1305; no CBC, no SHA-1 MACs); the server's order picks the
 * suite. Session tickets (RFC 5077, TLS 1.3 PSK) are encrypted with keys
 * GnuTLS derives from the master ticket key and rotates by itself every
 * ticket lifetime; tls_server_reload also replaces the master key.
 *
 * Reloading (SIGHUP) swaps in new credentials for new handshakes; sessions
 * already open keep the credentials they started with, which are freed
 * when the last of them ends. No connection is dropped.
 */
#ifndef PORTCULLIS_CRYPTO_TLS_H
#define PORTCULLIS_CRYPTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_server;
struct tls_session;

enum {
	TLS_AGAIN = -1, /* the socket would block: wait for it, then call again */
	TLS_FAIL = -2,  /* the session is broken (or the peer misbehaved): close it */
};

/**
 * Load the PEM certificate chain and key (each at most 1 MiB) and prepare
 * the server. NULL with a message naming the file in err on failure.
 */
struct tls_server *tls_server_create(const char *cert_path, const char *key_path, char *err,
                                     size_t cap);
/**
 * Load the files again (the paths given to create) and use them for every
 * later handshake, with a fresh ticket key. Thread-safe. 0, or -1 with a
 * message in err (the old credentials stay in use).
 */
int tls_server_reload(struct tls_server *t, char *err, size_t cap);
/** Free the server; sessions still open keep their credentials alive. NULL is a no-op. */
void tls_server_destroy(struct tls_server *t);

/**
 * A server session over the connected, non-blocking socket fd (not owned),
 * offering ALPN h2 and http/1.1 (h2 true) or http/1.1 only. NULL on failure.
 */
struct tls_session *tls_session_new(struct tls_server *t, int fd, bool h2);
/** True when the client chose h2 by ALPN (after the handshake). */
bool tls_session_h2(struct tls_session *s);
/** Drive the handshake: 0 when done, TLS_AGAIN or TLS_FAIL. */
int tls_session_handshake(struct tls_session *s);
/** Decrypted bytes into buf: how many (> 0), 0 at the peer's close, TLS_AGAIN or TLS_FAIL. */
ssize_t tls_session_recv(struct tls_session *s, void *buf, size_t n);
/**
 * Send up to n bytes: how many were taken (> 0), TLS_AGAIN or TLS_FAIL.
 * After TLS_AGAIN call again with the same bytes (GnuTLS's rule).
 */
ssize_t tls_session_send(struct tls_session *s, const void *buf, size_t n);
/** True when decrypted bytes wait inside the session (read them without waiting for the fd). */
bool tls_session_pending(struct tls_session *s);
/** Send close_notify if the socket takes it now (non-blocking: one try, result ignored). */
void tls_session_bye(struct tls_session *s);
/** Free the session (no close_notify is sent; the caller closes the fd). NULL is a no-op. */
void tls_session_free(struct tls_session *s);

#endif
