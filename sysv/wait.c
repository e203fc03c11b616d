/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Undo by the time wait returns (issue 10, item 2; doc/design.md). The
 * kernel applies a process's SEM_UNDO adjustments in its exit, before its
 * parent can learn of the death; prim's broker applies them when the dead
 * process's pidfd wakes it, which may be after the parent's waitpid() has
 * returned: a supervisor that restarts a worker found the lock still held
 * (81 exits of 200). So libsysv interposes wait, waitpid, wait3, wait4 and
 * waitid: when the C library's call reports a child that exited or was
 * killed (not one stopped or continued; with waitid's WNOWAIT too, since
 * the kernel's undo happened at exit all the same), it tells the broker
 * (PRIMD_REAPED, broker/proto.h), which reaps that pid at once, and waits
 * for the answer before returning.
 *
 * Only in a process that has reached a broker, or was forked from one that
 * had (sysv__call_quick): a program that never used System V IPC pays one
 * load per wait. The result, the status, the siginfo and errno are the C
 * library's, whatever the broker does: no broker, a busy connection
 * (another thread's call, or this thread's own if a signal handler waits)
 * or a broker that does not answer within PRIM_BROKER_WAIT only make the
 * death's undo come when the broker's pidfd event does, as before.
 *
 * Not seen (libsysv(7), BUGS): waits inside the C library (system(),
 * pclose(), posix_spawn's own), raw syscall(SYS_wait4...), a parent that
 * never used SysV IPC itself whose child did (it has no broker to tell;
 * the undo then comes a moment later, as before), and a child that is not
 * a direct child (the kernel's order between its undo and a grandparent
 * noticing is not promised either).
 *
 * Concurrency: as safe as the functions wrapped; in a signal handler, as
 * async-signal-safe as sysv__call_quick (a trylock, no allocation). The
 * real functions are found with dlsym(RTLD_NEXT) once; a thread that
 * re-enters from dlsym, or a lookup that fails, makes the system call
 * itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sysv_int.h"

enum { F_WAIT, F_WAITPID, F_WAIT3, F_WAIT4, F_WAITID, F_N };

static const char *const names[F_N] = {"wait", "waitpid", "wait3", "wait4",
				       "waitid"};

static void *_Atomic real[F_N];

static void *
resolve(int i)
{
	return sysv__next(&real[i], names[i]);
}

__attribute__((constructor)) static void
wait_init(void)
{
	for (int i = 0; i < F_N; i++)
		(void)resolve(i);
}

/* Child pid died: have the broker reap it now. errno is kept. */
static void
tell(pid_t pid)
{
	struct primd_req req;
	struct primd_rep rep;
	int saved = errno;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_REAPED;
	req.id = (int32_t)pid;
	(void)sysv__call_quick(&req, &rep);
	errno = saved;
}

/* After a wait that returned r, status in *sp (read only when r > 0: a
 * bad pointer made the call fail with EFAULT instead). */
static pid_t
after(pid_t r, const int *sp)
{
	if (r > 0 && (WIFEXITED(*sp) || WIFSIGNALED(*sp)))
		tell(r);
	return r;
}

SYSV_EXPORT pid_t
wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	pid_t (*f)(pid_t, int *, int, struct rusage *) = resolve(F_WAIT4);
	int st = 0, *sp = status != NULL ? status : &st;
	pid_t r = f != NULL ? f(pid, sp, options, ru)
			    : (pid_t)syscall(SYS_wait4, pid, sp, options, ru);

	return after(r, sp);
}

SYSV_EXPORT pid_t
waitpid(pid_t pid, int *status, int options)
{
	pid_t (*f)(pid_t, int *, int) = resolve(F_WAITPID);
	int st = 0, *sp = status != NULL ? status : &st;
	pid_t r = f != NULL ? f(pid, sp, options)
			    : (pid_t)syscall(SYS_wait4, pid, sp, options, NULL);

	return after(r, sp);
}

SYSV_EXPORT pid_t
wait(int *status)
{
	pid_t (*f)(int *) = resolve(F_WAIT);
	int st = 0, *sp = status != NULL ? status : &st;
	pid_t r = f != NULL ? f(sp)
			    : (pid_t)syscall(SYS_wait4, -1, sp, 0, NULL);

	return after(r, sp);
}

SYSV_EXPORT pid_t
wait3(int *status, int options, struct rusage *ru)
{
	pid_t (*f)(int *, int, struct rusage *) = resolve(F_WAIT3);
	int st = 0, *sp = status != NULL ? status : &st;
	pid_t r = f != NULL ? f(sp, options, ru)
			    : (pid_t)syscall(SYS_wait4, -1, sp, options, ru);

	return after(r, sp);
}

SYSV_EXPORT int
waitid(idtype_t idtype, id_t id, siginfo_t *infop, int options)
{
	int (*f)(idtype_t, id_t, siginfo_t *, int) = resolve(F_WAITID);
	siginfo_t si, *ip = infop != NULL ? infop : &si;
	int r;

	if (infop == NULL)
		memset(&si, 0, sizeof(si));
	r = f != NULL ? f(idtype, id, ip, options)
		      : (int)syscall(SYS_waitid, idtype, id, ip, options, NULL);
	/* WNOHANG with nothing to report: 0 with si_pid 0. */
	if (r == 0 && ip->si_pid > 0 &&
	    (ip->si_code == CLD_EXITED || ip->si_code == CLD_KILLED ||
	     ip->si_code == CLD_DUMPED))
		tell(ip->si_pid);
	return r;
}
