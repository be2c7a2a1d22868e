#include "tests/fuzz/fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t fuzz_byte(struct fuzz_input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

uint64_t fuzz_uint(struct fuzz_input *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)fuzz_byte(in) << (8 * i);
	return v;
}

const uint8_t *fuzz_take(struct fuzz_input *in, size_t len, size_t *got)
{
	const uint8_t *p = in->p;
	*got = len < in->n ? len : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

char *fuzz_strndup(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s == NULL)
		fuzz_fail("out of memory");
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

char *fuzz_field(struct fuzz_input *in, uint8_t sep)
{
	const uint8_t *end = memchr(in->p, sep, in->n);
	size_t len = end != NULL ? (size_t)(end - in->p) : in->n, got;
	char *s = fuzz_strndup(fuzz_take(in, len, &got), len);
	if (end != NULL)
		fuzz_byte(in);
	return s;
}

struct fuzz_damage fuzz_damage(struct fuzz_input *in, uint8_t *buf, size_t *len)
{
	struct fuzz_damage d = { false, false };
	uint8_t *orig = malloc(*len + 1);
	if (orig == NULL)
		fuzz_fail("out of memory");
	memcpy(orig, buf, *len);
	while (in->n >= 4 && *len > 0) {
		size_t off = (size_t)fuzz_uint(in, 3) % *len;
		uint8_t x = fuzz_byte(in);
		if (x != 0) {
			buf[off] ^= x;
		} else {
			*len = off;
			d.truncated = true;
		}
	}
	d.changed = memcmp(orig, buf, *len) != 0;
	free(orig);
	return d;
}

struct cry_masterkey *fuzz_masterkey(uint8_t enc_byte, uint8_t mac_byte)
{
	uint8_t enc[CRY_KEY_LEN], mac[CRY_KEY_LEN];
	memset(enc, enc_byte, sizeof enc);
	memset(mac, mac_byte, sizeof mac);
	struct cry_masterkey *mk = cry_masterkey_from_bytes(enc, mac);
	if (mk == NULL)
		fuzz_fail("out of memory");
	return mk;
}

void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz oracle: %s\n", what);
	abort();
}

int fuzz_two_modes(const uint8_t *data, size_t size, void (*structured)(struct fuzz_input *),
		   void (*raw)(struct fuzz_input *))
{
	struct fuzz_input in = { data, size };

	if (fuzz_byte(&in) & 1)
		structured(&in);
	else
		raw(&in);
	return 0;
}
