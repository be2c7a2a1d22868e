/* Readers of S3 XML replies (ListObjectsV2 pages and the one-field replies of
 * multipart uploads), declared apart from remote_s3.c so that the fuzz tests
 * (tests/fuzz/) reach them. */
#ifndef S3_XML_H
#define S3_XML_H

#include <stdbool.h>

#include "backends/http.h"
#include "backends/remote.h"

/* Called per key (is_prefix false) or common prefix (true); full keys.
 * Non-zero stops the page and is returned. */
typedef int (*s3_key_fn)(void *ctx, const char *key, bool is_prefix, const struct remote_info *info);

/* Read one ListObjectsV2 reply page: fn for each <Contents> and
 * <CommonPrefixes> in order. With follow, *token gets the malloc'd
 * continuation token of a truncated page (NULL otherwise). -EIO when body is
 * no ListBucketResult, or a truncated page has no NextContinuationToken. */
int remote_s3_parse_list_page(const struct http_buf *body, bool follow, s3_key_fn fn, void *ctx,
			      char **token);

/* Text of child `name` of a reply's root `root_name`; malloc'd, or NULL. */
char *remote_s3_reply_field(const struct http_buf *body, const char *root_name, const char *name);

#endif
