/* AES-SIV (RFC 5297): deterministic authenticated encryption, used for names
 * and directory ids. Implemented as S2V over AES-CMAC plus AES-CTR, so the
 * empty plaintext (dirHash of the root) works, unlike OpenSSL 3.0's AES-SIV. */
#ifndef CRY_SIV_H
#define CRY_SIV_H

#include <stddef.h>
#include <stdint.h>

#define CRY_SIV_TAG_LEN 16

/* One associated-data component. */
struct cry_siv_ad {
	const uint8_t *data;
	size_t len;
};

/* key is K1 || K2 (K1 the CMAC key), key_len 32 (AES-128) or 64 (AES-256).
 * ad holds n_ad components (n_ad may be 0: no AD at all, which is not the same
 * as one empty component). out receives tag(16) || ciphertext, pt_len + 16 bytes. */
int cry_siv_encrypt(const uint8_t *key, size_t key_len,
		    const struct cry_siv_ad *ad, size_t n_ad,
		    const uint8_t *pt, size_t pt_len, uint8_t *out);

/* Inverse of cry_siv_encrypt: in is tag || ciphertext (in_len >= 16); pt_out
 * receives in_len - 16 bytes. Returns CRY_ERR_AUTH if the tag does not verify
 * (pt_out is then wiped), CRY_ERR_FORMAT if in_len < 16. */
int cry_siv_decrypt(const uint8_t *key, size_t key_len,
		    const struct cry_siv_ad *ad, size_t n_ad,
		    const uint8_t *in, size_t in_len, uint8_t *pt_out);

#endif
