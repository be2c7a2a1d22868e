/* The sample vault made with the official cryptolib (data/vault, copied
 * from vault-cryptolib-SIV_GCM): unlock, config, root listing, shortened
 * names, the root's dirid.c9r and a file's contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "tharness.h"
#include "crypto/cry_content.h"
#include "crypto/cry_file.h"
#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "crypto/cry_name.h"

#define PASSWORD "p\xc3\xa4ssw\xc3\xb6rd" /* pässwörd, NFC */

static void test_masterkey_file(const struct cry_masterkey *mk, const char *text,
				const struct cry_kdf_params *params)
{
	/* Re-locking with the file's salt writes the same text (we add a newline). */
	uint8_t salt[8];
	t_hex_into("73f78abaf01dfba6", salt, 8); /* c/eKuvAd+6Y= */
	char *again = NULL, *want = NULL;
	CHECK(params->n == 32768 && params->r == 8);
	CHECK_RC(cry_masterkey_file_lock(mk, PASSWORD, params, salt, &again), CRY_OK);
	if (asprintf(&want, "%s\n", text) < 0)
		abort();
	CHECK_STR(again, want);
	free(again);
	free(want);
}

static void test_config(const struct cry_masterkey *mk)
{
	size_t len;
	char *jwt = t_read_data("vault/vault.cryptomator", &len), kid[64];
	struct cry_vault_config cfg;
	CHECK_RC(cry_vault_config_kid(jwt, len, kid, sizeof kid), CRY_OK);
	CHECK_STR(kid, "masterkeyfile:masterkey.cryptomator");
	CHECK_RC(cry_vault_config_parse(jwt, len, mk, &cfg), CRY_OK);
	CHECK_RC(cry_vault_config_check(&cfg), CRY_OK);
	CHECK(cfg.shortening_threshold == 220);

	/* peek: the same claims without the key, even with a broken signature */
	struct cry_vault_config seen;
	jwt[len - 2] ^= 1;
	CHECK_RC(cry_vault_config_parse(jwt, len, mk, &cfg), CRY_ERR_SIGNATURE);
	CHECK_RC(cry_vault_config_peek(jwt, len, &seen), CRY_OK);
	CHECK(seen.format == 8 && seen.shortening_threshold == 220);
	CHECK_STR(seen.cipher_combo, "SIV_GCM");
	CHECK_STR(seen.kid, "masterkeyfile:masterkey.cryptomator");
	CHECK_RC(cry_vault_config_peek("not.a-jwt", 9, &seen), CRY_ERR_FORMAT);
	free(jwt);
}

/* Names other tools stored in NFD are found by encrypting in NFD. */
static void test_name_forms(const struct cry_names *nm)
{
	const char *nfc = "caf\xc3\xa9.txt", *nfd = "cafe\xcc\x81.txt";
	char *a = NULL, *b = NULL, *c = NULL, *clear = NULL;
	CHECK_RC(cry_name_encrypt_form(nm, "", nfc, CRY_NAME_NFC, &a), CRY_OK);
	CHECK_RC(cry_name_encrypt_form(nm, "", nfc, CRY_NAME_NFD, &b), CRY_OK);
	CHECK_RC(cry_name_encrypt_form(nm, "", nfd, CRY_NAME_NFD, &c), CRY_OK);
	CHECK(a && b && c && strcmp(a, b) != 0 && strcmp(b, c) == 0);
	CHECK_RC(cry_name_decrypt(nm, "", b, &clear), CRY_OK);
	CHECK_STR(clear, nfd);
	free(a);
	free(b);
	free(c);
	free(clear);
}

static bool listed(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static void test_root_listing(const struct cry_names *nm)
{
	char hash[CRY_DIR_HASH_LEN + 1];
	CHECK_RC(cry_dir_hash(nm, "", hash), CRY_OK);
	CHECK_STR(hash, "C2WEHGC4NYUGZSBJRADPVM67KGSJSCUX");

	char long_u[256] = "", long_d[171] = "";
	for (int i = 0; i < 120; i++)
		strcat(long_u, "\xc3\x9c"); /* Ü */
	strcat(long_u, ".txt");
	memset(long_d, 'D', 170);
	const char *const want[] = { "hello.txt", "empty.bin", "sub", long_u, long_d };
	bool seen[5] = { false };

	char *listing = t_read_data("vault/root-listing.txt", NULL), *save = NULL;
	int entries = 0;
	for (char *e = strtok_r(listing, "\n", &save); e; e = strtok_r(NULL, "\n", &save)) {
		char *c9r = NULL, *name = NULL;
		if (strcmp(e, "dirid.c9r") == 0)
			continue;
		if (strstr(e, ".c9s") != NULL) {
			char path[128], short_name[CRY_SHORT_NAME_LEN + 1];
			snprintf(path, sizeof path, "vault/%s/name.c9s", e);
			c9r = t_read_data(path, NULL);
			cry_name_shorten(c9r, short_name);
			CHECK_STR(short_name, e);
		} else {
			c9r = strdup(e);
		}
		if (CHECK_RC(cry_name_decrypt(nm, "", c9r, &name), CRY_OK) &&
		    CHECK(listed(name, want, 5))) {
			for (int i = 0; i < 5; i++)
				seen[i] |= strcmp(name, want[i]) == 0;
			/* and the writer's side: the same name encrypts to the same entry */
			char *again = NULL;
			CHECK_RC(cry_name_encrypt(nm, "", name, &again), CRY_OK);
			CHECK_STR(again, c9r);
			free(again);
		}
		entries++;
		free(name);
		free(c9r);
	}
	CHECK(entries == 5 && seen[0] && seen[1] && seen[2] && seen[3] && seen[4]);
	free(listing);
}

/* header + chunks of an object, decrypted into a malloc'd buffer. */
static void test_contents(const struct cry_masterkey *mk)
{
	size_t len;
	uint8_t *plain = NULL;
	size_t plain_len = 99;
	/* The root's dirid.c9r: header and one empty chunk, for dirId "". */
	char *obj = t_read_data("vault/root-dirid.c9r", &len);
	CHECK(len == 96);
	CHECK_RC(cry_file_decrypt(mk, (uint8_t *)obj, len, &plain, &plain_len), CRY_OK);
	CHECK(plain_len == 0);
	free(plain);
	free(obj);

	obj = t_read_data("vault/CRd2bylwQZ7_YOJWLQ2ovdOa4LUWF8P9TQ==.c9r", &len);
	plain = NULL;
	CHECK_RC(cry_file_decrypt(mk, (uint8_t *)obj, len, &plain, &plain_len), CRY_OK);
	CHECK(plain_len == 11 && plain != NULL && memcmp(plain, "hello world", 11) == 0);
	free(plain);
	plain = NULL;
	obj[len - 1] ^= 0x80;
	CHECK_RC(cry_file_decrypt(mk, (uint8_t *)obj, len, &plain, &plain_len), CRY_ERR_AUTH);
	free(plain);
	free(obj);

	/* Two full chunks: chunk 1 checks the be64 index in the AAD. */
	obj = t_read_data("vault/exact64k.c9r", &len);
	plain = NULL;
	CHECK_RC(cry_file_decrypt(mk, (uint8_t *)obj, len, &plain, &plain_len), CRY_OK);
	uint8_t md[32];
	CHECK(plain_len == 65536 && plain != NULL &&
	      EVP_Digest(plain, plain_len, md, NULL, EVP_sha256(), NULL));
	CHECK_HEX(md, sizeof md, "4b0c8b573a58de59e8f01801005eba0c95692397fbc1fd0f0c467c3cf9ef1cdb");

	/* cry_file_encrypt round trip: exactly the object size of the format,
	 * and no empty trailing chunk at a chunk boundary */
	uint8_t *again = NULL;
	size_t again_len = 0;
	CHECK_RC(cry_file_encrypt(mk, plain, plain_len, &again, &again_len), CRY_OK);
	CHECK(again_len == len && again_len == cry_ciphertext_size(65536));
	free(plain);
	plain = NULL;
	CHECK_RC(cry_file_decrypt(mk, again, again_len, &plain, &plain_len), CRY_OK);
	CHECK(plain_len == 65536 && EVP_Digest(plain, plain_len, md, NULL, EVP_sha256(), NULL));
	CHECK_HEX(md, sizeof md, "4b0c8b573a58de59e8f01801005eba0c95692397fbc1fd0f0c467c3cf9ef1cdb");
	free(plain);
	plain = NULL;
	CHECK_RC(cry_file_decrypt(mk, again, 67, &plain, &plain_len), CRY_ERR_FORMAT);
	CHECK_RC(cry_file_decrypt(mk, again, again_len - 5, &plain, &plain_len), CRY_ERR_AUTH);
	CHECK_RC(cry_file_decrypt(mk, again, CRY_HEADER_LEN + 10, &plain, &plain_len),
		 CRY_ERR_FORMAT);
	free(again);
	CHECK_RC(cry_file_encrypt(mk, (const uint8_t *)"", 0, &again, &again_len), CRY_OK);
	CHECK(again_len == CRY_HEADER_LEN);
	CHECK_RC(cry_file_decrypt(mk, again, again_len, &plain, &plain_len), CRY_OK);
	CHECK(plain_len == 0 && plain[0] == '\0');
	free(plain);
	free(again);
	free(obj);
}

void test_vault(void)
{
	size_t len;
	char *text = t_read_data("vault/masterkey.cryptomator", &len);
	struct cry_masterkey *mk = NULL;
	struct cry_kdf_params params;
	if (!CHECK_RC(cry_masterkey_file_unlock(text, len, PASSWORD, &mk, &params), CRY_OK)) {
		free(text);
		return;
	}
	struct cry_names *nm = cry_names_new(mk);
	struct cry_kdf_params peeked;
	CHECK_RC(cry_masterkey_file_params(text, len, &peeked), CRY_OK);
	CHECK(peeked.n == params.n && peeked.r == params.r && params.n == 32768);
	CHECK_RC(cry_masterkey_file_params("{}", 2, &peeked), CRY_ERR_FORMAT);
	test_masterkey_file(mk, text, &params);
	test_name_forms(nm);
	test_config(mk);
	test_root_listing(nm);
	test_contents(mk);
	cry_names_free(nm);
	cry_masterkey_free(mk);
	free(text);
}
