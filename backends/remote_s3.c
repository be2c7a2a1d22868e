/* S3 remote: s3://bucket/prefix.
 *
 * Configuration as the AWS tools read it: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (these win), else the profile
 * AWS_PROFILE (default "default") of ~/.aws/credentials and ~/.aws/config
 * (AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE move them). Region:
 * AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1.
 * Endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL with path-style
 * addressing, else https://BUCKET.s3.REGION.amazonaws.com (virtual host).
 * UMBRAFS_S3_PART_SIZE: multipart part size in bytes (default 16 MiB, at
 * least 5 MiB); objects above one part are uploaded in parts, up to
 * PARTS_IN_FLIGHT of them at once.
 *
 * Requests are signed with AWS Signature V4 here (libcurl 7.88's
 * CURLOPT_AWS_SIGV4 does not canonicalise query strings: radosgw rejects its
 * ListObjectsV2 signatures). The payload hash is the real SHA-256 of the body.
 *
 * Folders: S3 has none. A folder exists when a key starts with "folder/";
 * mkdir writes a zero-byte marker object "folder/" so that an empty folder
 * (a vault's fresh content directory) still exists, and rmdir deletes it.
 * head of a name that is no object asks for one key under "name/".
 * mkdir and move check that the parent folder exists, as a file system
 * would; put does not (that would double its requests), so a put below a
 * missing folder succeeds on S3 where WebDAV says -ENOENT. Those checks
 * (mkdir: a HEAD and a LIST each for the folder and its parent; rmdir: a
 * LIST; remove: a HEAD) are what the _listed forms skip for a caller whose
 * listing answers them: one request each then.
 * move copies (CopyObject) then deletes; a folder is moved key by key, which
 * is not atomic but fine for the small dir.c9r folders a vault renames.
 *
 * Conditions: a single-part put sends If-Match / If-None-Match: * and the
 * server decides. radosgw (16.x) compares If-Match against the ETag without
 * its quotes, so the ETag is sent unquoted. A multipart put checks the
 * condition with a HEAD first: another writer between that HEAD and the
 * completion is not detected. radosgw 16 answers CompleteMultipartUpload
 * with an empty <ETag>: the new ETag is then read with a HEAD.
 *
 * A request whose answer was lost after it reached the server is retried
 * (http.c) and the repeat then meets its own effect: the folder marker's
 * If-None-Match 412, a conditional PUT's 412, CompleteMultipartUpload's
 * NoSuchUpload. After such an attempt (http_response.maybe_applied) the
 * server's state is checked instead: the folder exists; the object's ETag
 * is the MD5 of the bytes sent (single part), or the multipart ETag of the
 * parts sent (the MD5 of their MD5s, "-", their count). The single-part
 * check is made for every refused conditional PUT: an upload the queue
 * replays after a crash may have arrived before the crash. */
#include "backends/http.h"
#include "backends/remote.h"
#include "backends/s3_xml.h"
#include "backends/store.h"

#include <syslog.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define MIN_PART_SIZE ((uint64_t)5 << 20)
#define DEFAULT_PART_SIZE ((uint64_t)16 << 20)
#define PARTS_IN_FLIGHT 3 /* parts of one multipart upload sent at once */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
	struct remote base;
	struct http_client *http;
	char *bucket;
	char *prefix;     /* key prefix of the root: "" or "some/prefix/" */
	char *endpoint;   /* scheme://host[:port], no trailing '/' */
	char *host;       /* the Host header: host[:port] */
	bool path_style;
	char *region;
	char *access_key, *secret_key, *session_token;
	uint64_t part_size;
};

static struct s3 *s3_of(struct remote *r)
{
	return (struct s3 *)r;
}

static int s3_errno(long status)
{
	return status == 409 ? -EIO : http_status_errno(status); /* S3's 409 is no missing parent */
}

/* ---- Signature V4 ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	hex_encode(md, sizeof md, out);
}

/* Digest md_type (SHA-256, MD5: at most 32 bytes) of len bytes of fd from
 * off, as hex. */
static int digest_fd_hex(const EVP_MD *md_type, int fd, uint64_t off, uint64_t len, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	enum { BUF = 1 << 20 };
	char *buf = malloc(BUF);
	int rc = ctx && buf && EVP_DigestInit_ex(ctx, md_type, NULL) ? 0 : -ENOMEM;
	while (!rc && len > 0) {
		ssize_t r = pread(fd, buf, len < BUF ? (size_t)len : BUF, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO; /* shorter than announced */
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	if (!rc && (!EVP_DigestFinal_ex(ctx, md, &md_len) || md_len > 32))
		rc = -EIO;
	if (!rc)
		hex_encode(md, md_len, out);
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;
	HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &n);
}

/* One signed request being made. */
struct s3_call {
	struct s3 *s;
	struct http_buf url;
	struct http_buf uri;        /* canonical URI: the escaped path */
	const char *query;          /* canonical query string ("" if none) */
	const char *copy_source;    /* x-amz-copy-source value, or NULL */
	char payload_hash[65];
};

static int append_header(struct curl_slist **list, const char *name, const char *value)
{
	struct http_buf b = {0};
	struct curl_slist *l = NULL;
	if (!http_buf_addstr(&b, name) && !http_buf_addstr(&b, ": ") && !http_buf_addstr(&b, value))
		l = curl_slist_append(*list, b.data);
	free(b.data);
	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

static int s3_sign(void *ctx, const struct http_request *req, struct curl_slist **headers)
{
	struct s3_call *call = ctx;
	struct s3 *s = call->s;
	char date[17], day[9];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
	memcpy(day, date, 8);
	day[8] = '\0';

	struct http_buf canon = {0}, names = {0}, scope = {0}, sts = {0}, auth = {0};
	int rc = -ENOMEM;
	/* canonical headers, sorted by name */
	struct { const char *name, *value; } h[] = {
		{"host", s->host},
		{"x-amz-content-sha256", call->payload_hash},
		{"x-amz-copy-source", call->copy_source},
		{"x-amz-date", date},
		{"x-amz-security-token", s->session_token},
	};
	if (http_buf_addstr(&canon, req->method) || http_buf_addstr(&canon, "\n") ||
	    http_buf_addstr(&canon, call->uri.data) || http_buf_addstr(&canon, "\n") ||
	    http_buf_addstr(&canon, call->query) || http_buf_addstr(&canon, "\n"))
		goto out;
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		if (!h[i].value)
			continue;
		if (http_buf_addstr(&canon, h[i].name) || http_buf_addstr(&canon, ":") ||
		    http_buf_addstr(&canon, h[i].value) || http_buf_addstr(&canon, "\n") ||
		    (names.len && http_buf_addstr(&names, ";")) || http_buf_addstr(&names, h[i].name))
			goto out;
	}
	if (http_buf_addstr(&canon, "\n") || http_buf_addstr(&canon, names.data) ||
	    http_buf_addstr(&canon, "\n") || http_buf_addstr(&canon, call->payload_hash))
		goto out;

	char canon_hash[65];
	sha256_hex(canon.data, canon.len, canon_hash);
	if (http_buf_addstr(&scope, day) || http_buf_addstr(&scope, "/") ||
	    http_buf_addstr(&scope, s->region) || http_buf_addstr(&scope, "/s3/aws4_request") ||
	    http_buf_addstr(&sts, "AWS4-HMAC-SHA256\n") || http_buf_addstr(&sts, date) ||
	    http_buf_addstr(&sts, "\n") || http_buf_addstr(&sts, scope.data) ||
	    http_buf_addstr(&sts, "\n") || http_buf_addstr(&sts, canon_hash))
		goto out;

	unsigned char key[32];
	struct http_buf secret = {0};
	if (http_buf_addstr(&secret, "AWS4") || http_buf_addstr(&secret, s->secret_key)) {
		free(secret.data);
		goto out;
	}
	hmac(secret.data, secret.len, day, key);
	OPENSSL_cleanse(secret.data, secret.len);
	free(secret.data);
	hmac(key, 32, s->region, key);
	hmac(key, 32, "s3", key);
	hmac(key, 32, "aws4_request", key);
	unsigned char sig[32];
	char sig_hex[65];
	hmac(key, 32, sts.data, sig);
	OPENSSL_cleanse(key, sizeof key);
	hex_encode(sig, sizeof sig, sig_hex);

	if (http_buf_addstr(&auth, "AWS4-HMAC-SHA256 Credential=") ||
	    http_buf_addstr(&auth, s->access_key) || http_buf_addstr(&auth, "/") ||
	    http_buf_addstr(&auth, scope.data) || http_buf_addstr(&auth, ", SignedHeaders=") ||
	    http_buf_addstr(&auth, names.data) || http_buf_addstr(&auth, ", Signature=") ||
	    http_buf_addstr(&auth, sig_hex))
		goto out;
	rc = 0;
	for (size_t i = 0; i < sizeof h / sizeof h[0] && !rc; i++)
		if (h[i].value)
			rc = append_header(headers, strcmp(h[i].name, "host") ? h[i].name : "Host", h[i].value);
	if (!rc)
		rc = append_header(headers, "Authorization", auth.data);
out:
	free(canon.data);
	free(names.data);
	free(scope.data);
	free(sts.data);
	free(auth.data);
	return rc;
}

/* ---- requests ---- */

/* key: the object key (NULL: the bucket itself); query: canonical query string. */
static int call_init(struct s3_call *call, struct s3 *s, const char *key, const char *query)
{
	memset(call, 0, sizeof *call);
	call->s = s;
	call->query = query ? query : "";
	memcpy(call->payload_hash, EMPTY_SHA256, sizeof call->payload_hash);
	bool ok = !http_buf_addstr(&call->uri, "/") &&
		  (!s->path_style || (!http_buf_add_escaped(&call->uri, s->bucket, false) &&
				      !http_buf_addstr(&call->uri, "/"))) &&
		  (!key || !http_buf_add_escaped(&call->uri, key, true)) &&
		  !http_buf_addstr(&call->url, s->endpoint) && !http_buf_addstr(&call->url, call->uri.data) &&
		  (!*call->query || (!http_buf_addstr(&call->url, "?") &&
				     !http_buf_addstr(&call->url, call->query)));
	return ok ? 0 : -ENOMEM;
}

static void call_free(struct s3_call *call)
{
	free(call->url.data);
	free(call->uri.data);
}

static void call_request(struct s3_call *call, struct http_request *req, const char *method)
{
	http_request_init(req, method, call->url.data);
	req->sign = s3_sign;
	req->sign_ctx = call;
}

/* A request without body or with an in-memory body; resp must be freed. */
static int s3_simple(struct s3 *s, const char *method, const char *key, const char *query,
		     const char *body, struct http_response *resp)
{
	struct s3_call call;
	int rc = call_init(&call, s, key, query);
	if (!rc) {
		struct http_request req;
		call_request(&call, &req, method);
		if (body) {
			req.body = body;
			req.body_size = strlen(body);
			sha256_hex(body, req.body_size, call.payload_hash);
		}
		req.no_body = strcmp(method, "HEAD") == 0;
		rc = http_perform(s->http, &req, resp);
	} else {
		memset(resp, 0, sizeof *resp);
	}
	call_free(&call);
	return rc;
}

/* The key of path below the root; with a trailing '/' for a folder's marker/prefix. */
static char *key_of(const struct s3 *s, const char *path, bool folder)
{
	struct http_buf b = {0};
	if (http_buf_addstr(&b, s->prefix) || http_buf_addstr(&b, path) ||
	    (folder && b.len && b.data[b.len - 1] != '/' && http_buf_addstr(&b, "/"))) {
		free(b.data);
		return NULL;
	}
	if (!b.data)
		return strdup("");
	return b.data;
}

/* The root element of an XML reply, after checking it is named `want`. */
static xmlNode *reply_root(xmlDocPtr doc, const char *want)
{
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	return http_xml_is(root, NULL, want) ? root : NULL;
}

static time_t parse_iso8601(const char *s)
{
	struct tm tm = {0};
	if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* ---- listing ---- */

static int add_query_param(struct http_buf *q, const char *name, const char *value)
{
	if ((q->len && http_buf_addstr(q, "&")) || http_buf_addstr(q, name) || http_buf_addstr(q, "="))
		return -ENOMEM;
	return http_buf_add_escaped(q, value, false);
}

/* The query of one ListObjectsV2 page, parameters in canonical (sorted) order. */
static int list_query(struct http_buf *q, const char *token, bool delimit, int max_keys,
		      const char *prefix)
{
	char max[16];
	snprintf(max, sizeof max, "%d", max_keys);
	if (token && add_query_param(q, "continuation-token", token))
		return -ENOMEM;
	if (delimit && add_query_param(q, "delimiter", "/"))
		return -ENOMEM;
	if (add_query_param(q, "list-type", "2") || (max_keys && add_query_param(q, "max-keys", max)) ||
	    add_query_param(q, "prefix", prefix))
		return -ENOMEM;
	return 0;
}

static int page_entries(xmlNode *root, s3_key_fn fn, void *ctx)
{
	int rc = 0;
	for (xmlNode *n = root->children; n && !rc; n = n->next) {
		struct remote_info info = {0};
		if (http_xml_is(n, NULL, "Contents")) {
			char *key = http_xml_child_text(n, NULL, "Key");
			char *size = http_xml_child_text(n, NULL, "Size");
			char *mtime = http_xml_child_text(n, NULL, "LastModified");
			char *etag = http_xml_child_text(n, NULL, "ETag");
			info.size = size ? strtoull(size, NULL, 10) : 0;
			info.mtime.tv_sec = mtime ? parse_iso8601(mtime) : 0;
			snprintf(info.etag, sizeof info.etag, "%s", etag ? etag : "");
			rc = key ? fn(ctx, key, false, &info) : -EIO;
			free(key);
			free(size);
			free(mtime);
			free(etag);
		} else if (http_xml_is(n, NULL, "CommonPrefixes")) {
			char *p = http_xml_child_text(n, NULL, "Prefix");
			info.is_dir = true;
			rc = p ? fn(ctx, p, true, &info) : -EIO;
			free(p);
		}
	}
	return rc;
}

int remote_s3_parse_list_page(const struct http_buf *body, bool follow, s3_key_fn fn, void *ctx,
			      char **token)
{
	*token = NULL;
	xmlDocPtr doc = http_xml_parse(body->data, body->len);
	xmlNode *root = reply_root(doc, "ListBucketResult");
	int rc = root ? page_entries(root, fn, ctx) : -EIO;
	if (!rc && follow) {
		char *truncated = http_xml_child_text(root, NULL, "IsTruncated");
		if (truncated && strcmp(truncated, "true") == 0) {
			*token = http_xml_child_text(root, NULL, "NextContinuationToken");
			if (!*token)
				rc = -EIO;
		}
		free(truncated);
	}
	xmlFreeDoc(doc);
	return rc;
}

/* List keys under prefix (delimit: one level, folders as common prefixes),
 * following continuation tokens; max_keys > 0 stops after the first page. */
static int list_keys(struct s3 *s, const char *prefix, bool delimit, int max_keys, s3_key_fn fn,
		     void *ctx)
{
	char *token = NULL;
	int rc = 0;
	do {
		struct http_buf q = {0};
		struct http_response resp;
		rc = list_query(&q, token, delimit, max_keys, prefix);
		free(token);
		token = NULL;
		if (!rc)
			rc = s3_simple(s, "GET", NULL, q.data, NULL, &resp);
		else
			memset(&resp, 0, sizeof resp);
		free(q.data);
		if (!rc)
			rc = s3_errno(resp.status);
		if (!rc)
			rc = remote_s3_parse_list_page(&resp.body, !max_keys, fn, ctx, &token);
		http_response_free(&resp);
	} while (!rc && token);
	free(token);
	return rc;
}

struct probe {
	const char *marker; /* the folder's own marker key */
	bool marker_seen;
	int others;         /* keys or prefixes below it */
};

static int probe_key(void *ctx, const char *key, bool is_prefix, const struct remote_info *info)
{
	(void)is_prefix;
	(void)info;
	struct probe *p = ctx;
	if (strcmp(key, p->marker) == 0)
		p->marker_seen = true;
	else
		p->others++;
	return 0;
}

/* Look at up to two keys under folder key `marker` ("dir/"). */
static int probe_folder(struct s3 *s, const char *marker, struct probe *p)
{
	memset(p, 0, sizeof *p);
	p->marker = marker;
	return list_keys(s, marker, true, 2, probe_key, p);
}

struct list_ctx {
	size_t prefix_len;
	struct probe self;
	remote_list_cb cb;
	void *cb_ctx;
	int stop;
};

static int list_key(void *ctx, const char *key, bool is_prefix, const struct remote_info *info)
{
	struct list_ctx *lc = ctx;
	probe_key(&lc->self, key, is_prefix, info);
	const char *name = key + lc->prefix_len;
	if (!*name)
		return 0; /* the folder's own marker */
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	size_t n = strlen(copy);
	if (is_prefix && n && copy[n - 1] == '/')
		copy[n - 1] = '\0';
	if (!strchr(copy, '/') && *copy)
		lc->stop = lc->cb(lc->cb_ctx, copy, info);
	free(copy);
	return lc->stop;
}

static int s3_list(struct remote *r, const char *dir, remote_list_cb cb, void *ctx)
{
	struct s3 *s = s3_of(r);
	char *prefix = key_of(s, dir, true);
	if (!prefix)
		return -ENOMEM;
	struct list_ctx lc = {.prefix_len = strlen(prefix), .cb = cb, .cb_ctx = ctx};
	lc.self.marker = prefix;
	int rc = list_keys(s, prefix, true, 0, list_key, &lc);
	if (rc == 0 && *dir && !lc.self.marker_seen && lc.self.others == 0)
		rc = -ENOENT;
	free(prefix);
	return rc;
}

/* ---- objects ---- */

/* HEAD of one object key. */
static int head_object(struct s3 *s, const char *key, struct remote_info *info)
{
	struct http_response resp;
	int rc = s3_simple(s, "HEAD", key, NULL, NULL, &resp);
	if (!rc)
		rc = s3_errno(resp.status);
	if (!rc)
		http_response_to_info(&resp, info);
	http_response_free(&resp);
	return rc;
}

static int s3_head(struct remote *r, const char *path, struct remote_info *info)
{
	struct s3 *s = s3_of(r);
	memset(info, 0, sizeof *info);
	int rc = 0;
	if (*path) {
		char *key = key_of(s, path, false);
		if (!key)
			return -ENOMEM;
		rc = head_object(s, key, info);
		free(key);
		if (rc != -ENOENT)
			return rc;
	}
	/* no such object: a folder? (the root always is; probing it checks access) */
	char *marker = key_of(s, path, true);
	if (!marker)
		return -ENOMEM;
	struct probe p;
	rc = probe_folder(s, marker, &p);
	if (!rc && *path && !p.marker_seen && !p.others)
		rc = -ENOENT;
	info->is_dir = true;
	free(marker);
	return rc;
}

static int s3_get(struct remote *r, const char *path, uint64_t off, uint64_t len, int fd,
		  uint64_t *got, struct remote_info *info)
{
	struct s3 *s = s3_of(r);
	char *key = key_of(s, path, false);
	if (!key)
		return -ENOMEM;
	struct s3_call call;
	int rc = call_init(&call, s, key, NULL);
	if (!rc) {
		struct http_request req;
		call_request(&call, &req, "GET");
		rc = http_get_to_fd(s->http, &req, off, len, fd, got, info);
	}
	call_free(&call);
	free(key);
	return rc;
}

/* Append the header for put's condition (radosgw needs the ETag unquoted). */
static int condition_headers(const char *if_match, struct curl_slist **headers)
{
	if (!if_match)
		return 0;
	if (!*if_match)
		return append_header(headers, "If-None-Match", "*");
	char bare[REMOTE_ETAG_MAX];
	size_t n = strlen(if_match);
	if (n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"')
		snprintf(bare, sizeof bare, "%.*s", (int)(n - 2), if_match + 1);
	else
		snprintf(bare, sizeof bare, "%s", if_match);
	return append_header(headers, "If-Match", bare);
}

/* PUT len bytes of fd from off to key (with query, e.g. a part number). */
static int put_body(struct s3 *s, const char *key, const char *query, int fd, uint64_t off,
		    uint64_t len, const struct curl_slist *headers, struct http_response *resp)
{
	memset(resp, 0, sizeof *resp);
	struct s3_call call;
	int rc = call_init(&call, s, key, query);
	if (!rc)
		rc = digest_fd_hex(EVP_sha256(), fd, off, len, call.payload_hash);
	if (!rc) {
		struct http_request req;
		call_request(&call, &req, "PUT");
		req.headers = headers;
		req.body_fd = fd;
		req.body = ""; /* fd < 0: an empty body, still with its Content-Length */
		req.body_off = off;
		req.body_size = len;
		rc = http_perform(s->http, &req, resp);
	}
	call_free(&call);
	return rc;
}

/* Does key hold exactly our size bytes of fd, as a single-part upload of
 * them would? Its ETag is then their MD5, which is compared; etag receives
 * it when it does. (A PUT whose earlier attempt went through is refused by
 * its own condition.) */
static bool holds_our_version(struct s3 *s, const char *key, int fd, uint64_t size,
			      char etag[REMOTE_ETAG_MAX])
{
	struct remote_info now;
	char md5[65];
	if (head_object(s, key, &now) != 0 || now.size != size ||
	    digest_fd_hex(EVP_md5(), fd, 0, size, md5) != 0 || !remote_etag_equal(now.etag, md5))
		return false;
	snprintf(etag, REMOTE_ETAG_MAX, "%s", now.etag);
	return true;
}

static int put_single(struct s3 *s, const char *key, int fd, uint64_t size, const char *if_match,
		      char etag[REMOTE_ETAG_MAX])
{
	struct curl_slist *headers = NULL;
	int rc = condition_headers(if_match, &headers);
	struct http_response resp = {0};
	if (!rc)
		rc = put_body(s, key, NULL, fd, 0, size, headers, &resp);
	if (!rc)
		rc = s3_errno(resp.status);
	/* a refused condition is no conflict when the object already holds our
	 * bytes: a lost answer, or an upload replayed from the queue after a crash */
	if (rc == -ESTALE && holds_our_version(s, key, fd, size, etag))
		rc = 0;
	else if (!rc)
		snprintf(etag, REMOTE_ETAG_MAX, "%s", resp.etag);
	http_response_free(&resp);
	curl_slist_free_all(headers);
	return rc;
}

/* The condition of a multipart put, checked before uploading (see the top). */
static int check_condition(struct remote *r, const char *path, const char *if_match)
{
	if (!if_match)
		return 0;
	struct remote_info info;
	int rc = s3_head(r, path, &info);
	if (rc == -ENOENT)
		return *if_match ? -ESTALE : 0;
	if (rc)
		return rc;
	if (!*if_match || info.is_dir || !remote_etag_equal(info.etag, if_match))
		return -ESTALE;
	return 0;
}

char *remote_s3_reply_field(const struct http_buf *body, const char *root_name, const char *name)
{
	xmlDocPtr doc = http_xml_parse(body->data, body->len);
	xmlNode *root = reply_root(doc, root_name);
	char *v = root ? http_xml_child_text(root, NULL, name) : NULL;
	xmlFreeDoc(doc);
	return v;
}

static int upload_query(struct http_buf *q, unsigned part, const char *upload_id)
{
	char num[16];
	snprintf(num, sizeof num, "%u", part);
	if (part && add_query_param(q, "partNumber", num))
		return -ENOMEM;
	return add_query_param(q, "uploadId", upload_id);
}

/* PUT part number part (bytes off..off+len of fd) of upload upload_id; its
 * ETag goes to etag. */
static int put_part(struct s3 *s, const char *key, const char *upload_id, int fd, unsigned part,
		    uint64_t off, uint64_t len, char etag[REMOTE_ETAG_MAX])
{
	struct http_buf q = {0};
	struct http_response resp = {0};
	int rc = upload_query(&q, part, upload_id);
	if (!rc)
		rc = put_body(s, key, q.data, fd, off, len, NULL, &resp);
	if (!rc)
		rc = s3_errno(resp.status);
	if (!rc && !resp.etag[0])
		rc = -EIO;
	if (!rc)
		snprintf(etag, REMOTE_ETAG_MAX, "%s", resp.etag);
	http_response_free(&resp);
	free(q.data);
	return rc;
}

/* The parts of one multipart upload, taken in turn by up to PARTS_IN_FLIGHT
 * threads. Each streams its part from the file (pread), so memory stays
 * bounded whatever the object's size. */
struct part_job {
	struct s3 *s;
	const char *key, *upload_id;
	int fd;
	uint64_t size;
	unsigned nparts;
	char (*etags)[REMOTE_ETAG_MAX]; /* of part i + 1 */
	pthread_mutex_t lock;
	unsigned next; /* the next part to take, from 1 */
	int rc;        /* the first failure: no more parts are taken then */
};

static void *part_worker(void *arg)
{
	struct part_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		unsigned part = !j->rc && j->next <= j->nparts ? j->next++ : 0;
		pthread_mutex_unlock(&j->lock);
		if (!part)
			return NULL;
		uint64_t off = (uint64_t)(part - 1) * j->s->part_size;
		uint64_t len = j->size - off < j->s->part_size ? j->size - off : j->s->part_size;
		int rc = put_part(j->s, j->key, j->upload_id, j->fd, part, off, len, j->etags[part - 1]);
		pthread_mutex_lock(&j->lock);
		if (rc && !j->rc)
			j->rc = rc;
		pthread_mutex_unlock(&j->lock);
	}
}

/* Upload the parts, PARTS_IN_FLIGHT at a time (this thread is one of them;
 * fewer when a thread cannot be started), and list them in *complete as a
 * CompleteMultipartUpload body. */
static int upload_parts(struct s3 *s, const char *key, const char *upload_id, int fd,
			uint64_t size, struct http_buf *complete)
{
	struct part_job j = {.s = s, .key = key, .upload_id = upload_id, .fd = fd, .size = size,
			     .nparts = (unsigned)((size + s->part_size - 1) / s->part_size), .next = 1};
	pthread_t helpers[PARTS_IN_FLIGHT - 1];
	unsigned started = 0;
	j.etags = calloc(j.nparts, sizeof *j.etags);
	if (!j.etags)
		return -ENOMEM;
	pthread_mutex_init(&j.lock, NULL);
	while (started < PARTS_IN_FLIGHT - 1 && started + 1 < j.nparts &&
	       pthread_create(&helpers[started], NULL, part_worker, &j) == 0)
		started++;
	part_worker(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(helpers[i], NULL);
	pthread_mutex_destroy(&j.lock);
	int rc = j.rc ? j.rc : http_buf_addstr(complete, "<CompleteMultipartUpload>");
	for (unsigned i = 0; !rc && i < j.nparts; i++) {
		char num[16];
		snprintf(num, sizeof num, "%u", i + 1);
		if (http_buf_addstr(complete, "<Part><PartNumber>") || http_buf_addstr(complete, num) ||
		    http_buf_addstr(complete, "</PartNumber><ETag>") ||
		    http_buf_addstr(complete, j.etags[i]) || http_buf_addstr(complete, "</ETag></Part>"))
			rc = -ENOMEM;
	}
	if (!rc)
		rc = http_buf_addstr(complete, "</CompleteMultipartUpload>");
	free(j.etags);
	return rc;
}

/* The ETag S3 gives the multipart upload completed with the body complete:
 * the MD5 of its parts' binary MD5s, "-", the count of parts. false when a
 * part's ETag is no MD5. */
static bool multipart_etag(const char *complete, char out[REMOTE_ETAG_MAX])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned parts = 0, md_len = 0;
	for (const char *p = complete; ok && (p = strstr(p, "<ETag>")); parts++) {
		p += strlen("<ETag>");
		p += *p == '"';
		for (int i = 0; ok && i < 16; i++)
			ok = sscanf(p + 2 * i, "%2hhx", &md[i]) == 1;
		ok = ok && EVP_DigestUpdate(ctx, md, 16);
	}
	ok = ok && parts && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 16;
	if (ok) {
		char hex[33];
		hex_encode(md, 16, hex);
		snprintf(out, REMOTE_ETAG_MAX, "%s-%u", hex, parts);
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* CompleteMultipartUpload said NoSuchUpload after an attempt whose answer
 * may have been lost: does key hold the upload that attempt completed?
 * etag receives its ETag then. */
static bool completed_already(struct s3 *s, const char *key, const char *complete,
			      char etag[REMOTE_ETAG_MAX])
{
	char want[REMOTE_ETAG_MAX];
	struct remote_info now;
	if (!multipart_etag(complete, want) || head_object(s, key, &now) != 0 ||
	    !remote_etag_equal(now.etag, want))
		return false;
	snprintf(etag, REMOTE_ETAG_MAX, "%s", now.etag);
	return true;
}

static int put_multipart(struct s3 *s, const char *key, int fd, uint64_t size,
			 char etag[REMOTE_ETAG_MAX])
{
	struct http_response resp;
	int rc = s3_simple(s, "POST", key, "uploads=", "", &resp);
	if (!rc)
		rc = s3_errno(resp.status);
	char *upload_id = rc ? NULL : remote_s3_reply_field(&resp.body, "InitiateMultipartUploadResult", "UploadId");
	http_response_free(&resp);
	if (!rc && !upload_id)
		rc = -EIO;
	if (rc)
		return rc;

	struct http_buf complete = {0}, q = {0};
	rc = upload_parts(s, key, upload_id, fd, size, &complete);
	if (!rc)
		rc = upload_query(&q, 0, upload_id);
	if (!rc)
		rc = s3_simple(s, "POST", key, q.data, complete.data, &resp);
	else
		memset(&resp, 0, sizeof resp);
	if (!rc)
		rc = s3_errno(resp.status);
	if (rc == -ENOENT && resp.maybe_applied) {
		if (completed_already(s, key, complete.data, etag))
			rc = 0;
	} else if (!rc) {
		/* a 200 reply may still carry an <Error> */
		char *e = remote_s3_reply_field(&resp.body, "CompleteMultipartUploadResult", "ETag");
		if (e)
			snprintf(etag, REMOTE_ETAG_MAX, "%s", e);
		else
			rc = -EIO;
		free(e);
	}
	http_response_free(&resp);
	if (rc && q.data) {
		store_log(LOG_WARNING, "s3: multipart upload of %s failed (%s), aborting it", key,
			  strerror(-rc));
		if (s3_simple(s, "DELETE", key, q.data, NULL, &resp) == 0)
			http_response_free(&resp);
	}
	free(q.data);
	free(complete.data);
	free(upload_id);
	return rc;
}

static int s3_put(struct remote *r, const char *path, int fd, uint64_t size, const char *if_match,
		  struct remote_info *info)
{
	struct s3 *s = s3_of(r);
	char *key = key_of(s, path, false);
	if (!key)
		return -ENOMEM;
	char etag[REMOTE_ETAG_MAX] = "";
	int rc;
	if (size <= s->part_size) {
		rc = put_single(s, key, fd, size, if_match, etag);
	} else {
		rc = check_condition(r, path, if_match);
		if (!rc)
			rc = put_multipart(s, key, fd, size, etag);
		struct remote_info now;
		if (!rc && !etag[0] && !(rc = s3_head(r, path, &now)))
			memcpy(etag, now.etag, sizeof now.etag); /* radosgw completes with <ETag></ETag> */
	}
	if (!rc && info) {
		memset(info, 0, sizeof *info);
		info->size = size;
		clock_gettime(CLOCK_REALTIME, &info->mtime); /* the server's time is not in the reply */
		snprintf(info->etag, sizeof info->etag, "%s", etag);
	}
	free(key);
	return rc;
}

/* ---- namespace ---- */

static int delete_key(struct s3 *s, const char *key)
{
	struct http_response resp;
	int rc = s3_simple(s, "DELETE", key, NULL, NULL, &resp);
	if (!rc) /* S3 answers 204 for a missing key too; a server that says 404 to a
		  * repeat of a DELETE that went through is not heard either */
		rc = resp.status == 404 && resp.maybe_applied ? 0 : s3_errno(resp.status);
	http_response_free(&resp);
	return rc;
}

static int parent_must_be_folder(struct remote *r, const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return 0;
	char *parent = strndup(path, (size_t)(slash - path));
	if (!parent)
		return -ENOMEM;
	struct remote_info info;
	int rc = s3_head(r, parent, &info);
	if (!rc && !info.is_dir)
		rc = -ENOTDIR;
	free(parent);
	return rc;
}

/* PUT the folder marker of path with If-None-Match: *, so that a marker made
 * meanwhile (by another client) is -EEXIST, not written over. It does not see
 * an object at path or keys below path/ without a marker: the caller looked. */
static int s3_mkdir_listed(struct remote *r, const char *path)
{
	struct s3 *s = s3_of(r);
	struct remote_info info;
	char *marker = key_of(s, path, true);
	if (!marker)
		return -ENOMEM;
	struct curl_slist *headers = NULL;
	struct http_response resp = {0};
	int rc = append_header(&headers, "If-None-Match", "*");
	if (!rc)
		rc = put_body(s, marker, NULL, -1, 0, 0, headers, &resp);
	if (!rc)
		rc = s3_errno(resp.status);
	/* the marker exists: ours, if an earlier attempt may have gone through
	 * (one another client made in that moment is not told apart) */
	if (rc == -ESTALE)
		rc = resp.maybe_applied && s3_head(r, path, &info) == 0 && info.is_dir ? 0 : -EEXIST;
	http_response_free(&resp);
	curl_slist_free_all(headers);
	free(marker);
	return rc;
}

static int s3_mkdir(struct remote *r, const char *path)
{
	struct remote_info info;
	int rc = s3_head(r, path, &info);
	if (rc != -ENOENT)
		return rc ? rc : -EEXIST;
	rc = parent_must_be_folder(r, path);
	return rc ? rc : s3_mkdir_listed(r, path);
}

/* Delete the marker of path. Never more: keys below path/ that another
 * client put there meanwhile stay (and keep the folder in existence). */
static int s3_rmdir_listed(struct remote *r, const char *path)
{
	char *marker = key_of(s3_of(r), path, true);
	int rc = marker ? delete_key(s3_of(r), marker) : -ENOMEM;
	free(marker);
	return rc;
}

static int s3_rmdir(struct remote *r, const char *path)
{
	struct s3 *s = s3_of(r);
	char *marker = key_of(s, path, true);
	if (!marker)
		return -ENOMEM;
	struct probe p;
	int rc = probe_folder(s, marker, &p);
	if (!rc && p.others)
		rc = -ENOTEMPTY;
	else if (!rc && !p.marker_seen)
		rc = -ENOENT;
	free(marker);
	return rc ? rc : s3_rmdir_listed(r, path);
}

/* DELETE the key of path, whatever version it holds (radosgw has no
 * conditional DELETE, so etag is not checked), and never a folder: its
 * marker and keys are other keys. A key already gone is success (S3's 204). */
static int s3_remove_listed(struct remote *r, const char *path, const char *etag)
{
	(void)etag;
	char *key = key_of(s3_of(r), path, false);
	int rc = key ? delete_key(s3_of(r), key) : -ENOMEM;
	free(key);
	return rc;
}

static int s3_remove(struct remote *r, const char *path)
{
	struct remote_info info;
	int rc = s3_head(r, path, &info);
	if (rc)
		return rc;
	if (info.is_dir)
		return -EISDIR;
	return s3_remove_listed(r, path, info.etag);
}

/* Server-side copy of one object. */
static int copy_key(struct s3 *s, const char *from, const char *to)
{
	struct http_buf source = {0};
	if (http_buf_addstr(&source, "/") || http_buf_add_escaped(&source, s->bucket, false) ||
	    http_buf_addstr(&source, "/") || http_buf_add_escaped(&source, from, true)) {
		free(source.data);
		return -ENOMEM;
	}
	struct s3_call call;
	struct http_response resp = {0};
	int rc = call_init(&call, s, to, NULL);
	if (!rc) {
		call.copy_source = source.data;
		struct http_request req;
		call_request(&call, &req, "PUT");
		req.body = "";
		rc = http_perform(s->http, &req, &resp);
	}
	if (!rc)
		rc = s3_errno(resp.status);
	if (!rc) { /* a 200 reply may still carry an <Error> */
		xmlDocPtr doc = http_xml_parse(resp.body.data, resp.body.len);
		if (!reply_root(doc, "CopyObjectResult"))
			rc = -EIO;
		xmlFreeDoc(doc);
	}
	http_response_free(&resp);
	call_free(&call);
	free(source.data);
	return rc;
}

struct key_list {
	char **keys;
	size_t n, cap;
};

static int collect_key(void *ctx, const char *key, bool is_prefix, const struct remote_info *info)
{
	(void)is_prefix;
	(void)info;
	struct key_list *kl = ctx;
	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 16;
		char **k = realloc(kl->keys, cap * sizeof *k);
		if (!k)
			return -ENOMEM;
		kl->keys = k;
		kl->cap = cap;
	}
	if (!(kl->keys[kl->n] = strdup(key)))
		return -ENOMEM;
	kl->n++;
	return 0;
}

/* Move every key under folder key `from` ("a/") to `to` ("b/"): copy all, then delete. */
static int move_folder(struct s3 *s, const char *from, const char *to)
{
	struct key_list kl = {0};
	int rc = list_keys(s, from, false, 0, collect_key, &kl);
	size_t from_len = strlen(from);
	for (size_t i = 0; i < kl.n && !rc; i++) {
		struct http_buf dest = {0};
		rc = http_buf_addstr(&dest, to) || http_buf_addstr(&dest, kl.keys[i] + from_len) ? -ENOMEM
			: copy_key(s, kl.keys[i], dest.data);
		free(dest.data);
	}
	for (size_t i = 0; i < kl.n && !rc; i++)
		rc = delete_key(s, kl.keys[i]);
	for (size_t i = 0; i < kl.n; i++)
		free(kl.keys[i]);
	free(kl.keys);
	return rc;
}

static int s3_move(struct remote *r, const char *from, const char *to, bool overwrite)
{
	struct s3 *s = s3_of(r);
	struct remote_info src, dst;
	int rc = s3_head(r, from, &src);
	if (rc)
		return rc;
	rc = parent_must_be_folder(r, to);
	if (rc)
		return rc;
	rc = s3_head(r, to, &dst);
	if (rc == 0 && !overwrite)
		return -EEXIST; /* checked, not atomic: a racing writer is not seen */
	if (rc == 0 && dst.is_dir != src.is_dir)
		return dst.is_dir ? -EISDIR : -ENOTDIR;
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == 0 && dst.is_dir) {
		char *marker = key_of(s, to, true);
		struct probe p;
		rc = marker ? probe_folder(s, marker, &p) : -ENOMEM;
		free(marker);
		if (rc)
			return rc;
		if (p.others)
			return -ENOTEMPTY;
	}
	char *from_key = key_of(s, from, src.is_dir), *to_key = key_of(s, to, src.is_dir);
	if (!from_key || !to_key)
		rc = -ENOMEM;
	else if (src.is_dir)
		rc = move_folder(s, from_key, to_key);
	else if (!(rc = copy_key(s, from_key, to_key)))
		rc = delete_key(s, from_key);
	free(from_key);
	free(to_key);
	return rc;
}

static void s3_destroy(struct remote *r)
{
	struct s3 *s = s3_of(r);
	http_client_free(s->http);
	free(s->bucket);
	free(s->prefix);
	free(s->endpoint);
	free(s->host);
	free(s->region);
	free(s->access_key);
	if (s->secret_key) {
		OPENSSL_cleanse(s->secret_key, strlen(s->secret_key));
		free(s->secret_key);
	}
	if (s->session_token) {
		OPENSSL_cleanse(s->session_token, strlen(s->session_token));
		free(s->session_token);
	}
	free(s->base.location);
	free(s);
}

static const struct remote_ops s3_ops = {
	.name = "s3",
	.head = s3_head,
	.list = s3_list,
	.get = s3_get,
	.put = s3_put,
	.mkdir = s3_mkdir,
	.rmdir = s3_rmdir,
	.remove = s3_remove,
	.move = s3_move,
	.destroy = s3_destroy,
	.mkdir_listed = s3_mkdir_listed,
	.rmdir_listed = s3_rmdir_listed,
	.remove_listed = s3_remove_listed,
};

/* ---- configuration ---- */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* Value of key in section [section] of an INI file; malloc'd or NULL. */
static char *ini_value(const char *file, const char *section, const char *key)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return NULL;
	char line[1024];
	bool in_section = false;
	char *value = NULL;
	while (!value && fgets(line, sizeof line, f)) {
		char *l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (end)
				*end = '\0';
			in_section = strcmp(trim(l + 1), section) == 0;
			continue;
		}
		char *eq = strchr(l, '=');
		if (!in_section || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), key) == 0)
			value = strdup(trim(eq + 1));
	}
	explicit_bzero(line, sizeof line);
	fclose(f);
	return value;
}

/* A setting of the profile: credentials file first, then the config file. */
static char *profile_value(const char *profile, const char *key)
{
	const char *home = store_home_dir();
	char cred[4096], conf[4096], section[256];
	snprintf(cred, sizeof cred, "%s", env("AWS_SHARED_CREDENTIALS_FILE") ? env("AWS_SHARED_CREDENTIALS_FILE") : "");
	snprintf(conf, sizeof conf, "%s", env("AWS_CONFIG_FILE") ? env("AWS_CONFIG_FILE") : "");
	if (!*cred && home)
		snprintf(cred, sizeof cred, "%s/.aws/credentials", home);
	if (!*conf && home)
		snprintf(conf, sizeof conf, "%s/.aws/config", home);
	char *v = *cred ? ini_value(cred, profile, key) : NULL;
	if (!v && *conf) {
		/* config names sections "[profile NAME]", except "[default]" */
		if (strcmp(profile, "default") == 0)
			snprintf(section, sizeof section, "default");
		else
			snprintf(section, sizeof section, "profile %s", profile);
		v = ini_value(conf, section, key);
	}
	return v;
}

static char *dup_or_null(const char *v)
{
	return v ? strdup(v) : NULL;
}

static int load_settings(struct s3 *s, char **err)
{
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : env("AWS_DEFAULT_PROFILE");
	if (!profile)
		profile = "default";
	if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
		s->access_key = strdup(env("AWS_ACCESS_KEY_ID"));
		s->secret_key = strdup(env("AWS_SECRET_ACCESS_KEY"));
		s->session_token = dup_or_null(env("AWS_SESSION_TOKEN"));
	} else {
		s->access_key = profile_value(profile, "aws_access_key_id");
		s->secret_key = profile_value(profile, "aws_secret_access_key");
		s->session_token = profile_value(profile, "aws_session_token");
	}
	if (!s->access_key || !s->secret_key)
		return store_fail(err, -EACCES,
			    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials");
	const char *region = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	s->region = region ? strdup(region) : profile_value(profile, "region");
	if (!s->region)
		s->region = strdup("us-east-1");

	const char *part = env("UMBRAFS_S3_PART_SIZE");
	s->part_size = part ? strtoull(part, NULL, 10) : DEFAULT_PART_SIZE;
	if (s->part_size < MIN_PART_SIZE)
		s->part_size = MIN_PART_SIZE;
	return s->region ? 0 : -ENOMEM;
}

/* scheme://host[:port] of an endpoint URL, and its Host header. */
static int set_endpoint(struct s3 *s, const char *url, char **err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = 0;
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = store_fail(err, -EINVAL, "invalid S3 endpoint URL");
	} else {
		curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when given */
		struct http_buf h = {0}, e = {0};
		if (http_buf_addstr(&h, host) || (port && (http_buf_addstr(&h, ":") || http_buf_addstr(&h, port))) ||
		    http_buf_addstr(&e, scheme) || http_buf_addstr(&e, "://") || http_buf_addstr(&e, h.data)) {
			free(h.data);
			free(e.data);
			rc = -ENOMEM;
		} else {
			s->host = h.data;
			s->endpoint = e.data;
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static int parse_location(struct s3 *s, const char *url, char **err)
{
	const char *p = strncmp(url, "s3://", 5) == 0 ? url + 5 : NULL;
	if (!p || !*p || *p == '/')
		return store_fail(err, -EINVAL, "not an s3://bucket/prefix URL");
	const char *slash = strchr(p, '/');
	s->bucket = slash ? strndup(p, (size_t)(slash - p)) : strdup(p);
	struct http_buf prefix = {0};
	const char *rest = slash ? slash + 1 : "";
	if (http_buf_addstr(&prefix, rest) ||
	    (prefix.len && prefix.data[prefix.len - 1] != '/' && http_buf_addstr(&prefix, "/"))) {
		free(prefix.data);
		return -ENOMEM;
	}
	s->prefix = prefix.data ? prefix.data : strdup("");
	s->base.location = strdup(url);
	if (!s->bucket || !s->prefix || !s->base.location)
		return -ENOMEM;
	return 0;
}

int remote_s3_open(const char *url, bool insecure, struct remote **out, char **err)
{
	*err = NULL;
	struct s3 *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->base.ops = &s3_ops;
	int rc = parse_location(s, url, err);
	if (!rc)
		rc = load_settings(s, err);
	const char *endpoint = env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3") : env("AWS_ENDPOINT_URL");
	if (!rc && endpoint) {
		s->path_style = true;
		rc = set_endpoint(s, endpoint, err);
	} else if (!rc) {
		char aws[512];
		snprintf(aws, sizeof aws, "https://%s.s3.%s.amazonaws.com", s->bucket, s->region);
		rc = set_endpoint(s, aws, err);
	}
	if (!rc)
		rc = http_client_new(insecure, &s->http);
	if (rc) {
		s3_destroy(&s->base);
		if (!*err)
			store_fail(err, rc, "cannot open the s3 store: %s", strerror(-rc));
		return rc;
	}
	*out = &s->base;
	return 0;
}
