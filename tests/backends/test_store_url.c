/* Tests of store_open_url (backends/store_url.c): paths, file:// URLs,
 * remote schemes (opened behind the cache, without asking any server),
 * unknown schemes, create. */
#include "backends/cache.h"
#include "backends/store.h"
#include "check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char *root; /* a temp folder; also the working directory */

/* The outcome of store_open_url(url, create): the return value, the message
 * (if any) and the location of the store (if one was opened). */
struct outcome {
	int rc;
	char *err;
	char *location;
};

static struct outcome open_url(const char *url, bool create)
{
	struct outcome r = { 0 };
	struct store *s = NULL;

	struct store_url_options o = { .create = create };

	r.rc = store_open_url(url, &o, &s, &r.err);
	if (r.rc == 0) {
		r.location = strdup(s->location);
		store_destroy(s);
	}
	return r;
}

static void outcome_free(struct outcome *r)
{
	free(r->err);
	free(r->location);
}

/* url opens (with create as given) a local store at root/rel. */
static void check_opens_local(const char *url, bool create, const char *rel)
{
	struct outcome r = open_url(url, create);
	char *want;

	CHECK(asprintf(&want, "%s%s%s", root, rel[0] ? "/" : "", rel) > 0);
	if (!CHECK_EQ(r.rc, 0))
		fprintf(stderr, "  url %s: %s\n", url, r.err ? r.err : "(no message)");
	CHECK(r.err == NULL);
	CHECK_STR(r.location, want);
	free(want);
	outcome_free(&r);
}

/* url fails with rc and exactly the message want. */
static void check_refused(const char *url, bool create, int rc, const char *want)
{
	struct outcome r = open_url(url, create);

	if (!CHECK_EQ(r.rc, rc))
		fprintf(stderr, "  url %s\n", url);
	CHECK_STR(r.err, want);
	CHECK(r.location == NULL);
	outcome_free(&r);
}

static bool is_folder_with_mode(const char *path, mode_t mode)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == mode;
}

static void test_paths(void)
{
	char *abs, *url;

	CHECK_EQ(mkdir("vault", 0700), 0);
	check_opens_local("vault", false, "vault");
	check_opens_local("./vault", false, "vault");
	check_opens_local(".", false, "");
	CHECK(asprintf(&abs, "%s/vault", root) > 0);
	check_opens_local(abs, false, "vault");
	/* a colon without "//" is part of a path */
	CHECK_EQ(mkdir("a:b", 0700), 0);
	check_opens_local("a:b", false, "a:b");

	check_refused("missing", false, -ENOENT, "missing: no such folder");
	CHECK(asprintf(&url, "%s/missing/deeper", root) > 0);
	{
		char *want;
		CHECK(asprintf(&want, "%s: no such folder", url) > 0);
		check_refused(url, false, -ENOENT, want);
		free(want);
	}
	free(url);
	CHECK_EQ(close(creat("plain", 0600)), 0);
	check_refused("plain", false, -ENOTDIR, "plain: not a folder");
	check_refused("", false, -EINVAL, "empty store path");
	free(abs);
}

static void test_create(void)
{
	struct store *s = NULL;

	check_opens_local("new", true, "new");
	CHECK(is_folder_with_mode("new", 0700));
	check_opens_local("new", true, "new"); /* present already: fine */
	check_opens_local("deep/er/folder/", true, "deep/er/folder");
	CHECK(is_folder_with_mode("deep", 0700));
	CHECK(is_folder_with_mode("deep/er", 0700));
	CHECK(is_folder_with_mode("deep/er/folder", 0700));
	check_opens_local("file://fromurl", true, "fromurl");
	CHECK(is_folder_with_mode("fromurl", 0700));

	check_refused("plain", true, -ENOTDIR, "plain: not a folder");
	check_refused("plain/sub", true, -ENOTDIR, "plain/sub: cannot create folder: Not a directory");
	/* err may be NULL, and so may the options */
	CHECK_EQ(store_open_url("plain", &(struct store_url_options){ .create = true }, &s, NULL),
		 -ENOTDIR);
	CHECK_EQ(store_open_url("new", NULL, &s, NULL), 0);
	store_destroy(s);
}

static void test_file_urls(void)
{
	char *url;

	CHECK_EQ(mkdir("with space", 0700), 0);
	CHECK(asprintf(&url, "file://%s/vault", root) > 0);
	check_opens_local(url, false, "vault");
	free(url);
	CHECK(asprintf(&url, "FILE://%s/vault", root) > 0);
	check_opens_local(url, false, "vault");
	free(url);
	CHECK(asprintf(&url, "file://%s/with%%20space", root) > 0);
	check_opens_local(url, false, "with space");
	free(url);
	check_opens_local("file://vault", false, "vault"); /* relative */
	check_refused("file://nothere", false, -ENOENT, "nothere: no such folder");
	check_refused("file://", false, -EINVAL, "empty store path");
	check_refused("file:///%00", false, -EINVAL, "invalid file URL: URL decode error, most likely because of rubbish in the input");
}

/* url opens a remote store of kind behind the cache (no server is asked:
 * opening sends no request); location is what messages name it by. */
static void check_opens_remote(const char *url, const char *kind, const char *location)
{
	struct store *s = NULL;
	char *err = NULL;

	if (!CHECK_EQ(store_open_url(url, NULL, &s, &err), 0)) {
		fprintf(stderr, "  url %s: %s\n", url, err ? err : "(no message)");
		free(err);
		return;
	}
	CHECK(err == NULL);
	CHECK(store_is_cache(s));
	CHECK_STR(s->ops->name, kind);
	CHECK_STR(s->location, location);
	store_destroy(s);
}

static void test_remote_schemes(void)
{
	struct store *s = NULL, *again = NULL;
	char *err = NULL;

	setenv("XDG_CACHE_HOME", root, 1);
	setenv("AWS_ACCESS_KEY_ID", "key", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	check_opens_remote("webdav://example.org/vault", "webdav", "webdav://example.org/vault");
	check_opens_remote("webdavs://user:secret@example.org:8443/dav/vault", "webdav",
			   "webdavs://example.org:8443/dav/vault");
	check_opens_remote("s3://bucket/prefix", "s3", "s3://bucket/prefix");
	check_refused("s3://", false, -EINVAL, "not an s3://bucket/prefix URL");
	/* the cache folders are below $XDG_CACHE_HOME/umbrafs, private */
	CHECK(is_folder_with_mode("umbrafs", 0700));
	/* nothing was created for the stores themselves */
	CHECK(access("bucket", F_OK) < 0 && access("example.org", F_OK) < 0);

	/* one cache folder serves one mount at a time */
	CHECK_EQ(store_open_url("webdav://example.org/vault", NULL, &s, NULL), 0);
	CHECK_EQ(store_open_url("webdav://example.org/vault", NULL, &again, &err), -EBUSY);
	CHECK(err && strstr(err, "in use by another umbrafs") && strstr(err, "--cache-dir"));
	free(err);
	store_destroy(s);
	CHECK_EQ(store_open_url("webdav://example.org/vault", NULL, &again, NULL), 0);
	store_destroy(again);
	unsetenv("XDG_CACHE_HOME");
}

static void test_unknown_schemes(void)
{
	check_refused("ftp://host/x", false, -EINVAL,
		      "unknown store URL scheme 'ftp' (use a path, file://, webdav://, webdavs:// or s3://)");
	check_refused("x+y.z-w://host", true, -EINVAL,
		      "unknown store URL scheme 'x+y.z-w' (use a path, file://, webdav://, webdavs:// or s3://)");
	check_refused("http://", false, -EINVAL,
		      "unknown store URL scheme 'http' (use a path, file://, webdav://, webdavs:// or s3://)");
}

int main(void)
{
	char *real;

	umask(022);
	real = make_temp_folder();
	root = realpath(real, NULL);
	if (!root || chdir(root) < 0) {
		perror(real);
		return EXIT_FAILURE;
	}
	test_paths();
	test_create();
	test_file_urls();
	test_remote_schemes();
	test_unknown_schemes();
	if (chdir("/") < 0)
		perror("/");
	remove_temp_folder(real);
	free(root);
	return check_summary();
}
