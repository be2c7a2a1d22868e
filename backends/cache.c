/* The cache: a struct store over a struct remote; see cache.h.
 *
 * Locks. c->lock (the "table lock") guards the tables (objects, listings),
 * the scheduling fields of every object (dirty, opens, refs, due, failures,
 * counted) and the reachability state; it is never held across a network
 * request. Each object's own lock (obj->lock) guards its content and version
 * (etag, size, complete, present blocks) and is held across the requests
 * that fetch or upload it, so readers of one object wait for one another but
 * not for other objects. Order: an object's lock, then the table lock, never
 * the other way round. Renames also take c->rename_lock first (they lock
 * several objects).
 *
 * Everything on disk here is ciphertext as the remote holds it, plus paths
 * and ETags: the cache knows no keys. */
#include "backends/cache.h"
#include "backends/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BLOCK_SIZE ((uint64_t)1 << 20)      /* unit of ranged fetches */
#define READ_AHEAD ((uint64_t)4 << 20)      /* fetched past a sequential read */
#define DEFAULT_MAX_BYTES ((uint64_t)4 << 30)
#define DEFAULT_UPLOAD_DELAY_MS 2000
#define DEFAULT_META_TIMEOUT_MS 10000
#define RETRY_MAX_MS 60000                  /* cap of the queued-upload backoff */
#define UPLOADERS 2
#define FLUSHERS 4                          /* uploads at once in store_cache_flush */
#define RECORD_MAX 4096
#define FOLDER_MODE 0700
#define ASIDE_PREFIX ".umbrafs-unlinked-"  /* local copies of unlinked open objects */
#define WRITE_PREFIX ".umbrafs-write-"      /* write_all's staging files */
#define OWNER_FILE "store"                  /* the location of the remote served */

/* ---- a small string-keyed hash map ---- */

struct map_item {
	char *key;
	void *val;
	struct map_item *next;
};

struct map {
	struct map_item **buckets;
	size_t nbuckets, count;
};

static size_t hash_text(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct map_item **map_slot(const struct map *m, const char *key)
{
	struct map_item **it;

	if (!m->nbuckets)
		return NULL;
	for (it = &m->buckets[hash_text(key) % m->nbuckets]; *it; it = &(*it)->next)
		if (strcmp((*it)->key, key) == 0)
			return it;
	return it;
}

static void *map_get(const struct map *m, const char *key)
{
	struct map_item **it = map_slot(m, key);

	return it && *it ? (*it)->val : NULL;
}

static int map_grow(struct map *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
	struct map_item **b = calloc(n, sizeof *b);

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nbuckets; i++) {
		for (struct map_item *it = m->buckets[i], *next; it; it = next) {
			next = it->next;
			it->next = b[hash_text(it->key) % n];
			b[hash_text(it->key) % n] = it;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
	return 0;
}

/* Set key to val (replacing any value). */
static int map_put(struct map *m, const char *key, void *val)
{
	struct map_item **it;

	if (m->count >= m->nbuckets && map_grow(m) < 0)
		return -ENOMEM;
	it = map_slot(m, key);
	if (*it) {
		(*it)->val = val;
		return 0;
	}
	*it = calloc(1, sizeof **it);
	if (!*it || !((*it)->key = strdup(key))) {
		free(*it);
		*it = NULL;
		return -ENOMEM;
	}
	(*it)->val = val;
	m->count++;
	return 0;
}

/* Remove key; returns its value or NULL. */
static void *map_remove(struct map *m, const char *key)
{
	struct map_item **it = map_slot(m, key), *gone;
	void *val;

	if (!it || !*it)
		return NULL;
	gone = *it;
	val = gone->val;
	*it = gone->next;
	free(gone->key);
	free(gone);
	m->count--;
	return val;
}

/* Call fn on every value; fn may not change the map. */
static void map_each(const struct map *m, void (*fn)(void *ctx, void *val), void *ctx)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct map_item *it = m->buckets[i]; it; it = it->next)
			fn(ctx, it->val);
}

/* Remove every item, calling free_val on each value (if not NULL). */
static void map_clear(struct map *m, void (*free_val)(void *val))
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		for (struct map_item *it = m->buckets[i], *next; it; it = next) {
			next = it->next;
			if (free_val)
				free_val(it->val);
			free(it->key);
			free(it);
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof *m);
}

/* ---- the cache ---- */

/* One object the cache knows locally. */
struct object {
	char *path;            /* key in the table; an ASIDE name once unlinked while open */
	pthread_mutex_t lock;  /* content and version, held across fetches and uploads */
	/* under lock: */
	char etag[REMOTE_ETAG_MAX]; /* the remote version the local copy is based on */
	bool base_absent;      /* new here: uploaded with "must not exist" */
	uint64_t size;
	struct timespec mtime; /* the remote's, or of the last local write */
	bool complete;         /* every byte present locally */
	bool stale;            /* the remote changed while this version was read: fetches
				* and changes fail until object_reset */
	bool entry_synced;     /* the local copy's folder entry is durable */
	uint8_t *present;      /* per block, while not complete */
	uint64_t nblocks;
	uint64_t next_read;    /* where a sequential reader continues */
	/* under the table lock: */
	unsigned refs;         /* the table's, handles', running work's */
	unsigned opens;        /* open handles */
	bool in_table;
	bool dirty;            /* queued for upload */
	bool unlinked;         /* removed while open: never uploaded */
	uint64_t due_ms;       /* upload not before (monotonic ms) */
	unsigned failures;     /* failed uploads in a row */
	int last_error;        /* of the last failed upload, for one log line per change */
	uint64_t last_use;     /* LRU clock (realtime ns) */
	uint64_t counted;      /* bytes counted in cache->bytes */
};

/* One folder's remote listing. */
struct listing {
	struct map names;      /* name -> struct remote_info */
	uint64_t fetched_ms;   /* monotonic; 0: stale */
	int error;             /* -ENOENT/-ENOTDIR: the folder is not there */
	uint64_t changes;      /* local changes that a fetch they overlap may miss, and that
				* its replay of noted (below) cannot make: it is stale at once */
	bool valid;            /* was fetched once (names/error mean something) */
	bool fetching;
	/* name -> struct noted_change: what listing_note said while a fetch ran,
	 * made to its answer too (the server may have answered before them) */
	struct map noted;
};

struct noted_change {
	bool gone;
	struct remote_info info;
};

struct cache {
	struct store base;
	struct remote *remote;
	struct cache_options opt;
	char *dir;             /* the cache folder */
	int dir_fd, objects_fd, lock_fd;
	struct store *objects, *state, *queue; /* local stores over the three folders */
	cache_conflict_fn conflict_fn;
	void *conflict_ctx;

	pthread_mutex_t lock;  /* the table lock, see the top */
	pthread_cond_t changed; /* listings fetched, uploads finished, work queued */
	pthread_mutex_t rename_lock;
	struct map objects_by_path; /* path -> struct object (in_table) */
	struct map listings;   /* folder path -> struct listing */
	uint64_t bytes;        /* counted bytes of all objects */
	uint64_t aside_counter;
	bool offline;          /* the remote was unreachable at the last try */
	uint64_t probe_ms;     /* when offline: the next time the remote may be asked */
	bool stopping;
	pthread_t uploaders[UPLOADERS];
	int nuploaders;
	struct store_ops ops;  /* cache_ops named after the remote ("webdav", "s3") */
};

struct handle {
	struct store_obj base;
	struct object *obj;
	int fd; /* the local copy, read and written with pread/pwrite */
};

static const struct store_ops cache_ops;

static struct cache *cache_of(struct store *s)
{
	return (struct cache *)s;
}

static struct handle *handle_of(struct store_obj *o)
{
	return (struct handle *)o;
}

/* ---- time, logging, paths ---- */

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint64_t wall_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static struct timespec wall_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

/* Names of the cache's own files (staging files, copies of unlinked objects,
 * store_local's temporary files), never store paths. */
static bool own_name(const char *name)
{
	return strncmp(name, ".umbrafs-", 9) == 0;
}

/* A store path with nothing that breaks a record line, and not one of the
 * cache's own names. */
static bool path_ok(const char *path, bool allow_root)
{
	return store_path_is_valid(path, allow_root) && !strpbrk(path, "\t\n") && !own_name(path);
}

/* The folder of path ("" for the root's entries), malloc'd. */
static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? strndup(path, (size_t)(slash - path)) : strdup("");
}

static const char *name_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Is path dir itself or below it? Everything is below the root "". */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !n || (strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/'));
}

static int sha256_hex(const char *text, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (!EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) || len != sizeof md)
		return -EIO;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* fsync the folder path below dir_fd ("": dir_fd itself). */
static int sync_folder(int dir_fd, const char *path)
{
	int fd = openat(dir_fd, *path ? path : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Make the folder entry of path in the objects folder durable. */
static int mirror_sync_entry(struct cache *c, const char *path)
{
	char *dir = parent_of(path);
	int rc = dir ? sync_folder(c->objects_fd, dir) : -ENOMEM;

	free(dir);
	return rc;
}

/* mkdir -p of the folders holding path inside the objects folder, each new
 * one durable (a queued change in it must survive a power cut). */
static int mirror_make_parents(struct cache *c, const char *path)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdirat(c->objects_fd, p, FOLDER_MODE) == 0)
			rc = mirror_sync_entry(c, p);
		else if (errno != EEXIST)
			rc = -errno;
		*slash = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

/* ---- reachability ---- */

/* The remote could not be reached (see remote.h). Not -EIO: a server that
 * answers with an error is there, and its error is the caller's. */
static bool unreachable_error(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
	       rc == -ENETUNREACH || rc == -ECONNRESET || rc == -ENETDOWN;
}

/* What an application sees of an error: an unreachable remote is an I/O error. */
static int app_error(int rc)
{
	return unreachable_error(rc) ? -EIO : rc;
}

/* May the remote be asked now? Not while offline, until the next probe, so
 * that work on cached data does not wait for retries that will fail. */
static bool remote_askable(struct cache *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->offline || now_ms() >= c->probe_ms;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Note what a remote request returned (one log line per change). */
static int remote_noted(struct cache *c, int rc)
{
	bool unreachable = unreachable_error(rc), was;

	pthread_mutex_lock(&c->lock);
	was = c->offline;
	c->offline = unreachable;
	if (unreachable)
		c->probe_ms = now_ms() + c->opt.meta_timeout_ms;
	pthread_mutex_unlock(&c->lock);
	if (unreachable && !was)
		store_log(LOG_WARNING, "%s is unreachable (%s): working offline with the cache",
			  c->remote->location, strerror(-rc));
	else if (!unreachable && was)
		store_log(LOG_INFO, "%s is reachable again", c->remote->location);
	return rc;
}

/* Run one remote request unless the remote is known to be offline
 * (-ENETUNREACH then, an unreachable_error). */
#define ASK_REMOTE(c, call) (remote_askable(c) ? remote_noted((c), (call)) : -ENETUNREACH)

/* ---- records: state/ and queue/ ---- */

/* state: "1 SIZE MTIME COMPLETE ABSENT\tETAG\tPATH"; queue: "1
 * ABSENT\tETAG\tPATH". Records of an older version may have one more number
 * (MOVED: the ETag was the one from before a rename), which is ignored: that
 * ETag is then the base, and a server that gave the moved object another
 * one is taken to hold another version (a refetch, or a conflict copy of a
 * change; never an overwrite). An unlinked object has no records: it is
 * never uploaded or reused. */
static int record_write(struct store *folder, const char *path, const char *text, size_t len)
{
	char name[65];
	int rc = sha256_hex(path, name);

	return rc ? rc : store_write_all(folder, name, text, len);
}

static int record_remove(struct store *folder, const char *path)
{
	char name[65];
	int rc = sha256_hex(path, name);

	if (!rc)
		rc = store_unlink(folder, name);
	return rc == -ENOENT ? 0 : rc;
}

static int state_write(struct cache *c, const struct object *o)
{
	char text[RECORD_MAX];
	int n = snprintf(text, sizeof text, "1 %llu %lld %d %d\t%s\t%s\n",
			 (unsigned long long)o->size, (long long)o->mtime.tv_sec, o->complete,
			 o->base_absent, o->etag, o->path);

	if (o->unlinked)
		return 0;
	if (n < 0 || (size_t)n >= sizeof text)
		return -ENAMETOOLONG;
	return record_write(c->state, o->path, text, (size_t)n);
}

/* Durable: fsync'd file and folder (store_local's write_all). */
static int queue_write(struct cache *c, const struct object *o)
{
	char text[RECORD_MAX];
	int n = snprintf(text, sizeof text, "1 %d\t%s\t%s\n", o->base_absent, o->etag, o->path);

	if (o->unlinked)
		return 0;
	if (n < 0 || (size_t)n >= sizeof text)
		return -ENAMETOOLONG;
	return record_write(c->queue, o->path, text, (size_t)n);
}

/* Drop path's queue record durably: after a power cut it must not come
 * back and upload again over what it was uploaded as. */
static int queue_remove(struct cache *c, const char *path)
{
	int rc = record_remove(c->queue, path);

	return rc ? rc : sync_folder(c->dir_fd, "queue");
}

/* Split a record into its numbers part, ETag and path (in place). */
static int record_split(char *text, char **numbers, char **etag, char **path)
{
	char *nl = strchr(text, '\n');

	if (!nl)
		return -EINVAL;
	*nl = '\0';
	*numbers = strsep(&text, "\t");
	*etag = strsep(&text, "\t");
	*path = text;
	if (!*etag || !*path || strlen(*etag) >= REMOTE_ETAG_MAX || !path_ok(*path, false))
		return -EINVAL;
	return 0;
}

/* ---- objects ---- */

static struct object *object_new(const char *path)
{
	struct object *o = calloc(1, sizeof *o);

	if (!o || !(o->path = strdup(path))) {
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

static void object_free(struct object *o)
{
	pthread_mutex_destroy(&o->lock);
	free(o->present);
	free(o->path);
	free(o);
}

/* Drop a reference (table lock held); frees the object with the last one. */
static void object_unref_locked(struct cache *c, struct object *o)
{
	if (--o->refs == 1 && o->dirty)
		pthread_cond_broadcast(&c->changed); /* free for the uploaders now */
	if (o->refs)
		return;
	c->bytes -= o->counted;
	object_free(o);
}

static void object_unref(struct cache *c, struct object *o)
{
	pthread_mutex_lock(&c->lock);
	object_unref_locked(c, o);
	pthread_mutex_unlock(&c->lock);
}

/* The object at path with a reference for the caller (table lock held):
 * the table's, else a new one that the table holds from now on. */
static struct object *object_get_locked(struct cache *c, const char *path)
{
	struct object *o = map_get(&c->objects_by_path, path);

	if (!o) {
		o = object_new(path);
		if (!o || map_put(&c->objects_by_path, path, o) < 0) {
			if (o)
				object_free(o);
			return NULL;
		}
		o->in_table = true;
		o->refs = 1;
	}
	o->refs++;
	o->last_use = wall_ns();
	return o;
}

/* The object at path if the table has it, with a reference; else NULL. */
static struct object *object_find(struct cache *c, const char *path)
{
	struct object *o;

	pthread_mutex_lock(&c->lock);
	o = map_get(&c->objects_by_path, path);
	if (o)
		o->refs++;
	pthread_mutex_unlock(&c->lock);
	return o;
}

static struct object *object_get(struct cache *c, const char *path)
{
	struct object *o;

	pthread_mutex_lock(&c->lock);
	o = object_get_locked(c, path);
	pthread_mutex_unlock(&c->lock);
	return o;
}

/* The object at path, locked, with a reference: the one the table holds
 * for path once its lock is ours (a rename or a conflict may move an object
 * to another path while we wait for its lock). */
static struct object *object_lock_current(struct cache *c, const char *path, bool create)
{
	for (;;) {
		struct object *o = create ? object_get(c, path) : object_find(c, path);
		bool current;
		if (!o)
			return NULL;
		pthread_mutex_lock(&o->lock);
		pthread_mutex_lock(&c->lock);
		current = o->in_table && strcmp(o->path, path) == 0;
		pthread_mutex_unlock(&c->lock);
		if (current)
			return o;
		pthread_mutex_unlock(&o->lock);
		object_unref(c, o);
	}
}

/* Recount o's bytes after its content changed (o->lock held). */
static void object_account(struct cache *c, struct object *o)
{
	uint64_t n = 0;

	if (o->complete) {
		n = o->size;
	} else {
		for (uint64_t b = 0; b < o->nblocks; b++)
			n += o->present[b] ? BLOCK_SIZE : 0;
	}
	pthread_mutex_lock(&c->lock);
	c->bytes = c->bytes - o->counted + n;
	o->counted = n;
	pthread_mutex_unlock(&c->lock);
}

/* No bytes present: a sparse local file of the size (o->lock held). */
static int object_forget_bytes(struct cache *c, struct object *o)
{
	int fd, rc = 0;

	free(o->present);
	o->present = NULL;
	o->nblocks = (o->size + BLOCK_SIZE - 1) / BLOCK_SIZE;
	o->complete = o->size == 0;
	o->entry_synced = false; /* the file may be made here */
	if (o->nblocks && !(o->present = calloc(o->nblocks, 1)))
		return -ENOMEM;
	rc = mirror_make_parents(c, o->path);
	fd = rc ? -1 : openat(c->objects_fd, o->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (!rc && fd < 0)
		rc = -errno;
	if (fd >= 0 && ftruncate(fd, (off_t)o->size) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	object_account(c, o);
	return rc;
}

/* Base the local copy on the remote version info, with no bytes yet (o->lock
 * held). The record goes first, so that a crash leaves "incomplete". */
static int object_reset(struct cache *c, struct object *o, const struct remote_info *info)
{
	int rc;

	snprintf(o->etag, sizeof o->etag, "%s", info->etag);
	o->base_absent = false;
	o->stale = false;
	o->size = info->size;
	o->mtime = info->mtime;
	o->complete = false;
	rc = state_write(c, o);
	return rc ? rc : object_forget_bytes(c, o);
}

/* Does the local copy hold the remote version info? (o->lock held) */
static bool object_matches(const struct object *o, const struct remote_info *info)
{
	if (o->base_absent || o->stale || o->size != info->size)
		return false;
	if (o->etag[0] || info->etag[0])
		return remote_etag_equal(o->etag, info->etag);
	return o->mtime.tv_sec == info->mtime.tv_sec;
}

static void object_remove_file(struct cache *c, const char *path)
{
	unlinkat(c->objects_fd, path, 0);
}

/* Take o out of the table and drop its records (o->lock and the table lock
 * held). An open object's local copy moves aside so that its handles keep
 * working; otherwise it is deleted. */
static void object_detach_locked(struct cache *c, struct object *o)
{
	record_remove(c->queue, o->path);
	record_remove(c->state, o->path);
	if (o->opens) {
		char aside[64];
		char *copy;

		snprintf(aside, sizeof aside, ASIDE_PREFIX "%llu", (unsigned long long)++c->aside_counter);
		copy = strdup(aside);
		if (copy && renameat(c->objects_fd, o->path, c->objects_fd, aside) == 0) {
			map_remove(&c->objects_by_path, o->path);
			free(o->path);
			o->path = copy;
		} else {
			free(copy);
			map_remove(&c->objects_by_path, o->path);
		}
		o->unlinked = true;
	} else {
		object_remove_file(c, o->path);
		map_remove(&c->objects_by_path, o->path);
	}
	o->dirty = false;
	o->in_table = false;
	object_unref_locked(c, o);
}

/* ---- listings ---- */

static void listing_free(void *val)
{
	struct listing *l = val;

	map_clear(&l->names, free);
	map_clear(&l->noted, free);
	free(l);
}

static bool listing_fresh(const struct cache *c, const struct listing *l)
{
	return l->valid && l->fetched_ms && now_ms() - l->fetched_ms < c->opt.meta_timeout_ms;
}

/* The listing of dir, made (empty, not valid) if there is none (table lock held). */
static struct listing *listing_get_or_add(struct cache *c, const char *dir)
{
	struct listing *l = map_get(&c->listings, dir);

	if (l)
		return l;
	l = calloc(1, sizeof *l);
	if (l && map_put(&c->listings, dir, l) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

/* dir's listing (if known) is to be fetched afresh before its next use;
 * a fetch under way when this happens is stale too (table lock held). */
static void listing_expire(struct cache *c, const char *dir)
{
	struct listing *l = dir ? map_get(&c->listings, dir) : NULL;

	if (l) {
		l->fetched_ms = 0;
		l->changes++;
	}
}

struct fill_ctx {
	struct map names;
};

static int fill_name(void *ctx, const char *name, const struct remote_info *info)
{
	struct fill_ctx *f = ctx;
	struct remote_info *copy = malloc(sizeof *copy);

	if (!copy)
		return -ENOMEM;
	*copy = *info;
	if (map_put(&f->names, name, copy) < 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

/* Set name in names to info (NULL: remove it); -ENOMEM leaves it removed. */
static int names_set(struct map *names, const char *name, const struct remote_info *info)
{
	struct remote_info *copy = info ? malloc(sizeof *copy) : NULL;

	free(map_remove(names, name));
	if (!info)
		return 0;
	if (copy) {
		*copy = *info;
		if (map_put(names, name, copy) == 0)
			return 0;
	}
	free(copy);
	return -ENOMEM;
}

/* The local changes noted while l was fetched, made to its fetched names:
 * an object uploaded meanwhile is neither pending nor, when the server
 * answered first, in the answer (table lock held). */
static void listing_replay_noted(struct listing *l)
{
	for (size_t i = 0; i < l->noted.nbuckets; i++) {
		for (struct map_item *it = l->noted.buckets[i]; it; it = it->next) {
			const struct noted_change *ch = it->val;
			if (names_set(&l->names, it->key, ch->gone ? NULL : &ch->info) < 0)
				l->fetched_ms = 0;
		}
	}
	map_clear(&l->noted, free);
}

/* Remember a change of name for the fetch of l under way (table lock held);
 * one that cannot be remembered makes that fetch stale. */
static void listing_note_during_fetch(struct listing *l, const char *name,
				      const struct remote_info *info)
{
	struct noted_change *ch = calloc(1, sizeof *ch);

	if (ch) {
		ch->gone = !info;
		if (info)
			ch->info = *info;
	}
	free(map_remove(&l->noted, name));
	if (!ch || map_put(&l->noted, name, ch) < 0) {
		free(ch);
		l->changes++;
	}
}

/* The listing of dir, fetched if missing or stale (table lock held; it is
 * released during the request). A stale listing serves while the remote is
 * unreachable. *out stays valid while the table lock is held. */
static int listing_ready(struct cache *c, const char *dir, struct listing **out)
{
	struct fill_ctx f = { 0 };
	struct listing *l;
	uint64_t changes;
	int rc;

	for (;;) {
		l = map_get(&c->listings, dir);
		if (l && listing_fresh(c, l)) {
			*out = l;
			return 0;
		}
		if (!l || !l->fetching)
			break;
		pthread_cond_wait(&c->changed, &c->lock);
	}
	if (!l && !(l = listing_get_or_add(c, dir)))
		return -ENOMEM;
	l->fetching = true;
	changes = l->changes;
	pthread_mutex_unlock(&c->lock);
	rc = ASK_REMOTE(c, c->remote->ops->list(c->remote, dir, fill_name, &f));
	pthread_mutex_lock(&c->lock);
	l->fetching = false;
	pthread_cond_broadcast(&c->changed);
	if (rc == 0 || rc == -ENOENT || rc == -ENOTDIR) {
		map_clear(&l->names, free);
		l->names = f.names;
		l->error = rc;
		l->valid = true;
		/* A local change while the request ran may be missing from its
		 * answer: noted ones are made to it (an answer that the folder
		 * is missing cannot take them), others have the next use ask
		 * again. */
		l->fetched_ms = l->changes == changes && (!rc || !l->noted.count) ? now_ms() : 0;
		listing_replay_noted(l);
		*out = l;
		return 0;
	}
	map_clear(&l->noted, free); /* made to l->names already */
	map_clear(&f.names, free);
	if (l->valid && unreachable_error(rc)) {
		*out = l; /* offline: the last known listing */
		return 0;
	}
	return rc;
}

/* A local change: name in dir now has info (NULL: is gone). Only a listing
 * already known is changed; table lock held. */
static void listing_note(struct cache *c, const char *path, const struct remote_info *info)
{
	char *dir = parent_of(path);
	struct listing *l = dir ? map_get(&c->listings, dir) : NULL;

	if (l && l->fetching)
		listing_note_during_fetch(l, name_of(path), info);
	if (l && l->error) {
		l->fetched_ms = 0; /* it exists after all: ask again */
	} else if (l && l->valid) {
		if (names_set(&l->names, name_of(path), info) < 0)
			l->fetched_ms = 0;
	}
	free(dir);
}

/* Forget the listings of dir and of every folder below it (table lock held). */
static void listings_forget_tree(struct cache *c, const char *dir)
{
	for (size_t i = 0; i < c->listings.nbuckets; i++) {
		struct map_item *it = c->listings.buckets[i];
		while (it) {
			struct map_item *next = it->next;
			struct listing *l = it->val;
			if (path_within(it->key, dir) && !l->fetching)
				listing_free(map_remove(&c->listings, it->key));
			it = next;
		}
	}
}

/* A folder made here: known empty, no need to ask (table lock held). */
static void listing_new_empty(struct cache *c, const char *dir)
{
	struct listing *l = listing_get_or_add(c, dir);

	if (!l)
		return;
	l->changes++;
	if (l->fetching)
		return;
	map_clear(&l->names, free);
	l->error = 0;
	l->valid = true;
	l->fetched_ms = now_ms();
}

/* What the remote has at path, from its folder's listing (no HEAD per object). */
static int remote_info_of(struct cache *c, const char *path, struct remote_info *info)
{
	char *dir;
	struct listing *l;
	int rc;

	memset(info, 0, sizeof *info);
	if (!*path) {
		info->is_dir = true;
		return 0;
	}
	dir = parent_of(path);
	if (!dir)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	/* A folder whose own folder's fresh listing lacks it needs no request. */
	if (*dir) {
		char *grand = parent_of(dir);
		struct listing *gl = grand ? map_get(&c->listings, grand) : NULL;
		free(grand);
		if (gl && listing_fresh(c, gl) && !gl->error) {
			struct remote_info *d = map_get(&gl->names, name_of(dir));
			if (!d || !d->is_dir) {
				pthread_mutex_unlock(&c->lock);
				free(dir);
				return d ? -ENOTDIR : -ENOENT;
			}
		}
	}
	rc = listing_ready(c, dir, &l);
	if (!rc && l->error)
		rc = l->error;
	if (!rc) {
		struct remote_info *found = map_get(&l->names, name_of(path));
		if (found)
			*info = *found;
		else
			rc = -ENOENT;
	}
	pthread_mutex_unlock(&c->lock);
	free(dir);
	return rc;
}

/* ---- what a fresh listing answers without asking ----
 *
 * mkdir, rmdir and unlink ask the remote at once (cache.h). Where the fresh
 * listing of the folder concerned already says what their checks would find,
 * the answer comes from it, or the remote is asked with the _listed form of
 * the request, which skips its own checks (remote.h). This trusts a listing
 * as far as getattr and list do: for meta_timeout_ms. What each request
 * left guarantees is said at the remotes; in short, on S3 mkdir_listed's
 * conditional PUT still refuses a marker made meanwhile, rmdir_listed
 * deletes the marker only (a key another client put there stays, and so
 * does the folder), remove_listed deletes the one key; on WebDAV,
 * remove_listed is a DELETE conditional on the listed ETag, which a folder
 * or another version fails (then remove checks as before). */

/* The listing of dir if it is fresh, else NULL (table lock held). */
static struct listing *listing_if_fresh(struct cache *c, const char *dir)
{
	struct listing *l = map_get(&c->listings, dir);

	return l && listing_fresh(c, l) ? l : NULL;
}

/* Is a not-yet-uploaded object at path? (table lock held) */
static bool pending_at_locked(struct cache *c, const char *path)
{
	struct object *o = map_get(&c->objects_by_path, path);

	return o && o->dirty;
}

struct pending_pick {
	const char *dir;
	bool found;
};

static void find_pending_below(void *ctx, void *val)
{
	struct pending_pick *p = ctx;
	struct object *o = val;

	if (o->dirty && path_within(o->path, p->dir) && strcmp(o->path, p->dir) != 0)
		p->found = true;
}

/* Is a not-yet-uploaded object below folder dir? (table lock held) */
static bool pending_below_locked(struct cache *c, const char *dir)
{
	struct pending_pick p = { .dir = dir };

	map_each(&c->objects_by_path, find_pending_below, &p);
	return p.found;
}

/* What the listing of path's folder says of a mkdir of path: -EEXIST (the
 * name is taken, or an object is pending there), the folder's own error
 * (-ENOENT, -ENOTDIR), 1 (free, in a folder that exists) or 0 (not known:
 * ask). A remote with mkdir_listed has the listing fetched when it is not
 * fresh: one LIST then saves that remote's checks (on S3 four requests) and
 * serves the next mkdirs and lookups there too. */
static int mkdir_by_listing(struct cache *c, const char *path)
{
	char *dir = parent_of(path);
	struct listing *l;
	int rc;

	if (!dir)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (c->remote->ops->mkdir_listed)
		listing_ready(c, dir, &l); /* a failure leaves it unknown */
	l = listing_if_fresh(c, dir);
	if (!l)
		rc = 0;
	else if (l->error)
		rc = l->error;
	else if (map_get(&l->names, name_of(path)) || pending_at_locked(c, path))
		rc = -EEXIST;
	else
		rc = 1;
	pthread_mutex_unlock(&c->lock);
	free(dir);
	return rc;
}

/* What is known of folder path for its rmdir: -ENOTEMPTY (an object is
 * pending in it, or its fresh listing shows an entry), 1 (its fresh listing
 * is empty) or 0 (not known: ask). */
static int rmdir_by_listing(struct cache *c, const char *path)
{
	struct listing *l;
	int rc;

	pthread_mutex_lock(&c->lock);
	l = listing_if_fresh(c, path);
	if (pending_below_locked(c, path) || (l && !l->error && l->names.count))
		rc = -ENOTEMPTY;
	else
		rc = l && !l->error ? 1 : 0;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Does the fresh listing of path's folder show an object at path? Its
 * version goes to info. */
static bool listed_object(struct cache *c, const char *path, struct remote_info *info)
{
	char *dir = parent_of(path);
	struct listing *l;
	struct remote_info *found = NULL;

	if (!dir)
		return false;
	pthread_mutex_lock(&c->lock);
	l = listing_if_fresh(c, dir);
	if (l && !l->error)
		found = map_get(&l->names, name_of(path));
	if (found && !found->is_dir)
		*info = *found;
	pthread_mutex_unlock(&c->lock);
	free(dir);
	return found && !found->is_dir;
}

/* Remove the object at path on the remote: with remove_listed when a fresh
 * listing shows it there, and with remove (which checks first) otherwise or
 * when remove_listed is refused. */
static int remote_remove(struct cache *c, const char *path)
{
	struct remote_info info;
	int rc = -ESTALE;

	if (c->remote->ops->remove_listed && listed_object(c, path, &info))
		rc = ASK_REMOTE(c, c->remote->ops->remove_listed(c->remote, path, info.etag));
	if (rc == -ESTALE)
		rc = ASK_REMOTE(c, c->remote->ops->remove(c->remote, path));
	return rc;
}

/* ---- fetching ---- */

/* The error to give a reader for a failed fetch. */
static int read_error(int rc)
{
	return rc == -ENOSPC || rc == -ENOMEM ? rc : -EIO;
}

/* The remote version is not the one o's bytes are from: o is stale until
 * the next open resets it (its base ETag stays: nothing of it may be
 * uploaded over the new version; o->lock held). */
static void object_changed_remotely(struct cache *c, struct object *o)
{
	char *dir = parent_of(o->path);

	store_log(LOG_ERR, "%s changed on the server while being read: reopen it", o->path);
	pthread_mutex_lock(&c->lock);
	listing_expire(c, dir); /* the next open asks for the new version */
	pthread_mutex_unlock(&c->lock);
	free(dir);
	o->stale = true;
}

/* Does info (of a GET) describe another version than o's? (o->lock held) */
static bool fetched_other_version(const struct object *o, const struct remote_info *info)
{
	return info->etag[0] && o->etag[0] && !remote_etag_equal(info->etag, o->etag);
}

/* Fetch bytes off..off+len of the remote object into the local copy (o->lock
 * held). An unlinked object's remote version is gone: all of it was fetched
 * before (cache_unlink), this is never reached but by a stale one. */
static int fetch_range(struct cache *c, struct object *o, uint64_t off, uint64_t len)
{
	struct remote_info info = { 0 };
	uint64_t got = 0;
	int fd;
	int rc;

	if (o->stale || o->unlinked)
		return -EIO;
	fd = openat(c->objects_fd, o->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = ASK_REMOTE(c, c->remote->ops->get(c->remote, o->path, off, len, fd, &got, &info));
	close(fd);
	if (!rc && (got != len || fetched_other_version(o, &info))) {
		object_changed_remotely(c, o);
		return -EIO;
	}
	return rc;
}

/* Make bytes from..to of o present locally, one ranged GET per run of
 * missing blocks (o->lock held). */
static int fetch_missing(struct cache *c, struct object *o, uint64_t from, uint64_t to)
{
	uint64_t b = from / BLOCK_SIZE, end = (to + BLOCK_SIZE - 1) / BLOCK_SIZE;
	bool fetched = false;
	int rc = 0;

	if (o->complete)
		return 0;
	if (end > o->nblocks)
		end = o->nblocks;
	while (b < end && !rc) {
		uint64_t run = b, off, len;
		if (o->present[b]) {
			b++;
			continue;
		}
		while (run < end && !o->present[run])
			run++;
		off = b * BLOCK_SIZE;
		len = (run * BLOCK_SIZE < o->size ? run * BLOCK_SIZE : o->size) - off;
		rc = fetch_range(c, o, off, len);
		if (!rc) {
			memset(o->present + b, 1, run - b);
			fetched = true;
		}
		b = run;
	}
	if (fetched && !memchr(o->present, 0, o->nblocks)) {
		int fd = openat(c->objects_fd, o->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		/* the bytes reach the disk before a record says they are all there */
		if (fd >= 0 && fdatasync(fd) == 0) {
			o->complete = true;
			free(o->present);
			o->present = NULL;
			state_write(c, o);
		}
		if (fd >= 0)
			close(fd);
	}
	if (fetched)
		object_account(c, o);
	return rc;
}

static void evict_over(struct cache *c, uint64_t limit);

/* fetch_missing, and once more after evicting everything evictable when
 * the cache disk is full. */
static int fetch_missing_or_evict(struct cache *c, struct object *o, uint64_t from, uint64_t to)
{
	int rc = fetch_missing(c, o, from, to);

	if (rc == -ENOSPC) {
		evict_over(c, 0);
		rc = fetch_missing(c, o, from, to);
	}
	if (!rc)
		evict_over(c, c->opt.max_bytes);
	return rc;
}

/* ---- eviction ---- */

struct lru_pick {
	struct object *best;
};

static void consider_for_eviction(void *ctx, void *val)
{
	struct lru_pick *p = ctx;
	struct object *o = val;

	/* refs == 1: only the table holds it (no handle, no work in progress) */
	if (o->refs == 1 && !o->dirty && o->counted && (!p->best || o->last_use < p->best->last_use))
		p->best = o;
}

/* Delete clean, unused local copies, least recently used first, until the
 * counted bytes are at most limit. */
static void evict_over(struct cache *c, uint64_t limit)
{
	pthread_mutex_lock(&c->lock);
	while (c->bytes > limit) {
		struct lru_pick p = { NULL };
		map_each(&c->objects_by_path, consider_for_eviction, &p);
		if (!p.best)
			break;
		/* nobody else can hold its lock: it has no other reference */
		record_remove(c->state, p.best->path);
		object_remove_file(c, p.best->path);
		map_remove(&c->objects_by_path, p.best->path);
		p.best->in_table = false;
		object_unref_locked(c, p.best);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- uploads ---- */

static void schedule_upload(struct cache *c, struct object *o, uint64_t delay_ms)
{
	o->due_ms = now_ms() + delay_ms;
	pthread_cond_broadcast(&c->changed);
}

/* Make the local copy's folder entry durable, once (o->lock held). */
static int object_sync_entry(struct cache *c, struct object *o)
{
	int rc;

	if (o->entry_synced)
		return 0;
	rc = mirror_sync_entry(c, o->path);
	o->entry_synced = rc == 0;
	return rc;
}

/* queue_write, and once more after evicting clean copies when the cache
 * disk is full (o->lock held, not the table lock). */
static int queue_write_or_evict(struct cache *c, struct object *o)
{
	int rc = queue_write(c, o);

	if (rc == -ENOSPC) {
		evict_over(c, 0);
		rc = queue_write(c, o);
	}
	return rc;
}

/* Queue o's complete local copy for upload, durably: its folder entry,
 * then its record (o->lock held). */
static int object_queue(struct cache *c, struct object *o)
{
	int rc = object_sync_entry(c, o);

	if (!rc)
		rc = queue_write_or_evict(c, o);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	o->dirty = true;
	schedule_upload(c, o, c->opt.upload_delay_ms);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* The local copy changes: queue it durably first (o->lock held). The
 * object is made complete before, so that what is uploaded is whole. A
 * stale one must not change; an unlinked one is complete already
 * (cache_unlink) and never uploaded. */
static int object_make_dirty(struct cache *c, struct object *o)
{
	bool dirty;
	int rc;

	if (o->stale)
		return -EIO;
	if (o->unlinked)
		return 0;
	pthread_mutex_lock(&c->lock);
	dirty = o->dirty;
	if (dirty)
		schedule_upload(c, o, c->opt.upload_delay_ms);
	pthread_mutex_unlock(&c->lock);
	if (dirty)
		return 0;
	rc = fetch_missing_or_evict(c, o, 0, o->size);
	return rc ? rc : object_queue(c, o);
}

/* The upload of o succeeded with info: o is clean at that version (o->lock held). */
static void object_uploaded(struct cache *c, struct object *o, const struct remote_info *info)
{
	snprintf(o->etag, sizeof o->etag, "%s", info->etag);
	o->base_absent = false;
	o->mtime = info->mtime;
	/* Before the new state: a crash in between leaves an old state, which
	 * costs a fetch; a queue record left would upload again against the
	 * old base, and make a conflict copy of our own upload. */
	queue_remove(c, o->path);
	state_write(c, o);
	pthread_mutex_lock(&c->lock);
	o->dirty = false;
	listing_note(c, o->path, info);
	pthread_mutex_unlock(&c->lock);
}

/* Upload o's local copy to path with condition if_match (o->lock held). */
static int put_local_copy(struct cache *c, struct object *o, const char *path, const char *if_match,
			  struct remote_info *info)
{
	struct stat st;
	int fd = openat(c->objects_fd, o->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || fdatasync(fd) < 0)
		rc = -errno;
	memset(info, 0, sizeof *info);
	if (!rc)
		rc = ASK_REMOTE(c, c->remote->ops->put(c->remote, path, fd, (uint64_t)st.st_size,
							if_match, info));
	close(fd);
	if (!rc) {
		info->is_dir = false;
		info->size = (uint64_t)st.st_size;
		if (!info->mtime.tv_sec)
			info->mtime = wall_now();
	}
	return rc;
}

/* The condition of o's upload (o->lock held): "must not exist" for an
 * object made here, else its base ETag. A version whose base is unknown is
 * never uploaded over whatever is there: -ESTALE, as for a changed one. */
static int upload_condition(const struct object *o, const char **cond)
{
	*cond = "";
	if (o->base_absent)
		return 0;
	*cond = o->etag;
	if (!o->etag[0])
		store_log(LOG_WARNING, "%s: the server gives no ETag, so it cannot be replaced "
			  "safely", o->path);
	return o->etag[0] ? 0 : -ESTALE;
}

/* Upload a dirty o, conditional on its base version (o->lock held). */
static int upload_locked(struct cache *c, struct object *o)
{
	struct remote_info info;
	const char *cond;
	int rc = upload_condition(o, &cond);

	if (!rc)
		rc = put_local_copy(c, o, o->path, cond, &info);
	if (!rc)
		object_uploaded(c, o, &info);
	return rc;
}

/* The conflict copy of o was uploaded as new_path (info): o is that object
 * now, and path is left to the server's version (o->lock held). */
static int object_became_conflict_copy(struct cache *c, struct object *o, const char *path,
				       const char *new_path, const struct remote_info *info)
{
	char *key = strdup(new_path);
	struct object *old;
	int rc = 0;

	if (!key)
		return -ENOMEM;
	queue_remove(c, path);
	record_remove(c->state, path);
	pthread_mutex_lock(&c->lock);
	old = map_remove(&c->objects_by_path, new_path);
	if (old) { /* a stale copy of that name: gone now */
		old->in_table = false;
		object_unref_locked(c, old);
	}
	map_remove(&c->objects_by_path, path);
	free(o->path);
	o->path = key;
	if (map_put(&c->objects_by_path, key, o) < 0)
		rc = -ENOMEM;
	listing_note(c, path, NULL); /* the server's version: listed afresh */
	listings_forget_tree(c, path);
	{
		char *dir = parent_of(path);
		listing_expire(c, dir);
		free(dir);
	}
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		object_uploaded(c, o, info);
	return rc;
}

/* The conflict handler's name for path's conflict copy, checked; NULL if none. */
static char *conflict_name_for(struct cache *c, const char *path)
{
	cache_conflict_fn fn;
	void *fn_ctx;
	char *new_path;

	pthread_mutex_lock(&c->lock);
	fn = c->conflict_fn;
	fn_ctx = c->conflict_ctx;
	pthread_mutex_unlock(&c->lock);
	new_path = fn ? fn(fn_ctx, path) : NULL;
	if (new_path && !path_ok(new_path, false)) {
		free(new_path);
		return NULL;
	}
	return new_path;
}

/* o's base version is gone from the server: save the local version under the
 * name the conflict handler gives, and let the original be fetched afresh.
 * Called without locks (the handler may use the store). */
static int resolve_conflict(struct cache *c, struct object *o)
{
	struct remote_info info;
	char *path, *new_path;
	int rc;

	pthread_mutex_lock(&o->lock);
	path = strdup(o->path);
	pthread_mutex_unlock(&o->lock);
	if (!path)
		return -ENOMEM;
	new_path = conflict_name_for(c, path);
	if (!new_path) { /* upload_object logs it and tries again later */
		free(path);
		return -ESTALE;
	}
	pthread_mutex_lock(&o->lock);
	pthread_mutex_lock(&c->lock);
	rc = o->opens || !o->dirty || strcmp(o->path, path) ? -EAGAIN : 0;
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		rc = put_local_copy(c, o, new_path, "", &info);
	if (!rc)
		rc = mirror_make_parents(c, new_path);
	if (!rc && renameat(c->objects_fd, path, c->objects_fd, new_path) < 0)
		rc = -errno;
	if (!rc) {
		rc = object_became_conflict_copy(c, o, path, new_path, &info);
		store_log(LOG_WARNING, "conflict: %s changed on the server; your version was saved as %s",
			  path, new_path);
	}
	pthread_mutex_unlock(&o->lock);
	free(new_path);
	free(path);
	return rc;
}

/* Upload o if it is (still) dirty; on a conflict resolve it; on failure
 * schedule a retry with a capped backoff. One log line per change of state. */
static int upload_object(struct cache *c, struct object *o)
{
	bool dirty;
	int rc;

	pthread_mutex_lock(&o->lock);
	pthread_mutex_lock(&c->lock);
	dirty = o->dirty && !o->unlinked;
	pthread_mutex_unlock(&c->lock);
	rc = dirty ? upload_locked(c, o) : 0;
	pthread_mutex_unlock(&o->lock);
	if (rc == -ESTALE)
		rc = resolve_conflict(c, o);
	pthread_mutex_lock(&c->lock);
	if (rc && o->dirty) {
		uint64_t delay = c->opt.upload_delay_ms ? c->opt.upload_delay_ms : 10;
		for (unsigned i = 0; i < o->failures && delay < RETRY_MAX_MS; i++)
			delay *= 2;
		if (delay > RETRY_MAX_MS)
			delay = RETRY_MAX_MS;
		delay = delay / 2 + (uint64_t)arc4random_uniform((uint32_t)(delay / 2 + 1));
		o->failures++;
		schedule_upload(c, o, delay);
		if (rc != o->last_error && rc == -ESTALE)
			store_log(LOG_ERR, "conflict: %s changed on the server; your version stays "
				  "queued (no conflict copy could be made)", o->path);
		else if (rc != o->last_error)
			store_log(LOG_ERR, "upload of %s failed (%s): it stays queued and is retried",
				  o->path, strerror(-rc));
		o->last_error = rc;
	} else if (!rc && o->failures) {
		store_log(LOG_INFO, "upload of %s done after %u failed tries", o->path, o->failures);
		o->failures = 0;
		o->last_error = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

struct due_pick {
	uint64_t now;
	struct object *due;
	uint64_t next_ms; /* the earliest due time in the future */
};

static void consider_for_upload(void *ctx, void *val)
{
	struct due_pick *p = ctx;
	struct object *o = val;

	if (!o->dirty || o->opens || o->refs > 1 || p->due)
		return; /* refs > 1: in use (open, or another upload running) */
	if (o->due_ms <= p->now)
		p->due = o;
	else if (o->due_ms < p->next_ms)
		p->next_ms = o->due_ms;
}

static void wait_until_ms(struct cache *c, uint64_t when)
{
	uint64_t now = now_ms(), wait = when > now ? when - now : 0;
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)(wait / 1000);
	t.tv_nsec += (long)(wait % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&c->changed, &c->lock, &t);
}

/* An uploader thread: uploads closed dirty objects when they are due. */
static void *uploader_main(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct due_pick p = { .now = now_ms(), .next_ms = UINT64_MAX };
		if (c->offline && c->probe_ms > p.now) {
			wait_until_ms(c, c->probe_ms);
			continue;
		}
		map_each(&c->objects_by_path, consider_for_upload, &p);
		if (!p.due) {
			wait_until_ms(c, p.next_ms == UINT64_MAX ? p.now + 3600 * 1000 : p.next_ms);
			continue;
		}
		p.due->refs++;
		pthread_mutex_unlock(&c->lock);
		upload_object(c, p.due);
		pthread_mutex_lock(&c->lock);
		object_unref_locked(c, p.due);
		pthread_cond_broadcast(&c->changed);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- store operations: names ---- */

static void attr_fill(struct store_attr *a, bool is_dir, uint64_t size, struct timespec mtime)
{
	*a = (struct store_attr){
		.is_dir = is_dir,
		.size = is_dir ? 0 : size,
		.mode = is_dir ? 0755 : 0644,
		.uid = getuid(),
		.gid = getgid(),
		.atime = mtime,
		.mtime = mtime,
		.ctime = mtime,
		.blocks = is_dir ? 0 : (size + 511) / 512,
	};
}

/* Attributes of a dirty local object (the table lock held). */
static bool local_attr_locked(struct cache *c, const char *path, struct store_attr *a)
{
	struct object *o = map_get(&c->objects_by_path, path);
	struct stat st;

	if (!o || !o->dirty || fstatat(c->objects_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	attr_fill(a, false, (uint64_t)st.st_size, st.st_mtim);
	return true;
}

/* Offline and nothing listed: what the local mirror shows. */
static int mirror_attr(struct cache *c, const char *path, struct store_attr *a, int rc)
{
	struct store_attr local;

	if (!unreachable_error(rc) || store_getattr(c->objects, path, &local) < 0)
		return rc;
	attr_fill(a, local.is_dir, local.size, local.mtime);
	return 0;
}

static int cache_getattr(struct store *s, const char *path, struct store_attr *a)
{
	struct cache *c = cache_of(s);
	struct remote_info info;
	bool local;
	int rc;

	if (!path_ok(path, true))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	local = local_attr_locked(c, path, a);
	pthread_mutex_unlock(&c->lock);
	if (local)
		return 0;
	rc = remote_info_of(c, path, &info);
	if (rc)
		return app_error(mirror_attr(c, path, a, rc));
	attr_fill(a, info.is_dir, info.size, info.mtime);
	return 0;
}

/* Remotes keep no modes, owners or times: accepted and ignored. */
static int cache_setattr(struct store *s, const char *path, const struct store_attr *a, int to_set)
{
	(void)s;
	(void)a;
	(void)to_set;
	return path_ok(path, true) ? 0 : -EINVAL;
}

struct name_list {
	struct name_entry {
		char *name;
		bool is_dir;
	} *items;
	size_t n, cap;
	struct map seen; /* name -> (void *)1 */
	const char *dir;
	int error;
};

static void names_add(struct name_list *nl, const char *name, bool is_dir)
{
	if (nl->error || map_get(&nl->seen, name))
		return;
	if (nl->n == nl->cap) {
		size_t cap = nl->cap ? nl->cap * 2 : 64;
		struct name_entry *more = realloc(nl->items, cap * sizeof *more);
		if (!more) {
			nl->error = -ENOMEM;
			return;
		}
		nl->items = more;
		nl->cap = cap;
	}
	if (!(nl->items[nl->n].name = strdup(name)) || map_put(&nl->seen, name, (void *)1) < 0) {
		free(nl->items[nl->n].name);
		nl->error = -ENOMEM;
		return;
	}
	nl->items[nl->n++].is_dir = is_dir;
}

static void names_free(struct name_list *nl)
{
	for (size_t i = 0; i < nl->n; i++)
		free(nl->items[i].name);
	free(nl->items);
	map_clear(&nl->seen, NULL);
}

/* Objects changed or made here and not uploaded yet show in their folder's
 * listing, whatever it says: one made here is in no listing until uploaded,
 * and its upload makes it "not new" before it is clean and listed (a
 * listing made in between would lose it). */
static void add_pending(void *ctx, void *val)
{
	struct name_list *nl = ctx;
	struct object *o = val;
	const char *slash = strrchr(o->path, '/');
	size_t dir_len = slash ? (size_t)(slash - o->path) : 0;

	if (o->dirty && strlen(nl->dir) == dir_len &&
	    strncmp(o->path, nl->dir, dir_len) == 0)
		names_add(nl, name_of(o->path), false);
}

static int list_mirror_entry(void *ctx, const char *name, bool is_dir)
{
	if (!own_name(name))
		names_add(ctx, name, is_dir);
	return 0;
}

static int cache_list(struct store *s, const char *dir, store_list_cb cb, void *ctx)
{
	struct cache *c = cache_of(s);
	struct name_list nl = { .dir = dir };
	struct listing *l;
	int rc;

	if (!path_ok(dir, true))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	rc = listing_ready(c, dir, &l);
	if (!rc && l->error)
		rc = l->error;
	if (!rc) {
		for (size_t i = 0; i < l->names.nbuckets; i++)
			for (struct map_item *it = l->names.buckets[i]; it; it = it->next)
				names_add(&nl, it->key, ((struct remote_info *)it->val)->is_dir);
		map_each(&c->objects_by_path, add_pending, &nl);
	}
	pthread_mutex_unlock(&c->lock);
	if (unreachable_error(rc))
		rc = store_list(c->objects, dir, list_mirror_entry, &nl) < 0 ? rc : 0;
	if (!rc)
		rc = nl.error;
	for (size_t i = 0; !rc && i < nl.n; i++)
		rc = cb(ctx, nl.items[i].name, nl.items[i].is_dir);
	names_free(&nl);
	return app_error(rc);
}

static int cache_mkdir(struct store *s, const char *path)
{
	struct cache *c = cache_of(s);
	struct remote_info info = { .is_dir = true };
	int rc;

	if (!path_ok(path, false))
		return -EINVAL;
	rc = mkdir_by_listing(c, path);
	if (rc < 0)
		return rc;
	if (rc == 1 && c->remote->ops->mkdir_listed)
		rc = ASK_REMOTE(c, c->remote->ops->mkdir_listed(c->remote, path));
	else
		rc = ASK_REMOTE(c, c->remote->ops->mkdir(c->remote, path));
	if (rc)
		return app_error(rc);
	info.mtime = wall_now();
	pthread_mutex_lock(&c->lock);
	listing_note(c, path, &info);
	listing_new_empty(c, path);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int cache_rmdir(struct store *s, const char *path)
{
	struct cache *c = cache_of(s);
	int rc;

	if (!path_ok(path, false))
		return -EINVAL;
	rc = rmdir_by_listing(c, path);
	if (rc < 0)
		return rc;
	if (rc == 1 && c->remote->ops->rmdir_listed)
		rc = ASK_REMOTE(c, c->remote->ops->rmdir_listed(c->remote, path));
	else
		rc = ASK_REMOTE(c, c->remote->ops->rmdir(c->remote, path));
	if (rc)
		return app_error(rc);
	pthread_mutex_lock(&c->lock);
	listing_note(c, path, NULL);
	listings_forget_tree(c, path);
	pthread_mutex_unlock(&c->lock);
	unlinkat(c->objects_fd, path, AT_REMOVEDIR); /* an empty mirror folder, if any */
	return 0;
}

/* An open object whose remote version is about to go: fetch what it lacks,
 * so that its handles keep reading (o->lock held). */
static int keep_open_copy(struct cache *c, struct object *o)
{
	bool open;
	int rc;

	pthread_mutex_lock(&c->lock);
	open = o->opens > 0;
	pthread_mutex_unlock(&c->lock);
	if (!open || o->complete || o->stale)
		return 0;
	rc = fetch_missing_or_evict(c, o, 0, o->size);
	if (rc)
		store_log(LOG_ERR, "%s is open and not all in the cache (%s): not removed", o->path,
			  strerror(-rc));
	return rc ? read_error(rc) : 0;
}

static int remove_uncached(struct cache *c, const char *path)
{
	int rc = remote_remove(c, path);

	pthread_mutex_lock(&c->lock);
	if (!rc)
		listing_note(c, path, NULL);
	pthread_mutex_unlock(&c->lock);
	return app_error(rc);
}

static int cache_unlink(struct store *s, const char *path)
{
	struct cache *c = cache_of(s);
	struct object *o;
	bool only_here;
	int rc;

	if (!path_ok(path, false))
		return -EINVAL;
	o = object_lock_current(c, path, false);
	if (!o)
		return remove_uncached(c, path);
	pthread_mutex_lock(&c->lock);
	only_here = o->dirty && o->base_absent; /* made here, never uploaded */
	pthread_mutex_unlock(&c->lock);
	rc = keep_open_copy(c, o);
	if (!rc && !only_here)
		rc = remote_remove(c, path);
	pthread_mutex_lock(&c->lock);
	if (rc == -ENOENT && o->dirty)
		rc = 0; /* gone there already; the local change goes too */
	if (!rc) {
		listing_note(c, path, NULL);
		if (o->in_table)
			object_detach_locked(c, o); /* drops the table's reference */
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&o->lock);
	object_unref(c, o);
	return app_error(rc);
}

/* ---- rename ---- */

struct tree_pick {
	const char *dir;
	struct object **items;
	size_t n, cap;
	bool failed;
};

static void pick_in_tree(void *ctx, void *val)
{
	struct tree_pick *t = ctx;
	struct object *o = val;

	if (t->failed || !path_within(o->path, t->dir))
		return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct object **more = realloc(t->items, cap * sizeof *more);
		if (!more) {
			t->failed = true;
			return;
		}
		t->items = more;
		t->cap = cap;
	}
	o->refs++;
	t->items[t->n++] = o;
}

/* The objects at path or below it, each with a reference (drop with tree_release). */
static int tree_collect(struct cache *c, const char *path, struct tree_pick *t)
{
	memset(t, 0, sizeof *t);
	t->dir = path;
	pthread_mutex_lock(&c->lock);
	map_each(&c->objects_by_path, pick_in_tree, t);
	pthread_mutex_unlock(&c->lock);
	return t->failed ? -ENOMEM : 0;
}

static void tree_release(struct cache *c, struct tree_pick *t)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < t->n; i++)
		object_unref_locked(c, t->items[i]);
	pthread_mutex_unlock(&c->lock);
	free(t->items);
}

/* Upload every dirty object at path or below it now. */
static int upload_tree(struct cache *c, const char *path)
{
	struct tree_pick t;
	int rc = tree_collect(c, path, &t);

	for (size_t i = 0; !rc && i < t.n; i++) {
		pthread_mutex_lock(&t.items[i]->lock);
		pthread_mutex_lock(&c->lock);
		bool dirty = t.items[i]->dirty;
		pthread_mutex_unlock(&c->lock);
		rc = dirty ? upload_locked(c, t.items[i]) : 0;
		pthread_mutex_unlock(&t.items[i]->lock);
	}
	tree_release(c, &t);
	return rc;
}

/* Is a not-yet-uploaded object waiting at path? */
static bool pending_at(struct cache *c, const char *path)
{
	bool pending;

	pthread_mutex_lock(&c->lock);
	pending = pending_at_locked(c, path);
	pthread_mutex_unlock(&c->lock);
	return pending;
}

/* o's local copy was moved along with the remote object to new_path (o->lock
 * and the table lock held): the table and the records follow, a queue
 * record made anew before the old one goes, so that a change is never
 * without one. */
static void object_follow_move(struct cache *c, struct object *o, char *new_path)
{
	char *old_path = o->path;

	map_remove(&c->objects_by_path, old_path);
	o->path = new_path;
	if (map_put(&c->objects_by_path, new_path, o) < 0) {
		o->in_table = false;
		object_remove_file(c, new_path);
		object_unref_locked(c, o);
		free(old_path);
		return;
	}
	if (o->dirty && queue_write(c, o) < 0)
		store_log(LOG_ERR, "%s: cannot queue the change under the new name %s: it is "
			  "kept under the old one", old_path, new_path);
	else if (o->dirty)
		record_remove(c->queue, old_path);
	record_remove(c->state, old_path);
	state_write(c, o);
	free(old_path);
}

static int mirror_rename(struct cache *c, const char *from, const char *to)
{
	int rc = mirror_make_parents(c, to);

	if (!rc && renameat(c->objects_fd, from, c->objects_fd, to) < 0)
		rc = -errno;
	return rc;
}

/* Move the local copy at from (an object's, or a folder of them) to to in
 * the objects folder, once more after evicting clean copies when the cache
 * disk is full. A move made but not made durable is still made: it is
 * logged (a crash before the disk writes it may lose changes queued there). */
static int mirror_move(struct cache *c, const char *from, const char *to)
{
	int rc = mirror_rename(c, from, to);

	if (rc == -ENOSPC) {
		evict_over(c, 0);
		rc = mirror_rename(c, from, to);
	}
	if (rc)
		return rc;
	rc = mirror_sync_entry(c, from);
	if (!rc)
		rc = mirror_sync_entry(c, to);
	if (rc)
		store_log(LOG_ERR, "the cached copy of %s was moved to %s, but the cache folder could "
			  "not be synced (%s): a crash now may lose the changes queued there", from,
			  to, strerror(-rc));
	return 0;
}

/* What the remote holds at to right after a move from there: a folder as
 * the listing of from's folder showed it; else what a HEAD says, as the
 * move may have given the object another ETag (S3 copies it). false: not
 * known. */
static bool version_after_move(struct cache *c, const char *from, const char *to,
			       struct remote_info *info)
{
	char *dir = parent_of(from);
	struct listing *l;
	struct remote_info *listed = NULL;
	bool folder;

	pthread_mutex_lock(&c->lock);
	l = dir ? map_get(&c->listings, dir) : NULL;
	if (l && l->valid && !l->error)
		listed = map_get(&l->names, name_of(from));
	folder = listed && listed->is_dir;
	if (folder)
		*info = *listed;
	pthread_mutex_unlock(&c->lock);
	free(dir);
	return folder || ASK_REMOTE(c, c->remote->ops->head(c->remote, to, info)) == 0;
}

/* o, moved on the remote to new_path, is based on the version the move made
 * there (o->lock held): at, if known, else asked now. Right after the move,
 * so that another client's write there later is a conflict, as for any
 * object. Unknown, the ETag from before the move stays: a server that gave
 * another one then seems to hold another version (a refetch, or a conflict
 * copy of a change; never an overwrite). A clean copy takes only a version
 * of its own size. */
static void learn_moved_version(struct cache *c, struct object *o, const char *new_path,
				const struct remote_info *at, bool dirty)
{
	struct remote_info asked;

	if (o->base_absent || o->stale)
		return; /* not on the server yet; or fetched afresh before any use */
	if (!at) {
		if (ASK_REMOTE(c, c->remote->ops->head(c->remote, new_path, &asked)) != 0)
			return;
		at = &asked;
	}
	if (!at->is_dir && at->etag[0] && (dirty || at->size == o->size))
		snprintf(o->etag, sizeof o->etag, "%s", at->etag);
}

/* After the remote moved from to to, o (at from or below it, locked) takes
 * its new path if its local copy moved (tree_moved: with its folder), or
 * else is dropped: a clean copy nobody has open is fetched again when
 * needed. A changed or open one must keep its change and what its handles
 * write: its copy is moved alone, and if even that fails it stays under the
 * old name with its change queued there, which finds its base gone from
 * that name and becomes a conflict copy. at: what is at to now, if known. */
static void object_after_move(struct cache *c, struct object *o, const char *from, const char *to,
			      bool tree_moved, const struct remote_info *at)
{
	char *new_path;
	bool in_table, dirty, keep, follows;

	pthread_mutex_lock(&c->lock);
	in_table = o->in_table;
	dirty = o->dirty;
	keep = o->dirty || o->opens;
	pthread_mutex_unlock(&c->lock);
	if (!in_table)
		return;
	if (asprintf(&new_path, "%s%s", to, o->path + strlen(from)) < 0)
		new_path = NULL;
	follows = new_path && (tree_moved || (keep && mirror_move(c, o->path, new_path) == 0));
	if (follows)
		learn_moved_version(c, o, new_path, strcmp(new_path, to) == 0 ? at : NULL, dirty);
	else if (keep)
		store_log(LOG_ERR, "%s was moved to %s on the server, but its cached copy could not "
			  "follow: its changes stay queued under the old name, to become a conflict "
			  "copy there", o->path, to);
	pthread_mutex_lock(&c->lock);
	if (follows)
		object_follow_move(c, o, new_path);
	else if (!keep)
		object_detach_locked(c, o);
	pthread_mutex_unlock(&c->lock);
	if (!follows)
		free(new_path);
}

/* After the remote moved from to to: the local copies follow (every object
 * at from or below it gets the new path; what was at to is dropped). at:
 * what is at to now, if known. */
static void rename_local(struct cache *c, const char *from, const char *to,
			 const struct remote_info *at)
{
	struct tree_pick moving, replaced;
	bool tree_moved;

	if (tree_collect(c, to, &replaced) == 0) {
		for (size_t i = 0; i < replaced.n; i++) {
			struct object *o = replaced.items[i];
			pthread_mutex_lock(&o->lock);
			pthread_mutex_lock(&c->lock);
			if (o->in_table)
				object_detach_locked(c, o);
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_unlock(&o->lock);
		}
		tree_release(c, &replaced);
	}
	unlinkat(c->objects_fd, to, AT_REMOVEDIR); /* an empty mirror folder, if any */
	if (tree_collect(c, from, &moving) < 0)
		return;
	for (size_t i = 0; i < moving.n; i++)
		pthread_mutex_lock(&moving.items[i]->lock);
	tree_moved = mirror_move(c, from, to) == 0;
	for (size_t i = 0; i < moving.n; i++)
		object_after_move(c, moving.items[i], from, to, tree_moved, at);
	for (size_t i = 0; i < moving.n; i++)
		pthread_mutex_unlock(&moving.items[i]->lock);
	tree_release(c, &moving);
}

/* The listings after a move: the entry changes folder (at: what is at to
 * now; NULL: not known, to's folder is listed afresh), folders below are
 * forgotten. */
static void rename_listings(struct cache *c, const char *from, const char *to,
			    const struct remote_info *at)
{
	if (at) {
		listing_note(c, to, at);
	} else {
		char *to_dir = parent_of(to);
		listing_expire(c, to_dir);
		free(to_dir);
	}
	listing_note(c, from, NULL);
	listings_forget_tree(c, from);
	listings_forget_tree(c, to);
}

static int cache_rename(struct store *s, const char *from, const char *to, unsigned flags)
{
	struct cache *c = cache_of(s);
	struct object *replaced;
	struct remote_info at;
	bool known;
	int rc;

	if (!path_ok(from, false) || !path_ok(to, false))
		return -EINVAL;
	if (flags & ~(unsigned)STORE_RENAME_NOREPLACE)
		return -EINVAL; /* no atomic exchange on WebDAV or S3 */
	if (path_within(to, from))
		return -EINVAL;
	pthread_mutex_lock(&c->rename_lock);
	rc = (flags & STORE_RENAME_NOREPLACE) && pending_at(c, to) ? -EEXIST : 0;
	/* What moves must be on the server first: the move happens there. */
	if (!rc && upload_tree(c, from) < 0)
		rc = -EIO;
	/* What the move replaces stays locked until it is dropped: an upload of
	 * it that the server took while it copied (S3's move) could land after
	 * the copy and put the replaced version back over the moved one (seen
	 * with radosgw: a conditional PUT checked before the copy, written after). */
	replaced = rc ? NULL : object_lock_current(c, to, false);
	if (replaced)
		rc = keep_open_copy(c, replaced); /* maybe open */
	if (!rc)
		rc = ASK_REMOTE(c, c->remote->ops->move(c->remote, from, to,
							!(flags & STORE_RENAME_NOREPLACE)));
	if (replaced) {
		pthread_mutex_lock(&c->lock);
		if (!rc && replaced->in_table)
			object_detach_locked(c, replaced);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&replaced->lock);
		object_unref(c, replaced);
	}
	if (!rc) {
		known = version_after_move(c, from, to, &at);
		rename_local(c, from, to, known ? &at : NULL);
		pthread_mutex_lock(&c->lock);
		rename_listings(c, from, to, known ? &at : NULL);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&c->rename_lock);
	return app_error(rc);
}

/* ---- whole small objects ---- */

static bool object_in_use(struct cache *c, struct object *o)
{
	bool used;

	pthread_mutex_lock(&c->lock);
	used = o->dirty || o->opens;
	pthread_mutex_unlock(&c->lock);
	return used;
}

static bool object_dirty(struct cache *c, struct object *o)
{
	bool dirty;

	pthread_mutex_lock(&c->lock);
	dirty = o->dirty;
	pthread_mutex_unlock(&c->lock);
	return dirty;
}

/* Make o's local copy the remote version info, reusing what matches (o->lock
 * held). info NULL: the remote is unreachable; a complete copy serves. */
static int object_prepare(struct cache *c, struct object *o, const struct remote_info *info)
{
	if (object_in_use(c, o))
		return 0; /* a local change or an open version wins until uploaded/closed */
	if (!info)
		return o->complete && !o->base_absent && !o->stale ? 0 : -EIO;
	return object_matches(o, info) ? 0 : object_reset(c, o, info);
}

static int cache_read_all(struct store *s, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct cache *c = cache_of(s);
	struct remote_info info;
	struct object *o;
	int rc;

	if (!path_ok(path, false))
		return -EINVAL;
	rc = remote_info_of(c, path, &info);
	if (!rc && info.is_dir)
		return -EISDIR;
	if (!rc && info.size > max)
		return -EFBIG;
	if (rc && !unreachable_error(rc) && !pending_at(c, path))
		return rc;
	o = object_lock_current(c, path, true);
	if (!o)
		return -ENOMEM;
	rc = object_prepare(c, o, rc ? NULL : &info);
	if (!rc)
		rc = fetch_missing_or_evict(c, o, 0, o->size);
	if (!rc)
		rc = store_read_all(c->objects, o->path, max, buf, len);
	pthread_mutex_unlock(&o->lock);
	object_unref(c, o);
	return rc == -ENOENT ? -EIO : app_error(rc);
}

/* A staging file for write_all in the objects folder; its name goes to name. */
static int staging_file(struct cache *c, char name[64])
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd;
		snprintf(name, 64, WRITE_PREFIX "%08x", arc4random());
		fd = openat(c->objects_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* buf in a new staging file of the objects folder (its bytes durable, to be
 * renamed to a cached copy); its name goes to name. */
static int stage(struct cache *c, const void *buf, size_t len, char name[64])
{
	int fd = staging_file(c, name);
	int rc;

	if (fd < 0)
		return fd;
	rc = fd_write_all(fd, buf, len);
	if (!rc && fdatasync(fd) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		unlinkat(c->objects_fd, name, 0);
		return rc;
	}
	return fd;
}

/* stage, and once more after evicting clean copies when the cache disk is full. */
static int stage_or_evict(struct cache *c, const void *buf, size_t len, char name[64])
{
	int fd = stage(c, buf, len, name);

	if (fd == -ENOSPC) {
		evict_over(c, 0);
		fd = stage(c, buf, len, name);
	}
	return fd;
}

/* Write through to the remote (unconditional: these are small objects that
 * fs/ replaces whole), then keep the bytes as the cached copy. */
static int cache_write_all(struct store *s, const char *path, const void *buf, size_t len)
{
	struct cache *c = cache_of(s);
	struct remote_info info = { 0 };
	struct object *o;
	char staged[64];
	int fd, rc;

	if (!path_ok(path, false))
		return -EINVAL;
	fd = stage_or_evict(c, buf, len, staged);
	if (fd < 0)
		return fd;
	rc = ASK_REMOTE(c, c->remote->ops->put(c->remote, path, fd, len, NULL, &info));
	close(fd);
	o = rc ? NULL : object_lock_current(c, path, true);
	if (!rc && !o)
		rc = -ENOMEM;
	if (rc) {
		unlinkat(c->objects_fd, staged, 0);
		return app_error(rc);
	}
	info.size = len;
	if (!info.mtime.tv_sec)
		info.mtime = wall_now();
	if (!object_in_use(c, o) && mirror_make_parents(c, path) == 0 &&
	    renameat(c->objects_fd, staged, c->objects_fd, path) == 0) {
		snprintf(o->etag, sizeof o->etag, "%s", info.etag);
		o->base_absent = false;
		o->stale = false;
		o->entry_synced = false;
		o->size = len;
		o->mtime = info.mtime;
		o->complete = true;
		free(o->present);
		o->present = NULL;
		state_write(c, o);
		object_account(c, o);
	} else {
		unlinkat(c->objects_fd, staged, 0);
	}
	pthread_mutex_lock(&c->lock);
	listing_note(c, path, &info);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&o->lock);
	object_unref(c, o);
	evict_over(c, c->opt.max_bytes);
	return 0;
}

static int cache_statfs(struct store *s, struct statvfs *st)
{
	return store_statfs(cache_of(s)->objects, st);
}

/* ---- open objects ---- */

/* Cut or grow a complete local copy (o->lock held). */
static int truncate_local(struct cache *c, struct object *o, uint64_t size)
{
	int fd = openat(c->objects_fd, o->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		rc = -errno;
	close(fd);
	if (!rc) {
		o->size = size;
		o->mtime = wall_now();
		object_account(c, o);
	}
	return rc;
}

/* o is made here: empty, queued with "must not exist" (o->lock held). */
static int object_start_new(struct cache *c, struct object *o)
{
	int rc;

	o->etag[0] = '\0';
	o->base_absent = true;
	o->stale = false;
	o->size = 0;
	o->mtime = wall_now();
	rc = object_forget_bytes(c, o);
	if (!rc)
		rc = state_write(c, o);
	return rc ? rc : object_queue(c, o);
}

/* A complete copy of a known remote version: while the remote cannot tell,
 * the object is taken to exist (as a new one it would be truncated). */
static bool known_copy(const struct object *o)
{
	return o->complete && o->etag[0] && !o->base_absent && !o->stale;
}

/* Cut an incomplete copy of a version to size before its first change,
 * fetching only what stays; it is complete then (o->lock held). A crash
 * before the change is queued leaves a state record of the whole version,
 * which the shorter file does not match: it is fetched afresh. */
static int object_cut(struct cache *c, struct object *o, uint64_t size)
{
	int rc;

	if (o->stale)
		return -EIO;
	rc = fetch_missing_or_evict(c, o, 0, size);
	if (!rc)
		rc = truncate_local(c, o, size);
	if (rc)
		return rc;
	o->complete = true;
	free(o->present);
	o->present = NULL;
	object_account(c, o);
	return 0;
}

/* Change o's size (o->lock held). */
static int object_truncate(struct cache *c, struct object *o, uint64_t size)
{
	int rc = 0;

	if (!o->complete && size < o->size && !object_dirty(c, o))
		rc = object_cut(c, o, size);
	if (!rc)
		rc = object_make_dirty(c, o);
	if (!rc)
		rc = truncate_local(c, o, size);
	return rc ? read_error(rc) : 0;
}

/* Open with STORE_O_CREATE: 0 made (or in use), 1 exists: open it as it is. */
static int open_new(struct cache *c, struct object *o, const char *path, unsigned flags)
{
	struct remote_info info;
	int rc;

	if (object_in_use(c, o))
		return (flags & STORE_O_EXCL) ? -EEXIST : 0;
	rc = remote_info_of(c, path, &info);
	if (unreachable_error(rc) && known_copy(o))
		rc = 0;
	if (rc == 0 && (flags & STORE_O_EXCL))
		return -EEXIST;
	if (rc == 0)
		return 1;
	if (rc != -ENOENT && !unreachable_error(rc))
		return rc;
	/* Missing (or unknown while offline: the upload's "must not exist"
	 * condition keeps a concurrent creation from being overwritten). */
	return object_start_new(c, o);
}

static int open_existing(struct cache *c, struct object *o, const char *path)
{
	struct remote_info info;
	int rc;

	if (object_in_use(c, o))
		return 0;
	rc = remote_info_of(c, path, &info);
	if (!rc && info.is_dir)
		return -EISDIR;
	if (rc && !unreachable_error(rc))
		return rc;
	/* offline, a listing may be old: only a complete local copy serves */
	rc = object_prepare(c, o, rc || !remote_askable(c) ? NULL : &info);
	if (rc == -EIO)
		store_log(LOG_ERR, "%s: not in the cache, and %s is unreachable", path,
			  c->remote->location);
	return rc;
}

static int cache_open(struct store *s, const char *path, unsigned flags, struct store_obj **out)
{
	struct cache *c = cache_of(s);
	struct handle *h;
	struct object *o;
	int rc = 1, fd = -1;

	if (!path_ok(path, false))
		return -EINVAL;
	h = calloc(1, sizeof *h);
	o = h ? object_lock_current(c, path, true) : NULL;
	if (!o) {
		free(h);
		return -ENOMEM;
	}
	if (flags & STORE_O_CREATE)
		rc = open_new(c, o, path, flags);
	if (rc == 1)
		rc = open_existing(c, o, path);
	if (!rc && (flags & STORE_O_TRUNC) && o->size)
		rc = object_truncate(c, o, 0);
	if (!rc) {
		fd = openat(c->objects_fd, o->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
	if (!rc) {
		pthread_mutex_lock(&c->lock);
		o->opens++;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&o->lock);
	if (rc) {
		object_unref(c, o);
		free(h);
		return app_error(rc);
	}
	h->base.store = s;
	h->obj = o;
	h->fd = fd;
	*out = &h->base;
	return 0;
}

static void object_touch(struct cache *c, struct object *o)
{
	pthread_mutex_lock(&c->lock);
	o->last_use = wall_ns();
	pthread_mutex_unlock(&c->lock);
}

static bool range_present(const struct object *o, uint64_t from, uint64_t to)
{
	for (uint64_t b = from / BLOCK_SIZE; b < (to + BLOCK_SIZE - 1) / BLOCK_SIZE; b++)
		if (!o->present[b])
			return false;
	return true;
}

static ssize_t cache_pread(struct store_obj *so, void *buf, size_t len, uint64_t off)
{
	struct cache *c = cache_of(so->store);
	struct handle *h = handle_of(so);
	struct object *o = h->obj;
	uint64_t end, want;
	int rc;

	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	if (off >= o->size) {
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	end = len < o->size - off ? off + len : o->size;
	want = end;
	/* A reader from the start or going on where it stopped: when its range
	 * needs fetching, fetch ahead too (one request for the next several reads). */
	if (!o->complete && (off == 0 || off == o->next_read) && !range_present(o, off, end))
		want = o->size - end < READ_AHEAD ? o->size : end + READ_AHEAD;
	rc = fetch_missing_or_evict(c, o, off, want);
	o->next_read = end;
	pthread_mutex_unlock(&o->lock);
	if (rc)
		return read_error(rc);
	/* Present bytes stay: no eviction or reset while this handle is open. */
	object_touch(c, o);
	return fd_pread_full(h->fd, buf, (size_t)(end - off), off);
}

/* fd_pwrite_full, and once more after evicting clean copies when the cache
 * disk is full. */
static ssize_t pwrite_or_evict(struct cache *c, int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = fd_pwrite_full(fd, buf, len, off);

	if (n == -ENOSPC) {
		evict_over(c, 0);
		n = fd_pwrite_full(fd, buf, len, off);
	}
	return n;
}

static ssize_t cache_pwrite(struct store_obj *so, const void *buf, size_t len, uint64_t off)
{
	struct cache *c = cache_of(so->store);
	struct handle *h = handle_of(so);
	struct object *o = h->obj;
	ssize_t n;
	int rc;

	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX - len)
		return -EFBIG;
	pthread_mutex_lock(&o->lock);
	rc = object_make_dirty(c, o);
	n = rc ? read_error(rc) : pwrite_or_evict(c, h->fd, buf, len, off);
	if (n >= 0) {
		if (off + len > o->size)
			o->size = off + len;
		o->mtime = wall_now();
		object_account(c, o);
	}
	pthread_mutex_unlock(&o->lock);
	return n;
}

static int cache_truncate(struct store_obj *so, uint64_t size)
{
	struct cache *c = cache_of(so->store);
	struct object *o = handle_of(so)->obj;
	int rc;

	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&o->lock);
	rc = object_truncate(c, o, size);
	pthread_mutex_unlock(&o->lock);
	return rc;
}

/* Upload now. Unreachable remote: 0 once the change is durable here (it is
 * queued and goes up when the store is back); refused: -EIO, stays queued. */
static int cache_fsync(struct store_obj *so, bool datasync)
{
	struct cache *c = cache_of(so->store);
	struct handle *h = handle_of(so);
	struct object *o = h->obj;
	int rc = 0;

	(void)datasync;
	pthread_mutex_lock(&o->lock);
	if (object_dirty(c, o)) {
		rc = fdatasync(h->fd) < 0 ? -errno : 0;
		if (!rc && remote_askable(c))
			rc = upload_locked(c, o);
	}
	pthread_mutex_unlock(&o->lock);
	if (rc == -ESTALE)
		store_log(LOG_WARNING, "conflict: %s changed on the server; your version is "
			  "saved as a conflict copy once the file is closed", o->path);
	if (unreachable_error(rc))
		rc = 0; /* durable here and queued (object_queue) */
	if (rc && rc != -ENOSPC && rc != -ENOMEM)
		rc = -EIO;
	return rc;
}

/* The remote keeps no modes, owners or times of ours: like setattr. */
static int cache_fsetattr(struct store_obj *so, const struct store_attr *a, int to_set)
{
	(void)so;
	(void)a;
	(void)to_set;
	return 0;
}

static int cache_fgetattr(struct store_obj *so, struct store_attr *a)
{
	struct cache *c = cache_of(so->store);
	struct handle *h = handle_of(so);
	struct object *o = h->obj;
	struct stat st;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	if (fstat(h->fd, &st) < 0)
		rc = -errno;
	else
		attr_fill(a, false, (uint64_t)st.st_size,
			  object_dirty(c, o) || o->base_absent ? st.st_mtim : o->mtime);
	pthread_mutex_unlock(&o->lock);
	return rc;
}

static int cache_close(struct store_obj *so)
{
	struct cache *c = cache_of(so->store);
	struct handle *h = handle_of(so);
	struct object *o = h->obj;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	/* what close acknowledges survives a crash: the queue record and the
	 * copy's folder entries are durable since the first write (object_queue),
	 * the bytes from here on */
	if (object_dirty(c, o) && fdatasync(h->fd) < 0)
		rc = -errno;
	close(h->fd);
	pthread_mutex_lock(&c->lock);
	if (!--o->opens && o->unlinked)
		object_remove_file(c, o->path);
	if (o->dirty)
		schedule_upload(c, o, c->opt.upload_delay_ms);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&o->lock);
	object_unref(c, o);
	free(h);
	return rc;
}

/* ---- flush, stats, handler ---- */

bool store_is_cache(const struct store *s)
{
	return s && s->ops->destroy == cache_ops.destroy;
}

void store_cache_set_conflict_handler(struct store *s, cache_conflict_fn fn, void *ctx)
{
	struct cache *c = cache_of(s);

	if (!store_is_cache(s))
		return;
	pthread_mutex_lock(&c->lock);
	c->conflict_fn = fn;
	c->conflict_ctx = ctx;
	pthread_mutex_unlock(&c->lock);
}

static void pick_dirty(void *ctx, void *val)
{
	struct object *o = val;

	if (o->dirty)
		pick_in_tree(ctx, val);
}

/* The uploads of a flush, taken in turn by up to FLUSHERS threads. */
struct flush_job {
	struct cache *c;
	const struct tree_pick *t;
	pthread_mutex_t lock;
	size_t next;           /* the next object of t to upload */
	int first;             /* the first failure */
};

static void *flush_worker(void *arg)
{
	struct flush_job *j = arg;

	for (;;) {
		size_t i;
		int rc;

		pthread_mutex_lock(&j->lock);
		i = j->next < j->t->n ? j->next++ : SIZE_MAX;
		pthread_mutex_unlock(&j->lock);
		if (i == SIZE_MAX)
			return NULL;
		rc = upload_object(j->c, j->t->items[i]);
		pthread_mutex_lock(&j->lock);
		if (rc && !j->first)
			j->first = rc;
		pthread_mutex_unlock(&j->lock);
	}
}

/* Every dirty object is uploaded, FLUSHERS at a time (this thread is one;
 * fewer when a thread cannot be started): at an unmount after an untar the
 * whole wait is for these, each a request to the server. The uploader
 * threads leave them alone meanwhile (they hold a reference). */
int store_cache_flush(struct store *s)
{
	struct cache *c = cache_of(s);
	struct tree_pick t = { .dir = "" };
	struct flush_job j = { .c = c, .t = &t };
	pthread_t helpers[FLUSHERS - 1];
	unsigned started = 0;

	if (!store_is_cache(s))
		return 0;
	pthread_mutex_lock(&c->lock);
	c->probe_ms = 0; /* try now, even after an outage */
	map_each(&c->objects_by_path, pick_dirty, &t);
	pthread_mutex_unlock(&c->lock);
	if (t.failed)
		j.first = -ENOMEM;
	pthread_mutex_init(&j.lock, NULL);
	while (started < FLUSHERS - 1 && started + 1 < t.n &&
	       pthread_create(&helpers[started], NULL, flush_worker, &j) == 0)
		started++;
	flush_worker(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(helpers[i], NULL);
	pthread_mutex_destroy(&j.lock);
	tree_release(c, &t);
	return j.first == -ESTALE || j.first == -EAGAIN ? -EIO : j.first;
}

static void add_stats(void *ctx, void *val)
{
	struct cache_stats *st = ctx;
	struct object *o = val;

	st->objects++;
	if (o->dirty) {
		st->pending_uploads++;
		st->pending_bytes += o->size;
	}
}

int store_cache_stats(struct store *s, struct cache_stats *st)
{
	struct cache *c = cache_of(s);

	if (!store_is_cache(s))
		return -EINVAL;
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&c->lock);
	map_each(&c->objects_by_path, add_stats, st);
	st->bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- opening and closing the cache ---- */

static void object_free_any(void *val)
{
	object_free(val);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cache_destroy(struct store *s)
{
	struct cache *c = cache_of(s);
	struct cache_stats st = { 0 };

	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nuploaders; i++)
		pthread_join(c->uploaders[i], NULL);
	if (c->opt.temporary) {
		store_cache_flush(s);
		store_cache_stats(s, &st);
		if (st.pending_uploads)
			store_log(LOG_ERR, "%llu changes could not be uploaded; they are kept in %s",
				  (unsigned long long)st.pending_uploads, c->dir);
		else
			nftw(c->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	map_clear(&c->objects_by_path, object_free_any);
	map_clear(&c->listings, listing_free);
	store_destroy(c->objects);
	store_destroy(c->state);
	store_destroy(c->queue);
	if (c->objects_fd >= 0)
		close(c->objects_fd);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	if (c->lock_fd >= 0)
		close(c->lock_fd); /* releases the flock */
	if (c->remote)
		c->remote->ops->destroy(c->remote);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->rename_lock);
	pthread_cond_destroy(&c->changed);
	free(c->dir);
	free(c->base.location);
	free(c);
}

/* $XDG_CACHE_HOME/umbrafs, else ~/.cache/umbrafs (malloc'd), the home from
 * $HOME or the password database. Never a shared folder such as /tmp. */
static int default_base(char **out, char **err)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = store_home_dir();

	if (xdg && *xdg == '/')
		return asprintf(out, "%s/umbrafs", xdg) < 0 ? store_fail(err, -ENOMEM, "out of memory") : 0;
	if (!home)
		return store_fail(err, -ENOENT, "no home folder for the cache (neither HOME nor "
				  "XDG_CACHE_HOME is set): give one with --cache-dir");
	return asprintf(out, "%s/.cache/umbrafs", home) < 0 ? store_fail(err, -ENOMEM, "out of memory") : 0;
}

/* The cache folder must be ours alone: others could read what is cached
 * (ciphertext, but also names and sizes) or plant upload records. Checked
 * on the folder opened (fd), not by its name, which could name another
 * folder by the time it is opened. */
static int check_private(int fd, const char *dir, char **err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return store_fail(err, -errno, "%s: %s", dir, strerror(errno));
	if (st.st_uid != geteuid())
		return store_fail(err, -EPERM, "the cache folder %s belongs to another user (uid %u): "
				  "give one of yours with --cache-dir", dir, (unsigned)st.st_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return store_fail(err, -EPERM, "the cache folder %s is writable by other users: "
				  "chmod go-w it, or give another one with --cache-dir", dir);
	return 0;
}

/* The folder mounts of c's remote use: --cache-dir, or one per store URL
 * under the default base. malloc'd into *out. */
static int shared_folder(const struct cache *c, char **out, char **err)
{
	char *base = NULL;
	char id[65];
	int rc;

	if (c->opt.dir)
		return (*out = strdup(c->opt.dir)) ? 0 : store_fail(err, -ENOMEM, "out of memory");
	rc = default_base(&base, err);
	if (!rc && (sha256_hex(c->remote->location, id) < 0 ||
		    asprintf(out, "%s/%.16s", base, id) < 0))
		rc = store_fail(err, -ENOMEM, "out of memory");
	free(base);
	return rc;
}

/* A private folder for a one-shot command (info, fsck, passwd), which must
 * not wait for a mount that holds the shared one. */
static int temporary_folder(const struct cache *c, char **out, char **err)
{
	char *base = NULL;
	int rc = c->opt.dir ? ((base = strdup(c->opt.dir)) ? 0 : -ENOMEM) : default_base(&base, err);

	if (rc == -ENOMEM)
		return store_fail(err, rc, "out of memory");
	if (rc)
		return rc;
	rc = store_mkdir_p(base);
	if (rc)
		rc = store_fail(err, rc, "%s: cannot create the cache folder: %s", base, strerror(-rc));
	else if (asprintf(out, "%s/tmp-XXXXXX", base) < 0 || !mkdtemp(*out))
		rc = store_fail(err, -errno, "%s: cannot create a cache folder: %s", base,
				strerror(errno));
	free(base);
	return rc;
}

/* The cache folder: as given, or named by the store's URL; or a fresh one. */
static int choose_folder(struct cache *c, char **err)
{
	int rc = c->opt.temporary ? temporary_folder(c, &c->dir, err) : shared_folder(c, &c->dir, err);

	if (!rc && !c->opt.temporary && (rc = store_mkdir_p(c->dir)) != 0)
		rc = store_fail(err, rc, "%s: cannot create the cache folder: %s", c->dir,
				strerror(-rc));
	return rc;
}

/* ---- what the shared folder holds (umbrafs info) ---- */

/* the totals add_object_file adds to: nftw passes its callback no context */
static __thread struct cache_stats *walk_stats;

static int add_object_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_F && !own_name(path + ftw->base)) {
		walk_stats->objects++;
		walk_stats->bytes += (uint64_t)st->st_blocks * 512; /* sparse: what is on disk */
	}
	return 0;
}

/* One queued upload of the folder dir: count it and its object's size. */
static void add_queued(const char *dir, const char *record, struct cache_stats *st)
{
	char *file = NULL, *numbers, *etag, *path, *object = NULL, text[RECORD_MAX];
	struct stat sb;
	FILE *f;
	size_t n = 0;

	if (asprintf(&file, "%s/queue/%s", dir, record) < 0)
		return;
	if ((f = fopen(file, "re"))) {
		n = fread(text, 1, sizeof text - 1, f);
		fclose(f);
	}
	text[n] = '\0';
	free(file);
	if (record_split(text, &numbers, &etag, &path) != 0)
		return;
	st->pending_uploads++;
	if (asprintf(&object, "%s/objects/%s", dir, path) >= 0 && stat(object, &sb) == 0)
		st->pending_bytes += (uint64_t)sb.st_size;
	free(object);
}

int store_cache_folder_stats(struct store *s, struct cache_stats *st, char **folder)
{
	struct cache *c = cache_of(s);
	char *objects = NULL, *queue = NULL, *err = NULL;
	struct dirent *e;
	DIR *d;
	int rc;

	if (!store_is_cache(s))
		return -EINVAL;
	memset(st, 0, sizeof *st);
	rc = shared_folder(c, folder, &err);
	free(err);
	if (rc)
		return rc;
	if (asprintf(&objects, "%s/objects", *folder) < 0 || asprintf(&queue, "%s/queue", *folder) < 0)
		rc = -ENOMEM;
	walk_stats = st;
	if (!rc && nftw(objects, add_object_file, 16, FTW_PHYS) != 0)
		rc = errno == ENOENT ? -ENOENT : -EIO;
	if (!rc && (d = opendir(queue))) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && !own_name(e->d_name))
				add_queued(*folder, e->d_name, st);
		closedir(d);
	}
	free(objects);
	free(queue);
	return rc;
}

static int open_subfolder(struct cache *c, const char *name, struct store **out, char **err)
{
	char *path = NULL;
	int rc;

	if (mkdirat(c->dir_fd, name, FOLDER_MODE) < 0 && errno != EEXIST)
		return store_fail(err, -errno, "%s/%s: %s", c->dir, name, strerror(errno));
	if (asprintf(&path, "%s/%s", c->dir, name) < 0)
		return store_fail(err, -ENOMEM, "out of memory");
	rc = store_local_open(path, out, err);
	free(path);
	return rc;
}

/* Open the cache folder (never through a symbolic link) and check it is private. */
static int open_folder(struct cache *c, char **err)
{
	struct stat st;
	int rc;

	c->dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->dir_fd >= 0)
		return check_private(c->dir_fd, c->dir, err);
	rc = -errno;
	if (rc == -ENOTDIR && lstat(c->dir, &st) == 0 && S_ISLNK(st.st_mode))
		return store_fail(err, -EPERM, "the cache folder %s is a symbolic link: give the "
				  "folder it points to with --cache-dir", c->dir);
	if (rc == -ENOTDIR)
		return store_fail(err, rc, "the cache folder %s is not a folder", c->dir);
	return store_fail(err, rc, "%s: %s", c->dir, strerror(-rc));
}

static int lock_folder(struct cache *c, char **err)
{
	int rc = open_folder(c, err);

	if (rc)
		return rc;
	c->lock_fd = openat(c->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0)
		return store_fail(err, -errno, "%s/lock: %s", c->dir, strerror(errno));
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return store_fail(err, errno == EWOULDBLOCK ? -EBUSY : -errno,
				  "the cache folder %s is in use by another umbrafs (is %s mounted "
				  "already?); give another one with --cache-dir",
				  c->dir, c->remote->location);
	return 0;
}

/* Record in the cache folder which remote it belongs to (no credentials:
 * the remote's location), durably. */
static int record_owner(struct cache *c, char **err)
{
	int fd = openat(c->dir_fd, OWNER_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0600);
	int rc;

	if (fd < 0)
		return store_fail(err, -errno, "%s/" OWNER_FILE ": %s", c->dir, strerror(errno));
	rc = fd_write_all(fd, c->remote->location, strlen(c->remote->location));
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc)
		rc = sync_folder(c->dir_fd, "");
	return rc ? store_fail(err, rc, "%s/" OWNER_FILE ": %s", c->dir, strerror(-rc)) : 0;
}

/* A cache folder serves one remote: another one would upload its queued
 * changes. Recorded at the first use (or after a crash left it empty). */
static int check_owner(struct cache *c, char **err)
{
	char owner[4096];
	int fd = openat(c->dir_fd, OWNER_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 && errno == ENOENT)
		return record_owner(c, err);
	if (fd < 0)
		return store_fail(err, -errno, "%s/" OWNER_FILE ": %s", c->dir, strerror(errno));
	n = fd_pread_full(fd, owner, sizeof owner - 1, 0);
	close(fd);
	if (n < 0)
		return store_fail(err, (int)n, "%s/" OWNER_FILE ": %s", c->dir, strerror((int)-n));
	if (n == 0)
		return record_owner(c, err);
	owner[n] = '\0';
	if (strcmp(owner, c->remote->location) != 0)
		return store_fail(err, -EEXIST, "the cache folder %s belongs to %s, not to %s: give "
				  "another one with --cache-dir", c->dir, owner, c->remote->location);
	return 0;
}

/* Read one record of folder (a local store) into a malloc'd NUL-terminated text. */
static char *record_read(struct store *folder, const char *name)
{
	uint8_t *text = NULL;
	size_t len = 0;
	char *out;

	if (store_read_all(folder, name, RECORD_MAX, &text, &len) < 0)
		return NULL;
	out = realloc(text, len + 1);
	if (!out) {
		free(text);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

/* A state record at start: the object it describes enters the table. */
static int load_state_record(void *ctx, const char *name, bool is_dir)
{
	struct cache *c = ctx;
	char *text;
	char *numbers, *etag, *path;
	unsigned long long size;
	long long mtime;
	int complete, absent;
	struct object *o;
	struct stat st;

	if (own_name(name)) { /* a temporary file of an interrupted write */
		store_unlink(c->state, name);
		return 0;
	}
	text = is_dir ? NULL : record_read(c->state, name);
	if (!text)
		return 0;
	if (record_split(text, &numbers, &etag, &path) < 0 ||
	    sscanf(numbers, "1 %llu %lld %d %d", &size, &mtime, &complete, &absent) < 4 ||
	    fstatat(c->objects_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    !(o = object_get_locked(c, path))) {
		store_unlink(c->state, name); /* nothing usable: forget it */
		free(text);
		return 0;
	}
	snprintf(o->etag, sizeof o->etag, "%s", etag);
	o->size = (uint64_t)st.st_size;
	o->mtime.tv_sec = (time_t)mtime;
	o->base_absent = absent;
	o->complete = complete && (uint64_t)st.st_size == size;
	o->last_use = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
	o->refs--; /* the table's only */
	free(text);
	return 0;
}

/* A queue record at start: its object is dirty and due now. */
static int load_queue_record(void *ctx, const char *name, bool is_dir)
{
	struct cache *c = ctx;
	char *text;
	char *numbers, *etag, *path;
	int absent;
	struct object *o;

	if (own_name(name)) { /* a temporary file of an interrupted write */
		store_unlink(c->queue, name);
		return 0;
	}
	text = is_dir ? NULL : record_read(c->queue, name);
	if (!text)
		return 0;
	if (record_split(text, &numbers, &etag, &path) < 0 ||
	    sscanf(numbers, "1 %d", &absent) < 1) {
		store_log(LOG_ERR, "%s/queue/%s: unreadable upload record, deleted", c->dir, name);
		store_unlink(c->queue, name);
		free(text);
		return 0;
	}
	o = map_get(&c->objects_by_path, path);
	if (!o) {
		store_log(LOG_ERR, "the local copy of %s is missing: its queued upload is dropped", path);
		store_unlink(c->queue, name);
	} else {
		snprintf(o->etag, sizeof o->etag, "%s", etag); /* the base of the change */
		o->base_absent = absent;
		o->complete = true; /* made complete before its first change */
		o->dirty = true;
		o->due_ms = 0;
	}
	free(text);
	return 0;
}

/* Remove leftovers of a previous run at the top of objects/. */
static int remove_leftover(void *ctx, const char *name, bool is_dir)
{
	struct cache *c = ctx;

	if (!is_dir && (strncmp(name, ASIDE_PREFIX, strlen(ASIDE_PREFIX)) == 0 ||
			strncmp(name, WRITE_PREFIX, strlen(WRITE_PREFIX)) == 0))
		unlinkat(c->objects_fd, name, 0);
	return 0;
}

/* Count the bytes of the objects found at start; a partly fetched one
 * starts empty (which blocks it held was not kept). */
static void count_loaded(struct cache *c)
{
	struct tree_pick all;

	if (tree_collect(c, "", &all) < 0)
		return;
	for (size_t i = 0; i < all.n; i++) {
		struct object *o = all.items[i];
		pthread_mutex_lock(&o->lock);
		if (o->complete)
			object_account(c, o);
		else
			object_forget_bytes(c, o);
		pthread_mutex_unlock(&o->lock);
	}
	tree_release(c, &all);
}

static int load_folder(struct cache *c, char **err)
{
	int rc;

	c->objects_fd = openat(c->dir_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->objects_fd < 0)
		return store_fail(err, -errno, "%s/objects: %s", c->dir, strerror(errno));
	store_list(c->objects, "", remove_leftover, c);
	pthread_mutex_lock(&c->lock);
	rc = store_list(c->state, "", load_state_record, c);
	if (!rc)
		rc = store_list(c->queue, "", load_queue_record, c);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return store_fail(err, rc, "%s: cannot read the cache: %s", c->dir, strerror(-rc));
	count_loaded(c);
	evict_over(c, c->opt.max_bytes);
	return 0;
}

static void set_defaults(struct cache_options *o)
{
	if (!o->max_bytes)
		o->max_bytes = DEFAULT_MAX_BYTES;
	if (!o->upload_delay_ms)
		o->upload_delay_ms = DEFAULT_UPLOAD_DELAY_MS;
	if (!o->meta_timeout_ms)
		o->meta_timeout_ms = DEFAULT_META_TIMEOUT_MS;
}

static int start_uploaders(struct cache *c, char **err)
{
	for (int i = 0; i < UPLOADERS; i++) {
		int rc = pthread_create(&c->uploaders[i], NULL, uploader_main, c);
		if (rc)
			return store_fail(err, -rc, "cannot start the upload threads: %s", strerror(rc));
		c->nuploaders++;
	}
	return 0;
}

/* A condition variable whose timed waits use the monotonic clock (see wait_until_ms). */
static void init_monotonic_cond(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

int store_cache_open(struct remote *r, const struct cache_options *o, struct store **out,
		     char **err)
{
	struct cache *c = calloc(1, sizeof *c);
	int rc;

	if (err)
		*err = NULL;
	if (!c) {
		r->ops->destroy(r);
		return store_fail(err, -ENOMEM, "out of memory");
	}
	c->ops = cache_ops;
	c->ops.name = r->ops->name;
	c->base.ops = &c->ops;
	c->remote = r;
	c->dir_fd = c->objects_fd = c->lock_fd = -1;
	if (o)
		c->opt = *o;
	set_defaults(&c->opt);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->rename_lock, NULL);
	init_monotonic_cond(&c->changed);
	c->base.location = strdup(r->location);
	rc = c->base.location ? choose_folder(c, err) : store_fail(err, -ENOMEM, "out of memory");
	if (!rc)
		rc = lock_folder(c, err);
	if (!rc)
		rc = check_owner(c, err);
	if (!rc)
		rc = open_subfolder(c, "objects", &c->objects, err);
	if (!rc)
		rc = open_subfolder(c, "state", &c->state, err);
	if (!rc)
		rc = open_subfolder(c, "queue", &c->queue, err);
	if (!rc)
		rc = load_folder(c, err);
	if (!rc)
		rc = start_uploaders(c, err);
	if (rc) {
		cache_destroy(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}

static const struct store_ops cache_ops = {
	.name = "cache",
	.getattr = cache_getattr,
	.setattr = cache_setattr,
	.list = cache_list,
	.mkdir = cache_mkdir,
	.rmdir = cache_rmdir,
	.unlink = cache_unlink,
	.rename = cache_rename,
	.read_all = cache_read_all,
	.write_all = cache_write_all,
	.statfs = cache_statfs,
	.open = cache_open,
	.pread = cache_pread,
	.pwrite = cache_pwrite,
	.truncate = cache_truncate,
	.fsync = cache_fsync,
	.fgetattr = cache_fgetattr,
	.fsetattr = cache_fsetattr,
	.close = cache_close,
	.destroy = cache_destroy,
};
