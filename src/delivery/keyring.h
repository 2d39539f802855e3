/*
 * keyring.h: the background tier's private keys ([secrets] private_key_file),
 * read at start and read again when a stored secret names a key the keyring
 * lacks (the file may have gained it: `secrets rotate`), at most every
 * KEYRING_RETRY_MS. The delivery engine opens endpoint secrets with it, the
 * Conversions API forward access tokens and advertising ids.
 */
#ifndef PORTCULLIS_DELIVERY_KEYRING_H
#define PORTCULLIS_DELIVERY_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/sealed.h"

/** A key missing from the keyring: the key file is read again at most this often. */
#define KEYRING_RETRY_MS 10000

struct keyring_file {
	char *path;
	struct sealed_keyring *keys; /* NULL until a read works */
	int64_t tried_mono;          /* clock_mono_ms of the last read */
	bool log_loads; /* log secrets_keyring_loaded (#keys) after each read that works */
};

/**
 * Read the key file at path (copied) into kf: 0; or -1 with the reason in err
 * (cap bytes; kf->keys stays NULL and the file is read again when a secret
 * needs it). kf is closed with keyring_file_close either way.
 */
int keyring_file_open(struct keyring_file *kf, const char *path, bool log_loads, char *err,
                      size_t cap);

/**
 * The keyring to open stored with: read again first when it lacks the key
 * stored names and the last read is KEYRING_RETRY_MS old (a read that fails
 * keeps the keyring there was and logs secrets_key_file). NULL when stored
 * names no key or no read has worked yet.
 */
const struct sealed_keyring *keyring_file_for(struct keyring_file *kf, const char *stored);

/** Wipe and free what kf holds (a zeroed kf is a no-op). */
void keyring_file_close(struct keyring_file *kf);

#endif
