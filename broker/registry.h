/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker's private view of its registry (the shared layout is in
 * proto.h): which object lives at which index, its backing segment and
 * libprim handle, and the functions of the broker's parts:
 *
 *   registry.c  entries: ids, lookup, publishing entries, removal, damage
 *   perm.c      the kernel's permission rules, from the registry only
 *   segment.c   backing segments: creation as the creator, the mirrored
 *               kernel owner and mode, attaching
 *   adopt.c     the state file, and adoption of a registry a broker left
 *   requests.c  the requests of proto.h
 *   procs.c     watched processes, reaping the dead, the owner sweep
 *
 * Only the broker writes the registry, and the broker is one thread: no
 * broker-private field is accessed concurrently. Clients map the registry
 * read-only and read entries with primd_ent_read (proto.h); the broker
 * writes them between primd__ent_begin and primd__ent_end.
 */
#ifndef PRIMD_REGISTRY_H
#define PRIMD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define T_SEM 0
#define T_MSG 1

/* How long the broker retries against a client's writes, per call. */
#define PRIMD_PATIENCE_NS 2000000ULL /* 2 ms */
/* Reaps of one object that gave up in a row before it counts as damaged. */
#define PRIMD_STRIKES 8

/* Broker-private view of one object: its mapping and libprim handle. */
struct primd_obj {
	struct primd_obj_shm *hdr; /* NULL: not attached */
	void *handle; /* struct prim_semset * or struct prim_msgq * */
	int counted;  /* counted in nobj (and nsems) */
	int strikes;  /* reaps that gave up in a row */
	int64_t trimmed; /* queues: realtime second of the last trim, 0 never */
};

/* Options that shape the objects the broker creates. */
struct primd_conf {
	struct primd_info lim;
	uint32_t sem_nprocs, sem_nslots;
	uint32_t msg_qbytes_max, msg_nslots;
};

struct primd_reg {
	struct primd_reg_shm *shm;
	int shmid;
	struct primd_conf conf;
	struct primd_obj obj[2][PRIMD_NIDX];
	uint32_t nobj[2]; /* LIVE and DAMAGED objects per type */
	int hi[2];	  /* no object at or above this index (scan bound) */
	int next_idx[2];  /* where create() looks first (the idr cursor) */
	int prochi;	  /* no watched process at or above */
	uint64_t nsems;	  /* semaphores in those sets */
	uid_t self;	  /* the broker's euid */
};

/* Caller credentials, from SO_PEERCRED and SO_PEERGROUPS. */
struct primd_cred {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups;
	gid_t *groups;
	uint64_t caps;	/* PRIMD_CAP_* the peer has where the kernel looks */
};

/*
 * The capabilities the kernel's SysV checks use, bit = capability number.
 * CAP_IPC_OWNER and CAP_SYS_ADMIN count in the peer's own user namespace
 * (ns_capable: the namespace owning the IPC namespace); CAP_SYS_RESOURCE
 * only in the initial one (msgctl uses capable()).
 */
#define PRIMD_CAP_IPC_OWNER (1ULL << 15)
#define PRIMD_CAP_SYS_ADMIN (1ULL << 21)
#define PRIMD_CAP_SYS_RESOURCE (1ULL << 24)

/* ---- registry.c ---- */

/* The id of the object at index i whose sequence is seq. */
int primd__mkid(uint16_t seq, int i);
/* The index of the LIVE object with this id and type, or -1. */
int primd__lookup(struct primd_reg *r, int t, int32_t id);
/* The index of the LIVE or DAMAGED object with this id, or -1. */
int primd__lookup_any(struct primd_reg *r, int t, int32_t id);
/* The LIVE object with this key, or -1. */
int primd__find_key(struct primd_reg *r, int t, int32_t key);
/* Write an entry clients may be reading (ck_sequence write side). */
void primd__ent_begin(struct primd_ent_shm *e);
void primd__ent_end(struct primd_ent_shm *e);
/* Free an entry (the next object at its index gets another id). */
void primd__ent_free(struct primd_ent_shm *e);
/* Open the libprim handle of an attached object, with the broker's
 * patience, if its memory has the geometry the registry made: seg_size
 * bytes of segment, nsems semaphores (a set). Returns 0 or -errno
 * (-EINVAL for another geometry). */
int primd__open_handle(int t, struct primd_obj *o, uint64_t seg_size,
		       uint32_t nsems);
void primd__close_handle(int t, struct primd_obj *o);
/* REG_1 (proto.h): raise a published scan bound (the registry's
 * ent_hi[t] or proc_hi) to cover index i, before it is first written. */
void primd__reg_raise(uint32_t *hi, int i);
/* Count an object as existing (nobj, nsems, hi). */
void primd__count(struct primd_reg *r, int t, int i);
/* Remove object [t][i]: waiters get EIDRM, the segment goes at its last
 * detach, the index is freed. Also finishes a removal a dead broker began.
 * Never touches a damaged object's memory. */
void primd__remove(struct primd_reg *r, int t, int i);
/* Mark object [t][i] damaged (why: for the log): its users get EIDRM,
 * the broker never touches its memory again. */
void primd__damage(struct primd_reg *r, int t, int i, const char *why);
/* A libprim call on [t][i] returned rc: count it (a strike for -EBUSY,
 * damage for -ENOTRECOVERABLE, a clean slate otherwise). Returns rc. */
int primd__judge(struct primd_reg *r, int t, int i, int rc);
/* ---- limits.c ---- */

void primd__limits_pin(unsigned bits);
/* Set l's limits that are not pinned from the namespace's sysctls. */
void primd__limits_read(struct primd_info *l);
/* The same for r's limits (and the queue pool's ceiling that follows
 * msgmnb); 1 if anything changed. */
int primd__limits_refresh(struct primd_reg *r);
/* 4 * msgmnb, at most INT32_MAX: --msg-qbytes-max's default. */
uint32_t primd__qbytes_max_of(uint32_t msgmnb);
/* msg_next_id or sem_next_id (t): the id the kernel would give the next
 * object, reset to -1 as the kernel does; -1 if unset. */
long long primd__next_id(int t);

/* Fill the limits and usage of an info reply. */
void primd__reg_info(struct primd_reg *r, struct primd_info *info);

/* ---- perm.c ---- */

/* The capabilities of pid as the kernel's checks see them (0 if gone). */
uint64_t primd__peer_caps(pid_t pid, uid_t uid, gid_t gid);
/* PRIMD_ACC_R | PRIMD_ACC_W the caller's class is granted. */
uint32_t primd__access(const struct primd_cred *c,
		       const struct primd_ent_shm *e);
/* ipcperms: 0 or EACCES for the mode bits requested in flg. */
int primd__ipcperms(const struct primd_cred *c,
		    const struct primd_ent_shm *e, int flg);
/* IPC_SET and IPC_RMID: the owner, the creator, or CAP_SYS_ADMIN. */
int primd__may_control(const struct primd_cred *c,
		       const struct primd_ent_shm *e);

/* ---- segment.c ---- */

/* Make a segment of size bytes whose cuid and cgid are uid and gid (as
 * far as the broker may). Returns the shmid or -errno. */
int primd__seg_create(size_t size, uid_t uid, gid_t gid);
/* Make the kernel's owner and mode of shmid mirror entry e. */
void primd__seg_mirror(int shmid, const struct primd_ent_shm *e);
/* The segment mode for an object mode (per class: rw, r, or nothing). */
unsigned primd__seg_mode(unsigned mode);
/* Attach a segment the broker made, read-write. (void *)-1 on failure. */
void *primd__seg_attach(int shmid);

/* ---- adopt.c ---- */

/*
 * Attach the registry named in statefile and adopt every object in it, or
 * make a new registry and name it there. Returns 0 or -errno.
 */
int primd__reg_open(struct primd_reg *r, const char *statefile,
		    const struct primd_conf *conf, int *adopted);

/* ---- requests.c ---- */

/*
 * Handle one request from cred: req, followed in the datagram by inlen
 * bytes at in (its op's trailer, see proto.h). Fills *rep; a reply
 * trailer (PRIMD_MSGRCV) goes to out, of outcap bytes. Returns the
 * trailer's length (0 if none).
 */
/*
 * PRIMD_REAPED (proto.h): reap process pid now if it is dead; the errno
 * to reply. Set by primd.c, which holds the pidfds; NULL (ESRCH) where no
 * process is watched (the fuzzers).
 */
extern int (*primd__reaped_fn)(struct primd_reg *r, pid_t pid);

size_t primd__reg_handle(struct primd_reg *r, const struct primd_cred *cred,
			 const struct primd_req *req, const void *in,
			 size_t inlen, struct primd_rep *rep, void *out,
			 size_t outcap);
/* The longest request trailer the broker accepts with these limits. */
size_t primd__trailer_max(const struct primd_info *lim);

/* ---- procs.c ---- */

/* Apply the death of pid to every object (prim_*_reap). */
void primd__reg_reap(struct primd_reg *r, pid_t pid);
/* Apply the death of pid to object [t][i] only. */
void primd__reg_reap_in(struct primd_reg *r, int t, int i, pid_t pid);
/*
 * The owner sweep, one share at a time: call fn(t, i, pid) for the pids
 * that own state in object [t][i] (SEM_UNDO records, calls in progress),
 * whether or not they ever registered, object after object from *cursor.
 * The pids are what the object's writers wrote: those no process can have
 * (<= 0, above kernel.pid_max) are skipped, and fn returns the work it
 * did (1: a reap or a look at /proc, 0: nothing). A share ends after
 * PRIMD_SWEEP_WORK, or PRIMD_SWEEP_NS; one object gets at most
 * PRIMD_SWEEP_OBJ_WORK of it. Returns 1 if it went round every object, 0
 * if it stopped (*cursor: where the next share starts).
 */
#define PRIMD_SWEEP_WORK     256
#define PRIMD_SWEEP_OBJ_WORK 64
#define PRIMD_SWEEP_NS	     5000000ULL /* 5 ms */
int primd__reg_owners(struct primd_reg *r, int (*fn)(int, int, pid_t),
		      int *cursor);
/*
 * Give back the memory queues no longer use (trim.c), one share at a time
 * from *cursor, within PRIMD_SWEEP_NS. Returns 1 if it went round every
 * queue, 0 if it stopped.
 */
int primd__reg_trim(struct primd_reg *r, int *cursor);
/* CLOCK_MONOTONIC in nanoseconds: the sweeps' budgets (procs.c). */
uint64_t primd__now_ns(void);
/* The watched-process table: find, add, drop by slot. -1 if none. */
int primd__proc_find(struct primd_reg *r, pid_t pid);
int primd__proc_add(struct primd_reg *r, pid_t pid, uint64_t start);
void primd__proc_drop(struct primd_reg *r, int slot);
/* Start time of pid from /proc (0 if it cannot be read). */
uint64_t primd__proc_start(pid_t pid);

#endif
