/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Clocks shared by every libprim object. CLOCK_MONOTONIC for deadlines;
 * time() for the SysV time stamps (sem_otime, msg_stime…), which have
 * one-second resolution anyway and must not cost a system call: both are
 * served by the vDSO on Linux.
 */
#include <time.h>

#include "wait.h"
#include "prim_int.h"

void
prim__now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

int
prim__deadline_passed(const struct timespec *deadline)
{
	struct timespec now;

	prim__now(&now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec &&
		now.tv_nsec >= deadline->tv_nsec);
}

int64_t
prim__realtime(void)
{
	/* time(2) is the cheapest wall clock: about 3 ns through the vDSO. */
	return (int64_t)time(NULL);
}
