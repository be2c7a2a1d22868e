/* The store interface: where ciphertext lives. A store moves bytes of
 * encrypted objects and knows no keys. Paths are relative to the vault root,
 * '/'-separated, without a leading '/', e.g. "d/VL/WEHT...OD/abc.c9r".
 * Every function returns 0 (or a byte count) on success and -errno on failure. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

struct store;
struct store_obj;

/* Attributes of an object or folder. Remote stores fill what they know. */
struct store_attr {
	bool is_dir;
	uint64_t size;
	mode_t mode;   /* permission bits only */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	uint64_t blocks; /* 512-byte blocks in use */
	uint64_t ino;    /* the object's lasting identity in the store (its inode
			  * number in a local folder); 0 if the store has none */
};

/* Which fields of store_attr store_setattr changes. */
enum {
	STORE_SET_MODE = 1 << 0,
	STORE_SET_UID = 1 << 1,
	STORE_SET_GID = 1 << 2,
	STORE_SET_ATIME = 1 << 3,
	STORE_SET_MTIME = 1 << 4,
};

/* Called once per folder entry by store_list ("." and ".." are skipped).
 * Returning non-zero stops the listing and makes store_list return that value. */
typedef int (*store_list_cb)(void *ctx, const char *name, bool is_dir);

/* Flags of store_open. */
enum {
	STORE_O_CREATE = 1 << 0, /* create if missing */
	STORE_O_EXCL = 1 << 1,   /* with CREATE: fail with -EEXIST if present */
	STORE_O_TRUNC = 1 << 2,
	STORE_O_RDONLY = 1 << 3, /* the object will only be read */
};

/* Flags of store_rename, as renameat2(2). */
enum {
	STORE_RENAME_NOREPLACE = 1 << 0,
	STORE_RENAME_EXCHANGE = 1 << 1,
};

struct store_ops {
	const char *name; /* "local", "webdav", "s3" */
	int (*getattr)(struct store *s, const char *path, struct store_attr *attr);
	int (*setattr)(struct store *s, const char *path, const struct store_attr *attr, int to_set);
	int (*list)(struct store *s, const char *dir, store_list_cb cb, void *ctx);
	int (*mkdir)(struct store *s, const char *path);
	int (*rmdir)(struct store *s, const char *path);
	int (*unlink)(struct store *s, const char *path);
	int (*rename)(struct store *s, const char *from, const char *to, unsigned flags);
	int (*read_all)(struct store *s, const char *path, size_t max, uint8_t **buf, size_t *len);
	int (*write_all)(struct store *s, const char *path, const void *buf, size_t len);
	int (*statfs)(struct store *s, struct statvfs *st);
	int (*open)(struct store *s, const char *path, unsigned flags, struct store_obj **obj);
	ssize_t (*pread)(struct store_obj *o, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(struct store_obj *o, const void *buf, size_t len, uint64_t off);
	int (*truncate)(struct store_obj *o, uint64_t size);
	int (*fsync)(struct store_obj *o, bool datasync);
	int (*fgetattr)(struct store_obj *o, struct store_attr *attr);
	int (*fsetattr)(struct store_obj *o, const struct store_attr *attr, int to_set);
	int (*close)(struct store_obj *o);
	void (*destroy)(struct store *s);
};

/* Every store starts with this; backends embed it as their first member. */
struct store {
	const struct store_ops *ops;
	char *location; /* what the user named, for messages (no credentials) */
};

/* Every open object starts with this. */
struct store_obj {
	struct store *store;
};

/* Attributes of the object or folder at path; -ENOENT if there is none. */
static inline int store_getattr(struct store *s, const char *path, struct store_attr *a)
{ return s->ops->getattr(s, path, a); }
/* Change the fields named by to_set; -EOPNOTSUPP where the store has no such field. */
static inline int store_setattr(struct store *s, const char *path, const struct store_attr *a, int to_set)
{ return s->ops->setattr(s, path, a, to_set); }
/* Call cb for each entry of folder dir ("" is the vault root). */
static inline int store_list(struct store *s, const char *dir, store_list_cb cb, void *ctx)
{ return s->ops->list(s, dir, cb, ctx); }
/* Create one folder (its parent must exist); -EEXIST if present. */
static inline int store_mkdir(struct store *s, const char *path)
{ return s->ops->mkdir(s, path); }
/* Remove an empty folder; -ENOTEMPTY otherwise. */
static inline int store_rmdir(struct store *s, const char *path)
{ return s->ops->rmdir(s, path); }
/* Remove an object. Open handles of it keep working until closed. */
static inline int store_unlink(struct store *s, const char *path)
{ return s->ops->unlink(s, path); }
/* Move an object or folder, replacing a destination object unless flags say otherwise. */
static inline int store_rename(struct store *s, const char *from, const char *to, unsigned flags)
{ return s->ops->rename(s, from, to, flags); }
/* Read a whole small object (at most max bytes, else -EFBIG) into a malloc'd *buf. */
static inline int store_read_all(struct store *s, const char *path, size_t max, uint8_t **buf, size_t *len)
{ return s->ops->read_all(s, path, max, buf, len); }
/* Create or atomically replace a whole small object, durably. */
static inline int store_write_all(struct store *s, const char *path, const void *buf, size_t len)
{ return s->ops->write_all(s, path, buf, len); }
static inline int store_statfs(struct store *s, struct statvfs *st)
{ return s->ops->statfs(s, st); }
/* Open an object for ranged reads and writes. */
static inline int store_open(struct store *s, const char *path, unsigned flags, struct store_obj **o)
{ return s->ops->open(s, path, flags, o); }
/* Read up to len bytes at off; a short count only at the end of the object. */
static inline ssize_t store_pread(struct store_obj *o, void *buf, size_t len, uint64_t off)
{ return o->store->ops->pread(o, buf, len, off); }
/* Write all len bytes at off (growing the object as needed). */
static inline ssize_t store_pwrite(struct store_obj *o, const void *buf, size_t len, uint64_t off)
{ return o->store->ops->pwrite(o, buf, len, off); }
static inline int store_truncate(struct store_obj *o, uint64_t size)
{ return o->store->ops->truncate(o, size); }
static inline int store_fsync(struct store_obj *o, bool datasync)
{ return o->store->ops->fsync(o, datasync); }
static inline int store_fgetattr(struct store_obj *o, struct store_attr *a)
{ return o->store->ops->fgetattr(o, a); }
/* store_setattr on an open object (which may have no path any more). */
static inline int store_fsetattr(struct store_obj *o, const struct store_attr *a, int to_set)
{ return o->store->ops->fsetattr(o, a, to_set); }
/* Close the handle; returns the first deferred write error, if any. */
static inline int store_close(struct store_obj *o)
{ return o->store->ops->close(o); }
static inline void store_destroy(struct store *s)
{ if (s) s->ops->destroy(s); }

struct cache_options;

/* How store_open_url opens a store. */
struct store_url_options {
	bool create;   /* make the folder if missing (init): a local folder, a WebDAV collection */
	bool insecure; /* remote stores: do not verify TLS certificates (the caller warns) */
	const struct cache_options *cache; /* remote stores: the local cache; NULL: defaults */
};

/* mkdir -p path, new folders with mode 0700; -errno of the first failure. */
int store_mkdir_p(const char *path);

/* The user's home folder: $HOME if absolute, else the password database's;
 * NULL if neither. */
const char *store_home_dir(void);

/* Where the backends' log lines go (retries, outages, conflicts): one line
 * without a newline; prio is a syslog priority. Until set: stderr. */
typedef void (*store_log_fn)(int prio, const char *line);
void store_set_log(store_log_fn fn);
void store_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open the store named by a STORE argument: a path, file://PATH, or a
 * webdav://, webdavs:// or s3:// URL (a remote store behind the local cache
 * of backends/cache.h). o NULL: all defaults. On failure returns -errno and
 * sets *err to a malloc'd message for the user. */
int store_open_url(const char *url, const struct store_url_options *o, struct store **out, char **err);

/* Is path a store path: relative, '/'-separated, no empty, "." or ".."
 * component, shorter than PATH_MAX? allow_root: "" (the root) is one too. */
bool store_path_is_valid(const char *path, bool allow_root);

/* The local-folder store rooted at dir (which must exist). */
int store_local_open(const char *dir, struct store **out, char **err);

/* Do s's operations take about a system call's time (a local folder on a
 * local disk), rather than maybe waiting for a network or another process
 * (a remote store; a local folder on NFS, SMB, Ceph, 9P, AFS or a FUSE file
 * system such as sshfs or a sync client's)? */
bool store_is_quick(struct store *s);

/* For the openers above (and backends' own): if err is not NULL, set *err to
 * a malloc'd message formatted as printf (NULL if that allocation fails);
 * returns code, a -errno. */
int store_fail(char **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
