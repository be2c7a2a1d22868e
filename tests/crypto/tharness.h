/* A minimal test harness for the crypto unit tests: every CHECK counts as one
 * passed or failed assertion; failures print where and what. */
#ifndef THARNESS_H
#define THARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define CHECK(cond) t_check((cond), #cond, __FILE__, __LINE__)
/* expr must return want (a cry_err code). */
#define CHECK_RC(expr, want) t_check_rc((expr), (want), #expr, __FILE__, __LINE__)
/* len bytes at p must equal the bytes of hex. */
#define CHECK_HEX(p, len, hex) t_check_hex((p), (len), (hex), #p, __FILE__, __LINE__)
#define CHECK_STR(s, want) t_check_str((s), (want), #s, __FILE__, __LINE__)

bool t_check(bool ok, const char *what, const char *file, int line);
bool t_check_rc(int rc, int want, const char *what, const char *file, int line);
bool t_check_hex(const uint8_t *p, size_t len, const char *hex, const char *what,
		 const char *file, int line);
bool t_check_str(const char *s, const char *want, const char *what, const char *file, int line);

/* Bytes of a hex string (malloc'd, length in *len); aborts on bad hex. */
uint8_t *t_hex(const char *hex, size_t *len);
/* Bytes of a standard base64 string (malloc'd); aborts on bad input. */
uint8_t *t_b64(const char *b64, size_t *len);
/* Exactly n bytes of hex into out; aborts otherwise. */
void t_hex_into(const char *hex, uint8_t *out, size_t n);

/* A file below the test data directory (argv[1]), malloc'd and NUL-terminated;
 * aborts if it cannot be read. */
char *t_read_data(const char *rel_path, size_t *len);
/* known_answer_vectors.json, parsed once; freed at exit. */
struct json_object *t_vectors(void);
/* A string member of a JSON object (path of keys); aborts if missing. */
const char *t_json_str(struct json_object *obj, const char *key);

/* The suites, one per file. */
void test_encode(void);
void test_siv(void);
void test_keys(void);
void test_names(void);
void test_content(void);
void test_vault(void);

#endif
