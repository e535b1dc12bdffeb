/* Content hashes: XXH3-128 for build stamps (fast, not cryptographic) and SHA-256 (OpenSSL)
 * for verifying downloads.  Files are read in fixed-size chunks, never whole. */
#ifndef BN_HASH_H
#define BN_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#define BN_XXH128_HEX 33 /* 32 hex digits + NUL */
#define BN_SHA256_HEX 65

/* Canonical (big-endian) hex of the XXH3-128 of a file's contents. */
int bn_xxh128_file(const char *path, char hex[BN_XXH128_HEX], struct bn_err *err);
/* Hex of the XXH3-128 of a buffer. */
void bn_xxh128_buf(const void *buf, size_t n, char hex[BN_XXH128_HEX]);

/* Lowercase hex SHA-256 of a file's contents. */
int bn_sha256_file(const char *path, char hex[BN_SHA256_HEX], struct bn_err *err);
void bn_sha256_buf(const void *buf, size_t n, char hex[BN_SHA256_HEX]);

#endif
