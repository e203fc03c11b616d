/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where the broker of this IPC namespace listens (see proto.h). Shared by
 * libsysv, primd and primctl; no state, no allocation, async-signal-safe
 * apart from snprintf.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

static int
ns_inode(unsigned long long *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/ipc", &st) != 0)
		return -errno;
	*ino = (unsigned long long)st.st_ino;
	return 0;
}

int
primd__sock_path(char *buf, unsigned long n, int for_server)
{
	const char *env = getenv("PRIM_BROKER_SOCK");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned long long ino = 0;
	struct stat st;
	int r;

	if (env != NULL && env[0] != '\0') {
		if (strlen(env) >= n)
			return -ENAMETOOLONG;
		strcpy(buf, env);
		return 0;
	}
	if ((r = ns_inode(&ino)) != 0)
		return r;
	r = snprintf(buf, n, "/run/prim/primd-ipc-%llu.sock", ino);
	if (r < 0 || (unsigned long)r >= n)
		return -ENAMETOOLONG;
	if (for_server ? geteuid() == 0 : stat(buf, &st) == 0)
		return 0;
	if (xdg != NULL && xdg[0] == '/')
		r = snprintf(buf, n, "%s/prim/primd-ipc-%llu.sock", xdg, ino);
	else
		r = snprintf(buf, n, "/tmp/prim-%u/primd-ipc-%llu.sock",
			     (unsigned)geteuid(), ino);
	if (r < 0 || (unsigned long)r >= n)
		return -ENAMETOOLONG;
	return 0;
}
