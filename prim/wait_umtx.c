/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Wait layer for FreeBSD and DragonFly. Compiled only there (see the
 * GNUmakefile); Linux builds never see this file.
 *
 * FreeBSD: _umtx_op(UMTX_OP_WAIT_UINT) compares a 32-bit word and, given a
 * struct _umtx_time with UMTX_ABSTIME on CLOCK_MONOTONIC, sleeps until an
 * absolute deadline; it is shared between processes (not the _PRIVATE
 * variant). DragonFly: umtx_sleep/umtx_wakeup take a relative timeout in
 * microseconds, so the deadline is converted on each call and a sleep is
 * capped at one second and re-checked by the caller's loop.
 */
#include <errno.h>
#include <limits.h>

#include "wait.h"

#if defined(__FreeBSD__)
#include <sys/types.h>
#include <sys/umtx.h>

int
prim__wait(const uint32_t *word, uint32_t expect,
	   const struct timespec *deadline)
{
	struct _umtx_time t;
	int saved = errno, r = 0;

	/* umtx returns 0 when the word differs: tell that case apart. */
	if (*(const volatile uint32_t *)word != expect)
		return 1;
	/*
	 * TODO (doc/design.md, "Signals during a blocking call"): the
	 * deadline is copied here, before the system call, so a handler that
	 * runs between this copy and _umtx_op and sets the caller's ts to the
	 * past (prim__wait_intr) is not seen by this sleep. Closing it needs
	 * the struct _umtx_time itself in struct prim_intr. Not built here.
	 */
	if (deadline != NULL) {
		t._timeout = *deadline;
		t._flags = UMTX_ABSTIME;
		t._clockid = CLOCK_MONOTONIC;
	}
	if (_umtx_op((void *)(uintptr_t)word, UMTX_OP_WAIT_UINT, expect,
		     deadline != NULL ? (void *)sizeof(t) : NULL,
		     deadline != NULL ? &t : NULL) == -1) {
		if (errno == ETIMEDOUT)
			r = -ETIMEDOUT;
		else if (errno == EINTR)
			r = -EINTR;
	}
	errno = saved;
	return r;
}

int
prim__wake(const uint32_t *word, int n)
{
	int saved = errno;
	int r = _umtx_op((void *)(uintptr_t)word, UMTX_OP_WAKE, n, NULL, NULL);

	errno = saved;
	return r < 0 ? 0 : n;
}

#elif defined(__DragonFly__)
#include <unistd.h>

int
prim__wait(const uint32_t *word, uint32_t expect,
	   const struct timespec *deadline)
{
	int saved = errno, r = 0, us = 1000000;

	if (*(const volatile uint32_t *)word != expect)
		return 1;
	if (deadline != NULL) {
		struct timespec now;
		long long left;

		prim__now(&now);
		left = (long long)(deadline->tv_sec - now.tv_sec) * 1000000 +
		       (deadline->tv_nsec - now.tv_nsec) / 1000;
		if (left <= 0)
			return -ETIMEDOUT;
		if (left < us)
			us = (int)left;
	}
	if (umtx_sleep((const volatile int *)word, (int)expect, us) == -1) {
		if (errno == EINTR)
			r = -EINTR;
		else if (errno == EWOULDBLOCK && deadline != NULL &&
			 prim__deadline_passed(deadline))
			r = -ETIMEDOUT;
	}
	errno = saved;
	return r;
}

int
prim__wake(const uint32_t *word, int n)
{
	umtx_wakeup((const volatile int *)word, n == INT_MAX ? 0 : n);
	return n;
}
#else
#error "wait_umtx.c is for FreeBSD and DragonFly only"
#endif
