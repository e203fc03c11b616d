/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libprim semaphore arrays: System V semaphore sets that live in a shared
 * mapping the caller provides (SysV shm, a shared mmap, a memfd…), operated
 * on with atomic instructions. A non-blocking operation makes no system
 * call; a blocked one sleeps on a futex (umtx on FreeBSD/DragonFly).
 *
 * Every function is safe from any number of threads and processes at once,
 * on any mapping of the same object, unless its comment says otherwise.
 * None is async-signal-safe except prim_sem_getval. None is a cancellation
 * point. Every function returns 0 (or a non-negative value) on success and
 * -errno on failure; errno itself is never touched.
 */
#ifndef PRIM_SEM_H
#define PRIM_SEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libprim is built with hidden visibility: its public API is default. */
#pragma GCC visibility push(default)

#define PRIM_SEMVMX 32767	/* largest semaphore value */
#define PRIM_SEMAEM 32767	/* largest |adjustment| of SEM_UNDO */
#define PRIM_IPC_NOWAIT 04000	/* same bit as IPC_NOWAIT */
#define PRIM_SEM_UNDO 0x1000	/* same bit as SEM_UNDO */

/* One operation, laid out as struct sembuf. */
struct prim_sembuf {
	unsigned short sem_num;
	short sem_op;
	short sem_flg;
};

/* Opaque handle made by prim_semset_open, freed by prim_semset_close. */
struct prim_semset;

/* Sizes fixed when the set is created. Zero fields take the defaults. */
struct prim_semset_attr {
	uint32_t nsems;		/* 1..32000 semaphores */
	uint32_t semopm;	/* max operations per call (default 500) */
	uint32_t nprocs;	/* processes with SEM_UNDO state (default 32) */
	uint32_t nslots;	/* threads inside a slow call at once (64) */
	uint32_t flags;		/* PRIM_SEMSET_ZEROED */
};

/*
 * prim_semset_init: mem is known to hold zeros (fresh pages of a new
 * segment or mapping), so only the header is written. A page of the set is
 * then touched only when something lives there: until callers block or use
 * PRIM_SEM_UNDO, the header, the semaphores and the first slot's header.
 */
#define PRIM_SEMSET_ZEROED 1u

/* Bytes a set with these attributes needs, or 0 if they are invalid. */
size_t prim_semset_size(const struct prim_semset_attr *attr);

/*
 * Initialise a set of attr->nsems semaphores, all 0, in mem (len bytes,
 * 64-byte aligned, zero or not). Not safe concurrently with any other use
 * of the same memory. Returns 0, -EINVAL (bad attributes or too small).
 */
int prim_semset_init(void *mem, size_t len,
		     const struct prim_semset_attr *attr);

/*
 * Validate a mapping made by prim_semset_init (possibly in another process
 * and at another address) and return a handle to it in *set. The handle
 * keeps its own copy of the set's geometry, so a header corrupted later
 * can never make a call reach outside the mapping. A foreign or corrupt
 * header gives -EINVAL, a removed set -EIDRM; -ENOMEM.
 */
int prim_semset_open(void *mem, size_t len, struct prim_semset **set);
/* Free a handle (not the set). Not safe concurrently with its use. */
void prim_semset_close(struct prim_semset *set);

/* Number of semaphores in the set. */
int prim_semset_nsems(const struct prim_semset *set);

/*
 * Every process that may write a set may write any byte of it, so no call
 * trusts what it reads there, and none loops for ever on it: a call that
 * does not sleep keeps retrying against other processes' writes for at
 * most its patience (ns nanoseconds, after at least 1024 retries; 10 ms
 * unless set here) and then gives up with -EAGAIN (an operation) or
 * -EBUSY (control, reap); a timed call gives up at its deadline; a
 * blocking call backs off with sleeps instead of spinning. Memory that the
 * protocol can never produce marks the set damaged: that call and every
 * later one return -ENOTRECOVERABLE. Not safe concurrently with other
 * uses of the same handle.
 */
void prim_semset_set_patience(struct prim_semset *set, uint64_t ns);

/*
 * semop(2): apply nsops operations all-or-nothing, in order (the same
 * semaphore may appear more than once, each operation sees the ones before
 * it). Blocks while the first operation that cannot proceed lacks
 * PRIM_IPC_NOWAIT; prim_sem_op_timed gives up at the absolute
 * CLOCK_MONOTONIC time *deadline (NULL: never).
 * Errors: -EINVAL (nsops 0), -E2BIG (nsops > semopm), -EFBIG (sem_num out of
 * range), -ERANGE (a value above 32767 or an adjustment out of range),
 * -EAGAIN (IPC_NOWAIT, or the deadline passed, or patience spent),
 * -EINTR (a signal handler ran), -EIDRM (the set was removed),
 * -ENOTRECOVERABLE (damaged), -ENOMEM (no SEM_UNDO record left).
 * A single operation without SEM_UNDO that does not block is one CAS.
 */
int prim_sem_op(struct prim_semset *set, const struct prim_sembuf *sops,
		size_t nsops);
int prim_sem_op_timed(struct prim_semset *set, const struct prim_sembuf *sops,
		      size_t nsops, const struct timespec *deadline);

/*
 * For a broker acting for process pid (one that may not map the set
 * read-write): prim_sem_op as pid would do it, but never sleeping. sempid
 * becomes pid; SEM_UNDO adjustments are pid's (reaped when pid dies).
 * When the operations cannot proceed now, returns -EAGAIN and sets
 * *blocked to 1 if the operation that decided lacks IPC_NOWAIT (the caller
 * may try again later), 0 if it has it. Otherwise as prim_sem_op, and
 * -ESRCH when SEM_UNDO is asked for a pid that is not alive.
 */
int prim_sem_op_as(struct prim_semset *set, const struct prim_sembuf *sops,
		   size_t nsops, pid_t pid, int *blocked);

/* semctl(2) commands. Values and counts are returned (>= 0) or -errno. */
int prim_sem_getval(const struct prim_semset *set, int semnum);
int prim_sem_getpid(const struct prim_semset *set, int semnum);
int prim_sem_getncnt(const struct prim_semset *set, int semnum);
int prim_sem_getzcnt(const struct prim_semset *set, int semnum);
int prim_sem_getall(const struct prim_semset *set, unsigned short *vals);
/* SETVAL/SETALL: -ERANGE (value > 32767) before anything changes; clear
 * every process's adjustment of those semaphores; wake waiters. */
int prim_sem_setval(struct prim_semset *set, int semnum, int val);
int prim_sem_setall(struct prim_semset *set, const unsigned short *vals);

/* sem_otime (last successful prim_sem_op) and sem_ctime, in seconds. */
int prim_semset_times(const struct prim_semset *set, int64_t *otime,
		      int64_t *ctime);
/* Set sem_ctime to now (for IPC_SET done by a caller such as libsysv). */
void prim_semset_touch(struct prim_semset *set);

/*
 * Remove the set: every waiter returns -EIDRM, later calls -EIDRM. The
 * memory itself stays the caller's to unmap or destroy.
 */
int prim_semset_remove(struct prim_semset *set);

/*
 * Check the set's consistency, as far as it can be checked from outside:
 * help the active request along (checking its content), and repair words
 * left frozen by no request. Returns 0, -ENOTRECOVERABLE (it is damaged,
 * now marked so), -EIDRM, or -EBUSY (undecided within the patience:
 * others keep changing it).
 */
int prim_semset_check(struct prim_semset *set);

/*
 * Clean up after process pid once it is dead: finish or roll back any
 * operation it left half done, drop it from the waiter counts, apply its
 * SEM_UNDO adjustments (clamped to 0..32767, sempid = pid) and wake whoever
 * can now proceed. Records are owned by a process identity, its pid and
 * start time: reaping a pid whose process is alive (or a zombie's parent
 * has not yet waited for it: a zombie counts as dead) does nothing to it,
 * and a process that reuses a dead pid keeps its own records. Idempotent;
 * any process may call it, at any time, even concurrently with another
 * reap of the same pid. Reads /proc/<pid>/stat. Records of pid whose
 * identity is not the live process's (stale or forged) are freed too.
 * Returns the number of semaphores whose adjustment it applied, or -errno:
 * -EBUSY when it gave up within the patience (call it again later: it
 * goes on from where it stopped), -ENOTRECOVERABLE, -EIDRM.
 */
int prim_semset_reap(struct prim_semset *set, pid_t pid);

/*
 * The pids that own state in the set (SEM_UNDO records, slow calls in
 * progress or asleep): up to max of them in pids. Returns how many there
 * are (possibly more than max). For a broker that restarts: reap each one
 * (reaping a live process does nothing).
 */
int prim_semset_pids(const struct prim_semset *set, pid_t *pids, int max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
