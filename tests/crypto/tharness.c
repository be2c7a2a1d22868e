/* Harness and main of the crypto unit tests: `test_crypto DATA_DIR [SUITE]`. */
#include "tharness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"

static int passed, failed;
static const char *data_dir;
static struct json_object *vectors;

bool t_check(bool ok, const char *what, const char *file, int line)
{
	if (ok)
		passed++;
	else {
		failed++;
		fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
	}
	return ok;
}

bool t_check_rc(int rc, int want, const char *what, const char *file, int line)
{
	if (rc != want)
		fprintf(stderr, "     got %d (%s), want %d (%s)\n", rc, cry_strerror(rc), want,
			cry_strerror(want));
	return t_check(rc == want, what, file, line);
}

bool t_check_hex(const uint8_t *p, size_t len, const char *hex, const char *what,
		 const char *file, int line)
{
	size_t want_len;
	uint8_t *want = t_hex(hex, &want_len);
	bool ok = p != NULL && len == want_len && memcmp(p, want, len) == 0;
	if (!ok && p != NULL) {
		fprintf(stderr, "     got  ");
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, "%02x", p[i]);
		fprintf(stderr, "\n     want %s\n", hex);
	}
	free(want);
	return t_check(ok, what, file, line);
}

bool t_check_str(const char *s, const char *want, const char *what, const char *file, int line)
{
	bool ok = s != NULL && strcmp(s, want) == 0;
	if (!ok)
		fprintf(stderr, "     got  \"%s\"\n     want \"%s\"\n", s ? s : "(null)", want);
	return t_check(ok, what, file, line);
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "test setup error: %s %s\n", what, arg);
	exit(2);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint8_t *t_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	uint8_t *out = malloc(n / 2 + 1);
	if (out == NULL || n % 2 != 0)
		die("bad hex", hex);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			die("bad hex", hex);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

void t_hex_into(const char *hex, uint8_t *out, size_t n)
{
	size_t len;
	uint8_t *bytes = t_hex(hex, &len);
	if (len != n)
		die("hex of unexpected length", hex);
	memcpy(out, bytes, n);
	free(bytes);
}

uint8_t *t_b64(const char *b64, size_t *len)
{
	uint8_t *out = cry_b64_decode(b64, strlen(b64), false, len);
	if (out == NULL)
		die("bad base64", b64);
	return out;
}

char *t_read_data(const char *rel_path, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", data_dir, rel_path);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		die("cannot open", path);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t got;
	while (buf != NULL && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (n + 1 == cap && (buf = realloc(buf, cap *= 2)) == NULL)
			break;
	}
	fclose(f);
	if (buf == NULL)
		die("out of memory reading", path);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

struct json_object *t_vectors(void)
{
	if (vectors == NULL) {
		char *text = t_read_data("known_answer_vectors.json", NULL);
		vectors = json_tokener_parse(text);
		free(text);
		if (vectors == NULL)
			die("cannot parse", "known_answer_vectors.json");
	}
	return vectors;
}

const char *t_json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		die("missing JSON string", key);
	return json_object_get_string(v);
}

static const struct {
	const char *name;
	void (*run)(void);
} suites[] = {
	{ "encode", test_encode }, { "siv", test_siv },		{ "keys", test_keys },
	{ "names", test_names },   { "content", test_content }, { "vault", test_vault },
};

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s DATA_DIR [SUITE]\n", argv[0]);
		return 2;
	}
	data_dir = argv[1];
	const char *only = argc == 3 ? argv[2] : NULL;
	bool found = false;
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		if (only != NULL && strcmp(only, suites[i].name) != 0)
			continue;
		found = true;
		suites[i].run();
	}
	if (!found)
		die("no such suite", only);
	json_object_put(vectors);
	printf("crypto%s%s: %d passed, %d failed\n", only ? "-" : "", only ? only : "", passed,
	       failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
