/* Small shared helpers: overflow-checked size arithmetic, checked number parsing, a monotonic
 * clock and human-readable byte counts.  Every size derived from file contents goes through
 * bn_mul_size/bn_add_size so a hostile header cannot wrap an allocation or an offset. */
#ifndef BN_UTIL_H
#define BN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* true on success; *out is only written on success. */
static inline bool bn_mul_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool bn_add_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}
static inline bool bn_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool bn_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}
/* Round up to a multiple of `align` (a power of two); false on overflow. */
static inline bool bn_align_u64(uint64_t x, uint64_t align, uint64_t *out)
{
	uint64_t t;
	if (__builtin_add_overflow(x, align - 1, &t))
		return false;
	*out = t & ~(align - 1);
	return true;
}

/* Parse an unsigned decimal integer with an optional binary suffix K, M, G or T (KiB...).
 * Rejects empty strings, signs, trailing garbage and overflow.  Returns 0 or -1. */
int bn_parse_u64(const char *s, uint64_t *out);
/* Parse an unsigned integer (no suffix) within [min, max]. Returns 0 or -1. */
int bn_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
/* Parse a finite floating-point number. Returns 0 or -1. */
int bn_parse_double(const char *s, double *out);

/* Seconds from an arbitrary origin, monotonic. */
double bn_now(void);

/* Formats n bytes as "1.23 GB" (decimal units, as disk vendors and `df -H` print them) into buf. */
const char *bn_fmt_bytes(uint64_t n, char *buf, size_t bufsize);

/* A growable byte buffer, kept NUL-terminated so that text in it is a C string.  After an
 * allocation failure appends are dropped and `oom` stays set: check it once, at the end.
 * Start from a zeroed struct; the caller frees p. */
struct bn_buf {
	char *p;
	size_t len, cap;
	bool oom;
};
void bn_buf_put(struct bn_buf *b, const void *s, size_t n);
void bn_buf_puts(struct bn_buf *b, const char *s);
void bn_buf_printf(struct bn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Number of online CPUs (at least 1) and of physical cores (falls back to online CPUs). */
unsigned bn_cpu_count(void);
unsigned bn_physical_core_count(void);

#endif
