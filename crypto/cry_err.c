/* Messages for the crypto layer's error codes. */
#include "crypto/cry_err.h"

const char *cry_strerror(int err)
{
	switch (err) {
	case CRY_OK:
		return "success";
	case CRY_ERR_NOMEM:
		return "out of memory";
	case CRY_ERR_FORMAT:
		return "malformed input";
	case CRY_ERR_AUTH:
		return "authentication failed: data was tampered with or the key is wrong";
	case CRY_ERR_PASSWORD:
		return "wrong password";
	case CRY_ERR_VERSION_MAC:
		return "masterkey file version MAC does not match: the file was tampered with";
	case CRY_ERR_SIGNATURE:
		return "vault config signature does not verify";
	case CRY_ERR_ALG:
		return "vault config uses an unsupported signature algorithm (only HS256, HS384, HS512)";
	case CRY_ERR_VAULT_FORMAT:
		return "unsupported vault format (only format 8)";
	case CRY_ERR_CIPHER_COMBO:
		return "unsupported cipher combo (only SIV_GCM; SIV_CTRMAC vaults are not supported)";
	case CRY_ERR_INTERNAL:
		return "internal cryptographic library error";
	default:
		return "unknown crypto error";
	}
}
