/*
 * sealed.c: column secrets sealed to the instance's X25519 key pair (see
 * sealed.h for the formats). The only file that calls libsodium: sealed boxes
 * (crypto_box_seal / crypto_box_seal_open), key generation, locked memory for
 * the keyring (sodium_malloc: guard pages, mlock, wiped by sodium_free) and
 * sodium_memzero for every buffer that held a plaintext or a private key.
 *
 * The context is checked after the box opens: the box authenticates the whole
 * plaintext, so a context that differs is a ciphertext moved from elsewhere,
 * reported as SEALED_ECONTEXT. The context is not secret, so a plain compare
 * is enough there.
 */
#include "crypto/sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/str.h"
#include "crypto/hash.h"

#define STORED_PREFIX  "pcs1:"
#define KEYLINE_PREFIX "pcsk1:"
#define NFIELDS        4
/* The longest plaintext: four length-prefixed fields and the secret. */
#define PT_MAX  (NFIELDS * (1 + SEALED_FIELD_MAX) + SEALED_SECRET_MAX)
#define BOX_MAX (crypto_box_SEALBYTES + PT_MAX)
/* base64 of a 32-byte key: 44 characters with one "=". */
#define SK_B64_LEN 44
/* The longest key file: SEALED_KEYRING_MAX full lines. */
#define FILE_MAX (SEALED_KEYRING_MAX * SEALED_KEY_LINE_MAX)

_Static_assert(crypto_box_PUBLICKEYBYTES == SEALED_PK_LEN, "X25519 public key size");
_Static_assert(crypto_box_SECRETKEYBYTES == SEALED_SK_LEN, "X25519 secret key size");
_Static_assert(sizeof(STORED_PREFIX) - 1 + SEALED_KEY_ID_LEN + 1 + 4 * ((BOX_MAX + 2) / 3) + 1 <=
                   SEALED_TEXT_MAX,
               "SEALED_TEXT_MAX holds the longest stored text");
_Static_assert(sizeof(KEYLINE_PREFIX) - 1 + SEALED_KEY_ID_LEN + 1 + SK_B64_LEN + 2 <=
                   SEALED_KEY_LINE_MAX,
               "SEALED_KEY_LINE_MAX holds a key line");

struct sealed_key {
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	uint8_t sk[SEALED_SK_LEN];
};

/* Allocated whole with sodium_malloc, so every private key sits in locked memory. */
struct sealed_keyring {
	size_t n;
	struct sealed_key k[SEALED_KEYRING_MAX];
};

static int ready(void)
{
	/* Thread-safe and cheap after the first call (libsodium >= 1.0.11). */
	return sodium_init() >= 0 ? 0 : -1;
}

void sealed_wipe(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

void sealed_key_id(const uint8_t pk[32], char key_id[SEALED_KEY_ID_LEN + 1])
{
	uint8_t d[SHA256_LEN];

	sha256(pk, SEALED_PK_LEN, d);
	hex_encode(d, SEALED_KEY_ID_LEN / 2, key_id);
}

/* Exactly SEALED_KEY_ID_LEN lower-case hex digits at s (not necessarily NUL-terminated). */
static bool key_id_valid(const char *s, size_t n)
{
	if (n != SEALED_KEY_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool context_valid(const struct sealed_context *ctx)
{
	const char *f[NFIELDS] = {ctx->table, ctx->column, ctx->row_id, ctx->org_id};

	for (int i = 0; i < NFIELDS; i++) {
		if (!f[i])
			return false;
		size_t n = strnlen(f[i], SEALED_FIELD_MAX + 1);
		if (n == 0 || n > SEALED_FIELD_MAX)
			return false;
	}
	return true;
}

int sealed_keypair(uint8_t pk[32], uint8_t sk[32], char key_id[SEALED_KEY_ID_LEN + 1])
{
	if (ready() != 0)
		return SEALED_EFORMAT;
	crypto_box_keypair(pk, sk);
	sealed_key_id(pk, key_id);
	return SEALED_OK;
}

int sealed_seal(const char *key_id, const uint8_t pk[32], const struct sealed_context *ctx,
                const uint8_t *secret, size_t len, char *out, size_t cap)
{
	const char *f[NFIELDS] = {ctx->table, ctx->column, ctx->row_id, ctx->org_id};
	char want[SEALED_KEY_ID_LEN + 1];
	uint8_t pt[PT_MAX];
	uint8_t box[BOX_MAX];
	size_t n = 0;
	size_t head;
	int rc = SEALED_EFORMAT;

	if (cap)
		out[0] = '\0';
	if (ready() != 0 || !key_id || !key_id_valid(key_id, strlen(key_id)) ||
	    !context_valid(ctx) || len > SEALED_SECRET_MAX || (len && !secret))
		return SEALED_EFORMAT;
	sealed_key_id(pk, want);
	if (strcmp(want, key_id) != 0)
		return SEALED_EKEY;
	for (int i = 0; i < NFIELDS; i++) {
		size_t l = strlen(f[i]);
		pt[n++] = (uint8_t)l;
		memcpy(pt + n, f[i], l);
		n += l;
	}
	if (len)
		memcpy(pt + n, secret, len);
	n += len;
	head = sizeof(STORED_PREFIX) - 1 + SEALED_KEY_ID_LEN + 1;
	if (cap < head + base64_encoded_len(crypto_box_SEALBYTES + n) + 1) {
		rc = SEALED_ESPACE;
		goto out;
	}
	if (crypto_box_seal(box, pt, n, pk) != 0)
		goto out;
	memcpy(out, STORED_PREFIX, sizeof(STORED_PREFIX) - 1);
	memcpy(out + sizeof(STORED_PREFIX) - 1, key_id, SEALED_KEY_ID_LEN);
	out[head - 1] = ':';
	if (base64_encode(box, crypto_box_SEALBYTES + n, out + head, cap - head) != 0) {
		out[0] = '\0';
		goto out;
	}
	rc = SEALED_OK;
out:
	sealed_wipe(pt, sizeof(pt));
	return rc;
}

int sealed_stored_key_id(const char *stored, char key_id[SEALED_KEY_ID_LEN + 1])
{
	size_t p = sizeof(STORED_PREFIX) - 1;

	if (!stored || strncmp(stored, STORED_PREFIX, p) != 0 ||
	    strnlen(stored + p, SEALED_KEY_ID_LEN + 1) < SEALED_KEY_ID_LEN + 1 ||
	    !key_id_valid(stored + p, SEALED_KEY_ID_LEN) || stored[p + SEALED_KEY_ID_LEN] != ':')
		return SEALED_EFORMAT;
	memcpy(key_id, stored + p, SEALED_KEY_ID_LEN);
	key_id[SEALED_KEY_ID_LEN] = '\0';
	return SEALED_OK;
}

static const struct sealed_key *find(const struct sealed_keyring *kr, const char *key_id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->k[i].id, key_id) == 0)
			return &kr->k[i];
	return NULL;
}

/* Compare the context at pt[0..n) with ctx; *secret_at = where the secret starts. */
static int context_check(const uint8_t *pt, size_t n, const struct sealed_context *ctx,
                         size_t *secret_at)
{
	const char *f[NFIELDS] = {ctx->table, ctx->column, ctx->row_id, ctx->org_id};
	size_t p = 0;
	bool same = true;

	for (int i = 0; i < NFIELDS; i++) {
		if (p >= n)
			return SEALED_EFORMAT;
		size_t l = pt[p++];
		if (l == 0 || l > n - p)
			return SEALED_EFORMAT;
		if (strlen(f[i]) != l || memcmp(pt + p, f[i], l) != 0)
			same = false;
		p += l;
	}
	*secret_at = p;
	return same ? SEALED_OK : SEALED_ECONTEXT;
}

int sealed_open(const struct sealed_keyring *kr, const char *stored,
                const struct sealed_context *ctx, uint8_t *out, size_t cap, size_t *len)
{
	char id[SEALED_KEY_ID_LEN + 1];
	const struct sealed_key *k;
	const char *b64;
	size_t b64_len;
	uint8_t box[BOX_MAX];
	size_t box_len = 0;
	uint8_t pt[PT_MAX];
	size_t pt_len = 0;
	size_t at = 0;
	int rc;

	*len = 0;
	rc = SEALED_EFORMAT;
	if (ready() != 0 || !context_valid(ctx) || sealed_stored_key_id(stored, id) != SEALED_OK)
		goto out;
	b64 = stored + sizeof(STORED_PREFIX) - 1 + SEALED_KEY_ID_LEN + 1;
	b64_len = strnlen(b64, base64_encoded_len(BOX_MAX) + 1);
	if (b64_len > base64_encoded_len(BOX_MAX) ||
	    base64_decode(b64, b64_len, box, sizeof(box), &box_len) != 0 ||
	    box_len < crypto_box_SEALBYTES + 2 * NFIELDS)
		goto out;
	rc = SEALED_EKEY;
	k = find(kr, id);
	if (!k)
		goto out;
	pt_len = box_len - crypto_box_SEALBYTES;
	if (crypto_box_seal_open(pt, box, box_len, k->pk, k->sk) != 0)
		goto out;
	rc = context_check(pt, pt_len, ctx, &at);
	if (rc != SEALED_OK)
		goto out;
	if (pt_len - at > cap) {
		rc = SEALED_ESPACE;
		goto out;
	}
	if (pt_len > at)
		memcpy(out, pt + at, pt_len - at);
	*len = pt_len - at;
out:
	sealed_wipe(pt, sizeof(pt));
	if (rc != SEALED_OK)
		sealed_wipe(out, cap);
	return rc;
}

/* n bytes of locked, guarded memory (sodium_malloc); aborts like xmalloc. Free with sodium_free. */
static void *locked_alloc(size_t n)
{
	void *p;

	if (ready() != 0)
		fatal("libsodium cannot be initialised");
	p = sodium_malloc(n);
	if (!p)
		fatal("out of memory (sodium_malloc)");
	sodium_memzero(p, n);
	return p;
}

struct sealed_keyring *sealed_keyring_new(void)
{
	return locked_alloc(sizeof(struct sealed_keyring));
}

void sealed_keyring_free(struct sealed_keyring *kr)
{
	if (kr)
		sodium_free(kr); /* wipes, unlocks and unmaps */
}

size_t sealed_keyring_count(const struct sealed_keyring *kr)
{
	return kr->n;
}

int sealed_keyring_key(const struct sealed_keyring *kr, size_t i,
                       char key_id[SEALED_KEY_ID_LEN + 1], uint8_t pk[32])
{
	if (i >= kr->n)
		return SEALED_EKEY;
	memcpy(key_id, kr->k[i].id, SEALED_KEY_ID_LEN + 1);
	if (pk)
		memcpy(pk, kr->k[i].pk, SEALED_PK_LEN);
	return SEALED_OK;
}

bool sealed_keyring_has(const struct sealed_keyring *kr, const char *key_id)
{
	return key_id && find(kr, key_id) != NULL;
}

int sealed_keyring_generate(struct sealed_keyring *kr, char key_id[SEALED_KEY_ID_LEN + 1],
                            uint8_t pk[32])
{
	struct sealed_key *k;

	if (kr->n >= SEALED_KEYRING_MAX)
		return SEALED_ESPACE;
	k = &kr->k[kr->n];
	crypto_box_keypair(k->pk, k->sk);
	sealed_key_id(k->pk, k->id);
	kr->n++;
	memcpy(key_id, k->id, SEALED_KEY_ID_LEN + 1);
	memcpy(pk, k->pk, SEALED_PK_LEN);
	return SEALED_OK;
}

int sealed_keyring_remove(struct sealed_keyring *kr, const char *key_id)
{
	for (size_t i = 0; i < kr->n; i++) {
		if (strcmp(kr->k[i].id, key_id) != 0)
			continue;
		memmove(&kr->k[i], &kr->k[i + 1], (kr->n - i - 1) * sizeof(kr->k[0]));
		kr->n--;
		sodium_memzero(&kr->k[kr->n], sizeof(kr->k[0]));
		return SEALED_OK;
	}
	return SEALED_EKEY;
}

/* One "pcsk1:<id>:<base64 sk>" line (no newline) of n bytes at s into kr. */
static int parse_line(struct sealed_keyring *kr, const char *s, size_t n, const char **why)
{
	const size_t idp = sizeof(KEYLINE_PREFIX) - 1;
	const size_t skp = idp + SEALED_KEY_ID_LEN + 1;
	struct sealed_key *k;
	size_t sk_len = 0;
	char id[SEALED_KEY_ID_LEN + 1];

	if (n != skp + SK_B64_LEN || memcmp(s, KEYLINE_PREFIX, idp) != 0 ||
	    !key_id_valid(s + idp, SEALED_KEY_ID_LEN) || s[skp - 1] != ':') {
		*why = "not a pcsk1:<key id>:<base64 key> line";
		return SEALED_EFORMAT;
	}
	if (kr->n >= SEALED_KEYRING_MAX) {
		*why = "too many keys";
		return SEALED_EFORMAT;
	}
	k = &kr->k[kr->n];
	if (base64_decode(s + skp, SK_B64_LEN, k->sk, sizeof(k->sk), &sk_len) != 0 ||
	    sk_len != SEALED_SK_LEN) {
		sodium_memzero(k, sizeof(*k));
		*why = "the key is not base64 of 32 bytes";
		return SEALED_EFORMAT;
	}
	crypto_scalarmult_base(k->pk, k->sk);
	sealed_key_id(k->pk, k->id);
	memcpy(id, s + idp, SEALED_KEY_ID_LEN);
	id[SEALED_KEY_ID_LEN] = '\0';
	if (strcmp(id, k->id) != 0 || find(kr, k->id)) {
		*why =
		    strcmp(id, k->id) != 0 ? "the key id does not match the key" : "a repeated key";
		sodium_memzero(k, sizeof(*k));
		return SEALED_EFORMAT;
	}
	kr->n++;
	return SEALED_OK;
}

static int parse_file(struct sealed_keyring *kr, const char *buf, size_t n, const char *path,
                      char *err, size_t cap)
{
	size_t p = 0;
	int line = 0;

	while (p < n) {
		const char *nl = memchr(buf + p, '\n', n - p);
		size_t l = nl ? (size_t)(nl - (buf + p)) : n - p;
		const char *why = NULL;

		line++;
		if (l > 0 && parse_line(kr, buf + p, l, &why) != SEALED_OK) {
			snprintf(err, cap, "%s: line %d: %s", path, line, why);
			return SEALED_EFORMAT;
		}
		p += l + (nl ? 1 : 0);
	}
	if (kr->n == 0) {
		snprintf(err, cap, "%s: holds no key", path);
		return SEALED_EFORMAT;
	}
	return SEALED_OK;
}

int sealed_keyring_load(const char *path, struct sealed_keyring **out, char *err, size_t cap)
{
	struct sealed_keyring *kr = NULL;
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd;
	int rc = SEALED_EFORMAT;

	*out = NULL;
	if (cap)
		err[0] = '\0';
	/* O_NONBLOCK: a FIFO must not hang the open; it is refused below. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
		return SEALED_EKEY;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, cap, "%s: cannot stat: %s", path, strerror(errno));
		rc = SEALED_EKEY;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, cap, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(err, cap, "%s: mode %04o gives group or others access; chmod 600 it", path,
		         (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > FILE_MAX) {
		snprintf(err, cap, "%s: larger than %d bytes", path, FILE_MAX);
		goto out;
	}
	buf = locked_alloc(FILE_MAX + 1);
	for (;;) {
		ssize_t r = read(fd, buf + n, FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, cap, "%s: cannot read: %s", path, strerror(errno));
			rc = SEALED_EKEY;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > FILE_MAX) {
			snprintf(err, cap, "%s: larger than %d bytes", path, FILE_MAX);
			goto out;
		}
	}
	kr = sealed_keyring_new();
	rc = parse_file(kr, buf, n, path, err, cap);
	if (rc == SEALED_OK) {
		*out = kr;
		kr = NULL;
	}
out:
	if (buf)
		sodium_free(buf);
	sealed_keyring_free(kr);
	close(fd);
	return rc;
}

/* All of the len bytes at p to fd. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so a rename or a new name is durable. */
static void sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir =
	    !slash ? xstrdup(".") : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

int sealed_keyring_write(const struct sealed_keyring *kr, const char *path, bool create, char *err,
                         size_t cap)
{
	char *buf;
	size_t n = 0;
	char *tmp = NULL;
	const char *target = path;
	int fd = -1;
	int rc = SEALED_EKEY;

	if (cap)
		err[0] = '\0';
	buf = locked_alloc(FILE_MAX);
	for (size_t i = 0; i < kr->n; i++) {
		const size_t skp = sizeof(KEYLINE_PREFIX) - 1 + SEALED_KEY_ID_LEN + 1;
		char *l = buf + n;
		memcpy(l, KEYLINE_PREFIX, sizeof(KEYLINE_PREFIX) - 1);
		memcpy(l + sizeof(KEYLINE_PREFIX) - 1, kr->k[i].id, SEALED_KEY_ID_LEN);
		l[skp - 1] = ':';
		if (base64_encode(kr->k[i].sk, SEALED_SK_LEN, l + skp, SK_B64_LEN + 1) != 0)
			fatal("sealed: key line buffer too small");
		l[skp + SK_B64_LEN] = '\n';
		n += skp + SK_B64_LEN + 1;
	}
	if (!create) {
		uint8_t r[8];
		char hex[17];
		size_t tl = strlen(path) + sizeof(".tmp-") + sizeof(hex);

		randombytes_buf(r, sizeof(r));
		hex_encode(r, sizeof(r), hex);
		tmp = xmalloc(tl);
		snprintf(tmp, tl, "%s.tmp-%s", path, hex);
		target = tmp;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, cap, "%s: cannot create: %s", target, strerror(errno));
		goto out;
	}
	/* The umask can only narrow 0600; make it exactly 0600 all the same. */
	if (fchmod(fd, 0600) != 0 || write_all(fd, buf, n) != 0 || fsync(fd) != 0) {
		snprintf(err, cap, "%s: cannot write: %s", target, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, cap, "%s: cannot write: %s", target, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (tmp && rename(tmp, path) != 0) {
		snprintf(err, cap, "%s: cannot replace: %s", path, strerror(errno));
		goto fail;
	}
	sync_dir(path);
	rc = SEALED_OK;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	fd = -1;
	(void)unlink(target);
out:
	if (fd >= 0)
		close(fd);
	sodium_free(buf);
	free(tmp);
	return rc;
}
