/* XXH3-128 and SHA-256 of files and buffers (see bn_hash.h). */
#include "bn_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#define CHUNK (1u << 20)

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Streams a file through `update`. */
static int for_each_chunk(const char *path, void (*update)(void *, const void *, size_t),
			  void *state, struct bn_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bn_seterrno(err, errno, "%s: cannot open", path);
	unsigned char *buf = malloc(CHUNK);
	if (!buf) {
		close(fd);
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	}
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = bn_seterrno(err, errno, "%s: read failed", path);
			break;
		}
		if (r == 0)
			break;
		update(state, buf, (size_t)r);
	}
	free(buf);
	close(fd);
	return rc;
}

static void xxh_update(void *st, const void *p, size_t n)
{
	XXH3_128bits_update(st, p, n);
}

int bn_xxh128_file(const char *path, char hex[BN_XXH128_HEX], struct bn_err *err)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	XXH3_128bits_reset(st);
	int rc = for_each_chunk(path, xxh_update, st, err);
	if (rc == 0) {
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
		to_hex(c.digest, sizeof c.digest, hex);
	}
	XXH3_freeState(st);
	return rc;
}

void bn_xxh128_buf(const void *buf, size_t n, char hex[BN_XXH128_HEX])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, n));
	to_hex(c.digest, sizeof c.digest, hex);
}

static void sha_update(void *st, const void *p, size_t n)
{
	EVP_DigestUpdate(st, p, n);
}

int bn_sha256_file(const char *path, char hex[BN_SHA256_HEX], struct bn_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return bn_seterr(err, BN_ENOMEM, "%s: cannot initialise SHA-256", path);
	}
	int rc = for_each_chunk(path, sha_update, ctx, err);
	if (rc == 0) {
		unsigned char md[32];
		unsigned int len = 0;
		EVP_DigestFinal_ex(ctx, md, &len);
		to_hex(md, 32, hex);
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

void bn_sha256_buf(const void *buf, size_t n, char hex[BN_SHA256_HEX])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL);
	to_hex(md, 32, hex);
}
