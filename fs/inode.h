/* The inode table: one node per file, directory or symlink the kernel knows.
 * A node holds where it is (parent, encrypted entry name) rather than a
 * path, so a rename is a pointer move and an open file keeps its state. */
#ifndef INODE_H
#define INODE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/vault.h"

enum node_kind { NODE_FILE, NODE_DIR, NODE_SYMLINK };

struct open_file; /* file.h */

struct node {
	fuse_ino_t ino;
	enum node_kind kind;
	struct node *parent;   /* NULL for the root and for unlinked nodes */
	char *stored;          /* entry name in the parent's content folder (.c9r/.c9s) */
	bool shortened;        /* stored is a .c9s folder */
	char dir_id[VAULT_DIR_ID_LEN + 1]; /* directories: their id ("" for the root) */
	char *content_dir;     /* directories: "d/AB/CDE..." */
	/* directories removed while the kernel still holds them: their last
	 * attributes, for fstat of an open handle (under the table lock) */
	bool removed_attr_kept;
	struct store_attr removed_attr;

	/* Lifetime, under the table lock: freed when all three are zero. */
	uint64_t nlookup;      /* kernel references (lookup minus forget) */
	unsigned children;     /* nodes whose parent this is */
	unsigned opens;        /* open file handles */

	/* Files. Locks, in this order; none is taken while holding the table
	 * lock. open_lock: opening and closing the object (of and closed_*).
	 * lock: content I/O on the open object, held across store requests
	 * (a whole fetch or upload on a remote store); reads share it, the
	 * rest hold it alone. attr_lock: what stat answers, never held across
	 * a store request. */
	pthread_mutex_t open_lock;
	pthread_rwlock_t lock;
	pthread_mutex_t attr_lock;
	struct open_file *of;  /* files with opens > 0; set under open_lock and lock */
	/* under attr_lock: the open object's attributes and cleartext size, set
	 * by whoever changes them while holding lock for writing, so that stat
	 * need not wait for lock */
	bool of_attr_kept;
	int of_attr_err;
	struct store_attr of_attr;
	uint64_t of_size;
	/* under open_lock: the object when its last handle closed; reopened
	 * unchanged, the kernel may keep the file's page cache */
	bool closed_seen;
	uint64_t closed_size;
	struct timespec closed_mtime;

	struct node *hash_next;
	struct node *all_prev, *all_next; /* every node but the root, for teardown */
};

struct node_table;

/* A table whose root directory has content folder root_dir. */
struct node_table *node_table_new(const char *root_content_dir);
void node_table_free(struct node_table *t);

/* The table lock guards the tree shape (parent, stored, counts, hashing).
 * It is held for short steps only: never across a store request, and never
 * while waiting for a node's locks, which may be held across one. */
void node_table_lock(struct node_table *t);
void node_table_unlock(struct node_table *t);

/* The tree change lock is held across an unlink, rmdir or rename with its
 * store requests, so that these run one at a time; lookups and stats do not
 * wait for it. Order: tree change lock before the table lock. */
void node_tree_change_lock(struct node_table *t);
void node_tree_change_unlock(struct node_table *t);

struct node *node_root(struct node_table *t);
/* The node for an inode number the kernel gave us. */
struct node *node_get(struct node_table *t, fuse_ino_t ino);

/* Under the table lock: the child named stored of parent, or NULL. */
struct node *node_find(struct node_table *t, struct node *parent, const char *stored);

/* Under the table lock: find or create the child, counting one kernel lookup.
 * The caller fills kind (and dir_id/content_dir for directories) of a new
 * node, told by *created. NULL when out of memory. */
struct node *node_lookup(struct node_table *t, struct node *parent, const char *stored,
			 bool shortened, bool *created);

/* Under the table lock: move n under new_parent with a new entry name. */
int node_move(struct node_table *t, struct node *n, struct node *new_parent,
	      const char *stored, bool shortened);

/* Under the table lock: the entry is gone from the store; the node lives on
 * while the kernel or an open handle refers to it. */
void node_unlinked(struct node_table *t, struct node *n);

/* Under the table lock: drop kernel lookups / an open handle; may free n. */
void node_forget(struct node_table *t, struct node *n, uint64_t count);
void node_release(struct node_table *t, struct node *n);

/* Under the table lock: store path of n's entry in its parent's content
 * folder, optionally joined with a file inside it (leaf may be NULL).
 * malloc'd; NULL when unlinked or out of memory. */
char *node_entry_path(const struct node *n, const char *leaf);

/* Under the table lock: store path of the object holding n's content:
 * the file object, dir.c9r or symlink.c9r. */
char *node_object_path(const struct node *n);

/* Store path of the attributes' holder: content folder for directories, the
 * object otherwise. Under the table lock. */
char *node_attr_path(const struct node *n);

#endif
