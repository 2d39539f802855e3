/*
 * keyring.c: the background tier's private keys, read again when a secret
 * names a key they lack (see keyring.h).
 */
#include "delivery/keyring.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>

static void log_loaded(const struct keyring_file *kf)
{
	if (!kf->log_loads)
		return;
	char n[16];
	snprintf(n, sizeof n, "%zu", sealed_keyring_count(kf->keys));
	log_event(LOG_INFO, "secrets_keyring_loaded", "#keys", n, NULL);
}

int keyring_file_open(struct keyring_file *kf, const char *path, bool log_loads, char *err,
                      size_t cap)
{
	kf->path = xstrdup(path);
	kf->log_loads = log_loads;
	kf->keys = NULL;
	int rc = sealed_keyring_load(kf->path, &kf->keys, err, cap);
	kf->tried_mono = clock_mono_ms();
	if (rc != SEALED_OK)
		return -1;
	log_loaded(kf);
	return 0;
}

const struct sealed_keyring *keyring_file_for(struct keyring_file *kf, const char *stored)
{
	char kid[SEALED_KEY_ID_LEN + 1];
	if (sealed_stored_key_id(stored, kid) != SEALED_OK)
		return NULL;
	int64_t now = clock_mono_ms();
	if ((!kf->keys || !sealed_keyring_has(kf->keys, kid)) &&
	    now - kf->tried_mono >= KEYRING_RETRY_MS) {
		kf->tried_mono = now;
		struct sealed_keyring *kr = NULL;
		char err[512];
		if (sealed_keyring_load(kf->path, &kr, err, sizeof err) == SEALED_OK) {
			sealed_keyring_free(kf->keys);
			kf->keys = kr;
			log_loaded(kf);
		} else {
			log_event(LOG_ERROR, "secrets_key_file", "error", err, NULL);
		}
	}
	return kf->keys;
}

void keyring_file_close(struct keyring_file *kf)
{
	sealed_keyring_free(kf->keys);
	kf->keys = NULL;
	free(kf->path);
	kf->path = NULL;
}
