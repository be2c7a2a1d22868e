/* libFuzzer target: the file content format (crypto/cry_content.h, cry_file.h)
 * under the fixed masterkey enc = mac = 0x00 x 32 (the key of the whole_file
 * known-answer vector).
 *
 * Input: a mode byte, then
 * - even mode: an object as read from a store. It is decrypted whole
 *   (cry_file_decrypt) and piece by piece (cry_header_decrypt, then
 *   cry_chunk_decrypt per chunk); both must agree with each other and with
 *   cry_cleartext_size. The first 8 bytes also feed the size functions.
 * - odd mode (structure-aware, to get past the GCM tags): a valid object is
 *   built as [12 header nonce][3 cleartext length][1 fill seed][1 flags: bit 0
 *   appends an empty chunk when the last one is full] say, then damaged by
 *   the remaining bytes (fuzz_damage) and decrypted as above. Undamaged it must decrypt to what
 *   was encrypted; with a byte changed it must not decrypt; cut short it may
 *   only decrypt to a prefix. */
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_content.h"
#include "crypto/cry_err.h"
#include "crypto/cry_file.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_CLEARTEXT (3 * CRY_CHUNK_PLAIN)

static struct cry_masterkey *key(void)
{
	static struct cry_masterkey *mk;
	if (mk == NULL)
		mk = fuzz_masterkey(0x00, 0x00);
	return mk;
}

/* cry_cleartext_size and cry_ciphertext_size must be inverse where defined
 * (a trailing empty chunk adds 28 bytes and nothing else). */
static void check_sizes(uint64_t s)
{
	uint64_t n;
	if (cry_cleartext_size(s, &n) == CRY_OK) {
		uint64_t ct = cry_ciphertext_size(n);
		if (ct != s && ct + CRY_CHUNK_OVERHEAD != s)
			fuzz_fail("cry_cleartext_size disagrees with cry_ciphertext_size");
	}
	uint64_t plain = s >> 2; /* below 2^62: its object size cannot overflow */
	if (cry_cleartext_size(cry_ciphertext_size(plain), &n) != CRY_OK || n != plain)
		fuzz_fail("cry_ciphertext_size gave a size cry_cleartext_size rejects");
}

/* Decrypt an object header first, then chunk by chunk, into out (room for
 * len bytes); the cleartext length goes to *out_len. */
static int decrypt_by_chunks(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
	struct cry_file_header h;
	*out_len = 0;
	if (len < CRY_HEADER_LEN)
		return CRY_ERR_FORMAT;
	int rc = cry_header_decrypt(key(), in, &h);
	size_t pos = CRY_HEADER_LEN;
	for (uint64_t idx = 0; rc == CRY_OK && pos < len; idx++) {
		size_t n = len - pos < CRY_CHUNK_CIPHER ? len - pos : CRY_CHUNK_CIPHER;
		rc = cry_chunk_decrypt(&h, idx, in + pos, n, out + *out_len);
		if (rc == CRY_OK)
			*out_len += n - CRY_CHUNK_OVERHEAD;
		pos += n;
	}
	memset(&h, 0, sizeof h);
	return rc;
}

/* Decrypt in both ways; returns cry_file_decrypt's code and, on success, its
 * malloc'd cleartext in *plain (*plain_len bytes). */
static int decrypt_object(const uint8_t *in, size_t len, uint8_t **plain, size_t *plain_len)
{
	uint8_t *pieces = malloc(len + 1);
	size_t pieces_len;
	if (pieces == NULL)
		fuzz_fail("out of memory");
	int rc_pieces = decrypt_by_chunks(in, len, pieces, &pieces_len);
	*plain = NULL;
	int rc = cry_file_decrypt(key(), in, len, plain, plain_len);
	if ((rc == CRY_OK) != (rc_pieces == CRY_OK))
		fuzz_fail("cry_file_decrypt and chunk-wise decryption disagree");
	if (rc == CRY_OK) {
		uint64_t n;
		if (*plain_len != pieces_len || memcmp(*plain, pieces, pieces_len) != 0)
			fuzz_fail("cry_file_decrypt and chunk-wise decryption differ");
		if (cry_cleartext_size(len, &n) != CRY_OK || n != *plain_len)
			fuzz_fail("a decryptable object has a different cry_cleartext_size");
	}
	free(pieces);
	return rc;
}

static void fuzz_raw(struct fuzz_input *in)
{
	struct fuzz_input size_bytes = *in;
	check_sizes(fuzz_uint(&size_bytes, 8));
	uint8_t *plain;
	size_t plain_len;
	if (decrypt_object(in->p, in->n, &plain, &plain_len) == CRY_OK)
		free(plain);
}

/* A valid object of the cleartext pt (len bytes) with header nonce `nonce`;
 * with empty_chunk, a trailing empty chunk as Cryptomator writes to dirid.c9r.
 * Returns a malloc'd buffer of *out_len bytes. */
static uint8_t *build_object(const uint8_t nonce[CRY_NONCE_LEN], const uint8_t *pt, size_t len,
			     bool empty_chunk, size_t *out_len)
{
	struct cry_file_header h;
	memcpy(h.nonce, nonce, CRY_NONCE_LEN);
	memset(h.content_key, 0x77, CRY_KEY_LEN);
	size_t size = (size_t)cry_ciphertext_size(len) + (empty_chunk ? CRY_CHUNK_OVERHEAD : 0);
	uint8_t *obj = malloc(size);
	if (obj == NULL || cry_header_encrypt(key(), &h, obj) != CRY_OK)
		fuzz_fail("cannot build an object");
	size_t pos = CRY_HEADER_LEN, done = 0;
	for (uint64_t idx = 0; done < len || (empty_chunk && pos < size); idx++) {
		size_t n = len - done < CRY_CHUNK_PLAIN ? len - done : CRY_CHUNK_PLAIN;
		uint8_t chunk_nonce[CRY_NONCE_LEN];
		memcpy(chunk_nonce, nonce, CRY_NONCE_LEN);
		chunk_nonce[0] ^= (uint8_t)(idx + 1); /* any distinct nonce will do */
		if (pos + n + CRY_CHUNK_OVERHEAD > size ||
		    cry_chunk_encrypt(&h, idx, chunk_nonce, pt + done, n, obj + pos) != CRY_OK)
			fuzz_fail("cannot build an object: cry_ciphertext_size too small");
		pos += n + CRY_CHUNK_OVERHEAD;
		done += n;
	}
	if (pos != size)
		fuzz_fail("cry_ciphertext_size is not the size of the object built");
	*out_len = size;
	return obj;
}

static void fuzz_structured(struct fuzz_input *in)
{
	size_t got;
	uint8_t nonce[CRY_NONCE_LEN] = {0};
	memcpy(nonce, fuzz_take(in, CRY_NONCE_LEN, &got), got);
	size_t len = (size_t)(fuzz_uint(in, 3) % (MAX_CLEARTEXT + 1));
	uint8_t seed = fuzz_byte(in);
	/* Chunks are cut every 32796 bytes, so an empty chunk can only follow a
	 * full one (or the header). */
	bool empty_chunk = (fuzz_byte(in) & 1) && len % CRY_CHUNK_PLAIN == 0;

	uint8_t *pt = malloc(len + 1);
	if (pt == NULL)
		fuzz_fail("out of memory");
	for (size_t i = 0; i < len; i++)
		pt[i] = (uint8_t)(seed + i * 31);
	size_t obj_len;
	uint8_t *obj = build_object(nonce, pt, len, empty_chunk, &obj_len);
	struct fuzz_damage d = fuzz_damage(in, obj, &obj_len);

	uint8_t *plain;
	size_t plain_len;
	int rc = decrypt_object(obj, obj_len, &plain, &plain_len);
	if (!d.changed && !d.truncated &&
	    (rc != CRY_OK || plain_len != len || memcmp(plain, pt, len) != 0))
		fuzz_fail("a valid object did not decrypt to its cleartext");
	if (d.changed && rc == CRY_OK)
		fuzz_fail("a damaged object decrypted");
	if (rc == CRY_OK && (plain_len > len || memcmp(plain, pt, plain_len) != 0))
		fuzz_fail("a shortened object decrypted to something else than a prefix");
	if (rc == CRY_OK)
		free(plain);
	free(obj);
	free(pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_two_modes(data, size, fuzz_structured, fuzz_raw);
}
