#include "fs/conflict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cry_err.h"
#include "fs/log.h"

#define NAME_MAX_BYTES 255
#define COPIES_MAX 100
#define LONG_NAME_MAX 4096

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

char *conflict_name(const char *name, time_t t, unsigned n)
{
	const char *dot = strrchr(name, '.');
	size_t base_len, ext_len;
	char tag[64], number[16] = "", *out = NULL;
	struct tm tm;

	if (!dot || dot == name) /* no extension, or a dot file such as ".profile" */
		dot = name + strlen(name);
	localtime_r(&t, &tm);
	if (n > 1)
		snprintf(number, sizeof(number), " %u", n);
	snprintf(tag, sizeof(tag), " (conflict %04d-%02d-%02d %02d%02d%s)", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, number);
	ext_len = strlen(dot);
	if (strlen(tag) + ext_len >= NAME_MAX_BYTES)
		ext_len = 0; /* an absurdly long extension: drop it rather than the tag */
	base_len = utf8_cut(name, (size_t)(dot - name));
	if (base_len + strlen(tag) + ext_len > NAME_MAX_BYTES)
		base_len = utf8_cut(name, NAME_MAX_BYTES - strlen(tag) - ext_len);
	if (asprintf(&out, "%.*s%s%.*s", (int)base_len, name, tag, (int)ext_len, dot) < 0)
		return NULL;
	return out;
}

/* The parts of an object path "d/AB/CDE.../ENTRY[/contents.c9r]". */
struct object_path {
	char *content_dir; /* "d/AB/CDE..." */
	char *entry;       /* ENTRY: the .c9r name, or a .c9s folder */
};

static int split_object_path(const char *path, struct object_path *p)
{
	const char *s = path;
	int slashes = 0;

	for (; *s && slashes < 3; s++)
		slashes += *s == '/';
	if (slashes < 3 || strncmp(path, "d/", 2) != 0)
		return -EINVAL;
	p->content_dir = strndup(path, (size_t)(s - path - 1));
	p->entry = strndup(s, strcspn(s, "/"));
	return p->content_dir && p->entry ? 0 : -ENOMEM;
}

/* The cleartext name of entry in content_dir, and that folder's directory id
 * (from its dirid.c9r backup: the cache knows paths, not ids). */
static int cleartext_name(struct vault *v, const struct object_path *p, char **dir_id,
			  char **name)
{
	char *file = vault_join(p->content_dir, VAULT_DIRID_BACKUP_FILE), *c9r = NULL;
	size_t len;
	int rc = file ? vault_read_small(v, file, LONG_NAME_MAX, dir_id, &len) : -ENOMEM;

	free(file);
	if (rc)
		return rc;
	if (strcmp(p->entry + strlen(p->entry) - 4, ".c9s") == 0) {
		uint8_t *buf;

		file = vault_join(p->content_dir, p->entry);
		char *long_file = file ? vault_join(file, VAULT_LONG_NAME_FILE) : NULL;

		rc = long_file ? store_read_all(v->store, long_file, LONG_NAME_MAX, &buf, &len)
			       : -ENOMEM;
		free(file);
		free(long_file);
		if (rc)
			return rc;
		c9r = strndup((char *)buf, len);
		free(buf);
		if (!c9r)
			return -ENOMEM;
	}
	rc = cry_name_decrypt(v->names, *dir_id, c9r ? c9r : p->entry, name);
	free(c9r);
	return rc == CRY_OK ? 0 : rc == CRY_ERR_NOMEM ? -ENOMEM : -EIO;
}

/* Make room for a new entry (its .c9s folder and name.c9s when shortened);
 * the store path of its object, or NULL with *rc set (-EEXIST when taken). */
static char *claim_entry(struct vault *v, const char *content_dir, const char *dir_id,
			 const char *name, int *rc)
{
	struct vault_entry_name e;
	struct store_attr a;
	char *entry, *path = NULL, *file;

	*rc = vault_entry_name(v, dir_id, name, CRY_NAME_NFC, &e);
	if (*rc)
		return NULL;
	entry = vault_join(content_dir, e.stored);
	if (!entry)
		*rc = -ENOMEM;
	else if (store_getattr(v->store, entry, &a) == 0)
		*rc = -EEXIST;
	else if (!e.shortened)
		path = strdup(entry);
	else if (!(*rc = store_mkdir(v->store, entry))) {
		file = vault_join(entry, VAULT_LONG_NAME_FILE);
		*rc = file ? store_write_all(v->store, file, e.c9r, strlen(e.c9r)) : -ENOMEM;
		free(file);
		path = *rc ? NULL : vault_join(entry, VAULT_CONTENTS_FILE);
	}
	if (!*rc && !path)
		*rc = -ENOMEM;
	free(entry);
	vault_entry_name_free(&e);
	return path;
}

char *conflict_object_path(void *ctx, const char *path)
{
	struct vault *v = ctx;
	struct object_path p = { 0 };
	char *dir_id = NULL, *name = NULL, *copy, *out = NULL;
	time_t now = time(NULL);
	unsigned n;
	int rc = split_object_path(path, &p);

	if (!rc)
		rc = cleartext_name(v, &p, &dir_id, &name);
	for (n = 1; !rc && !out && n <= COPIES_MAX; n++) {
		copy = conflict_name(name, now, n);
		out = copy ? claim_entry(v, p.content_dir, dir_id, copy, &rc) : NULL;
		if (!copy)
			rc = -ENOMEM;
		if (rc == -EEXIST)
			rc = 0;
		free(copy);
	}
	if (!out)
		log_err("%s: cannot name a conflict copy (%s): the local version stays queued",
			path, rc ? strerror(-rc) : "too many copies");
	free(p.content_dir);
	free(p.entry);
	free(dir_id);
	free(name);
	return out;
}
