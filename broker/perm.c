/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel's SysV permission rules (ipc/util.c ipcperms,
 * ipcctl_obtain_check), applied to the broker's own registry entry and the
 * caller's kernel credentials: nothing a client wrote decides anything.
 *
 * Concurrency: the broker's one thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
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

uint64_t
primd__peer_caps(pid_t pid)
{
	char path[64], line[256], ns[64];
	uint64_t caps = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	fclose(f);
	caps &= PRIMD_CAP_IPC_OWNER | PRIMD_CAP_SYS_ADMIN |
		PRIMD_CAP_SYS_RESOURCE;
	/* Outside the initial user namespace, CAP_SYS_RESOURCE is not. */
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
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
