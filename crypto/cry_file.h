/* Whole small objects in the file content format (dirid.c9r, symlink.c9r):
 * a header plus as many chunks as needed, in one buffer. No I/O. */
#ifndef CRY_FILE_H
#define CRY_FILE_H

#include <stddef.h>
#include <stdint.h>
#include "crypto/cry_keys.h"

/* Encrypt len bytes into a malloc'd object (*out, *out_len) with a fresh header. */
int cry_file_encrypt(const struct cry_masterkey *mk, const uint8_t *pt, size_t len,
		     uint8_t **out, size_t *out_len);

/* Authenticate and decrypt a whole object into a malloc'd buffer, NUL-terminated
 * for convenience (the NUL is not counted in *out_len). Accepts a trailing empty
 * chunk. CRY_ERR_AUTH or CRY_ERR_FORMAT when it does not verify. */
int cry_file_decrypt(const struct cry_masterkey *mk, const uint8_t *in, size_t len,
		     uint8_t **out, size_t *out_len);

#endif
