/* libFuzzer target: encrypted names (crypto/cry_name.h), the .c9s shortening
 * and the base64 decoder (crypto/cry_encode.h), under the fixed key
 * enc = 0x55 x 32, mac = 0x77 x 32 (that of name_vectors_cryptolib.tsv).
 *
 * Input: a mode byte, then [dir id up to a NUL][the rest], where
 * - even mode: the rest is a stored entry name, or the content of a name.c9s
 *   file: it is decrypted in the dir id, shortened, hashed as a dir id and
 *   base64-decoded in both alphabets (a decoded text must re-encode to text
 *   that decodes the same).
 * - odd mode (structure-aware, to get past the SIV tag): the rest, up to a
 *   NUL, is a cleartext name. Its .c9r name must decrypt to it (in NFC) when
 *   it is a safe name; the .c9r name is then damaged by the remaining bytes
 *   (fuzz_damage) and decrypted again. */
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_name.h"
#include "tests/fuzz/fuzz_common.h"

static struct cry_names *names(void)
{
	static struct cry_names *nm;
	if (nm == NULL) {
		struct cry_masterkey *mk = fuzz_masterkey(0x55, 0x77);
		nm = cry_names_new(mk);
		cry_masterkey_free(mk);
		if (nm == NULL)
			fuzz_fail("out of memory");
	}
	return nm;
}

static void check_base64(const char *text, size_t len, bool url)
{
	size_t n, n2;
	uint8_t *bytes = cry_b64_decode(text, len, url, &n);
	if (bytes == NULL)
		return;
	char *again = cry_b64_encode(bytes, n, url, true);
	uint8_t *bytes2 = again ? cry_b64_decode(again, strlen(again), url, &n2) : NULL;
	if (bytes2 == NULL || n2 != n || memcmp(bytes, bytes2, n) != 0)
		fuzz_fail("base64 decode, encode, decode changed the bytes");
	free(bytes2);
	free(again);
	free(bytes);
}

/* Decrypt a stored name in dir_id; a name that decrypts must be one safe
 * path component, and encrypting it back must give a name that decrypts to
 * it again. Returns the decrypted name (malloc'd) or NULL. */
static char *decrypt(const char *dir_id, const char *c9r)
{
	char *name, *c9r_again, *name_again;
	if (cry_name_decrypt(names(), dir_id, c9r, &name) != CRY_OK)
		return NULL;
	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		fuzz_fail("cry_name_decrypt gave no single safe path component");
	if (cry_name_encrypt(names(), dir_id, name, &c9r_again) != CRY_OK)
		fuzz_fail("a decrypted name does not encrypt");
	if (cry_name_decrypt(names(), dir_id, c9r_again, &name_again) != CRY_OK)
		fuzz_fail("a re-encrypted name does not decrypt");
	free(c9r_again);
	free(name_again);
	return name;
}

static void check_shortened(const char *c9r)
{
	char short_name[CRY_SHORT_NAME_LEN + 1];
	cry_name_shorten(c9r, short_name);
	if (strlen(short_name) != CRY_SHORT_NAME_LEN ||
	    strcmp(short_name + CRY_SHORT_NAME_LEN - 4, ".c9s") != 0)
		fuzz_fail("cry_name_shorten gave no <hash>.c9s name");
}

static void fuzz_raw(const char *dir_id, struct fuzz_input *in)
{
	char *stored = fuzz_strndup(in->p, in->n);
	free(decrypt(dir_id, stored));
	check_shortened(stored);
	char hash[CRY_DIR_HASH_LEN + 1];
	if (cry_dir_hash(names(), dir_id, hash) != CRY_OK || strlen(hash) != CRY_DIR_HASH_LEN)
		fuzz_fail("cry_dir_hash failed");
	check_base64((const char *)in->p, in->n, true);
	check_base64((const char *)in->p, in->n, false);
	free(stored);
}

static bool is_safe_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static void fuzz_structured(const char *dir_id, struct fuzz_input *in)
{
	char *name = fuzz_field(in, '\0'), *c9r;
	if (cry_name_encrypt(names(), dir_id, name, &c9r) != CRY_OK) {
		free(name);
		return; /* not UTF-8 */
	}
	char *back = decrypt(dir_id, c9r);
	if (is_safe_name(name) && back == NULL)
		fuzz_fail("an encrypted name did not decrypt");
	free(back);
	check_shortened(c9r);

	size_t len = strlen(c9r);
	fuzz_damage(in, (uint8_t *)c9r, &len);
	c9r[len] = '\0';
	free(decrypt(dir_id, c9r));
	free(c9r);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	bool structured = fuzz_byte(&in) & 1;
	char *dir_id = fuzz_field(&in, '\0');
	if (structured)
		fuzz_structured(dir_id, &in);
	else
		fuzz_raw(dir_id, &in);
	free(dir_id);
	return 0;
}
