/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Wait layer for Linux: shared futexes.
 *
 * FUTEX_WAIT with a relative timeout is restarted by the kernel after a
 * handler when SA_RESTART is set (signal(7)), which would hide the EINTR
 * that semop(2) and msgrcv(2) must report. FUTEX_WAIT_BITSET with an
 * absolute deadline is not restarted: it returns EINTR. So every wait here
 * uses FUTEX_WAIT_BITSET with FUTEX_BITSET_MATCH_ANY and an absolute
 * CLOCK_MONOTONIC deadline; "no deadline" is a deadline far in the future.
 *
 * No memory ordering of its own: the futex system call is a full barrier
 * on both sides, and callers re-check their condition after every return.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wait.h"

static long
futex(const uint32_t *uaddr, int op, uint32_t val,
      const struct timespec *ts, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, val3);
}

int
prim__wait(const uint32_t *word, uint32_t expect,
	   const struct timespec *deadline)
{
	/* About 68 years from boot: "forever", yet still interruptible. */
	static const struct timespec forever = { .tv_sec = INT_MAX / 2 };
	int saved = errno, r = 0;

	if (futex(word, FUTEX_WAIT_BITSET, expect,
		  deadline != NULL ? deadline : &forever,
		  FUTEX_BITSET_MATCH_ANY) == -1) {
		switch (errno) {
		case ETIMEDOUT:
			r = -ETIMEDOUT;
			break;
		case EINTR:
			r = -EINTR;
			break;
		case EAGAIN: /* the word already differed */
			r = 1;
			break;
		default:
			r = 0;
			break;
		}
	}
	errno = saved;
	return r;
}

int
prim__wake(const uint32_t *word, int n)
{
	int saved = errno;
	long r = futex(word, FUTEX_WAKE, (uint32_t)n, NULL, 0);

	errno = saved;
	return r < 0 ? 0 : (int)r;
}
