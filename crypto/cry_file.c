#include "crypto/cry_file.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/cry_content.h"
#include "crypto/cry_err.h"
#include "crypto/cry_mem.h"

int cry_file_encrypt(const struct cry_masterkey *mk, const uint8_t *pt, size_t len,
		     uint8_t **out, size_t *out_len)
{
	struct cry_file_header *h = cry_secure_alloc(sizeof(*h));
	size_t total = cry_ciphertext_size(len);
	uint8_t *buf = malloc(total);
	uint8_t *dst;
	uint64_t idx;
	int rc;

	if (!h || !buf) {
		rc = CRY_ERR_NOMEM;
		goto out;
	}
	rc = cry_header_random(h);
	if (!rc)
		rc = cry_header_encrypt(mk, h, buf);
	dst = buf + CRY_HEADER_LEN;
	for (idx = 0; !rc && idx * CRY_CHUNK_PLAIN < len; idx++) {
		size_t off = idx * CRY_CHUNK_PLAIN;
		size_t n = len - off < CRY_CHUNK_PLAIN ? len - off : CRY_CHUNK_PLAIN;

		rc = cry_chunk_encrypt(h, idx, NULL, pt + off, n, dst);
		dst += n + CRY_CHUNK_OVERHEAD;
	}
out:
	cry_secure_free(h, sizeof(*h));
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*out_len = total;
	return CRY_OK;
}

int cry_file_decrypt(const struct cry_masterkey *mk, const uint8_t *in, size_t len,
		     uint8_t **out, size_t *out_len)
{
	struct cry_file_header *h;
	uint8_t *buf;
	size_t pos = CRY_HEADER_LEN, done = 0;
	uint64_t idx = 0;
	int rc;

	if (len < CRY_HEADER_LEN)
		return CRY_ERR_FORMAT;
	h = cry_secure_alloc(sizeof(*h));
	buf = malloc(len - CRY_HEADER_LEN + 1); /* more than the cleartext needs */
	if (!h || !buf) {
		rc = CRY_ERR_NOMEM;
		goto out;
	}
	rc = cry_header_decrypt(mk, in, h);
	while (!rc && pos < len) {
		size_t n = len - pos < CRY_CHUNK_CIPHER ? len - pos : CRY_CHUNK_CIPHER;

		/* a last chunk of exactly 28 bytes is the empty chunk Cryptomator
		 * appends to dirid.c9r; shorter ones are rejected as malformed */
		rc = cry_chunk_decrypt(h, idx++, in + pos, n, buf + done);
		pos += n;
		done += n - CRY_CHUNK_OVERHEAD;
	}
out:
	cry_secure_free(h, sizeof(*h));
	if (rc) {
		free(buf);
		return rc;
	}
	buf[done] = '\0';
	*out = buf;
	*out_len = done;
	return CRY_OK;
}
