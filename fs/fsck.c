/* umbrafs fsck: an offline check of a whole vault. It walks the directory
 * tree from the root's dirId and authenticates every entry name in its
 * parent's dirId, every file header and chunk (a chunk at a time, never a
 * whole file in memory), every symlink target and directory id backup; it
 * checks object sizes, long-name hashes and dir.c9r files, and then reports
 * the content folders under d/ that no directory reaches (orphans).
 *
 * Problems are one line each on stdout, naming the store path (cleartext
 * names only with -v). --repair offers only what needs no guessing:
 *  - write a missing, damaged or wrong dirid.c9r again: the folder's place
 *    (d/ + hash of the id) proves which id it must hold;
 *  - remove an orphaned content folder that holds nothing but its dirid.c9r;
 *  - remove an incomplete entry (a folder without its dir.c9r, symlink.c9r or
 *    contents.c9r, left by an interrupted creation: it holds nothing);
 *  - make a directory's lost content folder again, empty (an interrupted
 *    rmdir took it; umbrafs shows that directory as empty already).
 * A lost dir.c9r cannot be rebuilt: nothing in an orphan tells which entry
 * it belonged to. */
#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crypto/cry_content.h"
#include "crypto/cry_err.h"
#include "crypto/cry_file.h"
#include "crypto/cry_mem.h"
#include "fs/commands.h"

#define DIR_FILE_MAX 64
#define LONG_NAME_MAX 4096
#define SMALL_OBJECT_MAX (64 * 1024)
#define PROGRESS_WIDTH 30

/* A directory still to check. */
struct todo {
	char *id;       /* dirId */
	char *entry;    /* store path of the entry that names it ("" for the root) */
	char *clear;    /* cleartext path ("" for the root, else "/a/b"), only with -v */
	struct todo *next;
};

struct progress {
	bool on;              /* stderr is a terminal */
	bool drawn;           /* a bar is on screen */
	uint64_t done, total;
	struct timespec last; /* when it was drawn */
};

struct fsck {
	const struct cli *cli;
	struct vault *v;
	struct store *s;
	void *reached;         /* tsearch set of content folder paths */
	struct todo *todo;     /* stack of directories to check */
	uint64_t problems, repaired;
	uint64_t dirs, files, symlinks, bytes;
	struct progress bar;
	FILE *tty;             /* for --repair questions */
	int fatal;             /* -errno that stops the check (out of memory) */
};

/* ---- output ------------------------------------------------------------------ */

static void progress_clear(struct progress *p)
{
	if (p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = false;
}

static void progress_step(struct progress *p)
{
	struct timespec now;
	uint64_t total;
	unsigned pct, fill;

	p->done++;
	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->drawn && (now.tv_sec - p->last.tv_sec) * 1000 +
				(now.tv_nsec - p->last.tv_nsec) / 1000000 < 100)
		return;
	p->last = now;
	total = p->total > p->done ? p->total : p->done;
	pct = (unsigned)(p->done * 100 / total);
	fill = pct * PROGRESS_WIDTH / 100;
	fprintf(stderr, "\r[%.*s%*s] %3u%% %llu/%llu", (int)fill,
		"##############################", (int)(PROGRESS_WIDTH - fill), "", pct,
		(unsigned long long)p->done, (unsigned long long)total);
	p->drawn = true;
}

/* One problem line: "PATH: what is wrong", plus the cleartext path with -v. */
static void problem(struct fsck *f, const char *path, const char *clear, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct fsck *f, const char *path, const char *clear, const char *fmt, ...)
{
	va_list ap;

	f->problems++;
	progress_clear(&f->bar);
	printf("%s: ", path);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (f->cli->verbose && clear)
		printf(" [%s]", *clear ? clear : "/");
	putchar('\n');
	fflush(stdout);
}

/* --repair: ask "question? [y/N]" on the terminal (--yes: yes). */
static bool ask(struct fsck *f, const char *question)
{
	char answer[16];

	if (!f->cli->repair)
		return false;
	if (f->cli->assume_yes) {
		printf("  repair: %s\n", question);
		return true;
	}
	if (!f->tty)
		f->tty = fopen("/dev/tty", "r+e");
	if (!f->tty) {
		printf("  not repaired: no terminal to ask on (use --yes)\n");
		return false;
	}
	fprintf(f->tty, "  %s? [y/N] ", question);
	fflush(f->tty);
	if (!fgets(answer, sizeof(answer), f->tty))
		return false;
	return answer[0] == 'y' || answer[0] == 'Y';
}

static void repaired(struct fsck *f, const char *path, int rc)
{
	if (rc) {
		printf("  %s: repair failed: %s\n", path, strerror(-rc));
		return;
	}
	f->repaired++;
	printf("  %s: repaired\n", path);
}

/* ---- small helpers --------------------------------------------------------------- */

static char *join(struct fsck *f, const char *dir, const char *name)
{
	char *p = vault_join(dir, name);

	if (!p)
		f->fatal = -ENOMEM;
	return p;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool exists(struct fsck *f, const char *path)
{
	struct store_attr a;

	return store_getattr(f->s, path, &a) == 0;
}

/* Read and authenticate a whole small object into a malloc'd *out: 0;
 * -errno when the store cannot read it; NOT_AUTHENTIC with *why set. */
#define NOT_AUTHENTIC 1
static int read_small(struct fsck *f, const char *path, char **out, size_t *len,
		      const char **why)
{
	uint8_t *obj;
	size_t obj_len;
	int rc = store_read_all(f->s, path, SMALL_OBJECT_MAX, &obj, &obj_len);

	*out = NULL;
	*len = 0;
	if (rc)
		return rc;
	rc = cry_file_decrypt(f->v->mk, obj, obj_len, (uint8_t **)out, len);
	free(obj);
	if (rc == CRY_ERR_NOMEM) {
		f->fatal = -ENOMEM;
		return -ENOMEM;
	}
	*why = cry_strerror(rc);
	return rc ? NOT_AUTHENTIC : 0;
}

static void free_clear(char *text, size_t len)
{
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
}

/* ---- the objects of one directory ---------------------------------------------- */

static void check_file(struct fsck *f, const char *path, const char *clear)
{
	struct cry_file_header *h = cry_secure_alloc(sizeof(*h));
	uint8_t *chunk = malloc(CRY_CHUNK_CIPHER), *plain = malloc(CRY_CHUNK_PLAIN);
	struct store_obj *o = NULL;
	struct store_attr a;
	uint64_t clear_size, off, idx;
	ssize_t got;
	int rc;

	if (!h || !chunk || !plain) {
		f->fatal = -ENOMEM;
		goto out;
	}
	rc = store_open(f->s, path, STORE_O_RDONLY, &o);
	if (!rc)
		rc = store_fgetattr(o, &a);
	if (rc) {
		problem(f, path, clear, "cannot read: %s", strerror(-rc));
		goto out;
	}
	if (cry_cleartext_size(a.size, &clear_size) != CRY_OK) {
		problem(f, path, clear, "size %llu is not the size of a valid file object (truncated?)",
			(unsigned long long)a.size);
		goto out;
	}
	got = store_pread(o, chunk, CRY_HEADER_LEN, 0);
	if (got != CRY_HEADER_LEN || cry_header_decrypt(f->v->mk, chunk, h) != CRY_OK) {
		problem(f, path, clear, "file header does not authenticate");
		goto out;
	}
	for (off = CRY_HEADER_LEN, idx = 0; off < a.size; off += (uint64_t)got, idx++) {
		got = store_pread(o, chunk, CRY_CHUNK_CIPHER, off);
		if (got <= 0) {
			problem(f, path, clear, "cannot read chunk %llu: %s", (unsigned long long)idx,
				got < 0 ? strerror((int)-got) : "the object ended early");
			goto out;
		}
		if (cry_chunk_decrypt(h, idx, chunk, (size_t)got, plain) != CRY_OK) {
			problem(f, path, clear, "chunk %llu (object bytes %llu-%llu) does not authenticate",
				(unsigned long long)idx, (unsigned long long)off,
				(unsigned long long)(off + (uint64_t)got - 1));
			goto out;
		}
	}
	f->bytes += clear_size;
out:
	if (o)
		store_close(o);
	if (plain)
		OPENSSL_cleanse(plain, CRY_CHUNK_PLAIN);
	free(plain);
	free(chunk);
	cry_secure_free(h, sizeof(*h));
}

static void check_symlink(struct fsck *f, const char *path, const char *clear)
{
	const char *why = NULL;
	char *target;
	size_t len;
	int rc = read_small(f, path, &target, &len, &why);

	if (rc == NOT_AUTHENTIC)
		problem(f, path, clear, "symlink target does not authenticate (%s)", why);
	else if (rc && rc != -ENOMEM)
		problem(f, path, clear, "cannot read: %s", strerror(-rc));
	free_clear(target, len);
}

/* dir.c9r names a subdirectory: queue it. */
static void check_dir_file(struct fsck *f, const char *path, const char *clear)
{
	struct todo *t;
	uint8_t *id = NULL;
	size_t len = 0;
	int rc = store_read_all(f->s, path, DIR_FILE_MAX, &id, &len);

	if (rc) {
		problem(f, path, clear, "cannot read: %s", strerror(-rc));
		return;
	}
	if (len != VAULT_DIR_ID_LEN || memchr(id, '\0', len)) {
		problem(f, path, clear, "holds %zu bytes, not a %d-byte directory id", len,
			VAULT_DIR_ID_LEN);
		free(id);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (t)
		t->id = strndup((char *)id, len);
	if (t)
		t->entry = strdup(path);
	if (t && clear)
		t->clear = strdup(clear);
	free(id);
	if (!t || !t->id || !t->entry || (clear && !t->clear)) {
		f->fatal = -ENOMEM;
		if (t) {
			free(t->id);
			free(t->entry);
			free(t->clear);
		}
		free(t);
		return;
	}
	t->next = f->todo;
	f->todo = t;
}

/* The cleartext name of an entry, or NULL (and a problem line). */
static char *entry_name(struct fsck *f, const char *dir_id, const char *c9r, const char *path)
{
	char *name = NULL;
	int rc = cry_name_decrypt(f->v->names, dir_id, c9r, &name);

	if (rc == CRY_ERR_NOMEM)
		f->fatal = -ENOMEM;
	else if (rc)
		problem(f, path, NULL, "name does not decrypt in this directory (%s)",
			cry_strerror(rc));
	return name;
}

/* A long name: path is "<sha1>.c9s/", whose name.c9s holds the .c9r name. */
static char *long_entry_name(struct fsck *f, const char *dir_id, const char *stored,
			     const char *path)
{
	char short_name[CRY_SHORT_NAME_LEN + 1];
	char *file = join(f, path, VAULT_LONG_NAME_FILE), *name = NULL;
	uint8_t *c9r = NULL;
	size_t len;
	int rc = file ? store_read_all(f->s, file, LONG_NAME_MAX, &c9r, &len) : -ENOMEM;

	if (rc == 0 && (memchr(c9r, '\0', len) || !(c9r = realloc(c9r, len + 1))))
		rc = -EINVAL;
	if (rc) {
		if (rc != -ENOMEM)
			problem(f, file, NULL, "cannot read the long name: %s", strerror(-rc));
		goto out;
	}
	c9r[len] = '\0';
	cry_name_shorten((char *)c9r, short_name);
	if (strcmp(short_name, stored) != 0)
		problem(f, file, NULL, "does not hash to its folder's name %s", stored);
	else
		name = entry_name(f, dir_id, (char *)c9r, file);
out:
	free(c9r);
	free(file);
	return name;
}

/* Count one more file, symlink or directory checked. */
static void counted(struct fsck *f, uint64_t *counter)
{
	(*counter)++;
	progress_step(&f->bar);
}

/* Which object a folder entry holds: dir.c9r, symlink.c9r or (long names
 * only) contents.c9r; exactly one of them. */
/* An entry folder with no kind file holds at most its name.c9s: removing it
 * loses nothing (store_rmdir refuses a folder that holds anything else). */
static int remove_incomplete_entry(struct fsck *f, const char *path)
{
	char *name = join(f, path, VAULT_LONG_NAME_FILE);
	int rc = name ? store_unlink(f->s, name) : -ENOMEM;

	free(name);
	return rc && rc != -ENOENT ? rc : store_rmdir(f->s, path);
}

static void check_folder_entry(struct fsck *f, const char *path, bool shortened,
			       const char *clear)
{
	static const char *const kinds[] = { VAULT_DIR_FILE, VAULT_SYMLINK_FILE,
					     VAULT_CONTENTS_FILE };
	char *objects[3] = { NULL, NULL, NULL };
	int found = 0, which = 0, i, n = shortened ? 3 : 2;

	for (i = 0; i < n && !f->fatal; i++) {
		objects[i] = join(f, path, kinds[i]);
		if (objects[i] && exists(f, objects[i])) {
			found++;
			which = i;
		}
	}
	if (f->fatal) {
		/* out of memory: the check stops */
	} else if (found == 0) {
		problem(f, path, clear, "incomplete entry, left by an interrupted creation: it "
			"holds none of dir.c9r, symlink.c9r%s (umbrafs does not show it)",
			shortened ? ", contents.c9r" : "");
		if (ask(f, "remove the incomplete entry"))
			repaired(f, path, remove_incomplete_entry(f, path));
	} else if (found != 1) {
		problem(f, path, clear, "folder holds more than one of dir.c9r, symlink.c9r%s",
			shortened ? ", contents.c9r" : "");
	} else if (which == 0) {
		check_dir_file(f, objects[0], clear);
	} else if (which == 1) {
		counted(f, &f->symlinks);
		check_symlink(f, objects[1], clear);
	} else {
		counted(f, &f->files);
		check_file(f, objects[2], clear);
	}
	for (i = 0; i < n; i++)
		free(objects[i]);
}

static void check_entry(struct fsck *f, const struct todo *d, const char *content,
			const char *stored, bool is_dir)
{
	bool shortened = ends_with(stored, ".c9s");
	char *path, *name, *clear = NULL;

	if (strlen(stored) < CRY_MIN_ENTRY_NAME_LEN || (!shortened && !ends_with(stored, ".c9r")))
		return; /* not a vault entry: readers ignore it too */
	path = join(f, content, stored);
	if (!path)
		return;
	if (shortened && !is_dir) {
		problem(f, path, NULL, "a shortened (.c9s) entry must be a folder");
		free(path);
		return;
	}
	name = shortened ? long_entry_name(f, d->id, stored, path)
			 : entry_name(f, d->id, stored, path);
	if (name && f->cli->verbose && asprintf(&clear, "%s/%s", d->clear, name) < 0) {
		f->fatal = -ENOMEM;
		clear = NULL;
	}
	if (is_dir) {
		check_folder_entry(f, path, shortened, clear);
	} else {
		counted(f, &f->files);
		check_file(f, path, clear);
	}
	free(clear);
	free(name);
	free(path);
}

/* dirid.c9r must decrypt to the id whose hash names the folder. */
static void check_dirid_backup(struct fsck *f, const char *content, const char *id,
			       const char *clear)
{
	char *path = join(f, content, VAULT_DIRID_BACKUP_FILE), *held = NULL;
	const char *why = NULL;
	size_t len = 0;
	bool wrong_id;
	int rc;

	if (!path)
		return;
	rc = read_small(f, path, &held, &len, &why);
	wrong_id = rc == 0 && (len != strlen(id) || memcmp(held, id, len) != 0);
	if (rc == -ENOENT)
		problem(f, path, clear, "missing (the backup of the directory id)");
	else if (rc == NOT_AUTHENTIC)
		problem(f, path, clear, "does not authenticate (%s)", why);
	else if (wrong_id)
		problem(f, path, clear, "holds the id of another directory");
	else if (rc && rc != -ENOMEM)
		problem(f, path, clear, "cannot read: %s", strerror(-rc));
	if ((rc == -ENOENT || rc == NOT_AUTHENTIC || wrong_id) &&
	    ask(f, "write dirid.c9r again from the directory's id"))
		repaired(f, path, vault_write_small(f->v, path, id, strlen(id)));
	free_clear(held, len);
	free(path);
}

/* ---- directories ------------------------------------------------------------------ */

struct listing {
	char **names;
	bool *is_dir;
	size_t count, cap;
};

static int collect(void *ctx, const char *name, bool is_dir)
{
	struct listing *l = ctx;
	char **names;
	bool *dirs;

	if (l->count == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		names = realloc(l->names, l->cap * sizeof(*names));
		if (names)
			l->names = names;
		dirs = names ? realloc(l->is_dir, l->cap * sizeof(*dirs)) : NULL;
		if (!dirs)
			return -ENOMEM;
		l->is_dir = dirs;
	}
	l->names[l->count] = strdup(name);
	if (!l->names[l->count])
		return -ENOMEM;
	l->is_dir[l->count++] = is_dir;
	return 0;
}

static void listing_free(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	free(l->is_dir);
}

/* List a folder whole before looking inside: no store I/O in a callback. */
static int list(struct fsck *f, const char *dir, struct listing *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = store_list(f->s, dir, collect, l);
	if (rc == -ENOMEM)
		f->fatal = rc;
	if (rc)
		listing_free(l);
	return rc;
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Record content as reached; false if it was reached before. Takes content. */
static bool mark_reached(struct fsck *f, char *content)
{
	char **slot = tsearch(content, &f->reached, compare_paths);

	if (!slot) {
		f->fatal = -ENOMEM;
		free(content);
		return false;
	}
	if (*slot != content) {
		free(content);
		return false;
	}
	return true;
}

static void check_dir(struct fsck *f, const struct todo *d)
{
	char *content = vault_content_dir(f->v, d->id);
	struct store_attr a;
	struct listing l;
	size_t i;
	int rc;

	if (!content) {
		f->fatal = -ENOMEM;
		return;
	}
	if (!mark_reached(f, content)) {
		if (!f->fatal)
			problem(f, d->entry, d->clear, "names a directory id that another "
				"directory has too");
		return;
	}
	counted(f, &f->dirs);
	rc = store_getattr(f->s, content, &a);
	if (rc == 0 && !a.is_dir)
		rc = -ENOTDIR;
	if (rc) {
		problem(f, *d->entry ? d->entry : content, d->clear,
			"the directory's content folder %s is missing or unreadable: %s%s", content,
			strerror(-rc), rc == -ENOENT ? " (left by an interrupted rmdir, or lost: "
			"umbrafs shows an empty directory)" : "");
		if (rc == -ENOENT && ask(f, "make its empty content folder again"))
			repaired(f, content, vault_make_content_dir(f->v, d->id, NULL));
		return;
	}
	check_dirid_backup(f, content, d->id, d->clear);
	if (list(f, content, &l) != 0) {
		if (!f->fatal)
			problem(f, content, d->clear, "cannot list the content folder");
		return;
	}
	for (i = 0; i < l.count && !f->fatal; i++)
		if (strcmp(l.names[i], VAULT_DIRID_BACKUP_FILE) != 0)
			check_entry(f, d, content, l.names[i], l.is_dir[i]);
	listing_free(&l);
}

static void todo_free(struct todo *t)
{
	free(t->id);
	free(t->entry);
	free(t->clear);
	free(t);
}

static void walk_tree(struct fsck *f)
{
	struct todo *t = calloc(1, sizeof(*t));

	if (t) {
		t->id = strdup("");
		t->entry = strdup("");
		t->clear = strdup("");
	}
	if (!t || !t->id || !t->entry || !t->clear) {
		f->fatal = -ENOMEM;
		if (t)
			todo_free(t);
		return;
	}
	f->todo = t;
	while (f->todo) {
		t = f->todo;
		f->todo = t->next;
		if (!f->fatal)
			check_dir(f, t);
		todo_free(t);
	}
}

/* ---- orphans ------------------------------------------------------------------------ */

/* An orphan holding nothing but its dirid.c9r carries nothing to recover. */
static bool only_backup_inside(struct fsck *f, const char *path)
{
	struct listing l;
	bool empty;

	if (list(f, path, &l) != 0)
		return false;
	empty = l.count == 0 ||
		(l.count == 1 && strcmp(l.names[0], VAULT_DIRID_BACKUP_FILE) == 0);
	listing_free(&l);
	return empty;
}

static int remove_orphan(struct fsck *f, const char *path)
{
	char *backup = join(f, path, VAULT_DIRID_BACKUP_FILE);
	int rc = backup ? store_unlink(f->s, backup) : -ENOMEM;

	free(backup);
	if (rc == 0 || rc == -ENOENT)
		rc = store_rmdir(f->s, path);
	return rc;
}

static void check_orphan(struct fsck *f, const char *path)
{
	bool empty;

	if (tfind(path, &f->reached, compare_paths))
		return;
	empty = only_backup_inside(f, path);
	problem(f, path, NULL, "orphaned content folder: no directory of the tree names it%s",
		empty ? " (it holds no entries)" : "");
	if (empty && ask(f, "remove the orphaned folder, which holds no entries"))
		repaired(f, path, remove_orphan(f, path));
}

static void find_orphans(struct fsck *f)
{
	struct listing prefixes, folders;
	char *prefix, *path;
	size_t i, j;

	if (list(f, "d", &prefixes) != 0) {
		if (!f->fatal)
			problem(f, "d", NULL, "cannot list the folder of all content folders");
		return;
	}
	for (i = 0; i < prefixes.count && !f->fatal; i++) {
		if (!prefixes.is_dir[i] || strlen(prefixes.names[i]) != 2)
			continue;
		prefix = join(f, "d", prefixes.names[i]);
		if (prefix && list(f, prefix, &folders) == 0) {
			for (j = 0; j < folders.count && !f->fatal; j++) {
				path = folders.is_dir[j] ? join(f, prefix, folders.names[j]) : NULL;
				if (path)
					check_orphan(f, path);
				free(path);
			}
			listing_free(&folders);
		}
		free(prefix);
	}
	listing_free(&prefixes);
}

/* ---- the command ----------------------------------------------------------------- */

static void summary(const struct fsck *f)
{
	printf("checked %llu directories, %llu files (%llu bytes), %llu symlinks: ",
	       (unsigned long long)f->dirs, (unsigned long long)f->files,
	       (unsigned long long)f->bytes, (unsigned long long)f->symlinks);
	if (!f->problems)
		printf("no problems\n");
	else if (f->cli->repair)
		printf("%llu problem%s, %llu repaired\n", (unsigned long long)f->problems,
		       f->problems == 1 ? "" : "s", (unsigned long long)f->repaired);
	else
		printf("%llu problem%s\n", (unsigned long long)f->problems,
		       f->problems == 1 ? "" : "s");
}

int cmd_fsck(const struct cli *c)
{
	struct fsck f = { .cli = c };
	struct vault_counts counts;
	int rc;

	if (c->argc != 1)
		return usage_error("fsck takes one STORE");
	if (c->assume_yes && !c->repair)
		return usage_error("--yes goes with --repair");
	rc = unlock(c, &f.s, &f.v);
	if (rc)
		return rc;
	f.bar.on = isatty(STDERR_FILENO);
	if (f.bar.on && vault_count(f.s, &counts) == 0)
		f.bar.total = counts.directories + counts.files + counts.symlinks;
	walk_tree(&f);
	if (!f.fatal)
		find_orphans(&f);
	progress_clear(&f.bar);
	if (f.fatal) {
		fail("%s: the check stopped: %s", f.s->location, strerror(-f.fatal));
		rc = EXIT_ERROR;
	} else {
		summary(&f);
		rc = f.problems > f.repaired ? EXIT_PROBLEMS : EXIT_OK;
	}
	tdestroy(f.reached, free);
	if (f.tty)
		fclose(f.tty);
	vault_close(f.v);
	store_destroy(f.s);
	return rc;
}
