/* The local-folder store: ciphertext objects as files under one folder.
 *
 * Every operation goes through a directory fd of the root and the *at()
 * system calls, with paths checked first (relative, no "." or ".." or empty
 * components), so nothing resolves outside the root through the path text.
 * The vault format never stores symlinks, so the last component of a path is
 * never followed either (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW). */
#include "backends/store.h"
#include "backends/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <unistd.h>

struct local_store {
	struct store base;
	int root_fd;
};

struct local_obj {
	struct store_obj base;
	int fd;
};

#define TMP_PREFIX ".umbrafs-tmp-"
#define TMP_RANDOM_CHARS 6
#define TMP_NAME_SIZE (sizeof(TMP_PREFIX) + TMP_RANDOM_CHARS) /* with the NUL */
#define TMP_NAME_ATTEMPTS 100

static int local_root(struct store *s)
{
	return ((struct local_store *)s)->root_fd;
}

static int local_fd(struct store_obj *o)
{
	return ((struct local_obj *)o)->fd;
}

bool store_path_is_valid(const char *path, bool allow_root)
{
	if (!path)
		return false;
	if (path[0] == '\0')
		return allow_root;
	if (strlen(path) >= PATH_MAX)
		return false;
	for (const char *c = path;;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (c[n] == '\0')
			return true;
		c += n + 1;
	}
}

/* The path to hand to *at() calls: the root itself is ".". */
static const char *at_path(const char *path)
{
	return path[0] ? path : ".";
}

static void attr_from_stat(const struct stat *st, struct store_attr *a)
{
	*a = (struct store_attr){
		.is_dir = S_ISDIR(st->st_mode),
		.size = (uint64_t)st->st_size,
		.mode = st->st_mode & 07777,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.atime = st->st_atim,
		.mtime = st->st_mtim,
		.ctime = st->st_ctim,
		.blocks = (uint64_t)st->st_blocks,
		.ino = (uint64_t)st->st_ino,
	};
}

static int local_getattr(struct store *s, const char *path, struct store_attr *a)
{
	struct stat st;

	if (!store_path_is_valid(path, true))
		return -EINVAL;
	if (fstatat(local_root(s), at_path(path), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	attr_from_stat(&st, a);
	return 0;
}

static struct timespec time_or_omit(bool set, struct timespec t)
{
	return set ? t : (struct timespec){ .tv_nsec = UTIME_OMIT };
}

/* Apply the fields of a named by to_set to the object p below folder fd, or,
 * when p is "", to the open file fd itself. */
static int apply_attrs(int fd, const char *p, const struct store_attr *a, int to_set)
{
	bool self = !*p;

	/* Owner first: chown clears set-id bits that a following chmod may set. */
	if (to_set & (STORE_SET_UID | STORE_SET_GID)) {
		uid_t uid = (to_set & STORE_SET_UID) ? a->uid : (uid_t)-1;
		gid_t gid = (to_set & STORE_SET_GID) ? a->gid : (gid_t)-1;
		if (fchownat(fd, p, uid, gid, self ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if ((to_set & STORE_SET_MODE) &&
	    (self ? fchmod(fd, a->mode & 07777)
		  : fchmodat(fd, p, a->mode & 07777, AT_SYMLINK_NOFOLLOW)) < 0)
		return -errno;
	if (to_set & (STORE_SET_ATIME | STORE_SET_MTIME)) {
		struct timespec times[2] = {
			time_or_omit(to_set & STORE_SET_ATIME, a->atime),
			time_or_omit(to_set & STORE_SET_MTIME, a->mtime),
		};
		if ((self ? futimens(fd, times) : utimensat(fd, p, times, AT_SYMLINK_NOFOLLOW)) < 0)
			return -errno;
	}
	return 0;
}

static int local_setattr(struct store *s, const char *path, const struct store_attr *a, int to_set)
{
	if (!store_path_is_valid(path, true))
		return -EINVAL;
	return apply_attrs(local_root(s), at_path(path), a, to_set);
}

/* Whether the entry name of folder dir_fd is a folder, from d_type when the
 * file system gives it. */
static int entry_is_dir(int dir_fd, const struct dirent *e, bool *is_dir)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN) {
		*is_dir = e->d_type == DT_DIR;
		return 0;
	}
	if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*is_dir = S_ISDIR(st.st_mode);
	return 0;
}

static bool is_dot_or_dotdot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static int list_entries(DIR *d, store_list_cb cb, void *ctx)
{
	for (;;) {
		struct dirent *e;
		bool is_dir = false;
		int rc;

		errno = 0;
		e = readdir(d);
		if (!e)
			return -errno;
		if (is_dot_or_dotdot(e->d_name))
			continue;
		rc = entry_is_dir(dirfd(d), e, &is_dir);
		if (rc == -ENOENT) /* removed since readdir saw it */
			continue;
		if (rc < 0)
			return rc;
		rc = cb(ctx, e->d_name, is_dir);
		if (rc)
			return rc;
	}
}

static int local_list(struct store *s, const char *dir, store_list_cb cb, void *ctx)
{
	int fd, rc;
	DIR *d;

	if (!store_path_is_valid(dir, true))
		return -EINVAL;
	fd = openat(local_root(s), at_path(dir), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = list_entries(d, cb, ctx);
	closedir(d);
	return rc;
}

static int local_mkdir(struct store *s, const char *path)
{
	if (!store_path_is_valid(path, false))
		return -EINVAL;
	return mkdirat(local_root(s), path, 0755) < 0 ? -errno : 0;
}

static int local_rmdir(struct store *s, const char *path)
{
	if (!store_path_is_valid(path, false))
		return -EINVAL;
	return unlinkat(local_root(s), path, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int local_unlink(struct store *s, const char *path)
{
	if (!store_path_is_valid(path, false))
		return -EINVAL;
	return unlinkat(local_root(s), path, 0) < 0 ? -errno : 0;
}

static int local_rename(struct store *s, const char *from, const char *to, unsigned flags)
{
	unsigned sys_flags = 0;

	if (!store_path_is_valid(from, false) || !store_path_is_valid(to, false))
		return -EINVAL;
	if (flags & ~(unsigned)(STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & STORE_RENAME_NOREPLACE)
		sys_flags |= RENAME_NOREPLACE;
	if (flags & STORE_RENAME_EXCHANGE)
		sys_flags |= RENAME_EXCHANGE;
	if (renameat2(local_root(s), from, local_root(s), to, sys_flags) < 0)
		return -errno;
	return 0;
}

/* Read fd to its end into a malloc'd buffer of at most max bytes. */
static int read_fd_all(int fd, size_t max, uint8_t **out, size_t *out_len)
{
	/* max + 1 bytes are enough to see that an object is too big. */
	size_t limit = max < SIZE_MAX ? max + 1 : SIZE_MAX;
	struct stat st;
	size_t cap, len = 0;
	uint8_t *buf;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* One byte more than the size, so that the end of an object that did
	 * not change is seen without growing the buffer. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t grown = cap > limit / 2 ? limit : cap * 2;
			uint8_t *bigger = realloc(buf, grown);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return -EFBIG;
		}
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* openat path below the store's root, never waiting for another process: a
 * FIFO or device planted in the store would block open() or read() for
 * good, and with it the request. Anything but a regular file or a folder is
 * damage: refused with EIO and logged. (O_NONBLOCK changes nothing for a
 * regular file.) Returns the fd or -errno. */
static int open_object(struct store *s, const char *path, int oflags, mode_t mode)
{
	int fd = openat(local_root(s), path, oflags | O_NONBLOCK, mode);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
		return fd;
	close(fd);
	store_log(LOG_ERR, "%s: a %s, not a regular file: refused as damaged", path,
		  S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" : "device");
	return -EIO;
}

static int local_read_all(struct store *s, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int fd, rc;

	if (!store_path_is_valid(path, false))
		return -EINVAL;
	fd = open_object(s, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	rc = read_fd_all(fd, max, buf, len);
	close(fd);
	return rc;
}

/* Create a new temporary file ".umbrafs-tmp-XXXXXX" in folder dir_fd and
 * return its fd; its name goes to name. */
static int create_temp_file(int dir_fd, char name[TMP_NAME_SIZE])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

	for (int attempt = 0; attempt < TMP_NAME_ATTEMPTS; attempt++) {
		unsigned char random[TMP_RANDOM_CHARS];
		char *suffix = name + strlen(TMP_PREFIX);
		ssize_t got = getrandom(random, sizeof random, 0);
		int fd;

		if (got < 0)
			return -errno;
		if (got != (ssize_t)sizeof random)
			return -EIO;
		memcpy(name, TMP_PREFIX, strlen(TMP_PREFIX));
		for (int i = 0; i < TMP_RANDOM_CHARS; i++)
			suffix[i] = alphabet[random[i] % (sizeof alphabet - 1)];
		suffix[TMP_RANDOM_CHARS] = '\0';
		fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* Open the folder holding path; *base receives the last component. */
static int open_parent(struct store *s, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char *parent;
	int fd;

	if (!slash) {
		*base = path;
		fd = openat(local_root(s), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	*base = slash + 1;
	parent = strndup(path, (size_t)(slash - path));
	if (!parent)
		return -ENOMEM;
	fd = openat(local_root(s), parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(parent);
	return fd < 0 ? -errno : fd;
}

/* Write buf to a new temporary file of folder dir_fd and move it over name,
 * durably: the file's data before the rename, the folder after it. */
static int replace_atomically(int dir_fd, const char *name, const void *buf, size_t len)
{
	char tmp[TMP_NAME_SIZE];
	int fd, rc;

	fd = create_temp_file(dir_fd, tmp);
	if (fd < 0)
		return fd;
	rc = fd_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(dir_fd, tmp, 0);
		return rc;
	}
	return fsync(dir_fd) < 0 ? -errno : 0;
}

static int local_write_all(struct store *s, const char *path, const void *buf, size_t len)
{
	const char *base;
	int dir_fd, rc;

	if (!store_path_is_valid(path, false))
		return -EINVAL;
	dir_fd = open_parent(s, path, &base);
	if (dir_fd < 0)
		return dir_fd;
	rc = replace_atomically(dir_fd, base, buf, len);
	close(dir_fd);
	return rc;
}

static int local_statfs(struct store *s, struct statvfs *st)
{
	return fstatvfs(local_root(s), st) < 0 ? -errno : 0;
}

static int open_flags(unsigned flags)
{
	int oflags = O_NOFOLLOW | O_CLOEXEC;

	oflags |= (flags & STORE_O_RDONLY) ? O_RDONLY : O_RDWR;
	if (flags & STORE_O_CREATE)
		oflags |= O_CREAT;
	if ((flags & STORE_O_CREATE) && (flags & STORE_O_EXCL))
		oflags |= O_EXCL;
	if (flags & STORE_O_TRUNC)
		oflags |= O_TRUNC;
	return oflags;
}

static int local_open(struct store *s, const char *path, unsigned flags, struct store_obj **out)
{
	int oflags = open_flags(flags);
	struct local_obj *o;
	int fd;

	if (!store_path_is_valid(path, false))
		return -EINVAL;
	o = malloc(sizeof *o);
	if (!o)
		return -ENOMEM;
	fd = open_object(s, path, oflags, 0644);
	/* An object we may not write (read-only file or file system) can still
	 * be read; writes then fail with EBADF. Truncation needs write access. */
	if ((fd == -EACCES || fd == -EROFS) && (oflags & O_ACCMODE) == O_RDWR &&
	    !(flags & STORE_O_TRUNC))
		fd = open_object(s, path, (oflags & ~O_ACCMODE) | O_RDONLY, 0644);
	if (fd < 0) {
		free(o);
		return fd;
	}
	o->base.store = s;
	o->fd = fd;
	*out = &o->base;
	return 0;
}

static ssize_t local_pread(struct store_obj *o, void *buf, size_t len, uint64_t off)
{
	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	return fd_pread_full(local_fd(o), buf, len, off);
}

static ssize_t local_pwrite(struct store_obj *o, const void *buf, size_t len, uint64_t off)
{
	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX - len)
		return -EFBIG;
	return fd_pwrite_full(local_fd(o), buf, len, off);
}

static int local_truncate(struct store_obj *o, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	return ftruncate(local_fd(o), (off_t)size) < 0 ? -errno : 0;
}

static int local_fsync(struct store_obj *o, bool datasync)
{
	int rc = datasync ? fdatasync(local_fd(o)) : fsync(local_fd(o));
	return rc < 0 ? -errno : 0;
}

static int local_fgetattr(struct store_obj *o, struct store_attr *a)
{
	struct stat st;

	if (fstat(local_fd(o), &st) < 0)
		return -errno;
	attr_from_stat(&st, a);
	return 0;
}

static int local_fsetattr(struct store_obj *o, const struct store_attr *a, int to_set)
{
	return apply_attrs(local_fd(o), "", a, to_set);
}

static int local_close(struct store_obj *o)
{
	int rc = close(local_fd(o));
	int err = errno;

	free(o);
	return rc < 0 ? -err : 0;
}

static void local_destroy(struct store *s)
{
	close(local_root(s));
	free(s->location);
	free(s);
}

static const struct store_ops local_ops = {
	.name = "local",
	.getattr = local_getattr,
	.setattr = local_setattr,
	.list = local_list,
	.mkdir = local_mkdir,
	.rmdir = local_rmdir,
	.unlink = local_unlink,
	.rename = local_rename,
	.read_all = local_read_all,
	.write_all = local_write_all,
	.statfs = local_statfs,
	.open = local_open,
	.pread = local_pread,
	.pwrite = local_pwrite,
	.truncate = local_truncate,
	.fsync = local_fsync,
	.fgetattr = local_fgetattr,
	.fsetattr = local_fsetattr,
	.close = local_close,
	.destroy = local_destroy,
};

static int open_root(const char *dir, char **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		return store_fail(err, -ENOENT, "%s: no such folder", dir);
	case ENOTDIR:
		return store_fail(err, -ENOTDIR, "%s: not a folder", dir);
	default:
		return store_fail(err, -errno, "%s: %s", dir, strerror(errno));
	}
}

bool store_is_quick(struct store *s)
{
	struct statfs st;

	if (s->ops != &local_ops || fstatfs(local_root(s), &st) < 0)
		return false;
	switch (st.f_type) {
	case NFS_SUPER_MAGIC:
	case SMB_SUPER_MAGIC:
	case SMB2_SUPER_MAGIC:
	case CIFS_SUPER_MAGIC:
	case CEPH_SUPER_MAGIC:
	case V9FS_MAGIC:
	case AFS_SUPER_MAGIC:
	case AFS_FS_MAGIC:
	case CODA_SUPER_MAGIC:
	case FUSE_SUPER_MAGIC:
		return false;
	default:
		return true;
	}
}

int store_local_open(const char *dir, struct store **out, char **err)
{
	struct local_store *ls;
	int fd;

	if (err)
		*err = NULL;
	fd = open_root(dir, err);
	if (fd < 0)
		return fd;
	ls = calloc(1, sizeof *ls);
	if (ls)
		ls->base.location = realpath(dir, NULL);
	if (!ls || !ls->base.location) {
		int rc = ls ? -errno : -ENOMEM;
		free(ls);
		close(fd);
		return store_fail(err, rc, "%s: %s", dir, strerror(-rc));
	}
	ls->base.ops = &local_ops;
	ls->root_fd = fd;
	*out = &ls->base;
	return 0;
}
