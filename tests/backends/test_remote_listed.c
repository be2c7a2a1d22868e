/* The _listed requests of the remotes (remote.h: mkdir_listed, rmdir_listed,
 * remove_listed) against a real server, what each still guarantees without
 * the checks it skips: a marker made meanwhile is not written over, a folder
 * marker's delete leaves what is below it, and WebDAV's conditional delete
 * never takes a folder or another version.
 * Usage: test_remote_listed URL (run by tests/remote/run-remote.sh, which
 * starts the server and sets the credentials). Prints "N passed, N failed". */
#include "check.h"
#include "backends/remote.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int put_text(struct remote *r, const char *path, const char *text, struct remote_info *info)
{
	int fd = memfd_create("remote-listed", 0);
	size_t n = strlen(text);
	int rc = fd >= 0 && write(fd, text, n) == (ssize_t)n ? 0 : -EIO;

	if (!rc)
		rc = r->ops->put(r, path, fd, n, NULL, info);
	if (fd >= 0)
		close(fd);
	return rc;
}

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
 * If-Match meets: wait for the next second. */
static void next_second(void)
{
	struct timespec t = { 1, 100 * 1000 * 1000 };

	nanosleep(&t, NULL);
}

static void test_mkdir_listed(struct remote *r)
{
	if (!r->ops->mkdir_listed)
		return;
	CHECK_EQ(r->ops->mkdir_listed(r, "m"), 0);
	CHECK(is_folder(r, "m"));
	CHECK_EQ(r->ops->mkdir_listed(r, "m"), -EEXIST); /* made meanwhile: not written over */
	CHECK_EQ(r->ops->mkdir_listed(r, "m/sub"), 0);
	CHECK(is_folder(r, "m/sub"));
}

static void test_rmdir_listed(struct remote *r)
{
	struct remote_info info;

	if (!r->ops->rmdir_listed)
		return;
	CHECK_EQ(r->ops->mkdir(r, "e"), 0);
	CHECK_EQ(r->ops->rmdir_listed(r, "e"), 0);
	CHECK(!exists(r, "e"));
	/* something put there meanwhile stays, and so does its folder */
	CHECK_EQ(r->ops->mkdir(r, "busy"), 0);
	CHECK_EQ(put_text(r, "busy/late", "late", &info), 0);
	CHECK_EQ(r->ops->rmdir_listed(r, "busy"), 0);
	CHECK(exists(r, "busy/late"));
	CHECK(is_folder(r, "busy"));
}

static void test_remove_listed(struct remote *r, bool conditional)
{
	struct remote_info first, second;

	CHECK_EQ(put_text(r, "o", "one", &first), 0);
	next_second();
	CHECK_EQ(r->ops->remove_listed(r, "o", first.etag), 0);
	CHECK(!exists(r, "o"));
	/* a folder where an object was listed: WebDAV refuses (its DELETE would
	 * take the folder's content), S3 deletes no key of it */
	CHECK_EQ(r->ops->mkdir(r, "f"), 0);
	CHECK_EQ(put_text(r, "f/x", "x", &second), 0);
	next_second();
	CHECK_EQ(r->ops->remove_listed(r, "f", second.etag), conditional ? -ESTALE : 0);
	CHECK(exists(r, "f/x"));
	if (!conditional)
		return;
	/* another version than the listed one: refused, kept */
	CHECK_EQ(put_text(r, "v", "first", &first), 0);
	next_second();
	CHECK_EQ(put_text(r, "v", "second version", &second), 0);
	next_second();
	CHECK_EQ(r->ops->remove_listed(r, "v", first.etag), -ESTALE);
	CHECK(exists(r, "v"));
	CHECK_EQ(r->ops->remove_listed(r, "v", second.etag), 0);
	CHECK(!exists(r, "v"));
	CHECK_EQ(r->ops->remove_listed(r, "v", second.etag), -ENOENT);
}

int main(int argc, char **argv)
{
	struct remote *r = NULL;
	char *err = NULL;
	bool s3;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s URL\n", argv[0]);
		return 2;
	}
	s3 = strncmp(argv[1], "s3://", 5) == 0;
	rc = s3 ? remote_s3_open(argv[1], false, &r, &err) : remote_webdav_open(argv[1], false, &r, &err);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", argv[1], err ? err : "?");
		free(err);
		return 1;
	}
	/* S3 offers all three; WebDAV only remove_listed (MKCOL checks in one
	 * request already, and a DELETE of a folder would take its content) */
	CHECK(r->ops->remove_listed != NULL);
	CHECK_EQ(r->ops->mkdir_listed != NULL, s3);
	CHECK_EQ(r->ops->rmdir_listed != NULL, s3);
	test_mkdir_listed(r);
	test_rmdir_listed(r);
	test_remove_listed(r, !s3);
	r->ops->destroy(r);
	return check_summary();
}
