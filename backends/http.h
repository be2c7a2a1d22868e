/* Shared HTTP plumbing of the remote stores (libcurl): a thread-safe client
 * with a pool of easy handles, timeouts, retries with backoff, status -> errno
 * mapping, percent-encoding of paths and small libxml2 helpers for replies.
 *
 * Knobs (environment, read when a client is made):
 *   UMBRAFS_HTTP_RETRY_BASE_MS  first retry delay (default 500 ms; doubles per try, with jitter)
 *   UMBRAFS_HTTP_TRIES          attempts per request (default 5)
 *   CURL_CA_BUNDLE, AWS_CA_BUNDLE  CA file for TLS verification (first one set wins) */
#ifndef HTTP_H
#define HTTP_H

#include <curl/curl.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backends/remote.h"

struct http_client;

/* A growing byte buffer (always NUL-terminated when data != NULL). */
struct http_buf {
	char *data;
	size_t len, cap;
};

struct http_request;

/* Called before every attempt (so a signature carries a fresh date); appends
 * the headers of that attempt to *headers. Returns 0 or -errno. */
typedef int (*http_sign_fn)(void *ctx, const struct http_request *req, struct curl_slist **headers);

struct http_request {
	const char *method;      /* "GET", "PUT", "PROPFIND", ... */
	const char *url;         /* never holds credentials: it is logged */
	const struct curl_slist *headers;
	http_sign_fn sign;       /* NULL: none */
	void *sign_ctx;
	/* Basic auth: username and password; without a password and with netrc
	 * set, ~/.netrc supplies it (and the login, if username is NULL). */
	const char *username;
	const char *password;
	bool netrc;
	/* Request body: body_fd >= 0 sends body_size bytes of it from body_off;
	 * otherwise body/body_size from memory (body NULL: no body). */
	int body_fd;
	uint64_t body_off, body_size;
	const void *body;
	/* Ranged GET: bytes range_off.. (range_len 0: to the end). A server that
	 * ignores the range (200) is handled by skipping bytes. */
	bool ranged;
	uint64_t range_off, range_len;
	int out_fd;              /* >= 0: a 2xx body goes there at its position; else into resp->body */
	bool no_body;            /* HEAD */
	bool no_status_retry;    /* a 5xx is an answer, not an outage (non-idempotent requests) */
};

/* Initialise a request: no body, no output fd, everything else zero. */
void http_request_init(struct http_request *req, const char *method, const char *url);

struct http_response {
	long status;
	struct http_buf body;    /* 2xx body (out_fd < 0) or the error body (bounded) */
	uint64_t written;        /* bytes written to out_fd */
	char etag[REMOTE_ETAG_MAX]; /* ETag header (see http_etag_copy), "" if none */
	int64_t content_length;  /* -1 if unknown */
	int64_t total_size;      /* from Content-Range ".../SIZE", else -1 */
	time_t last_modified;    /* -1 if none */
	/* A sending of the request broke after it may have reached the server
	 * (a transport failure once connected with its body all handed over,
	 * or libcurl's own resend on a reused connection that broke before
	 * answering): it may have taken effect with its answer lost, so a final
	 * status that says "exists already", "precondition failed" or "not
	 * found" may answer a repeat of this request's own success. So may an
	 * attempt answered 502 or 504 (a gateway whose upstream failed or took
	 * too long, maybe after acting), 408 or 500. Callers of requests that
	 * are not idempotent then check what the server holds. */
	bool maybe_applied;
};

int http_client_new(bool insecure, struct http_client **out);
void http_client_free(struct http_client *c);

/* Run req, retrying transport errors, 5xx and 429 with exponential backoff
 * and jitter (Retry-After honoured). Returns 0 when a final HTTP status was
 * received (resp->status, any value but a retryable one), else -errno: when
 * the server could not be reached or the connection to it broke (name
 * resolution, connecting, TLS handshake, a stalled transfer, a connection
 * closed before or within the answer) one of -EHOSTUNREACH, -ENETUNREACH,
 * -ENETDOWN, -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET, logged with the server's
 * name and curl's error text; -EIO for an answer curl could not use (and for
 * a retryable status still answered at the last try). resp must be released
 * with http_response_free. */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp);
void http_response_free(struct http_response *resp);

/* Ranged GET of req (method/url/auth/signing set by the caller) into fd, as
 * remote_ops.get: bytes off.. (len 0: to the end), *got the count, info (may
 * be NULL) what the reply headers say. A range past the end gives 0 bytes. */
int http_get_to_fd(struct http_client *c, struct http_request *req, uint64_t off, uint64_t len,
		   int fd, uint64_t *got, struct remote_info *info);

/* Fill info from the reply headers of a 2xx (size, mtime, ETag). */
void http_response_to_info(const struct http_response *resp, struct remote_info *info);

/* Copy an ETag without a weak "W/" prefix. Apache marks the ETag of a file
 * changed within the current second weak and then never lets it match an
 * If-Match; the value behind the prefix is the one it gives a second later. */
void http_etag_copy(char dst[REMOTE_ETAG_MAX], const char *etag);

/* errno for a final non-2xx status: 404/409/410 -ENOENT, 401/403 -EACCES,
 * 412 -ESTALE, 507 -ENOSPC, 416 -ERANGE, 413 -EFBIG, other -EIO. 0 for 2xx. */
int http_status_errno(long status);

/* Append text of len bytes to b; -ENOMEM on failure. */
int http_buf_add(struct http_buf *b, const void *text, size_t len);
int http_buf_addstr(struct http_buf *b, const char *s);

/* Append path percent-encoded: everything but A-Z a-z 0-9 - . _ ~ is escaped
 * ('=' too); '/' is kept unless keep_slash is false. */
int http_buf_add_escaped(struct http_buf *b, const char *path, bool keep_slash);

/* Decode %XX escapes; malloc'd result or NULL. */
char *http_unescape(const char *s);

/* XML replies: parse without network and without entity substitution.
 * NULL if not well-formed. Release with xmlFreeDoc. */
xmlDocPtr http_xml_parse(const char *data, size_t len);
/* Is node an element named local, in namespace ns (NULL: any namespace)? */
bool http_xml_is(const xmlNode *node, const char *ns, const char *local);
/* The first child element of parent matching (ns, local), or NULL. */
xmlNode *http_xml_child(const xmlNode *parent, const char *ns, const char *local);
/* Text content of a child element as a malloc'd string ("" if empty); NULL if absent. */
char *http_xml_child_text(const xmlNode *parent, const char *ns, const char *local);

#endif
