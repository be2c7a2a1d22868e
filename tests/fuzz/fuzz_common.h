/* Helpers shared by the libFuzzer targets of tests/fuzz: reading the fuzz
 * input as a stream of small fields, damaging a buffer as the input says, and
 * the fixed keys the targets decrypt with. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/cry_keys.h"

/* The unread rest of a fuzz input. Reading past its end gives zeros. */
struct fuzz_input {
	const uint8_t *p;
	size_t n;
};

uint8_t fuzz_byte(struct fuzz_input *in);

/* A target with two modes: the first input byte picks the structure-aware one
 * (valid objects built from the input, then damaged) or the raw one. */
int fuzz_two_modes(const uint8_t *data, size_t size, void (*structured)(struct fuzz_input *),
		   void (*raw)(struct fuzz_input *));
/* A little-endian number of `bytes` (1..8) bytes. */
uint64_t fuzz_uint(struct fuzz_input *in, unsigned bytes);
/* Up to len bytes (fewer at the end); *got says how many. */
const uint8_t *fuzz_take(struct fuzz_input *in, size_t len, size_t *got);
/* The bytes up to the next `sep` (which is consumed) or to the end, as a
 * malloc'd NUL-terminated string (an embedded NUL ends it early). Aborts
 * when out of memory. */
char *fuzz_field(struct fuzz_input *in, uint8_t sep);
/* A malloc'd NUL-terminated copy of len bytes; aborts when out of memory. */
char *fuzz_strndup(const uint8_t *p, size_t len);

/* What fuzz_damage did to a buffer. */
struct fuzz_damage {
	bool changed;   /* a byte within the final length differs from the original */
	bool truncated; /* the buffer was cut short */
};

/* Damage buf (*len bytes) as the rest of the input says: each 4-byte step is
 * a 3-byte offset (modulo *len) and a byte: non-zero flips bits there (xor),
 * zero cuts the buffer at that offset. */
struct fuzz_damage fuzz_damage(struct fuzz_input *in, uint8_t *buf, size_t *len);

/* A new masterkey enc_byte x 32 || mac_byte x 32 (the targets make theirs
 * once and keep it for the process); aborts when out of memory. */
struct cry_masterkey *fuzz_masterkey(uint8_t enc_byte, uint8_t mac_byte);

/* Abort with a message: an oracle of a target found a wrong answer. */
_Noreturn void fuzz_fail(const char *what);

#endif
