/* base64 (both alphabets, padding optional on input) and base32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tharness.h"
#include "crypto/cry_encode.h"

/* RFC 4648 section 10 test vectors. */
static const struct {
	const char *plain, *b64, *b32;
} rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "MY======" },
	{ "fo", "Zm8=", "MZXQ====" },
	{ "foo", "Zm9v", "MZXW6===" },
	{ "foob", "Zm9vYg==", "MZXW6YQ=" },
	{ "fooba", "Zm9vYmE=", "MZXW6YTB" },
	{ "foobar", "Zm9vYmFy", "MZXW6YTBOI======" },
};

static bool decodes_to(const char *text, bool url, const uint8_t *want, size_t want_len)
{
	size_t len;
	uint8_t *out = cry_b64_decode(text, strlen(text), url, &len);
	bool ok = out != NULL && len == want_len && memcmp(out, want, len) == 0;
	free(out);
	return ok;
}

static bool rejected(const char *text, bool url)
{
	size_t len;
	uint8_t *out = cry_b64_decode(text, strlen(text), url, &len);
	free(out);
	return out == NULL;
}

static void test_rfc4648(void)
{
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		const uint8_t *p = (const uint8_t *)rfc4648[i].plain;
		size_t n = strlen(rfc4648[i].plain);
		char *padded = cry_b64_encode(p, n, false, true);
		char *bare = cry_b64_encode(p, n, true, false);
		char b32[32];
		CHECK_STR(padded, rfc4648[i].b64);
		CHECK(bare != NULL && strncmp(bare, rfc4648[i].b64, strlen(bare)) == 0 &&
		      strchr(bare, '=') == NULL);
		CHECK(decodes_to(rfc4648[i].b64, false, p, n));
		CHECK(decodes_to(bare, true, p, n));
		cry_base32_encode(p, n, b32);
		CHECK_STR(b32, rfc4648[i].b32);
		free(padded);
		free(bare);
	}
}

static void test_alphabets(void)
{
	static const uint8_t bytes[] = { 0xfb, 0xff, 0xbf };
	char *std = cry_b64_encode(bytes, 3, false, true);
	char *url = cry_b64_encode(bytes, 3, true, true);
	CHECK_STR(std, "+/+/");
	CHECK_STR(url, "-_-_");
	CHECK(decodes_to("-_-_", true, bytes, 3));
	CHECK(rejected("-_-_", false));
	CHECK(rejected("+/+/", true));
	CHECK(decodes_to("-_8", true, bytes, 2));
	CHECK(decodes_to("-_8=", true, bytes, 2));
	free(std);
	free(url);
}

static void test_rejects(void)
{
	static const char *bad[] = {
		"Z",     /* one character cannot encode a byte */
		"Zg=",   /* padding must complete a group of 4 */
		"Zg===", "====", "=", "Zm=9", "Zm9v=",
		"Zh==",  /* unused bits set: a second spelling of "f" */
		"Zm9=",  /* likewise for "fo" */
		"Zm9v\n", " Zm9v", "Zm 9v", "Zm9v*",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (!CHECK(rejected(bad[i], false)))
			fprintf(stderr, "     accepted \"%s\"\n", bad[i]);
	}
	/* SHA-1 sized input, the case of shortened names, has no padding in base32. */
	uint8_t twenty[20] = { 0 };
	char b32[33];
	cry_base32_encode(twenty, 20, b32);
	CHECK_STR(b32, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
}

void test_encode(void)
{
	test_rfc4648();
	test_alphabets();
	test_rejects();
}
