/* umbrafs-walk: an offline checker of a vault folder, for the end-to-end tests.
 *
 * It reads the store with plain POSIX calls and the crypto/ layer only (never
 * fs/ or backends/), so it judges what umbrafs wrote by FORMAT.md alone:
 * every name authenticates in its parent's dirId and re-encrypts to itself,
 * every header and chunk authenticates, object sizes are valid, .c9s folders
 * hash to their name.c9s, dir.c9r ids lead to existing content folders,
 * dirid.c9r backups decrypt to their folder's id, no content folder is
 * orphaned, and no marker string appears as raw bytes in any stored file or
 * file name.
 *
 *   umbrafs-walk --password-file F VAULTDIR [--marker STRING]...
 *       stdout: the cleartext tree, sorted, one node a line:
 *         "f PATH SIZE SHA256HEX", "d PATH", "l PATH TARGET"
 *       (PATH and TARGET escape '\', space, control bytes and DEL as \xHH)
 *       stderr: one "PROBLEM: ..." line per problem.
 *       exit 0 clean, 1 problems, 2 usage.
 *   umbrafs-walk --password-file F VAULTDIR --resign-config PAYLOADJSON
 *       writes VAULTDIR/vault.cryptomator: an HS256 JWT of PAYLOADJSON signed
 *       with the vault's real key, to craft configs (format 9, ...) for tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/cry_content.h"
#include "crypto/cry_encode.h"
#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "crypto/cry_mem.h"
#include "crypto/cry_name.h"

#define DIR_ID_LEN 36      /* a lowercase UUID */
#define MAX_NAME_BYTES 255
#define MAX_LINK_BYTES 4095

/* A growable array of malloc'd strings. */
struct strlist {
	char **items;
	size_t len, cap;
};

static void strlist_push(struct strlist *l, char *s)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->items = realloc(l->items, l->cap * sizeof *l->items);
		if (!l->items) {
			perror("umbrafs-walk");
			exit(2);
		}
	}
	l->items[l->len++] = s;
}

static bool strlist_contains(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->items[i]);
	free(l->items);
	*l = (struct strlist){0};
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort(struct strlist *l)
{
	if (l->len)
		qsort(l->items, l->len, sizeof *l->items, compare_strings);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		perror("umbrafs-walk");
		exit(2);
	}
	return s;
}

struct walker {
	const char *vault;          /* the vault folder */
	struct cry_masterkey *mk;
	struct cry_names *names;
	size_t threshold;           /* shorteningThreshold of the config */
	char **markers;
	size_t n_markers;
	struct strlist tree;        /* output lines */
	struct strlist content_dirs;/* "d/XX/YYYY..." reached from the root */
	unsigned problems;
};

static void problem(struct walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct walker *w, const char *fmt, ...)
{
	va_list ap;

	fputs("PROBLEM: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	w->problems++;
}

/* Whole file at vault-relative path rel into *out (malloc'd, NUL-terminated
 * for convenience; the NUL is not counted). -errno on failure. */
static int read_whole(const struct walker *w, const char *rel, uint8_t **out, size_t *out_len)
{
	char *path = xasprintf("%s/%s", w->vault, rel);
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return -errno;

	struct stat st;
	int err = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (err) {
		close(fd);
		return err;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len + 1);
	size_t got = 0;
	while (buf && got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != len) {
		free(buf);
		return buf ? -EIO : -ENOMEM;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Authenticate and decrypt a whole object in the file content format.
 * allow_empty_tail: accept a trailing empty chunk (dirid.c9r by Cryptomator);
 * everywhere else writers never add one. Reports problems; true when the
 * cleartext (malloc'd, NUL-terminated) is in *out. */
static bool decrypt_object(struct walker *w, const char *rel, const uint8_t *ct, size_t len,
			   bool allow_empty_tail, uint8_t **out, size_t *out_len)
{
	if (len < CRY_HEADER_LEN) {
		problem(w, "%s: %zu bytes, shorter than a file header", rel, len);
		return false;
	}
	size_t body = len - CRY_HEADER_LEN;
	size_t tail = body % CRY_CHUNK_CIPHER;
	if (tail > 0 && tail < CRY_CHUNK_OVERHEAD) {
		problem(w, "%s: size %zu leaves a %zu-byte fragment of a chunk", rel, len, tail);
		return false;
	}
	if (tail == CRY_CHUNK_OVERHEAD && !allow_empty_tail)
		problem(w, "%s: ends in an empty chunk", rel);

	size_t n_chunks = body / CRY_CHUNK_CIPHER + (tail ? 1 : 0);
	size_t pt_len = body - n_chunks * CRY_CHUNK_OVERHEAD;
	uint64_t expected;
	if (tail != CRY_CHUNK_OVERHEAD &&
	    (cry_cleartext_size(len, &expected) != CRY_OK || expected != pt_len))
		problem(w, "%s: cry_cleartext_size disagrees with the chunk layout", rel);

	struct cry_file_header *hdr = cry_secure_alloc(sizeof *hdr);
	uint8_t *pt = malloc(pt_len + 1);
	if (!hdr || !pt) {
		perror("umbrafs-walk");
		exit(2);
	}
	bool ok = true;
	int rc = cry_header_decrypt(w->mk, ct, hdr);
	if (rc != CRY_OK) {
		problem(w, "%s: header: %s", rel, cry_strerror(rc));
		ok = false;
	}
	for (size_t i = 0; ok && i < n_chunks; i++) {
		size_t off = CRY_HEADER_LEN + i * CRY_CHUNK_CIPHER;
		size_t clen = len - off < CRY_CHUNK_CIPHER ? len - off : CRY_CHUNK_CIPHER;
		rc = cry_chunk_decrypt(hdr, i, ct + off, clen, pt + i * CRY_CHUNK_PLAIN);
		if (rc != CRY_OK) {
			problem(w, "%s: chunk %zu: %s", rel, i, cry_strerror(rc));
			ok = false;
		}
	}
	cry_secure_free(hdr, sizeof *hdr);
	if (!ok) {
		OPENSSL_cleanse(pt, pt_len);
		free(pt);
		return false;
	}
	pt[pt_len] = '\0';
	*out = pt;
	*out_len = pt_len;
	return true;
}

/* Read and decrypt the object at rel; reports problems. */
static bool load_object(struct walker *w, const char *rel, bool allow_empty_tail,
			uint8_t **out, size_t *out_len)
{
	uint8_t *ct;
	size_t len;
	int rc = read_whole(w, rel, &ct, &len);
	if (rc < 0) {
		problem(w, "%s: cannot read: %s", rel, strerror(-rc));
		return false;
	}
	bool ok = decrypt_object(w, rel, ct, len, allow_empty_tail, out, out_len);
	free(ct);
	return ok;
}

/* PATH and TARGET as printed: space, '\', control bytes and DEL as \xHH so a
 * line splits on spaces; UTF-8 passes through. */
static char *escape(const char *s)
{
	char *out = malloc(4 * strlen(s) + 1), *p = out;
	if (!out) {
		perror("umbrafs-walk");
		exit(2);
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '\\' || c == 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return out;
}

static void sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
	uint8_t md[32];
	unsigned int md_len = 0;
	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
		fputs("umbrafs-walk: SHA-256 failed\n", stderr);
		exit(2);
	}
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static bool is_dir(const struct walker *w, const char *rel)
{
	char *path = xasprintf("%s/%s", w->vault, rel);
	struct stat st;
	bool yes = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	free(path);
	return yes;
}

/* Sorted entry names of a store folder (without . and ..); false if unreadable. */
static bool list_folder(struct walker *w, const char *rel, struct strlist *out)
{
	char *path = xasprintf("%s/%s", w->vault, rel);
	DIR *d = opendir(path);
	free(path);
	if (!d) {
		problem(w, "%s: cannot list: %s", rel, strerror(errno));
		return false;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strlist_push(out, strdup(de->d_name));
	closedir(d);
	strlist_sort(out);
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *content_dir_of(struct walker *w, const char *dir_id)
{
	char hash[CRY_DIR_HASH_LEN + 1];
	int rc = cry_dir_hash(w->names, dir_id, hash);
	if (rc != CRY_OK) {
		problem(w, "dirHash(%s): %s", dir_id, cry_strerror(rc));
		return NULL;
	}
	return xasprintf("d/%.2s/%s", hash, hash + 2);
}

static void walk_dir(struct walker *w, const char *dir_id, const char *clear_path);

/* The dirid.c9r backup of a content folder must decrypt to the folder's id. */
static void check_dirid_backup(struct walker *w, const char *cdir, const char *dir_id)
{
	char *rel = xasprintf("%s/dirid.c9r", cdir);
	uint8_t *id;
	size_t id_len;
	if (load_object(w, rel, true, &id, &id_len)) {
		if (id_len != strlen(dir_id) || memcmp(id, dir_id, id_len) != 0)
			problem(w, "%s: holds the id of another directory", rel);
		free(id);
	}
	free(rel);
}

static void add_file_node(struct walker *w, const char *obj, const char *path)
{
	uint8_t *pt;
	size_t len;
	if (!load_object(w, obj, false, &pt, &len))
		return;
	char hex[65];
	sha256_hex(pt, len, hex);
	OPENSSL_cleanse(pt, len);
	free(pt);
	char *esc = escape(path);
	strlist_push(&w->tree, xasprintf("f %s %zu %s", esc, len, hex));
	free(esc);
}

static void add_symlink_node(struct walker *w, const char *obj, const char *path)
{
	uint8_t *target;
	size_t len;
	if (!load_object(w, obj, false, &target, &len))
		return;
	if (len == 0 || len > MAX_LINK_BYTES || memchr(target, '\0', len))
		problem(w, "%s: symlink target of %zu bytes is not a valid target", obj, len);
	char *esc_path = escape(path), *esc_target = escape((char *)target);
	strlist_push(&w->tree, xasprintf("l %s %s", esc_path, esc_target));
	free(esc_path);
	free(esc_target);
	free(target);
}

static void add_dir_node(struct walker *w, const char *obj, const char *path)
{
	uint8_t *id;
	size_t len;
	int rc = read_whole(w, obj, &id, &len);
	if (rc < 0) {
		problem(w, "%s: cannot read: %s", obj, strerror(-rc));
		return;
	}
	if (len != DIR_ID_LEN || memchr(id, '\0', len)) {
		problem(w, "%s: %zu bytes, not a %d-byte directory id", obj, len, DIR_ID_LEN);
	} else {
		char *esc = escape(path);
		strlist_push(&w->tree, xasprintf("d %s", esc));
		free(esc);
		walk_dir(w, (char *)id, path);
	}
	free(id);
}

/* The kind of an entry folder (a .c9r directory or a .c9s folder) by the one
 * object it holds besides name.c9s; adds the node to the tree. */
static void add_node_in_folder(struct walker *w, const char *folder, const char *path,
			       bool shortened)
{
	struct strlist items = {0};
	if (!list_folder(w, folder, &items))
		return;
	const char *kind = NULL;
	for (size_t i = 0; i < items.len; i++) {
		const char *it = items.items[i];
		bool known = strcmp(it, "dir.c9r") == 0 || strcmp(it, "symlink.c9r") == 0 ||
			     (shortened && strcmp(it, "contents.c9r") == 0);
		if (shortened && strcmp(it, "name.c9s") == 0)
			continue;
		if (!known)
			problem(w, "%s/%s: unexpected object in an entry folder", folder, it);
		else if (kind)
			problem(w, "%s: holds both %s and %s", folder, kind, it);
		else
			kind = it;
	}
	if (!kind) {
		problem(w, "%s: entry folder without dir.c9r, symlink.c9r or contents.c9r", folder);
	} else {
		char *obj = xasprintf("%s/%s", folder, kind);
		if (strcmp(kind, "dir.c9r") == 0)
			add_dir_node(w, obj, path);
		else if (strcmp(kind, "symlink.c9r") == 0)
			add_symlink_node(w, obj, path);
		else
			add_file_node(w, obj, path);
		free(obj);
	}
	strlist_free(&items);
}

/* The cleartext name of an entry whose (long) encrypted name is c9r; checks it
 * authenticates, is the canonical encryption of its cleartext (NFC, padded),
 * and is a valid file name. NULL after reporting a problem. */
static char *decrypt_entry_name(struct walker *w, const char *rel, const char *dir_id,
				const char *c9r)
{
	char *clear = NULL, *again = NULL;
	int rc = cry_name_decrypt(w->names, dir_id, c9r, &clear);
	if (rc != CRY_OK) {
		problem(w, "%s: name does not decrypt: %s", rel, cry_strerror(rc));
		return NULL;
	}
	size_t n = strlen(clear);
	if (n == 0 || n > MAX_NAME_BYTES || strchr(clear, '/') || strcmp(clear, ".") == 0 ||
	    strcmp(clear, "..") == 0)
		problem(w, "%s: decrypts to an invalid file name (%zu bytes)", rel, n);
	rc = cry_name_encrypt(w->names, dir_id, clear, &again);
	if (rc != CRY_OK || strcmp(again, c9r) != 0)
		problem(w, "%s: not the canonical (NFC, padded) encryption of its name", rel);
	free(again);
	return clear;
}

/* The encrypted name held by a .c9s folder; checks the folder name is its hash. */
static char *read_long_name(struct walker *w, const char *folder, const char *entry)
{
	char *rel = xasprintf("%s/name.c9s", folder);
	uint8_t *c9r = NULL;
	size_t len;
	int rc = read_whole(w, rel, &c9r, &len);
	if (rc < 0) {
		problem(w, "%s: cannot read: %s", rel, strerror(-rc));
	} else {
		char short_name[CRY_SHORT_NAME_LEN + 1];
		cry_name_shorten((char *)c9r, short_name);
		if (strlen((char *)c9r) != len || strcmp(short_name, entry) != 0) {
			problem(w, "%s: does not hash to its folder name", rel);
			free(c9r);
			c9r = NULL;
		} else if (len <= w->threshold) {
			problem(w, "%s: a %zu-character name is shortened (threshold %zu)", rel,
				len, w->threshold);
		}
	}
	free(rel);
	return (char *)c9r;
}

static void walk_entry(struct walker *w, const char *cdir, const char *dir_id,
		       const char *clear_dir, const char *entry, struct strlist *seen)
{
	char *rel = xasprintf("%s/%s", cdir, entry);
	bool shortened = ends_with(entry, ".c9s");
	char *c9r = NULL;

	if (strlen(entry) < CRY_MIN_ENTRY_NAME_LEN || !(shortened || ends_with(entry, ".c9r"))) {
		problem(w, "%s: not a vault entry", rel);
	} else if (shortened) {
		if (!is_dir(w, rel))
			problem(w, "%s: a .c9s entry that is not a folder", rel);
		else
			c9r = read_long_name(w, rel, entry);
	} else {
		if (strlen(entry) > w->threshold)
			problem(w, "%s: %zu characters, should have been shortened", rel,
				strlen(entry));
		c9r = strdup(entry);
	}
	char *clear = c9r ? decrypt_entry_name(w, rel, dir_id, c9r) : NULL;
	if (clear) {
		if (strlist_contains(seen, clear))
			problem(w, "%s: a second entry with the same name", rel);
		char *path = *clear_dir ? xasprintf("%s/%s", clear_dir, clear) : strdup(clear);
		if (!shortened && !is_dir(w, rel))
			add_file_node(w, rel, path);
		else
			add_node_in_folder(w, rel, path, shortened);
		free(path);
		strlist_push(seen, clear);
	}
	free(c9r);
	free(rel);
}

static void walk_dir(struct walker *w, const char *dir_id, const char *clear_path)
{
	char *cdir = content_dir_of(w, dir_id);
	if (!cdir)
		return;
	if (strlist_contains(&w->content_dirs, cdir)) {
		problem(w, "%s: reached twice (two directories share id %s)", cdir, dir_id);
		free(cdir);
		return;
	}
	strlist_push(&w->content_dirs, cdir);
	if (!is_dir(w, cdir)) {
		problem(w, "%s: content folder of directory '%s' is missing", cdir, clear_path);
		return;
	}
	struct strlist entries = {0}, seen = {0};
	list_folder(w, cdir, &entries);
	bool has_backup = false;
	for (size_t i = 0; i < entries.len; i++) {
		if (strcmp(entries.items[i], "dirid.c9r") == 0)
			has_backup = true;
		else
			walk_entry(w, cdir, dir_id, clear_path, entries.items[i], &seen);
	}
	if (has_backup)
		check_dirid_backup(w, cdir, dir_id);
	else
		problem(w, "%s: no dirid.c9r backup", cdir);
	strlist_free(&entries);
	strlist_free(&seen);
}

/* Every folder d/XX/YYYY... must be the content folder of a reachable directory. */
static void check_orphans(struct walker *w)
{
	struct strlist prefixes = {0};
	if (!list_folder(w, "d", &prefixes))
		return;
	for (size_t i = 0; i < prefixes.len; i++) {
		char *rel = xasprintf("d/%s", prefixes.items[i]);
		struct strlist rests = {0};
		if (!is_dir(w, rel))
			problem(w, "%s: not a folder", rel);
		else if (list_folder(w, rel, &rests))
			for (size_t j = 0; j < rests.len; j++) {
				char *cdir = xasprintf("%s/%s", rel, rests.items[j]);
				if (!strlist_contains(&w->content_dirs, cdir))
					problem(w, "%s: orphaned content folder", cdir);
				free(cdir);
			}
		strlist_free(&rests);
		free(rel);
	}
	strlist_free(&prefixes);
}

/* Only the vault's own files belong at its top (Cryptomator's *.bkup aside). */
static void check_top_level(struct walker *w)
{
	struct strlist top = {0};
	if (!list_folder(w, ".", &top))
		return;
	for (size_t i = 0; i < top.len; i++) {
		const char *n = top.items[i];
		if (strcmp(n, "d") && strcmp(n, "masterkey.cryptomator") &&
		    strcmp(n, "vault.cryptomator") && !ends_with(n, ".bkup"))
			problem(w, "%s: unexpected file at the top of the vault", n);
	}
	strlist_free(&top);
}

static void check_markers_in_file(struct walker *w, const char *rel)
{
	uint8_t *data;
	size_t len;
	int rc = read_whole(w, rel, &data, &len);
	if (rc < 0) {
		problem(w, "%s: cannot read: %s", rel, strerror(-rc));
		return;
	}
	for (size_t m = 0; m < w->n_markers; m++) {
		const uint8_t *hit = memmem(data, len, w->markers[m], strlen(w->markers[m]));
		if (hit)
			problem(w, "%s: holds marker '%s' in clear at offset %zu", rel,
				w->markers[m], (size_t)(hit - data));
	}
	free(data);
}

/* Markers in any stored file's bytes or in any stored name, recursively. */
static void check_markers(struct walker *w, const char *rel)
{
	struct strlist items = {0};
	if (!list_folder(w, rel, &items))
		return;
	for (size_t i = 0; i < items.len; i++) {
		char *child = strcmp(rel, ".") ? xasprintf("%s/%s", rel, items.items[i])
					       : strdup(items.items[i]);
		for (size_t m = 0; m < w->n_markers; m++)
			if (strstr(items.items[i], w->markers[m]))
				problem(w, "%s: name holds marker '%s'", child, w->markers[m]);
		char *path = xasprintf("%s/%s", w->vault, child);
		struct stat st;
		if (lstat(path, &st) < 0)
			problem(w, "%s: cannot stat: %s", child, strerror(errno));
		else if (S_ISDIR(st.st_mode))
			check_markers(w, child);
		else if (S_ISREG(st.st_mode))
			check_markers_in_file(w, child);
		else
			problem(w, "%s: neither a file nor a folder", child);
		free(path);
		free(child);
	}
	strlist_free(&items);
}

static void read_config(struct walker *w)
{
	uint8_t *jwt;
	size_t len;
	struct cry_vault_config cfg;
	int rc = read_whole(w, "vault.cryptomator", &jwt, &len);
	if (rc < 0) {
		problem(w, "vault.cryptomator: cannot read: %s", strerror(-rc));
		return;
	}
	rc = cry_vault_config_parse((char *)jwt, len, w->mk, &cfg);
	if (rc == CRY_OK)
		rc = cry_vault_config_check(&cfg);
	if (rc != CRY_OK)
		problem(w, "vault.cryptomator: %s", cry_strerror(rc));
	else if (cfg.shortening_threshold > 0)
		w->threshold = (size_t)cfg.shortening_threshold;
	free(jwt);
}

static int walk(struct walker *w)
{
	read_config(w);
	check_top_level(w);
	walk_dir(w, "", "");
	check_orphans(w);
	if (w->n_markers)
		check_markers(w, ".");
	strlist_sort(&w->tree);
	for (size_t i = 0; i < w->tree.len; i++)
		puts(w->tree.items[i]);
	return w->problems ? 1 : 0;
}

static char *b64url(const void *data, size_t len)
{
	char *s = cry_b64_encode(data, len, true, false);
	if (!s) {
		perror("umbrafs-walk");
		exit(2);
	}
	return s;
}

/* vault.cryptomator := HS256 JWT of payload under the vault's key enc || mac,
 * written to a temporary file and renamed into place. */
static int resign_config(struct walker *w, const char *payload)
{
	static const char header[] =
		"{\"kid\":\"masterkeyfile:masterkey.cryptomator\",\"typ\":\"JWT\",\"alg\":\"HS256\"}";
	char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
	char *signing_input = xasprintf("%s.%s", h, p);
	uint8_t key[2 * CRY_KEY_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	memcpy(key, w->mk->enc, CRY_KEY_LEN);
	memcpy(key + CRY_KEY_LEN, w->mk->mac, CRY_KEY_LEN);
	bool ok = HMAC(EVP_sha256(), key, sizeof key, (const uint8_t *)signing_input,
		       strlen(signing_input), mac, &mac_len) != NULL;
	OPENSSL_cleanse(key, sizeof key);
	char *sig = ok ? b64url(mac, mac_len) : NULL;
	char *jwt = ok ? xasprintf("%s.%s", signing_input, sig) : NULL;
	char *tmp = xasprintf("%s/vault.cryptomator.walk-tmp", w->vault);
	char *dst = xasprintf("%s/vault.cryptomator", w->vault);
	FILE *f = ok ? fopen(tmp, "w") : NULL;
	if (f) {
		ok = fputs(jwt, f) >= 0;
		ok = fclose(f) == 0 && ok && rename(tmp, dst) == 0;
	}
	if (!f || !ok)
		fprintf(stderr, "umbrafs-walk: cannot write %s: %s\n", dst, strerror(errno));
	int status = f && ok ? 0 : 1;
	free(h);
	free(p);
	free(signing_input);
	free(sig);
	free(jwt);
	free(tmp);
	free(dst);
	return status;
}

/* The first line of the file, without its newline; NULL after a message. */
static char *read_password(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "umbrafs-walk: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		return strdup("");
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

static int unlock(struct walker *w, const char *password_file)
{
	char *password = read_password(password_file);
	if (!password)
		return -1;
	uint8_t *text;
	size_t len;
	int rc = read_whole(w, "masterkey.cryptomator", &text, &len);
	if (rc < 0) {
		fprintf(stderr, "umbrafs-walk: %s/masterkey.cryptomator: %s\n", w->vault,
			strerror(-rc));
	} else {
		rc = cry_masterkey_file_unlock((char *)text, len, password, &w->mk, NULL);
		if (rc != CRY_OK)
			fprintf(stderr, "umbrafs-walk: %s/masterkey.cryptomator: %s\n", w->vault,
				cry_strerror(rc));
		free(text);
	}
	OPENSSL_cleanse(password, strlen(password));
	free(password);
	if (rc == CRY_OK && !(w->names = cry_names_new(w->mk)))
		rc = CRY_ERR_NOMEM;
	return rc == CRY_OK ? 0 : -1;
}

static void usage(void)
{
	fputs("usage: umbrafs-walk --password-file FILE VAULTDIR [--marker STRING]...\n"
	      "       umbrafs-walk --password-file FILE VAULTDIR --resign-config PAYLOADJSON\n",
	      stderr);
}

/* Options into w, *password_file and *payload; false on a usage error. */
static bool parse_args(int argc, char **argv, struct walker *w, const char **password_file,
		       const char **payload)
{
	for (int i = 1; i < argc; i++) {
		bool has_value = i + 1 < argc;
		if (strcmp(argv[i], "--password-file") == 0 && has_value)
			*password_file = argv[++i];
		else if (strcmp(argv[i], "--marker") == 0 && has_value && *argv[i + 1])
			w->markers[w->n_markers++] = argv[++i];
		else if (strcmp(argv[i], "--resign-config") == 0 && has_value)
			*payload = argv[++i];
		else if (argv[i][0] != '-' && !w->vault)
			w->vault = argv[i];
		else
			return false;
	}
	return *password_file && w->vault && !(*payload && w->n_markers);
}

int main(int argc, char **argv)
{
	struct walker w = {.threshold = 220};
	const char *password_file = NULL, *payload = NULL;

	w.markers = calloc((size_t)argc, sizeof *w.markers);
	if (!w.markers) {
		perror("umbrafs-walk");
		return 2;
	}
	int status = 2;
	if (!parse_args(argc, argv, &w, &password_file, &payload))
		usage();
	else if (unlock(&w, password_file) < 0)
		status = 1;
	else
		status = payload ? resign_config(&w, payload) : walk(&w);
	if (w.names)
		cry_names_free(w.names);
	if (w.mk)
		cry_masterkey_free(w.mk);
	strlist_free(&w.tree);
	strlist_free(&w.content_dirs);
	free(w.markers);
	return status;
}
