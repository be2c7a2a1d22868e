/* The in-memory remote of the cache tests; see fake_remote.h. */
#include "fake_remote.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_MAX 512

struct fake_entry {
	char *path;
	bool is_dir;
	uint8_t *data;
	size_t len;
	char etag[REMOTE_ETAG_MAX];
};

struct fake_remote {
	struct remote base;
	pthread_mutex_t lock;
	struct fake_entry entries[FAKE_MAX];
	int n;
	int fail;
	int fail_op[FAKE_OPS];
	unsigned delay_ms[FAKE_OPS];
	bool no_etags;
	bool move_changes_etags;
	unsigned counts[FAKE_OPS];
	unsigned in_flight[FAKE_OPS], max_in_flight[FAKE_OPS];
	unsigned etag_seq;
	struct remote_ops ops; /* fake_ops, less what fake_without_listed_ops drops */
};

static struct fake_remote *fake_of(struct remote *r)
{
	return (struct fake_remote *)r;
}

static struct fake_entry *find(struct fake_remote *f, const char *path)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->entries[i].path, path) == 0)
			return &f->entries[i];
	return NULL;
}

static bool folder_exists(struct fake_remote *f, const char *path)
{
	struct fake_entry *e = *path ? find(f, path) : NULL;

	return !*path || (e && e->is_dir);
}

static bool parent_exists(struct fake_remote *f, const char *path)
{
	const char *slash = strrchr(path, '/');
	char parent[1024];

	if (!slash)
		return true;
	snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
	return folder_exists(f, parent);
}

static struct fake_entry *add(struct fake_remote *f, const char *path, bool is_dir)
{
	struct fake_entry *e = &f->entries[f->n++];

	memset(e, 0, sizeof *e);
	e->path = strdup(path);
	e->is_dir = is_dir;
	return e;
}

static void new_etag(struct fake_remote *f, struct fake_entry *e)
{
	snprintf(e->etag, sizeof e->etag, "\"v%u\"", ++f->etag_seq);
}

static void set_data(struct fake_remote *f, struct fake_entry *e, const void *data, size_t len)
{
	free(e->data);
	e->data = malloc(len ? len : 1);
	memcpy(e->data, data, len);
	e->len = len;
	new_etag(f, e);
}

static void info_of(const struct fake_remote *f, const struct fake_entry *e,
		    struct remote_info *info)
{
	memset(info, 0, sizeof *info);
	info->is_dir = e->is_dir;
	info->size = e->len;
	info->mtime.tv_sec = 1700000000;
	snprintf(info->etag, sizeof info->etag, "%s", f->no_etags ? "" : e->etag);
}

/* Count the request, and it as in flight; its error when failing. Lock held. */
static int begin(struct fake_remote *f, enum fake_op op)
{
	f->counts[op]++;
	if (++f->in_flight[op] > f->max_in_flight[op])
		f->max_in_flight[op] = f->in_flight[op];
	return f->fail ? f->fail : f->fail_op[op];
}

/* Unlock; the request is in flight until after its delay, if it has one. */
static void end(struct fake_remote *f, enum fake_op op)
{
	unsigned ms = f->delay_ms[op];

	pthread_mutex_unlock(&f->lock);
	if (ms)
		usleep(ms * 1000);
	pthread_mutex_lock(&f->lock);
	f->in_flight[op]--;
	pthread_mutex_unlock(&f->lock);
}

static int fake_head(struct remote *r, const char *path, struct remote_info *info)
{
	struct fake_remote *f = fake_of(r);
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_HEAD);
	if (!rc) {
		struct fake_entry *e = find(f, path);
		if (e)
			info_of(f, e, info);
		else if (!*path)
			*info = (struct remote_info){ .is_dir = true };
		else
			rc = -ENOENT;
	}
	end(f, FAKE_HEAD);
	return rc;
}

static int fake_list(struct remote *r, const char *dir, remote_list_cb cb, void *ctx)
{
	struct fake_remote *f = fake_of(r);
	size_t n = strlen(dir);
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_LIST);
	if (!rc && !folder_exists(f, dir))
		rc = find(f, dir) ? -ENOTDIR : -ENOENT;
	for (int i = 0; !rc && i < f->n; i++) {
		const char *p = f->entries[i].path, *name = n ? p + n + 1 : p;
		struct remote_info info;
		if ((n && (strncmp(p, dir, n) || p[n] != '/')) || strchr(name, '/'))
			continue;
		info_of(f, &f->entries[i], &info);
		rc = cb(ctx, name, &info);
	}
	end(f, FAKE_LIST);
	return rc;
}

static int fake_get_op(struct remote *r, const char *path, uint64_t off, uint64_t len, int fd,
		       uint64_t *got, struct remote_info *info)
{
	struct fake_remote *f = fake_of(r);
	struct fake_entry *e;
	int rc;

	*got = 0;
	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_GET);
	e = rc ? NULL : find(f, path);
	if (!rc && (!e || e->is_dir))
		rc = -ENOENT;
	if (!rc && off < e->len) {
		uint64_t n = len && len < e->len - off ? len : e->len - off;
		if (write(fd, e->data + off, n) != (ssize_t)n)
			rc = -errno ? -errno : -EIO;
		else
			*got = n;
	}
	if (!rc && info)
		info_of(f, e, info);
	end(f, FAKE_GET);
	return rc;
}

static int fake_put(struct remote *r, const char *path, int fd, uint64_t size, const char *if_match,
		    struct remote_info *info)
{
	struct fake_remote *f = fake_of(r);
	uint8_t *buf = malloc(size ? size : 1);
	struct fake_entry *e;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_PUT);
	e = rc ? NULL : find(f, path);
	if (!rc && !parent_exists(f, path))
		rc = -ENOENT;
	else if (!rc && e && e->is_dir)
		rc = -EISDIR;
	else if (!rc && if_match && (*if_match ? !e || strcmp(e->etag, if_match) : e != NULL))
		rc = -ESTALE;
	if (!rc && pread(fd, buf, size, 0) != (ssize_t)size)
		rc = -EIO;
	if (!rc) {
		if (!e)
			e = add(f, path, false);
		set_data(f, e, buf, size);
		if (info)
			info_of(f, e, info);
	}
	end(f, FAKE_PUT);
	free(buf);
	return rc;
}

static int fake_mkdir_op(struct remote *r, const char *path)
{
	struct fake_remote *f = fake_of(r);
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_MKDIR);
	if (!rc && find(f, path))
		rc = -EEXIST;
	else if (!rc && !parent_exists(f, path))
		rc = -ENOENT;
	if (!rc)
		add(f, path, true);
	end(f, FAKE_MKDIR);
	return rc;
}

static void drop(struct fake_remote *f, struct fake_entry *e)
{
	free(e->path);
	free(e->data);
	*e = f->entries[--f->n];
}

static int fake_rmdir(struct remote *r, const char *path)
{
	struct fake_remote *f = fake_of(r);
	size_t n = strlen(path);
	struct fake_entry *e;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_RMDIR);
	e = rc ? NULL : find(f, path);
	if (!rc && (!e || !e->is_dir))
		rc = e ? -ENOTDIR : -ENOENT;
	for (int i = 0; !rc && i < f->n; i++)
		if (strncmp(f->entries[i].path, path, n) == 0 && f->entries[i].path[n] == '/')
			rc = -ENOTEMPTY;
	if (!rc)
		drop(f, e);
	end(f, FAKE_RMDIR);
	return rc;
}

static int fake_remove(struct remote *r, const char *path)
{
	struct fake_remote *f = fake_of(r);
	struct fake_entry *e;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_REMOVE);
	e = rc ? NULL : find(f, path);
	if (!rc && (!e || e->is_dir))
		rc = e ? -EISDIR : -ENOENT;
	if (!rc)
		drop(f, e);
	end(f, FAKE_REMOVE);
	return rc;
}

static int fake_move(struct remote *r, const char *from, const char *to, bool overwrite)
{
	struct fake_remote *f = fake_of(r);
	size_t n = strlen(from);
	struct fake_entry *src, *dst;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_MOVE);
	src = rc ? NULL : find(f, from);
	dst = rc ? NULL : find(f, to);
	if (!rc && !src)
		rc = -ENOENT;
	else if (!rc && dst && !overwrite)
		rc = -EEXIST;
	else if (!rc && !parent_exists(f, to))
		rc = -ENOENT;
	if (!rc && dst) {
		drop(f, dst);
		src = find(f, from);
	}
	for (int i = 0; !rc && i < f->n; i++) {
		char *p = f->entries[i].path, *moved;
		if (strncmp(p, from, n) || (p[n] && p[n] != '/'))
			continue;
		if (asprintf(&moved, "%s%s", to, p + n) < 0)
			rc = -ENOMEM;
		else {
			free(p);
			f->entries[i].path = moved;
			if (f->move_changes_etags && !f->entries[i].is_dir)
				new_etag(f, &f->entries[i]);
		}
	}
	end(f, FAKE_MOVE);
	return rc;
}

/* As S3's: the marker made unless one is there, the parent not checked. */
static int fake_mkdir_listed(struct remote *r, const char *path)
{
	struct fake_remote *f = fake_of(r);
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_MKDIR_LISTED);
	if (!rc && find(f, path))
		rc = -EEXIST;
	if (!rc)
		add(f, path, true);
	end(f, FAKE_MKDIR_LISTED);
	return rc;
}

/* As S3's: the folder entry goes, whatever is in it; a missing one is no error. */
static int fake_rmdir_listed(struct remote *r, const char *path)
{
	struct fake_remote *f = fake_of(r);
	struct fake_entry *e;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_RMDIR_LISTED);
	e = rc ? NULL : find(f, path);
	if (e && e->is_dir)
		drop(f, e);
	else if (e)
		rc = -ENOTDIR;
	end(f, FAKE_RMDIR_LISTED);
	return rc;
}

/* As WebDAV's: a DELETE conditional on the ETag; anything else is -ESTALE. */
static int fake_remove_listed(struct remote *r, const char *path, const char *etag)
{
	struct fake_remote *f = fake_of(r);
	struct fake_entry *e;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = begin(f, FAKE_REMOVE_LISTED);
	e = rc ? NULL : find(f, path);
	if (!rc && (!e || e->is_dir || f->no_etags || !remote_etag_equal(e->etag, etag)))
		rc = -ESTALE;
	if (!rc)
		drop(f, e);
	end(f, FAKE_REMOVE_LISTED);
	return rc;
}

static void fake_destroy(struct remote *r)
{
	(void)r; /* the test frees it with fake_free */
}

static const struct remote_ops fake_ops = {
	.name = "fake",
	.head = fake_head,
	.list = fake_list,
	.get = fake_get_op,
	.put = fake_put,
	.mkdir = fake_mkdir_op,
	.rmdir = fake_rmdir,
	.remove = fake_remove,
	.move = fake_move,
	.destroy = fake_destroy,
	.mkdir_listed = fake_mkdir_listed,
	.rmdir_listed = fake_rmdir_listed,
	.remove_listed = fake_remove_listed,
};

struct fake_remote *fake_new(void)
{
	struct fake_remote *f = calloc(1, sizeof *f);

	f->ops = fake_ops;
	f->base.ops = &f->ops;
	f->base.location = strdup("fake://remote");
	pthread_mutex_init(&f->lock, NULL);
	return f;
}

void fake_free(struct fake_remote *f)
{
	while (f->n)
		drop(f, &f->entries[0]);
	pthread_mutex_destroy(&f->lock);
	free(f->base.location);
	free(f);
}

struct remote *fake_as_remote(struct fake_remote *f)
{
	return &f->base;
}

void fake_fail(struct fake_remote *f, int err)
{
	pthread_mutex_lock(&f->lock);
	f->fail = err;
	pthread_mutex_unlock(&f->lock);
}

void fake_fail_op(struct fake_remote *f, enum fake_op op, int err)
{
	pthread_mutex_lock(&f->lock);
	f->fail_op[op] = err;
	pthread_mutex_unlock(&f->lock);
}

void fake_delay(struct fake_remote *f, enum fake_op op, unsigned ms)
{
	pthread_mutex_lock(&f->lock);
	f->delay_ms[op] = ms;
	pthread_mutex_unlock(&f->lock);
}

void fake_without_etags(struct fake_remote *f)
{
	pthread_mutex_lock(&f->lock);
	f->no_etags = true;
	pthread_mutex_unlock(&f->lock);
}

void fake_without_listed_ops(struct fake_remote *f)
{
	f->ops.mkdir_listed = NULL;
	f->ops.rmdir_listed = NULL;
	f->ops.remove_listed = NULL;
}

void fake_move_changes_etags(struct fake_remote *f)
{
	pthread_mutex_lock(&f->lock);
	f->move_changes_etags = true;
	pthread_mutex_unlock(&f->lock);
}

void fake_set_location(struct fake_remote *f, const char *location)
{
	free(f->base.location);
	f->base.location = strdup(location);
}

unsigned fake_count(struct fake_remote *f, enum fake_op op)
{
	unsigned n;

	pthread_mutex_lock(&f->lock);
	n = f->counts[op];
	pthread_mutex_unlock(&f->lock);
	return n;
}

unsigned fake_max_in_flight(struct fake_remote *f, enum fake_op op)
{
	unsigned n;

	pthread_mutex_lock(&f->lock);
	n = f->max_in_flight[op];
	pthread_mutex_unlock(&f->lock);
	return n;
}

void fake_reset_counts(struct fake_remote *f)
{
	pthread_mutex_lock(&f->lock);
	memset(f->counts, 0, sizeof f->counts);
	memset(f->max_in_flight, 0, sizeof f->max_in_flight);
	pthread_mutex_unlock(&f->lock);
}

void fake_set(struct fake_remote *f, const char *path, const void *data, size_t len)
{
	struct fake_entry *e;

	pthread_mutex_lock(&f->lock);
	e = find(f, path);
	if (!e)
		e = add(f, path, false);
	set_data(f, e, data, len);
	pthread_mutex_unlock(&f->lock);
}

void fake_mkdir(struct fake_remote *f, const char *path)
{
	pthread_mutex_lock(&f->lock);
	if (!find(f, path))
		add(f, path, true);
	pthread_mutex_unlock(&f->lock);
}

void fake_delete(struct fake_remote *f, const char *path)
{
	struct fake_entry *e;

	pthread_mutex_lock(&f->lock);
	e = find(f, path);
	if (e)
		drop(f, e);
	pthread_mutex_unlock(&f->lock);
}

uint8_t *fake_get(struct fake_remote *f, const char *path, size_t *len)
{
	struct fake_entry *e;
	uint8_t *copy = NULL;

	pthread_mutex_lock(&f->lock);
	e = find(f, path);
	if (e && !e->is_dir) {
		copy = malloc(e->len ? e->len : 1);
		memcpy(copy, e->data, e->len);
		*len = e->len;
	}
	pthread_mutex_unlock(&f->lock);
	return copy;
}

bool fake_has(struct fake_remote *f, const char *path)
{
	bool has;

	pthread_mutex_lock(&f->lock);
	has = find(f, path) != NULL;
	pthread_mutex_unlock(&f->lock);
	return has;
}
