/* What the commands of the CLI share: the parsed command line, the exit
 * codes, and main.c's helpers for messages, stores and unlocking. Each
 * command beyond init/mount/info lives in its own file (cmd_passwd.c, fsck.c). */
#ifndef COMMANDS_H
#define COMMANDS_H

#include <stdbool.h>

#include "backends/store.h"
#include "crypto/cry_keys.h"
#include "fs/mount_opts.h"
#include "fs/password.h"
#include "fs/vault.h"

enum exit_code {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_PASSWORD = VAULT_ERR_PASSWORD,
	EXIT_INVALID = VAULT_ERR_INVALID,
	EXIT_PROBLEMS = 5, /* fsck: the vault has problems that were not repaired */
};

struct cli {
	const char *command;
	struct password_source password;
	const char *new_password_file; /* passwd --new-password-file */
	unsigned long scrypt_cost;     /* --scrypt-cost; 0: not given */
	const char *mount_opts;        /* -o as given */
	struct mount_opts mopts;       /* -o split into umbrafs's own and libfuse's */
	bool foreground, verbose, debug;
	bool repair, assume_yes;       /* fsck --repair, --yes */
	int argc;      /* operands after the options */
	char **argv;
};

/* "umbrafs: " + message + newline on stderr. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a usage error; returns EXIT_USAGE. */
int usage_error(const char *what);
/* Open the store named by url; an exit code. */
int open_store(const char *url, bool create, struct store **s);
/* Open the store c->argv[0] and unlock its vault with a password from the
 * user; an exit code. On success the caller closes v and destroys s. */
int unlock(const struct cli *c, struct store **s, struct vault **v);

/* --scrypt-cost into kdf->n (left alone when not given); an exit code. */
int scrypt_cost_option(const struct cli *c, struct cry_kdf_params *kdf);

int cmd_passwd(const struct cli *c);
int cmd_fsck(const struct cli *c);

#endif
