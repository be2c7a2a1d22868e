/* Vault keys: the masterkey, masterkey.cryptomator (scrypt + RFC 3394 key
 * wrap + versionMac) and vault.cryptomator (an HMAC-signed JWT). */
#include "crypto/cry_keys.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_internal.h"
#include "crypto/cry_mem.h"

/* The raw masterkey enc || mac is read straight from the struct. */
_Static_assert(sizeof(struct cry_masterkey) == 2 * CRY_KEY_LEN &&
	       offsetof(struct cry_masterkey, mac) == CRY_KEY_LEN,
	       "struct cry_masterkey must be exactly enc || mac");

#define WRAPPED_KEY_LEN (CRY_KEY_LEN + 8) /* RFC 3394 adds one 64-bit block */
#define SALT_LEN 8
#define MAX_SALT_LEN 64
#define VERSION_MAC_LEN 32
/* Limits on the scrypt cost read from a file, so a tampered file cannot make
 * unlocking take minutes or gigabytes: 128 * N * r bytes are needed. */
#define SCRYPT_MAX_N (1u << 24)
#define SCRYPT_MAX_R 32u
#define SCRYPT_MAX_MEM (UINT64_C(1) << 30)

/* ---- the masterkey ---- */

struct cry_masterkey *cry_masterkey_from_bytes(const uint8_t enc[CRY_KEY_LEN],
					       const uint8_t mac[CRY_KEY_LEN])
{
	struct cry_masterkey *mk = cry_secure_alloc(sizeof *mk);
	if (mk != NULL) {
		memcpy(mk->enc, enc, CRY_KEY_LEN);
		memcpy(mk->mac, mac, CRY_KEY_LEN);
	}
	return mk;
}

struct cry_masterkey *cry_masterkey_new_random(void)
{
	struct cry_masterkey *mk = cry_secure_alloc(sizeof *mk);
	if (mk != NULL && RAND_bytes((unsigned char *)mk, sizeof *mk) != 1) {
		cry_masterkey_free(mk);
		return NULL;
	}
	return mk;
}

void cry_masterkey_free(struct cry_masterkey *mk)
{
	cry_secure_free(mk, sizeof *mk);
}

/* ---- JSON helpers ---- */

/* One JSON object making up all of text (trailing white space allowed). */
static struct json_object *parse_json_object(const char *text, size_t len)
{
	if (len > INT_MAX)
		return NULL;
	struct json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	size_t end = json_tokener_get_parse_end(tok);
	bool ok = obj != NULL && json_tokener_get_error(tok) == json_tokener_success &&
		  json_object_is_type(obj, json_type_object);
	json_tokener_free(tok);
	while (end < len && isspace((unsigned char)text[end]))
		end++;
	if (!ok || end != len) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static const char *json_string_field(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool json_int_field(struct json_object *obj, const char *key, int64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

/* Copy a string field into a fixed buffer; false if absent or too long. */
static bool copy_string_field(struct json_object *obj, const char *key, char *dst, size_t size)
{
	const char *s = json_string_field(obj, key);
	if (s == NULL || strlen(s) >= size)
		return false;
	strcpy(dst, s);
	return true;
}

/* Decode a standard base64 field of min_len..max_len bytes into dst. */
static bool b64_field(struct json_object *obj, const char *key, uint8_t *dst,
		      size_t min_len, size_t max_len, size_t *len_out)
{
	const char *s = json_string_field(obj, key);
	size_t len = 0;
	uint8_t *bytes = s != NULL ? cry_b64_decode(s, strlen(s), false, &len) : NULL;
	bool ok = bytes != NULL && len >= min_len && len <= max_len;
	if (ok) {
		memcpy(dst, bytes, len);
		if (len_out != NULL)
			*len_out = len;
	}
	free(bytes);
	return ok;
}

/* ---- masterkey.cryptomator ---- */

struct masterkey_file {
	int64_t version;
	uint8_t salt[MAX_SALT_LEN];
	size_t salt_len;
	struct cry_kdf_params kdf;
	uint8_t wrapped_enc[WRAPPED_KEY_LEN];
	uint8_t wrapped_mac[WRAPPED_KEY_LEN];
	bool has_version_mac;
	uint8_t version_mac[VERSION_MAC_LEN];
};

static bool kdf_params_ok(const struct cry_kdf_params *p)
{
	return p->n >= 2 && p->n <= SCRYPT_MAX_N && (p->n & (p->n - 1)) == 0 &&
	       p->r >= 1 && p->r <= SCRYPT_MAX_R && 128 * p->n * p->r <= SCRYPT_MAX_MEM;
}

static int parse_masterkey_file(const char *text, size_t len, struct masterkey_file *f)
{
	struct json_object *obj = parse_json_object(text, len);
	if (obj == NULL)
		return CRY_ERR_FORMAT;
	int64_t n = 0, r = 0;
	bool ok = json_int_field(obj, "version", &f->version) &&
		  json_int_field(obj, "scryptCostParam", &n) &&
		  json_int_field(obj, "scryptBlockSize", &r) && n > 0 && r > 0 &&
		  (uint64_t)n <= SCRYPT_MAX_N && (uint64_t)r <= SCRYPT_MAX_R &&
		  b64_field(obj, "scryptSalt", f->salt, 1, MAX_SALT_LEN, &f->salt_len) &&
		  b64_field(obj, "primaryMasterKey", f->wrapped_enc, WRAPPED_KEY_LEN,
			    WRAPPED_KEY_LEN, NULL) &&
		  b64_field(obj, "hmacMasterKey", f->wrapped_mac, WRAPPED_KEY_LEN,
			    WRAPPED_KEY_LEN, NULL);
	f->kdf.n = (uint64_t)n;
	f->kdf.r = (uint32_t)r;
	f->has_version_mac = json_object_object_get_ex(obj, "versionMac", NULL);
	if (ok && f->has_version_mac)
		ok = b64_field(obj, "versionMac", f->version_mac, VERSION_MAC_LEN,
			       VERSION_MAC_LEN, NULL);
	json_object_put(obj);
	return ok && kdf_params_ok(&f->kdf) ? CRY_OK : CRY_ERR_FORMAT;
}

/* KEK = scrypt(NFC(password), salt, N, r, p = 1, 32 bytes). A password that is
 * not valid UTF-8 cannot be normalised and is used byte for byte. */
static int derive_kek(const char *password, const uint8_t *salt, size_t salt_len,
		      const struct cry_kdf_params *kdf, uint8_t kek[CRY_KEY_LEN])
{
	char *nfc = NULL;
	size_t nfc_len = 0;
	int rc = cry_nfc(password, strlen(password), &nfc, &nfc_len);
	if (rc == CRY_ERR_NOMEM)
		return rc;
	const char *pw = rc == CRY_OK ? nfc : password;
	size_t pw_len = rc == CRY_OK ? nfc_len : strlen(password);
	int ok = EVP_PBE_scrypt(pw, pw_len, salt, salt_len, kdf->n, kdf->r, 1,
				SCRYPT_MAX_MEM + (1u << 20), kek, CRY_KEY_LEN);
	if (nfc != NULL) {
		OPENSSL_cleanse(nfc, nfc_len);
		free(nfc);
	}
	return ok ? CRY_OK : CRY_ERR_INTERNAL;
}

/* RFC 3394 key wrap (wrap true: 32 -> 40 bytes) or unwrap (40 -> 32 bytes).
 * An unwrap whose integrity check fails means a wrong KEK: CRY_ERR_PASSWORD. */
static int key_wrap(bool wrap, const uint8_t kek[CRY_KEY_LEN], const uint8_t *in, uint8_t *out)
{
	int in_len = wrap ? CRY_KEY_LEN : WRAPPED_KEY_LEN;
	int out_len = wrap ? WRAPPED_KEY_LEN : CRY_KEY_LEN;
	int n = 0, fin = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return CRY_ERR_NOMEM;
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	int ok = EVP_CipherInit_ex(ctx, EVP_aes_256_wrap(), NULL, kek, NULL, wrap) &&
		 EVP_CipherUpdate(ctx, out, &n, in, in_len) &&
		 EVP_CipherFinal_ex(ctx, out + n, &fin) && n + fin == out_len;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		OPENSSL_cleanse(out, (size_t)out_len);
	return ok ? CRY_OK : wrap ? CRY_ERR_INTERNAL : CRY_ERR_PASSWORD;
}

/* versionMac = HMAC-SHA256(macKey, be32(version)). */
static int version_mac(const struct cry_masterkey *mk, int64_t version,
		       uint8_t out[VERSION_MAC_LEN])
{
	uint8_t be32[4] = { (uint8_t)(version >> 24), (uint8_t)(version >> 16),
			    (uint8_t)(version >> 8), (uint8_t)version };
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t mac_len;
	int rc = cry_hmac("SHA256", mk->mac, CRY_KEY_LEN, be32, sizeof be32, mac, &mac_len);
	if (rc == CRY_OK)
		memcpy(out, mac, VERSION_MAC_LEN);
	return rc;
}

static int unwrap_masterkey(const struct masterkey_file *f, const char *password,
			    struct cry_masterkey *mk)
{
	uint8_t *kek = cry_secure_alloc(CRY_KEY_LEN);
	if (kek == NULL)
		return CRY_ERR_NOMEM;
	int rc = derive_kek(password, f->salt, f->salt_len, &f->kdf, kek);
	if (rc == CRY_OK)
		rc = key_wrap(false, kek, f->wrapped_enc, mk->enc);
	if (rc == CRY_OK)
		rc = key_wrap(false, kek, f->wrapped_mac, mk->mac);
	cry_secure_free(kek, CRY_KEY_LEN);
	if (rc == CRY_OK && f->has_version_mac) {
		uint8_t expected[VERSION_MAC_LEN];
		rc = version_mac(mk, f->version, expected);
		if (rc == CRY_OK && CRYPTO_memcmp(expected, f->version_mac, VERSION_MAC_LEN) != 0)
			rc = CRY_ERR_VERSION_MAC;
	}
	return rc;
}

int cry_masterkey_file_unlock(const char *text, size_t len, const char *password,
			      struct cry_masterkey **out, struct cry_kdf_params *params)
{
	struct masterkey_file f;
	*out = NULL;
	int rc = parse_masterkey_file(text, len, &f);
	if (rc != CRY_OK)
		return rc;
	struct cry_masterkey *mk = cry_secure_alloc(sizeof *mk);
	if (mk == NULL)
		return CRY_ERR_NOMEM;
	rc = unwrap_masterkey(&f, password, mk);
	if (rc != CRY_OK) {
		cry_masterkey_free(mk);
		return rc;
	}
	if (params != NULL)
		*params = f.kdf;
	*out = mk;
	return CRY_OK;
}

/* The file text from its binary fields; every value is base64 or a number,
 * so nothing needs escaping. */
static int format_masterkey_file(const uint8_t salt[SALT_LEN], const struct cry_kdf_params *kdf,
				 const uint8_t wrapped_enc[WRAPPED_KEY_LEN],
				 const uint8_t wrapped_mac[WRAPPED_KEY_LEN],
				 const uint8_t vmac[VERSION_MAC_LEN], char **text_out)
{
	char *salt_b64 = cry_b64_encode(salt, SALT_LEN, false, true);
	char *enc_b64 = cry_b64_encode(wrapped_enc, WRAPPED_KEY_LEN, false, true);
	char *mac_b64 = cry_b64_encode(wrapped_mac, WRAPPED_KEY_LEN, false, true);
	char *vmac_b64 = cry_b64_encode(vmac, VERSION_MAC_LEN, false, true);
	int rc = CRY_ERR_NOMEM;
	if (salt_b64 != NULL && enc_b64 != NULL && mac_b64 != NULL && vmac_b64 != NULL) {
		int n = asprintf(text_out,
				 "{\n"
				 "  \"version\": %d,\n"
				 "  \"scryptSalt\": \"%s\",\n"
				 "  \"scryptCostParam\": %llu,\n"
				 "  \"scryptBlockSize\": %u,\n"
				 "  \"primaryMasterKey\": \"%s\",\n"
				 "  \"hmacMasterKey\": \"%s\",\n"
				 "  \"versionMac\": \"%s\"\n"
				 "}\n",
				 CRY_MASTERKEY_FILE_VERSION, salt_b64, (unsigned long long)kdf->n,
				 kdf->r, enc_b64, mac_b64, vmac_b64);
		rc = n < 0 ? CRY_ERR_NOMEM : CRY_OK;
		if (n < 0)
			*text_out = NULL;
	}
	free(salt_b64);
	free(enc_b64);
	free(mac_b64);
	free(vmac_b64);
	return rc;
}

int cry_masterkey_file_lock(const struct cry_masterkey *mk, const char *password,
			    const struct cry_kdf_params *params, const uint8_t *salt,
			    char **text_out)
{
	static const struct cry_kdf_params defaults = { CRY_KDF_DEFAULT_N, CRY_KDF_DEFAULT_R };
	const struct cry_kdf_params *kdf = params != NULL ? params : &defaults;
	uint8_t fresh_salt[SALT_LEN], wrapped_enc[WRAPPED_KEY_LEN], wrapped_mac[WRAPPED_KEY_LEN];
	uint8_t vmac[VERSION_MAC_LEN];
	*text_out = NULL;
	if (!kdf_params_ok(kdf))
		return CRY_ERR_FORMAT;
	if (salt == NULL) {
		if (RAND_bytes(fresh_salt, SALT_LEN) != 1)
			return CRY_ERR_INTERNAL;
		salt = fresh_salt;
	}
	uint8_t *kek = cry_secure_alloc(CRY_KEY_LEN);
	if (kek == NULL)
		return CRY_ERR_NOMEM;
	int rc = derive_kek(password, salt, SALT_LEN, kdf, kek);
	if (rc == CRY_OK)
		rc = key_wrap(true, kek, mk->enc, wrapped_enc);
	if (rc == CRY_OK)
		rc = key_wrap(true, kek, mk->mac, wrapped_mac);
	cry_secure_free(kek, CRY_KEY_LEN);
	if (rc == CRY_OK)
		rc = version_mac(mk, CRY_MASTERKEY_FILE_VERSION, vmac);
	if (rc == CRY_OK)
		rc = format_masterkey_file(salt, kdf, wrapped_enc, wrapped_mac, vmac, text_out);
	return rc;
}

/* ---- vault.cryptomator (JWT) ---- */

/* The three dot-separated parts of a compact JWT. */
struct jwt {
	const char *part[3];
	size_t len[3];
};

static int jwt_split(const char *text, size_t len, struct jwt *jwt)
{
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--; /* a trailing newline added by an editor */
	const char *end = text + len, *p = text;
	for (int i = 0; i < 3; i++) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		if ((dot == NULL) != (i == 2))
			return CRY_ERR_FORMAT;
		jwt->part[i] = p;
		jwt->len[i] = (size_t)((dot != NULL ? dot : end) - p);
		p += jwt->len[i] + 1;
	}
	return CRY_OK;
}

static struct json_object *jwt_json_part(const struct jwt *jwt, int i)
{
	size_t len;
	uint8_t *bytes = cry_b64_decode(jwt->part[i], jwt->len[i], true, &len);
	if (bytes == NULL)
		return NULL;
	struct json_object *obj = parse_json_object((const char *)bytes, len);
	free(bytes);
	return obj;
}

/* The OpenSSL digest of a JWT HMAC alg, or NULL for any other alg. */
static const char *jwt_hmac_digest(const char *alg)
{
	if (strcmp(alg, "HS256") == 0)
		return "SHA256";
	if (strcmp(alg, "HS384") == 0)
		return "SHA384";
	if (strcmp(alg, "HS512") == 0)
		return "SHA512";
	return NULL;
}

static int jwt_verify(const struct jwt *jwt, const char *digest, const struct cry_masterkey *mk)
{
	/* The signed text is "header.payload" exactly as written in the token. */
	size_t signed_len = jwt->len[0] + 1 + jwt->len[1];
	uint8_t expected[EVP_MAX_MD_SIZE];
	size_t expected_len, sig_len;
	int rc = cry_hmac(digest, (const uint8_t *)mk, sizeof *mk, (const uint8_t *)jwt->part[0],
			  signed_len, expected, &expected_len);
	if (rc != CRY_OK)
		return rc;
	uint8_t *sig = cry_b64_decode(jwt->part[2], jwt->len[2], true, &sig_len);
	if (sig == NULL || sig_len != expected_len ||
	    CRYPTO_memcmp(sig, expected, expected_len) != 0)
		rc = CRY_ERR_SIGNATURE;
	free(sig);
	return rc;
}

int cry_vault_config_kid(const char *jwt_text, size_t len, char *kid_out, size_t kid_size)
{
	struct jwt jwt;
	int rc = jwt_split(jwt_text, len, &jwt);
	if (rc != CRY_OK)
		return rc;
	struct json_object *header = jwt_json_part(&jwt, 0);
	if (header == NULL || !copy_string_field(header, "kid", kid_out, kid_size))
		rc = CRY_ERR_FORMAT;
	json_object_put(header);
	return rc;
}

/* The header's alg and kid (kid may be absent: then ""). */
static int parse_jwt_header(const struct jwt *jwt, struct cry_vault_config *out,
			    const char **digest)
{
	struct json_object *header = jwt_json_part(jwt, 0);
	if (header == NULL)
		return CRY_ERR_FORMAT;
	const char *alg = json_string_field(header, "alg");
	int rc = CRY_OK;
	if (alg == NULL ||
	    (json_string_field(header, "kid") != NULL &&
	     !copy_string_field(header, "kid", out->kid, sizeof out->kid)))
		rc = CRY_ERR_FORMAT;
	else if ((*digest = jwt_hmac_digest(alg)) == NULL)
		rc = CRY_ERR_ALG;
	else
		strcpy(out->alg, alg);
	json_object_put(header);
	return rc;
}


static int parse_jwt_payload(const struct jwt *jwt, struct cry_vault_config *out)
{
	struct json_object *payload = jwt_json_part(jwt, 1);
	if (payload == NULL)
		return CRY_ERR_FORMAT;
	int64_t format = 0, threshold = 0;
	bool ok = json_int_field(payload, "format", &format) && format >= INT_MIN &&
		  format <= INT_MAX && json_int_field(payload, "shorteningThreshold", &threshold) &&
		  threshold >= 1 && threshold <= INT_MAX &&
		  copy_string_field(payload, "cipherCombo", out->cipher_combo,
				    sizeof out->cipher_combo) &&
		  (json_string_field(payload, "jti") == NULL ||
		   copy_string_field(payload, "jti", out->jti, sizeof out->jti));
	out->format = (int)format;
	out->shortening_threshold = (int)threshold;
	json_object_put(payload);
	return ok ? CRY_OK : CRY_ERR_FORMAT;
}

int cry_vault_config_parse(const char *jwt_text, size_t len, const struct cry_masterkey *mk,
			   struct cry_vault_config *out)
{
	struct jwt jwt;
	const char *digest = NULL;
	memset(out, 0, sizeof *out);
	int rc = jwt_split(jwt_text, len, &jwt);
	if (rc == CRY_OK)
		rc = parse_jwt_header(&jwt, out, &digest);
	if (rc == CRY_OK)
		rc = jwt_verify(&jwt, digest, mk);
	if (rc == CRY_OK)
		rc = parse_jwt_payload(&jwt, out);
	return rc;
}

int cry_vault_config_peek(const char *jwt_text, size_t len, struct cry_vault_config *out)
{
	struct jwt jwt;
	const char *digest = NULL;
	memset(out, 0, sizeof *out);
	int rc = jwt_split(jwt_text, len, &jwt);
	if (rc == CRY_OK)
		rc = parse_jwt_header(&jwt, out, &digest);
	if (rc == CRY_OK || rc == CRY_ERR_ALG) /* an unusable alg still says what it claims */
		rc = parse_jwt_payload(&jwt, out);
	return rc;
}

int cry_masterkey_file_params(const char *text, size_t len, struct cry_kdf_params *params)
{
	struct masterkey_file f;
	int rc = parse_masterkey_file(text, len, &f);
	if (rc == CRY_OK)
		*params = f.kdf;
	OPENSSL_cleanse(&f, sizeof f);
	return rc;
}

int cry_vault_config_check(const struct cry_vault_config *cfg)
{
	if (cfg->format != 8)
		return CRY_ERR_VAULT_FORMAT;
	if (strcmp(cfg->cipher_combo, "SIV_GCM") != 0)
		return CRY_ERR_CIPHER_COMBO;
	return CRY_OK;
}

static char *b64url_text(const char *s)
{
	return cry_b64_encode((const uint8_t *)s, strlen(s), true, false);
}

int cry_vault_config_create(const struct cry_masterkey *mk, char **jwt_out)
{
	static const char header[] =
		"{\"kid\":\"masterkeyfile:masterkey.cryptomator\",\"typ\":\"JWT\",\"alg\":\"HS256\"}";
	char uuid[37], payload[160];
	*jwt_out = NULL;
	int rc = cry_uuid_random(uuid);
	if (rc != CRY_OK)
		return rc;
	snprintf(payload, sizeof payload,
		 "{\"format\":8,\"shorteningThreshold\":220,\"jti\":\"%s\",\"cipherCombo\":\"SIV_GCM\"}",
		 uuid);
	char *h64 = b64url_text(header), *p64 = b64url_text(payload);
	char *signed_part = NULL, *s64 = NULL;
	uint8_t sig[EVP_MAX_MD_SIZE];
	size_t sig_len;
	rc = CRY_ERR_NOMEM;
	if (h64 != NULL && p64 != NULL && asprintf(&signed_part, "%s.%s", h64, p64) >= 0) {
		rc = cry_hmac("SHA256", (const uint8_t *)mk, sizeof *mk, (const uint8_t *)signed_part,
			      strlen(signed_part), sig, &sig_len);
		if (rc == CRY_OK && ((s64 = cry_b64_encode(sig, sig_len, true, false)) == NULL ||
				     asprintf(jwt_out, "%s.%s", signed_part, s64) < 0)) {
			*jwt_out = NULL;
			rc = CRY_ERR_NOMEM;
		}
	}
	free(signed_part);
	free(s64);
	free(h64);
	free(p64);
	return rc;
}

int cry_uuid_random(char out[37])
{
	uint8_t b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		return CRY_ERR_INTERNAL;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
	return CRY_OK;
}
