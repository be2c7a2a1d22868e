/* Helpers shared by the files of crypto/; not part of the layer's API. */
#ifndef CRY_INTERNAL_H
#define CRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/* NFC of the UTF-8 text s (len bytes) into *out (malloc'd, NUL-terminated,
 * length in *out_len). CRY_ERR_FORMAT if s is not valid UTF-8. */
int cry_nfc(const char *s, size_t len, char **out, size_t *out_len);
/* The same in NFD. */
int cry_nfd(const char *s, size_t len, char **out, size_t *out_len);

/* Padded base64 length of n bytes. */
#define CRY_B64_LEN(n) (((n) + 2) / 3 * 4)

/* cry_b64_encode into out, which has room for CRY_B64_LEN(len) + 1 bytes
 * (len <= INT_MAX / 4 * 3). */
void cry_b64_encode_into(const uint8_t *in, size_t len, bool url, bool pad, char *out);

/* Algorithms fetched once per process: fetching on every call costs a lookup
 * under a lock, and these run for every chunk and every name. */
const EVP_CIPHER *cry_aes256_gcm(void);
EVP_MAC *cry_cmac(void);

/* HMAC with the named digest ("SHA256", ...) of msg under key into out,
 * which has room for EVP_MAX_MD_SIZE bytes; the MAC length goes to *out_len. */
int cry_hmac(const char *digest, const uint8_t *key, size_t key_len,
	     const uint8_t *msg, size_t msg_len, uint8_t *out, size_t *out_len);

static inline void cry_store_be64(uint8_t out[8], uint64_t x)
{
	for (int i = 7; i >= 0; i--, x >>= 8)
		out[i] = (uint8_t)x;
}

#endif
