/* Text encodings used by the vault format: base64 (standard and URL-safe
 * alphabets, RFC 4648) and base32 (RFC 4648 upper case). Pure functions. */
#ifndef CRY_ENCODE_H
#define CRY_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encode len bytes; returns a malloc'd NUL-terminated string or NULL (no memory).
 * url selects the '-' '_' alphabet; pad adds '=' padding. */
char *cry_b64_encode(const uint8_t *in, size_t len, bool url, bool pad);

/* Decode text of length inlen; accepts padded or unpadded input in the given
 * alphabet, rejects anything else. Returns a malloc'd buffer (length in *outlen)
 * or NULL on invalid input or no memory. */
uint8_t *cry_b64_decode(const char *in, size_t inlen, bool url, size_t *outlen);

/* Base32 of len bytes into out, which needs room for ((len + 4) / 5) * 8 + 1
 * bytes; unpadded when len is a multiple of 5 (the only case the format uses). */
void cry_base32_encode(const uint8_t *in, size_t len, char *out);

#endif
