/*
 * sealed.h: column secrets sealed at rest to the instance's X25519 public key
 * (libsodium sealed boxes, crypto_box_seal). Whoever holds the public key can
 * seal (the API process, which reads it from the store); only the holder of
 * the private key file can open (the background tier). See docs/security.md
 * "Which key protects what".
 *
 * Stored text:  "pcs1:<key id>:<base64 sealed box>"
 *   key id      16 lower-case hex characters: the first 8 bytes of
 *               SHA-256(public key).
 *   sealed box  crypto_box_seal of the plaintext below (48 bytes overhead).
 *   plaintext   the context, then the secret:
 *               len(table) table len(column) column len(row id) row id
 *               len(org id) org id secret...
 *               each len one byte (so a field is 1..255 bytes), the secret
 *               the rest (0..SEALED_SECRET_MAX bytes).
 * Opening checks the context field by field, so a ciphertext copied to another
 * column, row or organisation does not open.
 *
 * Private key file: one line per key, oldest first,
 *   "pcsk1:<key id>:<base64 of the 32-byte X25519 secret key>"
 * mode 0600 (a file any group or other permission bit is refused).
 *
 * crypto/ is the only layer that calls libsodium. Every function here is
 * thread-safe; a loaded keyring may be shared read-only between threads.
 */
#ifndef PORTCULLIS_CRYPTO_SEALED_H
#define PORTCULLIS_CRYPTO_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEALED_KEY_ID_LEN 16 /* hex of the first 8 bytes of SHA-256(public key) */
#define SEALED_PK_LEN     32
#define SEALED_SK_LEN     32

/** Longest context field (table, column, row id, org id) in bytes. */
#define SEALED_FIELD_MAX 255
/** Longest secret sealed_seal accepts, in bytes. */
#define SEALED_SECRET_MAX 1024
/** A buffer of this size holds any stored text sealed_seal writes, NUL included. */
#define SEALED_TEXT_MAX 4096
/** Most keys a private key file may hold. */
#define SEALED_KEYRING_MAX 64
/** A buffer of this size holds one private key line (sealed_key_line), "\n" and NUL included. */
#define SEALED_KEY_LINE_MAX 80

/** Where a sealed secret lives. Every field is 1..SEALED_FIELD_MAX bytes, never NULL. */
struct sealed_context {
	const char *table, *column, *row_id, *org_id;
};

enum {
	SEALED_OK = 0,
	SEALED_EFORMAT = -1,  /**< malformed stored text, context, key file or argument */
	SEALED_EKEY = -2,     /**< no such key, or the box does not open under it */
	SEALED_ECONTEXT = -3, /**< the box opened, but it was sealed for another place */
	SEALED_ESPACE = -4,   /**< the output buffer is too small */
};

/**
 * Generate a fresh X25519 key pair and its key id (NUL-terminated). The caller
 * wipes sk (sodium_memzero via sealed_wipe) when done. Returns SEALED_OK, or
 * SEALED_EFORMAT if libsodium cannot be initialised.
 */
int sealed_keypair(uint8_t pk[32], uint8_t sk[32], char key_id[SEALED_KEY_ID_LEN + 1]);

/** key_id = the key id of the public key pk (NUL-terminated). */
void sealed_key_id(const uint8_t pk[32], char key_id[SEALED_KEY_ID_LEN + 1]);

/**
 * Seal the len bytes at secret for ctx to the public key pk whose id is key_id,
 * and write "pcs1:<key id>:<base64 sealed box>" with a NUL into out (cap bytes;
 * SEALED_TEXT_MAX always suffices). key_id must be sealed_key_id(pk).
 * Returns SEALED_OK; SEALED_EFORMAT for a bad key id, context field or a
 * secret over SEALED_SECRET_MAX; SEALED_EKEY when key_id is not pk's id;
 * SEALED_ESPACE when cap is too small (out is then ""). Plaintext buffers are
 * wiped.
 */
int sealed_seal(const char *key_id, const uint8_t pk[32], const struct sealed_context *ctx,
                const uint8_t *secret, size_t len, char *out, size_t cap);

/**
 * The key id a stored text names, copied with a NUL into key_id. Checks the
 * "pcs1:<16 hex>:" prefix only, not the box. Returns SEALED_OK or
 * SEALED_EFORMAT.
 */
int sealed_stored_key_id(const char *stored, char key_id[SEALED_KEY_ID_LEN + 1]);

/** The private keys of an instance, held in locked memory and wiped on free. */
struct sealed_keyring;

/**
 * Load the private key file at path into *out (the caller frees it with
 * sealed_keyring_free). Refuses a file that is not a regular file, that has
 * any group or other permission bit, that is larger than the longest file
 * SEALED_KEYRING_MAX lines make, that holds a malformed line, a repeated key
 * or a key id that does not match its key. On failure *out is NULL, a message
 * naming the path and the reason (never key material) goes into err (cap
 * bytes) and SEALED_EFORMAT is returned (SEALED_EKEY when the file cannot be
 * read). The file's buffer is wiped after parsing.
 */
int sealed_keyring_load(const char *path, struct sealed_keyring **out, char *err, size_t cap);

/** An empty keyring (for a new instance's first key). Free with sealed_keyring_free. */
struct sealed_keyring *sealed_keyring_new(void);

/** Wipe and free a keyring. NULL is a no-op. */
void sealed_keyring_free(struct sealed_keyring *kr);

/**
 * Generate a key pair and append it to kr as its newest key; its id goes to
 * key_id and its public key to pk. Returns SEALED_OK, or SEALED_ESPACE when kr
 * already holds SEALED_KEYRING_MAX keys.
 */
int sealed_keyring_generate(struct sealed_keyring *kr, char key_id[SEALED_KEY_ID_LEN + 1],
                            uint8_t pk[32]);

/** Remove the key key_id from kr. Returns SEALED_OK, or SEALED_EKEY when kr lacks it. */
int sealed_keyring_remove(struct sealed_keyring *kr, const char *key_id);

/** Number of keys in kr. */
size_t sealed_keyring_count(const struct sealed_keyring *kr);

/**
 * The i-th key of kr (0 = oldest): its id into key_id and, when pk is not
 * NULL, its public key into pk. Returns SEALED_OK, or SEALED_EKEY when i is
 * out of range.
 */
int sealed_keyring_key(const struct sealed_keyring *kr, size_t i,
                       char key_id[SEALED_KEY_ID_LEN + 1], uint8_t pk[32]);

/** True when kr holds the private key key_id. */
bool sealed_keyring_has(const struct sealed_keyring *kr, const char *key_id);

/**
 * Write kr to path as a private key file, mode 0600. create: the file must not
 * exist (O_CREAT|O_EXCL|O_NOFOLLOW). Otherwise it is replaced atomically: a
 * temporary file beside it (O_EXCL|O_NOFOLLOW, 0600) is written, fsynced and
 * renamed over path. Returns SEALED_OK, or SEALED_EKEY with a message (no key
 * material) in err.
 */
int sealed_keyring_write(const struct sealed_keyring *kr, const char *path, bool create, char *err,
                         size_t cap);

/**
 * Open the stored text made by sealed_seal with the matching private key in kr
 * and check it was sealed for ctx; the secret goes to out (cap bytes) and its
 * length to *len. Returns SEALED_OK; SEALED_EFORMAT for malformed text or
 * context; SEALED_EKEY when kr lacks the key or the box does not open under it
 * (tampered); SEALED_ECONTEXT when it was sealed for another place;
 * SEALED_ESPACE when cap is too small. On failure out is wiped and *len is 0.
 */
int sealed_open(const struct sealed_keyring *kr, const char *stored,
                const struct sealed_context *ctx, uint8_t *out, size_t cap, size_t *len);

/** Wipe n bytes at p (sodium_memzero: not optimised away). */
void sealed_wipe(void *p, size_t n);

#endif
