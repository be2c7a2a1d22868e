/* AES-SIV after RFC 5297: V = S2V(K1, AD1..ADn, P) over AES-CMAC, then
 * C = AES-CTR(K2, V with bits 31 and 63 cleared, P). */
#include "crypto/cry_siv.h"

#include <limits.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/cry_err.h"
#include "crypto/cry_internal.h"

#define BLOCK 16

/* Doubling in GF(2^128) as defined for CMAC and S2V. */
static void dbl(uint8_t b[BLOCK])
{
	uint8_t carry = b[0] >> 7;
	for (int i = 0; i < BLOCK - 1; i++)
		b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
	b[BLOCK - 1] = (uint8_t)(b[BLOCK - 1] << 1 ^ (carry ? 0x87 : 0));
}

static void xor_block(uint8_t *dst, const uint8_t *src)
{
	for (int i = 0; i < BLOCK; i++)
		dst[i] ^= src[i];
}

/* A CMAC context keyed with K1, restarted for each message. */
struct cmac {
	EVP_MAC_CTX *ctx;
};

static int cmac_open(struct cmac *m, const uint8_t *k1, size_t k1_len)
{
	EVP_MAC *mac = cry_cmac();
	if (mac == NULL || (m->ctx = EVP_MAC_CTX_new(mac)) == NULL)
		return CRY_ERR_INTERNAL;
	char *cipher = k1_len == 16 ? "AES-128-CBC" : "AES-256-CBC";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
		OSSL_PARAM_construct_end(),
	};
	if (!EVP_MAC_CTX_set_params(m->ctx, params) || !EVP_MAC_init(m->ctx, k1, k1_len, NULL)) {
		EVP_MAC_CTX_free(m->ctx);
		return CRY_ERR_INTERNAL;
	}
	return CRY_OK;
}

/* out = CMAC(K1, a || b); b may be NULL. Restarting with a NULL key keeps K1. */
static int cmac_2(struct cmac *m, const uint8_t *a, size_t a_len,
		  const uint8_t *b, size_t b_len, uint8_t out[BLOCK])
{
	size_t out_len;
	if (!EVP_MAC_init(m->ctx, NULL, 0, NULL) || !EVP_MAC_update(m->ctx, a, a_len) ||
	    (b != NULL && !EVP_MAC_update(m->ctx, b, b_len)) ||
	    !EVP_MAC_final(m->ctx, out, &out_len, BLOCK) || out_len != BLOCK)
		return CRY_ERR_INTERNAL;
	return CRY_OK;
}

/* The synthetic IV: S2V(K1, ad[0..n_ad-1], pt) of RFC 5297 section 2.4. */
static int s2v(const uint8_t *k1, size_t k1_len, const struct cry_siv_ad *ad, size_t n_ad,
	       const uint8_t *pt, size_t pt_len, uint8_t v[BLOCK])
{
	static const uint8_t zero[BLOCK];
	struct cmac m;
	uint8_t d[BLOCK], t[BLOCK];
	int rc = cmac_open(&m, k1, k1_len);
	if (rc != CRY_OK)
		return rc;
	rc = cmac_2(&m, zero, BLOCK, NULL, 0, d);
	for (size_t i = 0; rc == CRY_OK && i < n_ad; i++) {
		rc = cmac_2(&m, ad[i].data, ad[i].len, NULL, 0, t);
		dbl(d);
		xor_block(d, t);
	}
	if (rc == CRY_OK && pt_len >= BLOCK) {
		/* T = P xorend D: only the last block of P changes. */
		memcpy(t, pt + pt_len - BLOCK, BLOCK);
		xor_block(t, d);
		rc = cmac_2(&m, pt, pt_len - BLOCK, t, BLOCK, v);
	} else if (rc == CRY_OK) {
		/* T = dbl(D) xor pad(P), pad = P || 0x80 || 0... */
		dbl(d);
		memset(t, 0, BLOCK);
		if (pt_len > 0)
			memcpy(t, pt, pt_len);
		t[pt_len] = 0x80;
		xor_block(t, d);
		rc = cmac_2(&m, t, BLOCK, NULL, 0, v);
	}
	EVP_MAC_CTX_free(m.ctx);
	OPENSSL_cleanse(d, sizeof d);
	OPENSSL_cleanse(t, sizeof t);
	return rc;
}

/* AES-CTR under K2 with the counter taken from v (bits 31 and 63 cleared). */
static int ctr_xcrypt(const uint8_t *k2, size_t k2_len, const uint8_t v[BLOCK],
		      const uint8_t *in, size_t len, uint8_t *out)
{
	if (len == 0)
		return CRY_OK;
	uint8_t q[BLOCK];
	memcpy(q, v, BLOCK);
	q[8] &= 0x7f;
	q[12] &= 0x7f;
	int n;
	const EVP_CIPHER *cipher = k2_len == 16 ? EVP_aes_128_ctr() : EVP_aes_256_ctr();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, cipher, NULL, k2, q) &&
		 EVP_EncryptUpdate(ctx, out, &n, in, (int)len);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? CRY_OK : CRY_ERR_INTERNAL;
}

/* Key sizes of AES-128-SIV and AES-256-SIV; the length fits OpenSSL's int. */
static int check_args(size_t key_len, size_t pt_len)
{
	return (key_len == 32 || key_len == 64) && pt_len <= INT_MAX ? CRY_OK : CRY_ERR_FORMAT;
}

int cry_siv_encrypt(const uint8_t *key, size_t key_len,
		    const struct cry_siv_ad *ad, size_t n_ad,
		    const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	size_t half = key_len / 2;
	int rc = check_args(key_len, pt_len);
	if (rc == CRY_OK)
		rc = s2v(key, half, ad, n_ad, pt, pt_len, out);
	if (rc == CRY_OK)
		rc = ctr_xcrypt(key + half, half, out, pt, pt_len, out + CRY_SIV_TAG_LEN);
	return rc;
}

int cry_siv_decrypt(const uint8_t *key, size_t key_len,
		    const struct cry_siv_ad *ad, size_t n_ad,
		    const uint8_t *in, size_t in_len, uint8_t *pt_out)
{
	if (in_len < CRY_SIV_TAG_LEN)
		return CRY_ERR_FORMAT;
	size_t half = key_len / 2, pt_len = in_len - CRY_SIV_TAG_LEN;
	uint8_t v[BLOCK];
	int rc = check_args(key_len, pt_len);
	if (rc == CRY_OK)
		rc = ctr_xcrypt(key + half, half, in, in + CRY_SIV_TAG_LEN, pt_len, pt_out);
	if (rc == CRY_OK)
		rc = s2v(key, half, ad, n_ad, pt_out, pt_len, v);
	if (rc == CRY_OK && CRYPTO_memcmp(v, in, CRY_SIV_TAG_LEN) != 0)
		rc = CRY_ERR_AUTH;
	if (rc != CRY_OK)
		OPENSSL_cleanse(pt_out, pt_len);
	return rc;
}
