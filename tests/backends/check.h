/* A minimal test harness for the backend tests: CHECK macros that count and
 * report, a summary line "N passed, N failed", and temp-folder helpers. */
#ifndef BACKENDS_CHECK_H
#define BACKENDS_CHECK_H

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks_passed, checks_failed;

static inline bool check_result(bool ok, const char *what, const char *file, int line)
{
	if (ok)
		checks_passed++;
	else {
		checks_failed++;
		fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
	}
	return ok;
}

static inline bool check_long(long got, long want, const char *what, const char *file, int line)
{
	if (got != want)
		fprintf(stderr, "%s:%d: %s is %ld (%s), expected %ld (%s)\n", file, line, what, got,
			got < 0 ? strerror((int)-got) : "-", want, want < 0 ? strerror((int)-want) : "-");
	return check_result(got == want, what, file, line);
}

static inline bool check_str(const char *got, const char *want, const char *what, const char *file, int line)
{
	bool ok = got && want && strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", file, line, what,
			got ? got : "(null)", want ? want : "(null)");
	return check_result(ok, what, file, line);
}

#define CHECK(cond) check_result((cond), #cond, __FILE__, __LINE__)
/* Integers and -errno results; prints both values (and errno texts) on failure. */
#define CHECK_EQ(got, want) check_long((long)(got), (long)(want), #got, __FILE__, __LINE__)
#define CHECK_STR(got, want) check_str((got), (want), #got, __FILE__, __LINE__)

/* Print the summary line; the exit status of the test program. */
static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", checks_passed, checks_failed);
	return checks_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A new empty folder under $TMPDIR (or /tmp); exits when that fails. */
static inline char *make_temp_folder(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/umbrafs-backends-XXXXXX", tmp && tmp[0] ? tmp : "/tmp") < 0 || !mkdtemp(dir)) {
		perror("make_temp_folder");
		exit(EXIT_FAILURE);
	}
	return dir;
}

static inline int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

/* rm -rf dir, and free it. */
static inline void remove_temp_folder(char *dir)
{
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		perror(dir);
	free(dir);
}

#endif
