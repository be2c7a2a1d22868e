/* -o idle=DURATION: unmount a vault nobody has used for that long. */
#ifndef IDLE_H
#define IDLE_H

#include "fs/ops.h"

struct idle_watch;

/* Watch fs->requests from a thread; once no request came for `seconds`,
 * unmount mountpoint (an absolute path) as `fusermount3 -u` would: refused
 * while a file is open or a process works inside, then tried again after
 * another idle period. The session loop then ends as after any unmount.
 * Returns 0 or -errno. */
int idle_watch_start(struct fs *fs, const char *mountpoint, unsigned seconds,
		     struct idle_watch **out);
/* Stop and free the watcher (NULL is accepted). */
void idle_watch_stop(struct idle_watch *w);

#endif
