/* Error codes of the crypto layer. Every function of crypto/ that can fail
 * returns 0 on success or one of these (negative) values. */
#ifndef CRY_ERR_H
#define CRY_ERR_H

enum cry_err {
	CRY_OK = 0,
	CRY_ERR_NOMEM = -1,        /* allocation or mlock failed */
	CRY_ERR_FORMAT = -2,       /* input is not well-formed (JSON, base64, lengths) */
	CRY_ERR_AUTH = -3,         /* authentication failed: tampered or wrong key */
	CRY_ERR_PASSWORD = -4,     /* key unwrap failed: wrong password */
	CRY_ERR_VERSION_MAC = -5,  /* masterkey file versionMac does not match */
	CRY_ERR_SIGNATURE = -6,    /* vault config JWT signature does not verify */
	CRY_ERR_ALG = -7,          /* JWT alg other than HS256/HS384/HS512 */
	CRY_ERR_VAULT_FORMAT = -8, /* vault format other than 8 */
	CRY_ERR_CIPHER_COMBO = -9, /* cipher combo other than SIV_GCM */
	CRY_ERR_INTERNAL = -10,    /* OpenSSL failed unexpectedly */
};

/* A short English sentence for an error code, never NULL. */
const char *cry_strerror(int err);

#endif
