/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Patience: the bound on every retry loop over shared memory (see
 * prim_int.h and doc/design.md, "The broker never waits on client
 * memory"). A loop calls prim__patience_spent once per retry; it costs an
 * increment, and a vDSO clock read every PRIM_PATIENCE_CLOCK retries.
 *
 * Concurrency: a struct prim_patience belongs to one call of one thread.
 * prim__patience_spent is async-signal-safe.
 */
#include <errno.h>
#include <time.h>

#include "prim_int.h"

static int64_t
ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

void
prim__patience_init(struct prim_patience *p, uint64_t ns,
		    const struct timespec *deadline, int forever)
{
	p->tries = 0;
	p->naps = 0;
	p->ns = ns;
	p->until = 0;
	p->deadline = deadline;
	p->forever = forever;
}

int
prim__patience_spent(struct prim_patience *p)
{
	struct timespec now, nap;
	int64_t t;

	p->tries++;
	if (p->until != 0 && p->tries % PRIM_PATIENCE_CLOCK != 0)
		return 0;
	prim__now(&now);
	t = ns_of(&now);
	if (p->until == 0) {
		p->until = t + (int64_t)(p->ns > INT64_MAX / 2 ? INT64_MAX / 2
							       : p->ns);
		return 0;
	}
	if (p->deadline != NULL && t >= ns_of(p->deadline))
		return -EAGAIN;
	if (p->tries < PRIM_PATIENCE_MIN || t < p->until)
		return 0;
	if (!p->forever)
		return -EAGAIN;
	/*
	 * Waiting for ever on memory that does not change as the protocol
	 * says: sleep 50 us, doubling to 10 ms, between retries, so a call
	 * that must wait costs no CPU; still up to the deadline.
	 */
	nap.tv_sec = 0;
	nap.tv_nsec = 50000L << (p->naps < 8 ? p->naps : 8);
	if (nap.tv_nsec > 10000000L)
		nap.tv_nsec = 10000000L;
	p->naps++;
	/* Every retry from now on is after a nap: check the clock each time. */
	p->tries = PRIM_PATIENCE_MIN + PRIM_PATIENCE_CLOCK - 1;
	if (clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL) == EINTR)
		return -EINTR;
	return 0;
}
