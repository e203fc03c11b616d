/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Handlers that ran during a blocking call (include/prim/intr.h and
 * doc/design.md, "Signals during a blocking call").
 *
 * The sleeper, on its own thread: ts = deadline; armed = 1; check
 * handlers; futex wait until ts; armed = 0. The handler, on the same
 * thread: handlers++; if armed, ts = 0. A handler that runs
 *  - before armed is set: the check after it sees handlers changed;
 *  - after the check, before the system call: the kernel reads ts = 0, a
 *    time long past, and returns at once (ETIMEDOUT), after which handlers
 *    is seen changed;
 *  - during the system call: the signal interrupts it (EINTR: absolute
 *    deadlines are never restarted, see wait_linux.c).
 * Both sides are one thread, so compiler barriers order them (a handler
 * interrupts the sleeper between two instructions, never inside one).
 *
 * Concurrency: everything here is async-signal-safe.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include <ck_pr.h>

#include "prim/intr.h"
#include "prim_int.h"

static prim_intr_getter getter;

void
prim_intr_register(prim_intr_getter get)
{
	ck_pr_store_ptr(&getter, (void *)get);
}

struct prim_intr *
prim_intr_self(void)
{
	prim_intr_getter get = (prim_intr_getter)ck_pr_load_ptr(&getter);

	return get != NULL ? get() : NULL;
}

void
prim_intr_note(struct prim_intr *in)
{
	if (in == NULL)
		return;
	in->handlers++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (in->armed) {
		in->ts.tv_sec = 0;
		in->ts.tv_nsec = 0;
	}
}

void
prim__intr_begin(struct prim_intr_watch *w)
{
	w->in = prim_intr_self();
	w->c0 = w->in != NULL ? w->in->handlers : 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

int
prim__wait_intr(const struct prim_intr_watch *w, const uint32_t *word,
		uint32_t expect, const struct timespec *deadline)
{
	/* As wait_linux.c's "forever". */
	static const struct timespec forever = { .tv_sec = INT_MAX / 2 };
	struct prim_intr *in = w != NULL ? w->in : NULL;
	int r;

	if (in == NULL)
		return prim__wait(word, expect, deadline);
	if (in->handlers != w->c0)
		return -EINTR;
	in->ts = deadline != NULL ? *deadline : forever;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in->armed = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (in->handlers != w->c0) {
		in->armed = 0;
		return -EINTR;
	}
	/* The kernel reads in->ts as it enters the system call. */
	r = prim__wait(word, expect, (const struct timespec *)&in->ts);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in->armed = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (in->handlers != w->c0)
		return -EINTR;
	return r;
}
