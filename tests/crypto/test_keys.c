/* Masterkey file (scrypt, key wrap, versionMac), vault config JWT, UUIDs,
 * secure memory and error strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "tharness.h"
#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "crypto/cry_mem.h"

static const uint8_t zero_key[CRY_KEY_LEN];

/* A masterkey file text; vmac NULL leaves out versionMac. */
static char *masterkey_json(long version, const char *salt, long n, long r, const char *pmk,
			    const char *hmk, const char *vmac)
{
	char *text, vmac_field[128] = "";
	if (vmac != NULL)
		snprintf(vmac_field, sizeof vmac_field, ",\n  \"versionMac\": \"%s\"", vmac);
	if (asprintf(&text,
		     "{\n  \"version\": %ld,\n  \"scryptSalt\": \"%s\",\n  \"scryptCostParam\": %ld,\n"
		     "  \"scryptBlockSize\": %ld,\n  \"primaryMasterKey\": \"%s\",\n"
		     "  \"hmacMasterKey\": \"%s\"%s\n}",
		     version, salt, n, r, pmk, hmk, vmac_field) < 0)
		abort();
	return text;
}

static long json_long(struct json_object *obj, const char *key)
{
	return (long)json_object_get_int64(json_object_object_get(obj, key));
}

/* Unlocks text with password and expects the all-zero keys of the vectors. */
static void expect_zero_keys(const char *text, const char *password, long n, long r)
{
	struct cry_masterkey *mk = NULL;
	struct cry_kdf_params params = { 0, 0 };
	CHECK_RC(cry_masterkey_file_unlock(text, strlen(text), password, &mk, &params), CRY_OK);
	CHECK(mk != NULL && memcmp(mk->enc, zero_key, CRY_KEY_LEN) == 0 &&
	      memcmp(mk->mac, zero_key, CRY_KEY_LEN) == 0);
	CHECK(params.n == (uint64_t)n && params.r == (uint32_t)r);
	cry_masterkey_free(mk);
}

static void expect_unlock_error(const char *text, const char *password, int want)
{
	struct cry_masterkey *mk = (struct cry_masterkey *)1;
	CHECK_RC(cry_masterkey_file_unlock(text, strlen(text), password, &mk, NULL), want);
	CHECK(mk == NULL);
}

/* lock must reproduce the wrapped keys of the vector for its salt. */
static void expect_lock_reproduces(struct json_object *e, long n, long r)
{
	struct cry_masterkey *mk = cry_masterkey_from_bytes(zero_key, zero_key);
	struct cry_kdf_params params = { (uint64_t)n, (uint32_t)r };
	size_t salt_len;
	uint8_t *salt = t_b64(t_json_str(e, "scryptSalt_b64"), &salt_len);
	char *text = NULL, pmk[160], hmk[160];
	CHECK(salt_len == 8);
	CHECK_RC(cry_masterkey_file_lock(mk, t_json_str(e, "password"), &params, salt, &text),
		 CRY_OK);
	snprintf(pmk, sizeof pmk, "\"primaryMasterKey\": \"%s\"", t_json_str(e, "primaryMasterKey_b64"));
	snprintf(hmk, sizeof hmk, "\"hmacMasterKey\": \"%s\"", t_json_str(e, "hmacMasterKey_b64"));
	CHECK(text != NULL && strstr(text, pmk) != NULL && strstr(text, hmk) != NULL);
	if (text != NULL)
		expect_zero_keys(text, t_json_str(e, "password"), n, r);
	free(text);
	free(salt);
	cry_masterkey_free(mk);
}

static void test_masterkey_vectors(void)
{
	struct json_object *list = json_object_object_get(t_vectors(), "masterkey_file");
	struct json_object *e0 = json_object_array_get_idx(list, 0);
	struct json_object *e7 = json_object_array_get_idx(list, 1);
	struct json_object *e2 = json_object_array_get_idx(list, 2);
	const char *salt = t_json_str(e0, "scryptSalt_b64"), *pw = t_json_str(e0, "password");
	const char *pmk = t_json_str(e0, "primaryMasterKey_b64");
	const char *hmk = t_json_str(e0, "hmacMasterKey_b64");
	long n = json_long(e0, "scryptCostParam"), r = json_long(e0, "scryptBlockSize");
	char *text;

	/* cryptolib: version 3 and its versionMac. */
	text = masterkey_json(json_long(e0, "version"), salt, n, r, pmk, hmk,
			      t_json_str(e0, "versionMac_b64"));
	expect_zero_keys(text, pw, n, r);
	expect_unlock_error(text, "asdf", CRY_ERR_PASSWORD);
	expect_unlock_error(text, "", CRY_ERR_PASSWORD);
	free(text);

	/* cryptolib-swift: the same file as version 7. */
	text = masterkey_json(json_long(e7, "same_as_above_but_version"), salt, n, r, pmk, hmk,
			      t_json_str(e7, "versionMac_b64"));
	expect_zero_keys(text, pw, n, r);
	free(text);

	/* A versionMac that belongs to another version is rejected. */
	text = masterkey_json(json_long(e0, "version"), salt, n, r, pmk, hmk,
			      t_json_str(e7, "versionMac_b64"));
	expect_unlock_error(text, pw, CRY_ERR_VERSION_MAC);
	free(text);

	/* cryptomator-js: N = 32768 and no versionMac at all (older files). */
	long n2 = json_long(e2, "scryptCostParam"), r2 = json_long(e2, "scryptBlockSize");
	text = masterkey_json(999, t_json_str(e2, "scryptSalt_b64"), n2, r2,
			      t_json_str(e2, "primaryMasterKey_b64"),
			      t_json_str(e2, "hmacMasterKey_b64"), NULL);
	expect_zero_keys(text, t_json_str(e2, "password"), n2, r2);
	free(text);

	expect_lock_reproduces(e0, n, r);
	expect_lock_reproduces(e2, n2, r2);
}

static void test_masterkey_lock_layout(void)
{
	struct cry_masterkey *mk = cry_masterkey_from_bytes(zero_key, zero_key);
	struct cry_kdf_params params = { 2, 8 };
	uint8_t salt[8] = { 0 };
	char *text = NULL;
	CHECK_RC(cry_masterkey_file_lock(mk, "asd", &params, salt, &text), CRY_OK);
	/* versionMac of version 999 under the zero macKey, computed independently. */
	uint8_t be999[4] = { 0, 0, 0x03, 0xe7 }, mac[EVP_MAX_MD_SIZE];
	size_t mac_len;
	CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, zero_key, 32, be999, 4, mac,
			sizeof mac, &mac_len) != NULL);
	char *vmac = cry_b64_encode(mac, mac_len, false, true);
	char *want = masterkey_json(999, "AAAAAAAAAAA=", 2, 8,
				    "mM+qoQ+o0qvPTiDAZYt+flaC3WbpNAx1sTXaUzxwpy0M9Ctj6Tih/Q==",
				    "mM+qoQ+o0qvPTiDAZYt+flaC3WbpNAx1sTXaUzxwpy0M9Ctj6Tih/Q==", vmac);
	char *want_nl = NULL;
	if (asprintf(&want_nl, "%s\n", want) < 0)
		abort();
	CHECK_STR(text, want_nl);
	free(text);
	free(want);
	free(want_nl);
	free(vmac);

	/* Round trip with a random key, random salt and default parameters. */
	struct cry_masterkey *rnd = cry_masterkey_new_random(), *back = NULL;
	text = NULL;
	CHECK(rnd != NULL && memcmp(rnd->enc, rnd->mac, CRY_KEY_LEN) != 0);
	CHECK_RC(cry_masterkey_file_lock(rnd, "secret", &(struct cry_kdf_params){ 16, 2 }, NULL,
					 &text),
		 CRY_OK);
	CHECK(text != NULL && strstr(text, "\"scryptCostParam\": 16,\n") != NULL);
	CHECK_RC(cry_masterkey_file_unlock(text, strlen(text), "secret", &back, NULL), CRY_OK);
	CHECK(back != NULL && memcmp(back, rnd, sizeof *rnd) == 0);
	expect_unlock_error(text, "Secret", CRY_ERR_PASSWORD);
	cry_masterkey_free(back);
	free(text);

	/* Parameters out of bounds are refused when writing too. */
	text = (char *)1;
	CHECK_RC(cry_masterkey_file_lock(mk, "x", &(struct cry_kdf_params){ 3, 8 }, salt, &text),
		 CRY_ERR_FORMAT);
	CHECK(text == NULL);
	cry_masterkey_free(rnd);
	cry_masterkey_free(mk);
}

/* Passwords are NFC-normalised; one that is not UTF-8 is used as is. */
static void test_password_normalisation(void)
{
	struct cry_masterkey *mk = cry_masterkey_new_random(), *back = NULL;
	struct cry_kdf_params params = { 2, 1 };
	char *text = NULL;
	CHECK_RC(cry_masterkey_file_lock(mk, "p\xc3\xa4sswort", &params, NULL, &text), CRY_OK);
	CHECK_RC(cry_masterkey_file_unlock(text, strlen(text), "pa\xcc\x88sswort", &back, NULL),
		 CRY_OK);
	cry_masterkey_free(back);
	free(text);
	CHECK_RC(cry_masterkey_file_lock(mk, "\xff\xfe latin", &params, NULL, &text), CRY_OK);
	CHECK_RC(cry_masterkey_file_unlock(text, strlen(text), "\xff\xfe latin", &back, NULL),
		 CRY_OK);
	expect_unlock_error(text, "\xff latin", CRY_ERR_PASSWORD);
	cry_masterkey_free(back);
	free(text);
	cry_masterkey_free(mk);
}

static void test_masterkey_malformed(void)
{
	const char *pmk = "mM+qoQ+o0qvPTiDAZYt+flaC3WbpNAx1sTXaUzxwpy0M9Ctj6Tih/Q==";
	const char *k32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; /* 32 bytes: not wrapped */
	struct {
		long n, r;
		const char *salt, *key;
	} bad[] = {
		{ 3, 8, "AAAAAAAAAAA=", pmk },		 /* N not a power of two */
		{ 1, 8, "AAAAAAAAAAA=", pmk },		 /* N too small */
		{ 1L << 25, 1, "AAAAAAAAAAA=", pmk },	 /* N too large */
		{ 1L << 24, 32, "AAAAAAAAAAA=", pmk },	 /* 64 GiB of memory */
		{ 1L << 24, 8, "AAAAAAAAAAA=", pmk },	 /* 16 GiB of memory */
		{ 2, 0, "AAAAAAAAAAA=", pmk },		 /* r too small */
		{ 2, 33, "AAAAAAAAAAA=", pmk },		 /* r too large */
		{ -2, 8, "AAAAAAAAAAA=", pmk },		 /* negative */
		{ 2, 8, "", pmk },			 /* no salt */
		{ 2, 8, "AAAA$AAAAAA=", pmk },		 /* salt not base64 */
		{ 2, 8, "AAAAAAAAAAA=", k32 },		 /* key of the wrong length */
		{ 2, 8, "AAAAAAAAAAA=", "not base64!" }, /* key not base64 */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = masterkey_json(999, bad[i].salt, bad[i].n, bad[i].r, bad[i].key, pmk,
					    NULL);
		expect_unlock_error(text, "asd", CRY_ERR_FORMAT);
		free(text);
	}
	static const char *bad_json[] = {
		"", "[]", "{}", "not json", "{\"version\": 999",
		"{\"version\":999,\"scryptSalt\":\"AAAAAAAAAAA=\",\"scryptCostParam\":\"2\","
		"\"scryptBlockSize\":8,\"primaryMasterKey\":\"mM+qoQ+o0qvPTiDAZYt+flaC3WbpNAx1sTXaUzxwpy0M9Ctj6Tih/Q==\","
		"\"hmacMasterKey\":\"mM+qoQ+o0qvPTiDAZYt+flaC3WbpNAx1sTXaUzxwpy0M9Ctj6Tih/Q==\"}",
	};
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
		expect_unlock_error(bad_json[i], "asd", CRY_ERR_FORMAT);
	/* A good file with anything but white space after it. */
	char *text = masterkey_json(999, "AAAAAAAAAAA=", 2, 8, pmk, pmk, NULL), *longer;
	if (asprintf(&longer, "%s\n{}", text) < 0)
		abort();
	expect_unlock_error(longer, "asd", CRY_ERR_FORMAT);
	free(longer);
	if (asprintf(&longer, "%s \n", text) < 0)
		abort();
	expect_zero_keys(longer, "asd", 2, 8);
	free(longer);
	/* A versionMac that is not base64 of 32 bytes. */
	free(text);
	text = masterkey_json(999, "AAAAAAAAAAA=", 2, 8, pmk, pmk, "AAAA");
	expect_unlock_error(text, "asd", CRY_ERR_FORMAT);
	free(text);
}

/* ---- vault config ---- */

static struct cry_masterkey *jwt_key(void)
{
	struct json_object *e = json_object_array_get_idx(
		json_object_object_get(t_vectors(), "vault_config_jwt"), 0);
	uint8_t raw[64];
	t_hex_into(t_json_str(e, "rawKey_hex"), raw, sizeof raw);
	return cry_masterkey_from_bytes(raw, raw + 32);
}

static char *b64url(const char *s)
{
	return cry_b64_encode((const uint8_t *)s, strlen(s), true, false);
}

/* header.payload signed with HS256 under mk, parts as given (padding and all). */
static char *sign_hs256(const char *header_part, const char *payload_part,
			const struct cry_masterkey *mk)
{
	char *signed_part, *jwt;
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t mac_len;
	if (asprintf(&signed_part, "%s.%s", header_part, payload_part) < 0 ||
	    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, mk, 64, (uint8_t *)signed_part,
		      strlen(signed_part), mac, sizeof mac, &mac_len) == NULL)
		abort();
	char *sig = cry_b64_encode(mac, mac_len, true, false);
	if (asprintf(&jwt, "%s.%s", signed_part, sig) < 0)
		abort();
	free(sig);
	free(signed_part);
	return jwt;
}

static int parse(const char *jwt, const struct cry_masterkey *mk, struct cry_vault_config *cfg)
{
	return cry_vault_config_parse(jwt, strlen(jwt), mk, cfg);
}

static void test_jwt_vectors(void)
{
	struct json_object *e = json_object_array_get_idx(
		json_object_object_get(t_vectors(), "vault_config_jwt"), 0);
	struct cry_masterkey *mk = jwt_key();
	struct cry_vault_config cfg;
	static const char *algs[] = { "HS256", "HS384", "HS512" };
	for (int i = 0; i < 3; i++) {
		const char *jwt = t_json_str(e, algs[i]);
		CHECK_RC(parse(jwt, mk, &cfg), CRY_OK);
		CHECK_STR(cfg.alg, algs[i]);
		CHECK_STR(cfg.kid, "TEST_KEY");
		CHECK(cfg.format == 8 && cfg.shortening_threshold == 220);
		CHECK_STR(cfg.jti, "f4b29f3a-47d6-469f-964c-f4c2daee8eb6");
		CHECK_STR(cfg.cipher_combo, "SIV_CTRMAC");
		CHECK_RC(cry_vault_config_check(&cfg), CRY_ERR_CIPHER_COMBO);

		/* One changed signature character. */
		char *bad = strdup(jwt);
		char *last = bad + strlen(bad) - 2;
		*last = *last == 'A' ? 'B' : 'A';
		CHECK_RC(parse(bad, mk, &cfg), CRY_ERR_SIGNATURE);
		free(bad);
	}
	CHECK_RC(parse(t_json_str(e, "alg_none_must_be_rejected"), mk, &cfg), CRY_ERR_ALG);

	/* '=' padding on the signature part is tolerated, and a trailing newline. */
	char *padded;
	if (asprintf(&padded, "%s=\n", t_json_str(e, "HS256")) < 0)
		abort();
	CHECK_RC(parse(padded, mk, &cfg), CRY_OK);
	free(padded);

	/* Another key: signature does not verify. */
	struct cry_masterkey *other = cry_masterkey_from_bytes(zero_key, zero_key);
	CHECK_RC(parse(t_json_str(e, "HS256"), other, &cfg), CRY_ERR_SIGNATURE);
	cry_masterkey_free(other);

	/* The docs example: only its kid can be read without the key. */
	struct json_object *docs = json_object_array_get_idx(
		json_object_object_get(t_vectors(), "vault_config_jwt"), 1);
	const char *token = t_json_str(docs, "token");
	char kid[64];
	CHECK_RC(cry_vault_config_kid(token, strlen(token), kid, sizeof kid), CRY_OK);
	CHECK_STR(kid, "masterkeyfile:masterkey.cryptomator");
	CHECK_RC(cry_vault_config_kid(token, strlen(token), kid, 10), CRY_ERR_FORMAT);
	CHECK_RC(parse(token, mk, &cfg), CRY_ERR_SIGNATURE);
	const char *hs256 = t_json_str(e, "HS256");
	CHECK_RC(cry_vault_config_kid(hs256, strlen(hs256), kid, sizeof kid), CRY_OK);
	CHECK_STR(kid, "TEST_KEY");
	cry_masterkey_free(mk);
}

static void test_jwt_crafted(void)
{
	struct cry_masterkey *mk = jwt_key();
	struct cry_vault_config cfg;
	const char *payload = "{\"format\":8,\"shorteningThreshold\":220,\"jti\":\"x\","
			      "\"cipherCombo\":\"SIV_GCM\"}";
	char *p64 = b64url(payload);
	struct {
		const char *header;
		int want;
	} headers[] = {
		{ "{\"typ\":\"JWT\",\"alg\":\"HS256\"}", CRY_OK }, /* kid is optional here */
		{ "{\"typ\":\"JWT\",\"alg\":\"RS256\"}", CRY_ERR_ALG },
		{ "{\"typ\":\"JWT\",\"alg\":\"none\"}", CRY_ERR_ALG },
		{ "{\"typ\":\"JWT\",\"alg\":\"hs256\"}", CRY_ERR_ALG },
		{ "{\"typ\":\"JWT\"}", CRY_ERR_FORMAT },
		{ "[\"alg\",\"HS256\"]", CRY_ERR_FORMAT },
		{ "{\"alg\":\"HS256\"", CRY_ERR_FORMAT },
	};
	for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
		char *h64 = b64url(headers[i].header);
		char *jwt = sign_hs256(h64, p64, mk); /* a valid HMAC even for RS256 */
		if (!CHECK_RC(parse(jwt, mk, &cfg), headers[i].want))
			fprintf(stderr, "     header %s\n", headers[i].header);
		free(jwt);
		free(h64);
	}

	/* Padded header and payload parts, signed as written. */
	const char *header = "{\"kid\":\"k\",\"alg\":\"HS256\"}";
	char *hpad = cry_b64_encode((const uint8_t *)header, strlen(header), true, true);
	char *ppad = cry_b64_encode((const uint8_t *)payload, strlen(payload), true, true);
	CHECK(strchr(hpad, '=') != NULL || strchr(ppad, '=') != NULL);
	char *jwt = sign_hs256(hpad, ppad, mk);
	CHECK_RC(parse(jwt, mk, &cfg), CRY_OK);
	CHECK_RC(cry_vault_config_check(&cfg), CRY_OK);
	free(jwt);
	free(hpad);
	free(ppad);

	/* The payload is judged only after the signature, and strictly. */
	char *h64 = b64url(header);
	struct {
		const char *payload;
		int parse_rc, check_rc;
	} payloads[] = {
		{ "{\"format\":7,\"shorteningThreshold\":220,\"cipherCombo\":\"SIV_GCM\"}", CRY_OK,
		  CRY_ERR_VAULT_FORMAT },
		{ "{\"format\":8,\"shorteningThreshold\":220,\"cipherCombo\":\"SIV_CTRMAC\"}", CRY_OK,
		  CRY_ERR_CIPHER_COMBO },
		{ "{\"format\":8,\"shorteningThreshold\":220}", CRY_ERR_FORMAT, 0 },
		{ "{\"format\":\"8\",\"shorteningThreshold\":220,\"cipherCombo\":\"SIV_GCM\"}",
		  CRY_ERR_FORMAT, 0 },
		{ "{\"format\":8,\"shorteningThreshold\":0,\"cipherCombo\":\"SIV_GCM\"}",
		  CRY_ERR_FORMAT, 0 },
		{ "{\"format\":8,\"cipherCombo\":\"SIV_GCM\"}", CRY_ERR_FORMAT, 0 },
	};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		char *pl = b64url(payloads[i].payload);
		jwt = sign_hs256(h64, pl, mk);
		if (CHECK_RC(parse(jwt, mk, &cfg), payloads[i].parse_rc) &&
		    payloads[i].parse_rc == CRY_OK)
			CHECK_RC(cry_vault_config_check(&cfg), payloads[i].check_rc);
		free(jwt);
		free(pl);
	}

	/* Not three base64url parts. */
	static const char *shapes[] = { "", "a.b", "a.b.c.d", "..", "eyJ9.eyJ9.$$$" };
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		CHECK_RC(parse(shapes[i], mk, &cfg), CRY_ERR_FORMAT);
	char kid[16];
	CHECK_RC(cry_vault_config_kid("a.b", 3, kid, sizeof kid), CRY_ERR_FORMAT);
	free(h64);
	free(p64);
	cry_masterkey_free(mk);
}

static bool is_uuid_v4(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
			return false;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_jwt_create_and_uuid(void)
{
	struct cry_masterkey *mk = cry_masterkey_new_random(), *other = cry_masterkey_new_random();
	struct cry_vault_config cfg;
	char *jwt = NULL;
	CHECK_RC(cry_vault_config_create(mk, &jwt), CRY_OK);
	CHECK(jwt != NULL && strchr(jwt, '=') == NULL && strchr(jwt, '\n') == NULL);
	const char *want_header =
		"eyJraWQiOiJtYXN0ZXJrZXlmaWxlOm1hc3RlcmtleS5jcnlwdG9tYXRvciIsInR5cCI6IkpXVCIsImFsZyI6IkhTMjU2In0.";
	CHECK(jwt != NULL && strncmp(jwt, want_header, strlen(want_header)) == 0);
	CHECK_RC(parse(jwt, mk, &cfg), CRY_OK);
	CHECK_RC(cry_vault_config_check(&cfg), CRY_OK);
	CHECK(cfg.shortening_threshold == 220 && is_uuid_v4(cfg.jti));
	CHECK_STR(cfg.kid, "masterkeyfile:masterkey.cryptomator");
	CHECK_STR(cfg.alg, "HS256");
	CHECK_RC(parse(jwt, other, &cfg), CRY_ERR_SIGNATURE);
	free(jwt);

	char a[37], b[37];
	CHECK_RC(cry_uuid_random(a), CRY_OK);
	CHECK_RC(cry_uuid_random(b), CRY_OK);
	CHECK(is_uuid_v4(a) && is_uuid_v4(b) && strcmp(a, b) != 0);
	cry_masterkey_free(mk);
	cry_masterkey_free(other);
}

/* VmLck of this process in kB, or -1. */
static long locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

static void test_secure_memory_and_errors(void)
{
	long before = locked_kb();
	uint8_t *p = cry_secure_alloc(10000);
	CHECK(p != NULL && p[0] == 0 && p[9999] == 0);
#ifndef __SANITIZE_ADDRESS__ /* ASan turns mlock into a no-op */
	CHECK(locked_kb() >= before + 10000 / 1024);
#endif
	memset(p, 0x5a, 10000);
	cry_secure_free(p, 10000);
	CHECK(locked_kb() == before);
	cry_secure_free(NULL, 5);

	/* small ones come from locked arenas: zeroed, distinct, and wiped for reuse */
	enum { SMALL = 2000 };
	static uint8_t *small[SMALL];
	bool zeroed = true, distinct = true;
	before = locked_kb();
	for (int i = 0; i < SMALL; i++) {
		small[i] = cry_secure_alloc(44);
		for (int j = 0; small[i] && j < 44; j++)
			zeroed &= small[i][j] == 0;
		if (small[i])
			memset(small[i], 0x5a, 44);
		distinct &= small[i] != NULL && (i == 0 || small[i] != small[i - 1]);
	}
	CHECK(zeroed && distinct);
#ifndef __SANITIZE_ADDRESS__
	CHECK(locked_kb() > before); /* a new arena was needed, and it is locked */
#endif
	for (int i = 0; i < SMALL; i++)
		cry_secure_free(small[i], 44);
	zeroed = true;
	for (int i = 0; i < SMALL; i++) {
		small[i] = cry_secure_alloc(64);
		for (int j = 0; small[i] && j < 64; j++)
			zeroed &= small[i][j] == 0;
	}
	CHECK(zeroed);
	for (int i = 0; i < SMALL; i++)
		cry_secure_free(small[i], 64);

	for (int e = CRY_ERR_INTERNAL; e <= CRY_OK; e++) {
		const char *msg = cry_strerror(e);
		CHECK(msg != NULL && *msg != '\0' && strcmp(msg, cry_strerror(-99)) != 0);
		for (int f = CRY_ERR_INTERNAL; f < e; f++)
			CHECK(strcmp(msg, cry_strerror(f)) != 0);
	}
	CHECK(strstr(cry_strerror(CRY_ERR_CIPHER_COMBO), "SIV_CTRMAC") != NULL);
}

void test_keys(void)
{
	test_masterkey_vectors();
	test_masterkey_lock_layout();
	test_password_normalisation();
	test_masterkey_malformed();
	test_jwt_vectors();
	test_jwt_crafted();
	test_jwt_create_and_uuid();
	test_secure_memory_and_errors();
}
