/* umbrafs: the command line. Each command is one function; errors are one
 * line on stderr and an exit code (see EXIT STATUS in umbrafs(1)). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fuse_lowlevel.h>

#include "backends/cache.h"
#include "backends/store.h"
#include "crypto/cry_keys.h"
#include "fs/commands.h"
#include "fs/idle.h"
#include "fs/log.h"
#include "fs/loop.h"
#include "fs/ops.h"
#include "fs/password.h"
#include "fs/vault.h"

static const char usage_text[] =
	"Usage: umbrafs COMMAND [OPTIONS] ARGS\n"
	"\n"
	"Commands:\n"
	"  init  STORE               create a vault\n"
	"  mount STORE MOUNTPOINT    mount a vault (unmount: fusermount3 -u MOUNTPOINT)\n"
	"  info  STORE               show the vault's format, key cost and counts\n"
	"  passwd STORE              change the password (no content is re-encrypted)\n"
	"  fsck  STORE               check every name, header and chunk of the vault\n"
	"\n"
	"STORE is a folder path, file://PATH, webdav://[USER@]HOST[:PORT]/PATH,\n"
	"webdavs://... (https) or s3://BUCKET[/PREFIX]. \"umbrafs STORE MOUNTPOINT -o OPTS\"\n"
	"(as mount.fuse3 runs it) and mount.umbrafs (as mount(8) runs it) mount too.\n"
	"\n"
	"Options:\n"
	"  --password-file FILE  read the password from the first line of FILE\n"
	"  --extpass CMD         read the password from the first line CMD prints\n"
	"  --scrypt-cost N       init, passwd: scrypt cost parameter N (default 32768;\n"
	"                        passwd keeps the vault's)\n"
	"  --new-password-file FILE  passwd: read the new password from FILE\n"
	"  --repair              fsck: offer to repair what can be repaired safely\n"
	"  -y, --yes             fsck --repair: repair without asking\n"
	"  --cache-dir DIR       remote stores: the cache folder (default\n"
	"                        $XDG_CACHE_HOME/umbrafs/ID, one per store)\n"
	"  --cache-size SIZE     remote stores: cache size limit, e.g. 500M, 2G (default 4G)\n"
	"  --insecure            remote stores: do not verify TLS certificates\n"
	"  -f, --foreground      mount: stay in the foreground, log to stderr\n"
	"  -o OPTS               mount: options such as ro, allow_other, default_permissions,\n"
	"                        idle=DURATION (unmount when unused, e.g. 10m),\n"
	"                        passfile=FILE, extpass=CMD\n"
	"  -v, --verbose         log debug messages\n"
	"  -d, --debug           mount: show FUSE requests (implies -f)\n"
	"  -h, --help            show this help\n"
	"  -V, --version         show the version\n"
	"\n"
	"The password can also come from the environment variable UMBRAFS_PASSWORD.\n"
	"See umbrafs(1).\n";

void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("umbrafs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_error(const char *what)
{
	fail("%s (see umbrafs --help)", what);
	return EXIT_USAGE;
}

/* How remote stores are opened: --cache-dir, --cache-size, --insecure. */
static struct cache_options cache_options;
static struct store_url_options store_options = { .cache = &cache_options };

/* The backends' log lines go where the mount's go (syslog in the background). */
static void log_backend_line(int prio, const char *line)
{
	log_msg(prio, "%s", line);
}

/* SIZE of --cache-size: a number of bytes with an optional K, M, G or T
 * (powers of 1024). Returns 0, or -1 when it is no size. */
static int parse_size(const char *text, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	unsigned long long n;
	const char *unit;
	char *end;

	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno || end == text || !n || (*end && end[1]))
		return -1;
	unit = *end ? strchr(units, *end & ~0x20) : NULL;
	if (*end && !unit)
		return -1;
	for (int shift = unit ? (int)(unit - units + 1) * 10 : 0; shift > 0; shift -= 10) {
		if (n > (ULLONG_MAX >> 10))
			return -1;
		n <<= 10;
	}
	*bytes = n;
	return 0;
}

int open_store(const char *url, bool create, struct store **s)
{
	struct store_url_options o = store_options;
	char *err = NULL;
	int rc;

	o.create = create;
	rc = store_open_url(url, &o, s, &err);

	if (rc) {
		fail("%s", err ? err : strerror(-rc));
		free(err);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* An unlocked vault's plaintext sits in ordinary heap buffers: a core dump
 * would write it to disk, and a debugger of the same user could read it. A
 * non-dumpable process gets neither; its /proc files then belong to root. */
static int forbid_core_dumps(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* Open the store and unlock its vault with a password from the user. */
int unlock(const struct cli *c, struct store **s, struct vault **v)
{
	char *pw = NULL, *err = NULL;
	int rc = forbid_core_dumps();

	if (!rc)
		rc = open_store(c->argv[0], false, s);
	if (rc)
		return rc;
	if (password_get(&c->password, "Password: ", false, &pw, &err)) {
		fail("%s", err ? err : "cannot read the password");
		free(err);
		store_destroy(*s);
		return EXIT_ERROR;
	}
	rc = vault_open(*s, pw, v, &err);
	password_free(pw);
	if (rc) {
		fail("%s", err ? err : "cannot open the vault");
		free(err);
		store_destroy(*s);
	}
	return rc;
}

int scrypt_cost_option(const struct cli *c, struct cry_kdf_params *kdf)
{
	unsigned long n = c->scrypt_cost;

	if (!n)
		return EXIT_OK;
	if (n < 2 || (n & (n - 1)) || n > (1UL << 24))
		return usage_error("--scrypt-cost must be a power of two from 2 to 16777216");
	kdf->n = n;
	return EXIT_OK;
}

static int cmd_init(const struct cli *c)
{
	struct cry_kdf_params kdf = { .n = CRY_KDF_DEFAULT_N, .r = CRY_KDF_DEFAULT_R };
	struct store *s;
	char *pw = NULL, *err = NULL;
	int rc;

	if (c->argc != 1)
		return usage_error("init takes one STORE");
	rc = scrypt_cost_option(c, &kdf);
	if (!rc)
		rc = open_store(c->argv[0], true, &s);
	if (rc)
		return rc;
	/* refuse a folder in use before asking for a password */
	rc = vault_check_empty(s, &err);
	if (!rc && password_get(&c->password, "New password: ", true, &pw, &err) != 0)
		rc = EXIT_ERROR;
	if (!rc)
		rc = vault_create(s, pw, &kdf, &err);
	password_free(pw);
	if (rc)
		fail("%s", err ? err : "cannot create the vault");
	else
		printf("created a vault in %s\n", s->location);
	free(err);
	store_destroy(s);
	return rc;
}

/* The cache folder of a remote store: what it holds, what waits for upload. */
static void print_cache_use(struct store *s)
{
	struct cache_stats st;
	char *folder = NULL;
	int rc = store_cache_folder_stats(s, &st, &folder);

	if (rc == 0 || rc == -ENOENT) {
		printf("cache: %s%s\n", folder, rc ? " (not made yet)" : "");
		printf("cache use: %.1f MiB in %llu objects\n", st.bytes / 1048576.0,
		       (unsigned long long)st.objects);
		printf("pending uploads: %llu (%.1f MiB)\n", (unsigned long long)st.pending_uploads,
		       st.pending_bytes / 1048576.0);
	} else {
		printf("cache: cannot read it: %s\n", strerror(-rc));
	}
	free(folder);
}

static int cmd_info(const struct cli *c)
{
	struct cry_vault_config cfg;
	struct cry_kdf_params kdf;
	struct vault_counts counts;
	struct store *s;
	char *err = NULL;
	int rc;

	if (c->argc != 1)
		return usage_error("info takes one STORE");
	rc = open_store(c->argv[0], false, &s);
	if (rc)
		return rc;
	rc = vault_describe(s, &cfg, &kdf, &err);
	if (!rc && vault_count(s, &counts) != 0)
		rc = EXIT_ERROR;
	if (rc) {
		fail("%s", err ? err : "cannot read the vault");
	} else {
		printf("store: %s (%s)\n", s->location, s->ops->name);
		printf("vault format: %d\n", cfg.format);
		printf("cipher combo: %s\n", cfg.cipher_combo);
		printf("shortening threshold: %d\n", cfg.shortening_threshold);
		printf("scrypt: N=%llu r=%u\n", (unsigned long long)kdf.n, kdf.r);
		printf("directories: %llu\n", (unsigned long long)counts.directories);
		printf("files: %llu\n", (unsigned long long)counts.files);
		printf("symlinks: %llu\n", (unsigned long long)counts.symlinks);
		if (store_is_cache(s))
			print_cache_use(s);
	}
	free(err);
	store_destroy(s);
	return rc;
}

/* A mountpoint must be an existing folder that nothing is mounted on. */
static int check_mountpoint(const char *path)
{
	struct stat st, parent_st;
	char *copy = strdup(path);
	int rc = EXIT_OK;

	if (!copy)
		return EXIT_ERROR;
	if (stat(path, &st) != 0) {
		fail("mountpoint %s: %s", path, strerror(errno));
		rc = EXIT_ERROR;
	} else if (!S_ISDIR(st.st_mode)) {
		fail("mountpoint %s is not a folder", path);
		rc = EXIT_ERROR;
	} else if (stat(dirname(copy), &parent_st) == 0 &&
		   (st.st_dev != parent_st.st_dev || st.st_ino == parent_st.st_ino)) {
		fail("mountpoint %s is busy: something is mounted there already "
		     "(unmount it with fusermount3 -u %s)", path, path);
		rc = EXIT_ERROR;
	}
	free(copy);
	return rc;
}

/* Background mounts fork first, so that the keys are made (and mlocked) in
 * the process that serves the mount; the parent waits for one status byte
 * and exits with it, so that errors still reach the caller. */
static int status_fd = -1;

static int start_background(void)
{
	int fds[2];
	unsigned char status = EXIT_ERROR;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		fail("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		status_fd = fds[1];
		return 0;
	}
	close(fds[1]);
	if (read(fds[0], &status, 1) != 1)
		waitpid(pid, NULL, 0); /* it died without a word */
	exit(status);
}

static void report_status(int code)
{
	unsigned char status = (unsigned char)code;

	if (status_fd < 0)
		return;
	if (write(status_fd, &status, 1) != 1)
		log_err("cannot report the mount status: %s", strerror(errno));
	close(status_fd);
	status_fd = -1;
}

/* Leave the terminal: the parent process reports success and exits. */
static void detach(void)
{
	int null = open("/dev/null", O_RDWR);

	setsid();
	if (chdir("/") != 0)
		log_err("chdir /: %s", strerror(errno));
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	report_status(EXIT_OK);
}

/* "-o" option text for the kernel and libfuse: the user's options plus the
 * file system's names, with ',' and '\' in the store location escaped. */
static char *fuse_options(const struct cli *c, const char *location)
{
	size_t n = strlen(location);
	char *esc = malloc(2 * n + 1), *opts = NULL, *p = esc;

	if (!esc)
		return NULL;
	for (; *location; location++) {
		if (*location == ',' || *location == '\\')
			*p++ = '\\';
		*p++ = *location;
	}
	*p = '\0';
	if (asprintf(&opts, "subtype=umbrafs,fsname=%s%s%s", esc, c->mopts.fuse ? "," : "",
		     c->mopts.fuse ? c->mopts.fuse : "") < 0)
		opts = NULL;
	free(esc);
	return opts;
}

/* The idle watcher unmounts by absolute path: the background process has
 * left the working directory by then. Sets errno on failure. */
static int start_idle_watch(struct fs *fs, const char *mountpoint, unsigned seconds,
			    struct idle_watch **idle)
{
	char *abs = realpath(mountpoint, NULL);
	int rc = abs ? idle_watch_start(fs, abs, seconds, idle) : -errno;

	free(abs);
	errno = -rc;
	return rc;
}

static int run_mount(const struct cli *c, struct vault *v)
{
	const char *mountpoint = c->argv[1];
	char *opts = fuse_options(c, v->store->location);
	char *fuse_argv[] = { "umbrafs", "-o", opts, c->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(c->debug ? 4 : 3, fuse_argv);
	struct fuse_session *se = NULL;
	struct idle_watch *idle = NULL;
	struct fs fs;
	int rc = EXIT_ERROR;

	if (!opts || fs_init(&fs, v) != 0) {
		fail("out of memory");
		free(opts);
		return EXIT_ERROR;
	}
	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) {
		fail("cannot start the file system: check the -o options");
		rc = EXIT_USAGE;
		goto out;
	}
	if (loop_catch_signals(se) != 0) {
		fail("cannot set up the signal handlers");
		goto out;
	}
	if (fuse_session_mount(se, mountpoint) != 0) {
		fail("cannot mount on %s (see the message above)", mountpoint);
		goto out_handlers;
	}
	if (c->mopts.idle_seconds && start_idle_watch(&fs, mountpoint, c->mopts.idle_seconds,
						       &idle) != 0) {
		fail("cannot start the idle timer: %s", strerror(errno));
		goto out_unmount;
	}
	if (!c->foreground)
		detach();
	log_info("mounted %s on %s%s", v->store->location, mountpoint,
		 !store_is_cache(v->store) && !fs.quick_store
			 ? " (the store's folder is on a network or FUSE file system)" : "");
	rc = loop_run(se, fs_request_is_quick, &fs);
	if (rc > 0) /* SIGTERM, SIGINT or SIGHUP: a stop as asked for, not a failure */
		log_info("stopping on %s", strsignal(rc));
	rc = rc >= 0 ? EXIT_OK : EXIT_ERROR;
	idle_watch_stop(idle);
out_unmount:
	fuse_session_unmount(se);
	log_info("unmounted %s", mountpoint);
out_handlers:
	loop_release_signals();
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	fs_destroy(&fs);
	free(opts);
	return rc;
}

/* Background mounts log to syslog as "umbrafs[STORE]", telling vaults apart. */
static void log_to_vault(const struct cli *c, const struct store *s)
{
	char *ident = NULL;

	if (c->foreground || asprintf(&ident, "umbrafs[%s]", s->location) < 0)
		return;
	log_init(true, c->verbose, ident);
	free(ident);
}

/* A remote store: upload what is still queued before the process ends
 * (what fails stays queued in the cache for the next mount). */
static void flush_store(struct store *s)
{
	struct cache_stats st;
	int rc;

	if (!store_is_cache(s) || store_cache_stats(s, &st) != 0 || !st.pending_uploads)
		return;
	log_info("uploading %llu queued changes to %s", (unsigned long long)st.pending_uploads,
		 s->location);
	rc = store_cache_flush(s);
	if (rc)
		log_err("not every change reached %s (%s): they stay queued in the cache and are "
			"uploaded at the next mount", s->location, strerror(-rc));
	else
		log_info("all changes are uploaded to %s", s->location);
}

static int cmd_mount(const struct cli *c)
{
	struct store *s;
	struct vault *v;
	int rc;

	if (c->argc != 2)
		return usage_error("mount takes STORE and MOUNTPOINT");
	rc = check_mountpoint(c->argv[1]);
	if (rc)
		return rc;
	if (!c->foreground && start_background() != 0)
		return EXIT_ERROR;
	log_init(!c->foreground, c->verbose, "umbrafs");
	rc = unlock(c, &s, &v);
	if (!rc) {
		log_to_vault(c, s);
		rc = run_mount(c, v);
		flush_store(s);
		vault_close(v);
		store_destroy(s);
	}
	report_status(rc);
	return rc;
}

static const struct command {
	const char *name;
	int (*run)(const struct cli *c);
} commands[] = {
	{ "init", cmd_init },
	{ "mount", cmd_mount },
	{ "info", cmd_info },
	{ "passwd", cmd_passwd },
	{ "fsck", cmd_fsck },
};

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Split -o into libfuse's options and umbrafs's own; passfile= and extpass=
 * are one more password source, and only one may be given. */
static int take_mount_options(struct cli *c)
{
	char *err = NULL;
	int rc, sources;

	if (mount_opts_parse(c->mount_opts, &c->mopts, &err) != 0) {
		rc = usage_error(err ? err : "out of memory");
		free(err);
		return rc;
	}
	sources = !!c->password.file + !!c->password.extpass + !!c->mopts.passfile +
		  !!c->mopts.extpass;
	if (sources > 1)
		return usage_error("give one of --password-file, --extpass, passfile=, extpass=");
	if (c->mopts.passfile)
		c->password.file = c->mopts.passfile;
	if (c->mopts.extpass)
		c->password.extpass = c->mopts.extpass;
	return EXIT_OK;
}

/* mount(8) runs /sbin/mount.umbrafs (type umbrafs) or /sbin/mount.fuse.umbrafs
 * (type fuse.umbrafs) as "SOURCE DIR [-sfnv] [-N NS] [-o OPTS] [-t TYPE]".
 * -f is a fake mount: nothing to do. -s, -n, -N and -t mean nothing here. */
static bool called_by_mount(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	return strcmp(base, "mount.umbrafs") == 0 || strcmp(base, "mount.fuse.umbrafs") == 0;
}

static int parse_mount_helper(int argc, char **argv, struct cli *c)
{
	int opt;

	opterr = 0;
	while ((opt = getopt(argc, argv, "sfnvo:t:N:")) != -1) {
		switch (opt) {
		case 'f': exit(EXIT_OK);
		case 'v': c->verbose = true; break;
		case 'o': c->mount_opts = optarg; break;
		case 's': case 'n': case 't': case 'N': break;
		default:
			fail("unknown or incomplete option '%s' (see umbrafs(1))", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return usage_error("mount.umbrafs takes SOURCE and MOUNTPOINT");
	c->command = "mount";
	c->argc = 2;
	c->argv = argv + optind;
	return take_mount_options(c);
}

static int parse(int argc, char **argv, struct cli *c)
{
	enum {
		OPT_PASSWORD_FILE = 256, OPT_EXTPASS, OPT_SCRYPT_COST, OPT_NEW_PASSWORD_FILE,
		OPT_REPAIR, OPT_CACHE_DIR, OPT_CACHE_SIZE, OPT_INSECURE,
	};
	static const struct option longopts[] = {
		{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
		{ "extpass", required_argument, NULL, OPT_EXTPASS },
		{ "scrypt-cost", required_argument, NULL, OPT_SCRYPT_COST },
		{ "new-password-file", required_argument, NULL, OPT_NEW_PASSWORD_FILE },
		{ "repair", no_argument, NULL, OPT_REPAIR },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "yes", no_argument, NULL, 'y' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "fo:vdhVy", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_PASSWORD_FILE: c->password.file = optarg; break;
		case OPT_EXTPASS: c->password.extpass = optarg; break;
		case OPT_SCRYPT_COST:
			errno = 0;
			c->scrypt_cost = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg)
				return usage_error("--scrypt-cost takes a number");
			break;
		case OPT_NEW_PASSWORD_FILE: c->new_password_file = optarg; break;
		case OPT_REPAIR: c->repair = true; break;
		case OPT_CACHE_DIR: cache_options.dir = optarg; break;
		case OPT_CACHE_SIZE:
			if (parse_size(optarg, &cache_options.max_bytes) != 0)
				return usage_error("--cache-size takes a size such as 500M or 2G");
			break;
		case OPT_INSECURE:
			store_options.insecure = true;
			fail("warning: --insecure: TLS certificates are not verified");
			break;
		case 'y': c->assume_yes = true; break;
		case 'f': c->foreground = true; break;
		case 'o': c->mount_opts = optarg; break;
		case 'v': c->verbose = true; break;
		case 'd': c->debug = c->foreground = true; break;
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		case 'V': printf("umbrafs %s\n", UMBRAFS_VERSION); exit(EXIT_OK);
		default:
			fail("unknown or incomplete option '%s' (see umbrafs --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	if (!find_command(argv[optind]) && argc - optind == 2) {
		/* "umbrafs STORE MOUNTPOINT -o OPTS": how mount.fuse3 runs the
		 * program of a fuse.umbrafs mount */
		c->command = "mount";
		c->argc = 2;
		c->argv = argv + optind;
	} else {
		c->command = argv[optind];
		c->argc = argc - optind - 1;
		c->argv = argv + optind + 1;
	}
	return take_mount_options(c);
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	const struct command *command;
	int rc = called_by_mount(argv[0]) ? parse_mount_helper(argc, argv, &c)
					  : parse(argc, argv, &c);

	if (rc) {
		mount_opts_free(&c.mopts);
		return rc;
	}
	command = find_command(c.command);
	if (!command) {
		mount_opts_free(&c.mopts);
		return usage_error("unknown command");
	}
	curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread starts */
	/* one-shot commands get a private cache: a mount may hold the shared one */
	cache_options.temporary = strcmp(c.command, "mount") != 0;
	store_set_log(log_backend_line);
	rc = command->run(&c);
	curl_global_cleanup();
	mount_opts_free(&c.mopts);
	return rc;
}
