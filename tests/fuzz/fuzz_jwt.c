/* libFuzzer target: vault.cryptomator, the signed vault config JWT
 * (cry_vault_config_kid, _peek, _parse, _check) under the fixed key
 * enc = mac = 0x55 x 32 (the key of the vault_config_jwt known-answer vectors).
 *
 * Input: a mode byte, then
 * - even mode: the token text. peek and parse must agree on everything a
 *   verified token says; kid must agree with both.
 * - odd mode (structure-aware, to get past the HMAC): [1 alg: 0 HS256,
 *   1 HS384, 2 HS512][header JSON up to a NUL][payload JSON up to a NUL] are
 *   base64url-encoded and signed with the key and the chosen HMAC, then the
 *   token is damaged by the remaining bytes (fuzz_damage). An undamaged token
 *   whose header names the alg it was signed with must verify. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "tests/fuzz/fuzz_common.h"

static const struct {
	const char *name;
	const EVP_MD *(*md)(void);
} algs[] = { { "HS256", EVP_sha256 }, { "HS384", EVP_sha384 }, { "HS512", EVP_sha512 } };

static struct cry_masterkey *key(void)
{
	static struct cry_masterkey *mk;
	if (mk == NULL)
		mk = fuzz_masterkey(0x55, 0x55);
	return mk;
}

/* Read the token every way there is; returns cry_vault_config_parse's code. */
static int read_token(const char *jwt, size_t len, struct cry_vault_config *parsed)
{
	struct cry_vault_config peeked;
	char kid[sizeof parsed->kid];
	int rc_kid = cry_vault_config_kid(jwt, len, kid, sizeof kid);
	int rc_peek = cry_vault_config_peek(jwt, len, &peeked);
	int rc = cry_vault_config_parse(jwt, len, key(), parsed);
	if (rc == CRY_OK) {
		cry_vault_config_check(parsed);
		if (rc_peek != CRY_OK || memcmp(&peeked, parsed, sizeof peeked) != 0)
			fuzz_fail("cry_vault_config_peek and _parse read a verified token differently");
		if (*parsed->kid && (rc_kid != CRY_OK || strcmp(kid, parsed->kid) != 0))
			fuzz_fail("cry_vault_config_kid and _parse disagree on the kid");
	}
	return rc;
}

static void fuzz_raw(struct fuzz_input *in)
{
	struct cry_vault_config cfg;
	read_token((const char *)in->p, in->n, &cfg);
}

/* header.payload.signature of the two JSON texts, signed with algs[alg]. */
static char *sign_token(const char *header, const char *payload, unsigned alg)
{
	char *h = cry_b64_encode((const uint8_t *)header, strlen(header), true, false);
	char *p = cry_b64_encode((const uint8_t *)payload, strlen(payload), true, false);
	size_t signed_len = strlen(h) + 1 + strlen(p);
	char *token = malloc(signed_len + 1 + EVP_MAX_MD_SIZE * 2);
	if (h == NULL || p == NULL || token == NULL)
		fuzz_fail("out of memory");
	strcpy(token, h);
	strcat(token, ".");
	strcat(token, p);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_len;
	if (HMAC(algs[alg].md(), key(), sizeof(struct cry_masterkey), (const uint8_t *)token,
		 signed_len, mac, &mac_len) == NULL)
		fuzz_fail("HMAC failed");
	char *sig = cry_b64_encode(mac, mac_len, true, false);
	if (sig == NULL)
		fuzz_fail("out of memory");
	strcat(token, ".");
	strcat(token, sig);
	free(sig);
	free(h);
	free(p);
	return token;
}

static void fuzz_structured(struct fuzz_input *in)
{
	unsigned alg = fuzz_byte(in) % (sizeof algs / sizeof algs[0]);
	char *header = fuzz_field(in, '\0');
	char *payload = fuzz_field(in, '\0');
	char *token = sign_token(header, payload, alg);
	size_t len = strlen(token);
	struct fuzz_damage d = fuzz_damage(in, (uint8_t *)token, &len);

	struct cry_vault_config peeked, parsed;
	int rc = read_token(token, len, &parsed);
	bool alg_as_signed = cry_vault_config_peek(token, len, &peeked) == CRY_OK &&
			     strcmp(peeked.alg, algs[alg].name) == 0;
	if (!d.changed && !d.truncated && alg_as_signed && rc != CRY_OK)
		fuzz_fail("a token signed with the key did not verify");
	free(token);
	free(header);
	free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_two_modes(data, size, fuzz_structured, fuzz_raw);
}
