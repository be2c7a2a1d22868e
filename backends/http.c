/* Shared HTTP plumbing of the remote stores; see http.h.
 *
 * Threads: FUSE calls remotes from several threads at once. Each request
 * takes an easy handle from a mutex-protected pool (a handle keeps its
 * connections alive between requests, so reuse works per handle) and gives it
 * back afterwards. The DNS and TLS-session caches are shared between handles
 * through a curl share object; the connection cache is not, because libcurl
 * documents sharing connections between concurrent threads as unsafe. */
#include "backends/http.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "backends/store.h"

#define POOL_MAX 16
#define ERROR_BODY_MAX (64 * 1024)
#define MEMORY_BODY_MAX ((size_t)256 << 20)
#define RETRY_DELAY_MAX_MS 20000L
#define RETRY_AFTER_MAX_S 60L
#define CONNECT_TIMEOUT_S 10L
#define LOW_SPEED_BYTES 1024L /* abort when slower than this ... */
#define LOW_SPEED_TIME_S 30L  /* ... for this long */

struct http_client {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	int pool_len;
	bool insecure;
	char *ca_file;
	long retry_base_ms;
	int tries;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	xmlInitParser();
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
	(void)h;
	(void)access;
	struct http_client *c = ctx;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	(void)h;
	struct http_client *c = ctx;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < min || n > max)
		return def;
	return n;
}

static const char *ca_bundle_from_env(void)
{
	const char *names[] = {"CURL_CA_BUNDLE", "AWS_CA_BUNDLE"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = getenv(names[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

int http_client_new(bool insecure, struct http_client **out)
{
	pthread_once(&global_once, global_init);
	if (!global_ok)
		return -ENOMEM;
	struct http_client *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->insecure = insecure;
	c->retry_base_ms = env_long("UMBRAFS_HTTP_RETRY_BASE_MS", 500, 0, RETRY_DELAY_MAX_MS);
	c->tries = (int)env_long("UMBRAFS_HTTP_TRIES", 5, 1, 20);
	const char *ca = ca_bundle_from_env();
	if (ca && !(c->ca_file = strdup(ca))) {
		free(c);
		return -ENOMEM;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	c->share = curl_share_init();
	if (!c->share) {
		http_client_free(c);
		return -ENOMEM;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->pool_len; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	free(c->ca_file);
	free(c);
}

static CURL *handle_take(struct http_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_lock);
	if (c->pool_len > 0)
		h = c->pool[--c->pool_len];
	pthread_mutex_unlock(&c->pool_lock);
	return h ? h : curl_easy_init();
}

static void handle_give_back(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->pool_len < POOL_MAX) {
		c->pool[c->pool_len++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

void http_request_init(struct http_request *req, const char *method, const char *url)
{
	memset(req, 0, sizeof *req);
	req->method = method;
	req->url = url;
	req->body_fd = -1;
	req->out_fd = -1;
}

/* ---- buffers and escaping ---- */

int http_buf_add(struct http_buf *b, const void *text, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, text, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int http_buf_addstr(struct http_buf *b, const char *s)
{
	return http_buf_add(b, s, strlen(s));
}

static bool is_unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int http_buf_add_escaped(struct http_buf *b, const char *path, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		int rc;
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			rc = http_buf_add(b, p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = http_buf_add(b, esc, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}

char *http_unescape(const char *s)
{
	int len = 0;
	char *dec = curl_easy_unescape(NULL, s, 0, &len);
	if (!dec)
		return NULL;
	char *copy = NULL;
	if ((size_t)len == strlen(dec)) /* an escaped NUL would cut the name */
		copy = strdup(dec);
	curl_free(dec);
	return copy;
}

/* ---- status mapping ---- */

int http_status_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 404:
	case 409: /* WebDAV: a parent collection is missing */
	case 410:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 412:
		return -ESTALE;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE;
	case 507:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* ---- one transfer ---- */

struct transfer {
	const struct http_request *req;
	struct http_response *resp;
	CURL *h;
	bool started;       /* the first body byte was seen and routed */
	bool to_fd;
	uint64_t skip;      /* bytes to drop: a 200 reply to a ranged request */
	uint64_t remaining; /* bytes still wanted in out_fd */
	bool enough;        /* got all wanted bytes: the abort that follows is no error */
	int write_errno;
	uint64_t upload_pos;
	unsigned sends;     /* times the request went out (curl resends on a reused
			     * connection that died before answering) */
};

static void transfer_start_body(struct transfer *t)
{
	const struct http_request *req = t->req;
	long status = 0;
	curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
	t->started = true;
	t->to_fd = req->out_fd >= 0 && status >= 200 && status < 300;
	t->remaining = UINT64_MAX;
	if (req->ranged && status >= 200 && status < 300) {
		if (status != 206)
			t->skip = req->range_off;
		if (req->range_len)
			t->remaining = req->range_len;
	}
}

static int write_all_fd(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct transfer *t = ctx;
	size_t n = size * nmemb;
	if (!t->started)
		transfer_start_body(t);
	if (!t->to_fd) {
		long status = 0;
		curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
		size_t limit = status >= 200 && status < 300 ? MEMORY_BODY_MAX : ERROR_BODY_MAX;
		size_t room = limit > t->resp->body.len ? limit - t->resp->body.len : 0;
		if (http_buf_add(&t->resp->body, data, n < room ? n : room))
			return 0;
		return n;
	}
	size_t off = 0;
	if (t->skip) {
		off = t->skip < n ? (size_t)t->skip : n;
		t->skip -= off;
	}
	size_t take = n - off;
	if (take > t->remaining)
		take = (size_t)t->remaining;
	if (take) {
		int rc = write_all_fd(t->req->out_fd, data + off, take);
		if (rc) {
			t->write_errno = -rc;
			return 0;
		}
		t->resp->written += take;
		t->remaining -= take;
	}
	if (t->remaining == 0) {
		t->enough = true;
		return 0; /* stop a server that sends more than the range */
	}
	return n;
}

static size_t on_upload(char *buf, size_t size, size_t nmemb, void *ctx)
{
	struct transfer *t = ctx;
	const struct http_request *req = t->req;
	uint64_t left = req->body_size - t->upload_pos;
	size_t n = size * nmemb;
	if (n > left)
		n = (size_t)left;
	if (n == 0)
		return 0;
	if (req->body_fd >= 0) {
		ssize_t r;
		do
			r = pread(req->body_fd, buf, n, (off_t)(req->body_off + t->upload_pos));
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return CURL_READFUNC_ABORT; /* error, or the file shrank under us */
		n = (size_t)r;
	} else {
		memcpy(buf, (const char *)req->body + t->upload_pos, n);
	}
	t->upload_pos += n;
	return n;
}

static int on_upload_seek(void *ctx, curl_off_t offset, int origin)
{
	struct transfer *t = ctx;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->body_size)
		return CURL_SEEKFUNC_FAIL;
	t->upload_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int on_prereq(void *ctx, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	((struct transfer *)ctx)->sends++;
	return CURL_PREREQFUNC_OK;
}

static int headers_for_attempt(const struct http_request *req, struct curl_slist **out)
{
	struct curl_slist *list = NULL;
	char range[80];
	for (const struct curl_slist *s = req->headers; s; s = s->next)
		if (!(list = curl_slist_append(list, s->data)))
			goto oom;
	if (req->ranged && (req->range_off || req->range_len)) {
		if (req->range_len)
			snprintf(range, sizeof range, "Range: bytes=%llu-%llu",
				 (unsigned long long)req->range_off,
				 (unsigned long long)(req->range_off + req->range_len - 1));
		else
			snprintf(range, sizeof range, "Range: bytes=%llu-",
				 (unsigned long long)req->range_off);
		struct curl_slist *l = curl_slist_append(list, range);
		if (!l)
			goto oom;
		list = l;
	}
	/* no "Expect: 100-continue" round trip before a body */
	struct curl_slist *l = curl_slist_append(list, "Expect:");
	if (!l)
		goto oom;
	list = l;
	if (req->sign) {
		int rc = req->sign(req->sign_ctx, req, &list);
		if (rc) {
			curl_slist_free_all(list);
			return rc;
		}
	}
	*out = list;
	return 0;
oom:
	curl_slist_free_all(list);
	return -ENOMEM;
}

/* The URL to hand to curl: with a login and ~/.netrc, the user goes into the
 * URL, since libcurl 7.88 skips the netrc lookup when CURLOPT_USERNAME is set.
 * (req->url itself, which is logged, never holds it.) NULL: out of memory. */
static char *url_with_login(const struct http_request *req)
{
	if (!(req->netrc && req->username && !req->password))
		return strdup(req->url);
	CURLU *u = curl_url();
	char *url = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, req->url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_USER, req->username, CURLU_URLENCODE) == CURLUE_OK) {
		char *v = NULL;
		if (curl_url_get(u, CURLUPART_URL, &v, 0) == CURLUE_OK)
			url = strdup(v);
		curl_free(v);
	}
	curl_url_cleanup(u);
	return url;
}

static void set_options(struct http_client *c, CURL *h, const struct http_request *req,
			struct transfer *t, const char *url, struct curl_slist *headers)
{
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, t);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	}
	if (req->username || req->netrc) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		if (req->password) {
			curl_easy_setopt(h, CURLOPT_USERNAME, req->username ? req->username : "");
			curl_easy_setopt(h, CURLOPT_PASSWORD, req->password);
		} else if (req->netrc) {
			curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
		}
	}
	if (req->body_fd >= 0 || req->body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_size);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(h, CURLOPT_READDATA, t);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_upload_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, t);
	}
	if (req->no_body)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
}

void http_etag_copy(char dst[REMOTE_ETAG_MAX], const char *etag)
{
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	snprintf(dst, REMOTE_ETAG_MAX, "%s", etag);
}

static int64_t content_range_total(CURL *h)
{
	struct curl_header *hdr;
	if (curl_easy_header(h, "Content-Range", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK)
		return -1;
	const char *slash = strrchr(hdr->value, '/');
	if (!slash || slash[1] == '*')
		return -1;
	return strtoll(slash + 1, NULL, 10);
}

static void collect_response(CURL *h, struct http_response *resp)
{
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	struct curl_header *hdr;
	if (curl_easy_header(h, "ETag", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
		http_etag_copy(resp->etag, hdr->value);
	curl_off_t len = -1, ftime = -1;
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ftime);
	resp->content_length = len;
	resp->last_modified = (time_t)ftime;
	resp->total_size = content_range_total(h);
}

static void response_reset(struct http_response *resp)
{
	free(resp->body.data);
	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
	resp->total_size = -1;
	resp->last_modified = -1;
}

void http_response_free(struct http_response *resp)
{
	free(resp->body.data);
	resp->body.data = NULL;
	resp->body.len = resp->body.cap = 0;
}

static bool status_retryable(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505 &&
						  status != 507);
}

/* May a request answered with status have been acted on? A gateway answers
 * 502 or 504 when its upstream failed or took too long, which may be after
 * the upstream acted on the request, and a 408 may also time out an
 * exchange that got through; a 500 may come after the server acted. (429
 * and 503 refuse the request before any work on it.) */
static bool status_after_effect(long status)
{
	return status == 408 || status == 500 || status == 502 || status == 504;
}

/* A failed transfer that means the server could not be reached or the
 * connection to it broke: the errno for it, one of those the cache takes for
 * "unreachable" (ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENETDOWN,
 * ECONNRESET). These failures are the ones retried. 0 for any other failure:
 * an answer curl could not use (a protocol error, a refused certificate) or
 * a local one. */
static int unreachable_errno(CURL *h, CURLcode code)
{
	long os_errno = 0;
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH || os_errno == ENETDOWN ||
		    os_errno == ETIMEDOUT)
			return (int)-os_errno;
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: /* connecting, or a stalled transfer */
		return -ETIMEDOUT;
	case CURLE_SSL_CONNECT_ERROR: /* the TLS handshake broke off */
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:   /* closed without an answer */
	case CURLE_PARTIAL_FILE:  /* closed in the middle of the answer's body */
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:  /* an HTTP/2 connection or stream that was reset */
		return -ECONNRESET;
	default:
		return 0;
	}
}

static int transport_errno(CURL *h, CURLcode code)
{
	int rc = unreachable_errno(h, code);
	if (rc)
		return rc;
	return code == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

/* The "host[:port]" of url, which log lines name the server by. */
static void server_of(const char *url, char *out, size_t n)
{
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	snprintf(out, n, "%.*s", (int)strcspn(host, "/"), host);
}

/* Log that req is given up after tries: its server could not be reached
 * (transport_failed; why is curl's text) or still answered a status that
 * asks for a retry (why: "HTTP nnn"). */
static void log_giving_up(const struct http_request *req, bool transport_failed, const char *why,
			  int tries)
{
	char server[256];
	if (transport_failed) {
		server_of(req->url, server, sizeof server);
		store_log(LOG_ERR, "server %s unreachable: %s (%s %s, giving up after %d %s)",
			  server, why, req->method, req->url, tries, tries == 1 ? "try" : "tries");
	} else {
		store_log(LOG_ERR, "%s %s: %s, giving up after %d tries", req->method, req->url,
			  why, tries);
	}
}

/* Milliseconds to wait before try number `next` (2, 3, ...): exponential with
 * jitter in [d/2, d], at least what Retry-After asks for. */
static long retry_delay_ms(const struct http_client *c, int next, long retry_after_s)
{
	long d = c->retry_base_ms;
	for (int i = 2; i < next && d < RETRY_DELAY_MAX_MS; i++)
		d *= 2;
	if (d > RETRY_DELAY_MAX_MS)
		d = RETRY_DELAY_MAX_MS;
	if (d > 1)
		d = d / 2 + (long)arc4random_uniform((uint32_t)(d / 2 + 1));
	if (retry_after_s > 0) {
		long ra = (retry_after_s < RETRY_AFTER_MAX_S ? retry_after_s : RETRY_AFTER_MAX_S) * 1000;
		if (ra > d)
			d = ra;
	}
	return d;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* May an earlier sending of this attempt's request have reached the server
 * with its answer lost? When libcurl sent it again itself (a reused
 * connection that broke before any answer: the server may have acted
 * before it broke), and when the attempt failed in transport after
 * connecting, unless part of the body was never even read (the server
 * cannot act on a request it did not get whole). */
static bool sent_without_answer(CURLcode code, const struct transfer *t)
{
	const struct http_request *req = t->req;
	bool has_body = req->body_fd >= 0 || req->body;

	if (t->sends > 1)
		return true;
	if (code == CURLE_OK || code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT ||
	    code == CURLE_SSL_CONNECT_ERROR)
		return false;
	return !has_body || t->upload_pos == req->body_size;
}

/* One attempt. Returns the curl code (its details in detail); *rc gets
 * -errno for local failures, *maybe_applied is set when it failed after its
 * request may have arrived, or was answered with a status that may follow
 * its effect. */
static CURLcode attempt(struct http_client *c, CURL *h, const struct http_request *req,
			struct http_response *resp, char detail[CURL_ERROR_SIZE], int *rc,
			bool *maybe_applied)
{
	struct curl_slist *headers = NULL;
	*rc = headers_for_attempt(req, &headers);
	if (*rc)
		return CURLE_OK;
	char *url = url_with_login(req);
	if (!url) {
		curl_slist_free_all(headers);
		*rc = -ENOMEM;
		return CURLE_OK;
	}
	struct transfer t = {.req = req, .resp = resp, .h = h};
	curl_easy_reset(h);
	set_options(c, h, req, &t, url, headers);
	detail[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	CURLcode code = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* detail does not outlive the caller */
	if (code == CURLE_WRITE_ERROR && t.enough)
		code = CURLE_OK;
	if (t.write_errno)
		*rc = -t.write_errno;
	collect_response(h, resp);
	if (sent_without_answer(code, &t) || (code == CURLE_OK && status_after_effect(resp->status)))
		*maybe_applied = true;
	curl_slist_free_all(headers);
	free(url);
	return code;
}

/* Put out_fd back to where the body started, for a retry; false if it cannot be. */
static bool rewind_output(const struct http_request *req, off_t start, uint64_t written)
{
	if (req->out_fd < 0 || written == 0)
		return true;
	return start >= 0 && lseek(req->out_fd, start, SEEK_SET) == start;
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp)
{
	memset(resp, 0, sizeof *resp);
	CURL *h = handle_take(c);
	if (!h)
		return -ENOMEM;
	off_t out_start = req->out_fd >= 0 ? lseek(req->out_fd, 0, SEEK_CUR) : -1;
	int rc = 0;
	bool maybe_applied = false;
	char detail[CURL_ERROR_SIZE];
	for (int try = 1;; try++) {
		response_reset(resp);
		CURLcode code = attempt(c, h, req, resp, detail, &rc, &maybe_applied);
		if (rc)
			break;
		bool transport_failed = code != CURLE_OK;
		bool retry = transport_failed ? unreachable_errno(h, code) != 0
					      : !req->no_status_retry && status_retryable(resp->status);
		char why[CURL_ERROR_SIZE + 64];
		if (transport_failed)
			snprintf(why, sizeof why, "%s", detail[0] ? detail : curl_easy_strerror(code));
		else
			snprintf(why, sizeof why, "HTTP %ld", resp->status);
		if (!retry) {
			rc = transport_failed ? transport_errno(h, code) : 0;
			if (transport_failed || resp->status >= 500)
				store_log(LOG_WARNING, "%s %s: %s", req->method, req->url, why);
			break;
		}
		if (try >= c->tries || !rewind_output(req, out_start, resp->written)) {
			rc = transport_failed ? transport_errno(h, code) : -EIO;
			log_giving_up(req, transport_failed, why, try);
			break;
		}
		curl_off_t retry_after = 0;
		curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
		long delay = retry_delay_ms(c, try + 1, (long)retry_after);
		store_log(LOG_INFO, "%s %s: %s, retry %d/%d in %ld ms", req->method, req->url,
			  why, try + 1, c->tries, delay);
		sleep_ms(delay);
	}
	resp->maybe_applied = maybe_applied;
	handle_give_back(c, h);
	return rc;
}

void http_response_to_info(const struct http_response *resp, struct remote_info *info)
{
	memset(info, 0, sizeof *info);
	if (resp->total_size >= 0)
		info->size = (uint64_t)resp->total_size;
	else if (resp->content_length >= 0)
		info->size = (uint64_t)resp->content_length;
	if (resp->last_modified >= 0)
		info->mtime.tv_sec = resp->last_modified;
	snprintf(info->etag, sizeof info->etag, "%s", resp->etag);
}

int http_get_to_fd(struct http_client *c, struct http_request *req, uint64_t off, uint64_t len,
		   int fd, uint64_t *got, struct remote_info *info)
{
	struct http_response resp;
	req->ranged = off || len;
	req->range_off = off;
	req->range_len = len;
	req->out_fd = fd;
	*got = 0;
	int rc = http_perform(c, req, &resp);
	if (rc == 0 && resp.status == 416) {
		/* the range starts at or past the end: nothing to read */
		if (info) {
			memset(info, 0, sizeof *info);
			if (resp.total_size >= 0)
				info->size = (uint64_t)resp.total_size;
		}
	} else if (rc == 0 && !(rc = http_status_errno(resp.status))) {
		*got = resp.written;
		if (info)
			http_response_to_info(&resp, info);
	}
	http_response_free(&resp);
	return rc;
}

/* ---- XML ---- */

xmlDocPtr http_xml_parse(const char *data, size_t len)
{
	if (len > INT_MAX)
		return NULL;
	/* No XML_PARSE_NOENT (entities stay unsubstituted), no DTD loading, no network. */
	return xmlReadMemory(data, (int)len, NULL, NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

bool http_xml_is(const xmlNode *node, const char *ns, const char *local)
{
	if (!node || node->type != XML_ELEMENT_NODE || strcmp((const char *)node->name, local) != 0)
		return false;
	if (!ns)
		return true;
	return node->ns && node->ns->href && strcmp((const char *)node->ns->href, ns) == 0;
}

xmlNode *http_xml_child(const xmlNode *parent, const char *ns, const char *local)
{
	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		if (http_xml_is(n, ns, local))
			return n;
	return NULL;
}

char *http_xml_child_text(const xmlNode *parent, const char *ns, const char *local)
{
	xmlNode *n = http_xml_child(parent, ns, local);
	if (!n)
		return NULL;
	xmlChar *text = xmlNodeGetContent(n);
	char *copy = strdup(text ? (const char *)text : "");
	xmlFree(text);
	return copy;
}
