/* The cache: a struct store over a struct remote that keeps a local folder of
 * the remote's own ciphertext objects (never any plaintext: it knows no
 * keys). Reads fill the folder by ranged GETs; writes go to the folder and
 * are uploaded on fsync (synchronously), on close and a short delay after the
 * last write (in the background), from a persistent queue that survives a
 * crash and is resumed by the next open of the same cache. Listings and
 * attributes are cached for a timeout and updated by local changes. Before an
 * object is replaced its ETag is checked; when the remote changed meanwhile
 * the local version is kept under another name (see cache_conflict_fn). */
#ifndef CACHE_H
#define CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/remote.h"
#include "backends/store.h"

struct cache_options {
	/* cache folder; NULL: $XDG_CACHE_HOME/umbrafs/<id of the URL>, else
	 * ~/.cache/umbrafs/<id> (no home: an error asking for --cache-dir) */
	const char *dir;
	uint64_t max_bytes;       /* size limit; clean objects are evicted LRU; 0: default 4 GiB */
	unsigned upload_delay_ms; /* upload this long after the last write; default 2000 */
	unsigned meta_timeout_ms; /* listings and attributes kept this long; default 10000 */
	/* A fresh private folder, removed at destroy after everything queued was
	 * uploaded (one-shot commands: init, info, fsck, passwd, which must not
	 * collide with the folder of a running mount). dir is then its parent. */
	bool temporary;
};

/* The local version of object path cannot replace the remote one (it changed
 * since we read it). Return a malloc'd store path in the same folder where the
 * local version is to be uploaded instead (the caller, fs/, names it as a
 * conflict copy and makes any folders it needs), or NULL to keep it queued. */
typedef char *(*cache_conflict_fn)(void *ctx, const char *path);

/* A store over remote r (owned from now on, destroyed with the store, also
 * on failure). Fails with a clear *err when another process holds the cache
 * folder (-EBUSY: a second mount of the same store needs its own
 * --cache-dir), when the folder belongs to another remote (-EEXIST), and when
 * it is not private: a symbolic link, another user's, or writable by group
 * or others (-EPERM).
 *
 * Folder layout: lock (flock), store (the remote's location, no
 * credentials), objects/ (a mirror of the remote paths holding ciphertext
 * bytes, sparse while partly fetched), state/ (one record per cached object:
 * base ETag, size, complete), queue/ (one durable record per object waiting
 * for upload). Records are named by the SHA-256 of the path.
 *
 * Semantics worth knowing: getattr/list are answered from a per-folder
 * listing cached for meta_timeout_ms; setattr is accepted and ignored (remotes
 * keep no modes, owners or times); namespace changes (mkdir, rmdir, unlink,
 * rename, write_all) go to the remote at once, but what a fresh listing
 * answers is not asked (a taken name is -EEXIST, a folder listing entries or
 * holding a pending upload is -ENOTEMPTY) and the remote's own checks are
 * skipped where it offers that (remote.h: the _listed forms); a rename
 * then asks what the move made (a HEAD of a moved object: on S3 its copy
 * has a new ETag), the base of the cached copy from then on; an object
 * becomes complete locally before its first write (a truncation fetches only what stays);
 * fsync uploads now, or when the remote is unreachable (no connection, not
 * an error answer) returns 0 once the change is durable in the queue (it
 * uploads when the store is back); a refused upload is -EIO and stays
 * queued. An upload replaces only the version its change is based on (or,
 * for an object made here, nothing), else it becomes a conflict copy. An
 * object found changed on the server while partly read fails reads and
 * writes with -EIO until it is opened again. An unlinked object's open
 * handles keep reading and writing its local copy (unlink fetches what
 * it lacks first), which is never uploaded. */
int store_cache_open(struct remote *r, const struct cache_options *o, struct store **out,
		     char **err);

/* Which store is this? (for the functions below and for fs/ to decide). */
bool store_is_cache(const struct store *s);

void store_cache_set_conflict_handler(struct store *s, cache_conflict_fn fn, void *ctx);

/* Upload everything queued now and wait (unmount, fsync of the whole fs).
 * Returns 0, or -errno of the first upload that failed (it stays queued). */
int store_cache_flush(struct store *s);

struct cache_stats {
	uint64_t bytes;           /* size of the cache folder's objects */
	uint64_t objects;
	uint64_t pending_uploads; /* queued, not yet uploaded */
	uint64_t pending_bytes;
};
int store_cache_stats(struct store *s, struct cache_stats *st);

/* What the cache folder that mounts of s's store use holds (objects on disk,
 * queued uploads), read without taking it, so also while a mount runs.
 * *folder (malloc'd) names it; -ENOENT when there is none yet. */
int store_cache_folder_stats(struct store *s, struct cache_stats *st, char **folder);

#endif
