/* The reader of WebDAV PROPFIND replies (RFC 4918 multistatus), declared
 * apart from remote_webdav.c so that the fuzz tests (tests/fuzz/) reach it. */
#ifndef WEBDAV_XML_H
#define WEBDAV_XML_H

#include "backends/http.h"
#include "backends/remote.h"

/* Called per <response>; non-zero stops the walk and is returned. */
typedef int (*webdav_entry_fn)(void *ctx, const char *path, const struct remote_info *info);

/* Call fn for every <response> of a multistatus body with its decoded path
 * (no trailing '/') and the properties of its 200 propstat. -EIO when body is
 * no multistatus document. */
int remote_webdav_parse_multistatus(const struct http_buf *body, webdav_entry_fn fn, void *ctx);

#endif
