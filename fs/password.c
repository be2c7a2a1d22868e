#include "fs/password.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/cry_mem.h"

#define PASSWORD_MAX 4096

static char *errorf(const char *fmt, const char *a)
{
	char *s = NULL;

	if (asprintf(&s, fmt, a, strerror(errno)) < 0)
		return NULL;
	return s;
}

/* First line of stream, without its line ending, into locked memory. Reads
 * byte by byte so that nothing of the password lands in stdio's buffers
 * beyond what the stream itself already holds. */
static char *read_first_line(FILE *f)
{
	char *pw = cry_secure_alloc(PASSWORD_MAX);
	size_t n = 0;
	int c;

	if (!pw)
		return NULL;
	while ((c = getc(f)) != EOF && c != '\n' && n < PASSWORD_MAX - 1)
		pw[n++] = (char)c;
	if (n > 0 && pw[n - 1] == '\r')
		n--;
	pw[n] = '\0';
	return pw;
}

static int from_file(const char *path, char **out, char **err)
{
	FILE *f = fopen(path, "re");

	if (!f) {
		*err = errorf("cannot read password file %s: %s", path);
		return -1;
	}
	*out = read_first_line(f);
	fclose(f);
	return *out ? 0 : -1;
}

static int from_command(const char *cmd, char **out, char **err)
{
	FILE *p = popen(cmd, "re");
	int status;

	if (!p) {
		*err = errorf("cannot run --extpass command %s: %s", cmd);
		return -1;
	}
	*out = read_first_line(p);
	while (getc(p) != EOF) /* let the command finish writing */
		;
	status = pclose(p);
	if (status != 0) {
		password_free(*out);
		*out = NULL;
		errno = ECHILD;
		if (asprintf(err, "--extpass command failed (status %d): %s", status, cmd) < 0)
			*err = NULL;
		return -1;
	}
	return *out ? 0 : -1;
}

static char *prompt_tty(FILE *tty, const char *prompt)
{
	struct termios old, quiet;
	char *pw;
	bool echo_off;

	fprintf(tty, "%s", prompt);
	fflush(tty);
	echo_off = tcgetattr(fileno(tty), &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	}
	pw = read_first_line(tty);
	if (echo_off)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	return pw;
}

static int from_terminal(const char *prompt, bool confirm, const char *hint, char **out,
			 char **err)
{
	FILE *tty = fopen("/dev/tty", "r+e");
	char *again;

	if (!tty) {
		if (asprintf(err, "no password given and no terminal to ask on: use %s",
			     hint ? hint : "--password-file, --extpass or UMBRAFS_PASSWORD") < 0)
			*err = NULL;
		return -1;
	}
	setvbuf(tty, NULL, _IONBF, 0);
	*out = prompt_tty(tty, prompt);
	if (*out && confirm) {
		again = prompt_tty(tty, "Repeat password: ");
		if (!again || strcmp(*out, again) != 0) {
			password_free(*out);
			*out = NULL;
			*err = strdup("the passwords do not match");
		}
		password_free(again);
	}
	fclose(tty);
	return *out ? 0 : -1;
}

int password_get(const struct password_source *src, const char *prompt, bool confirm,
		 char **out, char **err)
{
	const char *env = getenv("UMBRAFS_PASSWORD");
	int rc;

	*out = NULL;
	*err = NULL;
	if (src->file)
		rc = from_file(src->file, out, err);
	else if (src->extpass)
		rc = from_command(src->extpass, out, err);
	else if (env) {
		*out = strlen(env) < PASSWORD_MAX ? cry_secure_alloc(PASSWORD_MAX) : NULL;
		if (*out)
			strcpy(*out, env);
		rc = *out ? 0 : -1;
	} else
		rc = from_terminal(prompt, confirm, src->flag_hint, out, err);
	if (rc == 0 && (*out)[0] == '\0') {
		password_free(*out);
		*out = NULL;
		*err = strdup("the password is empty");
		return -1;
	}
	if (rc != 0 && !*err)
		*err = strdup("out of memory reading the password");
	return rc;
}

void password_free(char *pw)
{
	if (pw)
		cry_secure_free(pw, PASSWORD_MAX);
}
