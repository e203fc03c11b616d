/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Watched processes and the dead: the registry's table of client
 * processes (pid and start time, so a reused pid is another process), the
 * reap of a dead process in every object, and the list of every pid that
 * owns state in an object (for the periodic sweep, which also reaches
 * processes that never registered). Every libprim call here is bounded by
 * the broker's patience; a reap that gives up is retried at the next
 * sweep, and one that keeps giving up marks the object damaged
 * (primd__judge).
 *
 * Concurrency: the broker's one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "registry.h"

void
primd__reg_reap(struct primd_reg *r, pid_t pid)
{
	for (int t = 0; t < 2; t++) {
		for (int i = 0; i < r->hi[t]; i++) {
			struct primd_obj *o = &r->obj[t][i];
			int rc;

			if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
			    o->handle == NULL)
				continue;
			rc = t == T_SEM ? prim_semset_reap(o->handle, pid)
					: prim_msgq_reap(o->handle, pid);
			if (rc < 0 && rc != -EIDRM && rc != -EBUSY &&
			    rc != -ENOTRECOVERABLE)
				fprintf(stderr,
					"primd: reap of pid %d on id "
					"%d: %s\n",
					(int)pid, r->shm->ent[t][i].id,
					strerror(-rc));
			(void)primd__judge(r, t, i, rc);
		}
	}
}

void
primd__reg_owners(struct primd_reg *r, void (*fn)(pid_t))
{
	pid_t pids[512];

	for (int t = 0; t < 2; t++) {
		for (int i = 0; i < r->hi[t]; i++) {
			struct primd_obj *o = &r->obj[t][i];
			int n;

			if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
			    o->handle == NULL)
				continue;
			n = t == T_SEM ? prim_semset_pids(o->handle, pids, 512)
				       : prim_msgq_pids(o->handle, pids, 512);
			for (int k = 0; k < n && k < 512; k++)
				fn(pids[k]);
		}
	}
}

int
primd__proc_find(struct primd_reg *r, pid_t pid)
{
	for (int i = 0; i < r->prochi; i++)
		if (r->shm->proc[i].pid == pid)
			return i;
	return -1;
}

int
primd__proc_add(struct primd_reg *r, pid_t pid, uint64_t start)
{
	for (int i = 0; i < PRIMD_NPROCS; i++)
		if (r->shm->proc[i].pid == 0) {
			r->shm->proc[i].start = start;
			r->shm->proc[i].pid = pid;
			if (i >= r->prochi)
				r->prochi = i + 1;
			return i;
		}
	return -1;
}

void
primd__proc_drop(struct primd_reg *r, int slot)
{
	if (slot >= 0 && slot < PRIMD_NPROCS) {
		r->shm->proc[slot].pid = 0;
		r->shm->proc[slot].start = 0;
	}
}

uint64_t
primd__proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	/* Field 22 (starttime) is the 20th after the ")" of field 2. */
	for (int f = 0; f < 20 && p != NULL; f++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
		return 0;
	return v;
}
