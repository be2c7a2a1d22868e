/* The request loop: leader and followers over one FUSE session.
 *
 * One thread at a time reads /dev/fuse. It serves a quick request itself
 * and reads the next one, so that a run of small requests (an untar, rm -rf)
 * is served by one thread without a hand-off between threads per request,
 * as libfuse's single-threaded loop does. Before it serves a request that
 * may take long, it hands the reading to another thread (woken, or started
 * up to a limit), so that a slow request holds up no other, as in libfuse's
 * multi-threaded loop. Between requests the reader polls for the next one
 * for up to 50 us before it sleeps: waking a sleeping thread costs more. */
#ifndef LOOP_H
#define LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;

/* Is a request of this opcode (and, for READ and WRITE, this many bytes)
 * quick enough to be served by the reading thread? */
typedef bool (*loop_quick_fn)(void *ctx, uint32_t opcode, uint32_t size);

/* From now on SIGHUP, SIGINT and SIGTERM end the session se (also before
 * loop_run starts) and SIGPIPE is ignored; until loop_release_signals.
 * Returns 0 or -errno. */
int loop_catch_signals(struct fuse_session *se);
void loop_release_signals(void);

/* Serve se (with loop_catch_signals in force) until it is unmounted or a
 * stop signal arrives. Returns 0 after an unmount, the signal's number after
 * a signal, or -errno when reading the device or starting a thread failed.
 * quick(ctx, ...) is called from the serving threads. */
int loop_run(struct fuse_session *se, loop_quick_fn quick, void *ctx);

/* For a handler that finds its request slower than its kind said (a write
 * far past the end, a name that needs a durable write) or that is about to
 * wait for a lock a slow request may hold: the reading of requests goes on
 * in another thread from now on. Does nothing in a thread that does not
 * hold the reading (or already handed it over). */
void loop_hand_over(void);

#endif
