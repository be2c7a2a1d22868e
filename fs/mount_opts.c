#include "fs/mount_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options of fstab and mount(8) that mean nothing to libfuse or the kernel
 * (libfuse would refuse them). A trailing '=' matches any value, "x-" any
 * option of that prefix. */
static const char *const fstab_only[] = {
	"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
	"owner", "group", "comment=", "x-",
};

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int is_fstab_only(const char *opt)
{
	size_t i, n;
	const char *known;
	int any_value;

	for (i = 0; i < sizeof(fstab_only) / sizeof(fstab_only[0]); i++) {
		known = fstab_only[i];
		n = strlen(known);
		any_value = known[n - 1] == '=' || known[n - 1] == '-';
		if (any_value ? starts_with(opt, known) : strcmp(opt, known) == 0)
			return 1;
	}
	return 0;
}

int parse_duration(const char *text, unsigned *seconds)
{
	char *end;
	unsigned long long n, unit = 1;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (n == 0 || n > 100ULL * 365 * 86400 / unit)
		return -1;
	*seconds = (unsigned)(n * unit);
	return 0;
}

static int append(char **list, const char *opt)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s%s", *list ? *list : "", *list ? "," : "", opt) < 0)
		return -1;
	free(*list);
	*list = s;
	return 0;
}

static int set_value(char **field, const char *opt, const char *name, char **err)
{
	const char *value = opt + strlen(name);

	if (!*value) {
		if (asprintf(err, "mount option %s needs a value", name) < 0)
			*err = NULL;
		return -1;
	}
	free(*field);
	*field = strdup(value);
	return *field ? 0 : -1;
}

static int take_option(struct mount_opts *m, const char *opt, char **err)
{
	if (starts_with(opt, "passfile="))
		return set_value(&m->passfile, opt, "passfile=", err);
	if (starts_with(opt, "extpass="))
		return set_value(&m->extpass, opt, "extpass=", err);
	if (starts_with(opt, "idle=")) {
		if (parse_duration(opt + 5, &m->idle_seconds) == 0)
			return 0;
		if (asprintf(err, "mount option %s: give a duration such as 30s, 10m or 1h", opt) < 0)
			*err = NULL;
		return -1;
	}
	if (!*opt || is_fstab_only(opt))
		return 0;
	return append(&m->fuse, opt);
}

int mount_opts_parse(const char *opts, struct mount_opts *out, char **err)
{
	char *copy, *opt, *save = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	*err = NULL;
	if (!opts)
		return 0;
	copy = strdup(opts);
	if (!copy)
		return -1;
	for (opt = strtok_r(copy, ",", &save); opt && rc == 0; opt = strtok_r(NULL, ",", &save))
		rc = take_option(out, opt, err);
	free(copy);
	if (rc == 0 && out->passfile && out->extpass) {
		*err = strdup("give passfile= or extpass=, not both");
		rc = -1;
	}
	if (rc)
		mount_opts_free(out);
	return rc;
}

void mount_opts_free(struct mount_opts *m)
{
	free(m->fuse);
	free(m->passfile);
	free(m->extpass);
	memset(m, 0, sizeof(*m));
}
