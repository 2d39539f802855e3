/*
 * ecdsa.c: ECDSA P-256 SHA-256 verification over GnuTLS (see ecdsa.h).
 *
 * The key is imported for each verification: a report is rare, a P-256
 * import is microseconds, and keeping no gnutls_pubkey_t around means the
 * caller's key cache holds only PEM text. The curve is checked explicitly,
 * so a key set naming a P-384 or RSA key cannot widen what is accepted.
 */
#include "crypto/ecdsa.h"

#include <stdint.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "crypto/hash.h"

/* Import pem as a P-256 public key into *out (to be deinit'ed by the caller). */
static int import_p256(const char *pem, size_t pem_len, gnutls_pubkey_t *out)
{
	gnutls_pubkey_t key = NULL;
	gnutls_datum_t d;
	unsigned bits = 0;
	int rc = ECDSA_ERR_KEY;

	*out = NULL;
	if (!pem || pem_len == 0 || pem_len > ECDSA_PEM_MAX)
		return ECDSA_ERR_KEY;
	if (gnutls_pubkey_init(&key) != 0)
		return ECDSA_ERR_KEY;
	d.data = (unsigned char *)(uintptr_t)pem;
	d.size = (unsigned)pem_len;
	if (gnutls_pubkey_import(key, &d, GNUTLS_X509_FMT_PEM) != 0)
		goto out;
	if (gnutls_pubkey_get_pk_algorithm(key, &bits) != GNUTLS_PK_ECDSA)
		goto out;
	{
		gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;

		if (gnutls_pubkey_export_ecc_raw(key, &curve, NULL, NULL) != 0 ||
		    curve != GNUTLS_ECC_CURVE_SECP256R1)
			goto out;
	}
	*out = key;
	key = NULL;
	rc = ECDSA_OK;
out:
	if (key)
		gnutls_pubkey_deinit(key);
	return rc;
}

int ecdsa_p256_key_check(const char *pem, size_t pem_len)
{
	gnutls_pubkey_t key;
	int rc = import_p256(pem, pem_len, &key);

	if (rc == ECDSA_OK)
		gnutls_pubkey_deinit(key);
	return rc;
}

int ecdsa_p256_verify(const char *pem, size_t pem_len, const void *data, size_t len,
                      const char *sig_b64, size_t sig_len)
{
	uint8_t der[ECDSA_SIG_B64_MAX];
	size_t der_len = 0;
	gnutls_pubkey_t key = NULL;
	gnutls_datum_t msg;
	gnutls_datum_t sig;
	int rc;

	/* DER SEQUENCE { INTEGER r, INTEGER s }: tag 0x30, at least 8 bytes. */
	if (!sig_b64 || sig_len == 0 || sig_len > ECDSA_SIG_B64_MAX ||
	    base64_decode(sig_b64, sig_len, der, sizeof(der), &der_len) != 0 || der_len < 8 ||
	    der[0] != 0x30)
		return ECDSA_ERR_ENCODING;
	if (len > UINT32_MAX)
		return ECDSA_ERR_SIGNATURE; /* GnuTLS datums are 32-bit; no report is this big */
	rc = import_p256(pem, pem_len, &key);
	if (rc != ECDSA_OK)
		return rc;
	msg.data = (unsigned char *)(uintptr_t)(len ? data : "");
	msg.size = (unsigned)len;
	sig.data = der;
	sig.size = (unsigned)der_len;
	if (gnutls_pubkey_verify_data2(key, GNUTLS_SIGN_ECDSA_SHA256, 0, &msg, &sig) < 0)
		rc = ECDSA_ERR_SIGNATURE;
	gnutls_pubkey_deinit(key);
	return rc;
}
