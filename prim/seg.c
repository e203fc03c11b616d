/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The common segment header and the per-process pid cache.
 *
 * Memory ordering:
 * SEG_1: prim__seg_publish stores magic with release semantics after every
 *        other byte of the object is initialised; pairs with SEG_2.
 * SEG_2: prim__seg_check loads magic with acquire semantics before trusting
 *        anything else in the mapping; pairs with SEG_1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "prim_int.h"

void
prim__seg_init(void *mem, enum prim_seg_kind kind, uint16_t version,
	       uint64_t size)
{
	struct prim_seg_shm *h = mem;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memset(h, 0, sizeof(*h));
	h->version = version;
	h->kind = (uint16_t)kind;
	h->size = size;
	h->generation = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^
			((uint64_t)getpid() << 40);
	h->state = PRIM_SEG_LIVE;
	h->creator_pid = prim__pid();
}

void
prim__seg_publish(void *mem)
{
	struct prim_seg_shm *h = mem;

	/* SEG_1: everything before is visible before magic; pairs with SEG_2. */
	ck_pr_fence_store();
	ck_pr_store_32(&h->magic, PRIM_SEG_MAGIC);
}

int
prim__seg_check(const void *mem, size_t len, enum prim_seg_kind kind,
		uint16_t version)
{
	const struct prim_seg_shm *h = mem;

	if (mem == NULL || len < sizeof(*h) ||
	    ((uintptr_t)mem & (PRIM_CACHELINE - 1)) != 0)
		return -EINVAL;
	if (ck_pr_load_32(&h->magic) != PRIM_SEG_MAGIC)
		return -EINVAL;
	/* SEG_2: read the rest only after magic; pairs with SEG_1. */
	ck_pr_fence_load();
	{
		/* Each field read once: a writer may change it meanwhile. */
		uint64_t size = ck_pr_load_64(&h->size);

		if (ck_pr_load_16(&h->kind) != (uint16_t)kind ||
		    ck_pr_load_16(&h->version) != version || size > len ||
		    size < sizeof(*h))
			return -EINVAL;
	}
	if (ck_pr_load_32(&h->state) != PRIM_SEG_LIVE)
		return prim__seg_dead(mem);
	return 0;
}

int
prim__seg_dead(const void *mem)
{
	const struct prim_seg_shm *h = mem;

	return ck_pr_load_32(&h->state) == PRIM_SEG_DAMAGED ? -ENOTRECOVERABLE
							    : -EIDRM;
}

int
prim__seg_damage(void *mem)
{
	struct prim_seg_shm *h = mem;

	/* Another state (REMOVED, or DAMAGED already) stays what it is. */
	(void)ck_pr_cas_32(&h->state, PRIM_SEG_LIVE, PRIM_SEG_DAMAGED);
	return prim__seg_dead(mem);
}

static uint32_t cached_pid;
static uint64_t cached_ident;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void
forget_pid(void)
{
	/* The child has a new pid; no shared lock is taken here. */
	ck_pr_store_32(&cached_pid, 0);
	ck_pr_store_64(&cached_ident, 0);
}

static void
register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

uint32_t
prim__pid(void)
{
	uint32_t pid = ck_pr_load_32(&cached_pid);

	if (pid == 0) {
		pthread_once(&pid_once, register_atfork);
		pid = (uint32_t)getpid();
		ck_pr_store_32(&cached_pid, pid);
	}
	return pid;
}

/* Start time of pid (field 22 of /proc/<pid>/stat), 0 if unreadable. */
static int
start_of(pid_t pid, uint32_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long t;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past ")". */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -EIO;
	/* A zombie has exited: it is dead for everything here. */
	if (p[2] == 'Z' || p[2] == 'X')
		return -ESRCH;
	/* Fields 3..21 are 19 words, then the start time. */
	for (int f = 3; f <= 22; f++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -EIO;
	}
	t = strtoull(p + 1, NULL, 10);
	*start = (uint32_t)t;
	return 0;
}

uint64_t
prim__ident(void)
{
	uint64_t id = ck_pr_load_64(&cached_ident);
	uint32_t pid, start = 0;

	if (id != 0)
		return id;
	pid = prim__pid();
	{
		int saved = errno; /* libprim never changes errno */

		(void)start_of((pid_t)pid, &start);
		errno = saved;
	}
	id = (uint64_t)pid | (uint64_t)start << 32;
	ck_pr_store_64(&cached_ident, id);
	return id;
}

bool
prim__ident_gone(uint64_t id)
{
	pid_t pid = (pid_t)PRIM_IDENT_PID(id);
	uint32_t start = 0;
	int saved = errno, r = start_of(pid, &start), gone;

	if (r == 0)
		gone = ((uint64_t)(uint32_t)pid | (uint64_t)start << 32) != id;
	else if (r == -ESRCH) /* a zombie */
		gone = 1;
	else /* no /proc entry, or one we may not read (hidepid) */
		gone = kill(pid, 0) != 0 && errno == ESRCH;
	errno = saved;
	return gone;
}

uint64_t
prim__ident_of(pid_t pid)
{
	uint32_t start = 0;
	int saved = errno;
	int r = start_of(pid, &start);

	errno = saved;
	/* Gone, a zombie, or unreadable: as the caller says, dead. */
	if (r != 0)
		return 0;
	return (uint64_t)(uint32_t)pid | (uint64_t)start << 32;
}
