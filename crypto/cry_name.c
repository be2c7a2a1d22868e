/* Encrypted node names (AES-SIV, AD = the parent's dirId), directory-id
 * hashes and shortened names. */
#include "crypto/cry_name.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <openssl/evp.h>

#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_internal.h"
#include "crypto/cry_mem.h"
#include "crypto/cry_siv.h"

#define SIV_KEY_LEN (2 * CRY_KEY_LEN)
#define SHA1_LEN 20

static const char c9r_suffix[] = ".c9r";
static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=";

struct cry_names {
	uint8_t siv_key[SIV_KEY_LEN]; /* macKey || encKey, the RFC 5297 order */
};

struct cry_names *cry_names_new(const struct cry_masterkey *mk)
{
	struct cry_names *nm = cry_secure_alloc(sizeof *nm);
	if (nm != NULL) {
		memcpy(nm->siv_key, mk->mac, CRY_KEY_LEN);
		memcpy(nm->siv_key + CRY_KEY_LEN, mk->enc, CRY_KEY_LEN);
	}
	return nm;
}

void cry_names_free(struct cry_names *nm)
{
	cry_secure_free(nm, sizeof *nm);
}

int cry_name_encrypt(const struct cry_names *nm, const char *dir_id, const char *name,
		     char **out)
{
	return cry_name_encrypt_form(nm, dir_id, name, CRY_NAME_NFC, out);
}

int cry_name_encrypt_form(const struct cry_names *nm, const char *dir_id, const char *name,
			  enum cry_name_form form, char **out)
{
	char *normalized;
	size_t len;
	*out = NULL;
	int rc = (form == CRY_NAME_NFD ? cry_nfd : cry_nfc)(name, strlen(name), &normalized, &len);
	if (rc != CRY_OK)
		return rc;
	struct cry_siv_ad ad = { (const uint8_t *)dir_id, strlen(dir_id) };
	uint8_t *ct = malloc(CRY_SIV_TAG_LEN + len);
	char *b64 = NULL;
	rc = ct == NULL ? CRY_ERR_NOMEM
			: cry_siv_encrypt(nm->siv_key, SIV_KEY_LEN, &ad, 1, (const uint8_t *)normalized, len, ct);
	if (rc == CRY_OK && (b64 = cry_b64_encode(ct, CRY_SIV_TAG_LEN + len, true, true)) == NULL)
		rc = CRY_ERR_NOMEM;
	if (rc == CRY_OK) {
		size_t b64_len = strlen(b64);
		*out = malloc(b64_len + sizeof c9r_suffix);
		if (*out == NULL)
			rc = CRY_ERR_NOMEM;
		else
			memcpy(mempcpy(*out, b64, b64_len), c9r_suffix, sizeof c9r_suffix);
	}
	free(b64);
	free(ct);
	free(normalized);
	return rc;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* A decrypted name may come from a tampered or foreign vault: it must be one
 * valid path component, never "", ".", "..", or anything with '/' or NUL. */
static bool is_safe_name(const uint8_t *name, size_t len)
{
	if (len == 0 || memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL ||
	    (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	for (size_t i = 0; i < len;) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t n = utf8proc_iterate(name + i, (utf8proc_ssize_t)(len - i), &cp);
		if (n <= 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

int cry_name_decrypt(const struct cry_names *nm, const char *dir_id, const char *c9r,
		     char **out)
{
	*out = NULL;
	if (!ends_with(c9r, strlen(c9r), c9r_suffix))
		return CRY_ERR_FORMAT;
	/* The leading base64url run: drops ".c9r" and any " (1)" a sync tool added. */
	size_t run = strspn(c9r, b64url_chars), ct_len;
	uint8_t *ct = cry_b64_decode(c9r, run, true, &ct_len);
	if (ct == NULL || ct_len < CRY_SIV_TAG_LEN) {
		free(ct);
		return CRY_ERR_FORMAT;
	}
	size_t len = ct_len - CRY_SIV_TAG_LEN;
	struct cry_siv_ad ad = { (const uint8_t *)dir_id, strlen(dir_id) };
	uint8_t *name = malloc(len + 1);
	int rc = name == NULL ? CRY_ERR_NOMEM
			      : cry_siv_decrypt(nm->siv_key, SIV_KEY_LEN, &ad, 1, ct, ct_len, name);
	free(ct);
	if (rc == CRY_OK && !is_safe_name(name, len))
		rc = CRY_ERR_FORMAT;
	if (rc != CRY_OK) {
		free(name);
		return rc;
	}
	name[len] = '\0';
	*out = (char *)name;
	return CRY_OK;
}

static int sha1(const void *data, size_t len, uint8_t md[SHA1_LEN])
{
	return EVP_Digest(data, len, md, NULL, EVP_sha1(), NULL) ? CRY_OK : CRY_ERR_INTERNAL;
}

int cry_dir_hash(const struct cry_names *nm, const char *dir_id,
		 char out[CRY_DIR_HASH_LEN + 1])
{
	size_t len = strlen(dir_id);
	uint8_t md[SHA1_LEN];
	uint8_t *ct = malloc(CRY_SIV_TAG_LEN + len);
	if (ct == NULL)
		return CRY_ERR_NOMEM;
	int rc = cry_siv_encrypt(nm->siv_key, SIV_KEY_LEN, NULL, 0, (const uint8_t *)dir_id, len, ct);
	if (rc == CRY_OK)
		rc = sha1(ct, CRY_SIV_TAG_LEN + len, md);
	if (rc == CRY_OK)
		cry_base32_encode(md, SHA1_LEN, out);
	free(ct);
	return rc;
}

void cry_name_shorten(const char *c9r, char out[CRY_SHORT_NAME_LEN + 1])
{
	_Static_assert(CRY_B64_LEN(SHA1_LEN) + sizeof ".c9s" == CRY_SHORT_NAME_LEN + 1,
		       "shortened name length");
	uint8_t md[SHA1_LEN];
	if (sha1(c9r, strlen(c9r), md) != CRY_OK) {
		out[0] = '\0'; /* cannot happen short of a broken OpenSSL */
		return;
	}
	cry_b64_encode_into(md, SHA1_LEN, true, true, out);
	memcpy(out + CRY_B64_LEN(SHA1_LEN), ".c9s", sizeof ".c9s");
}
