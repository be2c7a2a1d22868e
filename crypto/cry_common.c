/* Helpers shared by the files of crypto/ (see cry_internal.h). */
#include "crypto/cry_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <utf8proc.h>
#include <openssl/core_names.h>

#include "crypto/cry_err.h"

static int normalize(const char *s, size_t len, utf8proc_option_t form, char **out,
		     size_t *out_len)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
					  UTF8PROC_STABLE | form);
	if (n < 0)
		return n == UTF8PROC_ERROR_NOMEM ? CRY_ERR_NOMEM : CRY_ERR_FORMAT;
	*out = (char *)dst;
	*out_len = (size_t)n;
	return CRY_OK;
}

int cry_nfc(const char *s, size_t len, char **out, size_t *out_len)
{
	return normalize(s, len, UTF8PROC_COMPOSE, out, out_len);
}

int cry_nfd(const char *s, size_t len, char **out, size_t *out_len)
{
	return normalize(s, len, UTF8PROC_DECOMPOSE, out, out_len);
}

static EVP_CIPHER *aes256_gcm;
static EVP_MAC *cmac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Kept for the life of the process; NULL results make every caller fail
 * with CRY_ERR_INTERNAL. */
static void fetch_algorithms(void)
{
	aes256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
}

const EVP_CIPHER *cry_aes256_gcm(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return aes256_gcm;
}

EVP_MAC *cry_cmac(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return cmac;
}

int cry_hmac(const char *digest, const uint8_t *key, size_t key_len,
	     const uint8_t *msg, size_t msg_len, uint8_t *out, size_t *out_len)
{
	if (!EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, key_len, msg, msg_len,
		       out, EVP_MAX_MD_SIZE, out_len))
		return CRY_ERR_INTERNAL;
	return CRY_OK;
}
