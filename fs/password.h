/* Where a password comes from: --password-file, --extpass, the environment
 * variable UMBRAFS_PASSWORD, or a prompt on the terminal, in that order. */
#ifndef PASSWORD_H
#define PASSWORD_H

#include <stdbool.h>

struct password_source {
	const char *file;    /* --password-file FILE: its first line */
	const char *extpass; /* --extpass CMD: first line of its output */
	/* what to suggest when there is no terminal to ask on; NULL: the usual
	 * --password-file, --extpass or UMBRAFS_PASSWORD */
	const char *flag_hint;
};

/* Get a password into *out (locked memory; release with password_free).
 * prompt: what the terminal prompt says; confirm: ask twice on a terminal.
 * Returns 0, or -1 with a malloc'd message in *err. */
int password_get(const struct password_source *src, const char *prompt, bool confirm,
		 char **out, char **err);
void password_free(char *pw);

#endif
