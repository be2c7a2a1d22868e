#include "fs/inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/file.h"

#define HASH_BUCKETS_MIN 1024

struct node_table {
	pthread_mutex_t lock;
	pthread_mutex_t tree_change_lock;
	struct node root;
	struct node **buckets;
	size_t n_buckets;
	size_t count;
	struct node *all; /* list of every node but the root, hashed or unlinked */
};

static size_t hash_key(const struct node *parent, const char *stored, size_t n_buckets)
{
	uint64_t h = 1469598103934665603ULL ^ (uintptr_t)parent; /* FNV-1a */

	for (; *stored; stored++)
		h = (h ^ (unsigned char)*stored) * 1099511628211ULL;
	return (size_t)(h % n_buckets);
}

static void hash_insert(struct node_table *t, struct node *n)
{
	size_t b = hash_key(n->parent, n->stored, t->n_buckets);

	n->hash_next = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
}

static void hash_remove(struct node_table *t, struct node *n)
{
	struct node **p = &t->buckets[hash_key(n->parent, n->stored, t->n_buckets)];

	for (; *p; p = &(*p)->hash_next) {
		if (*p == n) {
			*p = n->hash_next;
			n->hash_next = NULL;
			t->count--;
			return;
		}
	}
}

/* Keep chains short: double the buckets when there are more nodes than buckets. */
static void hash_grow(struct node_table *t)
{
	size_t old_n = t->n_buckets, i;
	struct node **old = t->buckets;
	struct node **fresh = calloc(old_n * 2, sizeof(*fresh));

	if (!fresh)
		return; /* longer chains, still correct */
	t->buckets = fresh;
	t->n_buckets = old_n * 2;
	t->count = 0;
	for (i = 0; i < old_n; i++) {
		while (old[i]) {
			struct node *n = old[i];

			old[i] = n->hash_next;
			hash_insert(t, n);
		}
	}
	free(old);
}

static void node_locks_init(struct node *n)
{
	pthread_mutex_init(&n->open_lock, NULL);
	pthread_rwlock_init(&n->lock, NULL);
	pthread_mutex_init(&n->attr_lock, NULL);
}

static void node_locks_destroy(struct node *n)
{
	pthread_mutex_destroy(&n->open_lock);
	pthread_rwlock_destroy(&n->lock);
	pthread_mutex_destroy(&n->attr_lock);
}

struct node_table *node_table_new(const char *root_content_dir)
{
	struct node_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->n_buckets = HASH_BUCKETS_MIN;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	t->root.content_dir = strdup(root_content_dir);
	t->root.stored = strdup("");
	if (!t->buckets || !t->root.content_dir || !t->root.stored) {
		free(t->buckets);
		free(t->root.content_dir);
		free(t->root.stored);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->tree_change_lock, NULL);
	t->root.ino = FUSE_ROOT_ID;
	t->root.kind = NODE_DIR;
	t->root.nlookup = 1; /* never forgotten */
	node_locks_init(&t->root);
	return t;
}

static void node_free(struct node_table *t, struct node *n)
{
	if (n->all_prev)
		n->all_prev->all_next = n->all_next;
	else
		t->all = n->all_next;
	if (n->all_next)
		n->all_next->all_prev = n->all_prev;
	node_locks_destroy(n);
	free(n->stored);
	free(n->content_dir);
	free(n);
}

void node_table_free(struct node_table *t)
{
	if (!t)
		return;
	while (t->all) {
		file_close(t->all->of);
		node_free(t, t->all);
	}
	free(t->buckets);
	free(t->root.content_dir);
	free(t->root.stored);
	node_locks_destroy(&t->root);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->tree_change_lock);
	free(t);
}

void node_table_lock(struct node_table *t)
{
	pthread_mutex_lock(&t->lock);
}

void node_table_unlock(struct node_table *t)
{
	pthread_mutex_unlock(&t->lock);
}

void node_tree_change_lock(struct node_table *t)
{
	pthread_mutex_lock(&t->tree_change_lock);
}

void node_tree_change_unlock(struct node_table *t)
{
	pthread_mutex_unlock(&t->tree_change_lock);
}

struct node *node_root(struct node_table *t)
{
	return &t->root;
}

struct node *node_get(struct node_table *t, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &t->root : (struct node *)(uintptr_t)ino;
}

struct node *node_find(struct node_table *t, struct node *parent, const char *stored)
{
	struct node *n = t->buckets[hash_key(parent, stored, t->n_buckets)];

	for (; n; n = n->hash_next)
		if (n->parent == parent && strcmp(n->stored, stored) == 0)
			return n;
	return NULL;
}

struct node *node_lookup(struct node_table *t, struct node *parent, const char *stored,
			 bool shortened, bool *created)
{
	struct node *n = node_find(t, parent, stored);

	*created = false;
	if (n) {
		n->nlookup++;
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (!n || !(n->stored = strdup(stored))) {
		free(n);
		return NULL;
	}
	node_locks_init(n);
	n->ino = (fuse_ino_t)(uintptr_t)n;
	n->parent = parent;
	n->shortened = shortened;
	n->nlookup = 1;
	parent->children++;
	n->all_next = t->all;
	if (t->all)
		t->all->all_prev = n;
	t->all = n;
	if (t->count >= t->n_buckets)
		hash_grow(t);
	hash_insert(t, n);
	*created = true;
	return n;
}

static void maybe_free(struct node_table *t, struct node *n);

/* Drop n's reference on its parent. */
static void detach(struct node_table *t, struct node *n)
{
	struct node *p = n->parent;

	n->parent = NULL;
	if (p) {
		p->children--;
		maybe_free(t, p);
	}
}

static void maybe_free(struct node_table *t, struct node *n)
{
	if (n == &t->root || n->nlookup || n->children || n->opens)
		return;
	if (n->parent) {
		hash_remove(t, n);
		detach(t, n);
	}
	node_free(t, n);
}

int node_move(struct node_table *t, struct node *n, struct node *new_parent,
	      const char *stored, bool shortened)
{
	char *copy = strdup(stored);

	if (!copy)
		return -ENOMEM;
	hash_remove(t, n);
	free(n->stored);
	n->stored = copy;
	n->shortened = shortened;
	if (new_parent != n->parent) {
		struct node *old = n->parent;

		new_parent->children++;
		n->parent = new_parent;
		old->children--;
		hash_insert(t, n);
		maybe_free(t, old);
	} else {
		hash_insert(t, n);
	}
	return 0;
}

void node_unlinked(struct node_table *t, struct node *n)
{
	if (!n->parent)
		return;
	hash_remove(t, n);
	detach(t, n);
}

void node_forget(struct node_table *t, struct node *n, uint64_t count)
{
	if (n == &t->root)
		return;
	n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
	maybe_free(t, n);
}

void node_release(struct node_table *t, struct node *n)
{
	n->opens--;
	maybe_free(t, n);
}

char *node_entry_path(const struct node *n, const char *leaf)
{
	char *entry, *path;

	if (!n->parent)
		return NULL;
	entry = vault_join(n->parent->content_dir, n->stored);
	if (!entry || !leaf)
		return entry;
	path = vault_join(entry, leaf);
	free(entry);
	return path;
}

char *node_object_path(const struct node *n)
{
	switch (n->kind) {
	case NODE_DIR:
		return node_entry_path(n, VAULT_DIR_FILE);
	case NODE_SYMLINK:
		return node_entry_path(n, VAULT_SYMLINK_FILE);
	default:
		return node_entry_path(n, n->shortened ? VAULT_CONTENTS_FILE : NULL);
	}
}

char *node_attr_path(const struct node *n)
{
	return n->kind == NODE_DIR ? strdup(n->content_dir) : node_object_path(n);
}
