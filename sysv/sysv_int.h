/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Internals of libsysv shared by its files: the broker client (broker.c),
 * the per-process id cache (cache.c), the copies of the caller's memory
 * (fault.c), the credential generation (creds.c) and the error conventions.
 *
 * Concurrency: every function here is safe from any number of threads at
 * once. None is async-signal-safe. Functions returning int return 0 (or a
 * non-negative value) or -errno; only the exported SysV functions set errno.
 */
#ifndef SYSV_INT_H
#define SYSV_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto.h"
#include "ucopy.h"

#define SYSV_EXPORT __attribute__((visibility("default")))
#define SYSV_HIDDEN __attribute__((visibility("hidden")))

#define SYSV_IPC_64 0x100 /* glibc's and the kernel's IPC_64 */
#define SYSV_IPCMNI 32768 /* ids are index + 32768 * sequence */

/*
 * Set errno from a -errno result and return -1; pass others through.
 * -ENOTRECOVERABLE is libsysv's own word for a damaged object (libprim
 * found its memory inconsistent, or the broker marked it so): its users
 * see EIDRM, which the kernel gives for an object that went away.
 */
#define SYSV_RET(r)                                                     \
	((r) < 0 ? (errno = (r) == -ENOTRECOVERABLE ? EIDRM : (int)-(r), -1) \
		 : (r))

/*
 * EFAULT, not SIGSEGV (fault.c): sysv__copy copies n bytes between the
 * caller's memory and ours, as the kernel's copy_from_user/copy_to_user:
 * 0, or -EFAULT for a pointer the caller may not use, whatever it is
 * (NULL, unmapped, PROT_NONE, (void *)-1). It makes no system call; the
 * first one in a process that has not run libsysv's constructor yet
 * installs the SIGSEGV/SIGBUS handler first. Async-signal-safe once
 * initialised.
 */
enum { SYSV_FAULT_NONE, SYSV_FAULT_BUSY, SYSV_FAULT_READY };
SYSV_HIDDEN extern _Atomic int sysv__fault_state;
SYSV_HIDDEN void sysv__fault_init(void);

static inline int
sysv__copy(void *dst, const void *src, size_t n)
{
	if (__builtin_expect(atomic_load_explicit(&sysv__fault_state,
						  memory_order_relaxed) !=
				 SYSV_FAULT_READY,
			     0))
		sysv__fault_init();
	return prim__ucopy(dst, src, n);
}

/*
 * The credential generation: bumped (creds.c) by every successful setuid,
 * seteuid, setreuid, setresuid, their gid forms, setgroups, initgroups and
 * capset the process makes through the C library. The broker judges a
 * request by the credentials the connection was made with, and a cached
 * object keeps the access it was judged to have: both remember the
 * generation they belong to, and a call that sees another one connects
 * or asks again. Raw system calls are not seen (libsysv(7)).
 */
extern SYSV_HIDDEN _Atomic uint32_t sysv__cred_gen;

/*
 * The generation now. Relaxed: a thread's own credential change is
 * sequenced before its next call, and another thread's is ordered by
 * whatever synchronisation told this one about it.
 */
static inline uint32_t
sysv__gen(void)
{
	return atomic_load_explicit(&sysv__cred_gen, memory_order_relaxed);
}

/*
 * A mapped object: one slot of the id cache, or a temporary record made
 * for one call while its slot is busy. Fields other than ctl, access,
 * perm_gen and gen are written only while the slot is exclusively owned
 * (BUSY) and are stable while the caller holds a reference.
 *
 * An object the caller may not read cannot be mapped (the kernel refuses
 * the attach; a write-only class gets no segment access at all): it gets a
 * temporary record with base, hdr and handle NULL, the access and nsems
 * the broker reported, so calls can fail in the kernel's order (EFBIG,
 * EINVAL before EACCES), and a write-only caller's operations go to the
 * broker. Such a record is never cached: the next call asks the broker
 * again, and so sees a permission change or a removal.
 */
struct sysv_obj {
	_Atomic uint64_t ctl; /* CACHE_* flags and reference count */
	int id;
	int type;		   /* PRIMD_SEM or PRIMD_MSG */
	int temp;		   /* not in the cache: freed on release */
	int rw;			   /* attached read-write */
	int nsems;		   /* semaphore sets: nsems (0 for queues) */
	_Atomic uint32_t access;   /* PRIMD_ACC_* from the broker */
	_Atomic uint32_t perm_gen; /* registry perm_gen access belongs to */
	_Atomic uint32_t gen;	   /* sysv__cred_gen access belongs to */
	void *base;		   /* the attached segment */
	struct primd_obj_shm *hdr; /* == base; NULL: not mapped */
	void *handle;		   /* struct prim_semset * or prim_msgq * */
};

/* Limits the broker reported in its HELLO reply (valid once connected). */
SYSV_HIDDEN const struct primd_info *sysv__limits(int *err);
/* msgmax and semopm as the kernel would check a call needing want now:
 * the namespace's sysctl (re-read when want exceeds the cached value, and
 * taken from the registry when the broker has read another), or the
 * broker's value if it was pinned (broker.c). */
SYSV_HIDDEN uint32_t sysv__msgmax(const struct primd_info *lim, uint64_t want);
SYSV_HIDDEN uint32_t sysv__semopm(const struct primd_info *lim, uint64_t want);

/*
 * The registry entry of id's index (type PRIMD_SEM or PRIMD_MSG), in the
 * registry the broker publishes read-only, or NULL when none is mapped
 * yet. Only the broker writes it: read it with primd_ent_read, or single
 * words with ck_pr loads.
 */
SYSV_HIDDEN const struct primd_ent_shm *sysv__ent(int type, int id);
/* No entry of type at or above this index was ever used (REG_1); -1
 * without a registry. A scan of every entry stops there, so that it
 * does not make the registry's untouched pages resident. */
SYSV_HIDDEN int sysv__ent_hi(int type);

/* The shmid of the registry mapped (for procfs.c, which hides it), or -1. */
SYSV_HIDDEN int sysv__reg_shmid(void);

/* shmctl(SHM_INFO): take the broker's segments off *si (procfs.c). */
struct shm_info;
SYSV_HIDDEN void sysv__shm_info_hide(struct shm_info *si);

/*
 * A libprim call on object id returned r: when r says the object is
 * damaged (-ENOTRECOVERABLE), tell the broker, which checks it itself
 * (PRIMD_REPORT). Returns r.
 */
SYSV_HIDDEN int sysv__judge(int type, int id, int r);

/*
 * Make sure this process is registered with the broker (it said HELLO since
 * its last fork). Cheap when it is. Returns 0 or -errno (-ENOSYS: no broker).
 */
SYSV_HIDDEN int sysv__registered(void);

/*
 * One request, one reply. Fills in magic, version and seq; connects (and
 * says HELLO) first when needed. Returns 0 with the reply in *rep (whose
 * err may be non-zero), or -errno when the broker cannot be reached.
 */
SYSV_HIDDEN int sysv__call(struct primd_req *req, struct primd_rep *rep);
/*
 * sysv__call for wait.c, which must not make a program that never had a
 * broker wait, nor deadlock in a signal handler: only when this process
 * (or the one it was forked from) has reached a broker, giving up at once
 * (-EBUSY) when another call holds the connection and (-ENOSYS) when no
 * broker answers a single attempt. Otherwise as sysv__call.
 */
SYSV_HIDDEN int sysv__call_quick(struct primd_req *req, struct primd_rep *rep);

/* next.c: the real function behind an interposed name (dlsym(RTLD_NEXT),
 * once, kept in *slot); NULL inside a lookup of this thread's. */
SYSV_HIDDEN void *sysv__next(void *_Atomic *slot, const char *name);
/* semget/msgget: the id of key (by the broker), mapped; or -errno. */
SYSV_HIDDEN int sysv__get_key(int type, int key, int flags, int nsems);
/* IPC_INFO, SEM_INFO or MSG_INFO (cmd) of type: limits and usage. */
SYSV_HIDDEN int sysv__info(int type, int cmd, struct primd_info *info);

/*
 * sysv__call with trailers (proto.h): txlen bytes of tx follow the
 * request; up to rxcap bytes after the reply go to rx, their number to
 * *rxlen. A reply longer than that breaks the connection (-ENOSYS).
 */
SYSV_HIDDEN int sysv__call_x(struct primd_req *req, const void *tx,
			     size_t txlen, struct primd_rep *rep, void *rx,
			     size_t rxcap, size_t *rxlen);

/*
 * Sleep for a poll of the broker (PRIMD_SEMOP_ZERO, PRIMD_MSGRCV): *delay
 * ns, no later than *deadline (CLOCK_MONOTONIC, NULL: none), then double
 * *delay up to 50 ms. Returns 0, -EAGAIN (the deadline has passed) or
 * -EINTR (a signal handler ran).
 */
SYSV_HIDDEN int sysv__poll_sleep(long *delay, const struct timespec *deadline);

/*
 * An operation the broker does for a caller that may not map the object
 * read-write (PRIMD_SEMOP, PRIMD_MSGSND, PRIMD_MSGRCV: proto.h): send req
 * (its op, type, id, flags, nsems set) with the trailer tx, the reply's
 * trailer to rx as sysv__call_x does; while the broker says it would wait
 * (the error wait_err: -EAGAIN with PRIMD_REP_BLOCKED, or -ENOMSG; 0:
 * never wait), ask again after sysv__poll_sleep, up to *deadline
 * (CLOCK_MONOTONIC, NULL: none). Returns 0 or -errno; -ENOTRECOVERABLE
 * when the object is damaged, -EIDRM when it was removed while we waited.
 */
SYSV_HIDDEN int sysv__proxy(struct primd_req *req, const void *tx,
			    size_t txlen, void *rx, size_t rxcap,
			    size_t *rxlen, int wait_err,
			    const struct timespec *deadline);

/*
 * Find the object with this id, mapping it on a miss (PRIMD_OPEN). On
 * success *op holds a reference the caller drops with sysv__put. Returns
 * 0, -EINVAL (unknown, stale or removed id), -ENOSYS (no broker), -ENOMEM.
 */
SYSV_HIDDEN int sysv__get(int type, int id, struct sysv_obj **op);
SYSV_HIDDEN void sysv__put(struct sysv_obj *o);

/* Forget the cached mapping of id (after IPC_RMID). */
SYSV_HIDDEN void sysv__forget(int type, int id);

/* Read the ipc_perm fields of the object from the registry. */
struct sysv_perm {
	uint32_t uid, gid, cuid, cgid, mode;
	int32_t key;
};
SYSV_HIDDEN void sysv__perm(const struct sysv_obj *o, struct sysv_perm *p);

/* Access the caller has now (loaded atomically). */
static inline uint32_t
sysv__access(struct sysv_obj *o)
{
	return atomic_load_explicit(&o->access, memory_order_relaxed);
}

/* Fork handlers (init.c registers them once). */
SYSV_HIDDEN void sysv__broker_atfork_child(void);
SYSV_HIDDEN void sysv__cache_atfork_child(void);

#endif
