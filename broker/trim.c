/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Giving queue memory back. A queue's pages become resident as content
 * reaches them (the position ring's turn, a burst of messages) and stay
 * so after it is gone; libprim's prim_msgq_trim gives back the pages that
 * hold nothing. The broker is the one process that trims (trims of one
 * queue must not overlap), off every caller's path: a share of the queues
 * at each owner sweep, from where the last share stopped, for at most
 * PRIMD_SWEEP_NS, skipping queues that saw no send or receive since their
 * last trim. A broker restarted after dying in a trim finishes it: the
 * first share after adoption trims every queue.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "prim/msgq.h"
#include "registry.h"

int
primd__reg_trim(struct primd_reg *r, int *cursor)
{
	uint64_t t0 = primd__now_ns();
	int i = *cursor >= 0 && *cursor < r->hi[T_MSG] ? *cursor : 0;

	for (int k = 0; k < r->hi[T_MSG]; k++, i = (i + 1) % r->hi[T_MSG]) {
		struct primd_obj *o = &r->obj[T_MSG][i];
		struct prim_msgq_stat st;
		int64_t last;

		if (r->shm->ent[T_MSG][i].state != PRIMD_ENT_LIVE ||
		    o->handle == NULL ||
		    prim_msgq_stat(o->handle, &st) != 0)
			continue;
		/* Times are the writers' to choose: a hostile one costs this
		 * queue's trims, nothing else. */
		last = st.stime > st.rtime ? st.stime : st.rtime;
		if (o->trimmed != 0 && last < o->trimmed)
			continue;
		o->trimmed = (int64_t)time(NULL);
		(void)prim_msgq_trim(o->handle);
		if (primd__now_ns() - t0 >= PRIMD_SWEEP_NS) {
			*cursor = (i + 1) % r->hi[T_MSG];
			return 0;
		}
	}
	*cursor = 0;
	return 1;
}
