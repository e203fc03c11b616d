/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The limits follow the IPC namespace's sysctls, as the kernel's do:
 * /proc/sys/kernel/{sem,msgmax,msgmnb,msgmni} are read when the broker
 * starts and again before every request that decides by them (HELLO, GET,
 * IPC_SET, *_INFO and the data-path requests the broker serves: primd.c
 * serve_one), so `echo 10000 > /proc/sys/kernel/msgmax` counts for the next
 * msgget, msgsnd and IPC_INFO. A few small reads a request: these are not
 * the data path of preloaded programs, which map their objects. A value
 * given on the command line (--msgmax, ...) is pinned: it wins over the
 * sysctl for the broker's life (primd(8)).
 *
 * msg_next_id and sem_next_id (checkpoint/restore): the kernel gives the
 * next object made the id they hold and resets them to -1; create() does
 * the same with primd__next_id (an index and sequence from the value; prim
 * ids also have bit 30 set, registry.c), and has the kernel reset the
 * sysctl by making (and removing) one kernel object of the kind.
 *
 * Concurrency: the broker's one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include "registry.h"

static unsigned pinned; /* PRIMD_PIN_* given on the command line */

void
primd__limits_pin(unsigned bits)
{
	pinned |= bits;
}

/* Up to n numbers from path (a sysctl file). Returns how many, or -1. */
static int
read_nums(const char *path, long long *v, int n)
{
	char buf[128], *p, *end;
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), got = 0;

	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	for (p = buf; got < n; p = end) {
		errno = 0;
		v[got] = strtoll(p, &end, 10);
		if (end == p || errno != 0)
			break;
		got++;
	}
	return got;
}

static uint32_t
clamp32(long long v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void
set(unsigned bit, uint32_t *f, long long v)
{
	if (!(pinned & bit))
		*f = clamp32(v);
}

void
primd__limits_read(struct primd_info *l)
{
	long long v[4];

	if (read_nums("/proc/sys/kernel/sem", v, 4) == 4) {
		set(PRIMD_PIN_SEMMSL, &l->semmsl, v[0]);
		set(PRIMD_PIN_SEMMNS, &l->semmns, v[1]);
		set(PRIMD_PIN_SEMOPM, &l->semopm, v[2]);
		set(PRIMD_PIN_SEMMNI, &l->semmni, v[3]);
	}
	if (read_nums("/proc/sys/kernel/msgmax", v, 1) == 1)
		set(PRIMD_PIN_MSGMAX, &l->msgmax, v[0]);
	if (read_nums("/proc/sys/kernel/msgmnb", v, 1) == 1)
		set(PRIMD_PIN_MSGMNB, &l->msgmnb, v[0]);
	if (read_nums("/proc/sys/kernel/msgmni", v, 1) == 1)
		set(PRIMD_PIN_MSGMNI, &l->msgmni, v[0]);
	/* The registry's table, like the kernel's IPCMNI. */
	if (l->semmni > PRIMD_NIDX)
		l->semmni = PRIMD_NIDX;
	if (l->msgmni > PRIMD_NIDX)
		l->msgmni = PRIMD_NIDX;
	l->pinned = pinned;
}

/* The queue pool's ceiling that follows msgmnb unless pinned. */
uint32_t
primd__qbytes_max_of(uint32_t msgmnb)
{
	uint64_t q = 4 * (uint64_t)msgmnb;

	return (uint32_t)(q > INT32_MAX ? INT32_MAX : q);
}

int
primd__limits_refresh(struct primd_reg *r)
{
	struct primd_info l = r->conf.lim;

	primd__limits_read(&l);
	if (memcmp(&l, &r->conf.lim, sizeof(l)) == 0)
		return 0;
	r->conf.lim = l;
	if (!(pinned & PRIMD_PIN_QBMAX))
		r->conf.msg_qbytes_max = primd__qbytes_max_of(l.msgmnb);
	if (r->shm != NULL)
		r->shm->limits = l; /* "the limits last in force" */
	return 1;
}

long long
primd__next_id(int t)
{
	static long long used[2] = {-1, -1}; /* used, not reset by the kernel */
	const char *path = t == T_SEM ? "/proc/sys/kernel/sem_next_id"
				      : "/proc/sys/kernel/msg_next_id";
	long long v;

	if (read_nums(path, &v, 1) != 1 || v < 0 || v > INT32_MAX)
		return -1;
	/*
	 * The kernel resets it to -1 when it uses it, and takes no -1 from
	 * a write (the sysctl's range starts at 0): have the kernel use it,
	 * on an object of its own made and removed at once. Where that
	 * fails (the kernel's msgmni or semmni reached), a value is used
	 * once, until another is written.
	 */
	if (t == T_SEM) {
		int k = semget(IPC_PRIVATE, 1, 0600);

		if (k >= 0) {
			(void)semctl(k, 0, IPC_RMID);
			used[t] = -1;
			return v;
		}
	} else {
		int k = msgget(IPC_PRIVATE, 0600);

		if (k >= 0) {
			(void)msgctl(k, IPC_RMID, NULL);
			used[t] = -1;
			return v;
		}
	}
	if (used[t] == v)
		return -1;
	used[t] = v;
	return v;
}
