/* Mount options (-o) as mount(8), fstab and mount.fuse3 give them: split into
 * umbrafs's own (passfile=, extpass=, idle=), fstab-only ones that nothing
 * after mount(8) needs (noauto, nofail, _netdev, user, x-..., ...), which are
 * dropped, and the rest, which go to libfuse and the kernel (ro, allow_other,
 * default_permissions, ...). */
#ifndef MOUNT_OPTS_H
#define MOUNT_OPTS_H

struct mount_opts {
	char *fuse;           /* comma-separated options for libfuse; NULL if none */
	char *passfile;       /* passfile=FILE */
	char *extpass;        /* extpass=CMD */
	unsigned idle_seconds; /* idle=DURATION; 0: never */
};

/* Split opts (NULL: none) into *out. Returns 0, or -1 with a malloc'd message
 * in *err (a bad idle= duration, an empty passfile=, out of memory). */
int mount_opts_parse(const char *opts, struct mount_opts *out, char **err);
void mount_opts_free(struct mount_opts *m);

/* "30s", "10m", "1h", "2d" or plain seconds into *seconds (> 0); -1 if invalid. */
int parse_duration(const char *text, unsigned *seconds);

#endif
