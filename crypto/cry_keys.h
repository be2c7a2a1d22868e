/* Vault keys: the 64-byte masterkey, the masterkey file that wraps it under a
 * password (masterkey.cryptomator), and the signed vault config
 * (vault.cryptomator, a JWT). FORMAT.md sections 1-3. No I/O: text in, text out. */
#ifndef CRY_KEYS_H
#define CRY_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define CRY_KEY_LEN 32

/* Lives in cry_secure_alloc memory; create and free only with these functions. */
struct cry_masterkey {
	uint8_t enc[CRY_KEY_LEN]; /* AES-GCM headers; CTR half of AES-SIV */
	uint8_t mac[CRY_KEY_LEN]; /* CMAC half of AES-SIV; versionMac */
};

/* A fresh random masterkey (RAND_bytes); NULL when out of memory. */
struct cry_masterkey *cry_masterkey_new_random(void);
/* A masterkey from given bytes (tests); NULL when out of memory. */
struct cry_masterkey *cry_masterkey_from_bytes(const uint8_t enc[CRY_KEY_LEN],
					       const uint8_t mac[CRY_KEY_LEN]);
void cry_masterkey_free(struct cry_masterkey *mk);

/* scrypt parameters of a masterkey file. */
struct cry_kdf_params {
	uint64_t n; /* scryptCostParam, a power of two > 1 */
	uint32_t r; /* scryptBlockSize */
};
#define CRY_KDF_DEFAULT_N 32768
#define CRY_KDF_DEFAULT_R 8
#define CRY_MASTERKEY_FILE_VERSION 999

/* Parse masterkey.cryptomator text and unwrap its keys with password (UTF-8;
 * NFC-normalised here). On success *out is a new masterkey and, if params is
 * not NULL, the file's scrypt parameters are stored there.
 * Errors: CRY_ERR_FORMAT (not a masterkey file), CRY_ERR_PASSWORD (unwrap
 * failed), CRY_ERR_VERSION_MAC (versionMac present and wrong), CRY_ERR_NOMEM. */
int cry_masterkey_file_unlock(const char *text, size_t len, const char *password,
			      struct cry_masterkey **out, struct cry_kdf_params *params);

/* Wrap mk under password into masterkey.cryptomator text (version 999, fields
 * in format order, 2-space pretty printed, trailing newline). salt is 8 bytes,
 * or NULL for fresh random bytes. params NULL means the defaults. *text_out is
 * malloc'd. Both lock and unlock refuse (CRY_ERR_FORMAT) scrypt costs outside
 * N = 2..2^24 (a power of two), r = 1..32, 128 * N * r <= 1 GiB. */
int cry_masterkey_file_lock(const struct cry_masterkey *mk, const char *password,
			    const struct cry_kdf_params *params, const uint8_t *salt,
			    char **text_out);

/* The vault config carried by vault.cryptomator. */
struct cry_vault_config {
	char kid[256];           /* JWT header "kid", e.g. masterkeyfile:masterkey.cryptomator */
	char alg[8];             /* HS256, HS384 or HS512 */
	int format;              /* 8 */
	int shortening_threshold;/* 220 */
	char jti[64];
	char cipher_combo[32];   /* SIV_GCM */
};

/* Read the JWT header's "kid" without verifying anything: it names the key
 * (the masterkey file) needed to verify the rest. kid_out gets a NUL-terminated
 * string of at most kid_size - 1 bytes. CRY_ERR_FORMAT if it is not a JWT. */
int cry_vault_config_kid(const char *jwt, size_t len, char *kid_out, size_t kid_size);

/* Verify the JWT's signature with key enc || mac and parse it into *out.
 * Accepts HS256/HS384/HS512, '=' padding in the parts and trailing white
 * space; kid and jti may be absent (then ""). Rejects other algs
 * (CRY_ERR_ALG, "none" above all) and bad signatures (CRY_ERR_SIGNATURE).
 * Does not judge format or cipher combo: see cry_vault_config_check. */
int cry_vault_config_parse(const char *jwt, size_t len, const struct cry_masterkey *mk,
			   struct cry_vault_config *out);

/* CRY_OK if this program can use the vault, else CRY_ERR_VAULT_FORMAT or
 * CRY_ERR_CIPHER_COMBO. */
int cry_vault_config_check(const struct cry_vault_config *cfg);

/* Parse the JWT's header and payload into *out WITHOUT verifying the
 * signature: for showing what a vault claims to be (umbrafs info) before any
 * password is given. Never base a security decision on it. */
int cry_vault_config_peek(const char *jwt, size_t len, struct cry_vault_config *out);

/* The scrypt parameters of masterkey.cryptomator text, without unwrapping. */
int cry_masterkey_file_params(const char *text, size_t len, struct cry_kdf_params *params);

/* A new vault config JWT: HS256, format 8, shorteningThreshold 220, random
 * lowercase UUIDv4 jti, SIV_GCM, kid masterkeyfile:masterkey.cryptomator.
 * *jwt_out is malloc'd, no trailing newline. */
int cry_vault_config_create(const struct cry_masterkey *mk, char **jwt_out);

/* A random lowercase UUIDv4 (36 characters + NUL), used for dirIds too. */
int cry_uuid_random(char out[37]);

#endif
