/* WebDAV remote (RFC 4918): webdav://[user@]host[:port]/path = http,
 * webdavs:// = https.
 *
 * Credentials: the user comes from the URL or UMBRAFS_WEBDAV_USER; the
 * password from UMBRAFS_WEBDAV_PASSWORD, else ~/.netrc (a password written in
 * the URL is accepted too, but never kept in messages). Basic auth.
 *
 * Folders are collections; an object's metadata comes from PROPFIND. Paths
 * are percent-encoded segment by segment (base64url names hold '=', which is
 * escaped). DELETE of a collection is recursive on the server, so rmdir first
 * checks that the folder is empty and remove refuses folders (-EISDIR): each
 * costs one PROPFIND more, in exchange for never deleting a tree by mistake.
 * remove_listed spares that PROPFIND by an If-Match on the listed ETag,
 * which no folder meets.
 *
 * Server quirks handled (Apache mod_dav_fs, FileETag MTime Size):
 * - a PUT reply has no ETag: put asks with a PROPFIND afterwards;
 * - the ETag of a file changed in the current second is weak (W/"..."), which
 *   never satisfies If-Match: ETags are reported and sent without "W/" (two
 *   writes of the same size within one second then share an ETag: Apache's
 *   ETag cannot tell them apart either); and an If-Match on a file changed in
 *   the current second always fails: put then checks the ETag, and when it
 *   does match waits for the next second and tries once more;
 * - a MOVE into a missing folder is answered 500, not 409: the destination's
 *   parent is then looked up to report -ENOENT.
 *
 * A request whose answer was lost after it reached the server is retried
 * (http.c) and the repeat then finds its own effect: MKCOL 405, DELETE 404,
 * MOVE 404/412, a conditional PUT 412. After such an attempt
 * (http_response.maybe_applied) the server's state is checked instead: the
 * collection exists, the source is gone and the destination there. A refused
 * conditional PUT always checks whether the object holds exactly the bytes
 * sent (size first, then the bytes): an upload the queue replays after a
 * crash may have arrived before the crash. The same PROPFIND tells whether
 * it was refused as too recent (above). */
#include "backends/fdio.h"
#include "backends/http.h"
#include "backends/remote.h"
#include "backends/store.h"
#include "backends/webdav_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define COMPARE_BLOCK ((uint64_t)1 << 20) /* fetched at a time to compare an object */

struct webdav {
	struct remote base;
	struct http_client *http;
	char *base_url;  /* scheme://host[:port]/escaped/root/ (always ends in '/') */
	char *root_path; /* the root's decoded path, e.g. "/vault/" */
	char *user;      /* NULL: none (or from ~/.netrc) */
	char *password;  /* NULL: from ~/.netrc */
};

static const char PROPFIND_BODY[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<D:propfind xmlns:D=\"DAV:\"><D:prop>"
	"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
	"</D:prop></D:propfind>\n";

static struct webdav *webdav_of(struct remote *r)
{
	return (struct webdav *)r;
}

/* URL of path below the root; a trailing '/' when it names a collection. */
static char *url_for(const struct webdav *w, const char *path, bool collection)
{
	struct http_buf b = {0};
	if (http_buf_addstr(&b, w->base_url) || http_buf_add_escaped(&b, path, true) ||
	    (collection && *path && http_buf_addstr(&b, "/"))) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

static void request_init(const struct webdav *w, struct http_request *req, const char *method,
			 const char *url)
{
	http_request_init(req, method, url);
	req->username = w->user;
	req->password = w->password;
	req->netrc = !w->password;
}

/* ---- PROPFIND ---- */

/* Decoded path of an href, which may be an absolute URL or an absolute path. */
static char *href_path(const char *href)
{
	const char *p = href;
	const char *scheme_end = strstr(href, "://");
	if (scheme_end) {
		p = strchr(scheme_end + 3, '/');
		if (!p)
			p = "/";
	}
	return http_unescape(p);
}

static void strip_trailing_slash(char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
}

static bool propstat_ok(const xmlNode *propstat)
{
	char *status = http_xml_child_text(propstat, "DAV:", "status");
	/* "HTTP/1.1 200 OK" */
	bool ok = status && strstr(status, " 200") != NULL;
	free(status);
	return ok;
}

static void info_from_prop(const xmlNode *prop, struct remote_info *info)
{
	xmlNode *type = http_xml_child(prop, "DAV:", "resourcetype");
	if (type && http_xml_child(type, "DAV:", "collection"))
		info->is_dir = true;
	char *v;
	if ((v = http_xml_child_text(prop, "DAV:", "getcontentlength"))) {
		info->size = strtoull(v, NULL, 10);
		free(v);
	}
	if ((v = http_xml_child_text(prop, "DAV:", "getlastmodified"))) {
		time_t t = curl_getdate(v, NULL);
		if (t >= 0)
			info->mtime.tv_sec = t;
		free(v);
	}
	if ((v = http_xml_child_text(prop, "DAV:", "getetag"))) {
		http_etag_copy(info->etag, v);
		free(v);
	}
}

int remote_webdav_parse_multistatus(const struct http_buf *body, webdav_entry_fn fn, void *ctx)
{
	xmlDocPtr doc = http_xml_parse(body->data, body->len);
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!http_xml_is(root, "DAV:", "multistatus")) {
		xmlFreeDoc(doc);
		return -EIO;
	}
	int rc = 0;
	for (xmlNode *resp = root->children; resp && !rc; resp = resp->next) {
		if (!http_xml_is(resp, "DAV:", "response"))
			continue;
		char *href = http_xml_child_text(resp, "DAV:", "href");
		char *path = href ? href_path(href) : NULL;
		free(href);
		if (!path)
			continue;
		strip_trailing_slash(path);
		struct remote_info info = {0};
		for (xmlNode *ps = resp->children; ps; ps = ps->next)
			if (http_xml_is(ps, "DAV:", "propstat") && propstat_ok(ps))
				info_from_prop(http_xml_child(ps, "DAV:", "prop"), &info);
		if (info.is_dir)
			info.size = 0;
		rc = fn(ctx, path, &info);
		free(path);
	}
	xmlFreeDoc(doc);
	return rc;
}

static int propfind(struct webdav *w, const char *path, bool collection, webdav_entry_fn fn,
		    void *ctx)
{
	char *url = url_for(w, path, collection);
	if (!url)
		return -ENOMEM;
	char depth_header[32];
	/* a collection's members (Depth 1), or the resource itself */
	snprintf(depth_header, sizeof depth_header, "Depth: %d", collection ? 1 : 0);
	struct curl_slist *headers = curl_slist_append(NULL, depth_header);
	struct curl_slist *h2 = headers ? curl_slist_append(headers, "Content-Type: application/xml; charset=utf-8") : NULL;
	if (!h2) {
		curl_slist_free_all(headers);
		free(url);
		return -ENOMEM;
	}
	struct http_request req;
	request_init(w, &req, "PROPFIND", url);
	req.headers = h2;
	req.body = PROPFIND_BODY;
	req.body_size = sizeof PROPFIND_BODY - 1;
	struct http_response resp;
	int rc = http_perform(w->http, &req, &resp);
	if (rc == 0 && resp.status != 207)
		rc = resp.status / 100 == 2 ? -EIO : http_status_errno(resp.status);
	if (rc == 0)
		rc = remote_webdav_parse_multistatus(&resp.body, fn, ctx);
	http_response_free(&resp);
	curl_slist_free_all(h2);
	free(url);
	return rc;
}

/* The decoded path (no trailing '/') that the server names path by. */
static char *server_path(const struct webdav *w, const char *path)
{
	struct http_buf b = {0};
	if (http_buf_addstr(&b, w->root_path) || http_buf_addstr(&b, path)) {
		free(b.data);
		return NULL;
	}
	strip_trailing_slash(b.data);
	return b.data;
}

struct head_ctx {
	const char *want;
	struct remote_info *info;
	bool found;
};

static int head_entry(void *ctx, const char *path, const struct remote_info *info)
{
	struct head_ctx *hc = ctx;
	if (!hc->found && strcmp(path, hc->want) == 0) {
		*hc->info = *info;
		hc->found = true;
	}
	return 0;
}

static int webdav_head(struct remote *r, const char *path, struct remote_info *info)
{
	struct webdav *w = webdav_of(r);
	char *want = server_path(w, path);
	if (!want)
		return -ENOMEM;
	struct head_ctx hc = {.want = want, .info = info};
	int rc = propfind(w, path, false, head_entry, &hc);
	if (rc == 0 && !hc.found)
		rc = -EIO; /* the server answered about something else */
	free(want);
	return rc;
}

struct list_ctx {
	const char *dir;  /* decoded server path of the folder */
	size_t dir_len;
	remote_list_cb cb;
	void *cb_ctx;
	bool self_seen, self_is_dir;
	int stop;         /* what the callback returned to stop */
};

static int list_entry(void *ctx, const char *path, const struct remote_info *info)
{
	struct list_ctx *lc = ctx;
	if (strcmp(path, lc->dir) == 0) {
		lc->self_seen = true;
		lc->self_is_dir = info->is_dir;
		return 0;
	}
	/* a direct child: "<dir>/<name>" with no further '/' ("/" itself as dir has no extra '/') */
	size_t prefix = strcmp(lc->dir, "/") == 0 ? 1 : lc->dir_len + 1;
	if (strncmp(path, lc->dir, lc->dir_len) != 0 || strlen(path) <= prefix ||
	    (prefix > 1 && path[lc->dir_len] != '/') || strchr(path + prefix, '/'))
		return 0;
	lc->stop = lc->cb(lc->cb_ctx, path + prefix, info);
	return lc->stop;
}

static int webdav_list(struct remote *r, const char *dir, remote_list_cb cb, void *ctx)
{
	struct webdav *w = webdav_of(r);
	char *self = server_path(w, dir);
	if (!self)
		return -ENOMEM;
	struct list_ctx lc = {.dir = self, .dir_len = strlen(self), .cb = cb, .cb_ctx = ctx};
	int rc = propfind(w, dir, true, list_entry, &lc);
	if (rc == 0 && lc.self_seen && !lc.self_is_dir)
		rc = -ENOTDIR;
	free(self);
	return rc;
}

/* ---- content ---- */

static int webdav_get(struct remote *r, const char *path, uint64_t off, uint64_t len, int fd,
		      uint64_t *got, struct remote_info *info)
{
	struct webdav *w = webdav_of(r);
	char *url = url_for(w, path, false);
	if (!url)
		return -ENOMEM;
	struct http_request req;
	request_init(w, &req, "GET", url);
	int rc = http_get_to_fd(w->http, &req, off, len, fd, got, info);
	free(url);
	return rc;
}

/* If-Match / If-None-Match header for put's condition, or NULL for none. */
static char *condition_header(const char *if_match)
{
	if (!if_match)
		return NULL;
	if (!*if_match)
		return strdup("If-None-Match: *");
	char etag[REMOTE_ETAG_MAX];
	http_etag_copy(etag, if_match);
	size_t n = strlen("If-Match: ") + strlen(etag) + 1;
	char *h = malloc(n);
	if (h)
		snprintf(h, n, "If-Match: %s", etag);
	return h;
}

/* Do len bytes of the server's object at off, of version etag, equal those
 * of fd at off? scratch: an empty file to fetch them into. */
static bool block_matches(struct remote *r, const char *path, uint64_t off, uint64_t len, int fd,
			  int scratch, const char *etag)
{
	struct remote_info got_info;
	uint64_t got = 0;
	uint8_t *theirs = malloc(len ? len : 1), *ours = malloc(len ? len : 1);
	bool same = theirs && ours && ftruncate(scratch, 0) == 0 &&
		    lseek(scratch, 0, SEEK_SET) == 0 &&
		    webdav_get(r, path, off, len, scratch, &got, &got_info) == 0 && got == len &&
		    (!got_info.etag[0] || remote_etag_equal(got_info.etag, etag)) &&
		    fd_pread_full(scratch, theirs, len, 0) == (ssize_t)len &&
		    fd_pread_full(fd, ours, len, off) == (ssize_t)len && memcmp(theirs, ours, len) == 0;
	free(theirs);
	free(ours);
	return same;
}

/* Does the object now (what a PROPFIND of path says) hold exactly our size
 * bytes of fd? Sizes are compared first, then the bytes, a block at a time. */
static bool holds_our_bytes(struct remote *r, const char *path, const struct remote_info *now,
			    int fd, uint64_t size)
{
	if (now->is_dir || now->size != size)
		return false;
	int scratch = memfd_create("umbrafs-compare", MFD_CLOEXEC);
	bool same = scratch >= 0;
	for (uint64_t off = 0; same && off < size; off += COMPARE_BLOCK) {
		uint64_t len = size - off < COMPARE_BLOCK ? size - off : COMPARE_BLOCK;
		same = block_matches(r, path, off, len, fd, scratch, now->etag);
	}
	if (scratch >= 0)
		close(scratch);
	return same;
}

enum refusal {
	REFUSED_CONFLICT,   /* another version is there (or nothing, or a folder) */
	REFUSED_OURS,       /* the object holds our bytes already */
	REFUSED_TOO_RECENT, /* the asked-for version, changed within the current second */
};

/* Why was a PUT with condition if_match ("": If-None-Match) refused? One
 * PROPFIND tells: the object holds exactly our bytes (an earlier attempt
 * whose answer was lost, or an upload the queue replays after a crash that
 * came after the server took it; *info then receives what the server has),
 * or it is still the version if_match names but changed within the current
 * second (Apache's weak ETag, see the top), or it is a real conflict. */
static enum refusal why_refused(struct remote *r, const char *path, int fd, uint64_t size,
				const char *if_match, struct remote_info *info)
{
	struct remote_info now;
	char want[REMOTE_ETAG_MAX];
	if (webdav_head(r, path, &now) != 0 || now.is_dir)
		return REFUSED_CONFLICT;
	if (holds_our_bytes(r, path, &now, fd, size)) {
		if (info)
			*info = now;
		return REFUSED_OURS;
	}
	if (!if_match || !*if_match)
		return REFUSED_CONFLICT;
	http_etag_copy(want, if_match);
	return strcmp(now.etag, want) == 0 ? REFUSED_TOO_RECENT : REFUSED_CONFLICT;
}

static int put_once(struct remote *r, const char *path, const char *url, int fd, uint64_t size,
		    const struct curl_slist *headers, struct remote_info *info)
{
	struct webdav *w = webdav_of(r);
	struct http_request req;
	request_init(w, &req, "PUT", url);
	req.headers = headers;
	req.body_fd = fd;
	req.body_size = size;
	struct http_response resp;
	int rc = http_perform(w->http, &req, &resp);
	if (rc == 0)
		rc = resp.status == 405 ? -EISDIR : http_status_errno(resp.status);
	if (rc == 0 && info) {
		/* Not every server returns the new ETag with the PUT: ask for it then
		 * (another writer in between would make it the ETag of their version). */
		if (resp.etag[0]) {
			http_response_to_info(&resp, info);
			info->size = size;
		} else {
			rc = webdav_head(r, path, info);
		}
	}
	http_response_free(&resp);
	return rc;
}

/* put_once, and *why a refused condition was refused: no conflict when the
 * object holds our bytes already. */
static int put_explained(struct remote *r, const char *path, const char *url, int fd,
			 uint64_t size, const struct curl_slist *headers, const char *if_match,
			 struct remote_info *info, enum refusal *why)
{
	int rc = put_once(r, path, url, fd, size, headers, info);
	*why = rc == -ESTALE ? why_refused(r, path, fd, size, if_match, info) : REFUSED_CONFLICT;
	return *why == REFUSED_OURS ? 0 : rc;
}

static int webdav_put(struct remote *r, const char *path, int fd, uint64_t size,
		      const char *if_match, struct remote_info *info)
{
	char *url = url_for(webdav_of(r), path, false);
	char *cond = condition_header(if_match);
	struct curl_slist *headers = cond ? curl_slist_append(NULL, cond) : NULL;
	enum refusal why = REFUSED_CONFLICT;
	int rc = !url || (if_match && !headers)
		? -ENOMEM : put_explained(r, path, url, fd, size, headers, if_match, info, &why);
	if (why == REFUSED_TOO_RECENT) {
		sleep(1); /* the ETag becomes strong once its second is over */
		rc = put_explained(r, path, url, fd, size, headers, if_match, info, &why);
	}
	curl_slist_free_all(headers);
	free(cond);
	free(url);
	return rc;
}

/* ---- namespace ---- */

/* A request without body; returns its final status or -errno, and
 * *maybe_applied (see http_response) when that status may answer a repeat
 * of a request that took effect already. */
static long simple_request(struct webdav *w, const char *method, const char *path, bool collection,
			   const struct curl_slist *headers, bool *maybe_applied)
{
	char *url = url_for(w, path, collection);
	if (!url)
		return -ENOMEM;
	struct http_request req;
	request_init(w, &req, method, url);
	req.headers = headers;
	/* a repeated MOVE would fail after the first had succeeded; Apache also
	 * answers 500 to a MOVE whose destination folder is missing */
	req.no_status_retry = strcmp(method, "MOVE") == 0;
	struct http_response resp;
	int rc = http_perform(w->http, &req, &resp);
	long status = rc ? rc : resp.status;
	*maybe_applied = resp.maybe_applied;
	http_response_free(&resp);
	free(url);
	return status;
}

static bool is_collection(struct remote *r, const char *path)
{
	struct remote_info info;
	return webdav_head(r, path, &info) == 0 && info.is_dir;
}

static int webdav_mkdir(struct remote *r, const char *path)
{
	bool maybe_applied = false;
	long status = simple_request(webdav_of(r), "MKCOL", path, true, NULL, &maybe_applied);
	if (status < 0)
		return (int)status;
	/* MKCOL on an existing resource; after an attempt that may have gone
	 * through, a collection there is taken as ours (one made by another
	 * client in that moment is not told apart) */
	if (status == 405)
		return maybe_applied && is_collection(r, path) ? 0 : -EEXIST;
	return http_status_errno(status);
}

/* DELETE path; a 404 after an attempt that may have gone through is success. */
static int delete_resource(struct webdav *w, const char *path, bool collection)
{
	bool maybe_applied = false;
	long status = simple_request(w, "DELETE", path, collection, NULL, &maybe_applied);
	if (status < 0)
		return (int)status;
	if (status == 404 && maybe_applied)
		return 0;
	return http_status_errno(status);
}

static int count_entry(void *ctx, const char *name, const struct remote_info *info)
{
	(void)name;
	(void)info;
	++*(int *)ctx;
	return 1; /* one is enough */
}

static int webdav_rmdir(struct remote *r, const char *path)
{
	int entries = 0;
	int rc = webdav_list(r, path, count_entry, &entries);
	if (rc < 0)
		return rc;
	if (entries > 0)
		return -ENOTEMPTY;
	return delete_resource(webdav_of(r), path, true);
}

/* DELETE path with If-Match: etag, in one request: a folder (whose DELETE
 * would take all it holds) or another version of the object is refused by
 * the server (412: -ESTALE), as is a file changed within the current second
 * (its ETag is weak then, see the top). */
static int webdav_remove_listed(struct remote *r, const char *path, const char *etag)
{
	if (!*etag)
		return -ESTALE;
	char *cond = condition_header(etag);
	struct curl_slist *headers = cond ? curl_slist_append(NULL, cond) : NULL;
	bool maybe_applied = false;
	long status = headers ? simple_request(webdav_of(r), "DELETE", path, false, headers,
					       &maybe_applied)
			      : -ENOMEM;
	curl_slist_free_all(headers);
	free(cond);
	if (status < 0)
		return (int)status;
	/* a repeat of a DELETE that went through finds nothing to match */
	if ((status == 404 || status == 412) && maybe_applied &&
	    webdav_head(r, path, &(struct remote_info){0}) == -ENOENT)
		return 0;
	return http_status_errno(status); /* 412: -ESTALE */
}

static int webdav_remove(struct remote *r, const char *path)
{
	struct remote_info info;
	int rc = webdav_head(r, path, &info);
	if (rc)
		return rc;
	if (info.is_dir)
		return -EISDIR;
	return delete_resource(webdav_of(r), path, false);
}

static bool destination_parent_missing(struct remote *r, const char *to)
{
	const char *slash = strrchr(to, '/');
	char *parent = slash ? strndup(to, (size_t)(slash - to)) : NULL;
	struct remote_info info;
	bool missing = parent && webdav_head(r, parent, &info) == -ENOENT;
	free(parent);
	return missing;
}

/* A MOVE repeated after one that went through finds its source gone (404)
 * or, with Overwrite: F, its destination taken (412): is that so? */
static bool moved_already(struct remote *r, const char *from, const char *to)
{
	struct remote_info info;
	return webdav_head(r, from, &info) == -ENOENT && webdav_head(r, to, &info) == 0;
}

static int webdav_move(struct remote *r, const char *from, const char *to, bool overwrite)
{
	struct webdav *w = webdav_of(r);
	char *dest_url = url_for(w, to, false);
	struct http_buf dest = {0};
	if (!dest_url || http_buf_addstr(&dest, "Destination: ") || http_buf_addstr(&dest, dest_url)) {
		free(dest_url);
		free(dest.data);
		return -ENOMEM;
	}
	struct curl_slist *headers = curl_slist_append(NULL, dest.data);
	struct curl_slist *h2 = headers ? curl_slist_append(headers, overwrite ? "Overwrite: T" : "Overwrite: F") : NULL;
	bool maybe_applied = false;
	long status = h2 ? simple_request(w, "MOVE", from, false, h2, &maybe_applied) : -ENOMEM;
	curl_slist_free_all(h2 ? h2 : headers);
	free(dest.data);
	free(dest_url);
	if (status < 0)
		return (int)status;
	if (http_status_errno(status) && maybe_applied && moved_already(r, from, to))
		return 0;
	if (status == 412) /* Overwrite: F and the destination exists */
		return -EEXIST;
	if (status >= 500 && destination_parent_missing(r, to))
		return -ENOENT; /* Apache's answer to a missing destination folder (not 409) */
	return http_status_errno(status);
}

static void webdav_destroy(struct remote *r)
{
	struct webdav *w = webdav_of(r);
	http_client_free(w->http);
	free(w->base_url);
	free(w->root_path);
	free(w->user);
	if (w->password) {
		explicit_bzero(w->password, strlen(w->password));
		free(w->password);
	}
	free(w->base.location);
	free(w);
}

static const struct remote_ops webdav_ops = {
	.name = "webdav",
	.head = webdav_head,
	.list = webdav_list,
	.get = webdav_get,
	.put = webdav_put,
	.mkdir = webdav_mkdir,
	.rmdir = webdav_rmdir,
	.remove = webdav_remove,
	.move = webdav_move,
	.destroy = webdav_destroy,
	.remove_listed = webdav_remove_listed,
};

/* ---- opening ---- */

static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
	char *v = NULL;
	if (curl_url_get(u, part, &v, flags) != CURLUE_OK)
		return NULL;
	char *copy = strdup(v);
	curl_free(v);
	return copy;
}

static char *env_dup(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strdup(v) : NULL;
}

/* Fill base_url, root_path, location and the credentials from the user's URL. */
static int parse_location(struct webdav *w, const char *url, char **err)
{
	CURLU *u = curl_url();
	if (!u)
		return -ENOMEM;
	int rc = 0;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		rc = store_fail(err, -EINVAL, "not a valid webdav URL");
		goto out;
	}
	scheme = url_part(u, CURLUPART_SCHEME, 0);
	host = url_part(u, CURLUPART_HOST, 0);
	port = url_part(u, CURLUPART_PORT, 0);
	path = url_part(u, CURLUPART_PATH, CURLU_URLDECODE);
	w->user = url_part(u, CURLUPART_USER, CURLU_URLDECODE);
	w->password = url_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
	const char *http_scheme = !scheme ? NULL : strcmp(scheme, "webdav") == 0 ? "http"
				  : strcmp(scheme, "webdavs") == 0 ? "https" : NULL;
	if (!http_scheme || !host || !path) {
		rc = store_fail(err, -EINVAL, "not a webdav:// or webdavs:// URL");
		goto out;
	}
	/* base_url: http[s]://host[:port]/escaped/path/; location: as the user wrote it */
	struct http_buf authority = {0}, b = {0}, root = {0}, loc = {0};
	bool slash = path[strlen(path) - 1] == '/';
	if (http_buf_addstr(&authority, "://") || http_buf_addstr(&authority, host) ||
	    (port && (http_buf_addstr(&authority, ":") || http_buf_addstr(&authority, port))) ||
	    http_buf_addstr(&b, http_scheme) || http_buf_addstr(&b, authority.data) ||
	    http_buf_add_escaped(&b, path, true) || (!slash && http_buf_addstr(&b, "/")) ||
	    http_buf_addstr(&root, path) || (!slash && http_buf_addstr(&root, "/")) ||
	    http_buf_addstr(&loc, scheme) || http_buf_addstr(&loc, authority.data) ||
	    http_buf_addstr(&loc, path)) {
		free(authority.data);
		free(b.data);
		free(root.data);
		free(loc.data);
		rc = -ENOMEM;
		goto out;
	}
	free(authority.data);
	w->base_url = b.data;
	w->root_path = root.data;
	w->base.location = loc.data;
out:
	free(scheme);
	free(host);
	free(port);
	free(path);
	curl_url_cleanup(u);
	return rc;
}

int remote_webdav_open(const char *url, bool insecure, struct remote **out, char **err)
{
	*err = NULL;
	struct webdav *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->base.ops = &webdav_ops;
	int rc = parse_location(w, url, err);
	if (!rc && !w->user)
		w->user = env_dup("UMBRAFS_WEBDAV_USER");
	if (!rc && !w->password)
		w->password = env_dup("UMBRAFS_WEBDAV_PASSWORD");
	if (!rc)
		rc = http_client_new(insecure, &w->http);
	if (rc) {
		webdav_destroy(&w->base);
		if (!*err)
			store_fail(err, rc, "cannot open the webdav store: %s", strerror(-rc));
		return rc;
	}
	*out = &w->base;
	return 0;
}
