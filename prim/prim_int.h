/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Internals shared by the files of libprim: the common segment header that
 * opens every object's mapping, the pid cache and the clocks. Never
 * installed.
 */
#ifndef PRIM_INT_H
#define PRIM_INT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "prim/intr.h"
#include "wait.h"

#define PRIM_CACHELINE 64

/* "PRIM" in ASCII, read as a little- or big-endian word alike. */
#define PRIM_SEG_MAGIC 0x5052494dU

enum prim_seg_kind {
	PRIM_SEG_SEM = 1,
	PRIM_SEG_MSGQ = 2,
};

enum prim_seg_state {
	PRIM_SEG_LIVE = 1,
	PRIM_SEG_REMOVED = 2,
	/* The object's memory is inconsistent (only a hostile or broken
	 * writer makes it so): every call fails with -ENOTRECOVERABLE. */
	PRIM_SEG_DAMAGED = 3,
};

/*
 * The first 64 bytes of every libprim mapping. Written once by the
 * object's init function (magic last, after a release fence), read-only
 * afterwards except for state, which goes LIVE -> REMOVED or LIVE ->
 * DAMAGED once (DAMAGED -> REMOVED when a damaged object is removed). Like
 * every byte of a mapping, the header may be rewritten by any process that
 * may write the object: readers use it only once checked, and only as a
 * hint (the geometry is copied into the process's handle at open).
 */
struct prim_seg_shm {
	uint32_t magic;
	uint16_t version;	/* layout version of this kind */
	uint16_t kind;		/* enum prim_seg_kind */
	uint64_t size;		/* bytes the layout needs */
	uint64_t generation;	/* distinguishes re-initialisations */
	uint32_t state;		/* enum prim_seg_state */
	uint32_t creator_pid;
	uint8_t pad[32];
};
_Static_assert(sizeof(struct prim_seg_shm) == PRIM_CACHELINE,
	       "segment header is one cache line");

/*
 * Check the header of a mapping of len bytes: magic, kind, version and a
 * size that fits the mapping. Returns 0, -EINVAL for a foreign or corrupt
 * header, -EIDRM for an object marked removed, -ENOTRECOVERABLE for one
 * marked damaged.
 */
PRIM_HIDDEN int prim__seg_check(const void *mem, size_t len,
				enum prim_seg_kind kind, uint16_t version);
/* Fill in the header; the caller publishes it with prim__seg_publish. */
PRIM_HIDDEN void prim__seg_init(void *mem, enum prim_seg_kind kind,
				uint16_t version, uint64_t size);
PRIM_HIDDEN void prim__seg_publish(void *mem);

/*
 * The error for an object whose state is not LIVE: -ENOTRECOVERABLE when
 * damaged, else -EIDRM.
 */
PRIM_HIDDEN int prim__seg_dead(const void *mem);

/*
 * Mark the object damaged (LIVE -> DAMAGED); returns -ENOTRECOVERABLE, or
 * -EIDRM if it was removed meanwhile. The caller wakes its sleepers.
 */
PRIM_HIDDEN int prim__seg_damage(void *mem);

/*
 * Patience: how long a call keeps retrying against what other processes
 * write (a failed CAS, a frozen word, a busy slot) before it gives up, so
 * that no loop over shared memory is unbounded (doc/design.md, "The broker
 * never waits on client memory"). A call gives up once it has retried at
 * least PRIM_PATIENCE_MIN times and its patience has run out, or at once
 * when its deadline has passed. Counting retries as well as time keeps a
 * thread that was merely descheduled from giving up: honest contention
 * never fails a lock-free retry a thousand times in a row. A call that may
 * wait for ever (forever) never gives up before its deadline: past its
 * patience it sleeps between retries instead of spinning.
 *
 * Starting costs nothing: the clock is first read at the first retry, and
 * then every PRIM_PATIENCE_CLOCK retries.
 */
#define PRIM_PATIENCE_MIN 1024u
#define PRIM_PATIENCE_CLOCK 64u
#define PRIM_PATIENCE_NS 10000000ULL	/* 10 ms: the default */

struct prim_patience {
	uint32_t tries;
	uint32_t naps;
	uint64_t ns;			/* patience after the first retry */
	int64_t until;			/* CLOCK_MONOTONIC ns, 0: not started */
	const struct timespec *deadline; /* absolute, NULL: none */
	int forever;
};

PRIM_HIDDEN void prim__patience_init(struct prim_patience *p, uint64_t ns,
				     const struct timespec *deadline,
				     int forever);
/*
 * Count one retry. Returns 0 to go on, -EAGAIN when the caller must give
 * up (patience spent, or the deadline passed), -EINTR when a signal
 * handler ran during a back-off sleep.
 */
PRIM_HIDDEN int prim__patience_spent(struct prim_patience *p);

/* This process's pid without a system call (reset in a fork child). */
PRIM_HIDDEN uint32_t prim__pid(void);

/*
 * Who a process is: its pid and the low 32 bits of its start time (clock
 * ticks since boot, /proc/<pid>/stat field 22), packed pid | start << 32,
 * so a reused pid is a different process. prim__ident() is this process's
 * (read once, reset in a fork child; start 0 when /proc is unreadable);
 * prim__ident_of(pid) is a live process's, or 0 if there is none.
 */
PRIM_HIDDEN uint64_t prim__ident(void);
PRIM_HIDDEN uint64_t prim__ident_of(pid_t pid);
/* Is the process of identity id certainly gone (exited, a zombie, or its
 * pid another process's now)? Not when /proc cannot say (hidepid, another
 * pid namespace) and the pid still exists: then it may be alive. */
PRIM_HIDDEN bool prim__ident_gone(uint64_t id);
#define PRIM_IDENT_PID(id) ((uint32_t)(id))
#define PRIM_IDENT_START(id) ((uint32_t)((id) >> 32))

/* Wall-clock seconds for SysV time stamps, from the vDSO. */
PRIM_HIDDEN int64_t prim__realtime(void);

/*
 * Signals during a blocking call (prim/intr.c, include/prim/intr.h). A call
 * that may sleep takes a watch when it starts; prim__intr_seen says a
 * handler has run on its thread since (stop waiting: -EINTR), and
 * prim__wait_intr is prim__wait that also returns -EINTR for a handler
 * that ran just before the sleep. A watch with in == NULL sees nothing.
 */
struct prim_intr_watch {
	struct prim_intr *in;
	uint32_t c0;
};
PRIM_HIDDEN void prim__intr_begin(struct prim_intr_watch *w);
PRIM_HIDDEN int prim__wait_intr(const struct prim_intr_watch *w,
				const uint32_t *word, uint32_t expect,
				const struct timespec *deadline);
static inline int
prim__intr_seen(const struct prim_intr_watch *w)
{
	return w->in != NULL && w->in->handlers != w->c0;
}

#endif
