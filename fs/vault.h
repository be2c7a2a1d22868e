/* A vault on a store: creating one, unlocking one, and the layout rules that
 * turn (directory id, cleartext name) into store paths (FORMAT.md 5-7). */
#ifndef VAULT_H
#define VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/store.h"
#include "crypto/cry_keys.h"
#include "crypto/cry_name.h"

#define VAULT_CONFIG_FILE "vault.cryptomator"
#define VAULT_DIR_ID_LEN 36
#define VAULT_DIR_FILE "dir.c9r"
#define VAULT_SYMLINK_FILE "symlink.c9r"
#define VAULT_CONTENTS_FILE "contents.c9r"
#define VAULT_LONG_NAME_FILE "name.c9s"
#define VAULT_DIRID_BACKUP_FILE "dirid.c9r"

/* Outcomes of vault_create/vault_open; the values are the CLI's exit codes. */
enum vault_status {
	VAULT_OK = 0,
	VAULT_ERR = 1,          /* anything else: I/O, store, a folder that is not empty */
	VAULT_ERR_PASSWORD = 3, /* the password does not unwrap the masterkey */
	VAULT_ERR_INVALID = 4,  /* not a vault, or one this program cannot use */
};

struct vault {
	struct store *store;             /* not owned */
	struct cry_masterkey *mk;
	struct cry_names *names;
	struct cry_vault_config cfg;
	struct cry_kdf_params kdf;
};

/* VAULT_OK if s is empty (a vault can be made there), else VAULT_ERR and a
 * message saying it holds a vault or other things. */
int vault_check_empty(struct store *s, char **err);

/* Create a new, empty vault on an empty store (checked again here). */
int vault_create(struct store *s, const char *password, const struct cry_kdf_params *kdf,
		 char **err);

/* Unlock the vault on s. On failure *err is a malloc'd message for the user. */
int vault_open(struct store *s, const char *password, struct vault **out, char **err);
void vault_close(struct vault *v);

/* "dir/name", malloc'd (NULL when out of memory); "" as dir gives "name". */
char *vault_join(const char *dir, const char *name);

/* Store path of the content folder of directory id: "d/AB/CDE...". malloc'd. */
char *vault_content_dir(const struct vault *v, const char *dir_id);

/* How a cleartext name is stored in its parent's content folder. */
struct vault_entry_name {
	char *c9r;       /* the encrypted name, "<b64url>.c9r" */
	char *stored;    /* what the folder holds: c9r, or "<sha1>.c9s" when too long */
	bool shortened;
};
int vault_entry_name(const struct vault *v, const char *dir_id, const char *name,
		     enum cry_name_form form, struct vault_entry_name *out);
void vault_entry_name_free(struct vault_entry_name *e);

/* Make "d/AB" (may exist) and "d/AB/CDE..." (must not) for a directory id,
 * with its dirid.c9r backup. *path_out (may be NULL) receives the folder path. */
int vault_make_content_dir(const struct vault *v, const char *dir_id, char **path_out);

/* Encrypt buf as file contents and store it whole at path (dirid.c9r, symlink.c9r). */
int vault_write_small(const struct vault *v, const char *path, const void *buf, size_t len);
/* Read and authenticate a whole small object at path; *out is malloc'd and
 * NUL-terminated. -EIO (and a log line) when it does not authenticate. */
int vault_read_small(const struct vault *v, const char *path, size_t max, char **out,
		     size_t *len);

/* What `umbrafs info` counts; needs no key. */
struct vault_counts {
	uint64_t directories, files, symlinks;
};
int vault_count(struct store *s, struct vault_counts *c);

/* What a vault claims to be, read without a password (unverified config and
 * the masterkey file's scrypt parameters), for `umbrafs info`. */
int vault_describe(struct store *s, struct cry_vault_config *cfg, struct cry_kdf_params *kdf,
		   char **err);

/* The name of the masterkey file that the vault config's kid names
 * (unverified), malloc'd into *name; a vault_status, with *err on failure. */
int vault_masterkey_file(struct store *s, char **name, char **err);

/* Unverified look at a store: does it hold a vault config? */
bool vault_exists(struct store *s);

#endif
