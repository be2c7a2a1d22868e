/* Conflict copies: when a remote object changed while we had a local version
 * of it, the local version is kept under a new cleartext name such as
 * "notes (conflict 2026-11-21 1530).txt" in the same directory. */
#ifndef CONFLICT_H
#define CONFLICT_H

#include <time.h>

#include "fs/vault.h"

/* The cleartext conflict name for name at time t, with copy number n (n > 1
 * appends " n" to tell several conflicts within one minute apart); at most
 * 255 bytes, cutting the base name (never inside a UTF-8 sequence).
 * malloc'd, NULL when out of memory. */
char *conflict_name(const char *name, time_t t, unsigned n);

/* cache_conflict_fn for a vault (ctx): the store path where the local version
 * of the object at path goes, with any .c9s folder made; NULL (and a log line)
 * when no such path can be made. */
char *conflict_object_path(void *vault, const char *path);

#endif
