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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "registry.h"

void
primd__reg_reap_in(struct primd_reg *r, int t, int i, pid_t pid)
{
	struct primd_obj *o = &r->obj[t][i];
	int rc;

	if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE || o->handle == NULL)
		return;
	rc = t == T_SEM ? prim_semset_reap(o->handle, pid)
			: prim_msgq_reap(o->handle, pid);
	if (rc < 0 && rc != -EIDRM && rc != -EBUSY && rc != -ENOTRECOVERABLE)
		fprintf(stderr, "primd: reap of pid %d on id %d: %s\n",
			(int)pid, r->shm->ent[t][i].id, strerror(-rc));
	(void)primd__judge(r, t, i, rc);
}

void
primd__reg_reap(struct primd_reg *r, pid_t pid)
{
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < r->hi[t]; i++)
			primd__reg_reap_in(r, t, i, pid);
}

/* kernel.pid_max, read once: no pid is above it. */
static pid_t
pid_max(void)
{
	static pid_t max;
	char buf[32];
	ssize_t n;
	long v;
	int fd;

	if (max > 0)
		return max;
	max = 4194304; /* PID_MAX_LIMIT, if it cannot be read */
	fd = open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return max;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 10);
		if (v > 0 && v <= 4194304)
			max = (pid_t)v;
	}
	return max;
}

uint64_t
primd__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int
primd__reg_owners(struct primd_reg *r, int (*fn)(int, int, pid_t),
		  int *cursor)
{
	const int nall = 2 * PRIMD_NIDX;
	uint64_t t0 = primd__now_ns();
	pid_t pids[512], max = pid_max();
	int c = *cursor >= 0 && *cursor < nall ? *cursor : 0, work = 0;

	for (int k = 0; k < nall; k++, c = (c + 1) % nall) {
		int t = c / PRIMD_NIDX, i = c % PRIMD_NIDX, n, ow = 0;
		struct primd_obj *o = &r->obj[t][i];

		if (i >= r->hi[t]) {
			k += PRIMD_NIDX - 1 - i; /* on to the next type */
			c = (t + 1) * PRIMD_NIDX - 1;
			continue;
		}
		if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
		    o->handle == NULL)
			continue;
		/* The pids are the object's writers' to choose. */
		n = t == T_SEM ? prim_semset_pids(o->handle, pids, 512)
			       : prim_msgq_pids(o->handle, pids, 512);
		for (int m = 0; m < n && m < 512; m++) {
			if (pids[m] <= 0 || pids[m] > max)
				continue;
			if (fn(t, i, pids[m]) != 0)
				ow++;
			else if ((m & 31) != 31)
				continue;
			/* The rest at its next turn; the handle goes if
			 * the object was damaged. */
			if (ow >= PRIMD_SWEEP_OBJ_WORK || o->handle == NULL ||
			    primd__now_ns() - t0 >= PRIMD_SWEEP_NS)
				break;
		}
		work += ow;
		if (work >= PRIMD_SWEEP_WORK ||
		    primd__now_ns() - t0 >= PRIMD_SWEEP_NS) {
			*cursor = (c + 1) % nall;
			return 0;
		}
	}
	return 1;
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
			primd__reg_raise(&r->shm->proc_hi, i); /* REG_1 */
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
