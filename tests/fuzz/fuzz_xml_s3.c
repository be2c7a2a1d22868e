/* libFuzzer target: the readers of S3 XML replies (backends/s3_xml.h): one
 * ListObjectsV2 page (remote_s3_parse_list_page) and the one-field replies of
 * multipart uploads (remote_s3_reply_field). Input: [1 flags: bit 0 follow
 * continuation tokens, bits 1-2 stop after that many entries (0: never)][the
 * reply body]. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/s3_xml.h"
#include "tests/fuzz/fuzz_common.h"

struct walk {
	int entries;
	int stop_after;
};

static int on_key(void *ctx, const char *key, bool is_prefix, const struct remote_info *info)
{
	struct walk *w = ctx;
	(void)key;
	if (is_prefix != info->is_dir)
		fuzz_fail("a common prefix is not reported as a folder");
	if (memchr(info->etag, '\0', sizeof info->etag) == NULL)
		fuzz_fail("an ETag is not NUL-terminated");
	return ++w->entries == w->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint8_t flags = fuzz_byte(&in);
	struct walk w = { 0, (flags >> 1) & 3 };
	bool follow = flags & 1;
	struct http_buf body = { fuzz_strndup(in.p, in.n), in.n, in.n + 1 };

	char *token = NULL;
	int rc = remote_s3_parse_list_page(&body, follow, on_key, &w, &token);
	if (rc != 0 && rc != -EIO && !(rc == 1 && w.entries == w.stop_after))
		fuzz_fail("unexpected result of remote_s3_parse_list_page");
	if (token != NULL && (rc != 0 || !follow))
		fuzz_fail("a continuation token came with an error or unasked");
	free(token);

	static const char *const fields[][2] = {
		{ "InitiateMultipartUploadResult", "UploadId" },
		{ "CompleteMultipartUploadResult", "ETag" },
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		free(remote_s3_reply_field(&body, fields[i][0], fields[i][1]));
	free(body.data);
	return 0;
}
