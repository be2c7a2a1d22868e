#include "fs/idle.h"

#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/log.h"

extern char **environ;

struct idle_watch {
	struct fs *fs;
	char *mountpoint;
	unsigned seconds;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
};

/* Unmount as `fusermount3 -u` does, never lazily: as root with umount2
 * (no MNT_DETACH), else through the setuid helper. 0, or -EBUSY (and the
 * like) when the mount is in use. */
static int unmount_now(const char *mountpoint)
{
	char *argv[] = { "fusermount3", "-u", "-q", (char *)mountpoint, NULL };
	pid_t pid;
	int status;

	if (geteuid() == 0)
		return umount2(mountpoint, 0) == 0 ? 0 : -errno;
	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -ENOENT;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

/* Sleep one second or until stopped; true when stopped. */
static bool sleep_tick(struct idle_watch *w)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
		;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static void *watch(void *arg)
{
	struct idle_watch *w = arg;
	uint_fast64_t seen = atomic_load(&w->fs->requests), now;
	unsigned quiet = 0; /* seconds without a request */
	int rc;

	while (!sleep_tick(w)) {
		now = atomic_load(&w->fs->requests);
		quiet = now == seen ? quiet + 1 : 0;
		seen = now;
		if (quiet < w->seconds)
			continue;
		quiet = 0;
		rc = unmount_now(w->mountpoint);
		if (rc == 0) {
			log_info("unmounted %s after %u s without use", w->mountpoint, w->seconds);
			break;
		}
		log_debug("idle, but cannot unmount %s yet: %s", w->mountpoint, strerror(-rc));
	}
	return NULL;
}

int idle_watch_start(struct fs *fs, const char *mountpoint, unsigned seconds,
		     struct idle_watch **out)
{
	struct idle_watch *w = calloc(1, sizeof(*w));
	pthread_condattr_t attr;
	int rc;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	w->seconds = seconds;
	w->mountpoint = strdup(mountpoint);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	rc = w->mountpoint ? pthread_create(&w->thread, NULL, watch, w) : ENOMEM;
	if (rc) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w->mountpoint);
		free(w);
		return -rc;
	}
	*out = w;
	return 0;
}

void idle_watch_stop(struct idle_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->mountpoint);
	free(w);
}
