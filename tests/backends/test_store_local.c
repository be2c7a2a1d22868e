/* Tests of the local-folder store (backends/store_local.c) on a temp folder:
 * every operation, its error cases, and that paths cannot leave the root. */
#include "backends/store.h"
#include "check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *root;          /* the temp folder the store is rooted at */
static struct store *store; /* store_local_open(root) */

/* root/rel, in a static buffer (one at a time). */
static const char *outside(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof path, "%s/%s", root, rel);
	return path;
}

static bool exists_outside(const char *rel)
{
	struct stat st;

	return lstat(outside(rel), &st) == 0;
}

static void put_outside(const char *rel, const char *text)
{
	FILE *f = fopen(outside(rel), "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(rel);
		exit(EXIT_FAILURE);
	}
}

/* Whether the store object path holds exactly text. */
static bool holds(const char *path, const char *text)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	bool same = store_read_all(store, path, 1 << 20, &buf, &len) == 0 && len == strlen(text) &&
		    memcmp(buf, text, len) == 0;

	free(buf);
	return same;
}

/* Collects a listing as "name/" (folders) or "name", sorted, ';'-joined. */
struct listing {
	char names[32][64];
	int count;
	int stop_after; /* return 7 from the callback after this many (0: never) */
};

static int collect(void *ctx, const char *name, bool is_dir)
{
	struct listing *l = ctx;

	if (l->count < 32)
		snprintf(l->names[l->count++], sizeof l->names[0], "%s%s", name, is_dir ? "/" : "");
	return l->stop_after && l->count == l->stop_after ? 7 : 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The listing of folder dir joined as "a;b/;c", or the error as "error -N". */
static const char *list_joined(const char *dir)
{
	static char joined[2048];
	struct listing l = { .count = 0 };
	int rc = store_list(store, dir, collect, &l);

	if (rc != 0) {
		snprintf(joined, sizeof joined, "error %d", rc);
		return joined;
	}
	qsort(l.names, (size_t)l.count, sizeof l.names[0], compare_names);
	joined[0] = '\0';
	for (int i = 0; i < l.count; i++) {
		if (i)
			strcat(joined, ";");
		strcat(joined, l.names[i]);
	}
	return joined;
}

static void test_open_errors(void)
{
	struct store *s = NULL;
	char *err = NULL;
	char *missing, *real;

	CHECK(asprintf(&missing, "%s/nope", root) > 0);
	CHECK_EQ(store_local_open(missing, &s, &err), -ENOENT);
	CHECK(err && strstr(err, "nope: no such folder"));
	free(err);
	free(missing);

	put_outside("plain", "x");
	CHECK_EQ(store_local_open(outside("plain"), &s, &err), -ENOTDIR);
	CHECK(err && strstr(err, "plain: not a folder"));
	free(err);
	CHECK_EQ(store_local_open(outside("plain"), &s, NULL), -ENOTDIR);
	CHECK_EQ(unlink(outside("plain")), 0);

	real = realpath(root, NULL);
	CHECK_STR(store->location, real);
	CHECK_STR(store->ops->name, "local");
	free(real);
}

static void test_write_read_all(void)
{
	uint8_t *buf = NULL;
	size_t len = 99;

	CHECK_EQ(store_write_all(store, "masterkey", "first", 5), 0);
	CHECK(holds("masterkey", "first"));
	CHECK_EQ(store_write_all(store, "masterkey", "second!", 7), 0);
	CHECK(holds("masterkey", "second!"));

	/* exactly max is fine, one more byte is not */
	CHECK_EQ(store_read_all(store, "masterkey", 7, &buf, &len), 0);
	CHECK_EQ(len, 7);
	free(buf);
	buf = NULL;
	CHECK_EQ(store_read_all(store, "masterkey", 6, &buf, &len), -EFBIG);
	CHECK(buf == NULL);
	CHECK_EQ(store_read_all(store, "masterkey", 0, &buf, &len), -EFBIG);

	CHECK_EQ(store_write_all(store, "empty", "", 0), 0);
	CHECK_EQ(store_read_all(store, "empty", 0, &buf, &len), 0);
	CHECK_EQ(len, 0);
	free(buf);

	CHECK_EQ(store_read_all(store, "missing", 10, &buf, &len), -ENOENT);
	CHECK_EQ(store_mkdir(store, "d"), 0);
	CHECK_EQ(store_read_all(store, "d", 10, &buf, &len), -EISDIR);
	CHECK_EQ(store_write_all(store, "d", "x", 1), -EISDIR);
	CHECK_EQ(store_write_all(store, "no/such/parent", "x", 1), -ENOENT);
	CHECK_EQ(store_write_all(store, "d/inner", "in d", 4), 0);
	CHECK(holds("d/inner", "in d"));

	/* no temporary file is left, after successes and failures alike */
	CHECK_STR(list_joined(""), "d/;empty;masterkey");
	CHECK_STR(list_joined("d"), "inner");
	CHECK_EQ(store_unlink(store, "d/inner"), 0);
	CHECK_EQ(store_rmdir(store, "d"), 0);
	CHECK_EQ(store_unlink(store, "empty"), 0);
	CHECK_EQ(store_unlink(store, "masterkey"), 0);
}

/* write_all replaces by rename: a reader that opened the old object keeps
 * reading the whole old bytes, never a mix. */
static void test_write_all_atomic(void)
{
	static uint8_t big[256 * 1024];
	struct stat before, after;
	char old[4] = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd;

	memset(big, 'B', sizeof big);
	CHECK_EQ(store_write_all(store, "obj", "old", 3), 0);
	fd = open(outside("obj"), O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(fstat(fd, &before), 0);
	CHECK_EQ(store_write_all(store, "obj", big, sizeof big), 0);
	CHECK_EQ(stat(outside("obj"), &after), 0);
	CHECK(before.st_ino != after.st_ino);
	CHECK_EQ(pread(fd, old, 3, 0), 3);
	CHECK_STR(old, "old");
	close(fd);
	CHECK_EQ(store_read_all(store, "obj", sizeof big, &buf, &len), 0);
	CHECK(len == sizeof big && memcmp(buf, big, len) == 0);
	free(buf);
	CHECK_EQ(after.st_mode & 0777, 0644);
	CHECK_STR(list_joined(""), "obj");
	CHECK_EQ(store_unlink(store, "obj"), 0);
}

static void test_folders(void)
{
	CHECK_EQ(store_mkdir(store, "d"), 0);
	CHECK_EQ(store_mkdir(store, "d"), -EEXIST);
	CHECK_EQ(store_mkdir(store, "x/y"), -ENOENT);
	CHECK_EQ(store_mkdir(store, "d/AB"), 0);
	CHECK_EQ(store_write_all(store, "d/AB/obj.c9r", "z", 1), 0);
	CHECK_EQ(store_rmdir(store, "d"), -ENOTEMPTY);
	CHECK_EQ(store_rmdir(store, "d/AB/obj.c9r"), -ENOTDIR);
	CHECK_EQ(store_unlink(store, "d/AB"), -EISDIR);
	CHECK_EQ(store_unlink(store, "d/AB/missing"), -ENOENT);
	CHECK_EQ(store_rmdir(store, "missing"), -ENOENT);
	CHECK_EQ(store_unlink(store, "d/AB/obj.c9r"), 0);
	CHECK(!exists_outside("d/AB/obj.c9r"));
	CHECK_EQ(store_rmdir(store, "d/AB"), 0);
	CHECK_EQ(store_rmdir(store, "d"), 0);
	CHECK(!exists_outside("d"));
}

static void test_list(void)
{
	struct listing l = { .count = 0, .stop_after = 2 };

	CHECK_STR(list_joined(""), "");
	CHECK_EQ(store_mkdir(store, "sub"), 0);
	CHECK_EQ(store_mkdir(store, "sub/inner"), 0);
	CHECK_EQ(store_write_all(store, "sub/a.c9r", "a", 1), 0);
	CHECK_EQ(store_write_all(store, "sub/b.c9r", "b", 1), 0);
	CHECK_EQ(store_write_all(store, "top", "t", 1), 0);
	CHECK_STR(list_joined(""), "sub/;top");
	CHECK_STR(list_joined("sub"), "a.c9r;b.c9r;inner/");
	CHECK_STR(list_joined("sub/inner"), "");
	CHECK_STR(list_joined("missing"), "error -2");   /* -ENOENT */
	CHECK_STR(list_joined("top"), "error -20");      /* -ENOTDIR */
	/* a non-zero callback result stops the listing and is returned */
	CHECK_EQ(store_list(store, "sub", collect, &l), 7);
	CHECK_EQ(l.count, 2);
	CHECK_EQ(store_unlink(store, "sub/a.c9r"), 0);
	CHECK_EQ(store_unlink(store, "sub/b.c9r"), 0);
	CHECK_EQ(store_rmdir(store, "sub/inner"), 0);
	CHECK_EQ(store_rmdir(store, "sub"), 0);
	CHECK_EQ(store_unlink(store, "top"), 0);
}

static void test_getattr_setattr(void)
{
	struct store_attr a, set = { .mode = 0600 };
	struct stat st;

	CHECK_EQ(store_getattr(store, "", &a), 0);
	CHECK(a.is_dir);
	CHECK_EQ(store_getattr(store, "missing", &a), -ENOENT);
	CHECK_EQ(store_getattr(store, "missing/deeper", &a), -ENOENT);

	CHECK_EQ(store_write_all(store, "f", "12345", 5), 0);
	CHECK_EQ(store_getattr(store, "f", &a), 0);
	CHECK(!a.is_dir);
	CHECK_EQ(a.size, 5);
	CHECK_EQ(a.mode, 0644);
	CHECK_EQ(a.uid, geteuid());
	CHECK(a.blocks > 0);
	CHECK(lstat(outside("f"), &st) == 0);
	CHECK_EQ(a.ino, st.st_ino); /* the fs layer's lasting inode number */

	CHECK_EQ(store_setattr(store, "f", &set, STORE_SET_MODE), 0);
	CHECK_EQ(store_getattr(store, "f", &a), 0);
	CHECK_EQ(a.mode, 0600);

	set.atime = (struct timespec){ .tv_sec = 1000000000, .tv_nsec = 5 };
	set.mtime = (struct timespec){ .tv_sec = 1200000000, .tv_nsec = 7 };
	CHECK_EQ(store_setattr(store, "f", &set, STORE_SET_ATIME | STORE_SET_MTIME), 0);
	CHECK_EQ(store_getattr(store, "f", &a), 0);
	CHECK_EQ(a.atime.tv_sec, 1000000000);
	CHECK_EQ(a.atime.tv_nsec, 5);
	CHECK_EQ(a.mtime.tv_sec, 1200000000);
	CHECK_EQ(a.mtime.tv_nsec, 7);
	/* only mtime: atime stays */
	set.mtime.tv_sec = 1300000000;
	set.atime.tv_sec = 1;
	CHECK_EQ(store_setattr(store, "f", &set, STORE_SET_MTIME), 0);
	CHECK_EQ(store_getattr(store, "f", &a), 0);
	CHECK_EQ(a.mtime.tv_sec, 1300000000);
	CHECK_EQ(a.atime.tv_sec, 1000000000);
	CHECK_EQ(a.mode, 0600);

	if (geteuid() == 0) {
		set.uid = 1234;
		set.gid = 5678;
		CHECK_EQ(store_setattr(store, "f", &set, STORE_SET_UID | STORE_SET_GID), 0);
		CHECK_EQ(store_getattr(store, "f", &a), 0);
		CHECK_EQ(a.uid, 1234);
		CHECK_EQ(a.gid, 5678);
		set.uid = 42;
		CHECK_EQ(store_setattr(store, "f", &set, STORE_SET_UID), 0);
		CHECK_EQ(store_getattr(store, "f", &a), 0);
		CHECK_EQ(a.uid, 42);
		CHECK_EQ(a.gid, 5678);
	}
	CHECK_EQ(store_setattr(store, "missing", &set, STORE_SET_MODE), -ENOENT);
	CHECK_EQ(store_unlink(store, "f"), 0);
}

static void test_rename(void)
{
	struct store_attr a;

	CHECK_EQ(store_write_all(store, "a", "AAA", 3), 0);
	CHECK_EQ(store_write_all(store, "b", "BB", 2), 0);
	CHECK_EQ(store_mkdir(store, "dir"), 0);

	CHECK_EQ(store_rename(store, "a", "b", STORE_RENAME_NOREPLACE), -EEXIST);
	CHECK(holds("a", "AAA") && holds("b", "BB"));
	CHECK_EQ(store_rename(store, "a", "b", STORE_RENAME_EXCHANGE), 0);
	CHECK(holds("a", "BB") && holds("b", "AAA"));
	CHECK_EQ(store_rename(store, "a", "new", STORE_RENAME_EXCHANGE), -ENOENT);
	CHECK_EQ(store_rename(store, "a", "b", STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE), -EINVAL);
	CHECK_EQ(store_rename(store, "a", "b", 1u << 7), -EINVAL);
	CHECK(holds("a", "BB") && holds("b", "AAA"));

	CHECK_EQ(store_rename(store, "a", "dir/moved", STORE_RENAME_NOREPLACE), 0);
	CHECK(holds("dir/moved", "BB"));
	CHECK(!exists_outside("a"));
	CHECK_EQ(store_rename(store, "b", "dir/moved", 0), 0); /* replaces */
	CHECK(holds("dir/moved", "AAA"));
	CHECK_EQ(store_rename(store, "missing", "x", 0), -ENOENT);
	CHECK_EQ(store_rename(store, "dir", "dir2", 0), 0);
	CHECK_EQ(store_getattr(store, "dir2", &a), 0);
	CHECK(a.is_dir);
	CHECK(holds("dir2/moved", "AAA"));
	CHECK_EQ(store_unlink(store, "dir2/moved"), 0);
	CHECK_EQ(store_rmdir(store, "dir2"), 0);
}

static void test_objects(void)
{
	struct store_obj *o = NULL, *o2 = NULL;
	struct store_attr a;
	char buf[64] = { 0 };

	CHECK_EQ(store_open(store, "obj", 0, &o), -ENOENT);
	CHECK_EQ(store_open(store, "obj", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, "hello", 5, 0), 5);
	CHECK_EQ(store_pwrite(o, "world", 5, 10), 5); /* a hole of zeros between */
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), 15); /* short only at the end */
	CHECK(memcmp(buf, "hello\0\0\0\0\0world", 15) == 0);
	CHECK_EQ(store_pread(o, buf, 4, 11), 4);
	CHECK(memcmp(buf, "orld", 4) == 0);
	CHECK_EQ(store_pread(o, buf, 4, 100), 0);
	CHECK_EQ(store_fgetattr(o, &a), 0);
	CHECK_EQ(a.size, 15);
	CHECK(!a.is_dir);
	CHECK_EQ(a.mode, 0644);
	CHECK_EQ(store_truncate(o, 3), 0);
	CHECK_EQ(store_fgetattr(o, &a), 0);
	CHECK_EQ(a.size, 3);
	CHECK_EQ(store_truncate(o, 1u << 20), 0);
	CHECK_EQ(store_fgetattr(o, &a), 0);
	CHECK_EQ(a.size, 1u << 20);
	CHECK_EQ(store_truncate(o, UINT64_MAX), -EFBIG);
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_fsync(o, true), 0);
	CHECK_EQ(store_close(o), 0);

	CHECK_EQ(store_open(store, "obj", STORE_O_CREATE | STORE_O_EXCL, &o), -EEXIST);
	CHECK_EQ(store_open(store, "obj", STORE_O_CREATE | STORE_O_TRUNC, &o), 0);
	CHECK_EQ(store_fgetattr(o, &a), 0);
	CHECK_EQ(a.size, 0);
	CHECK_EQ(store_pwrite(o, "abc", 3, 0), 3);
	CHECK_EQ(store_close(o), 0);

	/* a read-only handle reads and refuses writes */
	CHECK_EQ(store_open(store, "obj", STORE_O_RDONLY, &o), 0);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), 3);
	CHECK(memcmp(buf, "abc", 3) == 0);
	CHECK_EQ(store_pwrite(o, "x", 1, 0), -EBADF);
	CHECK_EQ(store_truncate(o, 0), -EINVAL); /* ftruncate on a read-only fd */

	/* open handles survive unlink */
	CHECK_EQ(store_open(store, "obj", 0, &o2), 0);
	CHECK_EQ(store_unlink(store, "obj"), 0);
	CHECK_EQ(store_pwrite(o2, "xyz", 3, 3), 3);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), 6);
	CHECK(memcmp(buf, "abcxyz", 6) == 0);
	CHECK_EQ(store_close(o2), 0);
	CHECK_EQ(store_close(o), 0);

	CHECK_EQ(store_mkdir(store, "dir"), 0);
	CHECK_EQ(store_open(store, "dir", 0, &o), -EISDIR);
	CHECK_EQ(store_open(store, "dir/none", 0, &o), -ENOENT);
	CHECK_EQ(store_open(store, "none/obj", STORE_O_CREATE, &o), -ENOENT);
	CHECK_EQ(store_rmdir(store, "dir"), 0);
}

/* Checks of an object the caller may read but not write (mode 0444, owned
 * by someone else): open without STORE_O_RDONLY falls back to reading. */
static void check_read_only_fallback(void)
{
	struct store_obj *o = NULL;
	char buf[8] = { 0 };

	CHECK_EQ(store_open(store, "ro", 0, &o), 0);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), 4);
	CHECK_STR(buf, "data");
	CHECK_EQ(store_pwrite(o, "x", 1, 0), -EBADF);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_open(store, "ro", STORE_O_TRUNC, &o), -EACCES);
	CHECK_EQ(store_write_all(store, "denied", "x", 1), -EACCES); /* the folder is not ours */
}

static void test_read_only_fallback(void)
{
	const uid_t nobody = 65534;
	int status = -1;
	pid_t child;

	CHECK_EQ(store_write_all(store, "ro", "data", 4), 0);
	CHECK_EQ(chmod(outside("ro"), 0444), 0);
	if (geteuid() != 0) {
		check_read_only_fallback();
	} else {
		/* root may write anything: check as nobody, in a child */
		CHECK_EQ(chmod(root, 0755), 0);
		fflush(NULL);
		child = fork();
		if (child == 0) {
			if (setgid(nobody) < 0 || setuid(nobody) < 0)
				_exit(2);
			check_read_only_fallback();
			_exit(checks_failed ? 1 : 0);
		}
		CHECK(child > 0 && waitpid(child, &status, 0) == child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK_EQ(chmod(root, 0700), 0);
	}
	CHECK_EQ(store_unlink(store, "ro"), 0);
}

static void test_statfs(void)
{
	struct statvfs via_store, direct;

	CHECK_EQ(store_statfs(store, &via_store), 0);
	CHECK_EQ(statvfs(root, &direct), 0);
	CHECK(via_store.f_bsize > 0);
	CHECK_EQ(via_store.f_fsid, direct.f_fsid);
	CHECK_EQ(via_store.f_blocks, direct.f_blocks);
}

/* Paths that are absolute, hold "." / ".." or empty components are refused
 * by every operation, and nothing happens outside the root. */
static void test_bad_paths(void)
{
	static const char *const bad[] = {
		"/etc/passwd", "..", "../escape", "a/../../escape", ".", "./a", "a/./b", "a//b", "a/", "/",
	};
	struct store_attr a = { .mode = 0600 };
	struct store_obj *o;
	uint8_t *buf;
	size_t len;
	char *parent_escape;

	CHECK_EQ(store_mkdir(store, "a"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *p = bad[i];
		CHECK_EQ(store_getattr(store, p, &a), -EINVAL);
		CHECK_EQ(store_setattr(store, p, &a, STORE_SET_MODE), -EINVAL);
		CHECK_EQ(store_list(store, p, collect, NULL), -EINVAL);
		CHECK_EQ(store_mkdir(store, p), -EINVAL);
		CHECK_EQ(store_rmdir(store, p), -EINVAL);
		CHECK_EQ(store_unlink(store, p), -EINVAL);
		CHECK_EQ(store_rename(store, p, "x", 0), -EINVAL);
		CHECK_EQ(store_rename(store, "a", p, 0), -EINVAL);
		CHECK_EQ(store_read_all(store, p, 100, &buf, &len), -EINVAL);
		CHECK_EQ(store_write_all(store, p, "x", 1), -EINVAL);
		CHECK_EQ(store_open(store, p, STORE_O_CREATE, &o), -EINVAL);
	}
	/* the root itself is no object */
	CHECK_EQ(store_mkdir(store, ""), -EINVAL);
	CHECK_EQ(store_rmdir(store, ""), -EINVAL);
	CHECK_EQ(store_unlink(store, ""), -EINVAL);
	CHECK_EQ(store_write_all(store, "", "x", 1), -EINVAL);
	CHECK_EQ(store_open(store, "", 0, &o), -EINVAL);
	CHECK_EQ(store_rename(store, "", "b", 0), -EINVAL);

	CHECK(asprintf(&parent_escape, "%s/../escape", root) > 0);
	CHECK(access(parent_escape, F_OK) < 0);
	free(parent_escape);
	CHECK_STR(list_joined(""), "a/");
	CHECK_EQ(store_rmdir(store, "a"), 0);
}

/* Symlinks are no part of the format: the last component is never followed. */
static void test_symlinks_not_followed(void)
{
	struct store_obj *o;
	struct store_attr a;
	uint8_t *buf;
	size_t len;

	CHECK_EQ(symlink("/etc/hostname", outside("link")), 0);
	CHECK_EQ(symlink("/etc", outside("dirlink")), 0);
	CHECK_EQ(store_read_all(store, "link", 4096, &buf, &len), -ELOOP);
	CHECK_EQ(store_open(store, "link", STORE_O_RDONLY, &o), -ELOOP);
	CHECK_EQ(store_write_all(store, "dirlink/x", "x", 1), -ENOTDIR);
	CHECK_STR(list_joined("dirlink"), "error -20"); /* -ENOTDIR: O_NOFOLLOW|O_DIRECTORY */
	CHECK_EQ(store_getattr(store, "dirlink", &a), 0);
	CHECK(!a.is_dir);
	CHECK_STR(list_joined(""), "dirlink;link");
	CHECK_EQ(store_unlink(store, "link"), 0);
	CHECK_EQ(store_unlink(store, "dirlink"), 0);
	CHECK(access("/etc/hostname", F_OK) == 0);
}

int main(void)
{
	char *err = NULL;

	umask(022);
	root = make_temp_folder();
	if (store_local_open(root, &store, &err) != 0) {
		fprintf(stderr, "store_local_open(%s): %s\n", root, err ? err : "?");
		return EXIT_FAILURE;
	}
	test_open_errors();
	test_write_read_all();
	test_write_all_atomic();
	test_folders();
	test_list();
	test_getattr_setattr();
	test_rename();
	test_objects();
	test_read_only_fallback();
	test_statfs();
	test_bad_paths();
	test_symlinks_not_followed();
	CHECK_STR(list_joined(""), ""); /* every test cleaned up after itself */
	store_destroy(store);
	remove_temp_folder(root);
	return check_summary();
}
