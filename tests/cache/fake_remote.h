/* An in-memory remote for the cache's unit tests: objects and folders in a
 * table, ETags that change with every write, WebDAV-like rules (a put needs
 * its folder; rmdir only of empty folders), and switches: fail every request,
 * change an object behind the cache's back, count requests by kind. Of the
 * _listed requests (remote.h) mkdir and rmdir act as S3's do, remove as
 * WebDAV's (conditional on the ETag). */
#ifndef FAKE_REMOTE_H
#define FAKE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/remote.h"

enum fake_op { FAKE_HEAD, FAKE_LIST, FAKE_GET, FAKE_PUT, FAKE_MKDIR, FAKE_RMDIR, FAKE_REMOVE,
	       FAKE_MOVE, FAKE_MKDIR_LISTED, FAKE_RMDIR_LISTED, FAKE_REMOVE_LISTED, FAKE_OPS };

struct fake_remote;

/* A new empty remote. The cache "destroys" it when done; the test frees it
 * with fake_free after that (so it can look at it after a crash or a close). */
struct fake_remote *fake_new(void);
void fake_free(struct fake_remote *f);
struct remote *fake_as_remote(struct fake_remote *f);

/* Make every request fail with err (0: work again). */
void fake_fail(struct fake_remote *f, int err);
/* Make requests of one kind fail with err (0: work again). */
void fake_fail_op(struct fake_remote *f, enum fake_op op, int err);
/* Requests of one kind take ms longer (after their work is done). */
void fake_delay(struct fake_remote *f, enum fake_op op, unsigned ms);
/* A server that gives no ETags at all. */
void fake_without_etags(struct fake_remote *f);
/* Offer none of the _listed requests (as WebDAV offers no mkdir_listed);
 * before the cache is opened. */
void fake_without_listed_ops(struct fake_remote *f);
/* Moves give the moved objects new ETags (as S3's copy does). */
void fake_move_changes_etags(struct fake_remote *f);
/* Another URL for messages and for the cache folder's owner (default "fake://remote"). */
void fake_set_location(struct fake_remote *f, const char *location);
/* Requests of one kind so far; the most of them in flight at once. */
unsigned fake_count(struct fake_remote *f, enum fake_op op);
unsigned fake_max_in_flight(struct fake_remote *f, enum fake_op op);
void fake_reset_counts(struct fake_remote *f);

/* Behind the cache's back: set (create or replace) an object, make a folder,
 * delete an object or a folder entry (not what is below it). */
void fake_set(struct fake_remote *f, const char *path, const void *data, size_t len);
void fake_mkdir(struct fake_remote *f, const char *path);
void fake_delete(struct fake_remote *f, const char *path);
/* The content of an object (a malloc'd copy) and its length; NULL if none. */
uint8_t *fake_get(struct fake_remote *f, const char *path, size_t *len);
bool fake_has(struct fake_remote *f, const char *path);

#endif
