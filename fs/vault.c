#include "fs/vault.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_err.h"
#include "crypto/cry_file.h"
#include "fs/log.h"

#define MASTERKEY_KID_PREFIX "masterkeyfile:"
#define DEFAULT_MASTERKEY_FILE "masterkey.cryptomator"
#define SMALL_FILE_MAX (64 * 1024)

static char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *msgf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *vault_join(const char *dir, const char *name)
{
	char *s = NULL;

	if (!*dir)
		return strdup(name);
	if (asprintf(&s, "%s/%s", dir, name) < 0)
		return NULL;
	return s;
}

char *vault_content_dir(const struct vault *v, const char *dir_id)
{
	char hash[CRY_DIR_HASH_LEN + 1];
	char *s = NULL;

	if (cry_dir_hash(v->names, dir_id, hash) != CRY_OK)
		return NULL;
	if (asprintf(&s, "d/%.2s/%s", hash, hash + 2) < 0)
		return NULL;
	return s;
}

int vault_entry_name(const struct vault *v, const char *dir_id, const char *name,
		     enum cry_name_form form, struct vault_entry_name *out)
{
	char short_name[CRY_SHORT_NAME_LEN + 1];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = cry_name_encrypt_form(v->names, dir_id, name, form, &out->c9r);
	if (rc == CRY_ERR_FORMAT)
		return -EILSEQ; /* not UTF-8: the format has no other names */
	if (rc)
		return -ENOMEM;
	out->shortened = strlen(out->c9r) > (size_t)v->cfg.shortening_threshold;
	if (out->shortened) {
		cry_name_shorten(out->c9r, short_name);
		out->stored = strdup(short_name);
	} else {
		out->stored = strdup(out->c9r);
	}
	if (!out->stored) {
		vault_entry_name_free(out);
		return -ENOMEM;
	}
	return 0;
}

void vault_entry_name_free(struct vault_entry_name *e)
{
	free(e->c9r);
	free(e->stored);
	e->c9r = e->stored = NULL;
}

int vault_write_small(const struct vault *v, const char *path, const void *buf, size_t len)
{
	uint8_t *obj;
	size_t obj_len;
	int rc;

	if (cry_file_encrypt(v->mk, buf, len, &obj, &obj_len) != CRY_OK)
		return -ENOMEM;
	rc = store_write_all(v->store, path, obj, obj_len);
	free(obj);
	return rc;
}

int vault_read_small(const struct vault *v, const char *path, size_t max, char **out,
		     size_t *len)
{
	uint8_t *obj, *clear;
	size_t obj_len;
	int rc;

	rc = store_read_all(v->store, path, max, &obj, &obj_len);
	if (rc)
		return rc;
	rc = cry_file_decrypt(v->mk, obj, obj_len, &clear, len);
	free(obj);
	if (rc == CRY_ERR_NOMEM)
		return -ENOMEM;
	if (rc) {
		log_err("%s: authentication failed (%s)", path, cry_strerror(rc));
		return -EIO;
	}
	*out = (char *)clear;
	return 0;
}

static int mkdir_exist_ok(struct store *s, const char *path)
{
	int rc = store_mkdir(s, path);

	return rc == -EEXIST ? 0 : rc;
}

int vault_make_content_dir(const struct vault *v, const char *dir_id, char **path_out)
{
	char *path = vault_content_dir(v, dir_id);
	char *backup = NULL;
	int rc;

	if (!path)
		return -ENOMEM;
	path[4] = '\0'; /* "d/AB" */
	rc = mkdir_exist_ok(v->store, path);
	path[4] = '/';
	if (!rc)
		rc = store_mkdir(v->store, path);
	if (!rc) {
		backup = vault_join(path, VAULT_DIRID_BACKUP_FILE);
		rc = backup ? vault_write_small(v, backup, dir_id, strlen(dir_id)) : -ENOMEM;
		if (rc) /* a full disk: leave no orphaned folder */
			store_rmdir(v->store, path);
	}
	free(backup);
	if (rc || !path_out)
		free(path);
	else
		*path_out = path;
	return rc;
}

static int stop_at_any_entry(void *ctx, const char *name, bool is_dir)
{
	(void)ctx;
	(void)name;
	(void)is_dir;
	return 1;
}

int vault_check_empty(struct store *s, char **err)
{
	int rc = store_list(s, "", stop_at_any_entry, NULL);

	*err = NULL;
	if (rc == 1) {
		*err = msgf("%s: %s", s->location,
			    vault_exists(s) ? "already holds a vault"
					    : "is not empty: give an empty or new folder");
		return VAULT_ERR;
	}
	if (rc < 0) {
		*err = msgf("%s: cannot list: %s", s->location, strerror(-rc));
		return VAULT_ERR;
	}
	return VAULT_OK;
}

int vault_create(struct store *s, const char *password, const struct cry_kdf_params *kdf,
		 char **err)
{
	struct vault v = { .store = s };
	char *mkfile = NULL, *jwt = NULL;
	int rc;

	rc = vault_check_empty(s, err);
	if (rc)
		return rc;
	v.mk = cry_masterkey_new_random();
	v.names = v.mk ? cry_names_new(v.mk) : NULL;
	v.cfg.shortening_threshold = 220;
	if (!v.names || cry_masterkey_file_lock(v.mk, password, kdf, NULL, &mkfile) ||
	    cry_vault_config_create(v.mk, &jwt)) {
		*err = msgf("cannot create the vault keys (out of memory?)");
		rc = VAULT_ERR;
		goto out;
	}
	rc = store_write_all(s, DEFAULT_MASTERKEY_FILE, mkfile, strlen(mkfile));
	if (!rc)
		rc = store_write_all(s, VAULT_CONFIG_FILE, jwt, strlen(jwt));
	if (!rc)
		rc = mkdir_exist_ok(s, "d");
	if (!rc)
		rc = vault_make_content_dir(&v, "", NULL);
	if (rc) {
		*err = msgf("%s: cannot write the vault: %s", s->location, strerror(-rc));
		rc = VAULT_ERR;
	}
out:
	free(mkfile);
	free(jwt);
	cry_names_free(v.names);
	cry_masterkey_free(v.mk);
	return rc;
}

bool vault_exists(struct store *s)
{
	struct store_attr a;

	return store_getattr(s, VAULT_CONFIG_FILE, &a) == 0;
}

/* The masterkey file named by the config's kid, or an error message. */
static int masterkey_file_name(struct store *s, const char *jwt, size_t len, char **name,
			       char **err)
{
	char kid[256];

	if (cry_vault_config_kid(jwt, len, kid, sizeof(kid)) != CRY_OK) {
		*err = msgf("%s/%s: not a vault config (not a JWT): the file is damaged",
			    s->location, VAULT_CONFIG_FILE);
		return VAULT_ERR_INVALID;
	}
	if (strncmp(kid, MASTERKEY_KID_PREFIX, strlen(MASTERKEY_KID_PREFIX)) != 0) {
		*err = msgf("%s/%s: key id '%s' is not supported (only masterkeyfile:..., "
			    "not Cryptomator Hub vaults)", s->location, VAULT_CONFIG_FILE, kid);
		return VAULT_ERR_INVALID;
	}
	*name = strdup(kid + strlen(MASTERKEY_KID_PREFIX));
	if (!*name || !**name || strchr(*name, '/') || !strcmp(*name, "..")) {
		*err = msgf("%s/%s: bad masterkey file name in key id '%s'", s->location,
			    VAULT_CONFIG_FILE, kid);
		free(*name);
		return VAULT_ERR_INVALID;
	}
	return VAULT_OK;
}

static int read_text(struct store *s, const char *path, char **text, size_t *len, char **err)
{
	uint8_t *buf;
	int rc = store_read_all(s, path, SMALL_FILE_MAX, &buf, len);

	if (rc == -ENOENT) {
		*err = msgf("%s: not a vault: %s is missing", s->location, path);
		return VAULT_ERR_INVALID;
	}
	if (rc) {
		*err = msgf("%s/%s: cannot read: %s", s->location, path, strerror(-rc));
		return rc == -EFBIG ? VAULT_ERR_INVALID : VAULT_ERR;
	}
	*text = (char *)buf;
	return VAULT_OK;
}

int vault_masterkey_file(struct store *s, char **name, char **err)
{
	char *jwt = NULL;
	size_t len;
	int rc = read_text(s, VAULT_CONFIG_FILE, &jwt, &len, err);

	if (!rc)
		rc = masterkey_file_name(s, jwt, len, name, err);
	free(jwt);
	return rc;
}

static int unlock_masterkey(struct vault *v, const char *file, const char *password,
			    char **err)
{
	char *text = NULL;
	size_t len;
	int rc = read_text(v->store, file, &text, &len, err);

	if (rc)
		return rc;
	rc = cry_masterkey_file_unlock(text, len, password, &v->mk, &v->kdf);
	free(text);
	switch (rc) {
	case CRY_OK:
		return VAULT_OK;
	case CRY_ERR_PASSWORD:
		*err = msgf("wrong password for %s/%s", v->store->location, file);
		return VAULT_ERR_PASSWORD;
	case CRY_ERR_NOMEM:
		*err = msgf("out of memory (or locked-memory limit) unlocking the keys");
		return VAULT_ERR;
	default:
		*err = msgf("%s/%s: %s: the masterkey file is damaged (restore it from a backup)",
			    v->store->location, file, cry_strerror(rc));
		return VAULT_ERR_INVALID;
	}
}

static int verify_config(struct vault *v, const char *jwt, size_t len, char **err)
{
	const char *loc = v->store->location;
	int rc = cry_vault_config_parse(jwt, len, v->mk, &v->cfg);

	if (rc == CRY_OK)
		rc = cry_vault_config_check(&v->cfg);
	switch (rc) {
	case CRY_OK:
		return VAULT_OK;
	case CRY_ERR_SIGNATURE:
		*err = msgf("%s/%s: signature does not verify: the file was altered or "
			    "belongs to another masterkey", loc, VAULT_CONFIG_FILE);
		break;
	case CRY_ERR_ALG:
		*err = msgf("%s/%s: signature algorithm not accepted (only HS256, HS384, HS512)",
			    loc, VAULT_CONFIG_FILE);
		break;
	case CRY_ERR_VAULT_FORMAT:
		*err = msgf("%s/%s: vault format %d is not supported (only format 8)", loc,
			    VAULT_CONFIG_FILE, v->cfg.format);
		break;
	case CRY_ERR_CIPHER_COMBO:
		*err = msgf("%s/%s: cipher combo %s is not supported (only SIV_GCM, vault "
			    "format 8)", loc, VAULT_CONFIG_FILE, v->cfg.cipher_combo);
		break;
	default:
		*err = msgf("%s/%s: %s", loc, VAULT_CONFIG_FILE, cry_strerror(rc));
	}
	return rc == CRY_ERR_NOMEM ? VAULT_ERR : VAULT_ERR_INVALID;
}

static int check_root(struct vault *v, char **err)
{
	char *root = vault_content_dir(v, "");
	struct store_attr a;
	int rc;

	if (!root)
		return VAULT_ERR;
	rc = store_getattr(v->store, root, &a);
	if (rc == 0 && !a.is_dir)
		rc = -ENOTDIR;
	if (rc)
		*err = msgf("%s: the root folder %s is missing or unreadable (%s): the vault is "
			    "damaged", v->store->location, root, strerror(-rc));
	free(root);
	return rc == 0 ? VAULT_OK : rc == -ENOENT || rc == -ENOTDIR ? VAULT_ERR_INVALID
								 : VAULT_ERR;
}

int vault_describe(struct store *s, struct cry_vault_config *cfg, struct cry_kdf_params *kdf,
		   char **err)
{
	char *jwt = NULL, *mkfile = NULL, *text = NULL;
	size_t len, text_len;
	int rc = read_text(s, VAULT_CONFIG_FILE, &jwt, &len, err);

	if (!rc)
		rc = masterkey_file_name(s, jwt, len, &mkfile, err);
	if (!rc && cry_vault_config_peek(jwt, len, cfg) != CRY_OK) {
		*err = msgf("%s/%s: not a vault config: the file is damaged", s->location,
			    VAULT_CONFIG_FILE);
		rc = VAULT_ERR_INVALID;
	}
	if (!rc)
		rc = read_text(s, mkfile, &text, &text_len, err);
	if (!rc && cry_masterkey_file_params(text, text_len, kdf) != CRY_OK) {
		*err = msgf("%s/%s: not a masterkey file: the file is damaged", s->location,
			    mkfile);
		rc = VAULT_ERR_INVALID;
	}
	free(jwt);
	free(mkfile);
	free(text);
	return rc;
}

int vault_open(struct store *s, const char *password, struct vault **out, char **err)
{
	struct vault *v = calloc(1, sizeof(*v));
	char *jwt = NULL, *mkfile = NULL;
	size_t len;
	int rc;

	*err = NULL;
	if (!v)
		return VAULT_ERR;
	v->store = s;
	rc = read_text(s, VAULT_CONFIG_FILE, &jwt, &len, err);
	if (!rc)
		rc = masterkey_file_name(s, jwt, len, &mkfile, err);
	if (!rc)
		rc = unlock_masterkey(v, mkfile, password, err);
	if (!rc)
		rc = verify_config(v, jwt, len, err);
	if (!rc) {
		v->names = cry_names_new(v->mk);
		rc = v->names ? VAULT_OK : VAULT_ERR;
	}
	if (!rc)
		rc = check_root(v, err);
	free(jwt);
	free(mkfile);
	if (rc) {
		vault_close(v);
		return rc;
	}
	*out = v;
	return VAULT_OK;
}

void vault_close(struct vault *v)
{
	if (!v)
		return;
	cry_names_free(v->names);
	cry_masterkey_free(v->mk);
	free(v);
}

/* vault_count walks d/XX/YYY.../entry without keys: the layout alone tells
 * the kind of each entry. */
struct count_walk {
	struct store *store;
	struct vault_counts *counts;
	const char *dir; /* the folder being listed */
};

static int count_entry(void *ctx, const char *name, bool is_dir)
{
	struct count_walk *w = ctx;
	struct store_attr a;
	char *path, *probe;
	size_t n = strlen(name);

	if (n < CRY_MIN_ENTRY_NAME_LEN || (strcmp(name + n - 4, ".c9r") && strcmp(name + n - 4, ".c9s")))
		return 0;
	if (!is_dir) {
		w->counts->files++;
		return 0;
	}
	path = vault_join(w->dir, name);
	if (!path)
		return -ENOMEM;
	probe = vault_join(path, VAULT_DIR_FILE);
	if (probe && store_getattr(w->store, probe, &a) == 0) {
		free(probe);
		free(path);
		return 0; /* counted as the content folder it points to */
	}
	free(probe);
	probe = vault_join(path, VAULT_SYMLINK_FILE);
	if (probe && store_getattr(w->store, probe, &a) == 0)
		w->counts->symlinks++;
	else
		w->counts->files++; /* a shortened file: contents.c9r */
	free(probe);
	free(path);
	return probe ? 0 : -ENOMEM;
}

/* List the subfolder name of w's folder with cb. */
static int count_in_subfolder(struct count_walk *w, const char *name, store_list_cb cb)
{
	struct count_walk inner = *w;
	int rc;

	inner.dir = vault_join(w->dir, name);
	if (!inner.dir)
		return -ENOMEM;
	rc = store_list(w->store, inner.dir, cb, &inner);
	free((char *)inner.dir);
	return rc;
}

static int count_content_dir(void *ctx, const char *name, bool is_dir)
{
	struct count_walk *w = ctx;

	if (!is_dir)
		return 0;
	w->counts->directories++;
	return count_in_subfolder(w, name, count_entry);
}

static int count_prefix_dir(void *ctx, const char *name, bool is_dir)
{
	return is_dir ? count_in_subfolder(ctx, name, count_content_dir) : 0;
}

int vault_count(struct store *s, struct vault_counts *c)
{
	struct count_walk w = { .store = s, .counts = c, .dir = "d" };

	memset(c, 0, sizeof(*c));
	return store_list(s, "d", count_prefix_dir, &w);
}
