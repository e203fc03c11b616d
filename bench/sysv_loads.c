/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sysv_loads: the loads users run (issue 11), libsysv (linked, private
 * broker) and the kernel side by side in one run, not microbenchmarks:
 *
 *   load_mutex_8          8 processes on this machine's CPUs take one
 *                         semaphore as a mutex (P, a ~200-instruction
 *                         critical section, V) for MUTEX_MS; lock/unlock
 *                         per second, and Jain's fairness over them
 *   load_mutex_8_undo     the same with SEM_UNDO (a prefork accept mutex)
 *   load_mutex_32         32 processes
 *   load_mutex_32_undo    32 processes with SEM_UNDO
 *   load_reqresp          one queue, a client sends type 1, a server
 *                         answers type 2 (64 bytes): us per round trip
 *   load_control          one process: P, V, IPC_STAT, SEM_INFO, SEM_STAT,
 *                         GETNCNT, msgsnd, msgrcv, IPC_STAT, MSG_INFO,
 *                         MSG_STAT: us per round of the 11 calls (a
 *                         monitoring loop around the data path)
 *   load_create_sem       semget(IPC_PRIVATE) + IPC_RMID: us per pair
 *   load_create_msg       msgget(IPC_PRIVATE) + IPC_RMID: us per pair
 *   load_short_procs      a process forks, msgget of a key, msgsnd,
 *                         msgrcv, exits; the parent waits: us per process
 *   load_wake             a waiter asleep in P (its partner waited 200 us
 *                         first), woken by V: us from V to its return
 *
 * x = kernel / libsysv for times and libsysv / kernel for rates: above 1
 * libsysv is better. Medians of BENCH_REPS runs per side, interleaved.
 * Prints "SPEEDUP <row> <x>" and, for the mutex rows, "FAIRNESS <row>
 * <jain libsysv> <jain kernel>". Exits non-zero when something does not
 * work, never because of a time. Run it in a private IPC namespace (make
 * bench does).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "kernel_ipc.h"
#define SYSV_BROKER_PROG "sysv_loads"
#include "sysv_broker.h"

#define MUTEX_MS   500
#define MAXPROCS   32
#define RR_OURS	   5000
#define RR_KERN	   5000
#define CTL_OURS   500
#define CTL_KERN   20000
#define MK_OURS	   100
#define MK_KERN	   2000
#define PROCS_N	   100
#define WAKE_N	   200
#define KEY_PROCS  ((key_t)0x4c4f4144)

static int ks; /* this measure is the kernel's side */

static void
die(const char *what)
{
	fprintf(stderr, "sysv_loads: %s (%s): %s\n", what,
		ks ? "kernel" : "libsysv", strerror(errno));
	stop_broker();
	exit(1);
}

static void
sysv_broker_die(const char *what)
{
	die(what);
}

/* ---- the calls of either side ---- */

static int
x_semget(key_t key, int n, int flg)
{
	return ks ? (int)kernel_syscall(SYS_semget, key, n, flg)
		  : semget(key, n, flg);
}

static int
x_semop(int id, struct sembuf *b, size_t n)
{
	return ks ? (int)kernel_syscall(SYS_semop, id, b, n) : semop(id, b, n);
}

static int
x_semctl(int id, int num, int cmd, void *arg)
{
	return ks ? (int)kernel_syscall(SYS_semctl, id, num, cmd, arg)
		  : semctl(id, num, cmd, arg);
}

static int
x_msgget(key_t key, int flg)
{
	return ks ? (int)kernel_syscall(SYS_msgget, key, flg)
		  : msgget(key, flg);
}

static int
x_msgsnd(int id, const void *m, size_t n, int flg)
{
	return ks ? (int)kernel_syscall(SYS_msgsnd, id, m, n, flg)
		  : msgsnd(id, m, n, flg);
}

static long
x_msgrcv(int id, void *m, size_t n, long type, int flg)
{
	return ks ? (long)kernel_syscall(SYS_msgrcv, id, m, n, type, flg)
		  : (long)msgrcv(id, m, n, type, flg);
}

static int
x_msgctl(int id, int cmd, void *buf)
{
	return ks ? (int)kernel_syscall(SYS_msgctl, id, cmd, buf)
		  : msgctl(id, cmd, buf);
}

static void
rm_sem(int id)
{
	if (x_semctl(id, 0, IPC_RMID, NULL) != 0)
		die("semctl IPC_RMID");
}

static void
rm_msq(int id)
{
	if (x_msgctl(id, IPC_RMID, NULL) != 0)
		die("msgctl IPC_RMID");
}

/* The children this measure forked (the broker is a child too). */
static pid_t kids[MAXPROCS];
static int nkids;

static pid_t
spawn(void)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid > 0)
		kids[nkids++] = pid;
	return pid;
}

static void
reap_all(void)
{
	for (int i = 0; i < nkids; i++) {
		int st;

		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			errno = ECHILD;
			die("a child failed");
		}
	}
	nkids = 0;
}

struct msg64 {
	long mtype;
	char mtext[64];
};

/* ---- the oversubscribed mutex ---- */

struct mutex_shared {
	volatile int go, stop;
	uint64_t count[MAXPROCS];
};

static struct mutex_shared *msh;

/* About 200 instructions of work that the compiler cannot remove. */
static void
critical_section(void)
{
	static volatile unsigned sink;

	for (int i = 0; i < 50; i++)
		sink = sink * 31 + (unsigned)i;
}

/* Lock/unlock per second over nproc processes; *jain their fairness. */
static double
mutex_run(int nproc, int undo, double *jain)
{
	struct sembuf p = {0, -1, (short)(undo ? SEM_UNDO : 0)},
		      v = {0, 1, (short)(undo ? SEM_UNDO : 0)};
	int id = x_semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	uint64_t t0, t1, sum = 0;

	if (id < 0)
		die("semget");
	if (x_semop(id, &(struct sembuf){0, 1, 0}, 1) != 0)
		die("semop V");
	memset(msh, 0, sizeof(*msh));
	for (int k = 0; k < nproc; k++) {
		pid_t pid = spawn();

		if (pid == 0) {
			uint64_t n = 0;

			while (!msh->go)
				sched_yield();
			while (!msh->stop) {
				if (x_semop(id, &p, 1) != 0)
					_exit(1);
				critical_section();
				if (x_semop(id, &v, 1) != 0)
					_exit(1);
				n++;
			}
			msh->count[k] = n;
			_exit(0);
		}
	}
	usleep(20000); /* every child at the start line */
	t0 = bench_now_ns();
	msh->go = 1;
	usleep(MUTEX_MS * 1000);
	msh->stop = 1;
	t1 = bench_now_ns();
	reap_all();
	rm_sem(id);
	for (int k = 0; k < nproc; k++)
		sum += msh->count[k];
	*jain = bench_jain(msh->count, nproc);
	return (double)sum * 1e9 / (double)(t1 - t0);
}

static void
mutex_row(const char *name, int nproc, int undo)
{
	double o[BENCH_REPS], k[BENCH_REPS], jo[BENCH_REPS], jk[BENCH_REPS],
	    x, mjo, mjk;
	char note[96];

	for (int r = 0; r < BENCH_REPS; r++) {
		ks = 0;
		o[r] = mutex_run(nproc, undo, &jo[r]);
		ks = 1;
		k[r] = mutex_run(nproc, undo, &jk[r]);
	}
	mjo = bench_median(jo, BENCH_REPS);
	mjk = bench_median(jk, BENCH_REPS);
	snprintf(note, sizeof(note), "lock+unlock/s, %d procs%s; Jain %.2f / %.2f",
		 nproc, undo ? ", SEM_UNDO" : "", mjo, mjk);
	x = bench_row(name, bench_median(o, BENCH_REPS),
		      bench_median(k, BENCH_REPS), 0, "/s", note);
	bench_speedup(name, x);
	printf("FAIRNESS %s %.3f %.3f\n", name, mjo, mjk);
}

/* ---- request/response over one queue ---- */

static double
reqresp(int n)
{
	struct msg64 m = {1, {0}}, r;
	int q = x_msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	uint64_t t0;
	pid_t pid;

	if (q < 0)
		die("msgget");
	if ((pid = spawn()) == 0) {
		for (;;) {
			if (x_msgrcv(q, &r, sizeof(r.mtext), 1, 0) != 64)
				_exit(1);
			if (r.mtext[0] == 'q')
				_exit(0);
			r.mtype = 2;
			if (x_msgsnd(q, &r, sizeof(r.mtext), 0) != 0)
				_exit(1);
		}
	}
	t0 = bench_now_ns();
	for (int i = 0; i < n; i++) {
		m.mtext[1] = (char)i;
		if (x_msgsnd(q, &m, sizeof(m.mtext), 0) != 0 ||
		    x_msgrcv(q, &r, sizeof(r.mtext), 2, 0) != 64 ||
		    r.mtext[1] != (char)i)
			die("request/response");
	}
	t0 = bench_now_ns() - t0;
	m.mtext[0] = 'q';
	if (x_msgsnd(q, &m, sizeof(m.mtext), 0) != 0)
		die("msgsnd quit");
	reap_all();
	rm_msq(q);
	return (double)t0 / n / 1000;
}

/* ---- a control-heavy loop ---- */

static double
control(int n)
{
	struct sembuf p = {0, -1, 0}, v = {0, 1, 0};
	struct semid_ds sd;
	struct seminfo si;
	struct msqid_ds md;
	struct msginfo mi;
	struct msg64 m = {1, {0}};
	int s = x_semget(IPC_PRIVATE, 1, IPC_CREAT | 0600),
	    q = x_msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	uint64_t t0;

	if (s < 0 || q < 0)
		die("semget, msgget");
	t0 = bench_now_ns();
	for (int i = 0; i < n; i++)
		if (x_semop(s, &v, 1) != 0 || x_semop(s, &p, 1) != 0 ||
		    x_semctl(s, 0, IPC_STAT, &sd) != 0 ||
		    x_semctl(0, 0, SEM_INFO, &si) < 0 ||
		    x_semctl(s & 0x7fff, 0, SEM_STAT, &sd) < 0 ||
		    x_semctl(s, 0, GETNCNT, NULL) != 0 ||
		    x_msgsnd(q, &m, sizeof(m.mtext), 0) != 0 ||
		    x_msgrcv(q, &m, sizeof(m.mtext), 0, 0) != 64 ||
		    x_msgctl(q, IPC_STAT, &md) != 0 ||
		    x_msgctl(0, MSG_INFO, &mi) < 0 ||
		    x_msgctl(q & 0x7fff, MSG_STAT, &md) < 0)
			die("the control loop");
	t0 = bench_now_ns() - t0;
	rm_sem(s);
	rm_msq(q);
	return (double)t0 / n / 1000;
}

/* ---- object churn ---- */

static double
create_sem(int n)
{
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++) {
		int id = x_semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);

		if (id < 0)
			die("semget");
		rm_sem(id);
	}
	return (double)(bench_now_ns() - t0) / n / 1000;
}

static double
create_msg(int n)
{
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++) {
		int id = x_msgget(IPC_PRIVATE, IPC_CREAT | 0600);

		if (id < 0)
			die("msgget");
		rm_msq(id);
	}
	return (double)(bench_now_ns() - t0) / n / 1000;
}

static double
short_procs(int n)
{
	uint64_t t0 = bench_now_ns();
	int q;

	for (int i = 0; i < n; i++) {
		pid_t pid = spawn();

		if (pid == 0) {
			struct msg64 m = {1, {0}};
			int id = x_msgget(KEY_PROCS, IPC_CREAT | 0600);

			_exit(id < 0 ||
			      x_msgsnd(id, &m, sizeof(m.mtext), 0) != 0 ||
			      x_msgrcv(id, &m, sizeof(m.mtext), 0, 0) != 64);
		}
		reap_all();
	}
	t0 = bench_now_ns() - t0;
	if ((q = x_msgget(KEY_PROCS, 0)) < 0)
		die("msgget key");
	rm_msq(q);
	return (double)t0 / n / 1000;
}

/* ---- waking a sleeper ---- */

static double
wake(int n)
{
	struct sembuf p = {0, -1, 0}, v = {0, 1, 0}, p1 = {1, -1, 0},
		      v1 = {1, 1, 0};
	volatile uint64_t *t = bench_shared(2 * sizeof(uint64_t));
	double lat[WAKE_N];
	int s = x_semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	pid_t pid;

	if (s < 0 || n > WAKE_N)
		die("semget");
	if ((pid = spawn()) == 0) {
		for (int i = 0; i < n; i++) {
			if (x_semop(s, &p, 1) != 0) /* asleep: woken by V */
				_exit(1);
			t[1] = bench_now_ns();
			if (x_semop(s, &v1, 1) != 0)
				_exit(1);
		}
		_exit(0);
	}
	for (int i = 0; i < n; i++) {
		usleep(200); /* the waiter is asleep by now */
		t[0] = bench_now_ns();
		if (x_semop(s, &v, 1) != 0 || x_semop(s, &p1, 1) != 0)
			die("semop");
		lat[i] = (double)(t[1] - t[0]) / 1000;
	}
	reap_all();
	rm_sem(s);
	munmap((void *)t, 2 * sizeof(uint64_t));
	return bench_median(lat, n);
}

static void
row(const char *name, double (*f)(int), int n_ours, int n_kern,
    const char *note)
{
	double o[BENCH_REPS], k[BENCH_REPS], x;

	for (int r = 0; r < BENCH_REPS; r++) {
		ks = 0;
		o[r] = f(n_ours);
		ks = 1;
		k[r] = f(n_kern);
	}
	x = bench_row(name, bench_median(o, BENCH_REPS),
		      bench_median(k, BENCH_REPS), 1, "us", note);
	bench_speedup(name, x);
}

static void
on_alarm(int sig)
{
	(void)sig;
	if (broker > 0)
		kill(broker, SIGKILL);
	_exit(3);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(900);
	msh = bench_shared(sizeof(*msh));
	start_broker();
	printf("sysv_loads: real loads, libsysv (linked, private broker) "
	       "against the kernel, median of %d reps, %ld CPUs; x above 1: "
	       "libsysv better\n",
	       BENCH_REPS, sysconf(_SC_NPROCESSORS_ONLN));
	printf("\n%-18s %14s %14s %9s  %s\n", "row", "libsysv", "kernel", "x",
	       "note");
	mutex_row("load_mutex_8", 8, 0);
	mutex_row("load_mutex_8_undo", 8, 1);
	mutex_row("load_mutex_32", 32, 0);
	mutex_row("load_mutex_32_undo", 32, 1);
	row("load_reqresp", reqresp, RR_OURS, RR_KERN,
	    "us per round trip, type 1 out, type 2 back");
	row("load_control", control, CTL_OURS, CTL_KERN,
	    "us per round of 11 data and control calls");
	row("load_create_sem", create_sem, MK_OURS, MK_KERN,
	    "us per semget(IPC_PRIVATE) + IPC_RMID");
	row("load_create_msg", create_msg, MK_OURS, MK_KERN,
	    "us per msgget(IPC_PRIVATE) + IPC_RMID");
	row("load_short_procs", short_procs, PROCS_N, PROCS_N,
	    "us per process: fork, msgget, msgsnd, msgrcv, exit");
	row("load_wake", wake, WAKE_N, WAKE_N, "us from V to a sleeper's return");
	stop_broker();
	return 0;
}
