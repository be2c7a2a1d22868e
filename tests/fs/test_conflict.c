/* Unit tests of conflict-copy naming (fs/conflict.c) on a local vault. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/store.h"
#include "crypto/cry_keys.h"
#include "fs/conflict.h"
#include "fs/vault.h"

static int passed, failed;

#define CHECK(cond) check((cond), #cond, __LINE__)
static void check(int ok, const char *what, int line)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "FAIL line %d: %s\n", line, what);
}

/* 2026-11-21 15:30 local time */
static time_t sample_time(void)
{
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 21, .tm_hour = 15, .tm_min = 30,
			 .tm_isdst = -1 };

	return mktime(&tm);
}

static void check_name(const char *name, unsigned n, const char *want)
{
	char *got = conflict_name(name, sample_time(), n);

	CHECK(got && strcmp(got, want) == 0);
	if (got && strcmp(got, want) != 0)
		fprintf(stderr, "  got '%s', want '%s'\n", got, want);
	free(got);
}

static void test_names(void)
{
	char long_name[256], *got;

	check_name("notes.txt", 1, "notes (conflict 2026-11-21 1530).txt");
	check_name("notes.txt", 2, "notes (conflict 2026-11-21 1530 2).txt");
	check_name("Makefile", 1, "Makefile (conflict 2026-11-21 1530)");
	check_name(".profile", 1, ".profile (conflict 2026-11-21 1530)");
	check_name("a.tar.gz", 1, "a.tar (conflict 2026-11-21 1530).gz");
	/* 255 bytes of two-byte characters: cut to fit, never mid-character */
	for (int i = 0; i < 127; i++)
		memcpy(long_name + 2 * i, "\xc3\xa9", 2);
	long_name[254] = '\0';
	got = conflict_name(long_name, sample_time(), 1);
	CHECK(got && strlen(got) <= 255);
	CHECK(got && strcmp(got + strlen(got) - 27, " (conflict 2026-11-21 1530)") == 0);
	CHECK(got && ((unsigned char)got[0] == 0xc3) &&
	      (strstr(got, " (conflict") - got) % 2 == 0);
	free(got);
}

/* A conflict copy of a file in a subdirectory and of a long-named file. */
static void test_object_paths(const char *dir)
{
	struct cry_kdf_params kdf = { .n = 1024, .r = 8 };
	struct store *s = NULL;
	struct vault *v = NULL;
	char *err = NULL, *content = NULL, *path, *got;
	char long_name[201];
	struct vault_entry_name e;
	struct store_attr a;

	CHECK(store_local_open(dir, &s, &err) == 0);
	CHECK(s && vault_create(s, "pw", &kdf, &err) == VAULT_OK);
	CHECK(s && vault_open(s, "pw", &v, &err) == VAULT_OK);
	if (!v) {
		fprintf(stderr, "cannot make a vault: %s\n", err ? err : "?");
		free(err);
		store_destroy(s);
		return;
	}
	CHECK(vault_make_content_dir(v, "0a1b2c3d-0000-4000-8000-000000000000", &content) == 0);
	CHECK(vault_entry_name(v, "0a1b2c3d-0000-4000-8000-000000000000", "notes.txt",
			       CRY_NAME_NFC, &e) == 0);
	path = vault_join(content, e.stored);
	got = conflict_object_path(v, path);
	CHECK(got && strncmp(got, content, strlen(content)) == 0 && strcmp(got, path) != 0);
	free(got);
	free(path);
	vault_entry_name_free(&e);

	memset(long_name, 'L', 200);
	long_name[200] = '\0';
	CHECK(vault_entry_name(v, "", long_name, CRY_NAME_NFC, &e) == 0 && e.shortened);
	char *root = vault_content_dir(v, "");
	char *entry = vault_join(root, e.stored);
	char *name_file = vault_join(entry, "name.c9s");
	CHECK(store_mkdir(s, entry) == 0);
	CHECK(store_write_all(s, name_file, e.c9r, strlen(e.c9r)) == 0);
	path = vault_join(entry, "contents.c9r");
	got = conflict_object_path(v, path);
	/* a shortened copy: its folder and name.c9s exist, its object does not yet */
	CHECK(got && strstr(got, ".c9s/contents.c9r") && strcmp(got, path) != 0);
	if (got) {
		char *folder = strndup(got, strlen(got) - strlen("/contents.c9r"));
		char *copy_name = vault_join(folder, "name.c9s");

		CHECK(store_getattr(s, copy_name, &a) == 0);
		CHECK(store_getattr(s, got, &a) == -ENOENT);
		free(folder);
		free(copy_name);
	}
	CHECK(conflict_object_path(v, "vault.cryptomator") == NULL);
	free(got);
	free(path);
	free(name_file);
	free(entry);
	free(root);
	vault_entry_name_free(&e);
	free(content);
	vault_close(v);
	store_destroy(s);
}

int main(void)
{
	char dir[] = "/tmp/umbrafs-test-conflict-XXXXXX";
	char cmd[64];

	setenv("TZ", "UTC", 1);
	tzset();
	test_names();
	if (mkdtemp(dir)) {
		test_object_paths(dir);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	} else {
		failed++;
	}
	printf("fs-conflict: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
