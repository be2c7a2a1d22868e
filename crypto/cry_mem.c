/* Locked, non-dumpable, wiped-on-free memory for key material. Small
 * allocations (file headers, name keys: at most SLOT_SIZE bytes) come from
 * locked arenas, because a mapping of their own costs five system calls per
 * allocation and free, once for every file opened. Larger ones are a mapping
 * each: page aligned, so mlock and madvise cover exactly that memory and
 * nothing is shared with the heap. */
#include "crypto/cry_mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/crypto.h>

#define SLOT_SIZE 64
#define ARENA_SIZE (64 * 1024)

/* A free slot holds the next free slot; arenas are kept for the process. */
struct free_slot {
	struct free_slot *next;
};

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_slot *free_slots;

static size_t mapping_size(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (n == 0)
		n = 1;
	return (n + page - 1) / page * page;
}

static void warn_unlocked_once(void)
{
	static atomic_flag warned = ATOMIC_FLAG_INIT;
	if (!atomic_flag_test_and_set(&warned))
		fputs("umbrafs: warning: cannot lock key memory in RAM (RLIMIT_MEMLOCK); "
		      "keys may be swapped to disk\n", stderr);
}

static void *map_locked(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mlock(p, size) != 0)
		warn_unlocked_once();
	/* Best effort: an old kernel without MADV_DONTDUMP still gets locked memory. */
	(void)madvise(p, size, MADV_DONTDUMP);
	return p;
}

/* Under slab_lock: a new arena cut into free slots. */
static int slab_grow(void)
{
	char *arena = map_locked(ARENA_SIZE);
	if (arena == NULL)
		return -1;
	for (size_t off = 0; off < ARENA_SIZE; off += SLOT_SIZE) {
		struct free_slot *s = (struct free_slot *)(arena + off);
		s->next = free_slots;
		free_slots = s;
	}
	return 0;
}

static void *slab_alloc(void)
{
	struct free_slot *s = NULL;

	pthread_mutex_lock(&slab_lock);
	if (free_slots != NULL || slab_grow() == 0) {
		s = free_slots;
		free_slots = s->next;
	}
	pthread_mutex_unlock(&slab_lock);
	if (s != NULL)
		memset(s, 0, SLOT_SIZE);
	return s;
}

static void slab_free(void *p)
{
	struct free_slot *s = p;

	OPENSSL_cleanse(p, SLOT_SIZE);
	pthread_mutex_lock(&slab_lock);
	s->next = free_slots;
	free_slots = s;
	pthread_mutex_unlock(&slab_lock);
}

void *cry_secure_alloc(size_t n)
{
	if (n <= SLOT_SIZE)
		return slab_alloc();
	if (n > SIZE_MAX / 2)
		return NULL;
	return map_locked(mapping_size(n));
}

void cry_secure_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	if (n <= SLOT_SIZE) {
		slab_free(p);
		return;
	}
	size_t size = mapping_size(n);
	OPENSSL_cleanse(p, size);
	munlock(p, size);
	munmap(p, size);
}

void cry_wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}
