/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel's SysV permission rules (ipc/util.c ipcperms,
 * ipcctl_obtain_check), applied to the broker's own registry entry and the
 * caller's kernel credentials: nothing a client wrote decides anything.
 *
 * Concurrency: the broker's one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

static int
in_group(const struct primd_cred *c, uint32_t g)
{
	if (c->gid == g)
		return 1;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return 1;
	return 0;
}

static int
is_owner(const struct primd_cred *c, const struct primd_ent_shm *e)
{
	return c->uid == e->cuid || c->uid == e->uid;
}

/*
 * The user namespace that owns this IPC namespace (NS_GET_USERNS): the
 * kernel honours CAP_IPC_OWNER and CAP_SYS_ADMIN over the namespace's
 * objects only in it (ns_capable(ipc_ns->user_ns, ...)). 0 when unknown.
 */
static int
owner_userns(struct stat *out)
{
	static struct stat owner;
	static int known = -1;

	if (known < 0) {
		int ns = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
		int us = ns >= 0 ? ioctl(ns, NS_GET_USERNS) : -1;

		known = us >= 0 && fstat(us, &owner) == 0;
		if (us >= 0)
			close(us);
		if (ns >= 0)
			close(ns);
	}
	*out = owner;
	return known;
}

/*
 * The peer's effective capabilities that count here, read at accept from
 * /proc/<pid>: none unless that process still has the credentials the
 * socket reported (SO_PEERCRED is taken at connect; the descriptor may
 * have been passed on, or the process may have changed its identity or
 * exec'd a set-user-ID program since) and lives in the user namespace that
 * owns this IPC namespace: root of a user namespace of its own
 * (unshare -U -r) holds every capability there, but none over this
 * namespace's objects. CAP_SYS_RESOURCE counts only in the initial one
 * (the kernel checks it with capable()).
 */
uint64_t
primd__peer_caps(pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], line[256], ns[64];
	uint64_t caps = 0;
	unsigned long u[4], g[4];
	int have_uid = 0, have_gid = 0;
	struct stat mine, theirs;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &u[0], &u[1], &u[2],
			   &u[3]) == 4)
			have_uid = 1;
		else if (sscanf(line, "Gid: %lu %lu %lu %lu", &g[0], &g[1],
				&g[2], &g[3]) == 4)
			have_gid = 1;
		else if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	}
	fclose(f);
	if (!have_uid || !have_gid || u[1] != (unsigned long)uid ||
	    g[1] != (unsigned long)gid)
		return 0;
	caps &= PRIMD_CAP_IPC_OWNER | PRIMD_CAP_SYS_ADMIN |
		PRIMD_CAP_SYS_RESOURCE;
	if (caps == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	if (!owner_userns(&mine) || stat(path, &theirs) != 0 ||
	    theirs.st_dev != mine.st_dev || theirs.st_ino != mine.st_ino)
		return 0;
	/* Outside the initial user namespace, CAP_SYS_RESOURCE is not. */
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n <= 0 || (ns[n] = '\0', strcmp(ns, "user:[4026531837]") != 0))
		caps &= ~PRIMD_CAP_SYS_RESOURCE;
	return caps;
}

/* The rwx bits (0..7) the caller's class is granted (ipcperms). */
static unsigned
granted(const struct primd_cred *c, const struct primd_ent_shm *e)
{
	unsigned m = e->mode;

	if (c->caps & PRIMD_CAP_IPC_OWNER)
		return 7;
	if (is_owner(c, e))
		m >>= 6;
	else if (in_group(c, e->cgid) || in_group(c, e->gid))
		m >>= 3;
	return m & 7;
}

int
primd__may_control(const struct primd_cred *c, const struct primd_ent_shm *e)
{
	return (c->caps & PRIMD_CAP_SYS_ADMIN) || is_owner(c, e);
}

int
primd__ipcperms(const struct primd_cred *c, const struct primd_ent_shm *e,
		int flg)
{
	unsigned req =
	    ((unsigned)flg >> 6 | (unsigned)flg >> 3 | (unsigned)flg) & 7;

	return (req & ~granted(c, e) & 7) ? EACCES : 0;
}

uint32_t
primd__access(const struct primd_cred *c, const struct primd_ent_shm *e)
{
	return granted(c, e) & (PRIMD_ACC_R | PRIMD_ACC_W);
}
