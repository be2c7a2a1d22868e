/* AES-SIV: RFC 5297 vectors, agreement with OpenSSL's own AES-SIV where that
 * one works (non-empty plaintext), the empty plaintext, tampering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tharness.h"
#include "crypto/cry_err.h"
#include "crypto/cry_siv.h"

static void test_rfc5297_a1(void)
{
	struct json_object *v = json_object_object_get(t_vectors(), "aes_siv_rfc5297_A1");
	uint8_t key[32], ad_bytes[24], pt[14], out[30], back[14];
	t_hex_into(t_json_str(v, "macKey_hex"), key, 16); /* K1, the CMAC key, comes first */
	t_hex_into(t_json_str(v, "ctrKey_hex"), key + 16, 16);
	t_hex_into(t_json_str(v, "ad_hex"), ad_bytes, sizeof ad_bytes);
	t_hex_into(t_json_str(v, "plaintext_hex"), pt, sizeof pt);
	struct cry_siv_ad ad = { ad_bytes, sizeof ad_bytes };

	CHECK_RC(cry_siv_encrypt(key, 32, &ad, 1, pt, sizeof pt, out), CRY_OK);
	CHECK_HEX(out, sizeof out, t_json_str(v, "output_hex"));
	CHECK_RC(cry_siv_decrypt(key, 32, &ad, 1, out, sizeof out, back), CRY_OK);
	CHECK(memcmp(back, pt, sizeof pt) == 0);

	/* Any flipped bit, in the tag or in the ciphertext, fails and wipes the output. */
	for (size_t bit = 0; bit < sizeof out * 8; bit += 37) {
		out[bit / 8] ^= (uint8_t)(1u << bit % 8);
		memset(back, 0xaa, sizeof back);
		CHECK_RC(cry_siv_decrypt(key, 32, &ad, 1, out, sizeof out, back), CRY_ERR_AUTH);
		CHECK(back[0] == 0 && memcmp(back, back + 1, sizeof back - 1) == 0);
		out[bit / 8] ^= (uint8_t)(1u << bit % 8);
	}
	/* The AD is authenticated too. */
	ad_bytes[0] ^= 1;
	CHECK_RC(cry_siv_decrypt(key, 32, &ad, 1, out, sizeof out, back), CRY_ERR_AUTH);
	CHECK_RC(cry_siv_decrypt(key, 32, &ad, 1, out, 15, back), CRY_ERR_FORMAT);
	CHECK_RC(cry_siv_encrypt(key, 48, &ad, 1, pt, sizeof pt, out), CRY_ERR_FORMAT);
}

/* RFC 5297 A.2: several AD components and a nonce (the last AD). */
static void test_rfc5297_a2(void)
{
	uint8_t key[32], ad1[40], ad2[10], nonce[16], pt[47], out[63], back[47];
	t_hex_into("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f", key, 32);
	t_hex_into("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100",
		   ad1, sizeof ad1);
	t_hex_into("102030405060708090a0", ad2, sizeof ad2);
	t_hex_into("09f911029d74e35bd84156c5635688c0", nonce, sizeof nonce);
	t_hex_into("7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67"
		   "205349562d414553", pt, sizeof pt);
	struct cry_siv_ad ad[] = { { ad1, sizeof ad1 }, { ad2, sizeof ad2 }, { nonce, sizeof nonce } };
	CHECK_RC(cry_siv_encrypt(key, 32, ad, 3, pt, sizeof pt, out), CRY_OK);
	CHECK_HEX(out, sizeof out,
		  "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17"
		  "dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d");
	CHECK_RC(cry_siv_decrypt(key, 32, ad, 3, out, sizeof out, back), CRY_OK);
	CHECK(memcmp(back, pt, sizeof pt) == 0);
}

/* OpenSSL's AES-SIV as a second opinion (it cannot do an empty plaintext). */
static bool openssl_siv(const uint8_t *key, size_t key_len, const struct cry_siv_ad *ad,
			size_t n_ad, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, key_len == 32 ? "AES-128-SIV" : "AES-256-SIV",
					      NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, ok = cipher != NULL && ctx != NULL &&
		    EVP_EncryptInit_ex2(ctx, cipher, key, NULL, NULL);
	for (size_t i = 0; ok && i < n_ad; i++)
		ok = EVP_EncryptUpdate(ctx, NULL, &n, ad[i].data, (int)ad[i].len);
	ok = ok && EVP_EncryptUpdate(ctx, out + 16, &n, pt, (int)pt_len) &&
	     EVP_EncryptFinal_ex(ctx, out + 16 + n, &n) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(cipher);
	return ok;
}

static void test_against_openssl(void)
{
	uint8_t key[64], ad_bytes[3][40], pt[80], mine[96], theirs[96], back[80];
	int agree = 0, cases = 0;
	for (size_t key_len = 32; key_len <= 64; key_len += 32) {
		for (size_t pt_len = 1; pt_len <= sizeof pt; pt_len += 7) {
			size_t n_ad = pt_len % 4;
			struct cry_siv_ad ad[3];
			RAND_bytes(key, sizeof key);
			RAND_bytes(pt, sizeof pt);
			for (size_t i = 0; i < n_ad; i++) {
				RAND_bytes(ad_bytes[i], sizeof ad_bytes[i]);
				ad[i] = (struct cry_siv_ad){ ad_bytes[i], (pt_len + i * 13) % 41 };
			}
			cases++;
			if (cry_siv_encrypt(key, key_len, ad, n_ad, pt, pt_len, mine) == CRY_OK &&
			    openssl_siv(key, key_len, ad, n_ad, pt, pt_len, theirs) &&
			    memcmp(mine, theirs, pt_len + 16) == 0 &&
			    cry_siv_decrypt(key, key_len, ad, n_ad, mine, pt_len + 16, back) == CRY_OK &&
			    memcmp(back, pt, pt_len) == 0)
				agree++;
		}
	}
	if (!CHECK(agree == cases))
		fprintf(stderr, "     %d of %d cases agree with OpenSSL AES-SIV\n", agree, cases);
}

static void test_empty_plaintext(void)
{
	uint8_t key[64], none[16], one_empty[16], back[1];
	memset(key, 0x42, sizeof key);
	struct cry_siv_ad empty = { (const uint8_t *)"", 0 };
	CHECK_RC(cry_siv_encrypt(key, 64, NULL, 0, NULL, 0, none), CRY_OK);
	CHECK_RC(cry_siv_encrypt(key, 64, &empty, 1, NULL, 0, one_empty), CRY_OK);
	/* One empty AD component is not the same as none. */
	CHECK(memcmp(none, one_empty, 16) != 0);
	CHECK_RC(cry_siv_decrypt(key, 64, NULL, 0, none, 16, back), CRY_OK);
	CHECK_RC(cry_siv_decrypt(key, 64, &empty, 1, none, 16, back), CRY_ERR_AUTH);
	CHECK_RC(cry_siv_decrypt(key, 64, &empty, 1, one_empty, 16, back), CRY_OK);
}

void test_siv(void)
{
	test_rfc5297_a1();
	test_rfc5297_a2();
	test_against_openssl();
	test_empty_plaintext();
}
