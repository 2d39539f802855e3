/*
 * test_sealed.c: unit tests for src/crypto/sealed.c: sealed boxes open for
 * the place they were sealed for and nowhere else (each of the four context
 * fields), under no other key id, not after tampering, not from malformed
 * text; and the private key file (its format, its mode, what kind of file it
 * is, the atomic rewrite).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/str.h"
#include "crypto/hash.h"
#include "crypto/sealed.h"

static const struct sealed_context ctx = {"webhook_endpoints", "secret", "ep_01J0ROW",
                                          "org_01J0ORG"};
static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_sealed.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

/* A keyring with one fresh key, written to dir/name and loaded back. */
static struct sealed_keyring *ring_with_one_key(const char *name, char id[SEALED_KEY_ID_LEN + 1],
                                                uint8_t pk[32])
{
	struct sealed_keyring *kr = sealed_keyring_new();
	struct sealed_keyring *back = NULL;
	char path[128];
	char err[256];

	assert_int_equal(sealed_keyring_generate(kr, id, pk), SEALED_OK);
	path_in_dir(path, sizeof(path), name);
	assert_int_equal(sealed_keyring_write(kr, path, true, err, sizeof(err)), SEALED_OK);
	sealed_keyring_free(kr);
	assert_int_equal(sealed_keyring_load(path, &back, err, sizeof(err)), SEALED_OK);
	return back;
}

static void seal_ok(const char *id, const uint8_t pk[32], const struct sealed_context *c, char *out)
{
	assert_int_equal(
	    sealed_seal(id, pk, c, (const uint8_t *)secret, strlen(secret), out, SEALED_TEXT_MAX),
	    SEALED_OK);
}

static void test_round_trip(void **state)
{
	uint8_t pk[32], sk[32];
	char id[SEALED_KEY_ID_LEN + 1], id2[SEALED_KEY_ID_LEN + 1];
	char stored[SEALED_TEXT_MAX], again[SEALED_TEXT_MAX];
	char prefix[32];
	uint8_t d[SHA256_LEN];
	char hex[17];
	uint8_t out[SEALED_SECRET_MAX];
	size_t n = 99;
	struct sealed_keyring *kr = ring_with_one_key("rt.key", id, pk);
	(void)state;

	/* The key id is the hex of the first 8 bytes of SHA-256(public key). */
	sha256(pk, 32, d);
	hex_encode(d, 8, hex);
	assert_string_equal(id, hex);
	sealed_key_id(pk, id2);
	assert_string_equal(id, id2);

	seal_ok(id, pk, &ctx, stored);
	snprintf(prefix, sizeof(prefix), "pcs1:%s:", id);
	assert_memory_equal(stored, prefix, strlen(prefix));
	assert_null(strstr(stored, "whsec_"));
	assert_int_equal(sealed_stored_key_id(stored, id2), SEALED_OK);
	assert_string_equal(id2, id);
	assert_int_equal(sealed_open(kr, stored, &ctx, out, sizeof(out), &n), SEALED_OK);
	assert_int_equal(n, strlen(secret));
	assert_memory_equal(out, secret, n);

	/* Sealing is randomised: the same secret seals to a different text, which opens too. */
	seal_ok(id, pk, &ctx, again);
	assert_string_not_equal(stored, again);
	assert_int_equal(sealed_open(kr, again, &ctx, out, sizeof(out), &n), SEALED_OK);

	/* The empty secret and the longest one. */
	assert_int_equal(sealed_seal(id, pk, &ctx, NULL, 0, stored, sizeof(stored)), SEALED_OK);
	assert_int_equal(sealed_open(kr, stored, &ctx, out, sizeof(out), &n), SEALED_OK);
	assert_int_equal(n, 0);
	memset(out, 0xA5, sizeof(out));
	char field[SEALED_FIELD_MAX + 1];
	memset(field, 't', SEALED_FIELD_MAX);
	field[SEALED_FIELD_MAX] = '\0';
	struct sealed_context big = {field, field, field, field};
	assert_int_equal(sealed_seal(id, pk, &big, out, sizeof(out), stored, sizeof(stored)),
	                 SEALED_OK);
	uint8_t back[SEALED_SECRET_MAX];
	assert_int_equal(sealed_open(kr, stored, &big, back, sizeof(back), &n), SEALED_OK);
	assert_int_equal(n, SEALED_SECRET_MAX);
	assert_memory_equal(back, out, n);
	/* A bare key pair seals to the same format. */
	assert_int_equal(sealed_keypair(pk, sk, id2), SEALED_OK);
	sealed_key_id(pk, hex);
	assert_string_equal(id2, hex);
	sealed_wipe(sk, sizeof(sk));
	sealed_keyring_free(kr);
}

static void test_wrong_context_refused(void **state)
{
	uint8_t pk[32];
	char id[SEALED_KEY_ID_LEN + 1];
	char stored[SEALED_TEXT_MAX];
	uint8_t out[256];
	size_t n = 7;
	struct sealed_keyring *kr = ring_with_one_key("ctx.key", id, pk);
	struct sealed_context c[] = {
	    {"capi_tokens", ctx.column, ctx.row_id, ctx.org_id},
	    {ctx.table, "prev_secret", ctx.row_id, ctx.org_id},
	    {ctx.table, ctx.column, "ep_01J0OTHER", ctx.org_id},
	    {ctx.table, ctx.column, ctx.row_id, "org_01J0OTHER"},
	    /* A prefix or an extension of a field is another field. */
	    {ctx.table, ctx.column, "ep_01J0RO", ctx.org_id},
	    {ctx.table, ctx.column, ctx.row_id, "org_01J0ORGX"},
	    /* Bytes moved between two fields. */
	    {ctx.table, "secretep_01J0ROW", "e", ctx.org_id},
	};
	(void)state;

	seal_ok(id, pk, &ctx, stored);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(out, 0xA5, sizeof(out));
		assert_int_equal(sealed_open(kr, stored, &c[i], out, sizeof(out), &n),
		                 SEALED_ECONTEXT);
		assert_int_equal(n, 0);
		/* Nothing of the plaintext is left in the caller's buffer. */
		for (size_t j = 0; j < sizeof(out); j++)
			assert_int_equal(out[j], 0);
	}
	assert_int_equal(sealed_open(kr, stored, &ctx, out, sizeof(out), &n), SEALED_OK);
	sealed_keyring_free(kr);
}

static void test_wrong_key_refused(void **state)
{
	uint8_t pk[32], pk2[32];
	char id[SEALED_KEY_ID_LEN + 1], id2[SEALED_KEY_ID_LEN + 1];
	char stored[SEALED_TEXT_MAX], moved[SEALED_TEXT_MAX];
	uint8_t out[256];
	size_t n;
	struct sealed_keyring *kr = ring_with_one_key("k1.key", id, pk);
	struct sealed_keyring *other = ring_with_one_key("k2.key", id2, pk2);
	(void)state;

	seal_ok(id, pk, &ctx, stored);
	/* A keyring without that key id. */
	assert_int_equal(sealed_open(other, stored, &ctx, out, sizeof(out), &n), SEALED_EKEY);
	/* The box relabelled with a key id the keyring has: it does not open under that key. */
	snprintf(moved, sizeof(moved), "pcs1:%s:%s", id2, stored + 5 + SEALED_KEY_ID_LEN + 1);
	assert_int_equal(sealed_open(other, moved, &ctx, out, sizeof(out), &n), SEALED_EKEY);
	/* Sealing under a key id that is not the public key's. */
	assert_int_equal(sealed_seal(id2, pk, &ctx, (const uint8_t *)"x", 1, moved, sizeof(moved)),
	                 SEALED_EKEY);
	assert_string_equal(moved, "");
	/* With both keys the original opens. */
	char err[256];
	char path[128];
	struct sealed_keyring *both;
	path_in_dir(path, sizeof(path), "k2.key");
	assert_int_equal(sealed_keyring_load(path, &both, err, sizeof(err)), SEALED_OK);
	sealed_keyring_free(other);
	char nid[SEALED_KEY_ID_LEN + 1];
	uint8_t npk[32];
	assert_int_equal(sealed_keyring_key(kr, 0, nid, npk), SEALED_OK);
	assert_string_equal(nid, id);
	assert_memory_equal(npk, pk, 32);
	assert_int_equal(sealed_keyring_key(kr, 1, nid, npk), SEALED_EKEY);
	sealed_keyring_free(both);
	sealed_keyring_free(kr);
}

static void test_tampered_refused(void **state)
{
	uint8_t pk[32];
	char id[SEALED_KEY_ID_LEN + 1];
	char stored[SEALED_TEXT_MAX], bad[SEALED_TEXT_MAX];
	uint8_t out[256];
	size_t n;
	struct sealed_keyring *kr = ring_with_one_key("t.key", id, pk);
	size_t head = 5 + SEALED_KEY_ID_LEN + 1;
	(void)state;

	seal_ok(id, pk, &ctx, stored);
	/* Change every base64 character in turn (ending "==" stays valid: change inner ones). */
	size_t len = strlen(stored);
	for (size_t i = head; i + 3 < len; i++) {
		memcpy(bad, stored, len + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		assert_int_equal(sealed_open(kr, bad, &ctx, out, sizeof(out), &n), SEALED_EKEY);
	}
	/* Truncated by one whole base64 group. */
	memcpy(bad, stored, len + 1);
	bad[len - 4] = '\0';
	assert_int_not_equal(sealed_open(kr, bad, &ctx, out, sizeof(out), &n), SEALED_OK);
	sealed_keyring_free(kr);
}

static void test_bad_formats_refused(void **state)
{
	uint8_t pk[32];
	char id[SEALED_KEY_ID_LEN + 1], got[SEALED_KEY_ID_LEN + 1];
	char stored[SEALED_TEXT_MAX], bad[SEALED_TEXT_MAX];
	uint8_t out[256];
	size_t n;
	struct sealed_keyring *kr = ring_with_one_key("f.key", id, pk);
	const char *b64;
	char upper[SEALED_KEY_ID_LEN + 1];
	(void)state;

	seal_ok(id, pk, &ctx, stored);
	b64 = stored + 5 + SEALED_KEY_ID_LEN + 1;
	for (size_t i = 0; i <= SEALED_KEY_ID_LEN; i++)
		upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
	const char *cases[] = {"", "pcs1", "pcs1:", "pcs2:", "whsec_abc", "pcs1:0123:AAAA", NULL};
	for (int i = 0; cases[i]; i++) {
		assert_int_equal(sealed_open(kr, cases[i], &ctx, out, sizeof(out), &n),
		                 SEALED_EFORMAT);
		assert_int_equal(sealed_stored_key_id(cases[i], got), SEALED_EFORMAT);
	}
	const char *fmts[] = {"pcs2:%s:%s",  "pcs1:%s;%s",  "pcs1:%s::%s",
	                      "pcs1:%s:%s=", "pcs1:%s:%s ", "pcs1:%s:%s\n",
	                      " pcs1:%s:%s", "pcs1:%s:*%s", NULL};
	for (int i = 0; fmts[i]; i++) {
		snprintf(bad, sizeof(bad), fmts[i], id, b64);
		assert_int_equal(sealed_open(kr, bad, &ctx, out, sizeof(out), &n), SEALED_EFORMAT);
	}
	/* An upper-case key id is not a key id. */
	snprintf(bad, sizeof(bad), "pcs1:%s:%s", upper, b64);
	if (strcmp(upper, id) != 0)
		assert_int_equal(sealed_open(kr, bad, &ctx, out, sizeof(out), &n), SEALED_EFORMAT);
	/* A box too short to hold the overhead and a context. */
	snprintf(bad, sizeof(bad), "pcs1:%s:AAAA", id);
	assert_int_equal(sealed_open(kr, bad, &ctx, out, sizeof(out), &n), SEALED_EFORMAT);
	/* Too small an output buffer: refused, not truncated. */
	assert_int_equal(sealed_open(kr, stored, &ctx, out, strlen(secret) - 1, &n), SEALED_ESPACE);
	assert_int_equal(n, 0);
	assert_int_equal(
	    sealed_seal(id, pk, &ctx, (const uint8_t *)secret, strlen(secret), bad, 40),
	    SEALED_ESPACE);
	assert_string_equal(bad, "");

	/* Contexts and secrets out of bounds. */
	uint8_t big[SEALED_SECRET_MAX + 1] = {0};
	char f256[SEALED_FIELD_MAX + 2];
	memset(f256, 'f', sizeof(f256) - 1);
	f256[sizeof(f256) - 1] = '\0';
	struct sealed_context c[] = {
	    {NULL, "c", "r", "o"}, {"t", NULL, "r", "o"}, {"t", "c", NULL, "o"},
	    {"t", "c", "r", NULL}, {"", "c", "r", "o"},   {"t", "c", "r", ""},
	    {f256, "c", "r", "o"}, {"t", "c", "r", f256},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_int_equal(
		    sealed_seal(id, pk, &c[i], (const uint8_t *)"x", 1, bad, sizeof(bad)),
		    SEALED_EFORMAT);
		assert_int_equal(sealed_open(kr, stored, &c[i], out, sizeof(out), &n),
		                 SEALED_EFORMAT);
	}
	assert_int_equal(sealed_seal(id, pk, &ctx, big, sizeof(big), bad, sizeof(bad)),
	                 SEALED_EFORMAT);
	assert_int_equal(sealed_seal("0123", pk, &ctx, big, 1, bad, sizeof(bad)), SEALED_EFORMAT);
	assert_int_equal(sealed_seal(upper, pk, &ctx, big, 1, bad, sizeof(bad)),
	                 strcmp(upper, id) != 0 ? SEALED_EFORMAT : SEALED_OK);
	sealed_keyring_free(kr);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_keyring_file_refused(void **state)
{
	struct sealed_keyring *kr = NULL;
	char path[128], other[128], line[SEALED_KEY_LINE_MAX * 3];
	char err[512];
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32];
	struct stat st;
	(void)state;

	/* A good file, then the same content with group or other bits. */
	sealed_keyring_free(ring_with_one_key("mode.key", id, pk));
	path_in_dir(path, sizeof(path), "mode.key");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	const mode_t modes[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		assert_int_equal(sealed_keyring_load(path, &kr, err, sizeof(err)), SEALED_EFORMAT);
		assert_null(kr);
		assert_non_null(strstr(err, "chmod 600"));
	}
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(sealed_keyring_load(path, &kr, err, sizeof(err)), SEALED_OK);
	sealed_keyring_free(kr);
	kr = NULL;

	/* Not a regular file: a directory, a FIFO (the open must not hang). */
	assert_int_equal(sealed_keyring_load(dir, &kr, err, sizeof(err)), SEALED_EFORMAT);
	assert_non_null(strstr(err, "not a regular file"));
	path_in_dir(other, sizeof(other), "fifo");
	assert_int_equal(mkfifo(other, 0600), 0);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
	assert_non_null(strstr(err, "not a regular file"));
	/* Missing. */
	path_in_dir(other, sizeof(other), "absent.key");
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EKEY);

	/* Malformed contents. */
	const char *texts[] = {
	    "",
	    "\n",
	    "pcsk1:0123456789abcdef:AAAA\n",
	    "pcsk2:0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    /* A well-formed line whose id is not its key's. */
	    "pcsk1:0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    NULL,
	};
	path_in_dir(other, sizeof(other), "bad.key");
	for (int i = 0; texts[i]; i++) {
		write_file(other, texts[i], 0600);
		assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
		assert_null(kr);
	}
	/* The real line, then twice, then with a bad second line, then with spaces. */
	char good[SEALED_KEY_LINE_MAX];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(good, sizeof(good), f));
	fclose(f);
	assert_int_equal(strlen(good), 6 + 16 + 1 + 44 + 1);
	snprintf(line, sizeof(line), "%s%s", good, good);
	write_file(other, line, 0600);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
	assert_non_null(strstr(err, "line 2"));
	assert_null(strstr(err, good + 23)); /* no key material in the message */
	snprintf(line, sizeof(line), "%sgarbage\n", good);
	write_file(other, line, 0600);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
	snprintf(line, sizeof(line), " %s", good);
	write_file(other, line, 0600);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
	/* Without the final newline it is still the one key. */
	snprintf(line, sizeof(line), "%.*s", (int)strlen(good) - 1, good);
	write_file(other, line, 0600);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_OK);
	assert_true(sealed_keyring_has(kr, id));
	sealed_keyring_free(kr);
	kr = NULL;
	/* Too large. */
	char *huge = calloc(1, 70000);
	memset(huge, '\n', 69999);
	write_file(other, huge, 0600);
	free(huge);
	assert_int_equal(sealed_keyring_load(other, &kr, err, sizeof(err)), SEALED_EFORMAT);
}

static void test_keyring_write(void **state)
{
	struct sealed_keyring *kr = sealed_keyring_new();
	struct sealed_keyring *back = NULL;
	char path[128], link[128];
	char err[512];
	char id1[SEALED_KEY_ID_LEN + 1], id2[SEALED_KEY_ID_LEN + 1], got[SEALED_KEY_ID_LEN + 1];
	uint8_t pk1[32], pk2[32];
	char stored[SEALED_TEXT_MAX];
	uint8_t out[256];
	size_t n;
	struct stat st;
	mode_t old = umask(0);
	(void)state;

	path_in_dir(path, sizeof(path), "w.key");
	assert_int_equal(sealed_keyring_generate(kr, id1, pk1), SEALED_OK);
	assert_int_equal(sealed_keyring_write(kr, path, true, err, sizeof(err)), SEALED_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600); /* even with umask 0 */
	/* create refuses an existing file, and a symlink (not followed). */
	assert_int_equal(sealed_keyring_write(kr, path, true, err, sizeof(err)), SEALED_EKEY);
	path_in_dir(link, sizeof(link), "link.key");
	assert_int_equal(symlink("absent-target", link), 0);
	assert_int_equal(sealed_keyring_write(kr, link, true, err, sizeof(err)), SEALED_EKEY);
	assert_int_not_equal(access(link, F_OK), 0); /* the dangling target was not created */

	/* Rotate: a second key appended, the file replaced, still 0600, both keys open. */
	assert_int_equal(sealed_keyring_generate(kr, id2, pk2), SEALED_OK);
	assert_string_not_equal(id1, id2);
	assert_int_equal(sealed_keyring_count(kr), 2);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(sealed_keyring_write(kr, path, false, err, sizeof(err)), SEALED_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(sealed_keyring_load(path, &back, err, sizeof(err)), SEALED_OK);
	assert_int_equal(sealed_keyring_count(back), 2);
	assert_int_equal(sealed_keyring_key(back, 0, got, NULL), SEALED_OK);
	assert_string_equal(got, id1);
	assert_int_equal(sealed_keyring_key(back, 1, got, NULL), SEALED_OK);
	assert_string_equal(got, id2);
	seal_ok(id1, pk1, &ctx, stored);
	assert_int_equal(sealed_open(back, stored, &ctx, out, sizeof(out), &n), SEALED_OK);
	sealed_keyring_free(back);

	/* Retire: the first key removed; what was sealed to it no longer opens. */
	assert_int_equal(sealed_keyring_remove(kr, id1), SEALED_OK);
	assert_int_equal(sealed_keyring_remove(kr, id1), SEALED_EKEY);
	assert_false(sealed_keyring_has(kr, id1));
	assert_true(sealed_keyring_has(kr, id2));
	assert_int_equal(sealed_keyring_write(kr, path, false, err, sizeof(err)), SEALED_OK);
	assert_int_equal(sealed_keyring_load(path, &back, err, sizeof(err)), SEALED_OK);
	assert_int_equal(sealed_keyring_count(back), 1);
	assert_int_equal(sealed_open(back, stored, &ctx, out, sizeof(out), &n), SEALED_EKEY);
	sealed_keyring_free(back);
	/* No temporary file is left beside it. */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "test $(ls '%s' | grep -c tmp) = 0", dir);
	assert_int_equal(system(cmd), 0);
	umask(old);
	sealed_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wrong_context_refused),
	    cmocka_unit_test(test_wrong_key_refused),
	    cmocka_unit_test(test_tampered_refused),
	    cmocka_unit_test(test_bad_formats_refused),
	    cmocka_unit_test(test_keyring_file_refused),
	    cmocka_unit_test(test_keyring_write),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
