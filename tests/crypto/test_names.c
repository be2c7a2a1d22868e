/* Name encryption (TSV vectors from cryptolib), dirHash, shortening and the
 * ways a reader must cope with names it finds in storage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tharness.h"
#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_name.h"
#include "crypto/cry_siv.h"

/* The name key of the vectors: encKey 0x55..., macKey 0x77.... */
static struct cry_names *vector_names(void)
{
	struct json_object *v = json_object_object_get(t_vectors(), "names");
	uint8_t enc[32], mac[32];
	t_hex_into(t_json_str(v, "encKey_hex"), enc, 32);
	t_hex_into(t_json_str(v, "macKey_hex"), mac, 32);
	struct cry_masterkey *mk = cry_masterkey_from_bytes(enc, mac);
	struct cry_names *nm = cry_names_new(mk);
	cry_masterkey_free(mk);
	return nm;
}

static void expect_decrypts(const struct cry_names *nm, const char *dir_id, const char *c9r,
			    const char *want)
{
	char *name = NULL;
	if (!CHECK_RC(cry_name_decrypt(nm, dir_id, c9r, &name), CRY_OK))
		fprintf(stderr, "     name %s\n", c9r);
	else
		CHECK_STR(name, want);
	free(name);
}

static void expect_decrypt_error(const struct cry_names *nm, const char *dir_id, const char *c9r,
				 int want)
{
	char *name = (char *)1;
	if (!CHECK_RC(cry_name_decrypt(nm, dir_id, c9r, &name), want))
		fprintf(stderr, "     name \"%s\"\n", c9r);
	CHECK(name == NULL);
}

/* The TSV: kind, parentDirId, cleartextName, result; dirhash lines have no name. */
static void test_tsv(const struct cry_names *nm)
{
	char *text = t_read_data("name_vectors_cryptolib.tsv", NULL), *save = NULL;
	int names = 0, hashes = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { NULL };
		char *p = line;
		for (int i = 0; i < 4 && p != NULL; i++)
			f[i] = strsep(&p, "\t");
		if (strcmp(f[0], "dirhash") == 0 && f[2] != NULL && f[3] == NULL) {
			char hash[CRY_DIR_HASH_LEN + 1];
			CHECK_RC(cry_dir_hash(nm, f[1], hash), CRY_OK);
			CHECK_STR(hash, f[2]);
			hashes++;
		} else if (strcmp(f[0], "name") == 0 && f[3] != NULL) {
			char *c9r = NULL;
			CHECK_RC(cry_name_encrypt(nm, f[1], f[2], &c9r), CRY_OK);
			CHECK_STR(c9r, f[3]);
			free(c9r);
			expect_decrypts(nm, f[1], f[3], f[2]);
			names++;
		} else {
			CHECK(!"unknown TSV line");
		}
	}
	CHECK(names == 21 && hashes == 2);
	free(text);
}

static void test_dir_hash_vectors(const struct cry_names *nm)
{
	struct json_object *v = json_object_object_get(t_vectors(), "dir_id_hash");
	char hash[CRY_DIR_HASH_LEN + 1];
	int cases = 0;
	json_object_object_foreach(json_object_object_get(v, "cases"), dir_id, want)
	{
		CHECK_RC(cry_dir_hash(nm, dir_id, hash), CRY_OK);
		CHECK_STR(hash, json_object_get_string(want));
		cases++;
	}
	CHECK(cases == 2);
	char path[64];
	CHECK_RC(cry_dir_hash(nm, "", hash), CRY_OK);
	snprintf(path, sizeof path, "d/%.2s/%s", hash, hash + 2);
	CHECK_STR(path, t_json_str(v, "root_dir_path"));
}

static void test_reader_tolerance(const struct cry_names *nm)
{
	const char *root_hello = "BweiJPhaXt21REROEq5FI8f78t8AGYisdQ==.c9r";
	/* Missing padding, and sync-tool conflict copies. */
	expect_decrypts(nm, "", "BweiJPhaXt21REROEq5FI8f78t8AGYisdQ.c9r", "hello.txt");
	expect_decrypts(nm, "", "BweiJPhaXt21REROEq5FI8f78t8AGYisdQ== (1).c9r", "hello.txt");
	expect_decrypts(nm, "", "BweiJPhaXt21REROEq5FI8f78t8AGYisdQ (conflicted copy).c9r",
			"hello.txt");
	/* Wrong directory, a changed character, a flipped bit: not authentic. */
	expect_decrypt_error(nm, "foo", root_hello, CRY_ERR_AUTH);
	expect_decrypt_error(nm, "", "CweiJPhaXt21REROEq5FI8f78t8AGYisdQ==.c9r", CRY_ERR_AUTH);
	expect_decrypt_error(nm, "", "BweiJPhaXt21REROEq5FI8f78t8AGYisdA==.c9r", CRY_ERR_AUTH);
	/* Not encrypted names at all. */
	static const char *junk[] = {
		"dirid.c9r", "dir.c9r", ".c9r", "", "BweiJPhaXt21REROEq5FI8f78t8AGYisdQ==",
		"BweiJPhaXt21REROEq5FI8f78t8AGYisdQ==.c9s", "AAAAAAAAAAAAAAAAAAAA.c9r",
		"BweiJPhaXt21REROEq5FI8f78t8AGYisdR==.c9r", /* unused bits set */
		"BweiJPhaXt21REROEq5FI8f78t8AGYisdQ=.c9r",  /* half padded */
		"!BweiJPhaXt21REROEq5FI8f78t8AGYisdQ==.c9r",
	};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		expect_decrypt_error(nm, "", junk[i], CRY_ERR_FORMAT);
}

static void test_normalisation(const struct cry_names *nm)
{
	char *nfc = NULL, *nfd = NULL, *back = NULL;
	CHECK_RC(cry_name_encrypt(nm, "", "caf\xc3\xa9.txt", &nfc), CRY_OK);
	CHECK_RC(cry_name_encrypt(nm, "", "cafe\xcc\x81.txt", &nfd), CRY_OK);
	CHECK_STR(nfd, "1RwHIhZnnmaQUDK9nt0O_gbVoP36YYSGZA==.c9r");
	CHECK_STR(nfc, nfd);
	CHECK_RC(cry_name_decrypt(nm, "", nfd, &back), CRY_OK);
	CHECK_STR(back, "caf\xc3\xa9.txt");
	free(nfc);
	free(nfd);
	free(back);
	char *out = (char *)1;
	CHECK_RC(cry_name_encrypt(nm, "", "bad\xff.txt", &out), CRY_ERR_FORMAT);
	CHECK(out == NULL);
	CHECK_RC(cry_name_encrypt(nm, "", "\xc0\xaf", &out), CRY_ERR_FORMAT); /* overlong '/' */
}

/* A tampered vault (someone with the key) must not smuggle in a path. */
static void test_unsafe_names(const struct cry_names *nm)
{
	struct json_object *v = json_object_object_get(t_vectors(), "names");
	uint8_t key[64], ct[32];
	t_hex_into(t_json_str(v, "macKey_hex"), key, 32);
	t_hex_into(t_json_str(v, "encKey_hex"), key + 32, 32);
	static const struct {
		const char *name;
		size_t len;
	} unsafe[] = { { "a/b", 3 }, { "..", 2 }, { ".", 1 }, { "", 0 }, { "a\0b", 3 },
		       { "\xff", 1 }, { "\xc0\xaf", 2 }, { "/", 1 } };
	struct cry_siv_ad ad = { (const uint8_t *)"", 0 };
	for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
		CHECK_RC(cry_siv_encrypt(key, 64, &ad, 1, (const uint8_t *)unsafe[i].name,
					 unsafe[i].len, ct),
			 CRY_OK);
		char *b64 = cry_b64_encode(ct, 16 + unsafe[i].len, true, true), c9r[64];
		snprintf(c9r, sizeof c9r, "%s.c9r", b64);
		expect_decrypt_error(nm, "", c9r, CRY_ERR_FORMAT);
		free(b64);
	}
	/* Whereas "..." and a name with a dot are fine. */
	char *c9r = NULL;
	CHECK_RC(cry_name_encrypt(nm, "", "...", &c9r), CRY_OK);
	expect_decrypts(nm, "", c9r, "...");
	free(c9r);
}

static void test_long_names(const struct cry_names *nm)
{
	/* 255 bytes, the Linux limit, in 2-byte characters (plus one ASCII). */
	char name[256];
	for (int i = 0; i < 254; i += 2)
		memcpy(name + i, "\xc3\xbc", 2);
	name[254] = 'x';
	name[255] = '\0';
	char *c9r = NULL, short_name[CRY_SHORT_NAME_LEN + 1];
	CHECK_RC(cry_name_encrypt(nm, "d", name, &c9r), CRY_OK);
	CHECK(c9r != NULL && strlen(c9r) > 220);
	expect_decrypts(nm, "d", c9r, name);
	cry_name_shorten(c9r, short_name);
	CHECK(strlen(short_name) == CRY_SHORT_NAME_LEN && short_name[27] == '=' &&
	      strcmp(short_name + 28, ".c9s") == 0);
	free(c9r);

	/* Shortened entries of the sample vault: folder name = shorten(name.c9s). */
	static const char *folders[] = { "iJHa23rRTSNoP6mvHuFCj-jJZrU=.c9s",
					 "wLejxymn-lymkcnSxmAWAwSdDOA=.c9s" };
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof path, "vault/%s/name.c9s", folders[i]);
		char *long_name = t_read_data(path, NULL);
		cry_name_shorten(long_name, short_name);
		CHECK_STR(short_name, folders[i]);
		free(long_name);
	}
}

void test_names(void)
{
	struct cry_names *nm = vector_names();
	test_tsv(nm);
	test_dir_hash_vectors(nm);
	test_reader_tolerance(nm);
	test_normalisation(nm);
	test_unsafe_names(nm);
	test_long_names(nm);
	cry_names_free(nm);
}
