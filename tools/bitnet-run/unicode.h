/* What the BPE pre-tokenizers need from Unicode: UTF-8 decoding that never fails, the general
 * category class of a codepoint (letter, number, punctuation, other; unicode_table.h, generated
 * from ICU) and the White_Space set, and GPT-2's byte <-> printable-codepoint mapping. */
#ifndef BR_UNICODE_H
#define BR_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum uni_cat { UNI_OTHER = 0, UNI_L = 1, UNI_N = 2, UNI_P = 3 };

/* Decodes one codepoint at s[0..len) (len >= 1) into *cp and returns its byte length.  A byte
 * that does not start a valid, complete, shortest-form sequence decodes alone as
 * UNI_INVALID_BASE + byte, a value outside Unicode that every class test treats as "other". */
#define UNI_INVALID_BASE 0x110000u
size_t uni_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp (< 0x110000) as UTF-8 into out[4]; returns the length. */
size_t uni_encode(uint32_t cp, char *out);

enum uni_cat uni_category(uint32_t cp);
/* Unicode White_Space (what llama.cpp's unicode_set_whitespace holds). */
int uni_is_space(uint32_t cp);

/* GPT-2's byte-level alphabet: byte b <-> codepoint uni_byte_to_cp(b) (printable bytes map to
 * themselves, the others to 256 + n in byte order).  uni_cp_to_byte returns -1 for a codepoint
 * outside the alphabet. */
uint32_t uni_byte_to_cp(uint8_t b);
int uni_cp_to_byte(uint32_t cp);

#endif
