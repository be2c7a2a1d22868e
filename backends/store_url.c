/* store_open_url: from the STORE argument of the command line to a store.
 * A string "scheme://..." is a URL (read with curl's URL API); anything else
 * is a path of a local folder. webdav://, webdavs:// and s3:// open a remote
 * (remote_webdav.c, remote_s3.c) behind the local cache (cache.c). */
#include "backends/cache.h"
#include "backends/remote.h"
#include "backends/store.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCAL_FOLDER_MODE 0700

/* Schemes of the remote stores, and the kind of store each names. */
static const struct {
	const char *scheme;
	const char *kind;
} remote_schemes[] = {
	{ "webdav", "webdav" },
	{ "webdavs", "webdav" },
	{ "s3", "s3" },
};

static store_log_fn log_sink;

void store_set_log(store_log_fn fn)
{
	log_sink = fn;
}

void store_log(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_sink)
		log_sink(prio, line);
	else
		fprintf(stderr, "umbrafs: %s\n", line);
}

int store_fail(char **err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return code;
}

/* Length of the scheme of "scheme://..." (RFC 3986: a letter, then letters,
 * digits, '+', '-', '.'); 0 if url does not start with one. */
static size_t scheme_length(const char *url)
{
	size_t n = 0;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.')
		n++;
	return strncmp(url + n, "://", 3) == 0 ? n : 0;
}

static bool scheme_is(const char *url, size_t len, const char *scheme)
{
	return strlen(scheme) == len && strncasecmp(url, scheme, len) == 0;
}

int store_mkdir_p(const char *path)
{
	char *prefix = strdup(path);
	int rc = 0;

	if (!prefix)
		return -ENOMEM;
	for (char *slash = strchr(prefix + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash)
			*slash = '\0';
		if (mkdir(prefix, LOCAL_FOLDER_MODE) < 0 && errno != EEXIST)
			rc = -errno;
		if (!slash || rc)
			break;
		*slash = '/';
	}
	free(prefix);
	return rc;
}

const char *store_home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if ((!home || *home != '/') && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	return home && *home == '/' ? home : NULL;
}

static int open_local(const char *path, bool create, struct store **out, char **err)
{
	if (path[0] == '\0')
		return store_fail(err, -EINVAL, "empty store path");
	if (create) {
		int rc = store_mkdir_p(path);
		if (rc < 0)
			return store_fail(err, rc, "%s: cannot create folder: %s", path, strerror(-rc));
	}
	return store_local_open(path, out, err);
}

static int curl_error(CURLUcode rc, const char *what, char **err)
{
	if (rc == CURLUE_OUT_OF_MEMORY)
		return store_fail(err, -ENOMEM, "out of memory");
	return store_fail(err, -EINVAL, "invalid %s URL: %s", what, curl_url_strerror(rc));
}

/* Read url with curl; *h receives the parsed handle (curl_url_cleanup it). */
static int parse_url(const char *url, const char *what, CURLU **h, char **err)
{
	CURLUcode rc;

	*h = curl_url();
	if (!*h)
		return store_fail(err, -ENOMEM, "out of memory");
	rc = curl_url_set(*h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK) {
		curl_url_cleanup(*h);
		*h = NULL;
		return curl_error(rc, what, err);
	}
	return 0;
}

/* file://PATH: an absolute PATH (file:///abs/path) is read as a URL, so
 * %-escapes are decoded; a relative one (file://rel/path), which is no URL to
 * curl, is taken as written. */
static int open_file_url(const char *url, size_t scheme_len, bool create, struct store **out, char **err)
{
	const char *rest = url + scheme_len + strlen("://");
	char *path;
	CURLUcode got;
	CURLU *h;
	int rc;

	if (rest[0] != '/')
		return open_local(rest, create, out, err);
	rc = parse_url(url, "file", &h, err);
	if (rc < 0)
		return rc;
	got = curl_url_get(h, CURLUPART_PATH, &path, CURLU_URLDECODE);
	curl_url_cleanup(h);
	if (got != CURLUE_OK)
		return curl_error(got, "file", err);
	rc = open_local(path, create, out, err);
	curl_free(path);
	return rc;
}

/* A remote store: the remote behind the cache. init creates a missing
 * WebDAV collection (S3 prefixes need no creating). */
static int open_remote(const char *url, const char *kind, const struct store_url_options *o,
		       struct store **out, char **err)
{
	struct remote *r = NULL;
	char *msg = NULL; /* the remotes' openers need a place for their message */
	int rc = strcmp(kind, "s3") == 0 ? remote_s3_open(url, o->insecure, &r, &msg)
					 : remote_webdav_open(url, o->insecure, &r, &msg);

	if (rc) {
		if (err)
			*err = msg;
		else
			free(msg);
		return rc;
	}
	if (o->create && strcmp(kind, "webdav") == 0) {
		rc = r->ops->mkdir(r, "");
		if (rc && rc != -EEXIST && rc != -ENOENT) { /* -ENOENT: a missing parent; init says so */
			store_fail(err, rc, "%s: cannot create the folder: %s", r->location, strerror(-rc));
			r->ops->destroy(r);
			return rc;
		}
	}
	return store_cache_open(r, o->cache, out, err);
}

int store_open_url(const char *url, const struct store_url_options *o, struct store **out, char **err)
{
	static const struct store_url_options defaults = { 0 };
	size_t scheme_len;

	if (err)
		*err = NULL;
	if (!o)
		o = &defaults;
	scheme_len = scheme_length(url);
	if (scheme_len == 0)
		return open_local(url, o->create, out, err);
	if (scheme_is(url, scheme_len, "file"))
		return open_file_url(url, scheme_len, o->create, out, err);
	for (size_t i = 0; i < sizeof remote_schemes / sizeof remote_schemes[0]; i++)
		if (scheme_is(url, scheme_len, remote_schemes[i].scheme))
			return open_remote(url, remote_schemes[i].kind, o, out, err);
	return store_fail(err, -EINVAL,
			  "unknown store URL scheme '%.*s' (use a path, file://, webdav://, webdavs:// or s3://)",
			  (int)scheme_len, url);
}
