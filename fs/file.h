/* Open file state and chunk I/O: cleartext byte ranges become reads and
 * writes of whole encrypted chunks. The functions that take a node expect
 * n->of set and n->lock held: for reading by file_read (reads of one file
 * run in parallel), for writing by the others. */
#ifndef FILE_H
#define FILE_H

#include <stdint.h>
#include <sys/types.h>

#include "fs/inode.h"

struct open_file {
	struct store_obj *obj;
	struct cry_file_header *header; /* locked memory */
	uint64_t size;                  /* cleartext size */
	const struct vault *vault;
	char *path;                     /* store path when opened, for log lines */
};

/* Open the object at path (a new empty file when create: fails with -EEXIST
 * if there is one) and read its header. -EIO with a log line when the header
 * or the object size is damaged. */
int file_open(const struct vault *v, const char *path, bool create, struct open_file **out);
/* Close the object; its deferred errors are logged. */
void file_close(struct open_file *of);

ssize_t file_read(struct node *n, char *buf, size_t len, uint64_t off);
ssize_t file_write(struct node *n, const char *buf, size_t len, uint64_t off);
int file_truncate(struct node *n, uint64_t size);
int file_fsync(struct node *n, bool datasync);

#endif
