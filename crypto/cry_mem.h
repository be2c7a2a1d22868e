/* Memory for key material: locked in RAM (mlock, so never swapped), excluded
 * from core dumps (MADV_DONTDUMP), and wiped (OPENSSL_cleanse) when freed. */
#ifndef CRY_MEM_H
#define CRY_MEM_H

#include <stddef.h>

/* Zero-filled, locked allocation of n bytes; NULL when out of memory. If the
 * mlock limit is reached the memory is still returned (unlocked) and a warning
 * is printed once to stderr. */
void *cry_secure_alloc(size_t n);

/* Wipe and release memory from cry_secure_alloc. NULL is accepted. */
void cry_secure_free(void *p, size_t n);

/* Wipe n bytes of ordinary heap memory (a cleartext buffer) and free it. NULL
 * is accepted. Uses explicit_bzero, a memset the compiler must keep: on a
 * 128 KiB read buffer about six times faster than OPENSSL_cleanse's loop. */
void cry_wipe_free(void *p, size_t n);

#endif
