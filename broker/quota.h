/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-uid quotas of the broker: connections, watched processes, objects
 * (semaphore sets and queues together) and bytes of backing segments, and
 * the bound on prim's own use of kernel shm ids. One user's flood must
 * never shut another out (doc/design.md, "Quotas and fairness"), so every
 * resource a client can make the broker hold is counted per uid and
 * admitted before it is taken. uid 0 (and the broker's own euid, the only
 * user a non-root broker serves) is exempt from the per-uid quotas; the
 * totals keep room that only root may use, and the kernel's shm ids keep a
 * reserve that nobody in prim may use, root included.
 *
 * Concurrency: only the broker's one thread calls these functions; the
 * state is private to this file. Every release matches an earlier admit
 * or charge and never fails; the object charges remember their uid and
 * size here, so a release never depends on memory a client can write.
 */
#ifndef PRIMD_QUOTA_H
#define PRIMD_QUOTA_H

#include <stdint.h>
#include <sys/types.h>

#include "registry.h"

/* Connection slots and watched-process entries only uid 0 may take. */
#define PRIMD_QUOTA_ROOT_CONNS 64
#define PRIMD_QUOTA_ROOT_PROCS 1024

/*
 * Object keys name one charged segment until its release: object type t
 * (0 semaphore sets, 1 queues) at registry index i, and the registry's own
 * segment.
 */
#define PRIMD_QUOTA_OBJ(t, i) ((uint32_t)PRIMD_NIDX * (t) + (uint32_t)(i))
#define PRIMD_QUOTA_REG	      PRIMD_QUOTA_OBJ(2, 0)
#define PRIMD_QUOTA_NOBJS     (PRIMD_QUOTA_REG + 1)

struct primd_quota_conf {
	/* Per uid (primd --quota-*). */
	uint64_t conns, procs, objects, bytes;
	/* Sizes of the broker's tables. */
	uint32_t total_conns, total_procs;
};

/* The defaults: 256 connections, 4096 processes, 1024 objects, half of
 * physical memory. */
void primd__quota_defaults(struct primd_quota_conf *qc);

/* Start accounting with qc, nothing charged. 0 or -ENOMEM. */
int primd__quota_init(const struct primd_quota_conf *qc);

/* 1 if uid is exempt from the per-uid quotas. */
int primd__quota_exempt(uid_t uid);

/*
 * Connections and watched processes: admit checks the quota and the total
 * and charges one (0), or charges nothing (-ENOSPC); release gives back
 * what admit or charge took. proc_charge charges without a check (a
 * process a previous broker was already watching).
 */
int primd__quota_conn_admit(uid_t uid);
void primd__quota_conn_release(uid_t uid);
int primd__quota_proc_admit(uid_t uid);
void primd__quota_proc_charge(uid_t uid);
void primd__quota_proc_release(uid_t uid);

/*
 * Objects: obj_admit says whether uid may make one more segment of bytes
 * bytes (0, or -ENOSPC), reading kernel.shmmni live; it charges nothing.
 * obj_charge charges segment `key` (PRIMD_QUOTA_OBJ) to uid, from the
 * moment the segment exists, without a check (adoption charges what a
 * previous broker made); obj_release gives it back, and does nothing for
 * a key that is not charged.
 */
int primd__quota_obj_admit(uid_t uid, uint64_t bytes);
void primd__quota_obj_charge(uint32_t key, uid_t uid, uint64_t bytes);
void primd__quota_obj_release(uint32_t key);

/* Segments prim holds (the registry and every object). */
uint32_t primd__quota_segments(void);

#endif
