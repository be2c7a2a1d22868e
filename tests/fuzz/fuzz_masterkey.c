/* libFuzzer target: masterkey.cryptomator (cry_masterkey_file_params,
 * cry_masterkey_file_unlock).
 *
 * Input: a mode byte, then
 * - even mode: masterkey file text, read with cry_masterkey_file_params and
 *   unlocked with the password "asd" (that of the masterkey_file
 *   known-answer vector). Files whose scrypt cost is above MAX_COST are only
 *   parsed: the parser allows up to 1 GiB, which would make the run crawl.
 * - odd mode (structure-aware, to get past the key wrap and versionMac): a
 *   file is locked from [1 log2 N][1 r][8 salt][password up to a NUL byte]
 *   with the fixed masterkey enc = 0x11 x 32, mac = 0x22 x 32, damaged by the
 *   remaining bytes (fuzz_damage) and unlocked with that password. Undamaged
 *   it must give back the key and the parameters. */
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "tests/fuzz/fuzz_common.h"

/* scrypt needs 128 * N * r bytes and time to match: keep each run fast. */
#define MAX_COST (UINT64_C(256) << 10)

static bool cheap(const struct cry_kdf_params *p)
{
	return 128 * p->n * p->r <= MAX_COST;
}

/* Parse, then unlock unless the file asks for an expensive scrypt; returns
 * the unlock's code (CRY_ERR_FORMAT if skipped) and its key in *mk. */
static int unlock(const char *text, size_t len, const char *password, struct cry_masterkey **mk,
		  struct cry_kdf_params *params)
{
	struct cry_kdf_params parsed;
	int rc = cry_masterkey_file_params(text, len, &parsed);
	*mk = NULL;
	if (rc == CRY_OK && !cheap(&parsed))
		return CRY_ERR_FORMAT;
	/* The same parser runs first in unlock, so a file params refuses fails
	 * there before any scrypt: unlocking it is cheap too. */
	int unlocked = cry_masterkey_file_unlock(text, len, password, mk, params);
	if (unlocked == CRY_OK && (rc != CRY_OK || params->n != parsed.n || params->r != parsed.r))
		fuzz_fail("cry_masterkey_file_params and _unlock disagree");
	if ((unlocked == CRY_OK) != (*mk != NULL))
		fuzz_fail("cry_masterkey_file_unlock: result and key disagree");
	return unlocked;
}

static void fuzz_raw(struct fuzz_input *in)
{
	struct cry_masterkey *mk;
	struct cry_kdf_params params;
	unlock((const char *)in->p, in->n, "asd", &mk, &params);
	cry_masterkey_free(mk);
}

static void fuzz_structured(struct fuzz_input *in)
{
	struct cry_kdf_params params = { UINT64_C(1) << (1 + fuzz_byte(in) % 10), 1 + fuzz_byte(in) % 8 };
	uint8_t salt[8] = {0};
	size_t got;
	memcpy(salt, fuzz_take(in, sizeof salt, &got), got);
	char *password = fuzz_field(in, '\0');
	if (!cheap(&params))
		params.r = 1;

	static struct cry_masterkey *key;
	if (key == NULL)
		key = fuzz_masterkey(0x11, 0x22);
	char *text;
	if (cry_masterkey_file_lock(key, password, &params, salt, &text) != CRY_OK)
		fuzz_fail("cry_masterkey_file_lock failed");
	size_t len = strlen(text);
	struct fuzz_damage d = fuzz_damage(in, (uint8_t *)text, &len);

	struct cry_masterkey *mk;
	struct cry_kdf_params got_params;
	int rc = unlock(text, len, password, &mk, &got_params);
	if (!d.changed && !d.truncated &&
	    (rc != CRY_OK || memcmp(mk, key, sizeof *key) != 0 || got_params.n != params.n ||
	     got_params.r != params.r))
		fuzz_fail("a locked masterkey file did not unlock to its key");
	/* Damage may be harmless (white space, say), but never yields another key:
	 * a changed salt or cost gives a wrong KEK, which the key wrap detects. */
	if (rc == CRY_OK && memcmp(mk, key, sizeof *key) != 0)
		fuzz_fail("a damaged masterkey file unlocked to another key");
	cry_masterkey_free(mk);
	free(text);
	free(password);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_two_modes(data, size, fuzz_structured, fuzz_raw);
}
