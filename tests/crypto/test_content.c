/* File headers, chunks, a whole file and the size arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tharness.h"
#include "crypto/cry_content.h"
#include "crypto/cry_err.h"

/* Bytes of whichever of name_b64 / name_hex the vector has. */
static uint8_t *vector_bytes(struct json_object *e, const char *b64_key, const char *hex_key,
			     size_t *len)
{
	struct json_object *v;
	if (json_object_object_get_ex(e, b64_key, &v))
		return t_b64(json_object_get_string(v), len);
	return t_hex(t_json_str(e, hex_key), len);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void test_header_vectors(void)
{
	struct json_object *list = json_object_object_get(t_vectors(), "file_header");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		uint8_t enc[32], mac[32] = { 0 }, out[CRY_HEADER_LEN];
		struct cry_file_header h, back;
		size_t len;
		t_hex_into(t_json_str(e, "encKey_hex"), enc, 32);
		t_hex_into(t_json_str(e, "nonce_hex"), h.nonce, CRY_NONCE_LEN);
		t_hex_into(t_json_str(e, "contentKey_hex"), h.content_key, CRY_KEY_LEN);
		uint8_t *want = vector_bytes(e, "header_b64", "header_hex", &len);
		struct cry_masterkey *mk = cry_masterkey_from_bytes(enc, mac);

		CHECK(len == CRY_HEADER_LEN);
		CHECK_RC(cry_header_encrypt(mk, &h, out), CRY_OK);
		CHECK(memcmp(out, want, CRY_HEADER_LEN) == 0);
		CHECK_RC(cry_header_decrypt(mk, want, &back), CRY_OK);
		CHECK(memcmp(&back, &h, sizeof h) == 0);
		/* A flipped bit in the nonce, the ciphertext or the tag. */
		for (size_t pos = 0; pos < CRY_HEADER_LEN; pos += 11) {
			want[pos] ^= 0x10;
			CHECK_RC(cry_header_decrypt(mk, want, &back), CRY_ERR_AUTH);
			want[pos] ^= 0x10;
		}
		free(want);
		cry_masterkey_free(mk);
	}
	CHECK(json_object_array_length(list) == 2);
}

static void test_chunk_vectors(void)
{
	struct json_object *list = json_object_object_get(t_vectors(), "content_chunks");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		struct cry_file_header h;
		size_t len;
		t_hex_into(t_json_str(e, "contentKey_hex"), h.content_key, CRY_KEY_LEN);
		t_hex_into(t_json_str(e, "headerNonce_hex"), h.nonce, CRY_NONCE_LEN);
		uint64_t idx = (uint64_t)json_object_get_int64(json_object_object_get(e, "chunkNumber"));
		const char *plain = t_json_str(e, "plaintext");
		size_t plain_len = strlen(plain);
		uint8_t *chunk = vector_bytes(e, "chunk_b64", "chunk_hex", &len);
		uint8_t out[64], pt[64];

		CHECK(len == plain_len + CRY_CHUNK_OVERHEAD && len <= sizeof out);
		/* Encrypting with the chunk's own nonce gives the same bytes. */
		CHECK_RC(cry_chunk_encrypt(&h, idx, chunk, (const uint8_t *)plain, plain_len, out),
			 CRY_OK);
		CHECK(memcmp(out, chunk, len) == 0);
		struct json_object *nonce;
		if (json_object_object_get_ex(e, "chunkNonce_hex", &nonce))
			CHECK_HEX(chunk, CRY_NONCE_LEN, json_object_get_string(nonce));
		CHECK_RC(cry_chunk_decrypt(&h, idx, chunk, len, pt), CRY_OK);
		CHECK(memcmp(pt, plain, plain_len) == 0);
		/* Tampering, another index, another header nonce: all fail, output wiped. */
		for (size_t pos = 0; pos < len; pos += 5) {
			chunk[pos] ^= 0x01;
			memset(pt, 0xaa, sizeof pt);
			CHECK_RC(cry_chunk_decrypt(&h, idx, chunk, len, pt), CRY_ERR_AUTH);
			CHECK(all_zero(pt, plain_len));
			chunk[pos] ^= 0x01;
		}
		CHECK_RC(cry_chunk_decrypt(&h, idx + 1, chunk, len, pt), CRY_ERR_AUTH);
		h.nonce[11] ^= 1;
		CHECK_RC(cry_chunk_decrypt(&h, idx, chunk, len, pt), CRY_ERR_AUTH);
		free(chunk);
	}
	CHECK(json_object_array_length(list) == 3);
}

static void test_whole_file(void)
{
	struct json_object *e = json_object_object_get(t_vectors(), "whole_file");
	uint8_t enc[32], mac[32] = { 0 }, nonce0[CRY_NONCE_LEN], out[128], pt[32];
	struct cry_file_header h, back;
	size_t len;
	t_hex_into(t_json_str(e, "encKey_hex"), enc, 32);
	t_hex_into(t_json_str(e, "headerNonce_hex"), h.nonce, CRY_NONCE_LEN);
	t_hex_into(t_json_str(e, "contentKey_hex"), h.content_key, CRY_KEY_LEN);
	t_hex_into(t_json_str(e, "chunk0Nonce_hex"), nonce0, CRY_NONCE_LEN);
	const char *plain = t_json_str(e, "plaintext");
	uint8_t *file = t_b64(t_json_str(e, "file_b64"), &len);
	struct cry_masterkey *mk = cry_masterkey_from_bytes(enc, mac);
	uint64_t clear = 0;

	CHECK(len == (size_t)json_object_get_int64(json_object_object_get(e, "file_len")));
	CHECK(cry_ciphertext_size(strlen(plain)) == len);
	CHECK_RC(cry_header_encrypt(mk, &h, out), CRY_OK);
	CHECK_RC(cry_chunk_encrypt(&h, 0, nonce0, (const uint8_t *)plain, strlen(plain),
				   out + CRY_HEADER_LEN),
		 CRY_OK);
	CHECK(memcmp(out, file, len) == 0);

	CHECK_RC(cry_cleartext_size(len, &clear), CRY_OK);
	CHECK(clear == strlen(plain));
	CHECK_RC(cry_header_decrypt(mk, file, &back), CRY_OK);
	CHECK_RC(cry_chunk_decrypt(&back, 0, file + CRY_HEADER_LEN, len - CRY_HEADER_LEN, pt),
		 CRY_OK);
	CHECK(memcmp(pt, plain, clear) == 0);
	free(file);
	cry_masterkey_free(mk);
}

static void test_chunk_limits(void)
{
	struct cry_file_header h;
	CHECK_RC(cry_header_random(&h), CRY_OK);
	static uint8_t pt[CRY_CHUNK_PLAIN + 1], a[CRY_CHUNK_CIPHER + 1], b[CRY_CHUNK_CIPHER + 1],
		back[CRY_CHUNK_PLAIN + 1];
	for (size_t i = 0; i < sizeof pt; i++)
		pt[i] = (uint8_t)(i * 7);
	/* A full chunk, twice: fresh nonces make different ciphertexts. */
	CHECK_RC(cry_chunk_encrypt(&h, 3, NULL, pt, CRY_CHUNK_PLAIN, a), CRY_OK);
	CHECK_RC(cry_chunk_encrypt(&h, 3, NULL, pt, CRY_CHUNK_PLAIN, b), CRY_OK);
	CHECK(memcmp(a, b, CRY_NONCE_LEN) != 0);
	CHECK_RC(cry_chunk_decrypt(&h, 3, a, CRY_CHUNK_CIPHER, back), CRY_OK);
	CHECK(memcmp(back, pt, CRY_CHUNK_PLAIN) == 0);
	CHECK_RC(cry_chunk_decrypt(&h, 3, b, CRY_CHUNK_CIPHER, back), CRY_OK);
	/* An empty chunk is 28 bytes and authenticates. */
	CHECK_RC(cry_chunk_encrypt(&h, 1, NULL, pt, 0, a), CRY_OK);
	CHECK_RC(cry_chunk_decrypt(&h, 1, a, CRY_CHUNK_OVERHEAD, back), CRY_OK);
	CHECK_RC(cry_chunk_decrypt(&h, 2, a, CRY_CHUNK_OVERHEAD, back), CRY_ERR_AUTH);
	/* Out of range. */
	CHECK_RC(cry_chunk_encrypt(&h, 0, NULL, pt, CRY_CHUNK_PLAIN + 1, a), CRY_ERR_FORMAT);
	CHECK_RC(cry_chunk_decrypt(&h, 0, a, CRY_CHUNK_OVERHEAD - 1, back), CRY_ERR_FORMAT);
	CHECK_RC(cry_chunk_decrypt(&h, 0, a, CRY_CHUNK_CIPHER + 1, back), CRY_ERR_FORMAT);
	/* Random headers differ and survive a round trip. */
	struct cry_file_header h2, back_h;
	CHECK_RC(cry_header_random(&h2), CRY_OK);
	CHECK(memcmp(&h, &h2, sizeof h) != 0);
	struct cry_masterkey *mk = cry_masterkey_new_random(), *other = cry_masterkey_new_random();
	uint8_t hdr[CRY_HEADER_LEN];
	CHECK_RC(cry_header_encrypt(mk, &h2, hdr), CRY_OK);
	CHECK_RC(cry_header_decrypt(mk, hdr, &back_h), CRY_OK);
	CHECK(memcmp(&back_h, &h2, sizeof h2) == 0);
	CHECK_RC(cry_header_decrypt(other, hdr, &back_h), CRY_ERR_AUTH);
	cry_masterkey_free(mk);
	cry_masterkey_free(other);
}

static void test_sizes(void)
{
	static const struct {
		uint64_t clear, cipher;
	} pairs[] = {
		{ 0, 68 },		 { 1, 97 },	       { 11, 107 },
		{ 32767, 32863 },	 { 32768, 32864 },     { 32769, 32893 },
		{ 65536, 65660 },	 { 100000, 100180 },   { 1048576, 1049540 },
		{ UINT64_C(1) << 40, 68 + (UINT64_C(1) << 25) * 32796 },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		uint64_t back = 0;
		if (!CHECK(cry_ciphertext_size(pairs[i].clear) == pairs[i].cipher))
			fprintf(stderr, "     ciphertext_size(%llu)\n",
				(unsigned long long)pairs[i].clear);
		CHECK_RC(cry_cleartext_size(pairs[i].cipher, &back), CRY_OK);
		CHECK(back == pairs[i].clear);
	}
	/* No valid object has these sizes. */
	static const uint64_t corrupt[] = { 0, 1, 67, 69, 68 + 27, 68 + 32796 + 1, 68 + 32796 + 27,
					    68 + 3 * 32796 + 5 };
	for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
		uint64_t out = 12345;
		CHECK_RC(cry_cleartext_size(corrupt[i], &out), CRY_ERR_FORMAT);
		CHECK(out == 12345);
	}
	/* A trailing empty chunk (root dirid.c9r of Cryptomator) adds nothing. */
	uint64_t out = 1;
	CHECK_RC(cry_cleartext_size(68 + 28, &out), CRY_OK);
	CHECK(out == 0);
	CHECK_RC(cry_cleartext_size(68 + 32796 + 28, &out), CRY_OK);
	CHECK(out == 32768);
	/* Every size up to three chunks maps back. */
	int mismatches = 0;
	for (uint64_t n = 0; n <= 3 * CRY_CHUNK_PLAIN + 100; n += 97)
		if (cry_cleartext_size(cry_ciphertext_size(n), &out) != CRY_OK || out != n)
			mismatches++;
	CHECK(mismatches == 0);
}

void test_content(void)
{
	test_header_vectors();
	test_chunk_vectors();
	test_whole_file();
	test_chunk_limits();
	test_sizes();
}
