/*
 * fuzz_idem.c: the pure Idempotency-Key code (policy/idempotency.h) on
 * client-controlled bytes: idem_key_valid, idem_fingerprint and
 * idem_storage_key, each against a small reference.
 *
 * Input layout: byte 0 is the output capacity given to idem_storage_key
 * (0-255; the exact-size heap buffer lets ASan catch any write past it),
 * then up to five NUL-separated fields, method, path, org_id, key_id and
 * idem_key; whatever follows the fifth NUL is the request body (any bytes).
 * Missing fields are empty.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "policy/idempotency.h"

#define N_FIELDS 5

static bool ref_key_valid(const char *s, size_t len)
{
	if (len < 1 || len > IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool ref_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > IDEM_ID_MAX)
		return false;
	return strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-") == n;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
	static const unsigned char empty[1];
	FUZZ_CHECK(gnutls_hash_fast(GNUTLS_DIG_SHA256, n ? p : empty, n, out) == 0);
}

static void check_fingerprint(const char *method, const char *path, const uint8_t *body,
                              size_t body_len)
{
	char fp[65], fp2[65], want[65];
	unsigned char bh[32], d[32];
	size_t ml = strlen(method), pl = strlen(path);

	idem_fingerprint(method, path, body_len ? body : NULL, body_len, fp);
	FUZZ_CHECK(is_lower_hex(fp, 64));
	idem_fingerprint(method, path, body_len ? body : NULL, body_len, fp2);
	FUZZ_CHECK(memcmp(fp, fp2, sizeof(fp)) == 0);

	/* Reference: SHA-256(method NUL path NUL SHA-256(body)). */
	unsigned char *msg = malloc(ml + 1 + pl + 1 + 32);
	FUZZ_CHECK(msg != NULL);
	memcpy(msg, method, ml + 1);
	memcpy(msg + ml + 1, path, pl + 1);
	sha256(body, body_len, bh);
	memcpy(msg + ml + 1 + pl + 1, bh, 32);
	sha256(msg, ml + 1 + pl + 1 + 32, d);
	free(msg);
	hex(d, 32, want);
	FUZZ_CHECK(memcmp(fp, want, 65) == 0);
}

static void check_storage_key(const char *org, const char *key_id, const char *idem, size_t cap)
{
	char want[IDEM_STORAGE_KEY_MAX + 64];
	unsigned char d[32];
	char h[65];
	char *out = malloc(cap ? cap : 1);
	FUZZ_CHECK(out != NULL);

	size_t il = strlen(idem);
	bool valid = ref_id_valid(org) && ref_id_valid(key_id) && ref_key_valid(idem, il);
	size_t need = 5 + strlen(org) + 1 + strlen(key_id) + 1 + 64 + 1;

	int rc = idem_storage_key(org, key_id, idem, out, cap);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (valid)
		FUZZ_CHECK(need <= IDEM_STORAGE_KEY_MAX);
	FUZZ_CHECK(rc == ((valid && cap >= need) ? 0 : -1));
	if (rc == 0) {
		sha256(idem, il, d);
		hex(d, 32, h);
		snprintf(want, sizeof(want), "idem:%s:%s:%s", org, key_id, h);
		FUZZ_CHECK(strlen(out) + 1 == need);
		FUZZ_CHECK(strcmp(out, want) == 0);
	} else if (cap > 0) {
		FUZZ_CHECK(out[0] == '\0');
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[N_FIELDS];
	char *copy;
	size_t cap, pos = 1;
	int n = 0;

	/* idem_key_valid on the raw bytes, not NUL-terminated. */
	FUZZ_CHECK(idem_key_valid((const char *)data, size) ==
	           ref_key_valid((const char *)data, size));
	FUZZ_CHECK(!idem_key_valid(NULL, 0));
	if (size == 0)
		return 0;

	cap = data[0];
	copy = malloc(size + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	while (n < N_FIELDS) {
		field[n++] = copy + pos;
		const char *nul = memchr(copy + pos, '\0', size + 1 - pos);
		pos = (size_t)(nul - copy) + 1;
		if (pos > size) {
			pos = size;
			break;
		}
	}
	while (n < N_FIELDS)
		field[n++] = "";

	check_fingerprint(field[0], field[1], data + pos, size - pos);
	check_storage_key(field[2], field[3], field[4], cap);
	/* The key field as a header value: length given, not NUL-terminated. */
	FUZZ_CHECK(idem_key_valid(field[4], strlen(field[4])) ==
	           ref_key_valid(field[4], strlen(field[4])));

	free(copy);
	return 0;
}
