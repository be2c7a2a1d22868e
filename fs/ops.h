/* The FUSE low-level operations of a mounted vault. */
#ifndef OPS_H
#define OPS_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>

#include "fs/inode.h"
#include "fs/vault.h"

struct dir_listing; /* an open directory handle (ops.c) */

struct fs {
	struct vault *vault;
	struct node_table *nodes;
	double timeout; /* seconds the kernel may cache entries and attributes */
	bool chown_new; /* running as root: new nodes belong to the caller */
	bool quick_store; /* store_is_quick: requests may be served as read (loop.h) */
	atomic_uint_fast64_t requests; /* handler calls so far: activity for -o idle= */
	atomic_int_fast64_t full_logged_at; /* when a full store was last logged */
	/* directory handles not released yet: fs_destroy frees what is left,
	 * as the kernel may drop a RELEASEDIR queued when it unmounts */
	pthread_mutex_t open_dirs_lock;
	struct dir_listing *open_dirs;
};

/* Set up fs for vault v; -errno on failure. */
int fs_init(struct fs *fs, struct vault *v);
void fs_destroy(struct fs *fs);

/* loop.h's quick(): may the thread reading requests serve this one itself,
 * or could it hold up the requests behind it? fs is the struct fs. */
bool fs_request_is_quick(void *fs, uint32_t opcode, uint32_t size);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
