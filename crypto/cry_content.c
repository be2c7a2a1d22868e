/* File contents: AES-256-GCM header carrying the content key, then chunks
 * of up to 32 KiB, each GCM with AAD = be64(index) || headerNonce. */
#include "crypto/cry_content.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto/cry_err.h"
#include "crypto/cry_internal.h"

#define HEADER_RESERVED_LEN 8
#define HEADER_PLAIN_LEN (HEADER_RESERVED_LEN + CRY_KEY_LEN)
#define CHUNK_AAD_LEN (8 + CRY_NONCE_LEN)

_Static_assert(CRY_HEADER_LEN == CRY_NONCE_LEN + HEADER_PLAIN_LEN + CRY_TAG_LEN,
	       "header layout");

/* One AES-256-GCM operation: pt -> ct || tag when encrypting; ct and tag ->
 * pt when decrypting, CRY_ERR_AUTH (pt wiped) if the tag does not verify. */
struct gcm_op {
	const uint8_t *key, *nonce, *aad;
	size_t aad_len, len; /* len <= CRY_CHUNK_PLAIN, so it fits an int */
	const uint8_t *in;
	uint8_t *out;
	uint8_t *tag; /* written when encrypting, read when decrypting */
};

static int gcm(const struct gcm_op *op, int encrypt)
{
	const EVP_CIPHER *cipher = cry_aes256_gcm();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0, ok = cipher != NULL && ctx != NULL &&
			 EVP_CipherInit_ex(ctx, cipher, NULL, op->key, op->nonce, encrypt) &&
			 (op->aad_len == 0 ||
			  EVP_CipherUpdate(ctx, NULL, &n, op->aad, (int)op->aad_len)) &&
			 EVP_CipherUpdate(ctx, op->out, &n, op->in, (int)op->len);
	int rc = ok ? CRY_OK : CRY_ERR_INTERNAL;
	if (rc == CRY_OK && encrypt) {
		if (!EVP_CipherFinal_ex(ctx, op->out + n, &fin) ||
		    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRY_TAG_LEN, op->tag))
			rc = CRY_ERR_INTERNAL;
	} else if (rc == CRY_OK) {
		if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRY_TAG_LEN, op->tag))
			rc = CRY_ERR_INTERNAL;
		else if (EVP_CipherFinal_ex(ctx, op->out + n, &fin) <= 0)
			rc = CRY_ERR_AUTH;
	}
	EVP_CIPHER_CTX_free(ctx);
	if (rc != CRY_OK)
		OPENSSL_cleanse(op->out, op->len);
	return rc;
}

int cry_header_random(struct cry_file_header *h)
{
	if (RAND_bytes(h->nonce, CRY_NONCE_LEN) != 1 ||
	    RAND_bytes(h->content_key, CRY_KEY_LEN) != 1)
		return CRY_ERR_INTERNAL;
	return CRY_OK;
}

int cry_header_encrypt(const struct cry_masterkey *mk, const struct cry_file_header *h,
		       uint8_t out[CRY_HEADER_LEN])
{
	uint8_t plain[HEADER_PLAIN_LEN];
	memset(plain, 0xff, HEADER_RESERVED_LEN);
	memcpy(plain + HEADER_RESERVED_LEN, h->content_key, CRY_KEY_LEN);
	memcpy(out, h->nonce, CRY_NONCE_LEN);
	struct gcm_op op = { .key = mk->enc, .nonce = h->nonce, .len = HEADER_PLAIN_LEN,
			     .in = plain, .out = out + CRY_NONCE_LEN,
			     .tag = out + CRY_NONCE_LEN + HEADER_PLAIN_LEN };
	int rc = gcm(&op, 1);
	OPENSSL_cleanse(plain, sizeof plain);
	return rc;
}

int cry_header_decrypt(const struct cry_masterkey *mk, const uint8_t in[CRY_HEADER_LEN],
		       struct cry_file_header *out)
{
	uint8_t plain[HEADER_PLAIN_LEN];
	struct gcm_op op = { .key = mk->enc, .nonce = in, .len = HEADER_PLAIN_LEN,
			     .in = in + CRY_NONCE_LEN, .out = plain,
			     .tag = (uint8_t *)in + CRY_NONCE_LEN + HEADER_PLAIN_LEN };
	int rc = gcm(&op, 0);
	if (rc == CRY_OK) {
		/* The reserved bytes are ignored, as the format asks. */
		memcpy(out->nonce, in, CRY_NONCE_LEN);
		memcpy(out->content_key, plain + HEADER_RESERVED_LEN, CRY_KEY_LEN);
	}
	OPENSSL_cleanse(plain, sizeof plain);
	return rc;
}

static void chunk_aad(const struct cry_file_header *h, uint64_t idx, uint8_t aad[CHUNK_AAD_LEN])
{
	cry_store_be64(aad, idx);
	memcpy(aad + 8, h->nonce, CRY_NONCE_LEN);
}

int cry_chunk_encrypt(const struct cry_file_header *h, uint64_t idx, const uint8_t *nonce,
		      const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	if (pt_len > CRY_CHUNK_PLAIN)
		return CRY_ERR_FORMAT;
	if (nonce != NULL)
		memcpy(out, nonce, CRY_NONCE_LEN);
	else if (RAND_bytes(out, CRY_NONCE_LEN) != 1)
		return CRY_ERR_INTERNAL;
	uint8_t aad[CHUNK_AAD_LEN];
	chunk_aad(h, idx, aad);
	struct gcm_op op = { .key = h->content_key, .nonce = out, .aad = aad,
			     .aad_len = CHUNK_AAD_LEN, .len = pt_len, .in = pt,
			     .out = out + CRY_NONCE_LEN, .tag = out + CRY_NONCE_LEN + pt_len };
	return gcm(&op, 1);
}

int cry_chunk_decrypt(const struct cry_file_header *h, uint64_t idx,
		      const uint8_t *in, size_t in_len, uint8_t *pt_out)
{
	if (in_len < CRY_CHUNK_OVERHEAD || in_len > CRY_CHUNK_CIPHER)
		return CRY_ERR_FORMAT;
	size_t pt_len = in_len - CRY_CHUNK_OVERHEAD;
	uint8_t aad[CHUNK_AAD_LEN];
	chunk_aad(h, idx, aad);
	struct gcm_op op = { .key = h->content_key, .nonce = in, .aad = aad,
			     .aad_len = CHUNK_AAD_LEN, .len = pt_len, .in = in + CRY_NONCE_LEN,
			     .out = pt_out, .tag = (uint8_t *)in + CRY_NONCE_LEN + pt_len };
	return gcm(&op, 0);
}

uint64_t cry_ciphertext_size(uint64_t n)
{
	uint64_t rest = n % CRY_CHUNK_PLAIN;
	return CRY_HEADER_LEN + n / CRY_CHUNK_PLAIN * CRY_CHUNK_CIPHER +
	       (rest != 0 ? rest + CRY_CHUNK_OVERHEAD : 0);
}

int cry_cleartext_size(uint64_t s, uint64_t *out)
{
	if (s < CRY_HEADER_LEN)
		return CRY_ERR_FORMAT;
	uint64_t p = s - CRY_HEADER_LEN, rest = p % CRY_CHUNK_CIPHER;
	if (rest != 0 && rest < CRY_CHUNK_OVERHEAD)
		return CRY_ERR_FORMAT;
	/* rest == 28 is a trailing empty chunk: it adds no cleartext. */
	*out = p / CRY_CHUNK_CIPHER * CRY_CHUNK_PLAIN + (rest != 0 ? rest - CRY_CHUNK_OVERHEAD : 0);
	return CRY_OK;
}
