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
#include <pthread.h>
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
	if (h->kind != kind || h->version != version || h->size > len ||
	    h->size < sizeof(*h))
		return -EINVAL;
	if (ck_pr_load_32(&h->state) != PRIM_SEG_LIVE)
		return -EIDRM;
	return 0;
}

static uint32_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void
forget_pid(void)
{
	/* The child has a new pid; no shared lock is taken here. */
	ck_pr_store_32(&cached_pid, 0);
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
