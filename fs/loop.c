/* The request loop (loop.h): leader and followers.
 *
 * Why not libfuse's multi-threaded loop: every idle worker waits in read()
 * on /dev/fuse and the kernel wakes the one that waited longest, so a serial
 * run of requests hops from thread to thread, a wake-up of a cold thread
 * each; measured on an untar, a third of the daemon's time went to those
 * switches, and libfuse's single-threaded loop was 25-30% faster. Here only
 * the thread holding the reader role reads: it keeps the role while it
 * serves quick requests, and passes it on before a slow one. Between
 * requests it polls the device for a moment before it sleeps (receive).
 *
 * Signals: the threads serving requests block them all. The handler of
 * SIGHUP, SIGINT and SIGTERM ends the session and posts the semaphore that
 * the thread in loop_run waits on; that thread then cancels the reader, the
 * one thread in read(); threads serving a request finish it first
 * (cancellation is off outside that read, as in libfuse's loop). */
#include "fs/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h> /* the request header */
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <fuse_lowlevel.h>

/* As libfuse's default max_threads: requests served at once, at most. */
#define LOOP_MAX_THREADS 10

struct loop {
	struct fuse_session *se;
	loop_quick_fn quick;
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t need_reader; /* followers wait here for the reader role */
	bool reading;               /* a thread holds the reader role */
	bool stop;                  /* the session ended: threads leave */
	unsigned followers;         /* threads waiting on need_reader */
	unsigned nthreads;
	pthread_t threads[LOOP_MAX_THREADS];
	int error;                  /* -errno of a failed read of the device */
};

/* One session per process: the one the stop signals end. */
static struct fuse_session *signalled_session;
static sem_t loop_ended; /* posted when the session ends, or on a stop signal */
static volatile sig_atomic_t caught_signal;

static void end_on_signal(int sig)
{
	caught_signal = sig;
	if (signalled_session)
		fuse_session_exit(signalled_session);
	sem_post(&loop_ended); /* async-signal-safe */
}

static int set_signal_actions(void (*handler)(int), void (*pipe_handler)(int))
{
	static const int stops[] = { SIGHUP, SIGINT, SIGTERM };
	struct sigaction sa = { .sa_handler = handler };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
		if (sigaction(stops[i], &sa, NULL) < 0)
			return -errno;
	sa.sa_handler = pipe_handler; /* a server that hangs up must not end the mount */
	return sigaction(SIGPIPE, &sa, NULL) < 0 ? -errno : 0;
}

/* The session ended (unmounted: rc 0) or its device failed: every thread leaves. */
static void end_loop_locked(struct loop *l, int rc)
{
	if (rc < 0 && !l->error)
		l->error = rc;
	fuse_session_exit(l->se);
	l->stop = true;
	pthread_cond_broadcast(&l->need_reader);
	sem_post(&loop_ended);
}

/* Wait until the reader role is free and take it; false: the loop ends. */
static bool take_reader_role(struct loop *l)
{
	bool taken;

	pthread_mutex_lock(&l->lock);
	while (l->reading && !l->stop) {
		l->followers++;
		pthread_cond_wait(&l->need_reader, &l->lock);
		l->followers--;
	}
	taken = !l->stop;
	l->reading = taken;
	pthread_mutex_unlock(&l->lock);
	return taken;
}

static void *serve_requests(void *arg);

/* Start a serving thread (lock held; all signals are blocked in the caller,
 * so in the new thread too). */
static int start_thread_locked(struct loop *l)
{
	int rc;

	if (l->stop || l->nthreads == LOOP_MAX_THREADS)
		return -EAGAIN;
	rc = pthread_create(&l->threads[l->nthreads], NULL, serve_requests, l);
	if (rc)
		return -rc;
	l->nthreads++;
	return 0;
}

/* The loop whose reading this thread holds, while it does; NULL in others. */
static _Thread_local struct loop *held_reading;

/* Before a slow request or a slow part of one: another thread reads
 * meanwhile, a waiting one or a new one. With none to be had, reading
 * resumes after this request. */
void loop_hand_over(void)
{
	struct loop *l = held_reading;

	if (!l)
		return;
	held_reading = NULL;
	pthread_mutex_lock(&l->lock);
	l->reading = false;
	if (l->followers)
		pthread_cond_signal(&l->need_reader);
	else
		start_thread_locked(l);
	pthread_mutex_unlock(&l->lock);
}

static bool request_is_quick(const struct loop *l, const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	uint32_t size = 0;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof *in)
		return false;
	/* READ and WRITE give their size at the same place after the header */
	if ((in->opcode == FUSE_READ || in->opcode == FUSE_WRITE) &&
	    buf->size >= sizeof *in + sizeof(struct fuse_read_in))
		size = ((const struct fuse_read_in *)(in + 1))->size;
	return l->quick(l->ctx, in->opcode, size);
}

/* How long the reader polls the device before it sleeps in poll(). */
#define LOOP_SPIN_NS 50000

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

/* Read the next request (the device is non-blocking). In a run of requests
 * the next one comes within microseconds, and a thread woken from sleep on
 * an idle CPU costs more than that (a VM's halted vCPU most of all): so the
 * reader tries again for LOOP_SPIN_NS before it sleeps in poll(), the only
 * point at which the thread may be cancelled. */
static int receive(struct loop *l, struct fuse_buf *buf)
{
	struct pollfd pfd = { .fd = fuse_session_fd(l->se), .events = POLLIN };
	uint64_t until = 0;
	int rc;

	for (;;) {
		rc = fuse_session_receive_buf(l->se, buf);
		if (rc != -EAGAIN)
			return rc;
		if (!until)
			until = monotonic_ns() + LOOP_SPIN_NS;
		if (monotonic_ns() < until)
			continue;
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		poll(&pfd, 1, -1);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		until = 0;
	}
}

/* As reader: read and serve requests while they are quick; hand the reading
 * over before serving a slow one (or when its handler finds it slow:
 * loop_hand_over). false: the loop ends. */
static bool read_and_serve(struct loop *l, struct fuse_buf *buf)
{
	int rc;

	held_reading = l;
	while (held_reading) {
		rc = receive(l, buf);
		if (rc == -EINTR)
			continue;
		if (rc <= 0) { /* 0: unmounted */
			held_reading = NULL;
			pthread_mutex_lock(&l->lock);
			end_loop_locked(l, rc);
			pthread_mutex_unlock(&l->lock);
			return false;
		}
		if (!request_is_quick(l, buf))
			loop_hand_over();
		fuse_session_process_buf(l->se, buf);
	}
	return true;
}

static void free_buffer(void *arg)
{
	free(((struct fuse_buf *)arg)->mem);
}

static void *serve_requests(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf buf = { .mem = NULL };

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_push(free_buffer, &buf);
	while (take_reader_role(l) && read_and_serve(l, &buf))
		;
	pthread_cleanup_pop(1);
	return NULL;
}

/* Stop the threads: the reader is cancelled in read(), the others leave once
 * they see stop (after the request they serve). */
static void stop_threads(struct loop *l)
{
	unsigned n;

	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->need_reader);
	n = l->nthreads;
	for (unsigned i = 0; i < n; i++)
		pthread_cancel(l->threads[i]);
	pthread_mutex_unlock(&l->lock);
	/* none starts after stop (start_thread_locked): n are all there are */
	for (unsigned i = 0; i < n; i++)
		pthread_join(l->threads[i], NULL);
}

int loop_catch_signals(struct fuse_session *se)
{
	int rc;

	if (sem_init(&loop_ended, 0, 0) < 0)
		return -errno;
	signalled_session = se;
	rc = set_signal_actions(end_on_signal, SIG_IGN);
	if (rc)
		loop_release_signals();
	return rc;
}

void loop_release_signals(void)
{
	set_signal_actions(SIG_DFL, SIG_DFL);
	signalled_session = NULL;
	sem_destroy(&loop_ended);
}

/* The first serving thread starts with every signal blocked, and so do the
 * ones it starts: signals stay with the thread waiting in loop_run. */
static int start_first_thread(struct loop *l)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_mutex_lock(&l->lock);
	rc = start_thread_locked(l);
	pthread_mutex_unlock(&l->lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int loop_run(struct fuse_session *se, loop_quick_fn quick, void *ctx)
{
	struct loop l = { .se = se, .quick = quick, .ctx = ctx };
	int rc;

	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.need_reader, NULL);
	rc = set_nonblocking(fuse_session_fd(se));
	if (!rc && !fuse_session_exited(se))
		rc = start_first_thread(&l);
	while (!rc && !fuse_session_exited(se))
		sem_wait(&loop_ended); /* posted at the end of the session or on a signal */
	stop_threads(&l);
	pthread_cond_destroy(&l.need_reader);
	pthread_mutex_destroy(&l.lock);
	if (rc)
		return rc;
	return caught_signal ? caught_signal : l.error;
}
