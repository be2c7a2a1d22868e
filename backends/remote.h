/* The remote interface: an object store reached over the network (WebDAV,
 * S3). Remote stores are not used by fs/ directly: the cache (cache.c) turns
 * a remote into a struct store, keeping only ciphertext on disk.
 * Paths are as in store.h. Every function returns 0 on success, -errno on
 * failure: -ENOENT missing, -EEXIST exists, -EACCES/-EPERM refused by
 * credentials, -ESTALE precondition (ETag) failed, -ETIMEDOUT/-ECONNREFUSED/
 * -EHOSTUNREACH/-ENETUNREACH/-ECONNRESET the server could not be reached
 * (after retries; the cache then works offline), -EIO anything else (a
 * server error, a broken answer). */
#ifndef REMOTE_H
#define REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct remote;

#define REMOTE_ETAG_MAX 128

/* What a remote knows of an object or folder. */
struct remote_info {
	bool is_dir;
	uint64_t size;
	struct timespec mtime;
	char etag[REMOTE_ETAG_MAX]; /* "" when the server gives none */
};

/* Do two ETags name the same version? Servers differ in quoting them and in
 * marking them weak ("W/"), so both are ignored; "" (none) matches nothing. */
static inline bool remote_etag_equal(const char *a, const char *b)
{
	size_t la, lb;

	a += strncmp(a, "W/", 2) == 0 ? 2 : 0;
	b += strncmp(b, "W/", 2) == 0 ? 2 : 0;
	la = strlen(a);
	lb = strlen(b);
	if (la >= 2 && a[0] == '"' && a[la - 1] == '"')
		a++, la -= 2;
	if (lb >= 2 && b[0] == '"' && b[lb - 1] == '"')
		b++, lb -= 2;
	return la && la == lb && memcmp(a, b, la) == 0;
}

/* Called once per entry of remote_list; non-zero stops the listing. */
typedef int (*remote_list_cb)(void *ctx, const char *name, const struct remote_info *info);

struct remote_ops {
	const char *name;
	int (*head)(struct remote *r, const char *path, struct remote_info *info);
	int (*list)(struct remote *r, const char *dir, remote_list_cb cb, void *ctx);
	/* Read len bytes at off (len 0: to the end) into fd at its current position;
	 * *got receives the count. */
	int (*get)(struct remote *r, const char *path, uint64_t off, uint64_t len, int fd,
		   uint64_t *got, struct remote_info *info);
	/* Upload the whole content of fd (from offset 0, size bytes). if_match: an
	 * ETag the current object must have ("" = must not exist, NULL = no
	 * condition); -ESTALE if that fails. info (may be NULL) receives the new ETag. */
	int (*put)(struct remote *r, const char *path, int fd, uint64_t size,
		   const char *if_match, struct remote_info *info);
	int (*mkdir)(struct remote *r, const char *path);   /* folders (no-op on S3) */
	int (*rmdir)(struct remote *r, const char *path);
	int (*remove)(struct remote *r, const char *path);
	/* Move an object or (small) folder; overwrite: replace the destination. */
	int (*move)(struct remote *r, const char *from, const char *to, bool overwrite);
	void (*destroy)(struct remote *r);
	/* Optional (NULL: not offered) forms of mkdir, rmdir and remove for a
	 * caller that knows from a fresh listing what is there, so that the
	 * remote may skip the requests with which those check it first. What
	 * each still guarantees is said where it is implemented.
	 * mkdir_listed: path is missing and its parent is a folder.
	 * rmdir_listed: path is an empty folder.
	 * remove_listed: path is an object of version etag ("" unknown); a remote
	 * that can tell refuses another version or a folder with -ESTALE, and the
	 * caller then falls back to remove; a missing object may be -ENOENT. */
	int (*mkdir_listed)(struct remote *r, const char *path);
	int (*rmdir_listed)(struct remote *r, const char *path);
	int (*remove_listed)(struct remote *r, const char *path, const char *etag);
};

struct remote {
	const struct remote_ops *ops;
	char *location; /* URL without credentials, for messages */
};

/* Open a remote from a URL (webdav://, webdavs://, s3://). insecure: skip TLS
 * verification (the caller warns). On failure -errno and a malloc'd *err. */
int remote_webdav_open(const char *url, bool insecure, struct remote **out, char **err);
int remote_s3_open(const char *url, bool insecure, struct remote **out, char **err);

#endif
