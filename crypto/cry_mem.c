/* Locked, non-dumpable, wiped-on-free memory for key material. Each
 * allocation is its own anonymous mapping: page aligned, so mlock and
 * madvise cover exactly that memory and nothing is shared with the heap. */
#include "crypto/cry_mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/crypto.h>

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

void *cry_secure_alloc(size_t n)
{
	if (n > SIZE_MAX / 2)
		return NULL;
	size_t size = mapping_size(n);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mlock(p, size) != 0)
		warn_unlocked_once();
	/* Best effort: an old kernel without MADV_DONTDUMP still gets locked memory. */
	(void)madvise(p, size, MADV_DONTDUMP);
	return p;
}

void cry_secure_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	size_t size = mapping_size(n);
	OPENSSL_cleanse(p, size);
	munlock(p, size);
	munmap(p, size);
}
