/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * syscall(2) for the System V numbers: a program that calls
 * syscall(SYS_semop, ...) (or SYS_semget, SYS_semctl, SYS_semtimedop,
 * SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, or the SYS_ipc
 * multiplexer where the architecture has one) would reach the kernel,
 * which does not know libsysv's ids: EINVAL, or a child that waits for a
 * parent talking to the other implementation forever. Those numbers go to
 * libsysv's own functions instead, with the arguments the kernel takes
 * (ipc/syscall.c, ipc/sem.c, ipc/msg.c: an int semid, an unsigned nsops,
 * semctl's union as one word), and the result comes back as syscall()
 * returns it: the value, or -1 with errno. Every other number goes to the
 * C library's syscall() with all six argument words, as glibc's own
 * long syscall(long number, ...) reads them.
 *
 * IPC_64 in a raw semctl or msgctl command: the kernel strips it only on
 * the architectures that select ARCH_WANT_IPC_PARSE_VERSION for the
 * direct calls (alpha, arm, microblaze, mips n32/n64, xtensa) and in the
 * ipc multiplexer; elsewhere (x86-64, aarch64, ...) a command carrying it
 * is EINVAL, and so it is here. Where it is stripped, a command without
 * it asks the kernel for the old (IPC_OLD) structure layouts; libsysv
 * fills the modern ones (libsysv(7), BUGS).
 *
 * The shared-memory numbers (and SYS_ipc's SHM* calls) stay the kernel's,
 * as shm.c does for the functions.
 *
 * Concurrency: thread-safe; for the numbers that go to the C library,
 * async-signal-safe once libsysv's constructor has run (an atomic load
 * and a call), and never re-entrant into libsysv: libprim's own
 * syscall(SYS_futex, ...) passes straight through. The SysV numbers are
 * as safe as the functions they reach (not async-signal-safe). Before the
 * constructor, the first call looks the C library's syscall up with
 * dlsym(RTLD_NEXT); a call made from inside that lookup, or a lookup that
 * finds nothing, fails with ENOSYS.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sysv_int.h"

typedef long syscall_fn(long, ...);

static void *_Atomic real_syscall;

static syscall_fn *
resolve(void)
{
	return (syscall_fn *)sysv__next(&real_syscall, "syscall");
}

__attribute__((constructor)) static void
syscall_init(void)
{
	(void)resolve();
}

/* semctl's fourth argument, as the application declares it (sem.c). */
union raw_semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};
_Static_assert(sizeof(union raw_semun) == sizeof(unsigned long),
	       "semctl's union is one syscall word");

/*
 * The union from the word the caller passed: the same bytes, so SETVAL's
 * int is where the kernel finds it (the low half of the word, or the high
 * half on a big-endian 64-bit machine: ksys_semctl).
 */
static union raw_semun
semun_of(unsigned long w)
{
	union raw_semun u;

	memcpy(&u, &w, sizeof(u));
	return u;
}

#if defined(__alpha__) || defined(__arm__) || defined(__microblaze__) ||      \
    defined(__xtensa__) ||                                                     \
    (defined(__mips__) && defined(_MIPS_SIM) && _MIPS_SIM != _ABIO32)
#define DIRECT_PARSES_IPC_64 1
#else
#define DIRECT_PARSES_IPC_64 0
#endif

/* A command carrying IPC_64 where the kernel would not strip it. */
static int
bad_version(long cmd, int parses)
{
	return !parses && ((int)cmd & SYSV_IPC_64) != 0;
}

static long
raw_semctl(long semid, long semnum, long cmd, unsigned long arg, int parses)
{
	if (bad_version(cmd, parses)) {
		errno = EINVAL;
		return -1;
	}
	return semctl((int)semid, (int)semnum, (int)cmd, semun_of(arg));
}

static long
raw_msgctl(long msqid, long cmd, unsigned long buf, int parses)
{
	if (bad_version(cmd, parses)) {
		errno = EINVAL;
		return -1;
	}
	return msgctl((int)msqid, (int)cmd, (struct msqid_ds *)buf);
}

/* 32-bit words (x32 has 64-bit system call arguments and timespecs). */
#if ULONG_MAX == 0xffffffffUL && !(defined(__x86_64__) && defined(__ILP32__))
#define TIMESPEC32 1
#else
#define TIMESPEC32 0
#endif

/*
 * semtimedop with the timeout in the layout of the system call: the C
 * library's struct timespec on a 64-bit machine; on a 32-bit one, two
 * 32-bit words (old_timespec32) for SYS_semtimedop and the ipc
 * multiplexer, two 64-bit ones for SYS_semtimedop_time64.
 */
static long
raw_semtimedop(long semid, unsigned long sops, unsigned long nsops,
	       unsigned long uts, int ts64)
{
	struct timespec ts, *tp = (struct timespec *)uts;

	(void)ts;
	(void)ts64;
#if TIMESPEC32
	if (uts != 0) {
		if (ts64) {
			struct {
				int64_t sec, nsec;
			} k;

			if (sysv__copy(&k, tp, sizeof(k)) != 0)
				goto fault;
			ts.tv_sec = (time_t)k.sec;
			ts.tv_nsec = (long)k.nsec; /* upper half ignored */
		} else {
			struct {
				int32_t sec, nsec;
			} k;

			if (sysv__copy(&k, tp, sizeof(k)) != 0)
				goto fault;
			ts.tv_sec = k.sec;
			ts.tv_nsec = k.nsec;
		}
		tp = &ts;
	}
#endif
	return semtimedop((int)semid, (struct sembuf *)sops, (unsigned)nsops,
			  tp);
#if TIMESPEC32
fault:
	errno = EFAULT;
	return -1;
#endif
}

#ifdef SYS_ipc
/* ipc(2)'s calls (linux/ipc.h; not in the C library's headers). */
enum {
	K_SEMOP = 1,
	K_SEMGET = 2,
	K_SEMCTL = 3,
	K_SEMTIMEDOP = 4,
	K_MSGSND = 11,
	K_MSGRCV = 12,
	K_MSGGET = 13,
	K_MSGCTL = 14,
};

/*
 * The multiplexer (ksys_ipc): call's high 16 bits are a version, which
 * only MSGRCV reads (0: ptr points to {msgp, msgtyp}); SEMCTL's union is
 * read through ptr; the *ctl commands strip IPC_64. Returns 1 with *r set
 * when the call is ours, 0 for the others (SHM*, unknown: the kernel's).
 */
static int
raw_ipc(const long a[6], long *r)
{
	unsigned call = (unsigned)a[0] & 0xffff, version = (unsigned)a[0] >> 16;
	long first = (int)a[1], second = a[2], third = a[3], fifth = a[5];
	unsigned long ptr = (unsigned long)a[4], w;
	struct {
		void *msgp;
		long msgtyp;
	} kl;

	switch (call) {
	case K_SEMOP:
		*r = semop((int)first, (struct sembuf *)ptr, (unsigned)second);
		return 1;
	case K_SEMTIMEDOP:
		*r = raw_semtimedop(first, ptr, (unsigned long)second,
				    (unsigned long)fifth, 0);
		return 1;
	case K_SEMGET:
		*r = semget((key_t)first, (int)second, (int)third);
		return 1;
	case K_SEMCTL:
		if (ptr == 0) {
			errno = EINVAL;
			*r = -1;
		} else if (sysv__copy(&w, (void *)ptr, sizeof(w)) != 0) {
			errno = EFAULT;
			*r = -1;
		} else
			*r = raw_semctl(first, second, third, w, 1);
		return 1;
	case K_MSGSND:
		*r = msgsnd((int)first, (void *)ptr, (size_t)second,
			    (int)third);
		return 1;
	case K_MSGRCV:
		if (version != 0) {
			*r = msgrcv((int)first, (void *)ptr, (size_t)second,
				    fifth, (int)third);
		} else if (ptr == 0) {
			errno = EINVAL;
			*r = -1;
		} else if (sysv__copy(&kl, (void *)ptr, sizeof(kl)) != 0) {
			errno = EFAULT;
			*r = -1;
		} else
			*r = msgrcv((int)first, kl.msgp, (size_t)second,
				    kl.msgtyp, (int)third);
		return 1;
	case K_MSGGET:
		*r = msgget((key_t)first, (int)second);
		return 1;
	case K_MSGCTL:
		*r = raw_msgctl(first, second, ptr, 1);
		return 1;
	default:
		return 0;
	}
}
#endif

/* The SysV numbers: 1 with *r set, or 0 for every other number. */
static int
sysv_call(long n, const long a[6], long *r)
{
	switch (n) {
#ifdef SYS_semget
	case SYS_semget:
		*r = semget((key_t)a[0], (int)a[1], (int)a[2]);
		return 1;
#endif
#ifdef SYS_semop
	case SYS_semop:
		*r = semop((int)a[0], (struct sembuf *)a[1], (unsigned)a[2]);
		return 1;
#endif
#ifdef SYS_semtimedop
	case SYS_semtimedop:
		*r = raw_semtimedop(a[0], (unsigned long)a[1],
				    (unsigned long)a[2], (unsigned long)a[3],
				    !TIMESPEC32);
		return 1;
#endif
#if defined(SYS_semtimedop_time64) &&                                         \
    (!defined(SYS_semtimedop) || SYS_semtimedop_time64 != SYS_semtimedop)
	case SYS_semtimedop_time64:
		*r = raw_semtimedop(a[0], (unsigned long)a[1],
				    (unsigned long)a[2], (unsigned long)a[3], 1);
		return 1;
#endif
#ifdef SYS_semctl
	case SYS_semctl:
		*r = raw_semctl(a[0], a[1], a[2], (unsigned long)a[3],
				DIRECT_PARSES_IPC_64);
		return 1;
#endif
#ifdef SYS_msgget
	case SYS_msgget:
		*r = msgget((key_t)a[0], (int)a[1]);
		return 1;
#endif
#ifdef SYS_msgsnd
	case SYS_msgsnd:
		*r = msgsnd((int)a[0], (void *)a[1], (size_t)a[2], (int)a[3]);
		return 1;
#endif
#ifdef SYS_msgrcv
	case SYS_msgrcv:
		*r = msgrcv((int)a[0], (void *)a[1], (size_t)a[2], a[3],
			    (int)a[4]);
		return 1;
#endif
#ifdef SYS_msgctl
	case SYS_msgctl:
		*r = raw_msgctl(a[0], a[1], (unsigned long)a[2],
				DIRECT_PARSES_IPC_64);
		return 1;
#endif
#ifdef SYS_ipc
	case SYS_ipc:
		return raw_ipc(a, r);
#endif
	default:
		return 0;
	}
}

/*
 * Six argument words are read whatever the caller passed, as glibc's own
 * syscall() (assembly) reads them: on x86-64 the sixth comes from the
 * caller's stack, which a call with fewer arguments never wrote. Harmless
 * (the kernel ignores what a call does not take), but ASan sees a read of
 * the caller's frame: not instrumented here.
 */
SYSV_EXPORT __attribute__((no_sanitize_address)) long
syscall(long n, ...)
{
	long a[6], r;
	syscall_fn *f;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (__builtin_expect(sysv_call(n, a, &r), 0))
		return r;
	if (__builtin_expect((f = resolve()) == NULL, 0)) {
		errno = ENOSYS;
		return -1;
	}
	return f(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
