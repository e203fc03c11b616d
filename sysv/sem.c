/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * semget, semop, semtimedop and semctl on libprim semaphore sets. semget
 * and the control commands that need the broker's authority (IPC_SET,
 * IPC_RMID, IPC_INFO, SEM_INFO, SEM_STAT, SEM_STAT_ANY) ask the broker;
 * everything else runs in the caller on the mapped set. Checks come in the
 * kernel's order (ipc/sem.c), so each call fails with the errno the kernel
 * would give. Every structure the caller hands in or out is copied with
 * sysv__copy, so a bad pointer gives EFAULT where the kernel copies it:
 * the operations and the timeout before anything else, results once they
 * are complete.
 *
 * Concurrency: every function is thread-safe; none is async-signal-safe
 * or a cancellation point (see libsysv(7)).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

#include "prim/sem.h"
#include "sysv_int.h"

/* POSIX leaves this union to the application; glibc declares it only
 * under a feature macro. */
union sysv_semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

_Static_assert(sizeof(struct sembuf) == sizeof(struct prim_sembuf),
	       "struct sembuf is prim_sembuf");
_Static_assert(IPC_NOWAIT == PRIM_IPC_NOWAIT && SEM_UNDO == PRIM_SEM_UNDO,
	       "flag bits are the kernel's");

/* The kernel's compile-time constants (uapi linux/sem.h) that IPC_INFO
 * reports whatever the tunables say. */
#define K_SEMMAP 1024000000
#define K_SEMMNU 1024000000
#define K_SEMUME 500
#define K_SEMUSZ 20
#define K_SEMVMX 32767
#define K_SEMAEM 32767

/* Operations copied to the stack (the kernel's SEMOPM_FAST); more are
 * copied to the heap. */
#define FAST_SOPS 64
/* Values of GETALL and SETALL on the stack; more on the heap. */
#define FAST_VALS 256

SYSV_EXPORT int
semget(key_t key, int nsems, int semflg)
{
	int saved = errno;
	int r = nsems < 0 ? -EINVAL
			  : sysv__get_key(PRIMD_SEM, key, semflg, nsems);

	errno = saved; /* changed only on failure, as the kernel's */
	return SYSV_RET(r);
}

/* Absolute CLOCK_MONOTONIC deadline rel from now, saturating. */
static void
deadline_of(const struct timespec *rel, struct timespec *abs)
{
	clock_gettime(CLOCK_MONOTONIC, abs);
	if (rel->tv_sec > INT_MAX / 2 - abs->tv_sec) {
		abs->tv_sec = INT_MAX / 2; /* decades: as good as never */
		abs->tv_nsec = 0;
		return;
	}
	abs->tv_sec += rel->tv_sec;
	abs->tv_nsec += rel->tv_nsec;
	if (abs->tv_nsec >= 1000000000L) {
		abs->tv_sec++;
		abs->tv_nsec -= 1000000000L;
	}
}

/*
 * semop for a caller that may not map the set read-write: a reader (it
 * maps it read-only, while libprim writes the set even to wait) or a
 * writer without read access (the kernel lets it map nothing). The broker
 * does the operations for it (PRIMD_SEMOP), never waiting; when they
 * would wait, ask again after a sleep of 1 ms doubling to 50 ms
 * (libsysv(7)). The caller checked nsops, the pointers, the timeout, and
 * the access the operations need.
 */
static int
semop_broker(int semid, const struct sembuf *sops, size_t nsops,
	     const struct timespec *timeout)
{
	struct primd_sembuf wire[64], *w = wire;
	struct primd_req req;
	struct timespec abs;
	int r;

	if (nsops > sizeof(wire) / sizeof(wire[0]) &&
	    (w = malloc(nsops * sizeof(*w))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < nsops; i++) {
		w[i].sem_num = sops[i].sem_num;
		w[i].sem_op = sops[i].sem_op;
		w[i].sem_flg = sops[i].sem_flg;
	}
	if (timeout != NULL)
		deadline_of(timeout, &abs);
	memset(&req, 0, sizeof(req));
	req.op = PRIMD_SEMOP;
	req.type = PRIMD_SEM;
	req.id = semid;
	req.nsems = (int32_t)nsops;
	r = sysv__proxy(&req, w, nsops * sizeof(*w), NULL, 0, NULL, -EAGAIN,
			timeout != NULL ? &abs : NULL);
	if (w != wire)
		free(w);
	return r;
}

/*
 * semop and semtimedop, once the timeout (if any) is in our memory. The
 * kernel's order: EINVAL (nsops 0), E2BIG, the copy of the operations
 * (EFAULT), then the timeout's value, the id and the rest.
 */
static int
do_semop(int semid, const struct sembuf *usops, size_t nsops,
	 const struct timespec *timeout)
{
	struct sembuf fast[FAST_SOPS], *sops = fast;
	const struct primd_info *lim;
	struct timespec abs;
	struct sysv_obj *o;
	unsigned max = 0;
	int alter = 0, r;

	/* The system calls take unsigned int nsops (SYSCALL_DEFINE3(semop,
	 * ..., unsigned, nsops)): libc passes size_t, the kernel drops the
	 * upper 32 bits, so 2^32 + 1 is one operation and 2^32 is none. */
	nsops = (unsigned int)nsops;
	if (nsops < 1)
		return -EINVAL;
	if ((lim = sysv__limits(&r)) == NULL)
		return r;
	if (nsops > sysv__semopm(lim, nsops))
		return -E2BIG;
	if (nsops > FAST_SOPS && (sops = malloc(nsops * sizeof(*sops))) == NULL)
		return -ENOMEM;
	/* Only the copy is used from here on: another thread may change
	 * the caller's array, never what we checked. */
	if (sysv__copy(sops, usops, nsops * sizeof(*sops)) != 0) {
		r = -EFAULT;
		goto out;
	}
	if (timeout != NULL && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
				timeout->tv_nsec >= 1000000000L)) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < nsops; i++) {
		if (sops[i].sem_num > max)
			max = sops[i].sem_num;
		if (sops[i].sem_op != 0)
			alter = 1;
	}
	if ((r = sysv__get(PRIMD_SEM, semid, &o)) != 0)
		goto out;
	/* The kernel's order: EFBIG, then EACCES (even without access). */
	if (max >= (unsigned)o->nsems)
		r = -EFBIG;
	else if (!(sysv__access(o) & (alter ? PRIMD_ACC_W : PRIMD_ACC_R)))
		r = -EACCES;
	else if (!o->rw) /* read-only or write-only: the broker does it */
		r = semop_broker(semid, sops, nsops, timeout);
	else if (timeout != NULL) {
		deadline_of(timeout, &abs);
		r = prim_sem_op_timed(
		    o->handle, (const struct prim_sembuf *)sops, nsops, &abs);
	} else {
		r = prim_sem_op(o->handle, (const struct prim_sembuf *)sops,
				nsops);
	}
	sysv__put(o);
	if (r == -ETIMEDOUT)
		r = -EAGAIN;
	r = sysv__judge(PRIMD_SEM, semid, r);
out:
	if (sops != fast)
		free(sops);
	return r;
}

SYSV_EXPORT int
semop(int semid, struct sembuf *sops, size_t nsops)
{
	int saved = errno, r = do_semop(semid, sops, nsops, NULL);

	errno = saved; /* changed only on failure, as the kernel's */
	return SYSV_RET(r);
}

SYSV_EXPORT int
semtimedop(int semid, struct sembuf *sops, size_t nsops,
	   const struct timespec *timeout)
{
	struct timespec ts;
	int r, saved = errno;

	/* The kernel copies the timeout before anything else. */
	if (timeout != NULL && sysv__copy(&ts, timeout, sizeof(ts)) != 0)
		return SYSV_RET(-EFAULT);
	r = do_semop(semid, sops, nsops, timeout != NULL ? &ts : NULL);
	errno = saved; /* changed only on failure, as the kernel's */
	return SYSV_RET(r);
}

static void
fill_stat(struct sysv_obj *o, int id, struct semid_ds *ds)
{
	struct sysv_perm p;
	int64_t otime, ctime;

	sysv__perm(o, &p);
	prim_semset_times(o->handle, &otime, &ctime);
	memset(ds, 0, sizeof(*ds));
	ds->sem_perm.__key = p.key;
	ds->sem_perm.uid = p.uid;
	ds->sem_perm.gid = p.gid;
	ds->sem_perm.cuid = p.cuid;
	ds->sem_perm.cgid = p.cgid;
	ds->sem_perm.mode = (unsigned short)p.mode;
	ds->sem_perm.__seq = (unsigned short)(id / SYSV_IPCMNI);
	ds->sem_otime = (time_t)otime;
	ds->sem_ctime = (time_t)ctime;
	ds->sem_nsems = (unsigned long)prim_semset_nsems(o->handle);
}

static int
sem_info(int cmd, struct seminfo *usi)
{
	struct primd_info info;
	struct seminfo local, *si = &local;
	int r;

	if ((r = sysv__info(PRIMD_SEM, cmd, &info)) != 0)
		return r;
	memset(si, 0, sizeof(*si));
	si->semmni = (int)info.semmni;
	si->semmns = (int)info.semmns;
	si->semmsl = (int)info.semmsl;
	si->semopm = (int)info.semopm;
	si->semvmx = K_SEMVMX;
	si->semmnu = K_SEMMNU;
	si->semmap = K_SEMMAP;
	si->semume = K_SEMUME;
	if (cmd == SEM_INFO) {
		si->semusz = (int)info.sem_sets;
		si->semaem = (int)info.sem_sems;
	} else {
		si->semusz = K_SEMUSZ;
		si->semaem = K_SEMAEM;
	}
	if (sysv__copy(usi, si, sizeof(*si)) != 0)
		return -EFAULT; /* after the work, as the kernel */
	return info.max_index < 0 ? 0 : info.max_index;
}

static int
sem_stat_index(int index, int cmd, struct semid_ds *uds)
{
	struct primd_req req;
	struct primd_rep rep;
	struct semid_ds local, *ds = &local;
	int r;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_STAT_INDEX;
	req.type = PRIMD_SEM;
	req.id = index;
	req.flags = cmd == SEM_STAT_ANY;
	if ((r = sysv__call(&req, &rep)) != 0)
		return r;
	if (rep.err != 0)
		return -rep.err;
	/* What the broker read on its own mapping: the caller may have
	 * none (SEM_STAT_ANY without R). */
	memset(ds, 0, sizeof(*ds));
	ds->sem_perm.__key = rep.stat.key;
	ds->sem_perm.uid = rep.stat.uid;
	ds->sem_perm.gid = rep.stat.gid;
	ds->sem_perm.cuid = rep.stat.cuid;
	ds->sem_perm.cgid = rep.stat.cgid;
	ds->sem_perm.mode = (unsigned short)(rep.stat.mode & 0777);
	ds->sem_perm.__seq = (unsigned short)(rep.id / SYSV_IPCMNI);
	ds->sem_otime = (time_t)rep.stat.otime;
	ds->sem_ctime = (time_t)rep.stat.ctime;
	ds->sem_nsems = (unsigned long)rep.stat.nsems;
	if (sysv__copy(uds, ds, sizeof(*ds)) != 0)
		return -EFAULT;
	return rep.id;
}

/* SET and RMID: the broker checks ownership (EPERM) and does them. */
static int
sem_down(int semid, int cmd, const struct semid_ds *uds)
{
	struct primd_req req;
	struct primd_rep rep;
	struct semid_ds ds;
	int r;

	memset(&req, 0, sizeof(req));
	req.type = PRIMD_SEM;
	req.id = semid;
	if (cmd == IPC_SET) {
		/* Copied before the id is even looked up, as the kernel. */
		if (sysv__copy(&ds, uds, sizeof(ds)) != 0)
			return -EFAULT;
		req.op = PRIMD_SET;
		req.uid = ds.sem_perm.uid;
		req.gid = ds.sem_perm.gid;
		req.mode = ds.sem_perm.mode & 0777;
	} else {
		req.op = PRIMD_RMID;
	}
	if ((r = sysv__call(&req, &rep)) != 0)
		return r;
	if (rep.err != 0)
		return -rep.err;
	/* The broker sets sem_ctime of an IPC_SET itself. */
	if (cmd == IPC_RMID)
		sysv__forget(PRIMD_SEM, semid);
	return 0;
}

/*
 * SETVAL and SETALL for a writer that may not read the set (it maps
 * nothing): the broker does them (PRIMD_SEMCTL). The caller checked the
 * access and the values.
 */
static int
setval_broker(int semid, int cmd, int semnum, int val,
	      const unsigned short *vals, int nsems)
{
	struct primd_req req;
	struct primd_rep rep;
	uint16_t *wire = NULL;
	size_t len = 0;
	int r;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_SEMCTL;
	req.type = PRIMD_SEM;
	req.id = semid;
	req.flags = cmd;
	req.nsems = semnum;
	req.mode = (uint32_t)val;
	if (cmd == SETALL) {
		len = (size_t)nsems * sizeof(*wire);
		if ((wire = malloc(len ? len : 1)) == NULL)
			return -ENOMEM;
		for (int i = 0; i < nsems; i++)
			wire[i] = vals[i];
	}
	r = sysv__call_x(&req, wire, len, &rep, NULL, 0, NULL);
	free(wire);
	if (r == 0)
		r = rep.err == EIDRM ? -ENOTRECOVERABLE : -rep.err;
	return r;
}

/*
 * A control call on the mapped set that gave up (-EBUSY: other processes
 * kept changing it): ask the broker to look; if it does not find the set
 * damaged, try again, a few times, then call it damaged.
 */
static int
retry_busy(int semid, int r, struct sysv_obj *o, int cmd, int semnum,
	   int val, const unsigned short *vals)
{
	struct primd_req req;
	struct primd_rep rep;

	for (int tries = 0; r == -EBUSY && tries < 8; tries++) {
		memset(&req, 0, sizeof(req));
		req.op = PRIMD_REPORT;
		req.type = PRIMD_SEM;
		req.id = semid;
		if (sysv__call(&req, &rep) == 0 && rep.err == EIDRM)
			return -ENOTRECOVERABLE;
		r = cmd == SETVAL ? prim_sem_setval(o->handle, semnum, val)
				  : prim_sem_setall(o->handle, vals);
	}
	return r == -EBUSY ? -ENOTRECOVERABLE : r;
}

/*
 * GETALL and SETALL through a copy of the values: GETALL reads the set,
 * then copies out (EFAULT after the work); SETALL copies in first
 * (EFAULT before ERANGE), as the kernel. A writer that may not read the
 * set (nothing mapped) has its SETALL done by the broker.
 */
static int
sem_all(struct sysv_obj *o, int semid, int cmd, unsigned short *uvals)
{
	unsigned short fast[FAST_VALS], *vals = fast;
	int n = o->nsems, r = 0;
	size_t len;

	if (n < 0)
		return -EINVAL;
	len = (size_t)n * sizeof(*vals);
	if (n > FAST_VALS && (vals = malloc(len)) == NULL)
		return -ENOMEM;
	if (cmd == GETALL) {
		r = prim_sem_getall(o->handle, vals);
		if (r >= 0 && sysv__copy(uvals, vals, len) != 0)
			r = -EFAULT;
	} else if (sysv__copy(vals, uvals, len) != 0) {
		r = -EFAULT;
	} else if (!o->rw) {
		for (int i = 0; i < n && r == 0; i++)
			if (vals[i] > K_SEMVMX)
				r = -ERANGE;
		if (r == 0)
			r = setval_broker(semid, SETALL, 0, 0, vals, n);
	} else {
		r = retry_busy(semid, prim_sem_setall(o->handle, vals), o,
			       SETALL, 0, 0, vals);
	}
	if (vals != fast)
		free(vals);
	return r;
}

/* The commands that run on the mapped set (or, for a writer that may not
 * read it, in the broker). */
static int
sem_main(int semid, int semnum, int cmd, union sysv_semun arg)
{
	struct sysv_obj *o;
	uint32_t need =
	    cmd == SETALL || cmd == SETVAL ? PRIMD_ACC_W : PRIMD_ACC_R;
	int r;

	if (cmd == SETVAL && (arg.val < 0 || arg.val > K_SEMVMX))
		return -ERANGE;
	if ((r = sysv__get(PRIMD_SEM, semid, &o)) != 0)
		return r;
	if (cmd == SETVAL) {
		/* ERANGE, then EINVAL (semnum), then EACCES. */
		if (semnum < 0 || semnum >= o->nsems)
			r = -EINVAL;
		else if (!(sysv__access(o) & need))
			r = -EACCES;
		else if (!o->rw)
			r = setval_broker(semid, SETVAL, semnum, arg.val, NULL, 0);
		else
			r = retry_busy(semid,
				       prim_sem_setval(o->handle, semnum,
						       arg.val),
				       o, SETVAL, semnum, arg.val, NULL);
		goto out;
	}
	if (!(sysv__access(o) & need)) {
		r = -EACCES; /* before a bad semnum */
		goto out;
	}
	if (cmd == SETALL && !o->rw) {
		r = sem_all(o, semid, SETALL, arg.array);
		goto out;
	}
	if (o->handle == NULL) {
		r = -EACCES;
		goto out;
	}
	switch (cmd) {
	case IPC_STAT: {
		struct semid_ds ds;

		fill_stat(o, semid, &ds);
		r = sysv__copy(arg.buf, &ds, sizeof(ds)) != 0 ? -EFAULT : 0;
		break;
	}
	case GETALL:
	case SETALL:
		r = sem_all(o, semid, cmd, arg.array);
		break;
	case GETVAL:
		r = prim_sem_getval(o->handle, semnum);
		break;
	case GETPID:
		r = prim_sem_getpid(o->handle, semnum);
		break;
	case GETNCNT:
		r = prim_sem_getncnt(o->handle, semnum);
		break;
	case GETZCNT:
		r = prim_sem_getzcnt(o->handle, semnum);
		break;
	default:
		r = -EINVAL;
		break;
	}
out:
	sysv__put(o);
	(void)sysv__judge(PRIMD_SEM, semid, r);
	/* Removed under us: a new call on a removed set is EINVAL. */
	return r == -EIDRM ? -EINVAL : r;
}

SYSV_EXPORT int
semctl(int semid, int semnum, int cmd, ...)
{
	union sysv_semun arg = {0};
	va_list ap;
	int r, saved = errno;

	cmd &= ~SYSV_IPC_64;
	switch (cmd) {
	case SETVAL:
	case GETALL:
	case SETALL:
	case IPC_STAT:
	case IPC_SET:
	case IPC_INFO:
	case SEM_INFO:
	case SEM_STAT:
	case SEM_STAT_ANY:
		va_start(ap, cmd);
		arg = va_arg(ap, union sysv_semun);
		va_end(ap);
		break;
	default:
		break;
	}
	if (semid < 0)
		return SYSV_RET(-EINVAL);
	switch (cmd) {
	case IPC_INFO:
	case SEM_INFO:
		r = sem_info(cmd, arg.__buf);
		break;
	case SEM_STAT:
	case SEM_STAT_ANY:
		r = sem_stat_index(semid, cmd, arg.buf);
		break;
	case IPC_STAT:
	case GETALL:
	case SETALL:
	case GETVAL:
	case GETPID:
	case GETNCNT:
	case GETZCNT:
	case SETVAL:
		r = sem_main(semid, semnum, cmd, arg);
		break;
	case IPC_SET:
	case IPC_RMID:
		r = sem_down(semid, cmd, arg.buf);
		break;
	default:
		r = -EINVAL;
		break;
	}
	errno = saved;
	return SYSV_RET(r);
}
