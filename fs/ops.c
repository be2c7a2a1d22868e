/* FUSE low-level operations. Each handler turns one kernel request into
 * store calls through the node table (inode.c), the name and content ciphers
 * (crypto/) and the chunk I/O of open files (file.c). Errors are replied as
 * errno values; anything the kernel should not see as data (a name or chunk
 * that does not authenticate) is EIO or a hidden entry, plus a log line. */
#include "fs/ops.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/fuse.h> /* the opcodes, for fs_request_is_quick */
#include <stdio.h> /* RENAME_NOREPLACE */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/cry_content.h"
#include "crypto/cry_err.h"
#include "crypto/cry_keys.h"
#include "crypto/cry_mem.h"
#include "backends/cache.h"
#include "fs/conflict.h"
#include "fs/file.h"
#include "fs/log.h"
#include "fs/loop.h"

#define NAME_MAX_BYTES 255
#define SYMLINK_MAX 4095
#define DIR_FILE_MAX 64
#define LONG_NAME_MAX 4096
#define IO_BLOCK_SIZE CRY_CHUNK_PLAIN

#define FULL_LOG_SECONDS 30

/* A full store disk (or cache folder) is logged, at most once every
 * FULL_LOG_SECONDS: the program that gets ENOSPC may not say why, and writes
 * through the page cache fail only at fsync or close. */
static void log_store_full(struct fs *fs, int err)
{
	int_fast64_t now = (int_fast64_t)time(NULL);
	int_fast64_t last = atomic_load(&fs->full_logged_at);
	const struct store *s = fs->vault->store;

	if (now - last < FULL_LOG_SECONDS ||
	    !atomic_compare_exchange_strong(&fs->full_logged_at, &last, now))
		return;
	log_err("%s%s: %s: writes fail until space is freed",
		store_is_cache(s) ? "cache folder of " : "", s->location, strerror(err));
}

/* Reply an error that may come from the store (constant answers use
 * fuse_reply_err). */
static void reply_err(fuse_req_t req, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		log_store_full(fuse_req_userdata(req), err);
	fuse_reply_err(req, err);
}

/* Every handler finds its file system here, which makes it the place to
 * count activity for the idle unmount. */
static struct fs *fs_of(fuse_req_t req)
{
	struct fs *fs = fuse_req_userdata(req);

	atomic_fetch_add_explicit(&fs->requests, 1, memory_order_relaxed);
	return fs;
}

static struct node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return node_get(fs_of(req)->nodes, ino);
}

/* ---- attributes ---------------------------------------------------------- */

/* Cleartext size of a file object; a damaged size shows as the whole chunks
 * it has (open then fails with EIO and a log line). */
static uint64_t clear_size(uint64_t obj_size)
{
	uint64_t n;

	if (cry_cleartext_size(obj_size, &n) == CRY_OK)
		return n;
	if (obj_size < CRY_HEADER_LEN)
		return 0;
	return (obj_size - CRY_HEADER_LEN) / CRY_CHUNK_CIPHER * CRY_CHUNK_PLAIN;
}

/* The inode number users see must last while the file does, as on ext4:
 * tar compares a directory's st_ino before and after extracting into it, du
 * counts a directory once per st_ino, git keeps it in its index. A node does
 * not last (the kernel forgets nodes under memory pressure), so the number
 * comes from the store: the local folder's inode number of the object (which
 * a rename moves along), else for a directory a hash of its directory id. A
 * file on a remote store keeps its node's number while the kernel holds it. */
static uint64_t lasting_ino(const struct node *n, const struct store_attr *a)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	if (a->ino)
		return a->ino;
	if (n->kind != NODE_DIR)
		return n->ino;
	if (!n->dir_id[0])
		return FUSE_ROOT_ID;
	for (const char *p = n->dir_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h <= FUSE_ROOT_ID ? h + 2 : h;
}

static void fill_stat(const struct node *n, const struct store_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = lasting_ino(n, a);
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
	st->st_blksize = IO_BLOCK_SIZE;
	st->st_blocks = a->blocks;
	switch (n->kind) {
	case NODE_DIR:
		st->st_mode = S_IFDIR | (a->mode & 07777);
		st->st_nlink = 2;
		st->st_size = (off_t)a->size;
		break;
	case NODE_SYMLINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)clear_size(a->size);
		break;
	default:
		st->st_mode = S_IFREG | (a->mode & 07777);
		st->st_nlink = n->parent ? 1 : 0; /* 0: open but unlinked */
		st->st_size = (off_t)clear_size(a->size);
	}
}

/* The attributes kept of n's open object (false: it has none). Reads and
 * writes hold n->lock across store requests (a whole fetch or upload on a
 * remote store), and so may the store's handle of the object: stat waits
 * for neither. What it answers is the file as it was before or after a
 * change in progress, never halfway. */
static bool open_file_stat(struct node *n, struct stat *st, int *rc)
{
	struct store_attr a;
	uint64_t size;
	bool kept;

	pthread_mutex_lock(&n->attr_lock);
	kept = n->of_attr_kept;
	*rc = n->of_attr_err;
	a = n->of_attr;
	size = n->of_size;
	pthread_mutex_unlock(&n->attr_lock);
	if (kept && !*rc) {
		fill_stat(n, &a, st);
		st->st_size = (off_t)size;
	}
	return kept;
}

/* Attributes of n: from its open object when it has one (this also serves
 * files that are open but unlinked), else from the store. */
static int node_stat(struct fs *fs, struct node *n, struct stat *st)
{
	struct store_attr a, kept;
	bool removed;
	char *path, *entry;
	int rc;

	if (n->kind == NODE_FILE && open_file_stat(n, st, &rc))
		return rc;
	node_table_lock(fs->nodes);
	path = node_attr_path(n);
	entry = n->kind == NODE_DIR ? node_entry_path(n, NULL) : NULL;
	removed = n->removed_attr_kept;
	if (removed)
		kept = n->removed_attr;
	node_table_unlock(fs->nodes);
	rc = path ? store_getattr(fs->vault->store, path, &a) : n->parent ? -ENOMEM : -ENOENT;
	if (rc == -ENOENT && n->kind == NODE_DIR) {
		if (entry) /* an interrupted rmdir took the content folder: the entry's */
			rc = store_getattr(fs->vault->store, entry, &a);
		else if (removed) {
			a = kept;
			rc = 0;
		}
	}
	if (!rc) {
		fill_stat(n, &a, st);
		if (removed)
			st->st_nlink = 0;
	}
	free(path);
	free(entry);
	return rc;
}

/* ---- entries ---------------------------------------------------------------- */

/* What a parent's content folder holds under one entry name. */
struct entry {
	struct vault_entry_name name;
	char *path;           /* parent content folder + stored name */
	enum node_kind kind;
	bool exists;
	bool incomplete;      /* a folder without its kind's file, left by an interrupted
			       * mkdir or symlink: absent to lookups, cleared on creation */
};

static void entry_free(struct entry *e)
{
	vault_entry_name_free(&e->name);
	free(e->path);
}

static bool store_has(struct fs *fs, const char *dir, const char *leaf)
{
	struct store_attr a;
	char *path = vault_join(dir, leaf);
	bool has = path && store_getattr(fs->vault->store, path, &a) == 0;

	free(path);
	return has;
}

/* The kind of the entry at path, which the store reported as a folder
 * (is_dir) or an object; -ENOENT for a folder without its kind's file (an
 * interrupted creation), -EIO for a .c9s object that is not a folder. */
static int entry_kind(struct fs *fs, const char *path, bool is_dir, bool shortened,
		      enum node_kind *kind)
{
	if (!is_dir) {
		*kind = NODE_FILE;
		return shortened ? -EIO : 0;
	}
	if (store_has(fs, path, VAULT_DIR_FILE))
		*kind = NODE_DIR;
	else if (store_has(fs, path, VAULT_SYMLINK_FILE))
		*kind = NODE_SYMLINK;
	else if (shortened && store_has(fs, path, VAULT_CONTENTS_FILE))
		*kind = NODE_FILE;
	else
		return -ENOENT;
	return 0;
}

/* Resolve name in parent, written in one normal form: encrypted name, store
 * path, and whether (and as what) it exists. */
static int entry_get_form(struct fs *fs, struct node *parent, const char *name,
			  enum cry_name_form form, struct entry *e)
{
	struct store_attr a;
	int rc;

	memset(e, 0, sizeof(*e));
	rc = vault_entry_name(fs->vault, parent->dir_id, name, form, &e->name);
	if (rc)
		return rc;
	e->path = vault_join(parent->content_dir, e->name.stored);
	if (!e->path) {
		entry_free(e);
		return -ENOMEM;
	}
	rc = store_getattr(fs->vault->store, e->path, &a);
	if (rc == -ENOENT)
		return 0;
	if (!rc)
		rc = entry_kind(fs, e->path, a.is_dir, e->name.shortened, &e->kind);
	if (rc == -ENOENT) {
		e->incomplete = true;
		return 0;
	}
	if (rc == -EIO)
		log_err("%s: damaged entry (neither file, directory nor symlink)", e->path);
	if (rc) {
		entry_free(e);
		return rc;
	}
	e->exists = true;
	return 0;
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Resolve name in parent. New entries are NFC; an existing one is also
 * looked for in NFD, as some tools store names that way. */
static int entry_get(struct fs *fs, struct node *parent, const char *name, struct entry *e)
{
	struct entry nfd;
	int rc;

	if (strlen(name) > NAME_MAX_BYTES)
		return -ENAMETOOLONG;
	rc = entry_get_form(fs, parent, name, CRY_NAME_NFC, e);
	if (rc || e->exists || is_ascii(name)) /* ASCII is the same in every form */
		return rc;
	rc = entry_get_form(fs, parent, name, CRY_NAME_NFD, &nfd);
	if (rc || !nfd.exists) {
		if (!rc)
			entry_free(&nfd);
		return rc;
	}
	entry_free(e);
	*e = nfd;
	return 0;
}

/* The directory id stored in a directory entry's dir.c9r. */
static int read_dir_id(struct fs *fs, const char *entry_path, char id[VAULT_DIR_ID_LEN + 1])
{
	char *path = vault_join(entry_path, VAULT_DIR_FILE);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = path ? store_read_all(fs->vault->store, path, DIR_FILE_MAX, &buf, &len) : -ENOMEM;

	if (!rc && (len != VAULT_DIR_ID_LEN || memchr(buf, '\0', len) || memchr(buf, '/', len))) {
		log_err("%s: not a directory id (%zu bytes)", path, len);
		rc = -EIO;
	}
	if (!rc) {
		memcpy(id, buf, len);
		id[len] = '\0';
	}
	free(buf);
	free(path);
	return rc == -EFBIG ? -EIO : rc;
}

/* Count one kernel lookup of the existing entry e of parent, creating its
 * node when the kernel did not know it; fills *st. */
static int entry_to_node(struct fs *fs, struct node *parent, const struct entry *e,
			 struct node **out, struct stat *st)
{
	char id[VAULT_DIR_ID_LEN + 1] = "";
	char *content_dir = NULL;
	struct node *n;
	bool created;
	int rc;

	if (e->kind == NODE_DIR) {
		rc = read_dir_id(fs, e->path, id);
		if (!rc && !(content_dir = vault_content_dir(fs->vault, id)))
			rc = -ENOMEM;
		if (rc)
			return rc;
	}
	node_table_lock(fs->nodes);
	n = node_lookup(fs->nodes, parent, e->name.stored, e->name.shortened, &created);
	if (n && created) {
		n->kind = e->kind;
		memcpy(n->dir_id, id, sizeof(id));
		n->content_dir = content_dir;
		content_dir = NULL;
	}
	node_table_unlock(fs->nodes);
	free(content_dir);
	if (!n)
		return -ENOMEM;
	rc = node_stat(fs, n, st);
	if (rc) {
		node_table_lock(fs->nodes);
		node_forget(fs->nodes, n, 1);
		node_table_unlock(fs->nodes);
		return rc;
	}
	*out = n;
	return 0;
}

static void reply_entry(fuse_req_t req, struct fs *fs, struct node *n, const struct stat *st)
{
	struct fuse_entry_param ep = {
		.ino = n->ino,
		.attr = *st,
		.attr_timeout = fs->timeout,
		.entry_timeout = fs->timeout,
	};

	fuse_reply_entry(req, &ep);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino), *n;
	struct entry e;
	struct stat st;
	int rc = entry_get(fs, parent, name, &e);

	if (rc)
		goto fail;
	if (!e.exists) {
		/* a negative entry the kernel may cache like a positive one */
		struct fuse_entry_param ep = { .ino = 0, .entry_timeout = fs->timeout };

		entry_free(&e);
		fuse_reply_entry(req, &ep);
		return;
	}
	rc = entry_to_node(fs, parent, &e, &n, &st);
	entry_free(&e);
	if (rc)
		goto fail;
	reply_entry(req, fs, n, &st);
	return;
fail: /* a name that is not UTF-8 cannot exist; making one fails with EILSEQ */
	reply_err(req, rc == -EILSEQ ? ENOENT : -rc);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fs_of(req);

	node_table_lock(fs->nodes);
	node_forget(fs->nodes, node_get(fs->nodes, ino), nlookup);
	node_table_unlock(fs->nodes);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fs_of(req);
	size_t i;

	node_table_lock(fs->nodes);
	for (i = 0; i < count; i++)
		node_forget(fs->nodes, node_get(fs->nodes, forgets[i].ino), forgets[i].nlookup);
	node_table_unlock(fs->nodes);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	int rc = node_stat(fs, node_of(req, ino), &st);

	(void)fi;
	if (rc)
		reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->timeout);
}

/* ---- open files ---------------------------------------------------------- */

/* Lock n's content I/O, to read or to change it. A slow request (a large
 * read or write, an fsync, anything on a remote store) may hold it across
 * store requests: then the reading of requests goes on in another thread
 * while this one waits (loop.h). */
static void node_lock_for_read(struct node *n)
{
	if (pthread_rwlock_tryrdlock(&n->lock) != 0) {
		loop_hand_over();
		pthread_rwlock_rdlock(&n->lock);
	}
}

static void node_lock_for_change(struct node *n)
{
	if (pthread_rwlock_trywrlock(&n->lock) != 0) {
		loop_hand_over();
		pthread_rwlock_wrlock(&n->lock);
	}
}

/* The same for n's open_lock, held across a whole open or close. */
static void node_lock_open_state(struct node *n)
{
	if (pthread_mutex_trylock(&n->open_lock) != 0) {
		loop_hand_over();
		pthread_mutex_lock(&n->open_lock);
	}
}

/* Keep the attributes of n's open object for stat (n->lock held for
 * writing: nothing changes them meanwhile). */
static void keep_open_attr(struct node *n)
{
	struct store_attr a;
	int rc = store_fgetattr(n->of->obj, &a);

	pthread_mutex_lock(&n->attr_lock);
	n->of_attr_kept = true;
	n->of_attr_err = rc;
	if (!rc)
		n->of_attr = a;
	n->of_size = n->of->size;
	pthread_mutex_unlock(&n->attr_lock);
}

/* Let go of n->lock, held for writing across a change of n's open object
 * (if any): stat answers what the change left from here on. */
static void unlock_after_change(struct node *n)
{
	if (n->of)
		keep_open_attr(n);
	pthread_rwlock_unlock(&n->lock);
}

/* Is of, n's object, as it was when its last handle closed? Under n->open_lock. */
static bool unchanged_since_close(struct node *n, struct open_file *of)
{
	struct store_attr a;

	return n->closed_seen && store_fgetattr(of->obj, &a) == 0 &&
	       a.size == n->closed_size && a.mtime.tv_sec == n->closed_mtime.tv_sec &&
	       a.mtime.tv_nsec == n->closed_mtime.tv_nsec;
}

/* Count an open handle of n, opening its object on the first one: made (may
 * be NULL; taken over, and closed if n has an object already) is one that
 * op_create just made. The object is opened under n->open_lock only, so
 * that a stat of n does not wait for its header to be fetched.
 * keep_cache (may be NULL): may the kernel keep its cached pages of n? Yes
 * while other handles are open (all writes pass through us) or when the
 * object did not change since the last close. */
static int node_open(struct fs *fs, struct node *n, int flags, struct open_file *made,
		     bool *keep_cache)
{
	struct open_file *of = NULL;
	bool unchanged = true;
	char *path;
	int rc = 0;

	node_table_lock(fs->nodes);
	n->opens++;
	path = node_object_path(n);
	node_table_unlock(fs->nodes);
	node_lock_open_state(n);
	if (!n->of) {
		if (made) {
			of = made;
			made = NULL;
		} else {
			rc = path ? file_open(fs->vault, path, false, &of) : -ENOENT;
		}
		unchanged = !rc && unchanged_since_close(n, of);
	}
	if (of) {
		node_lock_for_change(n);
		n->of = of;
		unlock_after_change(n);
	}
	pthread_mutex_unlock(&n->open_lock);
	/* our handle keeps n->of open from here on */
	if (!rc && (flags & O_TRUNC)) {
		node_lock_for_change(n);
		rc = file_truncate(n, 0);
		unlock_after_change(n);
	}
	if (keep_cache)
		*keep_cache = unchanged;
	file_close(made);
	free(path);
	return rc;
}

/* Drop an open handle of n, closing its object with the last one. The table
 * lock is not held meanwhile: closing may wait for the store (an upload of
 * the object on a remote store). */
static void node_close(struct fs *fs, struct node *n)
{
	struct open_file *of;
	struct store_attr a;

	node_lock_open_state(n);
	node_table_lock(fs->nodes);
	of = n->opens == 1 ? n->of : NULL; /* opens counts handles being opened too */
	node_table_unlock(fs->nodes);
	if (of) { /* no other handle: n->lock is held for a setattr at most */
		node_lock_for_change(n);
		n->of = NULL;
		pthread_rwlock_unlock(&n->lock);
		n->closed_seen = store_fgetattr(of->obj, &a) == 0;
		n->closed_size = a.size;
		n->closed_mtime = a.mtime;
		file_close(of);
		pthread_mutex_lock(&n->attr_lock);
		n->of_attr_kept = false;
		pthread_mutex_unlock(&n->attr_lock);
	}
	pthread_mutex_unlock(&n->open_lock);
	node_table_lock(fs->nodes);
	node_release(fs->nodes, n);
	node_table_unlock(fs->nodes);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *n = node_of(req, ino);
	bool keep_cache;
	int rc;

	if (n->kind != NODE_FILE) {
		fuse_reply_err(req, n->kind == NODE_DIR ? EISDIR : ELOOP);
		return;
	}
	rc = node_open(fs, n, fi->flags, NULL, &keep_cache);

	if (rc) {
		node_close(fs, n);
		reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)n;
	fi->keep_cache = keep_cache;
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	node_close(fs_of(req), (struct node *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	ssize_t got;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	node_lock_for_read(n);
	got = file_read(n, buf, size, (uint64_t)off);
	pthread_rwlock_unlock(&n->lock);
	if (got < 0)
		reply_err(req, (int)-got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
	cry_wipe_free(buf, size); /* cleartext does not linger in freed heap */
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	ssize_t put;

	(void)ino;
	node_lock_for_change(n);
	if ((uint64_t)off > n->of->size + CRY_CHUNK_PLAIN)
		loop_hand_over(); /* the gap is filled with encrypted zeros first */
	put = file_write(n, buf, size, (uint64_t)off);
	unlock_after_change(n);
	if (put < 0)
		reply_err(req, (int)-put);
	else
		fuse_reply_write(req, (size_t)put);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	node_lock_for_change(n);
	rc = file_fsync(n, datasync);
	unlock_after_change(n); /* an upload may give the object the server's mtime */
	reply_err(req, -rc);
}

/* ---- attributes: setattr ----------------------------------------------------- */

static int truncate_node(struct fs *fs, struct node *n, uint64_t size)
{
	int rc;

	if (n->kind != NODE_FILE)
		return n->kind == NODE_DIR ? -EISDIR : -EINVAL;
	rc = node_open(fs, n, 0, NULL, NULL);
	if (!rc) {
		node_lock_for_change(n);
		if (size > n->of->size + CRY_CHUNK_PLAIN)
			loop_hand_over(); /* growing: encrypted zeros up to size */
		rc = file_truncate(n, size);
		unlock_after_change(n);
	}
	node_close(fs, n);
	return rc;
}

static void timespec_now_or(struct timespec *ts, bool now, const struct timespec *given)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, ts);
	else
		*ts = *given;
}

static int set_store_attrs(struct fs *fs, struct node *n, const struct stat *attr, int to_set)
{
	struct store_attr a = { .mode = attr->st_mode & 07777, .uid = attr->st_uid,
				.gid = attr->st_gid };
	int set = 0, rc;
	char *path;

	if ((to_set & FUSE_SET_ATTR_MODE) && n->kind != NODE_SYMLINK)
		set |= STORE_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		set |= STORE_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		set |= STORE_SET_GID;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		set |= STORE_SET_ATIME;
		timespec_now_or(&a.atime, to_set & FUSE_SET_ATTR_ATIME_NOW, &attr->st_atim);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		set |= STORE_SET_MTIME;
		timespec_now_or(&a.mtime, to_set & FUSE_SET_ATTR_MTIME_NOW, &attr->st_mtim);
	}
	if (!set)
		return 0;
	if (n->kind == NODE_FILE) { /* through the open object: it may have no path */
		node_lock_for_change(n);
		rc = n->of ? store_fsetattr(n->of->obj, &a, set) : -ENOENT;
		unlock_after_change(n);
		if (rc != -ENOENT)
			return rc;
	}
	node_table_lock(fs->nodes);
	path = node_attr_path(n);
	node_table_unlock(fs->nodes);
	if (!path)
		return n->parent ? -ENOMEM : -ENOENT;
	rc = store_setattr(fs->vault->store, path, &a, set);
	free(path);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *n = node_of(req, ino);
	struct stat st;
	int rc = 0;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE)
		rc = truncate_node(fs, n, (uint64_t)attr->st_size);
	if (!rc)
		rc = set_store_attrs(fs, n, attr, to_set);
	if (!rc)
		rc = node_stat(fs, n, &st);
	if (rc)
		reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->timeout);
}

/* ---- making nodes ------------------------------------------------------------ */

/* Mode and, when running as root, owner of a new node's attribute holder at
 * path. As on ext4, a node made in a set-group-ID directory takes the
 * directory's group, and a new directory there is set-group-ID too. */
static int set_new_attrs(struct fs *fs, fuse_req_t req, struct node *parent, const char *path,
			 mode_t mode, enum node_kind kind)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct store_attr a = { .mode = mode & 07777, .uid = ctx->uid, .gid = ctx->gid }, pa;
	int set = (kind != NODE_SYMLINK ? STORE_SET_MODE : 0) |
		  (fs->chown_new ? STORE_SET_UID | STORE_SET_GID : 0);

	if (fs->chown_new && store_getattr(fs->vault->store, parent->content_dir, &pa) == 0 &&
	    (pa.mode & S_ISGID)) {
		a.gid = pa.gid;
		if (kind == NODE_DIR)
			a.mode |= S_ISGID;
	}
	return set ? store_setattr(fs->vault->store, path, &a, set) : 0;
}

/* The folder of a new directory, symlink or shortened entry, with name.c9s;
 * nothing is left when that fails (a full disk). */
static int make_entry_folder(struct fs *fs, const struct entry *e)
{
	char *path;
	int rc = store_mkdir(fs->vault->store, e->path);

	if (rc || !e->name.shortened)
		return rc;
	loop_hand_over(); /* name.c9s is written durably: two fsyncs */
	path = vault_join(e->path, VAULT_LONG_NAME_FILE);
	rc = path ? store_write_all(fs->vault->store, path, e->name.c9r, strlen(e->name.c9r))
		  : -ENOMEM;
	free(path);
	if (rc)
		store_rmdir(fs->vault->store, e->path);
	return rc;
}

/* Remove an entry folder emptied of its leaf file: name.c9s, then the folder. */
static int remove_entry_folder(struct fs *fs, const struct entry *e)
{
	char *path;

	if (e->name.shortened) {
		path = vault_join(e->path, VAULT_LONG_NAME_FILE);
		if (!path)
			return -ENOMEM;
		store_unlink(fs->vault->store, path);
		free(path);
	}
	return store_rmdir(fs->vault->store, e->path);
}

/* Remove what make_entry_folder and the kind's leaf file made. */
static int remove_entry(struct fs *fs, const struct entry *e)
{
	static const char *const leaf[] = {
		[NODE_FILE] = VAULT_CONTENTS_FILE,
		[NODE_DIR] = VAULT_DIR_FILE,
		[NODE_SYMLINK] = VAULT_SYMLINK_FILE,
	};
	char *path;
	int rc;

	if (e->kind == NODE_FILE && !e->name.shortened)
		return store_unlink(fs->vault->store, e->path);
	path = vault_join(e->path, leaf[e->kind]);
	rc = path ? store_unlink(fs->vault->store, path) : -ENOMEM;
	free(path);
	return rc && rc != -ENOENT ? rc : remove_entry_folder(fs, e);
}

/* Lookup-count the entry just made and reply it. */
static void reply_new_entry(fuse_req_t req, struct fs *fs, struct node *parent,
			    struct entry *e)
{
	struct node *n;
	struct stat st;
	int rc;

	e->exists = true;
	rc = entry_to_node(fs, parent, e, &n, &st);
	if (rc)
		reply_err(req, -rc);
	else
		reply_entry(req, fs, n, &st);
}

/* Remove the leftovers of an interrupted creation under e's name, so that
 * the name can be used again. On failure e is freed. */
static int clear_incomplete(struct fs *fs, struct entry *e)
{
	int rc;

	if (!e->incomplete)
		return 0;
	log_info("%s: removing an incomplete entry left by an interrupted operation", e->path);
	rc = remove_entry_folder(fs, e);
	if (rc) {
		log_err("%s: cannot remove an incomplete entry: %s", e->path, strerror(-rc));
		entry_free(e);
		return -EIO;
	}
	e->incomplete = false;
	return 0;
}

/* Resolve name in parent for making a node there: -EEXIST if present. */
static int entry_new(struct fs *fs, struct node *parent, const char *name, struct entry *e)
{
	int rc = entry_get(fs, parent, name, e);

	if (!rc && e->exists) {
		entry_free(e);
		return -EEXIST;
	}
	return rc ? rc : clear_incomplete(fs, e);
}

/* store_list callback: stop (1) at the first entry other than the directory
 * id backup, which is enough to refuse an rmdir (a large directory is not
 * listed whole). */
static int stop_at_entry_but_backup(void *ctx, const char *name, bool is_dir)
{
	(void)ctx;
	(void)is_dir;
	return strcmp(name, VAULT_DIRID_BACKUP_FILE) != 0;
}

/* Remove an empty directory's content folder (ENOTEMPTY if it holds entries),
 * and its "d/AB" prefix folder when that is left empty. */
static int remove_content_dir(struct fs *fs, const char *content_dir)
{
	struct store *s = fs->vault->store;
	char *path;
	int rc = store_list(s, content_dir, stop_at_entry_but_backup, NULL);

	if (rc == -ENOENT) /* an interrupted rmdir got this far already */
		return 0;
	if (rc)
		return rc < 0 ? rc : -ENOTEMPTY;
	path = vault_join(content_dir, VAULT_DIRID_BACKUP_FILE);
	rc = path ? store_unlink(s, path) : -ENOMEM;
	free(path);
	if (rc && rc != -ENOENT)
		return rc;
	rc = store_rmdir(s, content_dir);
	if (!rc && (path = strdup(content_dir))) {
		path[4] = '\0'; /* "d/AB" */
		store_rmdir(s, path); /* fails while other directories share it */
		free(path);
	}
	return rc;
}

/* The entry of a new directory: its folder, dir.c9r naming id, and the mode
 * and owner on its content folder; nothing is left when a step fails. */
static int make_dir_entry(struct fs *fs, fuse_req_t req, struct node *parent,
			  const struct entry *e, const char *id, const char *content, mode_t mode)
{
	char *dir_file;
	int rc = make_entry_folder(fs, e);

	if (rc)
		return rc;
	dir_file = vault_join(e->path, VAULT_DIR_FILE);
	rc = dir_file ? store_write_all(fs->vault->store, dir_file, id, strlen(id)) : -ENOMEM;
	free(dir_file);
	if (!rc)
		rc = set_new_attrs(fs, req, parent, content, mode, NODE_DIR);
	if (rc)
		remove_entry(fs, e);
	return rc;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino);
	char id[VAULT_DIR_ID_LEN + 1], *content = NULL;
	struct entry e;
	int rc = entry_new(fs, parent, name, &e);

	if (rc) {
		reply_err(req, -rc);
		return;
	}
	e.kind = NODE_DIR;
	rc = cry_uuid_random(id) ? -ENOMEM : 0;
	/* content folder first: an entry never points at a missing folder */
	if (!rc)
		rc = vault_make_content_dir(fs->vault, id, &content);
	if (!rc && (rc = make_dir_entry(fs, req, parent, &e, id, content, mode)) != 0)
		remove_content_dir(fs, content); /* a full disk: no half-made directory */
	if (rc)
		reply_err(req, -rc);
	else
		reply_new_entry(req, fs, parent, &e);
	free(content);
	entry_free(&e);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent_ino,
		       const char *name)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino);
	char *path = NULL;
	struct entry e;
	int rc = strlen(target) > SYMLINK_MAX ? -ENAMETOOLONG : entry_new(fs, parent, name, &e);

	if (rc) {
		reply_err(req, -rc);
		return;
	}
	e.kind = NODE_SYMLINK;
	rc = make_entry_folder(fs, &e);
	if (!rc) {
		path = vault_join(e.path, VAULT_SYMLINK_FILE);
		rc = path ? vault_write_small(fs->vault, path, target, strlen(target)) : -ENOMEM;
		if (!rc)
			rc = set_new_attrs(fs, req, parent, path, 0, NODE_SYMLINK);
		if (rc) /* a full disk: leave no half-made symlink */
			remove_entry(fs, &e);
	}
	if (rc)
		reply_err(req, -rc);
	else
		reply_new_entry(req, fs, parent, &e);
	free(path);
	entry_free(&e);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct node *n = node_of(req, ino);
	char *path, *target = NULL;
	size_t len;
	int rc;

	node_table_lock(fs->nodes);
	path = n->kind == NODE_SYMLINK ? node_object_path(n) : NULL;
	node_table_unlock(fs->nodes);
	if (n->kind != NODE_SYMLINK)
		rc = -EINVAL;
	else
		rc = path ? vault_read_small(fs->vault, path, cry_ciphertext_size(SYMLINK_MAX),
					     &target, &len)
			  : -ENOENT;
	if (!rc && strlen(target) != len) {
		log_err("%s: symlink target holds a NUL byte", path);
		rc = -EIO;
	}
	if (rc)
		reply_err(req, rc == -EFBIG ? EIO : -rc);
	else
		fuse_reply_readlink(req, target);
	free(target);
	free(path);
}

/* Make a regular file: its object and header (in its own folder when the
 * name is long). *of receives the open object. */
static int make_file(struct fs *fs, fuse_req_t req, struct node *parent, struct entry *e,
		     mode_t mode, struct open_file **of)
{
	char *obj = e->name.shortened ? vault_join(e->path, VAULT_CONTENTS_FILE) : strdup(e->path);
	int rc = obj ? 0 : -ENOMEM;

	e->kind = NODE_FILE;
	if (!rc && e->name.shortened)
		rc = make_entry_folder(fs, e);
	if (!rc)
		rc = file_open(fs->vault, obj, true, of);
	if (!rc) {
		rc = set_new_attrs(fs, req, parent, obj, mode, NODE_FILE);
		if (rc) {
			file_close(*of);
			*of = NULL;
		}
	}
	if (rc && rc != -EEXIST && obj)
		remove_entry(fs, e);
	free(obj);
	return rc;
}

static void op_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino), *n = NULL;
	struct open_file *of = NULL;
	struct entry e;
	struct stat st;
	int rc = entry_get(fs, parent, name, &e);

	if (!rc)
		rc = clear_incomplete(fs, &e);
	if (rc)
		goto out;
	if (e.exists && (fi->flags & O_EXCL))
		rc = -EEXIST;
	else if (e.exists && e.kind != NODE_FILE)
		rc = e.kind == NODE_DIR ? -EISDIR : -EEXIST;
	else if (!e.exists)
		rc = make_file(fs, req, parent, &e, mode, &of);
	if (!rc) {
		e.exists = true;
		rc = entry_to_node(fs, parent, &e, &n, &st);
	}
	if (!rc) { /* an old handle of a node by that name may keep its object */
		rc = node_open(fs, n, fi->flags, of, NULL);
		of = NULL;
		if (rc) {
			node_close(fs, n);
			node_table_lock(fs->nodes);
			node_forget(fs->nodes, n, 1);
			node_table_unlock(fs->nodes);
		}
	}
	file_close(of);
	entry_free(&e);
out:
	if (rc) {
		reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param ep = { .ino = n->ino, .attr = st, .attr_timeout = fs->timeout,
				       .entry_timeout = fs->timeout };

	fi->fh = (uintptr_t)n;
	fuse_reply_create(req, &ep, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino);
	struct open_file *of = NULL;
	struct entry e;
	int rc;

	(void)rdev;
	if (!S_ISREG(mode)) { /* the format has no devices, FIFOs or sockets */
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = entry_new(fs, parent, name, &e);
	if (!rc) {
		rc = make_file(fs, req, parent, &e, mode, &of);
		file_close(of);
		if (!rc)
			reply_new_entry(req, fs, parent, &e);
		entry_free(&e);
	}
	if (rc)
		reply_err(req, -rc);
}

/* ---- removing and renaming ------------------------------------------------ */

/* Content folder of the directory entry e (from its node when the kernel
 * knows one, told by *known if not NULL). */
static char *entry_content_dir(struct fs *fs, struct node *parent, const struct entry *e,
			       bool *known)
{
	char id[VAULT_DIR_ID_LEN + 1], *dir = NULL;
	struct node *n;

	node_table_lock(fs->nodes);
	n = node_find(fs->nodes, parent, e->name.stored);
	if (n)
		dir = strdup(n->content_dir);
	node_table_unlock(fs->nodes);
	if (known)
		*known = n;
	if (n)
		return dir;
	return read_dir_id(fs, e->path, id) ? NULL : vault_content_dir(fs->vault, id);
}

/* The entry name of parent is gone from the store: its node, if the kernel
 * knows one, lives on unlinked (a directory's with its last attributes, for
 * fstat of a handle still open on it). */
static void node_gone(struct fs *fs, struct node *parent, const char *stored,
		      const struct store_attr *dir_attr)
{
	struct node *n;

	node_table_lock(fs->nodes);
	n = node_find(fs->nodes, parent, stored);
	if (n && dir_attr) {
		n->removed_attr_kept = true;
		n->removed_attr = *dir_attr;
	}
	if (n)
		node_unlinked(fs->nodes, n);
	node_table_unlock(fs->nodes);
}

/* Remove entry e of parent, and for a directory its content folder first.
 * Under the tree change lock. */
static int remove_node(struct fs *fs, struct node *parent, const struct entry *e)
{
	struct store_attr a;
	bool known, dir_attr = false;
	char *content;
	int rc = 0;

	if (e->kind == NODE_DIR) {
		content = entry_content_dir(fs, parent, e, &known);
		dir_attr = known && content && store_getattr(fs->vault->store, content, &a) == 0;
		rc = content ? remove_content_dir(fs, content) : -EIO;
		free(content);
	}
	if (!rc)
		rc = remove_entry(fs, e);
	if (!rc)
		node_gone(fs, parent, e->name.stored, dir_attr ? &a : NULL);
	return rc;
}

static void remove_op(fuse_req_t req, fuse_ino_t parent_ino, const char *name, bool dir)
{
	struct fs *fs = fs_of(req);
	struct node *parent = node_of(req, parent_ino);
	struct entry e;
	int rc;

	node_tree_change_lock(fs->nodes);
	rc = entry_get(fs, parent, name, &e);
	if (!rc) {
		if (!e.exists)
			rc = -ENOENT;
		else if (dir != (e.kind == NODE_DIR))
			rc = dir ? -ENOTDIR : -EISDIR;
		else
			rc = remove_node(fs, parent, &e);
		entry_free(&e);
	}
	node_tree_change_unlock(fs->nodes);
	reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, true);
}

/* Move entry src to dst (which does not exist, or is a plain file object
 * that src, a plain file object, replaces atomically). */
static int move_entry(struct fs *fs, const struct entry *src, const struct entry *dst)
{
	struct store *s = fs->vault->store;
	bool src_long = src->name.shortened, dst_long = dst->name.shortened;
	char *from = NULL, *to = NULL;
	int rc;

	if (src->kind == NODE_FILE && !src_long && !dst_long)
		return store_rename(s, src->path, dst->path, 0);
	if (src->kind == NODE_FILE && src_long != dst_long) {
		/* the object moves between a bare .c9r and a .c9s folder */
		from = src_long ? vault_join(src->path, VAULT_CONTENTS_FILE) : strdup(src->path);
		to = dst_long ? vault_join(dst->path, VAULT_CONTENTS_FILE) : strdup(dst->path);
		rc = from && to ? 0 : -ENOMEM;
		if (!rc && dst_long)
			rc = make_entry_folder(fs, dst);
		if (!rc)
			rc = store_rename(s, from, to, STORE_RENAME_NOREPLACE);
		if (!rc && src_long)
			remove_entry_folder(fs, src);
		free(from);
		free(to);
		return rc;
	}
	/* a folder entry moves whole; its name.c9s follows the new name */
	rc = store_rename(s, src->path, dst->path, STORE_RENAME_NOREPLACE);
	if (!rc && (dst_long || src_long)) {
		loop_hand_over(); /* a durable write of name.c9s, or its removal */
		to = vault_join(dst->path, VAULT_LONG_NAME_FILE);
		if (!to)
			rc = -ENOMEM;
		else if (dst_long)
			rc = store_write_all(s, to, dst->name.c9r, strlen(dst->name.c9r));
		else
			rc = store_unlink(s, to);
		free(to);
	}
	return rc;
}

/* Can src replace the existing dst? 0, or the errno rename(2) gives. */
static int check_replace(struct fs *fs, struct node *parent, const struct entry *src,
			 const struct entry *dst)
{
	char *content;
	int rc;

	if (src->kind == NODE_DIR && dst->kind != NODE_DIR)
		return -ENOTDIR;
	if (src->kind != NODE_DIR && dst->kind == NODE_DIR)
		return -EISDIR;
	if (dst->kind != NODE_DIR)
		return 0;
	content = entry_content_dir(fs, parent, dst, NULL);
	rc = content ? store_list(fs->vault->store, content, stop_at_entry_but_backup, NULL) : -EIO;
	free(content);
	if (rc == -ENOENT) /* its content folder is gone: empty */
		rc = 0;
	return rc > 0 ? -ENOTEMPTY : rc;
}

/* The store moved src of parent to dst of new_parent: the node of what dst
 * named before is unlinked, src's moves there. */
static int nodes_after_move(struct fs *fs, struct node *parent, const struct entry *src,
			    struct node *new_parent, const struct entry *dst)
{
	struct node *n;
	int rc = 0;

	node_table_lock(fs->nodes);
	n = node_find(fs->nodes, new_parent, dst->name.stored);
	if (n)
		node_unlinked(fs->nodes, n);
	n = node_find(fs->nodes, parent, src->name.stored);
	if (n)
		rc = node_move(fs->nodes, n, new_parent, dst->name.stored, dst->name.shortened);
	node_table_unlock(fs->nodes);
	return rc;
}

/* Under the tree change lock. */
static int rename_locked(struct fs *fs, struct node *parent, const char *name,
			 struct node *new_parent, const char *new_name, unsigned flags)
{
	struct entry src, dst;
	bool atomic_replace;
	int rc;

	rc = entry_get(fs, parent, name, &src);
	if (rc)
		return rc;
	rc = entry_get(fs, new_parent, new_name, &dst);
	if (!rc)
		rc = clear_incomplete(fs, &dst);
	if (rc) {
		entry_free(&src);
		return rc;
	}
	if (!src.exists)
		rc = -ENOENT;
	else if (parent == new_parent && strcmp(src.name.stored, dst.name.stored) == 0)
		rc = 0; /* onto itself */
	else if (dst.exists && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	else {
		rc = dst.exists ? check_replace(fs, new_parent, &src, &dst) : 0;
		atomic_replace = src.kind == NODE_FILE && dst.kind == NODE_FILE &&
				 !src.name.shortened && !dst.name.shortened;
		if (!rc && dst.exists && !atomic_replace)
			rc = remove_node(fs, new_parent, &dst);
		if (!rc)
			rc = move_entry(fs, &src, &dst);
		if (!rc)
			rc = nodes_after_move(fs, parent, &src, new_parent, &dst);
	}
	entry_free(&src);
	entry_free(&dst);
	return rc;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	int rc;

	if (flags & ~(unsigned)RENAME_NOREPLACE) { /* RENAME_EXCHANGE, RENAME_WHITEOUT */
		fuse_reply_err(req, EINVAL);
		return;
	}
	node_tree_change_lock(fs->nodes);
	rc = rename_locked(fs, node_of(req, parent), name, node_of(req, newparent), newname, flags);
	node_tree_change_unlock(fs->nodes);
	reply_err(req, -rc);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM); /* the format has no hard links */
}

/* ---- directories ------------------------------------------------------------ */

struct dir_item {
	char *name;          /* cleartext */
	char *stored;        /* entry name in the content folder; NULL for "." and ".." */
	bool shortened;
	enum node_kind kind;
};

/* A directory's decrypted listing, taken at opendir and served by readdir. */
struct dir_listing {
	struct dir_item *items;
	size_t count, cap;
	struct dir_listing *prev, *next; /* in fs->open_dirs once opened */
};

/* Make room for one more item; the new item is zeroed. */
static struct dir_item *listing_grow(struct dir_listing *l)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dir_item *items = realloc(l->items, cap * sizeof(*items));

		if (!items)
			return NULL;
		l->items = items;
		l->cap = cap;
	}
	memset(&l->items[l->count], 0, sizeof(l->items[0]));
	return &l->items[l->count++];
}

/* store_list callback: the folder's vault entries, by stored name only
 * (kind: NODE_DIR for folders, told apart later). */
static int collect_raw(void *ctx, const char *name, bool is_dir)
{
	struct dir_item *it;
	size_t n = strlen(name);

	if (n < CRY_MIN_ENTRY_NAME_LEN ||
	    (strcmp(name + n - 4, ".c9r") != 0 && strcmp(name + n - 4, ".c9s") != 0) ||
	    strcmp(name, VAULT_DIRID_BACKUP_FILE) == 0)
		return 0;
	it = listing_grow(ctx);
	if (!it || !(it->stored = strdup(name)))
		return -ENOMEM;
	it->kind = is_dir ? NODE_DIR : NODE_FILE;
	return 0;
}

/* The encrypted .c9r name behind a .c9s entry, checked against its hash. */
static int long_name(struct fs *fs, const char *path, const char *stored, char **c9r)
{
	char *file = vault_join(path, VAULT_LONG_NAME_FILE);
	char expect[CRY_SHORT_NAME_LEN + 1];
	uint8_t *buf = NULL;
	size_t len;
	int rc = file ? store_read_all(fs->vault->store, file, LONG_NAME_MAX, &buf, &len) : -ENOMEM;

	free(file);
	if (rc)
		return rc;
	*c9r = strndup((char *)buf, len);
	free(buf);
	if (!*c9r)
		return -ENOMEM;
	cry_name_shorten(*c9r, expect);
	if (strlen(*c9r) != len || strcmp(expect, stored) != 0) {
		free(*c9r);
		*c9r = NULL;
		return -EIO;
	}
	return 0;
}

/* Decrypt the name of a raw item of dir and tell its kind. -EIO (logged by
 * the caller) for an entry that does not authenticate. */
static int resolve_item(struct fs *fs, struct node *dir, struct dir_item *it)
{
	char *path = vault_join(dir->content_dir, it->stored), *c9r = NULL;
	bool is_dir = it->kind == NODE_DIR;
	int rc = path ? 0 : -ENOMEM;

	it->shortened = strcmp(it->stored + strlen(it->stored) - 4, ".c9s") == 0;
	if (!rc && it->shortened)
		rc = is_dir ? long_name(fs, path, it->stored, &c9r) : -EIO;
	if (!rc)
		rc = entry_kind(fs, path, is_dir, it->shortened, &it->kind);
	if (!rc) {
		rc = cry_name_decrypt(fs->vault->names, dir->dir_id, c9r ? c9r : it->stored,
				      &it->name);
		rc = rc == CRY_ERR_NOMEM ? -ENOMEM : rc ? -EIO : 0;
	}
	if (rc == -EIO)
		log_err("%s: cannot decrypt name or entry: left out of the listing", path);
	free(c9r);
	free(path);
	return rc;
}

static void listing_free(struct dir_listing *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->count; i++) {
		free(l->items[i].name);
		free(l->items[i].stored);
	}
	free(l->items);
	free(l);
}

static int add_dot(struct dir_listing *l, const char *name)
{
	struct dir_item *it = listing_grow(l);

	if (!it || !(it->name = strdup(name)))
		return -ENOMEM;
	it->kind = NODE_DIR;
	return 0;
}

static int list_dir(struct fs *fs, struct node *dir, struct dir_listing **out)
{
	struct dir_listing *l = calloc(1, sizeof(*l));
	size_t i, kept = 2;
	int rc;

	if (!l)
		return -ENOMEM;
	rc = add_dot(l, ".");
	if (!rc)
		rc = add_dot(l, "..");
	if (!rc)
		rc = store_list(fs->vault->store, dir->content_dir, collect_raw, l);
	if (rc == -ENOENT) { /* an interrupted rmdir removed the content folder */
		log_debug("%s: content folder missing: listed as empty", dir->content_dir);
		rc = 0;
	}
	for (i = 2; i < l->count; i++) {
		if (!rc)
			rc = resolve_item(fs, dir, &l->items[i]);
		if (rc == -EIO || rc == -ENOENT) { /* damaged (logged) or incomplete: left out */
			free(l->items[i].name);
			free(l->items[i].stored);
			rc = 0;
			continue;
		}
		l->items[kept++] = l->items[i];
	}
	l->count = kept;
	if (rc) {
		listing_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void open_dirs_add(struct fs *fs, struct dir_listing *l)
{
	pthread_mutex_lock(&fs->open_dirs_lock);
	l->next = fs->open_dirs;
	if (l->next)
		l->next->prev = l;
	fs->open_dirs = l;
	pthread_mutex_unlock(&fs->open_dirs_lock);
}

static void open_dirs_remove(struct fs *fs, struct dir_listing *l)
{
	pthread_mutex_lock(&fs->open_dirs_lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		fs->open_dirs = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&fs->open_dirs_lock);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_listing *l;
	struct node *n = node_of(req, ino);
	int rc = n->kind == NODE_DIR ? list_dir(fs_of(req), n, &l) : -ENOTDIR;

	if (rc) {
		reply_err(req, -rc);
		return;
	}
	open_dirs_add(fs_of(req), l);
	fi->fh = (uintptr_t)l;
	fuse_reply_open(req, fi);
}

static const mode_t kind_mode[] = {
	[NODE_FILE] = S_IFREG, [NODE_DIR] = S_IFDIR, [NODE_SYMLINK] = S_IFLNK,
};

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dir_listing *l = (struct dir_listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = (size_t)off; i < l->count; i++) {
		/* only the type bits of st_mode reach the kernel; the inode number
		 * is a placeholder that is never 0 (0 means "deleted" to some tools) */
		struct stat st = { .st_ino = i + 1, .st_mode = kind_mode[l->items[i].kind] };
		size_t need = fuse_add_direntry(req, buf + used, size - used, l->items[i].name, &st,
						(off_t)(i + 1));

		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* Count a kernel lookup of a listed item and get its attributes. */
static int item_to_node(struct fs *fs, struct node *dir, const struct dir_item *it,
			struct node **n, struct stat *st)
{
	struct entry e = { .kind = it->kind, .exists = true };
	int rc;

	e.name.stored = it->stored;
	e.name.shortened = it->shortened;
	e.path = vault_join(dir->content_dir, it->stored);
	rc = e.path ? entry_to_node(fs, dir, &e, n, st) : -ENOMEM;
	free(e.path);
	return rc;
}

/* readdir with each entry's attributes: `ls -l` needs no LOOKUP per entry. */
static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *dir = node_of(req, ino);
	struct dir_listing *l = (struct dir_listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = (size_t)off; i < l->count; i++) {
		const struct dir_item *it = &l->items[i];
		struct fuse_entry_param ep = { .attr_timeout = fs->timeout,
					       .entry_timeout = fs->timeout };
		struct node *n = NULL;
		size_t need;

		/* "." and "..", and an entry that vanished meanwhile, go without
		 * attributes (ino 0): the kernel looks them up itself if needed */
		if (!it->stored || item_to_node(fs, dir, it, &n, &ep.attr) != 0) {
			n = NULL;
			memset(&ep.attr, 0, sizeof(ep.attr));
			ep.attr.st_mode = kind_mode[it->kind];
			ep.attr.st_ino = i + 1;
		} else {
			ep.ino = n->ino;
		}
		need = fuse_add_direntry_plus(req, buf + used, size - used, it->name, &ep,
					      (off_t)(i + 1));
		if (need > size - used) {
			if (n) { /* not sent: the kernel does not hold this lookup */
				node_table_lock(fs->nodes);
				node_forget(fs->nodes, n, 1);
				node_table_unlock(fs->nodes);
			}
			break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_listing *l = (struct dir_listing *)(uintptr_t)fi->fh;

	(void)ino;
	open_dirs_remove(fs_of(req), l);
	listing_free(l);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* directory changes are made durable by the store as they happen */
}

/* ---- the file system as a whole --------------------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int rc = store_statfs(fs_of(req)->vault->store, &st);

	(void)ino;
	if (rc) {
		reply_err(req, -rc);
		return;
	}
	st.f_namemax = NAME_MAX_BYTES;
	fuse_reply_statfs(req, &st);
}

/* The format has no extended attributes. ENOSYS (not ENOTSUP) makes the
 * kernel remember that and answer EOPNOTSUPP itself from then on: otherwise
 * it asks for security.capability before every single write. */
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, ENOSYS);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino, (void)name, (void)size;
	fuse_reply_err(req, ENOSYS);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino, (void)size;
	fuse_reply_err(req, ENOSYS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, ENOSYS);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* O_TRUNC arrives with open, not as a separate setattr */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* the kernel gathers small writes into large ones: a chunk is then
	 * encrypted once, not once per write(2) that touches it */
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
}

/* Quick, on a store where a system call is quick (store_is_quick): what
 * touches only memory and metadata, and reads and writes of one chunk at
 * most (a system call and up to two chunk decryptions). Slow: everything on
 * other stores; larger reads and writes; what waits for a disk's fsync
 * (fsync, and mkdir, symlink and opendir, which write or read a whole
 * directory file or listing). A quick request that turns out slow (a write
 * far past the end, a long name, a lock a slow request holds) hands the
 * reading over itself (loop_hand_over). */
bool fs_request_is_quick(void *ctx, uint32_t opcode, uint32_t size)
{
	const struct fs *fs = ctx;

	switch (opcode) {
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return true;
	case FUSE_READ:
	case FUSE_WRITE:
		return fs->quick_store && size <= CRY_CHUNK_PLAIN;
	case FUSE_INIT:
	case FUSE_LOOKUP:
	case FUSE_GETATTR:
	case FUSE_SETATTR:
	case FUSE_READLINK:
	case FUSE_MKNOD:
	case FUSE_CREATE:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_OPEN:
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_STATFS:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_RELEASEDIR:
	case FUSE_FSYNCDIR:
	case FUSE_ACCESS:
	case FUSE_GETXATTR:
	case FUSE_SETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_REMOVEXATTR:
		return fs->quick_store;
	default:
		return false;
	}
}

int fs_init(struct fs *fs, struct vault *v)
{
	char *root = vault_content_dir(v, "");

	memset(fs, 0, sizeof(*fs));
	fs->vault = v;
	/* all changes pass through us, so the kernel may trust what we told it
	 * for a while; changes made behind our back (a sync client writing into
	 * the vault, another mount) show within this many seconds */
	fs->timeout = 10.0;
	fs->chown_new = geteuid() == 0;
	fs->quick_store = store_is_quick(v->store);
	pthread_mutex_init(&fs->open_dirs_lock, NULL);
	fs->nodes = root ? node_table_new(root) : NULL;
	free(root);
	if (store_is_cache(v->store)) /* a version the server no longer has stays as a copy */
		store_cache_set_conflict_handler(v->store, conflict_object_path, v);
	return fs->nodes ? 0 : -ENOMEM;
}

void fs_destroy(struct fs *fs)
{
	while (fs->open_dirs) {
		struct dir_listing *l = fs->open_dirs;

		open_dirs_remove(fs, l);
		listing_free(l);
	}
	pthread_mutex_destroy(&fs->open_dirs_lock);
	node_table_free(fs->nodes);
	fs->nodes = NULL;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
};
