/* Tests of a remote (backends/remote.h) against a real server.
 * Usage: test_remote URL      (webdav://user@127.0.0.1:PORT/vault or s3://bucket/prefix)
 * Credentials come from the environment (run-remote.sh sets them); the
 * folder at URL must exist and be empty. Prints TAP-like lines and a final
 * "N passed, N failed". */
#include "backends/remote.h"
#include "backends/store.h"
#include "lossy_proxy.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
static bool is_s3;
static const char *url;

static void report(bool ok, const char *what, int line)
{
	if (ok) {
		passed++;
		printf("ok %d - %s\n", passed + failed, what);
	} else {
		failed++;
		printf("not ok %d - %s (line %d)\n", passed + failed, what, line);
	}
	fflush(stdout);
}

#define CHECK(cond) report((cond), #cond, __LINE__)
#define CHECK_RC(expr, want)                                                                  \
	do {                                                                                  \
		int rc_ = (expr);                                                             \
		if (rc_ != (want))                                                            \
			printf("# %s: got %d (%s), want %d\n", #expr, rc_, strerror(-rc_), want); \
		report(rc_ == (want), #expr " == " #want, __LINE__);                          \
	} while (0)

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
}

/* An anonymous file holding data. */
static int fd_with(const void *data, size_t n)
{
	int fd = memfd_create("remote-test", 0);
	if (fd < 0 || (n && write(fd, data, n) != (ssize_t)n)) {
		perror("memfd");
		exit(2);
	}
	return fd;
}

static int put_bytes(struct remote *r, const char *path, const void *data, size_t n,
		     const char *if_match, struct remote_info *info)
{
	int fd = fd_with(data, n);
	int rc = r->ops->put(r, path, fd, n, if_match, info);
	close(fd);
	return rc;
}

/* GET into a malloc'd buffer (*out, *n). */
static int get_bytes(struct remote *r, const char *path, uint64_t off, uint64_t len,
		     uint8_t **out, size_t *n)
{
	int fd = fd_with(NULL, 0);
	uint64_t got = 0;
	struct remote_info info;
	int rc = r->ops->get(r, path, off, len, fd, &got, &info);
	*n = (size_t)got;
	*out = malloc(got + 1);
	if (pread(fd, *out, got, 0) != (ssize_t)got)
		rc = -EIO;
	close(fd);
	return rc;
}

static bool get_equals(struct remote *r, const char *path, uint64_t off, uint64_t len,
		       const uint8_t *want, size_t want_n)
{
	uint8_t *buf;
	size_t n;
	int rc = get_bytes(r, path, off, len, &buf, &n);
	bool ok = rc == 0 && n == want_n && (n == 0 || memcmp(buf, want, n) == 0);
	if (!ok)
		printf("# get %s [%llu,+%llu]: rc %d, %zu bytes (want %zu)\n", path,
		       (unsigned long long)off, (unsigned long long)len, rc, n, want_n);
	free(buf);
	return ok;
}

static struct remote *open_remote(const char *u, int *rc_out)
{
	struct remote *r = NULL;
	char *err = NULL;
	int rc = is_s3 ? remote_s3_open(u, false, &r, &err) : remote_webdav_open(u, false, &r, &err);
	if (rc)
		printf("# open %s: %s\n", u, err ? err : "?");
	free(err);
	if (rc_out)
		*rc_out = rc;
	return rc ? NULL : r;
}

/* ---- the log ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[1024]; /* the last line logged as an error */

static void log_line(int prio, const char *line)
{
	fprintf(stderr, "umbrafs: %s\n", line);
	if (prio > LOG_ERR)
		return;
	pthread_mutex_lock(&log_lock);
	snprintf(last_error, sizeof last_error, "%s", line);
	pthread_mutex_unlock(&log_lock);
}

/* Does the last error line hold both texts? */
static bool logged_error_has(const char *a, const char *b)
{
	pthread_mutex_lock(&log_lock);
	bool has = strstr(last_error, a) && strstr(last_error, b);
	if (!has)
		printf("# last error logged: %s\n", last_error);
	pthread_mutex_unlock(&log_lock);
	return has;
}

/* ---- listing helpers ---- */

struct seen {
	int n, dirs;
	uint64_t bytes;
	char names[8][64];
	int stop_after; /* 0: never stop */
};

static int seen_cb(void *ctx, const char *name, const struct remote_info *info)
{
	struct seen *s = ctx;
	if (s->n < 8)
		snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
	s->n++;
	s->dirs += info->is_dir;
	s->bytes += info->size;
	return s->stop_after && s->n >= s->stop_after ? 42 : 0;
}

static bool seen_has(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n && i < 8; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

/* ---- tests ---- */

static void test_root_and_mkdir(struct remote *r)
{
	struct remote_info info;
	CHECK_RC(r->ops->head(r, "", &info), 0);
	CHECK(info.is_dir);
	CHECK_RC(r->ops->mkdir(r, "d"), 0);
	CHECK_RC(r->ops->mkdir(r, "d"), -EEXIST);
	CHECK_RC(r->ops->mkdir(r, "nope/x"), -ENOENT);
	CHECK_RC(r->ops->head(r, "d", &info), 0);
	CHECK(info.is_dir);
	CHECK_RC(r->ops->mkdir(r, "d/sub=dir-_"), 0);
	CHECK_RC(r->ops->head(r, "d/sub=dir-_", &info), 0);
	CHECK(info.is_dir);
	struct seen s = {0};
	CHECK_RC(r->ops->list(r, "d/sub=dir-_", seen_cb, &s), 0); /* empty folder exists */
	CHECK(s.n == 0);
}

static void test_put_get(struct remote *r)
{
	uint8_t data[1000];
	fill(data, sizeof data, 1);
	const char *p = "d/AbC=-_x==.c9r";
	struct remote_info put_info, info;
	CHECK_RC(put_bytes(r, p, data, sizeof data, NULL, &put_info), 0);
	CHECK(put_info.etag[0] != '\0');
	CHECK_RC(r->ops->head(r, p, &info), 0);
	CHECK(!info.is_dir && info.size == 1000 && info.etag[0] && info.mtime.tv_sec > 1600000000);
	CHECK(strcmp(info.etag, put_info.etag) == 0);
	CHECK(get_equals(r, p, 0, 0, data, 1000));
	CHECK(get_equals(r, p, 100, 50, data + 100, 50));
	CHECK(get_equals(r, p, 990, 0, data + 990, 10));
	CHECK(get_equals(r, p, 990, 100, data + 990, 10)); /* range past the end is cut */
	CHECK(get_equals(r, p, 1000, 10, NULL, 0));       /* at the end: nothing */
	CHECK(get_equals(r, p, 5000, 0, NULL, 0));
	/* get's info and the fd position */
	int fd = fd_with("xy", 2);
	uint64_t got = 0;
	CHECK_RC(r->ops->get(r, p, 10, 20, fd, &got, &info), 0);
	CHECK(got == 20 && info.size == 1000 && strcmp(info.etag, put_info.etag) == 0);
	CHECK(lseek(fd, 0, SEEK_CUR) == 22);
	close(fd);

	uint8_t *buf;
	size_t n;
	CHECK_RC(get_bytes(r, "d/missing", 0, 0, &buf, &n), -ENOENT);
	free(buf);
	CHECK_RC(r->ops->head(r, "d/missing", &info), -ENOENT);
	if (!is_s3) /* S3 has no folders to be missing */
		CHECK_RC(put_bytes(r, "nope/x", data, 10, NULL, NULL), -ENOENT);

	/* empty object, odd characters */
	CHECK_RC(put_bytes(r, "d/empty", "", 0, NULL, &info), 0);
	CHECK_RC(r->ops->head(r, "d/empty", &info), 0);
	CHECK(info.size == 0 && !info.is_dir);
	CHECK(get_equals(r, "d/empty", 0, 0, NULL, 0));
	CHECK_RC(put_bytes(r, "d/sp ace%+&?#.c9r", data, 7, NULL, NULL), 0);
	CHECK(get_equals(r, "d/sp ace%+&?#.c9r", 0, 0, data, 7));
}

static void test_conditional_put(struct remote *r)
{
	uint8_t a[300], b[300];
	fill(a, sizeof a, 2);
	fill(b, sizeof b, 3);
	const char *p = "d/cond.c9r";
	struct remote_info v1, v2, info;
	CHECK_RC(put_bytes(r, p, a, sizeof a, "", &v1), 0); /* must not exist: it does not */
	CHECK_RC(put_bytes(r, p, b, sizeof b, "", NULL), -ESTALE);
	CHECK_RC(put_bytes(r, p, b, sizeof b, "\"0123456789abcdef\"", NULL), -ESTALE);
	CHECK(get_equals(r, p, 0, 0, a, sizeof a));
	CHECK_RC(put_bytes(r, p, b, sizeof b, v1.etag, &v2), 0);
	CHECK(strcmp(v1.etag, v2.etag) != 0);
	CHECK_RC(put_bytes(r, p, a, sizeof a, v1.etag, NULL), -ESTALE); /* stale ETag */
	CHECK(get_equals(r, p, 0, 0, b, sizeof b));
	/* the same upload again, as the queue replays it after a crash that came
	 * after the server took it: the object holds these bytes, no conflict */
	CHECK_RC(put_bytes(r, p, b, sizeof b, v1.etag, NULL), 0);
	CHECK_RC(put_bytes(r, p, b, sizeof b, "", NULL), 0);
	CHECK(get_equals(r, p, 0, 0, b, sizeof b));
	CHECK_RC(r->ops->head(r, p, &info), 0);
	CHECK(strcmp(info.etag, v2.etag) == 0);
	CHECK_RC(put_bytes(r, "d/cond-missing", a, 10, v1.etag, NULL), -ESTALE);
}

static void test_list(struct remote *r)
{
	struct seen s = {0};
	CHECK_RC(r->ops->list(r, "d", seen_cb, &s), 0);
	CHECK(s.n == 5 && s.dirs == 1);
	CHECK(seen_has(&s, "AbC=-_x==.c9r") && seen_has(&s, "sub=dir-_") && seen_has(&s, "empty") &&
	      seen_has(&s, "cond.c9r") && seen_has(&s, "sp ace%+&?#.c9r"));
	CHECK(s.bytes == 1000 + 300 + 7);
	struct seen root = {0};
	CHECK_RC(r->ops->list(r, "", seen_cb, &root), 0);
	CHECK(root.n == 1 && root.dirs == 1 && seen_has(&root, "d"));
	struct seen stop = {.stop_after = 2};
	CHECK_RC(r->ops->list(r, "d", seen_cb, &stop), 42);
	CHECK(stop.n == 2);
	struct seen none = {0};
	CHECK_RC(r->ops->list(r, "nothing-here", seen_cb, &none), -ENOENT);
}

static void test_move(struct remote *r)
{
	uint8_t a[100], b[100];
	fill(a, sizeof a, 4);
	fill(b, sizeof b, 5);
	struct remote_info info;
	CHECK_RC(put_bytes(r, "d/m1", a, sizeof a, NULL, NULL), 0);
	CHECK_RC(put_bytes(r, "d/m2", b, sizeof b, NULL, NULL), 0);
	CHECK_RC(r->ops->move(r, "d/m1", "d/m2", false), -EEXIST);
	CHECK(get_equals(r, "d/m2", 0, 0, b, sizeof b));
	CHECK_RC(r->ops->move(r, "d/m1", "d/m2", true), 0);
	CHECK(get_equals(r, "d/m2", 0, 0, a, sizeof a));
	CHECK_RC(r->ops->head(r, "d/m1", &info), -ENOENT);
	CHECK_RC(r->ops->move(r, "d/m2", "d/sub=dir-_/m=3", false), 0);
	CHECK(get_equals(r, "d/sub=dir-_/m=3", 0, 0, a, sizeof a));
	CHECK_RC(r->ops->move(r, "d/m1", "d/m4", false), -ENOENT);
	CHECK_RC(r->ops->move(r, "d/sub=dir-_/m=3", "nope/m", false), -ENOENT);

	/* a folder with content */
	CHECK_RC(r->ops->mkdir(r, "d/f1"), 0);
	CHECK_RC(put_bytes(r, "d/f1/dir.c9r", a, 36, NULL, NULL), 0);
	CHECK_RC(put_bytes(r, "d/f1/other", b, 5, NULL, NULL), 0);
	CHECK_RC(r->ops->move(r, "d/f1", "d/f2=", false), 0);
	CHECK_RC(r->ops->head(r, "d/f1", &info), -ENOENT);
	CHECK_RC(r->ops->head(r, "d/f2=", &info), 0);
	CHECK(info.is_dir);
	CHECK(get_equals(r, "d/f2=/dir.c9r", 0, 0, a, 36));
	CHECK(get_equals(r, "d/f2=/other", 0, 0, b, 5));
	struct seen s = {0};
	CHECK_RC(r->ops->list(r, "d/f2=", seen_cb, &s), 0);
	CHECK(s.n == 2);
}

static void test_remove_rmdir(struct remote *r)
{
	struct remote_info info;
	CHECK_RC(r->ops->rmdir(r, "d/f2="), -ENOTEMPTY);
	CHECK_RC(r->ops->remove(r, "d/f2="), -EISDIR);
	CHECK_RC(r->ops->remove(r, "d/f2=/dir.c9r"), 0);
	CHECK_RC(r->ops->remove(r, "d/f2=/dir.c9r"), -ENOENT);
	CHECK_RC(r->ops->remove(r, "d/f2=/other"), 0);
	CHECK_RC(r->ops->rmdir(r, "d/f2="), 0);
	CHECK_RC(r->ops->head(r, "d/f2=", &info), -ENOENT);
	CHECK_RC(r->ops->rmdir(r, "d/f2="), -ENOENT);
	CHECK_RC(r->ops->remove(r, "d/never"), -ENOENT);
}

/* ---- the _listed requests (remote.h: mkdir_listed, rmdir_listed, remove_listed) ----
 * What each still guarantees without the checks it skips: a marker made
 * meanwhile is not written over, a folder marker's delete leaves what is
 * below it, and WebDAV's conditional delete never takes a folder or another
 * version. S3 offers all three; WebDAV only remove_listed (MKCOL checks in
 * one request already, and a DELETE of a folder would take its content). */

static bool is_folder(struct remote *r, const char *path)
{
	struct remote_info info;
	return r->ops->head(r, path, &info) == 0 && info.is_dir;
}

static bool exists(struct remote *r, const char *path)
{
	struct remote_info info;
	return r->ops->head(r, path, &info) == 0;
}

/* Apache gives a file changed in the current second a weak ETag, which no
 * If-Match meets: wait for the next second (S3 has no such quirk). */
static void next_second(void)
{
	struct timespec t = {1, 100 * 1000 * 1000};
	if (!is_s3)
		nanosleep(&t, NULL);
}

static void test_mkdir_listed(struct remote *r)
{
	if (!r->ops->mkdir_listed)
		return;
	CHECK_RC(r->ops->mkdir_listed(r, "listed/m"), 0);
	CHECK(is_folder(r, "listed/m"));
	CHECK_RC(r->ops->mkdir_listed(r, "listed/m"), -EEXIST); /* made meanwhile: not written over */
	CHECK_RC(r->ops->mkdir_listed(r, "listed/m/sub"), 0);
	CHECK(is_folder(r, "listed/m/sub"));
}

static void test_rmdir_listed(struct remote *r)
{
	if (!r->ops->rmdir_listed)
		return;
	CHECK_RC(r->ops->mkdir(r, "listed/e"), 0);
	CHECK_RC(r->ops->rmdir_listed(r, "listed/e"), 0);
	CHECK(!exists(r, "listed/e"));
	/* something put there meanwhile stays, and so does its folder */
	CHECK_RC(r->ops->mkdir(r, "listed/busy"), 0);
	CHECK_RC(put_bytes(r, "listed/busy/late", "late", 4, NULL, NULL), 0);
	CHECK_RC(r->ops->rmdir_listed(r, "listed/busy"), 0);
	CHECK(exists(r, "listed/busy/late"));
	CHECK(is_folder(r, "listed/busy"));
}

static void test_remove_listed(struct remote *r)
{
	struct remote_info first, second;
	CHECK_RC(put_bytes(r, "listed/o", "one", 3, NULL, &first), 0);
	next_second();
	CHECK_RC(r->ops->remove_listed(r, "listed/o", first.etag), 0);
	CHECK(!exists(r, "listed/o"));
	/* a folder where an object was listed: WebDAV refuses (its DELETE would
	 * take the folder's content), S3 deletes no key of it */
	CHECK_RC(r->ops->mkdir(r, "listed/f"), 0);
	CHECK_RC(put_bytes(r, "listed/f/x", "x", 1, NULL, &second), 0);
	next_second();
	CHECK_RC(r->ops->remove_listed(r, "listed/f", second.etag), is_s3 ? 0 : -ESTALE);
	CHECK(exists(r, "listed/f/x"));
	if (is_s3)
		return;
	/* another version than the listed one: refused, kept */
	CHECK_RC(put_bytes(r, "listed/v", "first", 5, NULL, &first), 0);
	next_second();
	CHECK_RC(put_bytes(r, "listed/v", "second version", 14, NULL, &second), 0);
	next_second();
	CHECK_RC(r->ops->remove_listed(r, "listed/v", first.etag), -ESTALE);
	CHECK(exists(r, "listed/v"));
	CHECK_RC(r->ops->remove_listed(r, "listed/v", second.etag), 0);
	CHECK(!exists(r, "listed/v"));
	CHECK_RC(r->ops->remove_listed(r, "listed/v", second.etag), -ENOENT);
}

static void test_listed(struct remote *r)
{
	CHECK(r->ops->remove_listed != NULL);
	CHECK((r->ops->mkdir_listed != NULL) == is_s3);
	CHECK((r->ops->rmdir_listed != NULL) == is_s3);
	CHECK_RC(r->ops->mkdir(r, "listed"), 0);
	test_mkdir_listed(r);
	test_rmdir_listed(r);
	test_remove_listed(r);
}

/* ---- answers lost after the request reached the server ---- */

/* The port of the server behind url (webdav://user@127.0.0.1:PORT/...) or
 * AWS_ENDPOINT_URL (http://127.0.0.1:PORT); 0 if none. */
static int server_port(void)
{
	const char *u = is_s3 ? getenv("AWS_ENDPOINT_URL") : url;
	const char *host = u ? strstr(u, "127.0.0.1:") : NULL;
	return host ? atoi(host + strlen("127.0.0.1:")) : 0;
}

static void with_env(const char *name, const char *value, char **saved);
static void restore_env(const char *name, char *saved);

/* The store of url, reached through proxy p. */
static struct remote *open_through(struct lossy_proxy *p)
{
	char through[512], *saved;
	struct remote *r;
	if (is_s3) {
		snprintf(through, sizeof through, "http://127.0.0.1:%d", lossy_proxy_port(p));
		with_env("AWS_ENDPOINT_URL", through, &saved);
		r = open_remote(url, NULL);
		restore_env("AWS_ENDPOINT_URL", saved);
		return r;
	}
	const char *port = strstr(url, "127.0.0.1:") + strlen("127.0.0.1:");
	snprintf(through, sizeof through, "%.*s%d%s", (int)(port - url), url, lossy_proxy_port(p),
		 strchr(port, '/'));
	return open_remote(through, NULL);
}

/* Each request below reaches the server, which acts on it, and its answer
 * is lost: the retry meets the effect of its own first attempt (an existing
 * folder, an ETag that changed, a source that is gone, a missing object),
 * which is success, not an error or a conflict. A real conflict stays one. */
static void test_lost_answers(struct lossy_proxy *p, struct remote *r)
{
	struct remote_info v1, v2, info;
	uint8_t a[5000], b[7000];
	int lost = lossy_proxy_lost(p);
	fill(a, sizeof a, 11);
	fill(b, sizeof b, 12);
	lossy_proxy_lose(p, is_s3 ? "PUT" : "MKCOL", NULL, 1); /* S3: the folder's marker */
	CHECK_RC(r->ops->mkdir(r, "lost"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK_RC(r->ops->head(r, "lost", &info), 0);
	CHECK(info.is_dir);

	lossy_proxy_lose(p, "PUT", NULL, 1);
	CHECK_RC(put_bytes(r, "lost/obj", a, sizeof a, "", &v1), 0); /* must not exist */
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK_RC(r->ops->head(r, "lost/obj", &info), 0);
	CHECK(remote_etag_equal(info.etag, v1.etag));
	lossy_proxy_lose(p, "PUT", NULL, 1);
	CHECK_RC(put_bytes(r, "lost/obj", b, sizeof b, v1.etag, &v2), 0); /* must be v1 */
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(get_equals(r, "lost/obj", 0, 0, b, sizeof b));
	CHECK_RC(r->ops->head(r, "lost/obj", &info), 0);
	CHECK(remote_etag_equal(info.etag, v2.etag));
	lossy_proxy_lose(p, "PUT", NULL, 1); /* refused both times: someone else's version */
	CHECK_RC(put_bytes(r, "lost/obj", a, sizeof a, "", NULL), -ESTALE);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(get_equals(r, "lost/obj", 0, 0, b, sizeof b));

	/* a completed multipart upload's repeated completion: radosgw answers
	 * it 200 again, AWS NoSuchUpload (then the parts' ETags are checked) */
	if (is_s3) { /* run-remote.sh: parts of 5 MiB */
		uint8_t *big = malloc(6 << 20);
		fill(big, 6 << 20, 13);
		lossy_proxy_lose(p, "POST", "uploadId=", 1); /* the completion */
		CHECK_RC(put_bytes(r, "lost/big", big, 6 << 20, "", &v1), 0);
		CHECK(lossy_proxy_lost(p) == ++lost);
		CHECK(get_equals(r, "lost/big", 0, 0, big, 6 << 20));
		CHECK_RC(r->ops->head(r, "lost/big", &info), 0);
		CHECK(remote_etag_equal(info.etag, v1.etag));
		CHECK_RC(r->ops->remove(r, "lost/big"), 0);
		free(big);
	}

	lossy_proxy_lose(p, is_s3 ? "DELETE" : "MOVE", NULL, 1);
	CHECK_RC(r->ops->move(r, "lost/obj", "lost/moved", false), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK_RC(r->ops->head(r, "lost/obj", &info), -ENOENT);
	CHECK(get_equals(r, "lost/moved", 0, 0, b, sizeof b));
	lossy_proxy_lose(p, "DELETE", NULL, 1);
	CHECK_RC(r->ops->remove(r, "lost/moved"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK_RC(r->ops->head(r, "lost/moved", &info), -ENOENT);
	lossy_proxy_lose(p, "DELETE", NULL, 1);
	CHECK_RC(r->ops->rmdir(r, "lost"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK_RC(r->ops->head(r, "lost", &info), -ENOENT);
}

/* A gateway's 502 or 504 (or a 408) may come after the server behind it
 * acted on the request: the retry meets that effect, which is success; so
 * does the check after a MOVE, which is not retried. */
static void test_gateway_errors(struct lossy_proxy *p, struct remote *r)
{
	int lost = lossy_proxy_lost(p);
	lossy_proxy_replace(p, is_s3 ? "PUT" : "MKCOL", NULL, 1, 502); /* S3: the folder's marker */
	CHECK_RC(r->ops->mkdir(r, "gateway"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(is_folder(r, "gateway"));
	CHECK_RC(put_bytes(r, "gateway/obj", "abc", 3, NULL, NULL), 0);
	lossy_proxy_replace(p, is_s3 ? "DELETE" : "MOVE", NULL, 1, 502);
	CHECK_RC(r->ops->move(r, "gateway/obj", "gateway/moved", false), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(!exists(r, "gateway/obj"));
	CHECK(get_equals(r, "gateway/moved", 0, 0, (const uint8_t *)"abc", 3));
	lossy_proxy_replace(p, "DELETE", NULL, 1, 504);
	CHECK_RC(r->ops->remove(r, "gateway/moved"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(!exists(r, "gateway/moved"));
	lossy_proxy_replace(p, "DELETE", NULL, 1, 408);
	CHECK_RC(r->ops->rmdir(r, "gateway"), 0);
	CHECK(lossy_proxy_lost(p) == ++lost);
	CHECK(!exists(r, "gateway"));
}

/* The remote of url with https where the server speaks plain http. */
static struct remote *open_tls_to_plain(void)
{
	char tls[512], *saved;
	struct remote *r;
	if (is_s3) {
		snprintf(tls, sizeof tls, "https://127.0.0.1:%d", server_port());
		with_env("AWS_ENDPOINT_URL", tls, &saved);
		r = open_remote(url, NULL);
		restore_env("AWS_ENDPOINT_URL", saved);
		return r;
	}
	snprintf(tls, sizeof tls, "webdavs://%s", url + strlen("webdav://"));
	return open_remote(tls, NULL);
}

/* A server that cannot be reached or whose connection breaks off is
 * unreachable: the errnos the cache works offline on, and a log line that
 * names the server and gives curl's words. One try per request. */
static void test_unreachable(struct lossy_proxy *p)
{
	char *saved, server[64];
	uint8_t *buf;
	size_t n;
	struct remote_info info;
	with_env("UMBRAFS_HTTP_TRIES", "1", &saved);
	struct remote *r = open_through(p), *tls = open_tls_to_plain();
	restore_env("UMBRAFS_HTTP_TRIES", saved);
	CHECK(r && tls);
	if (r) {
		snprintf(server, sizeof server, "server 127.0.0.1:%d unreachable", lossy_proxy_port(p));
		lossy_proxy_cut(p, "GET", NULL, 1); /* closed within the body */
		CHECK_RC(get_bytes(r, "d/AbC=-_x==.c9r", 0, 0, &buf, &n), -ECONNRESET);
		free(buf);
		CHECK(logged_error_has(server, "transfer closed"));
		lossy_proxy_replace(p, "GET", NULL, 1, 0); /* closed without an answer */
		CHECK_RC(get_bytes(r, "d/AbC=-_x==.c9r", 0, 0, &buf, &n), -ECONNRESET);
		free(buf);
		CHECK(logged_error_has(server, "Empty reply"));
		r->ops->destroy(r);
	}
	if (tls) { /* the TLS handshake fails */
		snprintf(server, sizeof server, "server 127.0.0.1:%d unreachable", server_port());
		CHECK_RC(tls->ops->head(tls, "d", &info), -ECONNRESET);
		CHECK(logged_error_has(server, "SSL"));
		tls->ops->destroy(tls);
	}
}

/* A refused conditional PUT looks at the object once (one PROPFIND) to
 * tell a conflict from its own earlier success or from a change within the
 * current second (Apache's weak ETag); the bytes are compared only when the
 * sizes are equal. */
static void test_refused_put_requests(struct lossy_proxy *p, struct remote *r)
{
	uint8_t a[2000], b[2000];
	struct remote_info v1, v2;
	fill(a, sizeof a, 14);
	fill(b, sizeof b, 15);
	CHECK_RC(put_bytes(r, "d/refused", a, sizeof a, NULL, &v1), 0);
	next_second();
	CHECK_RC(put_bytes(r, "d/refused", b, sizeof b, NULL, &v2), 0);
	next_second();
	int propfinds = lossy_proxy_requests(p, "PROPFIND"), gets = lossy_proxy_requests(p, "GET");
	CHECK_RC(put_bytes(r, "d/refused", a, sizeof a, v1.etag, NULL), -ESTALE);
	CHECK(lossy_proxy_requests(p, "PROPFIND") - propfinds == 1);
	CHECK(lossy_proxy_requests(p, "GET") - gets == 1);
	CHECK(get_equals(r, "d/refused", 0, 0, b, sizeof b));
	/* changed within the current second: refused, looked at, sent again
	 * once the second is over (unless the second was over already) */
	CHECK_RC(put_bytes(r, "d/refused", a, sizeof a, NULL, &v1), 0);
	propfinds = lossy_proxy_requests(p, "PROPFIND");
	int puts = lossy_proxy_requests(p, "PUT");
	CHECK_RC(put_bytes(r, "d/refused", b, sizeof b, v1.etag, NULL), 0);
	printf("# PUT If-Match just after a change: %d PUT, %d PROPFIND\n",
	       lossy_proxy_requests(p, "PUT") - puts, lossy_proxy_requests(p, "PROPFIND") - propfinds);
	CHECK(lossy_proxy_requests(p, "PROPFIND") - propfinds ==
	      lossy_proxy_requests(p, "PUT") - puts - 1);
	CHECK(get_equals(r, "d/refused", 0, 0, b, sizeof b));
	CHECK_RC(r->ops->remove(r, "d/refused"), 0);
}

/* Faults between the remote and its server, through a lossy_proxy. */
static void test_through_proxy(void)
{
	struct lossy_proxy *p = server_port() ? lossy_proxy_start(server_port()) : NULL;
	struct remote *r = p ? open_through(p) : NULL;
	CHECK(r != NULL);
	if (r) {
		test_lost_answers(p, r);
		test_gateway_errors(p, r);
		test_unreachable(p);
		if (!is_s3) /* the quirk and the requests of WebDAV's put */
			test_refused_put_requests(p, r);
		r->ops->destroy(r);
	}
	lossy_proxy_stop(p);
}

/* ---- many entries, from several threads ---- */

#define MANY 1100
#define THREADS 4

struct many_job {
	struct remote *r;
	int first;
	int failures;
};

static void many_name(int i, char *out, size_t n)
{
	snprintf(out, n, "many/n%04d=-_.c9r", i);
}

static void *put_many(void *arg)
{
	struct many_job *job = arg;
	for (int i = job->first; i < MANY; i += THREADS) {
		char name[64];
		many_name(i, name, sizeof name);
		char body[16];
		int n = snprintf(body, sizeof body, "%d", i);
		if (put_bytes(job->r, name, body, (size_t)n, NULL, NULL) != 0)
			job->failures++;
	}
	return NULL;
}

struct many_seen {
	unsigned char hit[MANY];
	int n, bad;
};

static int many_cb(void *ctx, const char *name, const struct remote_info *info)
{
	struct many_seen *m = ctx;
	int i;
	m->n++;
	if (sscanf(name, "n%4d=-_.c9r", &i) != 1 || i < 0 || i >= MANY || m->hit[i]++ || info->is_dir)
		m->bad++;
	return 0;
}

static void test_many(struct remote *r)
{
	CHECK_RC(r->ops->mkdir(r, "many"), 0);
	pthread_t t[THREADS];
	struct many_job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct many_job){.r = r, .first = i};
		pthread_create(&t[i], NULL, put_many, &jobs[i]);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += jobs[i].failures;
	}
	CHECK(failures == 0);
	struct many_seen *m = calloc(1, sizeof *m);
	CHECK_RC(r->ops->list(r, "many", many_cb, m), 0);
	printf("# listed %d entries\n", m->n);
	CHECK(m->n == MANY && m->bad == 0);
	free(m);
}

/* ---- large object (multipart on S3) ---- */

static void test_big(struct remote *r)
{
	size_t n = (size_t)40 << 20;
	uint8_t *data = malloc(n);
	fill(data, n, 7);
	struct remote_info v1, info;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_RC(put_bytes(r, "d/big", data, n, "", &v1), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# 40 MiB put in %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	CHECK_RC(r->ops->head(r, "d/big", &info), 0);
	CHECK(info.size == n);
	printf("# etags: put %s, head %s\n", v1.etag, info.etag);
	CHECK(strcmp(info.etag, v1.etag) == 0);
	CHECK(get_equals(r, "d/big", 0, 0, data, n));
	size_t edge = ((size_t)5 << 20) - 100; /* across the first part boundary */
	CHECK(get_equals(r, "d/big", edge, 300, data + edge, 300));
	CHECK(get_equals(r, "d/big", n - 10, 0, data + n - 10, 10));
	/* conditional replace of a big object */
	data[0] ^= 1;
	CHECK_RC(put_bytes(r, "d/big", data, n, "", NULL), -ESTALE);
	CHECK_RC(put_bytes(r, "d/big", data, n, "\"0123456789abcdef-3\"", NULL), -ESTALE);
	CHECK_RC(put_bytes(r, "d/big", data, n, v1.etag, NULL), 0);
	CHECK(get_equals(r, "d/big", 0, 16, data, 16));
	CHECK_RC(r->ops->remove(r, "d/big"), 0);
	free(data);
}

/* ---- credentials and outages ---- */

static void with_env(const char *name, const char *value, char **saved)
{
	const char *old = getenv(name);
	*saved = old ? strdup(old) : NULL;
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

static void restore_env(const char *name, char *saved)
{
	if (saved)
		setenv(name, saved, 1);
	else
		unsetenv(name);
	free(saved);
}

static void test_wrong_credentials(void)
{
	const char *var = is_s3 ? "AWS_SECRET_ACCESS_KEY" : "UMBRAFS_WEBDAV_PASSWORD";
	char *saved;
	with_env(var, "wrong-secret", &saved);
	struct remote *bad = open_remote(url, NULL);
	restore_env(var, saved);
	CHECK(bad != NULL);
	if (!bad)
		return;
	struct remote_info info;
	CHECK_RC(bad->ops->head(bad, "", &info), -EACCES);
	CHECK_RC(bad->ops->head(bad, "d", &info), -EACCES);
	CHECK_RC(put_bytes(bad, "d/intruder", "x", 1, NULL, NULL), -EACCES);
	bad->ops->destroy(bad);
}

/* Credentials from the files of each ecosystem: ~/.netrc, ~/.aws/credentials. */
static void test_credential_files(void)
{
	const char *home = getenv("HOME");
	char path[4096];
	char *s1, *s2, *s3;
	if (is_s3) {
		snprintf(path, sizeof path, "%s/.aws", home);
		mkdir(path, 0700);
		snprintf(path, sizeof path, "%s/.aws/credentials", home);
		FILE *f = fopen(path, "w");
		fprintf(f, "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
			   "[umbra]\n aws_access_key_id = %s\naws_secret_access_key=%s\n",
			getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"));
		fclose(f);
		snprintf(path, sizeof path, "%s/.aws/config", home);
		f = fopen(path, "w");
		fprintf(f, "[default]\nregion = eu-west-9\n[profile umbra]\nregion = %s\n", getenv("AWS_REGION"));
		fclose(f);
		with_env("AWS_ACCESS_KEY_ID", NULL, &s1);
		with_env("AWS_SECRET_ACCESS_KEY", NULL, &s2);
		with_env("AWS_PROFILE", "umbra", &s3);
	} else {
		snprintf(path, sizeof path, "%s/.netrc", home);
		FILE *f = fopen(path, "w");
		fprintf(f, "machine 127.0.0.1\nlogin %s\npassword %s\n", getenv("UMBRAFS_TEST_WEBDAV_USER"),
			getenv("UMBRAFS_WEBDAV_PASSWORD"));
		fclose(f);
		chmod(path, 0600);
		with_env("UMBRAFS_WEBDAV_PASSWORD", NULL, &s1);
		with_env("UMBRAFS_WEBDAV_USER", NULL, &s2);
		with_env("UMBRAFS_TEST_UNUSED", NULL, &s3);
	}
	struct remote *r = open_remote(url, NULL);
	CHECK(r != NULL);
	if (r) {
		struct remote_info info;
		CHECK_RC(r->ops->head(r, "d", &info), 0);
		r->ops->destroy(r);
	}
	if (is_s3) {
		/* AWS_REGION unset: the profile's region is used (and signed) */
		char *s4;
		with_env("AWS_REGION", NULL, &s4);
		r = open_remote(url, NULL);
		struct remote_info info;
		CHECK(r && r->ops->head(r, "d", &info) == 0);
		if (r)
			r->ops->destroy(r);
		restore_env("AWS_REGION", s4);
		restore_env("AWS_ACCESS_KEY_ID", s1);
		restore_env("AWS_SECRET_ACCESS_KEY", s2);
		restore_env("AWS_PROFILE", s3);
	} else {
		restore_env("UMBRAFS_WEBDAV_PASSWORD", s1);
		restore_env("UMBRAFS_WEBDAV_USER", s2);
		restore_env("UMBRAFS_TEST_UNUSED", s3);
	}
}

static void test_server_down(void)
{
	/* port 1 on loopback: nothing listens there */
	char *saved = NULL;
	const char *down_url = url;
	if (is_s3)
		with_env("AWS_ENDPOINT_URL", "http://127.0.0.1:1", &saved);
	else
		down_url = "webdav://test@127.0.0.1:1/vault";
	struct remote *r = open_remote(down_url, NULL);
	if (is_s3)
		restore_env("AWS_ENDPOINT_URL", saved);
	CHECK(r != NULL);
	if (!r)
		return;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct remote_info info;
	CHECK_RC(r->ops->head(r, "d", &info), -ECONNREFUSED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 10);
	CHECK(logged_error_has("server 127.0.0.1:1 unreachable", "Failed to connect"));
	r->ops->destroy(r);
}

static void test_open_errors(void)
{
	struct remote *r = NULL;
	char *err = NULL;
	int rc = is_s3 ? remote_s3_open("webdav://x/y", false, &r, &err)
		       : remote_webdav_open("s3://x/y", false, &r, &err);
	CHECK(rc == -EINVAL && err != NULL && r == NULL);
	free(err);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s URL\n", argv[0]);
		return 2;
	}
	url = argv[1];
	is_s3 = strncmp(url, "s3://", 5) == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	store_set_log(log_line);
	struct remote *r = open_remote(url, NULL);
	if (!r)
		return 1;
	test_open_errors();
	test_root_and_mkdir(r);
	test_put_get(r);
	test_conditional_put(r);
	test_list(r);
	test_move(r);
	test_remove_rmdir(r);
	test_listed(r);
	test_through_proxy();
	test_many(r);
	test_big(r);
	test_wrong_credentials();
	test_credential_files();
	test_server_down();
	r->ops->destroy(r);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
