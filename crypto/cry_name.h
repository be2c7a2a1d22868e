/* Name transform (FORMAT.md sections 5-7): AES-SIV encrypted node names,
 * directory-id hashes, and the shortening of long names. No I/O. */
#ifndef CRY_NAME_H
#define CRY_NAME_H

#include <stddef.h>
#include "crypto/cry_keys.h"

#define CRY_DIR_HASH_LEN 32          /* BASE32(SHA1) characters */
#define CRY_SHORT_NAME_LEN 32        /* b64url(SHA1) (28) + ".c9s" */
#define CRY_MIN_ENTRY_NAME_LEN 28    /* shorter entries are not vault entries */

/* Name cipher state: the AES-SIV key (mac || enc) in locked memory.
 * Safe to use from several threads at once. */
struct cry_names;

struct cry_names *cry_names_new(const struct cry_masterkey *mk);
void cry_names_free(struct cry_names *nm);

/* Encrypt the cleartext name (UTF-8, NFC-normalised here) of a node whose
 * parent directory has id dir_id ("" for the root) into its ".c9r" name.
 * *out is malloc'd. CRY_ERR_FORMAT if name is not valid UTF-8. */
int cry_name_encrypt(const struct cry_names *nm, const char *dir_id, const char *name,
		     char **out);

/* The Unicode normal form a name is encrypted in. Writers use NFC, the
 * format's rule; readers also try NFD to find entries that other tools
 * (pycryptomator, for one) stored that way. */
enum cry_name_form { CRY_NAME_NFC, CRY_NAME_NFD };

/* cry_name_encrypt in the given normal form. */
int cry_name_encrypt_form(const struct cry_names *nm, const char *dir_id, const char *name,
			  enum cry_name_form form, char **out);

/* Decrypt a directory entry's name (with ".c9r" suffix; missing '=' padding
 * and a sync-conflict suffix such as "== (1).c9r" tolerated: the leading
 * base64url run is used). *out is malloc'd. CRY_ERR_FORMAT if it is not an
 * encrypted name, CRY_ERR_AUTH if it does not authenticate in this dir_id. */
int cry_name_decrypt(const struct cry_names *nm, const char *dir_id, const char *c9r,
		     char **out);

/* dirHash(dir_id): 32 upper-case base32 characters + NUL into out. */
int cry_dir_hash(const struct cry_names *nm, const char *dir_id,
		 char out[CRY_DIR_HASH_LEN + 1]);

/* Shortened entry name of a ".c9r" name: b64url_padded(SHA1(c9r)) + ".c9s". */
void cry_name_shorten(const char *c9r, char out[CRY_SHORT_NAME_LEN + 1]);

#endif
