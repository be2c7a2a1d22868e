/* libFuzzer target: the reader of WebDAV PROPFIND replies
 * (remote_webdav_parse_multistatus, backends/webdav_xml.h). The input is the
 * reply body. Every entry reported must have a path without a trailing '/'
 * (but "/"), a folder size 0 and a NUL-terminated ETag; the walk stops when
 * the callback says so. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/webdav_xml.h"
#include "tests/fuzz/fuzz_common.h"

struct walk {
	int entries;
	int stop_after; /* the callback answers 1 at this entry (0: never) */
};

static int on_entry(void *ctx, const char *path, const struct remote_info *info)
{
	struct walk *w = ctx;
	size_t n = strlen(path);
	if (n > 1 && path[n - 1] == '/')
		fuzz_fail("an entry path ends in '/'");
	if (info->is_dir && info->size != 0)
		fuzz_fail("a folder has a size");
	if (memchr(info->etag, '\0', sizeof info->etag) == NULL)
		fuzz_fail("an ETag is not NUL-terminated");
	return ++w->entries == w->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct walk w = { 0, fuzz_byte(&in) % 4 };
	struct http_buf body = { fuzz_strndup(in.p, in.n), in.n, in.n + 1 };
	int rc = remote_webdav_parse_multistatus(&body, on_entry, &w);
	if (rc != 0 && rc != -EIO && !(rc == 1 && w.entries == w.stop_after))
		fuzz_fail("unexpected result of remote_webdav_parse_multistatus");
	free(body.data);
	return 0;
}
