/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench_sem: libprim semaphore sets against the kernel's semop(2), side by
 * side in one run. libprim works on a set in a shared anonymous mapping;
 * the kernel on a set from semget(IPC_PRIVATE), removed at exit. Run it in
 * a private IPC namespace (make bench does): it touches no other object.
 *
 * Rows (each BENCH_REPS times per side, interleaved, medians compared):
 *   sem_pv          one process, P then V on a semaphore of value 1
 *   sem_pingpong    two pinned processes hand a token through two semaphores
 *   sem_wake        V on a semaphore a process sleeps on, until it returns
 *   sem_contended2  2 processes P/V one semaphore of value 1: ops/s, Jain
 *   sem_contended4  the same with 4 processes
 *
 * -v prints every sample and per-process count as well.
 *
 * Exits non-zero only when an operation fails (or a run hangs past a
 * watchdog), never because of a time.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <prim/sem.h>

#include "bench.h"

_Static_assert(sizeof(struct prim_sembuf) == sizeof(struct sembuf) &&
		       offsetof(struct prim_sembuf, sem_op) ==
			       offsetof(struct sembuf, sem_op) &&
		       offsetof(struct prim_sembuf, sem_flg) ==
			       offsetof(struct sembuf, sem_flg),
	       "struct prim_sembuf is laid out as struct sembuf");

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

enum { PRIM = 0, KERN = 1 };
static const char *const side_name[2] = { "libprim", "kernel" };

/* Semaphore numbers, the same in both sets. */
enum { S_PING = 0, S_PONG = 1, S_WAKE = 2, S_MUTEX = 3, S_PV = 4, NSEMS = 5 };

#define MAXPROC 4
#define PV_PRIM 1000000		/* P+V pairs per rep */
#define PV_KERN 100000
#define PINGPONG_NS 250000000ull	/* per rep and side */
#define WAKE_SAMPLES 200	/* per rep and side */
#define CONTENDED_NS 500000000ull	/* per rep and side */
#define WATCHDOG_S 30		/* one measurement never takes this long */

/* Control block shared with the children; hot words on their own lines. */
struct ctl {
	_Alignas(64) uint32_t ready;
	_Alignas(64) uint32_t go;
	_Alignas(64) uint32_t stop;
	_Alignas(64) uint32_t done;
	uint64_t t1;		/* sem_wake: when the sleeper returned */
	uint64_t ns;		/* sem_pingpong: measured time */
	uint64_t trips;		/* sem_pingpong: round trips in ns */
	struct {
		_Alignas(64) uint64_t n;
	} count[MAXPROC];
};

static struct prim_semset *pset;
static int ksem = -1;
static struct ctl *ctl;
static pid_t kids[MAXPROC + 1];
static int nkids;
static int verbose;		/* -v: every sample and per-process count */

static void
remove_kernel_set(void)
{
	if (ksem >= 0)
		semctl(ksem, 0, IPC_RMID);
	ksem = -1;
}

static void
watchdog(int sig)
{
	static const char msg[] = "bench_sem: a measurement hung (watchdog)\n";

	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	if (ksem >= 0)
		semctl(ksem, 0, IPC_RMID);
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* In a child: report and leave at once. */
static void
child_fail(const char *what, int side, int err)
{
	fprintf(stderr, "bench_sem: %s (%s): %s\n", what, side_name[side],
		strerror(err));
	_exit(1);
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "bench_sem: %s: %s\n", what, strerror(err));
	exit(1);
}

/* One semop on either side: 0 or -errno. */
static inline int
sem_do(int side, const struct prim_sembuf *sops, size_t n)
{
	if (side == KERN)
		return semop(ksem, (struct sembuf *)(void *)sops, n) == 0 ?
			       0 :
			       -errno;
	return prim_sem_op(pset, sops, n);
}

static inline int
sem_add(int side, int num, int delta)
{
	struct prim_sembuf op = { (unsigned short)num, (short)delta, 0 };

	return sem_do(side, &op, 1);
}

static void
sem_set(int side, int num, int val)
{
	int r;

	if (side == KERN) {
		union semun arg = { .val = val };

		r = semctl(ksem, num, SETVAL, arg) == 0 ? 0 : -errno;
	} else {
		r = prim_sem_setval(pset, num, val);
	}
	if (r < 0)
		die("setval", -r);
}

static int
sem_ncnt(int side, int num)
{
	if (side == KERN)
		return semctl(ksem, num, GETNCNT);
	return prim_sem_getncnt(pset, num);
}

static pid_t
spawn(void)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", errno);
	if (pid > 0)
		kids[nkids++] = pid;
	return pid;
}

/*
 * Wait for every child; 0 if all exited with 0. After the first failure the
 * others are killed: they may be waiting for the one that failed.
 */
static int
reap_kids(void)
{
	int bad = 0, left = nkids, st;

	while (left > 0) {
		pid_t pid = waitpid(-1, &st, 0);

		if (pid < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid", errno);
		}
		for (int i = 0; i < nkids; i++)
			if (kids[i] == pid) {
				kids[i] = 0;
				left--;
			}
		if ((!WIFEXITED(st) || WEXITSTATUS(st) != 0) && !bad) {
			bad = 1;
			for (int i = 0; i < nkids; i++)
				if (kids[i] > 0)
					kill(kids[i], SIGKILL);
		}
	}
	nkids = 0;
	return bad;
}

static void
reset_ctl(void)
{
	memset(ctl, 0, sizeof(*ctl));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
measure_start(void)
{
	alarm(WATCHDOG_S);
}

static void
measure_end(const char *row, int side)
{
	int bad = reap_kids();

	alarm(0);
	if (bad) {
		fprintf(stderr, "bench_sem: %s (%s): a process failed\n", row,
			side_name[side]);
		exit(1);
	}
}

/* sem_pv: ns per P+V pair in this process. */
static double
run_pv(int side)
{
	long n = side == KERN ? PV_KERN : PV_PRIM;
	struct prim_sembuf p = { S_PV, -1, 0 }, v = { S_PV, 1, 0 };
	uint64_t t0, t1;
	int r = 0;

	sem_set(side, S_PV, 1);
	t0 = bench_now_ns();
	if (side == KERN) {
		for (long i = 0; i < n && r == 0; i++)
			if (semop(ksem, (struct sembuf *)(void *)&p, 1) != 0 ||
			    semop(ksem, (struct sembuf *)(void *)&v, 1) != 0)
				r = -errno;
	} else {
		for (long i = 0; i < n && r == 0; i++)
			if ((r = prim_sem_op(pset, &p, 1)) == 0)
				r = prim_sem_op(pset, &v, 1);
	}
	t1 = bench_now_ns();
	if (r < 0)
		die("sem_pv", -r);
	return (double)(t1 - t0) / (double)n;
}

/*
 * sem_pingpong: A (CPU 0) posts PONG and waits on PING; B (CPU 1) waits on
 * PONG and posts PING. A times round trips for PINGPONG_NS, then sets stop
 * and posts PONG once more so that B sees stop and leaves.
 */
static double
run_pingpong(int side)
{
	int r;

	sem_set(side, S_PING, 0);
	sem_set(side, S_PONG, 0);
	reset_ctl();
	measure_start();
	if (spawn() == 0) { /* B */
		bench_pin(1);
		for (;;) {
			if ((r = sem_add(side, S_PONG, -1)) < 0)
				child_fail("pingpong B P", side, -r);
			if (__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE))
				_exit(0);
			if ((r = sem_add(side, S_PING, 1)) < 0)
				child_fail("pingpong B V", side, -r);
		}
	}
	if (spawn() == 0) { /* A */
		uint64_t t0 = 0, end = 0, trips = 0;

		bench_pin(0);
		for (long i = 0;; i++) {
			if (i == 1000) { /* warmed up: start the clock */
				t0 = bench_now_ns();
				end = t0 + PINGPONG_NS;
				trips = 0;
			}
			if ((r = sem_add(side, S_PONG, 1)) < 0)
				child_fail("pingpong A V", side, -r);
			if ((r = sem_add(side, S_PING, -1)) < 0)
				child_fail("pingpong A P", side, -r);
			trips++;
			if (i > 1000 && (trips & 63) == 0 &&
			    bench_now_ns() >= end)
				break;
		}
		ctl->ns = bench_now_ns() - t0;
		ctl->trips = trips;
		__atomic_store_n(&ctl->stop, 1, __ATOMIC_RELEASE);
		if ((r = sem_add(side, S_PONG, 1)) < 0)
			child_fail("pingpong A final V", side, -r);
		_exit(0);
	}
	measure_end("sem_pingpong", side);
	return (double)ctl->ns / (double)ctl->trips;
}

/*
 * sem_wake: a child on CPU 1 sleeps in P on WAKE; the parent waits until it
 * is counted as a waiter, sleeps 1 ms more so it is surely asleep in the
 * kernel, stamps the time and posts; the child stamps its return. Median of
 * WAKE_SAMPLES (return - post) times.
 */
static double
run_wake(int side)
{
	double v[WAKE_SAMPLES];
	int r;

	sem_set(side, S_WAKE, 0);
	reset_ctl();
	measure_start();
	if (spawn() == 0) {
		bench_pin(1);
		for (uint32_t i = 1; i <= WAKE_SAMPLES; i++) {
			if ((r = sem_add(side, S_WAKE, -1)) < 0)
				child_fail("wake P", side, -r);
			ctl->t1 = bench_now_ns();
			__atomic_store_n(&ctl->done, i, __ATOMIC_RELEASE);
		}
		_exit(0);
	}
	for (uint32_t i = 1; i <= WAKE_SAMPLES; i++) {
		uint64_t t0, give_up = bench_now_ns() + 100000000u;

		/* Counted as a waiter (or 100 ms passed), then 1 ms more. */
		while (sem_ncnt(side, S_WAKE) < 1 && bench_now_ns() < give_up)
			sleep_ns(20000);
		sleep_ns(1000000);
		t0 = bench_now_ns();
		if ((r = sem_add(side, S_WAKE, 1)) < 0)
			die("wake V", -r);
		while (__atomic_load_n(&ctl->done, __ATOMIC_ACQUIRE) != i)
			;
		v[i - 1] = (double)(ctl->t1 - t0);
	}
	measure_end("sem_wake", side);
	return bench_median(v, WAKE_SAMPLES);
}

/*
 * sem_contended<n>: n processes, process i pinned to CPU i, each doing P/V
 * on MUTEX (value 1) for CONTENDED_NS. Returns total ops/s (one op = one
 * P+V pair) and Jain's index over the per-process counts in *jain.
 */
static double
run_contended(int side, int n, double *jain)
{
	uint64_t c[MAXPROC], sum = 0, t0, t1;
	int r;

	sem_set(side, S_MUTEX, 1);
	reset_ctl();
	measure_start();
	for (int i = 0; i < n; i++) {
		if (spawn() != 0)
			continue;
		uint64_t k = 0;

		bench_pin(i);
		__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_ACQ_REL);
		while (!__atomic_load_n(&ctl->go, __ATOMIC_ACQUIRE))
			sched_yield();
		while (!__atomic_load_n(&ctl->stop, __ATOMIC_RELAXED)) {
			if ((r = sem_add(side, S_MUTEX, -1)) < 0)
				child_fail("contended P", side, -r);
			if ((r = sem_add(side, S_MUTEX, 1)) < 0)
				child_fail("contended V", side, -r);
			k++;
		}
		ctl->count[i].n = k;
		_exit(0);
	}
	while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) != (uint32_t)n)
		sleep_ns(100000);
	t0 = bench_now_ns();
	__atomic_store_n(&ctl->go, 1, __ATOMIC_RELEASE);
	sleep_ns(CONTENDED_NS);
	__atomic_store_n(&ctl->stop, 1, __ATOMIC_RELEASE);
	t1 = bench_now_ns();
	measure_end(n == 2 ? "sem_contended2" : "sem_contended4", side);
	for (int i = 0; i < n; i++) {
		c[i] = ctl->count[i].n;
		sum += c[i];
	}
	*jain = bench_jain(c, n);
	if (verbose) {
		printf("  sem_contended%d %-7s counts", n, side_name[side]);
		for (int i = 0; i < n; i++)
			printf(" %llu", (unsigned long long)c[i]);
		printf("  Jain %.4f\n", *jain);
	}
	return (double)sum * 1e9 / (double)(t1 - t0);
}

static void
setup(void)
{
	struct prim_semset_attr attr = { .nsems = NSEMS };
	size_t len = prim_semset_size(&attr);
	void *mem;
	int r;

	if (len == 0)
		die("prim_semset_size", EINVAL);
	mem = bench_shared(len);
	if ((r = prim_semset_init(mem, len, &attr)) < 0)
		die("prim_semset_init", -r);
	if ((r = prim_semset_open(mem, len, &pset)) < 0)
		die("prim_semset_open", -r);
	ctl = bench_shared(sizeof(*ctl));
	ksem = semget(IPC_PRIVATE, NSEMS, IPC_CREAT | 0600);
	if (ksem < 0)
		die("semget", errno);
	atexit(remove_kernel_set);
	signal(SIGALRM, watchdog);
}

enum { R_PV, R_PINGPONG, R_WAKE, R_CONT2, R_CONT4, NROWS };
static const char *const row_name[NROWS] = {
	"sem_pv", "sem_pingpong", "sem_wake", "sem_contended2",
	"sem_contended4",
};

int
main(int argc, char **argv)
{
	double v[NROWS][2][BENCH_REPS], jain[2][2][BENCH_REPS], med[NROWS][2];
	double jmed[2][2], x[NROWS];
	char note[NROWS][96];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
	} else if (argc > 1) {
		fprintf(stderr, "usage: bench_sem [-v]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup();
	bench_pin(0);
	printf("bench_sem: semaphores, libprim vs kernel semop(2); "
	       "%ld CPUs, %d reps each, interleaved, medians\n",
	       ncpu, BENCH_REPS);
	(void)run_pv(PRIM); /* warm both paths up */
	(void)run_pv(KERN);

	for (int rep = 0; rep < BENCH_REPS; rep++) {
		for (int k = 0; k < 2; k++) {
			/* Alternate which side goes first. */
			int s = (rep + k) % 2;

			v[R_PV][s][rep] = run_pv(s);
			v[R_PINGPONG][s][rep] = run_pingpong(s);
			v[R_WAKE][s][rep] = run_wake(s);
			v[R_CONT2][s][rep] = run_contended(s, 2,
							   &jain[0][s][rep]);
			v[R_CONT4][s][rep] = run_contended(s, 4,
							   &jain[1][s][rep]);
		}
	}

	for (int row = 0; row < NROWS && verbose; row++)
		for (int s = 0; s < 2; s++) {
			printf("  %-16s %-7s", row_name[row], side_name[s]);
			for (int rep = 0; rep < BENCH_REPS; rep++)
				printf(" %.1f", v[row][s][rep]);
			printf("\n");
		}
	for (int row = 0; row < NROWS; row++)
		for (int s = 0; s < 2; s++)
			med[row][s] = bench_median(v[row][s], BENCH_REPS);
	for (int j = 0; j < 2; j++)
		for (int s = 0; s < 2; s++)
			jmed[j][s] = bench_median(jain[j][s], BENCH_REPS);

	snprintf(note[R_PV], sizeof(note[0]), "ns per P+V pair, one process");
	snprintf(note[R_PINGPONG], sizeof(note[0]),
		 "ns per round trip, 2 pinned processes");
	snprintf(note[R_WAKE], sizeof(note[0]),
		 "ns from V to the sleeper's return");
	for (int j = 0; j < 2; j++)
		snprintf(note[R_CONT2 + j], sizeof(note[0]),
			 "P+V pairs/s, %d procs; Jain libprim %.3f kernel %.3f",
			 j ? 4 : 2, jmed[j][PRIM], jmed[j][KERN]);

	bench_header("semaphores");
	for (int row = 0; row < NROWS; row++) {
		int lower = row < R_CONT2;

		x[row] = bench_row(row_name[row], med[row][PRIM],
				   med[row][KERN], lower, lower ? "ns" : "/s",
				   note[row]);
	}
	printf("\n");
	for (int row = 0; row < NROWS; row++)
		bench_speedup(row_name[row], x[row]);
	for (int j = 0; j < 2; j++)
		printf("JAIN %s libprim %.3f kernel %.3f\n", row_name[R_CONT2 + j],
		       jmed[j][PRIM], jmed[j][KERN]);
	prim_semset_remove(pset);
	return 0;
}
