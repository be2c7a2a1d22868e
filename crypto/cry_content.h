/* File content cipher (FORMAT.md section 4): a 68-byte AES-GCM header that
 * carries the file's content key, then chunks of up to 32 KiB of cleartext,
 * each AES-GCM with its own nonce and AAD = be64(index) || headerNonce. No I/O. */
#ifndef CRY_CONTENT_H
#define CRY_CONTENT_H

#include <stddef.h>
#include <stdint.h>
#include "crypto/cry_keys.h"

#define CRY_HEADER_LEN 68
#define CRY_NONCE_LEN 12
#define CRY_TAG_LEN 16
#define CRY_CHUNK_PLAIN 32768
#define CRY_CHUNK_OVERHEAD (CRY_NONCE_LEN + CRY_TAG_LEN)     /* 28 */
#define CRY_CHUNK_CIPHER (CRY_CHUNK_PLAIN + CRY_CHUNK_OVERHEAD) /* 32796 */

/* The decrypted header of one file. Keep it in cry_secure_alloc memory. */
struct cry_file_header {
	uint8_t nonce[CRY_NONCE_LEN];
	uint8_t content_key[CRY_KEY_LEN];
};

/* A fresh header: random nonce and content key. */
int cry_header_random(struct cry_file_header *h);

/* Encrypt h under mk->enc into out (68 bytes), using h->nonce. */
int cry_header_encrypt(const struct cry_masterkey *mk, const struct cry_file_header *h,
		       uint8_t out[CRY_HEADER_LEN]);

/* Decrypt and authenticate a 68-byte header. CRY_ERR_AUTH if it does not verify. */
int cry_header_decrypt(const struct cry_masterkey *mk, const uint8_t in[CRY_HEADER_LEN],
		       struct cry_file_header *out);

/* Encrypt chunk number idx of pt_len (0..32768) bytes into out
 * (pt_len + 28 bytes). nonce: 12 bytes, or NULL for fresh random bytes. */
int cry_chunk_encrypt(const struct cry_file_header *h, uint64_t idx, const uint8_t *nonce,
		      const uint8_t *pt, size_t pt_len, uint8_t *out);

/* Decrypt chunk idx of in_len (28..32796) bytes into pt_out (in_len - 28
 * bytes). CRY_ERR_AUTH if it does not verify (pt_out is then wiped),
 * CRY_ERR_FORMAT if in_len is out of range. */
int cry_chunk_decrypt(const struct cry_file_header *h, uint64_t idx,
		      const uint8_t *in, size_t in_len, uint8_t *pt_out);

/* Size of the object that holds a cleartext of n bytes. */
uint64_t cry_ciphertext_size(uint64_t n);

/* Cleartext size of an object of s bytes into *out; CRY_ERR_FORMAT when no
 * valid object has that size (s < 68, or a last chunk of 1..27 bytes). A last
 * chunk of exactly 28 bytes is the empty trailing chunk that readers accept
 * (Cryptomator writes one in the root's dirid.c9r): it adds 0 bytes. */
int cry_cleartext_size(uint64_t s, uint64_t *out);

#endif
