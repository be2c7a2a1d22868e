/* umbrafs passwd: wrap the same masterkey under a new password (FORMAT.md
 * section 2). Only the masterkey file changes: a fresh salt, the file's own
 * scrypt cost or --scrypt-cost; no content is re-encrypted. The previous file is kept as
 * "<masterkey file>.bkup" first, and both writes are atomic, so a crash
 * leaves either the old or the new file in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/cry_err.h"
#include "fs/commands.h"

#define MASTERKEY_FILE_MAX (64 * 1024)
#define BACKUP_SUFFIX ".bkup"

/* The new password: --new-password-file, else asked twice on the terminal.
 * UMBRAFS_PASSWORD held the current password, so it must not answer here. */
static int new_password(const struct cli *c, char **pw)
{
	struct password_source src = { .file = c->new_password_file,
				       .flag_hint = "--new-password-file" };
	char *err = NULL;

	unsetenv("UMBRAFS_PASSWORD");
	if (password_get(&src, "New password: ", true, pw, &err) == 0)
		return EXIT_OK;
	fail("%s", err ? err : "cannot read the new password");
	free(err);
	return EXIT_ERROR;
}

/* Wrap v's masterkey under password and check that the result unwraps to the
 * same keys before anything is written. *text is malloc'd. */
static int rewrap(const struct vault *v, const char *password, const struct cry_kdf_params *kdf,
		  char **text)
{
	struct cry_masterkey *check = NULL;
	int rc = cry_masterkey_file_lock(v->mk, password, kdf, NULL, text);

	if (rc == CRY_OK)
		rc = cry_masterkey_file_unlock(*text, strlen(*text), password, &check, NULL);
	if (rc == CRY_OK && CRYPTO_memcmp(check, v->mk, sizeof(*check)) != 0)
		rc = CRY_ERR_INTERNAL;
	cry_masterkey_free(check);
	if (rc != CRY_OK) {
		fail("cannot wrap the keys under the new password: %s", cry_strerror(rc));
		free(*text);
		*text = NULL;
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* Copy the current masterkey file to name.bkup, then replace it with text. */
static int replace_masterkey_file(struct store *s, const char *name, const char *text)
{
	char *backup = NULL;
	uint8_t *old = NULL;
	size_t old_len;
	int rc;

	if (asprintf(&backup, "%s%s", name, BACKUP_SUFFIX) < 0)
		return EXIT_ERROR;
	rc = store_read_all(s, name, MASTERKEY_FILE_MAX, &old, &old_len);
	if (rc == 0) {
		rc = store_write_all(s, backup, old, old_len);
		if (rc)
			fail("%s/%s: cannot write the backup: %s (nothing was changed)", s->location,
			     backup, strerror(-rc));
	} else {
		fail("%s/%s: cannot read: %s", s->location, name, strerror(-rc));
	}
	if (rc == 0) {
		rc = store_write_all(s, name, text, strlen(text));
		if (rc)
			fail("%s/%s: cannot write: %s (the old file is unchanged)", s->location, name,
			     strerror(-rc));
	}
	if (rc == 0)
		printf("changed the password of %s; the previous %s is kept as %s\n", s->location,
		       name, backup);
	free(old);
	free(backup);
	return rc ? EXIT_ERROR : EXIT_OK;
}

int cmd_passwd(const struct cli *c)
{
	struct cry_kdf_params kdf = { 0 };
	struct store *s;
	struct vault *v;
	char *pw = NULL, *text = NULL, *name = NULL, *err = NULL;
	int rc;

	if (c->argc != 1)
		return usage_error("passwd takes one STORE");
	rc = scrypt_cost_option(c, &kdf); /* only checks it here: n is set below */
	if (rc)
		return rc;
	/* vault_open also verifies the config's signature with the unwrapped
	 * key: a foreign or altered vault is refused before anything is written */
	rc = unlock(c, &s, &v);
	if (rc)
		return rc;
	rc = vault_masterkey_file(s, &name, &err);
	if (rc)
		fail("%s", err ? err : "cannot read the vault config");
	if (!rc) {
		kdf = v->kdf;
		scrypt_cost_option(c, &kdf);
		rc = new_password(c, &pw);
	}
	if (!rc)
		rc = rewrap(v, pw, &kdf, &text);
	if (!rc)
		rc = replace_masterkey_file(s, name, text);
	password_free(pw);
	free(text);
	free(name);
	free(err);
	vault_close(v);
	store_destroy(s);
	return rc;
}
