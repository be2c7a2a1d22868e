#include "fs/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_content.h"
#include "crypto/cry_err.h"
#include "crypto/cry_mem.h"
#include "fs/log.h"

#define CP CRY_CHUNK_PLAIN
#define CC CRY_CHUNK_CIPHER
#define BATCH_CHUNKS 32 /* chunks per store write: 1 MiB of cleartext */

static uint64_t chunk_offset(uint64_t idx)
{
	return CRY_HEADER_LEN + idx * CC;
}

/* Cleartext length of chunk idx in a file of size bytes (0 past the end). */
static size_t chunk_len(uint64_t size, uint64_t idx)
{
	uint64_t start = idx * CP;

	if (start >= size)
		return 0;
	return size - start < CP ? (size_t)(size - start) : CP;
}

static int decrypt_chunk(struct open_file *of, uint64_t idx, const uint8_t *in, size_t in_len,
			 uint8_t *out)
{
	int rc = cry_chunk_decrypt(of->header, idx, in, in_len, out);

	if (rc == CRY_OK)
		return 0;
	log_err("%s: chunk %llu: authentication failed (%s)", of->path,
		(unsigned long long)idx, cry_strerror(rc));
	return -EIO;
}

/* Read exactly len bytes at off, or -EIO when the object is shorter than its
 * size promised (truncated behind our back). */
static int read_exact(struct open_file *of, void *buf, size_t len, uint64_t off)
{
	ssize_t got = store_pread(of->obj, buf, len, off);

	if (got < 0)
		return (int)got;
	if ((size_t)got != len) {
		log_err("%s: object is shorter than expected (truncated?)", of->path);
		return -EIO;
	}
	return 0;
}

/* Write all len bytes at off: the store's error (ENOSPC on a full disk),
 * or -EIO for a short write without one. */
static int write_exact(struct open_file *of, const void *buf, size_t len, uint64_t off)
{
	ssize_t put = store_pwrite(of->obj, buf, len, off);

	if (put < 0)
		return (int)put;
	return (size_t)put == len ? 0 : -EIO;
}

/* Decrypt the current content of chunk idx into plain (CP bytes). */
static int load_chunk(struct open_file *of, uint64_t idx, uint8_t *plain, uint8_t *cipher)
{
	size_t len = chunk_len(of->size, idx);
	int rc;

	if (!len)
		return 0;
	rc = read_exact(of, cipher, len + CRY_CHUNK_OVERHEAD, chunk_offset(idx));
	return rc ? rc : decrypt_chunk(of, idx, cipher, len + CRY_CHUNK_OVERHEAD, plain);
}

/* An object may end in an empty chunk (Cryptomator writes one after
 * dirid.c9r): 28 bytes that reads never touch. Authenticate it here, or an
 * object cut to a chunk boundary plus 28 bytes would pass as a shorter file. */
static int check_empty_last_chunk(struct open_file *of, uint64_t obj_size)
{
	uint8_t tail[CRY_CHUNK_OVERHEAD], none[1];
	uint64_t idx = (obj_size - CRY_HEADER_LEN) / CC;
	int rc;

	if (obj_size < CRY_HEADER_LEN + CRY_CHUNK_OVERHEAD ||
	    (obj_size - CRY_HEADER_LEN) % CC != CRY_CHUNK_OVERHEAD)
		return 0;
	rc = read_exact(of, tail, sizeof(tail), obj_size - sizeof(tail));
	return rc ? rc : decrypt_chunk(of, idx, tail, sizeof(tail), none);
}

int file_open(const struct vault *v, const char *path, bool create, struct open_file **out)
{
	struct open_file *of = calloc(1, sizeof(*of));
	uint8_t raw[CRY_HEADER_LEN];
	struct store_attr a;
	int rc;

	if (!of || !(of->path = strdup(path)) ||
	    !(of->header = cry_secure_alloc(sizeof(*of->header)))) {
		rc = -ENOMEM;
		goto fail;
	}
	of->vault = v;
	rc = store_open(v->store, path, create ? STORE_O_CREATE | STORE_O_EXCL : 0, &of->obj);
	if (rc)
		goto fail;
	if (create) {
		if (cry_header_random(of->header) || cry_header_encrypt(v->mk, of->header, raw))
			rc = -ENOMEM;
		else
			rc = write_exact(of, raw, sizeof(raw), 0);
		if (rc)
			goto fail;
		*out = of;
		return 0;
	}
	rc = store_fgetattr(of->obj, &a);
	if (!rc && cry_cleartext_size(a.size, &of->size) != CRY_OK) {
		log_err("%s: size %llu is not a valid object size (truncated or damaged)", path,
			(unsigned long long)a.size);
		rc = -EIO;
	}
	if (!rc)
		rc = read_exact(of, raw, sizeof(raw), 0);
	if (!rc && cry_header_decrypt(v->mk, raw, of->header) != CRY_OK) {
		log_err("%s: file header: authentication failed", path);
		rc = -EIO;
	}
	if (!rc)
		rc = check_empty_last_chunk(of, a.size);
	if (rc)
		goto fail;
	*out = of;
	return 0;
fail:
	if (of && of->obj)
		store_close(of->obj);
	if (of) {
		cry_secure_free(of->header, sizeof(*of->header));
		free(of->path);
	}
	free(of);
	return rc;
}

void file_close(struct open_file *of)
{
	int rc;

	if (!of)
		return;
	rc = store_close(of->obj);
	if (rc)
		log_err("%s: closing: %s", of->path, strerror(-rc));
	cry_secure_free(of->header, sizeof(*of->header));
	free(of->path);
	free(of);
}

/* Decrypt chunk idx from src and copy its cleartext bytes [from, to) to dst. */
static int decrypt_part(struct open_file *of, uint64_t idx, const uint8_t *src, size_t clen,
			size_t from, size_t to, char *dst)
{
	uint8_t *plain;
	int rc;

	if (from == 0 && to == clen) /* whole chunk: no bounce copy */
		return decrypt_chunk(of, idx, src, clen + CRY_CHUNK_OVERHEAD, (uint8_t *)dst);
	plain = malloc(CP);
	if (!plain)
		return -ENOMEM;
	rc = decrypt_chunk(of, idx, src, clen + CRY_CHUNK_OVERHEAD, plain);
	if (!rc)
		memcpy(dst, plain + from, to - from);
	cry_wipe_free(plain, CP);
	return rc;
}

ssize_t file_read(struct node *n, char *buf, size_t len, uint64_t off)
{
	struct open_file *of = n->of;
	uint64_t first, last, idx, end;
	uint8_t *cipher, *src;
	size_t cipher_len, done = 0;
	int rc;

	if (off >= of->size || len == 0)
		return 0;
	if (len > of->size - off)
		len = (size_t)(of->size - off);
	end = off + len;
	first = off / CP;
	last = (end - 1) / CP;
	cipher_len = (size_t)(cry_ciphertext_size(of->size) - chunk_offset(first));
	if (cipher_len > (last - first + 1) * CC)
		cipher_len = (last - first + 1) * CC;
	cipher = malloc(cipher_len);
	if (!cipher)
		return -ENOMEM;
	rc = read_exact(of, cipher, cipher_len, chunk_offset(first));
	for (idx = first, src = cipher; !rc && idx <= last; idx++, src += CC) {
		size_t clen = chunk_len(of->size, idx);
		uint64_t cstart = idx * CP;
		size_t from = off > cstart ? (size_t)(off - cstart) : 0;
		size_t to = end < cstart + clen ? (size_t)(end - cstart) : clen;

		rc = decrypt_part(of, idx, src, clen, from, to, buf + done);
		done += to - from;
	}
	free(cipher);
	return rc ? rc : (ssize_t)done;
}

/* Write a batch of whole chunks at off. What extends the object goes first:
 * if that fails (a full disk), the object is cut back to its old size before
 * any old byte was overwritten, so the file keeps its old content and size. */
static int write_batch(struct open_file *of, const uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t old_end = cry_ciphertext_size(of->size);
	size_t head = old_end <= off ? 0 : old_end - off < len ? (size_t)(old_end - off) : len;
	int rc;

	if (head < len) {
		rc = write_exact(of, buf + head, len - head, off + head);
		if (rc) {
			(void)store_truncate(of->obj, old_end);
			return rc;
		}
	}
	return head ? write_exact(of, buf, head, off) : 0;
}

/* Write len bytes of src (NULL: zeros) at off, where off <= of->size, as
 * whole encrypted chunks, at most BATCH_CHUNKS per store write. Only a
 * partially overwritten chunk that keeps old bytes is read back. */
static int write_range(struct open_file *of, const char *src, uint64_t len, uint64_t off)
{
	uint8_t *plain = malloc(CP), *cipher = malloc((size_t)BATCH_CHUNKS * CC);
	uint64_t end = off + len;
	int rc = plain && cipher ? 0 : -ENOMEM;

	while (!rc && off < end) {
		uint64_t first = off / CP, idx;
		uint64_t batch_end = (first + BATCH_CHUNKS) * CP < end ? (first + BATCH_CHUNKS) * CP
								      : end;
		uint64_t new_size = batch_end > of->size ? batch_end : of->size;
		uint8_t *dst = cipher;

		for (idx = first; !rc && idx * CP < batch_end; idx++) {
			uint64_t cstart = idx * CP;
			size_t old_len = chunk_len(of->size, idx);
			size_t new_len = chunk_len(new_size, idx);
			size_t from = off > cstart ? (size_t)(off - cstart) : 0;
			size_t to = batch_end - cstart < new_len ? (size_t)(batch_end - cstart)
								 : new_len;

			const uint8_t *in = plain;

			if (src && from == 0 && to == new_len) { /* all new bytes: no bounce copy */
				in = (const uint8_t *)src + (cstart - off);
			} else {
				if (from > 0 || to < old_len)
					rc = load_chunk(of, idx, plain, dst);
				if (rc)
					break;
				if (new_len > old_len)
					memset(plain + old_len, 0, new_len - old_len);
				if (src)
					memcpy(plain + from, src + (cstart + from - off), to - from);
				else
					memset(plain + from, 0, to - from);
			}
			if (cry_chunk_encrypt(of->header, idx, NULL, in, new_len, dst) != CRY_OK)
				rc = -EIO;
			dst += new_len + CRY_CHUNK_OVERHEAD;
		}
		if (!rc)
			rc = write_batch(of, cipher, (size_t)(dst - cipher), chunk_offset(first));
		if (!rc) {
			if (src)
				src += batch_end - off;
			off = batch_end;
			of->size = new_size;
		}
	}
	cry_wipe_free(plain, CP);
	free(cipher);
	return rc;
}

ssize_t file_write(struct node *n, const char *buf, size_t len, uint64_t off)
{
	struct open_file *of = n->of;
	int rc = 0;

	if (off > of->size) /* a hole: the format has none, so fill it with zeros */
		rc = write_range(of, NULL, off - of->size, of->size);
	if (!rc)
		rc = write_range(of, buf, len, off);
	return rc ? rc : (ssize_t)len;
}

int file_truncate(struct node *n, uint64_t size)
{
	struct open_file *of = n->of;
	uint8_t *plain, *cipher;
	uint64_t idx = size / CP;
	size_t keep = (size_t)(size % CP);
	int rc;

	if (size >= of->size)
		return size > of->size ? write_range(of, NULL, size - of->size, of->size) : 0;
	if (keep == 0) { /* at a chunk boundary: just cut */
		rc = store_truncate(of->obj, cry_ciphertext_size(size));
		if (!rc)
			of->size = size;
		return rc;
	}
	plain = malloc(CP);
	cipher = malloc(CC);
	rc = plain && cipher ? load_chunk(of, idx, plain, cipher) : -ENOMEM;
	if (!rc && cry_chunk_encrypt(of->header, idx, NULL, plain, keep, cipher) != CRY_OK)
		rc = -EIO;
	if (!rc)
		rc = write_exact(of, cipher, keep + CRY_CHUNK_OVERHEAD, chunk_offset(idx));
	if (!rc)
		rc = store_truncate(of->obj, cry_ciphertext_size(size));
	if (!rc)
		of->size = size;
	cry_wipe_free(plain, CP);
	free(cipher);
	return rc;
}

int file_fsync(struct node *n, bool datasync)
{
	return store_fsync(n->of->obj, datasync);
}
