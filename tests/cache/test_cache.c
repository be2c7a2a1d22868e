/* Unit tests of the cache (backends/cache.c) over the in-memory fake remote:
 * ranged fills, read-ahead, delayed and synchronous uploads, the upload queue
 * across a crash, conflicts, eviction, a full cache disk, the listing cache,
 * offline work, unlink and rename of changed objects (also when the cache
 * cannot move its copies along; the base of a moved object), the requests
 * that fresh listings spare mkdir, rmdir and unlink, a listing fetched
 * during an upload, the parallel flush, and a private cache folder. */
#include "../backends/check.h"
#include "backends/cache.h"
#include "fake_remote.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define UPLOAD_DELAY_MS 100
#define META_TIMEOUT_MS 300

/* fsync is wrapped (-Wl,--wrap=fsync, see meson.build): the folders
 * fsync'd, in order, so that tests can see what was made durable when. */
#define SYNC_LOG_MAX 256
static pthread_mutex_t sync_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *sync_log[SYNC_LOG_MAX];
static int sync_log_n;
static char slow_sync_folder[4200]; /* fsync of this folder takes slow_sync_ms longer */
static long slow_sync_ms;
static char failing_sync_folder[4200]; /* fsync of this folder fails with EIO */

static void sleep_ms(long ms);

int __real_fsync(int fd);
int __wrap_fsync(int fd);

int __wrap_fsync(int fd)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (n > 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		long delay = 0;
		bool fail;
		path[n] = '\0';
		pthread_mutex_lock(&sync_log_lock);
		if (sync_log_n < SYNC_LOG_MAX)
			sync_log[sync_log_n++] = strdup(path);
		if (strcmp(path, slow_sync_folder) == 0)
			delay = slow_sync_ms;
		fail = strcmp(path, failing_sync_folder) == 0;
		pthread_mutex_unlock(&sync_log_lock);
		sleep_ms(delay);
		if (fail) {
			errno = EIO;
			return -1;
		}
	}
	return __real_fsync(fd);
}

static void sync_log_clear(void)
{
	pthread_mutex_lock(&sync_log_lock);
	while (sync_log_n)
		free(sync_log[--sync_log_n]);
	pthread_mutex_unlock(&sync_log_lock);
}

/* fsync of the cache folder's sub-folder sub takes ms longer (0: not). */
static void slow_down_sync_of(const char *cache, const char *sub, long ms)
{
	pthread_mutex_lock(&sync_log_lock);
	snprintf(slow_sync_folder, sizeof slow_sync_folder, "%s/%s", cache, sub);
	slow_sync_ms = ms;
	pthread_mutex_unlock(&sync_log_lock);
}

/* fsync of the cache folder's sub-folder sub fails with EIO (NULL: none does). */
static void fail_sync_of(const char *cache, const char *sub)
{
	pthread_mutex_lock(&sync_log_lock);
	if (sub)
		snprintf(failing_sync_folder, sizeof failing_sync_folder, "%s/%s", cache, sub);
	else
		failing_sync_folder[0] = '\0';
	pthread_mutex_unlock(&sync_log_lock);
}

/* lstat is wrapped too (-Wl,--wrap=lstat64, see meson.build): right after
 * it looks at swap_folder, that folder is swapped for one that everybody
 * may write to, as another user could between a check by name and an open. */
static char swap_folder[4200];

int __real_lstat64(const char *path, struct stat *st);
int __wrap_lstat64(const char *path, struct stat *st);

int __wrap_lstat64(const char *path, struct stat *st)
{
	int rc = __real_lstat64(path, st);
	char aside[4300];

	if (swap_folder[0] && strcmp(path, swap_folder) == 0) {
		swap_folder[0] = '\0';
		snprintf(aside, sizeof aside, "%s.checked", path);
		if (rename(path, aside) == 0 && mkdir(path, 0700) == 0)
			chmod(path, 0777);
	}
	return rc;
}

static char *root;      /* temp folder of this run */
static char cache_dir[4096];
static int conflict_calls;

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* Wait up to 5 s for path to be on the fake with exactly len bytes of want. */
static bool wait_for_object(struct fake_remote *f, const char *path, const void *want, size_t len)
{
	for (int i = 0; i < 500; i++) {
		size_t got_len = 0;
		uint8_t *got = fake_get(f, path, &got_len);
		bool same = got && got_len == len && memcmp(got, want, len) == 0;
		free(got);
		if (same)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Wait up to 5 s for the cache to have nothing queued. */
static bool wait_until_clean(struct store *s)
{
	struct cache_stats st;

	for (int i = 0; i < 500; i++) {
		if (store_cache_stats(s, &st) == 0 && st.pending_uploads == 0)
			return true;
		sleep_ms(10);
	}
	return false;
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
	return p;
}

static struct store *open_cache_meta(struct fake_remote *f, uint64_t max_bytes, unsigned delay_ms,
				     unsigned meta_timeout_ms)
{
	struct cache_options o = { .dir = cache_dir, .max_bytes = max_bytes,
				   .upload_delay_ms = delay_ms, .meta_timeout_ms = meta_timeout_ms };
	struct store *s = NULL;
	char *err = NULL;

	if (!CHECK_EQ(store_cache_open(fake_as_remote(f), &o, &s, &err), 0)) {
		fprintf(stderr, "  %s\n", err ? err : "(no message)");
		free(err);
		exit(EXIT_FAILURE);
	}
	return s;
}

static struct store *open_cache_with(struct fake_remote *f, uint64_t max_bytes, unsigned delay_ms)
{
	return open_cache_meta(f, max_bytes, delay_ms, META_TIMEOUT_MS);
}

/* Uploads after a minute, listings fresh for a minute (however slow the machine). */
static struct store *open_cache_lasting(struct fake_remote *f)
{
	return open_cache_meta(f, 0, 60000, 60000);
}

static struct store *open_cache(struct fake_remote *f)
{
	return open_cache_with(f, 0, UPLOAD_DELAY_MS);
}

/* Where in the sync log the cache folder's sub-folder sub was fsync'd
 * first; SYNC_LOG_MAX if never. */
static int synced_at(const char *sub)
{
	char want[PATH_MAX + 64];
	int at = SYNC_LOG_MAX;

	snprintf(want, sizeof want, "%s/%s", cache_dir, sub);
	pthread_mutex_lock(&sync_log_lock);
	for (int i = sync_log_n - 1; i >= 0; i--)
		if (strcmp(sync_log[i], want) == 0)
			at = i;
	pthread_mutex_unlock(&sync_log_lock);
	return at;
}

/* A fresh cache folder for the next test. */
static void new_cache_dir(const char *name)
{
	snprintf(cache_dir, sizeof cache_dir, "%s/%s", root, name);
}

/* Read len bytes at off through the store and compare them with want. */
static bool reads_as(struct store_obj *o, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *buf = malloc(len);
	ssize_t n = store_pread(o, buf, len, off);
	bool same = n == (ssize_t)len && memcmp(buf, want, len) == 0;

	free(buf);
	return same;
}

static size_t files_in(const char *folder)
{
	char path[4200];
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/%s", cache_dir, folder);
	d = opendir(path);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_ranged_fill_and_read_ahead(void)
{
	struct fake_remote *f = fake_new();
	size_t len = 6 * MIB + 1234;
	uint8_t *data = pattern(len, 1);
	struct cache_stats st;
	struct store_obj *o;
	struct store *s;

	new_cache_dir("ranged");
	fake_mkdir(f, "d");
	fake_set(f, "d/big", data, len);
	s = open_cache(f);
	CHECK_EQ(store_open(s, "d/big", STORE_O_RDONLY, &o), 0);
	/* a read in the middle fetches its block only */
	CHECK(reads_as(o, 3 * MIB + 5, data + 3 * MIB + 5, 100));
	CHECK_EQ(fake_count(f, FAKE_GET), 1);
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.bytes, MIB);
	CHECK(reads_as(o, 3 * MIB + 500, data + 3 * MIB + 500, 1000));
	CHECK_EQ(fake_count(f, FAKE_GET), 1); /* present already */
	/* a reader going through from the start: few requests, thanks to read-ahead */
	fake_reset_counts(f);
	for (size_t off = 0; off < len; off += 32 * 1024) {
		size_t n = len - off < 32 * 1024 ? len - off : 32 * 1024;
		if (!CHECK(reads_as(o, off, data + off, n)))
			break;
	}
	CHECK(fake_count(f, FAKE_GET) <= 3);
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.bytes, len);
	{
		uint8_t byte;
		CHECK_EQ(store_pread(o, &byte, 1, len), 0); /* at the end */
	}
	CHECK_EQ(store_close(o), 0);
	store_destroy(s);

	/* the next mount reuses the complete copy: same ETag, no GET */
	fake_reset_counts(f);
	s = open_cache(f);
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.bytes, len); /* counted from what is on disk */
	CHECK_EQ(st.objects, 1);
	CHECK_EQ(store_open(s, "d/big", STORE_O_RDONLY, &o), 0);
	CHECK(reads_as(o, 0, data, len));
	CHECK_EQ(fake_count(f, FAKE_GET), 0);
	CHECK_EQ(store_close(o), 0);
	store_destroy(s);
	fake_free(f);
	free(data);
}

static void test_delayed_upload_after_close(void)
{
	struct fake_remote *f = fake_new();
	const char text[] = "ciphertext bytes";
	struct store_attr a;
	struct store_obj *o;
	struct store *s;

	new_cache_dir("delayed");
	s = open_cache_with(f, 0, 300);
	CHECK_EQ(store_open(s, "new", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, text, sizeof text, 0), (long)sizeof text);
	/* it exists at once for this client, and is queued durably */
	CHECK_EQ(store_getattr(s, "new", &a), 0);
	CHECK_EQ(a.size, sizeof text);
	CHECK_EQ(files_in("queue"), 1);
	CHECK_EQ(store_close(o), 0);
	CHECK(!fake_has(f, "new")); /* not yet: after the delay */
	CHECK_EQ(store_open(s, "new", STORE_O_CREATE | STORE_O_EXCL, &o), -EEXIST);
	CHECK(wait_for_object(f, "new", text, sizeof text));
	CHECK_EQ(fake_count(f, FAKE_PUT), 1);
	CHECK(wait_until_clean(s));
	CHECK_EQ(files_in("queue"), 0);
	store_destroy(s);
	fake_free(f);
}

static void test_flush_uploads_everything(void)
{
	struct fake_remote *f = fake_new();
	const char a[] = "first", b[] = "second one";
	struct cache_stats st;
	struct store_obj *o;
	struct store *s;

	new_cache_dir("flush");
	fake_mkdir(f, "sub");
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "top", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, a, sizeof a, 0), (long)sizeof a);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_open(s, "sub/inner", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, b, sizeof b, 0), (long)sizeof b);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.pending_uploads, 2);
	CHECK_EQ(st.pending_bytes, sizeof a + sizeof b);
	CHECK_EQ(fake_count(f, FAKE_PUT), 0);
	CHECK_EQ(store_cache_flush(s), 0); /* unmount: everything, now */
	CHECK(wait_for_object(f, "top", a, sizeof a));
	CHECK(wait_for_object(f, "sub/inner", b, sizeof b));
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.pending_uploads, 0);
	CHECK_EQ(files_in("queue"), 0);
	/* a refused upload: flush says so, the change stays queued */
	CHECK_EQ(store_open(s, "top", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, b, sizeof b, 0), (long)sizeof b);
	CHECK_EQ(store_close(o), 0);
	fake_fail(f, -EACCES);
	CHECK_EQ(store_cache_flush(s), -EACCES);
	CHECK_EQ(files_in("queue"), 1);
	fake_fail(f, 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(wait_for_object(f, "top", b, sizeof b));
	store_destroy(s);
	fake_free(f);
}

static void test_fsync_uploads_now(void)
{
	struct fake_remote *f = fake_new();
	const char v1[] = "version one", v2[] = "VERSION";
	char want[sizeof v1];
	struct store_obj *o;
	struct store *s;

	new_cache_dir("fsync");
	fake_set(f, "obj", v1, sizeof v1);
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "obj", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, v2, strlen(v2), 0), (long)strlen(v2));
	CHECK_EQ(fake_count(f, FAKE_PUT), 0);
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(fake_count(f, FAKE_PUT), 1);
	memcpy(want, v1, sizeof v1);
	memcpy(want, v2, strlen(v2));
	CHECK(wait_for_object(f, "obj", want, sizeof want));
	CHECK_EQ(store_fsync(o, false), 0); /* clean: nothing to send */
	CHECK_EQ(fake_count(f, FAKE_PUT), 1);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK_EQ(fake_count(f, FAKE_PUT), 1);
	store_destroy(s);
	fake_free(f);
}

/* A process that queues a change and dies at once (no flush, no delay). */
static void crash_after_change(struct fake_remote *f, const char *text)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct store *s = open_cache_with(f, 0, 60000);
		struct store_obj *o;
		if (store_open(s, "queued", STORE_O_CREATE | STORE_O_EXCL, &o) ||
		    store_pwrite(o, text, strlen(text), 0) != (ssize_t)strlen(text) || store_close(o))
			_exit(1);
		_exit(0); /* kill -9 or a power cut after close returned */
	}
	{
		int status = 0;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void test_queue_survives_a_crash(void)
{
	struct fake_remote *f = fake_new();
	const char text[] = "made before the crash";
	struct store *s;

	new_cache_dir("crash");
	crash_after_change(f, text);
	CHECK(!fake_has(f, "queued")); /* the child's uploads never happened */
	CHECK_EQ(files_in("queue"), 1);
	s = open_cache(f); /* the next mount resumes the queue */
	CHECK(wait_for_object(f, "queued", text, strlen(text)));
	store_destroy(s);
	fake_free(f);
}

static char *conflict_name(void *ctx, const char *path)
{
	char *out;

	(void)ctx;
	conflict_calls++;
	return asprintf(&out, "%s (conflict)", path) < 0 ? NULL : out;
}

static void test_conflict_keeps_both(void)
{
	struct fake_remote *f = fake_new();
	const char base[] = "base", mine[] = "mine", theirs[] = "theirs!";
	struct store_obj *o;
	struct store *s;
	uint8_t buf[16];

	new_cache_dir("conflict");
	fake_mkdir(f, "dir");
	fake_set(f, "dir/notes", base, sizeof base);
	s = open_cache_with(f, 0, 200);
	store_cache_set_conflict_handler(s, conflict_name, NULL);
	CHECK_EQ(store_open(s, "dir/notes", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, mine, sizeof mine, 0), (long)sizeof mine);
	fake_set(f, "dir/notes", theirs, sizeof theirs); /* another client, meanwhile */
	CHECK_EQ(store_fsync(o, false), -EIO);          /* no silent overwrite */
	CHECK_EQ(store_close(o), 0);
	CHECK(wait_for_object(f, "dir/notes (conflict)", mine, sizeof mine));
	CHECK(wait_for_object(f, "dir/notes", theirs, sizeof theirs));
	CHECK_EQ(conflict_calls, 1);
	/* the original is fetched afresh: the server's version */
	CHECK_EQ(store_open(s, "dir/notes", STORE_O_RDONLY, &o), 0);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), (long)sizeof theirs);
	CHECK(memcmp(buf, theirs, sizeof theirs) == 0);
	CHECK_EQ(store_close(o), 0);
	/* a new object whose name someone else took meanwhile: a conflict too */
	CHECK_EQ(store_open(s, "dir/fresh", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, mine, sizeof mine, 0), (long)sizeof mine);
	fake_set(f, "dir/fresh", theirs, sizeof theirs);
	CHECK_EQ(store_close(o), 0);
	CHECK(wait_for_object(f, "dir/fresh (conflict)", mine, sizeof mine));
	CHECK(wait_for_object(f, "dir/fresh", theirs, sizeof theirs));
	CHECK_EQ(conflict_calls, 2);
	store_destroy(s);
	fake_free(f);
}

static void read_whole(struct store *s, const char *path, const uint8_t *want, size_t len)
{
	struct store_obj *o;

	if (!CHECK_EQ(store_open(s, path, STORE_O_RDONLY, &o), 0))
		return;
	CHECK(reads_as(o, 0, want, len));
	CHECK_EQ(store_close(o), 0);
}

static void test_eviction(void)
{
	struct fake_remote *f = fake_new();
	uint8_t *data = pattern(MIB, 7);
	struct cache_stats st;
	struct store *s;
	char name[16];

	new_cache_dir("evict");
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "o%d", i);
		fake_set(f, name, data, MIB);
	}
	s = open_cache_with(f, 3 * MIB, UPLOAD_DELAY_MS);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "o%d", i);
		read_whole(s, name, data, MIB);
	}
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK(st.bytes <= 3 * MIB);
	fake_reset_counts(f);
	read_whole(s, "o4", data, MIB); /* recently used: still here */
	CHECK_EQ(fake_count(f, FAKE_GET), 0);
	read_whole(s, "o0", data, MIB); /* least recently used: evicted */
	CHECK_EQ(fake_count(f, FAKE_GET), 1);
	store_destroy(s);
	fake_free(f);
	free(data);
}

static void test_full_cache_disk(void)
{
	struct fake_remote *f = fake_new();
	uint8_t *data = pattern(4 * MIB, 3);
	struct store_obj *o;
	struct store *s;
	ssize_t n = 0;

	new_cache_dir("tmpfs");
	if (mkdir(cache_dir, 0700) < 0 || mount("umbrafs-test", cache_dir, "tmpfs", 0, "size=2m,mode=0700") < 0) {
		printf("# skipped: full cache disk (needs root to mount a tmpfs)\n");
		free(data);
		fake_free(f);
		return;
	}
	fake_set(f, "remote", data, 4 * MIB);
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "big", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	for (uint64_t off = 0; off < 4 * MIB && n >= 0; off += 256 * 1024)
		n = store_pwrite(o, data + off, 256 * 1024, off);
	CHECK_EQ(n, -ENOSPC); /* ENOSPC, not a crash or a silent loss */
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_unlink(s, "big"), 0); /* room again */
	/* reading a remote object that does not fit: ENOSPC too */
	CHECK_EQ(store_open(s, "remote", STORE_O_RDONLY, &o), 0);
	{
		uint8_t *buf = malloc(4 * MIB);
		CHECK_EQ(store_pread(o, buf, 4 * MIB, 0), -ENOSPC);
		free(buf);
	}
	CHECK_EQ(store_close(o), 0);
	store_destroy(s);
	CHECK_EQ(umount(cache_dir), 0);
	fake_free(f);
	free(data);
}

static int count_entry(void *ctx, const char *name, bool is_dir)
{
	(void)name;
	(void)is_dir;
	++*(int *)ctx;
	return 0;
}

static void test_listing_cache(void)
{
	struct fake_remote *f = fake_new();
	struct store_attr a;
	struct store_obj *o;
	struct store *s;
	char name[32];
	int entries = 0;

	new_cache_dir("listing");
	fake_mkdir(f, "folder");
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "folder/f%d", i);
		fake_set(f, name, name, strlen(name));
	}
	s = open_cache_with(f, 0, 60000);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "folder/f%d", i);
		CHECK_EQ(store_getattr(s, name, &a), 0);
		CHECK_EQ(a.size, strlen(name));
		CHECK(!a.is_dir && a.mode == 0644 && a.uid == getuid());
	}
	CHECK_EQ(store_getattr(s, "folder/missing", &a), -ENOENT);
	CHECK_EQ(store_getattr(s, "folder/f1/inside", &a), -ENOTDIR);
	CHECK_EQ(store_list(s, "folder", count_entry, &entries), 0);
	CHECK_EQ(entries, 10);
	CHECK_EQ(fake_count(f, FAKE_LIST), 1); /* one listing for all of that */
	CHECK_EQ(fake_count(f, FAKE_HEAD), 0);
	/* local changes show at once, without asking */
	CHECK_EQ(store_open(s, "folder/new", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_mkdir(s, "folder/sub"), 0);
	CHECK_EQ(store_getattr(s, "folder/sub", &a), 0);
	CHECK(a.is_dir && a.mode == 0755);
	CHECK_EQ(store_unlink(s, "folder/f0"), 0);
	CHECK_EQ(store_getattr(s, "folder/f0", &a), -ENOENT);
	entries = 0;
	CHECK_EQ(store_list(s, "folder", count_entry, &entries), 0);
	CHECK_EQ(entries, 11); /* 10 - f0 + new + sub */
	CHECK_EQ(store_list(s, "folder/sub", count_entry, &entries), 0);
	CHECK_EQ(fake_count(f, FAKE_LIST), 1);
	/* setattr is accepted and changes nothing */
	a.mode = 0600;
	CHECK_EQ(store_setattr(s, "folder/f1", &a, STORE_SET_MODE), 0);
	/* after the timeout, asked again */
	sleep_ms(META_TIMEOUT_MS + 50);
	CHECK_EQ(store_getattr(s, "folder/f1", &a), 0);
	CHECK_EQ(a.mode, 0644);
	CHECK_EQ(fake_count(f, FAKE_LIST), 2);
	store_destroy(s);
	fake_free(f);
}

static void test_offline(void)
{
	struct fake_remote *f = fake_new();
	const char text[] = "read once, then offline", more[] = "OFFLINE";
	char want[sizeof text];
	struct store_obj *o;
	struct store *s;
	uint8_t *small;
	size_t len;

	new_cache_dir("offline");
	fake_set(f, "cached", text, sizeof text);
	fake_set(f, "never-read", text, sizeof text);
	s = open_cache_with(f, 0, 50);
	read_whole(s, "cached", (const uint8_t *)text, sizeof text);
	fake_fail(f, -ECONNREFUSED);
	sleep_ms(META_TIMEOUT_MS + 50); /* the listing is stale: the remote is asked, and fails */
	read_whole(s, "cached", (const uint8_t *)text, sizeof text);
	CHECK_EQ(store_read_all(s, "cached", 100, &small, &len), 0);
	CHECK(len == sizeof text && memcmp(small, text, len) == 0);
	free(small);
	CHECK_EQ(store_open(s, "never-read", STORE_O_RDONLY, &o), -EIO);
	/* a change offline: fsync is durable locally and says so; it uploads later */
	CHECK_EQ(store_open(s, "cached", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, more, strlen(more), 0), (long)strlen(more));
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_mkdir(s, "no-network"), -EIO);
	fake_fail(f, 0);
	memcpy(want, text, sizeof text);
	memcpy(want, more, strlen(more));
	CHECK(wait_for_object(f, "cached", want, sizeof want));
	store_destroy(s);
	fake_free(f);
}

static void test_unlink_and_rename_changed(void)
{
	struct fake_remote *f = fake_new();
	const char v1[] = "old", v2[] = "new content";
	struct cache_stats st;
	struct store_attr a;
	struct store_obj *o;
	struct store *s;
	uint8_t buf[32];

	new_cache_dir("names");
	fake_set(f, "before", v1, sizeof v1);
	s = open_cache_with(f, 0, 60000);
	/* made and changed here, removed before upload: nothing goes up */
	CHECK_EQ(store_open(s, "scratch", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, v2, sizeof v2, 0), (long)sizeof v2);
	CHECK_EQ(store_unlink(s, "scratch"), 0);
	/* the open handle keeps working */
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), (long)sizeof v2);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_cache_stats(s, &st), 0);
	CHECK_EQ(st.pending_uploads, 0);
	CHECK_EQ(files_in("queue"), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(!fake_has(f, "scratch"));
	CHECK_EQ(fake_count(f, FAKE_PUT), 0);

	/* changed here, renamed: the new content under the new name only */
	CHECK_EQ(store_open(s, "before", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, v2, sizeof v2, 0), (long)sizeof v2);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_rename(s, "before", "after", 0), 0);
	CHECK(!fake_has(f, "before"));
	CHECK(wait_for_object(f, "after", v2, sizeof v2));
	CHECK_EQ(store_getattr(s, "before", &a), -ENOENT);
	CHECK_EQ(store_getattr(s, "after", &a), 0);
	CHECK_EQ(a.size, sizeof v2);
	fake_reset_counts(f);
	read_whole(s, "after", (const uint8_t *)v2, sizeof v2);
	CHECK_EQ(fake_count(f, FAKE_GET), 0); /* the local copy moved along */
	/* a folder with a cached object in it */
	CHECK_EQ(store_mkdir(s, "dir"), 0);
	CHECK_EQ(store_write_all(s, "dir/small", v1, sizeof v1), 0);
	CHECK_EQ(store_rename(s, "dir", "moved", STORE_RENAME_NOREPLACE), 0);
	CHECK(fake_has(f, "moved/small") && !fake_has(f, "dir"));
	{
		uint8_t *got;
		size_t len;
		CHECK_EQ(store_read_all(s, "moved/small", 100, &got, &len), 0);
		CHECK(len == sizeof v1 && memcmp(got, v1, len) == 0);
		free(got);
	}
	CHECK_EQ(store_rename(s, "after", "moved", STORE_RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(store_rename(s, "after", "x", STORE_RENAME_EXCHANGE), -EINVAL);
	store_destroy(s);
	fake_free(f);
}

static void test_one_mount_per_folder(void)
{
	struct fake_remote *f = fake_new(), *g = fake_new();
	struct cache_options o = { .dir = cache_dir };
	struct store *s, *t = NULL;
	char *err = NULL;

	new_cache_dir("locked");
	s = open_cache(f);
	CHECK_EQ(store_cache_open(fake_as_remote(g), &o, &t, &err), -EBUSY);
	CHECK(err && strstr(err, "in use by another umbrafs"));
	free(err);
	{
		struct stat st;
		CHECK(stat(cache_dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	}
	store_destroy(s);
	fake_free(f);
	fake_free(g);
}

/* The other client's version, changed while ours was partly read, is not
 * overwritten by a mix of both: reads and writes of the old version fail
 * until it is opened afresh. */
static void test_remote_change_is_never_mixed_in(void)
{
	struct fake_remote *f = fake_new();
	size_t len = 8 * MIB;
	uint8_t *v1 = malloc(len), *v2 = malloc(len), buf[100];
	struct store_obj *o;
	struct store *s;

	new_cache_dir("changed");
	memset(v1, 'A', len);
	memset(v2, 'B', len);
	fake_mkdir(f, "dir");
	fake_set(f, "dir/big", v1, len);
	s = open_cache_with(f, 0, 50);
	conflict_calls = 0;
	store_cache_set_conflict_handler(s, conflict_name, NULL);
	CHECK_EQ(store_open(s, "dir/big", 0, &o), 0);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 0), (long)sizeof buf);
	fake_set(f, "dir/big", v2, len); /* another client */
	CHECK_EQ(store_pread(o, buf, sizeof buf, 7 * MIB), -EIO);
	CHECK_EQ(store_pwrite(o, "XXXX", 4, 0), -EIO);
	CHECK_EQ(store_pread(o, buf, sizeof buf, 6 * MIB), -EIO);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(wait_for_object(f, "dir/big", v2, len));
	CHECK_EQ(conflict_calls, 0);
	read_whole(s, "dir/big", v2, len); /* opened afresh: theirs */
	store_destroy(s);
	fake_free(f);
	free(v1);
	free(v2);
}

/* A server without ETags: a change is never uploaded over whatever is
 * there (it becomes a conflict copy instead). */
static void test_unknown_base_is_never_overwritten(void)
{
	struct fake_remote *f = fake_new();
	const char base[] = "base", mine[] = "mine", theirs[] = "theirs!";
	struct store_obj *o;
	struct store *s;

	new_cache_dir("no-etags");
	fake_without_etags(f);
	fake_set(f, "notes", base, sizeof base);
	s = open_cache_with(f, 0, 50);
	conflict_calls = 0;
	store_cache_set_conflict_handler(s, conflict_name, NULL);
	CHECK_EQ(store_open(s, "notes", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, mine, sizeof mine, 0), (long)sizeof mine);
	fake_set(f, "notes", theirs, sizeof theirs);
	CHECK_EQ(store_fsync(o, false), -EIO);
	CHECK_EQ(store_close(o), 0);
	CHECK(wait_for_object(f, "notes (conflict)", mine, sizeof mine));
	CHECK(wait_for_object(f, "notes", theirs, sizeof theirs));
	store_destroy(s);
	fake_free(f);
}

struct late_write {
	struct store_obj *o;
	ssize_t result;
};

static void *write_during_rename(void *arg)
{
	struct late_write *w = arg;

	sleep_ms(100);
	w->result = store_pwrite(w->o, "SECOND", 6, 5);
	return NULL;
}

/* A change made while its object is being renamed is queued under the new
 * name: the next mount uploads it there. */
static void test_rename_moves_the_queued_change(void)
{
	struct fake_remote *f = fake_new();
	struct late_write w = { 0 };
	struct store *s;
	pthread_t t;

	new_cache_dir("rename-queue");
	fake_delay(f, FAKE_MOVE, 300);
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "a", STORE_O_CREATE | STORE_O_EXCL, &w.o), 0);
	CHECK_EQ(store_pwrite(w.o, "FIRST", 5, 0), 5);
	pthread_create(&t, NULL, write_during_rename, &w);
	CHECK_EQ(store_rename(s, "a", "b", 0), 0);
	pthread_join(t, NULL);
	CHECK_EQ(w.result, 6);
	CHECK_EQ(store_close(w.o), 0); /* acknowledged */
	store_destroy(s);              /* gone without uploading, as in a crash */
	fake_delay(f, FAKE_MOVE, 0);
	s = open_cache(f);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(wait_for_object(f, "b", "FIRSTSECOND", 11));
	CHECK(!fake_has(f, "a"));
	store_destroy(s);
	fake_free(f);
}

/* A listing of "dir" made in a thread: did it succeed, did it name "new"? */
struct dir_listing {
	struct store *s;
	int rc;
	bool saw_new;
};

static int note_new(void *ctx, const char *name, bool is_dir)
{
	struct dir_listing *dl = ctx;

	if (strcmp(name, "new") == 0 && !is_dir)
		dl->saw_new = true;
	return 0;
}

static void *list_dir(void *arg)
{
	struct dir_listing *dl = arg;

	dl->rc = store_list(dl->s, "dir", note_new, dl);
	return NULL;
}

/* A listing fetched while a local change happens does not undo it: neither
 * in the listing that fetch answers (the object, uploaded meanwhile, is
 * neither pending nor in the server's older answer) nor later. */
static void test_listing_fetch_keeps_a_local_change(void)
{
	struct fake_remote *f = fake_new();
	struct store_attr a;
	struct store_obj *o;
	struct store *s;
	struct dir_listing dl = { 0 };
	pthread_t t;
	char buf[8] = { 0 };

	new_cache_dir("listing-race");
	fake_mkdir(f, "dir");
	s = open_cache_with(f, 0, 50);
	CHECK_EQ(store_open(s, "dir/new", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, "data", 4, 0), 4);
	sleep_ms(META_TIMEOUT_MS + 50); /* the listing is stale: the next use fetches it */
	fake_delay(f, FAKE_LIST, 200);  /* listed before the upload, answered after it */
	fake_reset_counts(f);
	dl.s = s;
	pthread_create(&t, NULL, list_dir, &dl);
	for (int i = 0; i < 400 && fake_count(f, FAKE_LIST) == 0; i++)
		sleep_ms(5); /* the fake has taken its answer: it cannot hold dir/new */
	CHECK_EQ(fake_count(f, FAKE_LIST), 1);
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_close(o), 0);
	pthread_join(t, NULL);
	fake_delay(f, FAKE_LIST, 0);
	CHECK_EQ(dl.rc, 0);
	CHECK(dl.saw_new);
	CHECK(fake_has(f, "dir/new"));
	CHECK_EQ(store_getattr(s, "dir/new", &a), 0);
	CHECK_EQ(store_open(s, "dir/new", STORE_O_CREATE, &o), 0);
	CHECK_EQ(store_pread(o, buf, 4, 0), 4);
	CHECK(memcmp(buf, "data", 4) == 0);
	CHECK_EQ(store_close(o), 0);
	store_destroy(s);
	fake_free(f);
}

static void *flush_cache(void *arg)
{
	store_cache_flush(arg);
	return NULL;
}

/* An object made here is listed while its upload finishes: between the
 * server's answer and the queue record's removal (made slow here) it is no
 * longer new, not yet clean, and not in the listing fetched before. */
static void test_listing_shows_an_object_being_uploaded(void)
{
	struct fake_remote *f = fake_new();
	struct dir_listing dl = { 0 };
	struct store_obj *o;
	struct store *s;
	pthread_t t;

	new_cache_dir("listing-upload");
	fake_mkdir(f, "dir");
	s = open_cache_lasting(f); /* uploads when flushed; the listing stays fresh */
	dl.s = s;
	CHECK_EQ(store_open(s, "dir/new", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_pwrite(o, "data", 4, 0), 4);
	CHECK_EQ(store_close(o), 0);
	slow_down_sync_of(cache_dir, "queue", 400);
	pthread_create(&t, NULL, flush_cache, s);
	for (int i = 0; i < 200 && !fake_has(f, "dir/new"); i++)
		sleep_ms(5);
	sleep_ms(50); /* the upload is done on the server, its records not yet */
	fake_reset_counts(f);
	list_dir(&dl);
	CHECK_EQ(fake_count(f, FAKE_LIST), 0); /* answered by the cache, not the server */
	pthread_join(t, NULL);
	slow_down_sync_of(cache_dir, "queue", 0);
	CHECK_EQ(dl.rc, 0);
	CHECK(dl.saw_new);
	store_destroy(s);
	fake_free(f);
}

/* What close or fsync acknowledges survives a power cut: the folder entries
 * of a new local copy (and of new mirror folders) are durable before its
 * queue record is, and the record's removal after the upload is durable. */
static void test_changes_durable_before_queued(void)
{
	struct fake_remote *f = fake_new();
	uint8_t *got;
	struct store_obj *o;
	struct store *s;
	size_t len;

	new_cache_dir("durable");
	fake_mkdir(f, "d1");
	fake_mkdir(f, "d1/d2");
	fake_set(f, "old", "old", 3);
	s = open_cache_with(f, 0, 60000);
	sync_log_clear();
	CHECK_EQ(store_open(s, "d1/d2/new", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK(synced_at("queue") < SYNC_LOG_MAX);
	CHECK(synced_at("objects") < synced_at("queue"));
	CHECK(synced_at("objects/d1") < synced_at("queue"));
	CHECK(synced_at("objects/d1/d2") < synced_at("queue"));
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_read_all(s, "old", 100, &got, &len), 0); /* cached, clean */
	free(got);
	sync_log_clear();
	CHECK_EQ(store_open(s, "old", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, "new", 3, 0), 3);
	CHECK(synced_at("objects") < synced_at("queue"));
	CHECK(synced_at("queue") < SYNC_LOG_MAX);
	CHECK_EQ(store_close(o), 0);
	sync_log_clear();
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK_EQ(files_in("queue"), 0);
	CHECK(synced_at("queue") < SYNC_LOG_MAX);
	store_destroy(s);
	fake_free(f);
}

/* Is there an entry named name in the cache folder's sub-folder? */
static bool cache_has(const char *sub, const char *name)
{
	char path[PATH_MAX + 128];

	snprintf(path, sizeof path, "%s/%s/%s", cache_dir, sub, name);
	return access(path, F_OK) == 0;
}

static void put_file(const char *sub, const char *name, const char *text)
{
	char path[PATH_MAX + 128];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s/%s", cache_dir, sub, name);
	fp = fopen(path, "w");
	if (CHECK(fp != NULL)) {
		fputs(text, fp);
		fclose(fp);
	}
}

/* Open handles of unlinked objects keep working and queue nothing; the
 * next mount finds no unusable records (and deletes any it finds). */
static void test_unlinked_open_objects(void)
{
	struct fake_remote *f = fake_new();
	size_t len = 8 * MIB;
	uint8_t *data = pattern(len, 5);
	struct store_obj *o;
	struct store *s;
	char buf[8];

	new_cache_dir("unlinked");
	fake_set(f, "x", data, len);
	fake_set(f, "y", "small", 5);
	s = open_cache_with(f, 0, 50);
	CHECK_EQ(store_open(s, "x", 0, &o), 0);
	CHECK(reads_as(o, 0, data, 8)); /* partly cached */
	CHECK_EQ(store_unlink(s, "x"), 0);
	CHECK(!fake_has(f, "x"));
	CHECK(reads_as(o, 7 * MIB, data + 7 * MIB, 8));
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_open(s, "y", 0, &o), 0);
	CHECK_EQ(store_pread(o, buf, 5, 0), 5);
	CHECK_EQ(store_unlink(s, "y"), 0);
	CHECK_EQ(store_pwrite(o, "Z", 1, 0), 1);
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_pread(o, buf, 5, 0), 5);
	CHECK(memcmp(buf, "Zmall", 5) == 0);
	CHECK_EQ(files_in("queue"), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(files_in("queue"), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(!fake_has(f, "y"));
	store_destroy(s);
	/* leftovers of a crash: unreadable records, temporary files */
	put_file("queue", "0123456789abcdef", "garbage\n");
	put_file("queue", ".umbrafs-tmp-abcdef", "1 0\t\"v1\"\tz\n");
	put_file("state", ".umbrafs-tmp-ghijkl", "1 5 0 1 0\t\"v1\"\tz\n");
	put_file("objects", "z", "zzzzz");
	s = open_cache_with(f, 0, 50);
	CHECK(!cache_has("queue", "0123456789abcdef"));
	CHECK(!cache_has("queue", ".umbrafs-tmp-abcdef"));
	CHECK(!cache_has("state", ".umbrafs-tmp-ghijkl"));
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(!fake_has(f, "z"));
	store_destroy(s);
	fake_free(f);
	free(data);
}

/* O_CREAT while offline, with no listing known: a cached copy is opened as
 * it is, not truncated. */
static void test_create_offline_keeps_the_cached_copy(void)
{
	struct fake_remote *f = fake_new();
	const char text[] = "cached before the outage";
	struct store_obj *o;
	struct store *s;

	new_cache_dir("create-offline");
	fake_set(f, "doc", text, sizeof text);
	s = open_cache(f);
	read_whole(s, "doc", (const uint8_t *)text, sizeof text);
	store_destroy(s);
	s = open_cache(f); /* no listing known */
	fake_fail(f, -ECONNREFUSED);
	CHECK_EQ(store_open(s, "doc", STORE_O_CREATE, &o), 0);
	CHECK(reads_as(o, 0, (const uint8_t *)text, sizeof text));
	CHECK_EQ(store_close(o), 0);
	fake_fail(f, 0);
	store_destroy(s);
	CHECK(wait_for_object(f, "doc", text, sizeof text));
	fake_free(f);
}

/* A cache folder belongs to one remote: another one is refused (it would
 * upload the first one's queued changes). */
static void test_cache_folder_of_another_remote(void)
{
	struct fake_remote *f = fake_new(), *g = fake_new();
	struct cache_options opt = { .dir = cache_dir };
	struct store_obj *o;
	struct store *s, *t = NULL;
	char *err = NULL;

	new_cache_dir("owner");
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "mine", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_close(o), 0);
	store_destroy(s);
	fake_set_location(g, "fake://other");
	CHECK_EQ(store_cache_open(fake_as_remote(g), &opt, &t, &err), -EEXIST);
	CHECK(err && strstr(err, "fake://remote") && strstr(err, "--cache-dir"));
	free(err);
	if (t) {
		store_cache_flush(t);
		store_destroy(t);
	}
	CHECK(!fake_has(g, "mine"));
	s = open_cache(f);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(fake_has(f, "mine"));
	store_destroy(s);
	fake_free(f);
	fake_free(g);
}

/* The cache folder must be ours alone: no symlink, not writable by others. */
static void test_cache_folder_must_be_private(void)
{
	struct fake_remote *f = fake_new();
	struct cache_options opt = { .dir = cache_dir };
	char real[PATH_MAX];
	struct store *t = NULL;
	char *err = NULL;

	new_cache_dir("shared");
	CHECK_EQ(mkdir(cache_dir, 0777), 0);
	CHECK_EQ(chmod(cache_dir, 0777), 0);
	CHECK_EQ(store_cache_open(fake_as_remote(f), &opt, &t, &err), -EPERM);
	CHECK(err && strstr(err, "writable"));
	free(err);
	store_destroy(t);
	t = NULL;
	err = NULL;
	snprintf(real, sizeof real, "%s", cache_dir);
	new_cache_dir("link");
	CHECK_EQ(symlink(real, cache_dir), 0);
	CHECK_EQ(chmod(real, 0700), 0);
	CHECK_EQ(store_cache_open(fake_as_remote(f), &opt, &t, &err), -EPERM);
	CHECK(err && strstr(err, "symbolic link"));
	free(err);
	store_destroy(t);
	fake_free(f);
}

/* The cache folder is checked as opened, not by its name: a folder swapped
 * in between (by the lstat wrapper here) is never used. */
static void test_cache_folder_checked_as_opened(void)
{
	struct fake_remote *f = fake_new();
	struct cache_options opt = { .dir = cache_dir };
	char owner[PATH_MAX + 64];
	struct store *t = NULL;
	char *err = NULL;
	struct stat st;
	int rc;

	new_cache_dir("swapped");
	CHECK_EQ(mkdir(cache_dir, 0700), 0);
	snprintf(swap_folder, sizeof swap_folder, "%s", cache_dir);
	rc = store_cache_open(fake_as_remote(f), &opt, &t, &err);
	swap_folder[0] = '\0';
	snprintf(owner, sizeof owner, "%s/store", cache_dir);
	/* refused, or the folder it uses is the private one */
	CHECK(rc == -EPERM || (rc == 0 && stat(cache_dir, &st) == 0 && !(st.st_mode & 022) &&
			       access(owner, F_OK) == 0));
	free(err);
	store_destroy(t);
	fake_free(f);
}

/* Renamed objects keep working where the move gives new ETags (S3). */
static void test_etag_after_a_move(void)
{
	struct fake_remote *f = fake_new();
	const char text[] = "moved along";
	struct store_obj *o;
	struct store *s;

	new_cache_dir("move-etag");
	fake_move_changes_etags(f);
	fake_set(f, "a", text, sizeof text);
	s = open_cache_with(f, 0, 60000);
	conflict_calls = 0;
	store_cache_set_conflict_handler(s, conflict_name, NULL);
	read_whole(s, "a", (const uint8_t *)text, sizeof text);
	CHECK_EQ(store_rename(s, "a", "b", 0), 0);
	CHECK_EQ(store_open(s, "b", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, "M", 1, 0), 1);
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK(wait_for_object(f, "b", "Moved along", sizeof text));
	CHECK_EQ(conflict_calls, 0);
	CHECK(remote_etag_equal("\"abc\"", "abc"));
	CHECK(remote_etag_equal("W/\"abc\"", "\"abc\""));
	CHECK(!remote_etag_equal("\"abc\"", "\"abd\""));
	CHECK(!remote_etag_equal("", "\"abc\""));
	store_destroy(s);
	fake_free(f);
}

/* A server error is an error, not an outage: fsync says so, and the
 * remote is asked again at once. */
static void test_server_error_is_not_offline(void)
{
	struct fake_remote *f = fake_new();
	struct store_attr a;
	struct store_obj *o;
	struct store *s;

	new_cache_dir("server-error");
	fake_set(f, "obj", "v1", 2);
	fake_mkdir(f, "never-listed");
	s = open_cache_with(f, 0, 60000);
	CHECK_EQ(store_open(s, "obj", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, "v2", 2, 0), 2);
	fake_fail_op(f, FAKE_PUT, -EIO); /* HTTP 500 after retries */
	CHECK_EQ(store_fsync(o, false), -EIO);
	fake_fail_op(f, FAKE_PUT, 0);
	fake_set(f, "never-listed/x", "x", 1);
	CHECK_EQ(store_getattr(s, "never-listed/x", &a), 0); /* asked at once: not "offline" */
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK(wait_for_object(f, "obj", "v2", 2));
	store_destroy(s);
	fake_free(f);
}

/* Truncating to 0 does not download what is cut away. */
static void test_truncate_fetches_nothing_cut(void)
{
	struct fake_remote *f = fake_new();
	uint8_t *data = pattern(3 * MIB, 9);
	struct store_obj *o;
	struct store *s;

	new_cache_dir("truncate");
	fake_set(f, "big", data, 3 * MIB);
	fake_set(f, "big2", data, 3 * MIB);
	s = open_cache_with(f, 0, 60000);
	fake_reset_counts(f);
	CHECK_EQ(store_open(s, "big", STORE_O_TRUNC, &o), 0);
	CHECK_EQ(store_pwrite(o, "new", 3, 0), 3);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_open(s, "big2", 0, &o), 0);
	CHECK_EQ(store_truncate(o, MIB), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(fake_count(f, FAKE_GET), 1); /* big2's first MiB only */
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(wait_for_object(f, "big", "new", 3));
	CHECK(wait_for_object(f, "big2", data, MIB));
	store_destroy(s);
	fake_free(f);
	free(data);
}

/* Requests of every kind so far. */
static unsigned requests(struct fake_remote *f)
{
	unsigned n = 0;

	for (int op = 0; op < FAKE_OPS; op++)
		n += fake_count(f, (enum fake_op)op);
	return n;
}

/* mkdir asks nothing its folder's fresh listing answers: a taken name is
 * -EEXIST at once, a free one is made with mkdir_listed (no checks first). */
static void test_mkdir_answered_by_listing(void)
{
	struct fake_remote *f = fake_new();
	struct store_attr a;
	struct store_obj *o;
	struct store *s;

	new_cache_dir("mkdir-listed");
	fake_mkdir(f, "d");
	fake_mkdir(f, "d/AB");
	s = open_cache_lasting(f);
	CHECK_EQ(store_getattr(s, "d/AB", &a), 0); /* lists d */
	fake_reset_counts(f);
	CHECK_EQ(store_mkdir(s, "d/AB"), -EEXIST);
	CHECK_EQ(requests(f), 0);
	CHECK_EQ(store_mkdir(s, "d/CD"), 0);
	CHECK_EQ(store_mkdir(s, "d/CD/EF"), 0); /* made here: known empty */
	CHECK_EQ(fake_count(f, FAKE_MKDIR_LISTED), 2);
	CHECK_EQ(requests(f), 2);
	CHECK(fake_has(f, "d/CD/EF"));
	/* a name pending upload is taken too */
	CHECK_EQ(store_open(s, "d/CD/file", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_close(o), 0);
	CHECK_EQ(store_mkdir(s, "d/CD/file"), -EEXIST);
	CHECK_EQ(requests(f), 2);
	/* a folder not listed yet: one listing, then no checks */
	fake_mkdir(f, "other");
	CHECK_EQ(store_mkdir(s, "other/x"), 0);
	CHECK_EQ(fake_count(f, FAKE_LIST), 1);
	CHECK_EQ(fake_count(f, FAKE_MKDIR_LISTED), 3);
	CHECK_EQ(store_mkdir(s, "missing/x"), -ENOENT);
	CHECK_EQ(fake_count(f, FAKE_MKDIR) + fake_count(f, FAKE_MKDIR_LISTED), 3);
	/* made by another client within the listing's time: the marker's
	 * condition still refuses it */
	fake_mkdir(f, "other/late");
	CHECK_EQ(store_mkdir(s, "other/late"), -EEXIST);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(fake_has(f, "d/CD/file"));
	store_destroy(s);
	fake_free(f);

	/* a remote without mkdir_listed (WebDAV): a fresh listing still answers
	 * -EEXIST; otherwise it is asked as before, without listing first */
	f = fake_new();
	fake_without_listed_ops(f);
	new_cache_dir("mkdir-plain");
	fake_mkdir(f, "d");
	fake_mkdir(f, "d/AB");
	s = open_cache_lasting(f);
	CHECK_EQ(store_getattr(s, "d/AB", &a), 0);
	fake_reset_counts(f);
	CHECK_EQ(store_mkdir(s, "d/AB"), -EEXIST);
	CHECK_EQ(requests(f), 0);
	CHECK_EQ(store_mkdir(s, "d/CD"), 0);
	CHECK_EQ(store_mkdir(s, "d/AB/new"), 0); /* d/AB not listed: no listing first */
	CHECK_EQ(fake_count(f, FAKE_MKDIR), 2);
	CHECK_EQ(requests(f), 2);
	store_destroy(s);
	fake_free(f);
}

/* rmdir: a folder whose fresh listing shows entries, or with an object
 * pending upload in it, is -ENOTEMPTY without asking; one listed empty
 * goes with rmdir_listed (no check first). */
static void test_rmdir_answered_by_listing(void)
{
	struct fake_remote *f = fake_new();
	struct store_obj *o;
	struct store *s;
	int entries = 0;

	new_cache_dir("rmdir-listed");
	fake_mkdir(f, "full");
	fake_set(f, "full/x", "x", 1);
	fake_mkdir(f, "empty");
	fake_mkdir(f, "unlisted");
	s = open_cache_lasting(f);
	CHECK_EQ(store_list(s, "full", count_entry, &entries), 0);
	CHECK_EQ(store_list(s, "empty", count_entry, &entries), 0);
	fake_reset_counts(f);
	CHECK_EQ(store_rmdir(s, "full"), -ENOTEMPTY);
	CHECK_EQ(requests(f), 0);
	CHECK_EQ(store_rmdir(s, "empty"), 0);
	CHECK_EQ(fake_count(f, FAKE_RMDIR_LISTED), 1);
	CHECK_EQ(requests(f), 1);
	CHECK(!fake_has(f, "empty"));
	/* emptied here: listed empty */
	CHECK_EQ(store_unlink(s, "full/x"), 0);
	CHECK_EQ(store_rmdir(s, "full"), 0);
	CHECK_EQ(fake_count(f, FAKE_RMDIR_LISTED), 2);
	/* not listed: asked with the checks */
	CHECK_EQ(store_rmdir(s, "unlisted"), 0);
	CHECK_EQ(fake_count(f, FAKE_RMDIR), 1);
	/* an object made here and not uploaded yet is in the folder */
	CHECK_EQ(store_mkdir(s, "new"), 0);
	CHECK_EQ(store_open(s, "new/pending", STORE_O_CREATE | STORE_O_EXCL, &o), 0);
	CHECK_EQ(store_close(o), 0);
	fake_reset_counts(f);
	CHECK_EQ(store_rmdir(s, "new"), -ENOTEMPTY);
	CHECK_EQ(requests(f), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(fake_has(f, "new/pending"));
	store_destroy(s);
	fake_free(f);
}

/* unlink of an object its folder's fresh listing shows: remove_listed with
 * the listed ETag, one request; when that is refused (the object changed, or
 * is a folder now) remove checks, and a folder is never removed. */
static void test_unlink_answered_by_listing(void)
{
	struct fake_remote *f = fake_new();
	struct store_attr a;
	struct store *s;

	new_cache_dir("unlink-listed");
	fake_mkdir(f, "dir");
	fake_set(f, "dir/a", "a", 1);
	fake_set(f, "dir/b", "b", 1);
	fake_set(f, "dir/c", "c", 1);
	fake_set(f, "dir/d", "d", 1);
	s = open_cache_lasting(f);
	read_whole(s, "dir/a", (const uint8_t *)"a", 1); /* cached */
	fake_reset_counts(f);
	CHECK_EQ(store_unlink(s, "dir/a"), 0);
	CHECK_EQ(store_unlink(s, "dir/b"), 0); /* not cached */
	CHECK_EQ(fake_count(f, FAKE_REMOVE_LISTED), 2);
	CHECK_EQ(requests(f), 2);
	CHECK(!fake_has(f, "dir/a") && !fake_has(f, "dir/b"));
	CHECK_EQ(store_getattr(s, "dir/a", &a), -ENOENT);
	/* replaced by a folder behind the cache's back: refused, then checked */
	fake_delete(f, "dir/c");
	fake_mkdir(f, "dir/c");
	fake_set(f, "dir/c/inside", "i", 1);
	fake_reset_counts(f);
	CHECK_EQ(store_unlink(s, "dir/c"), -EISDIR);
	CHECK_EQ(fake_count(f, FAKE_REMOVE_LISTED), 1);
	CHECK_EQ(fake_count(f, FAKE_REMOVE), 1);
	CHECK(fake_has(f, "dir/c/inside"));
	/* changed behind the cache's back: refused, then removed as before
	 * (unlink was never conditional) */
	fake_set(f, "dir/d", "newer", 5);
	fake_reset_counts(f);
	CHECK_EQ(store_unlink(s, "dir/d"), 0);
	CHECK_EQ(fake_count(f, FAKE_REMOVE_LISTED), 1);
	CHECK_EQ(fake_count(f, FAKE_REMOVE), 1);
	CHECK(!fake_has(f, "dir/d"));
	CHECK_EQ(store_cache_flush(s), 0);
	store_destroy(s);
	fake_free(f);
}

/* A flush (the unmount's) uploads several objects at once, and each whole. */
static void test_flush_uploads_in_parallel(void)
{
	struct fake_remote *f = fake_new();
	struct store_obj *o;
	struct store *s;
	char name[32];

	new_cache_dir("flush-parallel");
	s = open_cache_lasting(f); /* not due for a minute: only the flush uploads */
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof name, "f%d", i);
		CHECK_EQ(store_open(s, name, STORE_O_CREATE | STORE_O_EXCL, &o), 0);
		CHECK_EQ(store_pwrite(o, name, strlen(name), 0), (long)strlen(name));
		CHECK_EQ(store_close(o), 0);
	}
	fake_delay(f, FAKE_PUT, 100);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK_EQ(fake_count(f, FAKE_PUT), 8);
	CHECK(fake_max_in_flight(f, FAKE_PUT) > 1);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof name, "f%d", i);
		CHECK(wait_for_object(f, name, name, strlen(name)));
	}
	CHECK(wait_until_clean(s));
	/* one refused: the others go up, the flush says so, it stays queued */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "g%d", i);
		CHECK_EQ(store_open(s, name, STORE_O_CREATE | STORE_O_EXCL, &o), 0);
		CHECK_EQ(store_pwrite(o, name, strlen(name), 0), (long)strlen(name));
		CHECK_EQ(store_close(o), 0);
	}
	fake_set(f, "g2", "theirs", 6); /* made meanwhile: g2 cannot be put "new" */
	CHECK_EQ(store_cache_flush(s), -EIO);
	CHECK(fake_has(f, "g0") && fake_has(f, "g1") && fake_has(f, "g3"));
	CHECK(wait_for_object(f, "g2", "theirs", 6)); /* not overwritten */
	CHECK_EQ(files_in("queue"), 1);                 /* ours still queued */
	store_destroy(s);
	fake_free(f);
}

/* A change that lands while its object is renamed, and writes through a
 * handle open across the rename, reach the server under the new name when
 * the cache folder's fsync fails after the local copy was moved (the move
 * happened; only its durability is in doubt, which is logged). */
static void test_rename_follows_when_the_folder_sync_fails(void)
{
	struct fake_remote *f = fake_new();
	struct late_write w = { 0 };
	struct store *s;
	pthread_t t;

	new_cache_dir("rename-sync-fails");
	fake_delay(f, FAKE_MOVE, 300);
	s = open_cache_lasting(f);
	CHECK_EQ(store_open(s, "a", STORE_O_CREATE | STORE_O_EXCL, &w.o), 0);
	CHECK_EQ(store_pwrite(w.o, "FIRST", 5, 0), 5);
	fail_sync_of(cache_dir, "objects");
	pthread_create(&t, NULL, write_during_rename, &w);
	CHECK_EQ(store_rename(s, "a", "b", 0), 0);
	pthread_join(t, NULL);
	fail_sync_of(cache_dir, NULL);
	fake_delay(f, FAKE_MOVE, 0);
	CHECK_EQ(w.result, 6);
	CHECK_EQ(store_pwrite(w.o, "!", 1, 11), 1); /* the handle still writes to b */
	CHECK_EQ(store_close(w.o), 0);
	CHECK_EQ(store_cache_flush(s), 0);
	CHECK(wait_for_object(f, "b", "FIRSTSECOND!", 12));
	CHECK(!fake_has(f, "a"));
	CHECK_EQ(files_in("queue"), 0);
	store_destroy(s);
	fake_free(f);
}

/* A non-empty folder in the cache's mirror where the renamed object is to
 * go: the local move fails (as it would on a full or failing cache disk). */
static void block_mirror_path(const char *path)
{
	char folder[PATH_MAX + 64];

	snprintf(folder, sizeof folder, "%s/objects/%s", cache_dir, path);
	CHECK_EQ(mkdir(folder, 0700), 0);
	snprintf(folder, sizeof folder, "objects/%s", path);
	put_file(folder, "leftover", "x");
}

/* Write FIRST to a new object at path, then rename from to to while the
 * mirror's path `blocked` is taken and write_during_rename adds SECOND
 * during the (delayed) move; close and upload everything. */
static void rename_blocked_while_writing(struct store *s, struct late_write *w, const char *path,
					 const char *from, const char *to, const char *blocked)
{
	pthread_t t;

	CHECK_EQ(store_open(s, path, STORE_O_CREATE | STORE_O_EXCL, &w->o), 0);
	CHECK_EQ(store_pwrite(w->o, "FIRST", 5, 0), 5);
	block_mirror_path(blocked);
	pthread_create(&t, NULL, write_during_rename, w);
	CHECK_EQ(store_rename(s, from, to, 0), 0);
	pthread_join(t, NULL);
	CHECK_EQ(w->result, 6);
	CHECK_EQ(store_close(w->o), 0);
	CHECK_EQ(store_cache_flush(s), 0);
}

/* The server moved, the cache could not move its local copies along: a
 * changed object keeps its change. Its copy moves on its own when it can
 * (a folder renamed), else it stays queued under the old name and becomes
 * a conflict copy there (its base is gone from that name). */
static void test_rename_keeps_changes_when_the_local_move_fails(void)
{
	struct fake_remote *f = fake_new();
	struct late_write w = { 0 };
	struct store *s;

	new_cache_dir("rename-local-fails");
	fake_mkdir(f, "dir");
	fake_delay(f, FAKE_MOVE, 300);
	s = open_cache_lasting(f);
	conflict_calls = 0;
	store_cache_set_conflict_handler(s, conflict_name, NULL);
	/* a folder: the mirror's "moved" is taken, the object moves on its own */
	rename_blocked_while_writing(s, &w, "dir/x", "dir", "moved", "moved");
	CHECK(wait_for_object(f, "moved/x", "FIRSTSECOND", 11));
	CHECK(!fake_has(f, "dir/x"));
	/* one object, whose own move fails too: a conflict copy, nothing lost */
	rename_blocked_while_writing(s, &w, "a", "a", "b", "b");
	CHECK(wait_for_object(f, "b", "FIRST", 5));
	CHECK(wait_for_object(f, "a (conflict)", "FIRSTSECOND", 11));
	CHECK_EQ(conflict_calls, 1);
	CHECK_EQ(files_in("queue"), 0);
	fake_delay(f, FAKE_MOVE, 0);
	store_destroy(s);
	fake_free(f);
}

/* The base of a renamed object is the version the move made: another
 * client's write at the new name after the move is a conflict, as for any
 * object; on a server whose move keeps the ETag (WebDAV) and on one whose
 * move makes a new one (S3). A renamed object the cache did not hold is
 * changed afterwards without a conflict. */
static void test_write_after_a_move_is_a_conflict(void)
{
	for (int new_etags = 0; new_etags < 2; new_etags++) {
		struct fake_remote *f = fake_new();
		struct store_obj *o;
		struct store *s;

		new_cache_dir(new_etags ? "move-conflict-s3" : "move-conflict-webdav");
		if (new_etags)
			fake_move_changes_etags(f);
		fake_set(f, "a", "ours", 4);
		fake_set(f, "c", "cccc", 4);
		s = open_cache_lasting(f);
		conflict_calls = 0;
		store_cache_set_conflict_handler(s, conflict_name, NULL);
		read_whole(s, "a", (const uint8_t *)"ours", 4);
		CHECK_EQ(store_rename(s, "a", "b", 0), 0);
		fake_set(f, "b", "THEM", 4); /* another client, the same size */
		CHECK_EQ(store_open(s, "b", 0, &o), 0);
		CHECK_EQ(store_pwrite(o, "mine", 4, 0), 4);
		CHECK_EQ(store_fsync(o, false), -EIO);
		CHECK_EQ(store_close(o), 0);
		CHECK_EQ(store_cache_flush(s), 0);
		CHECK(wait_for_object(f, "b", "THEM", 4));
		CHECK(wait_for_object(f, "b (conflict)", "mine", 4));
		CHECK_EQ(conflict_calls, 1);
		/* not cached when renamed */
		CHECK_EQ(store_rename(s, "c", "d", 0), 0);
		CHECK_EQ(store_open(s, "d", 0, &o), 0);
		CHECK_EQ(store_pwrite(o, "D", 1, 0), 1);
		CHECK_EQ(store_fsync(o, false), 0);
		CHECK_EQ(store_close(o), 0);
		CHECK(wait_for_object(f, "d", "Dccc", 4));
		CHECK_EQ(conflict_calls, 1);
		store_destroy(s);
		fake_free(f);
	}
}

/* A listing fetched while an upload in its folder finishes is kept, with
 * the upload's result made to it: the next lookups ask nothing (an untar
 * would otherwise list the folder again and again), and the listing has
 * the new version (its size, its ETag: the cached copy is used as is). */
static void test_listing_fetched_during_an_upload_is_kept(void)
{
	struct fake_remote *f = fake_new();
	struct dir_listing dl = { 0 };
	struct store_attr a;
	struct store_obj *o;
	struct store *s;
	pthread_t t;

	new_cache_dir("listing-during-upload");
	fake_mkdir(f, "dir");
	fake_set(f, "dir/x", "old", 3);
	s = open_cache_meta(f, 0, 60000, 1500);
	CHECK_EQ(store_open(s, "dir/x", 0, &o), 0);
	CHECK_EQ(store_pwrite(o, "new version", 11, 0), 11);
	sleep_ms(1600); /* the listing is stale: the next use fetches it */
	fake_delay(f, FAKE_LIST, 300); /* listed before the upload, answered after it */
	fake_reset_counts(f);
	dl.s = s;
	pthread_create(&t, NULL, list_dir, &dl);
	for (int i = 0; i < 400 && fake_count(f, FAKE_LIST) == 0; i++)
		sleep_ms(5); /* the fake has taken its answer: the old dir/x */
	CHECK_EQ(store_fsync(o, false), 0);
	CHECK_EQ(store_close(o), 0);
	pthread_join(t, NULL);
	fake_delay(f, FAKE_LIST, 0);
	CHECK_EQ(dl.rc, 0);
	CHECK_EQ(store_getattr(s, "dir/x", &a), 0);
	CHECK_EQ(a.size, 11);
	CHECK_EQ(store_getattr(s, "dir/y", &a), -ENOENT);
	CHECK_EQ(fake_count(f, FAKE_LIST), 1);
	read_whole(s, "dir/x", (const uint8_t *)"new version", 11);
	CHECK_EQ(fake_count(f, FAKE_GET), 0);
	CHECK_EQ(fake_count(f, FAKE_LIST), 1);
	store_destroy(s);
	fake_free(f);
}

int main(void)
{
	char *tmp = make_temp_folder();

	root = realpath(tmp, NULL);
	test_ranged_fill_and_read_ahead();
	test_delayed_upload_after_close();
	test_fsync_uploads_now();
	test_flush_uploads_everything();
	test_queue_survives_a_crash();
	test_conflict_keeps_both();
	test_eviction();
	test_full_cache_disk();
	test_listing_cache();
	test_offline();
	test_unlink_and_rename_changed();
	test_one_mount_per_folder();
	test_remote_change_is_never_mixed_in();
	test_unknown_base_is_never_overwritten();
	test_rename_moves_the_queued_change();
	test_listing_fetch_keeps_a_local_change();
	test_listing_shows_an_object_being_uploaded();
	test_changes_durable_before_queued();
	test_unlinked_open_objects();
	test_create_offline_keeps_the_cached_copy();
	test_cache_folder_of_another_remote();
	test_cache_folder_must_be_private();
	test_cache_folder_checked_as_opened();
	test_etag_after_a_move();
	test_server_error_is_not_offline();
	test_truncate_fetches_nothing_cut();
	test_mkdir_answered_by_listing();
	test_rmdir_answered_by_listing();
	test_unlink_answered_by_listing();
	test_flush_uploads_in_parallel();
	test_rename_follows_when_the_folder_sync_fails();
	test_rename_keeps_changes_when_the_local_move_fails();
	test_write_after_a_move_is_a_conflict();
	test_listing_fetched_during_an_upload_is_kept();
	remove_temp_folder(tmp);
	free(root);
	return check_summary();
}
