/* libFuzzer target: reading a STORE argument. Input: the URL text.
 * - Remote URLs (webdav://, webdavs://, s3://, any case) go to the remotes'
 *   own URL readers, remote_webdav_open and remote_s3_open, which parse and
 *   set up a client but send nothing. Never to store_open_url: behind a
 *   remote it opens a cache, a folder on disk per URL.
 * - Everything else goes to store_open_url without create (no folder is
 *   made): local paths, file:// URLs, unknown schemes.
 * Every failure must come with a -errno and a message; every success with a
 * store or remote that can be closed. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/remote.h"
#include "backends/store.h"
#include "tests/fuzz/fuzz_common.h"

typedef int (*remote_open_fn)(const char *url, bool insecure, struct remote **out, char **err);

/* The opener of url's remote scheme (as store_open_url matches it: the whole
 * scheme, any case), or NULL if it names no remote. */
static remote_open_fn remote_opener(const char *url)
{
	static const struct {
		const char *scheme;
		remote_open_fn open;
	} remotes[] = {
		{ "webdav", remote_webdav_open },
		{ "webdavs", remote_webdav_open },
		{ "s3", remote_s3_open },
	};
	const char *end = strstr(url, "://");
	for (size_t i = 0; end && i < sizeof remotes / sizeof remotes[0]; i++)
		if ((size_t)(end - url) == strlen(remotes[i].scheme) &&
		    strncasecmp(url, remotes[i].scheme, strlen(remotes[i].scheme)) == 0)
			return remotes[i].open;
	return NULL;
}

static void check_remote_open(remote_open_fn open_fn, const char *url)
{
	struct remote *r = NULL;
	char *err = NULL;
	int rc = open_fn(url, false, &r, &err);
	if (rc == 0) {
		if (r == NULL || r->location == NULL)
			fuzz_fail("an opened remote has no location");
		r->ops->destroy(r);
	} else if (rc > 0 || err == NULL) {
		fuzz_fail("a remote opener failed without a -errno and a message");
	}
	free(err);
}

static void check_store_open(const char *url)
{
	const struct store_url_options no_create = { .create = false };
	struct store *s = NULL;
	char *err = NULL;
	int rc = store_open_url(url, &no_create, &s, &err);
	if (rc == 0)
		store_destroy(s);
	else if (rc > 0 || err == NULL)
		fuzz_fail("store_open_url failed without a -errno and a message");
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = fuzz_strndup(data, size);
	remote_open_fn open_fn = remote_opener(url);
	if (open_fn)
		check_remote_open(open_fn, url);
	else
		check_store_open(url);
	free(url);
	return 0;
}
