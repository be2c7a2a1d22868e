/* base64 through OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, which only know
 * the standard, padded form: the URL alphabet and the optional padding are
 * translated here. Base32 is small enough to write out. */
#include "crypto/cry_encode.h"
#include "crypto/cry_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

void cry_b64_encode_into(const uint8_t *in, size_t len, bool url, bool pad, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	for (int i = 0; i < n; i++) {
		if (url && out[i] == '+')
			out[i] = '-';
		else if (url && out[i] == '/')
			out[i] = '_';
		else if (!pad && out[i] == '=')
			out[i] = '\0';
	}
}

char *cry_b64_encode(const uint8_t *in, size_t len, bool url, bool pad)
{
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	char *out = malloc(CRY_B64_LEN(len) + 1);
	if (out != NULL)
		cry_b64_encode_into(in, len, url, pad, out);
	return out;
}

/* The 6-bit value of c in the chosen alphabet, or -1. */
static int b64_value(char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Checks the alphabet, the padding and that unused trailing bits are zero
 * (so each byte string has exactly one accepted encoding, padding aside).
 * Returns the number of data characters, or -1. */
static long b64_data_length(const char *in, size_t inlen, bool url)
{
	size_t pad = 0;
	while (pad < 2 && pad < inlen && in[inlen - 1 - pad] == '=')
		pad++;
	size_t data = inlen - pad;
	if ((pad > 0 && inlen % 4 != 0) || data % 4 == 1 || data > LONG_MAX)
		return -1;
	for (size_t i = 0; i < data; i++)
		if (b64_value(in[i], url) < 0)
			return -1;
	if (data % 4 == 2 && (b64_value(in[data - 1], url) & 0x0f) != 0)
		return -1;
	if (data % 4 == 3 && (b64_value(in[data - 1], url) & 0x03) != 0)
		return -1;
	return (long)data;
}

uint8_t *cry_b64_decode(const char *in, size_t inlen, bool url, size_t *outlen)
{
	long data = b64_data_length(in, inlen, url);
	if (data < 0 || (size_t)data > (size_t)INT_MAX - 4)
		return NULL;
	size_t padded = ((size_t)data + 3) / 4 * 4;
	char *std = malloc(padded + 1);
	uint8_t *out = malloc(padded / 4 * 3 + 1);
	if (std == NULL || out == NULL) {
		free(std);
		free(out);
		return NULL;
	}
	for (long i = 0; i < data; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(std + data, '=', padded - (size_t)data);
	/* Decodes the '=' as zero bytes too; they are not counted in *outlen. */
	int n = EVP_DecodeBlock(out, (const unsigned char *)std, (int)padded);
	free(std);
	if (n < 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)data * 3 / 4;
	return out;
}

void cry_base32_encode(const uint8_t *in, size_t len, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t bits = 0;
	int nbits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		bits = (bits << 8) | in[i];
		nbits += 8;
		while (nbits >= 5) {
			nbits -= 5;
			out[o++] = alphabet[(bits >> nbits) & 0x1f];
		}
	}
	if (nbits > 0)
		out[o++] = alphabet[(bits << (5 - nbits)) & 0x1f];
	while (o % 8 != 0)
		out[o++] = '=';
	out[o] = '\0';
}
