/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sysv_footprint: what an object costs in memory, libsysv (linked, private
 * broker) and the kernel side by side in one run (issue 9).
 *
 * prim: the growth of the resident and the virtual size of the namespace's
 * System V segments (/proc/sysvipc/shm, rss and size; the broker's registry
 * is there before and after, so it cancels out) over N_OURS objects.
 * Kernel: the growth of its slab caches (/proc/meminfo Slab: small arrays,
 * queues and messages) or the fall of free memory (MemFree: also the pages
 * of large arrays, which Slab does not count, but blind to small changes
 * the per-CPU page lists absorb), whichever is larger, over N_KERN objects
 * made with the raw system calls. Both divided by the count: bytes per
 * object. The kernel figure is noisy (anything else on the machine moves
 * it): medians of BENCH_REPS runs, and a ratio, never a threshold.
 *
 * Rows (x = kernel bytes / prim bytes; above 1 prim costs less):
 *   fp_set4           semget of 4 semaphores, SETVAL, one P and V
 *   fp_set4_undo      the same and a P and V with SEM_UNDO
 *   fp_set250         semget of 250 semaphores (SEMMSL), SETVAL, P, V
 *   fp_queue_empty    msgget
 *   fp_queue_1msg     msgget, one 3-byte message queued
 *   fp_queue_full     msgget, 64-byte messages until IPC_NOWAIT says EAGAIN
 *   fp_queue_burst    msgget, 1-byte messages until EAGAIN (the kernel's
 *                     rule: qbytes messages, 16384 at default limits)
 *   fp_queue_cycled   msgget, 40000 64-byte messages sent and received one
 *                     at a time (every ring position walked), then the
 *                     broker's next sweep (it gives back what holds
 *                     nothing); the kernel, whose cost has no history,
 *                     cycles 100
 *   fp_registry       the namespace's fixed cost: the broker's registry
 *                     (every id of both types, every watched process),
 *                     with one client; the kernel's is not measured
 *   fp_queue_tuned    msgmax = msgmnb = 65536 (a usual middleware tuning:
 *                     the namespace's sysctls, the broker restarted to
 *                     read them), one 3-byte message queued
 *
 * Run it as root in a private IPC namespace (make bench does): it writes
 * the namespace's kernel.msgmax and kernel.msgmnb for the last row.
 * Exits non-zero when something does not work, never because of a size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "kernel_ipc.h"
#define SYSV_BROKER_PROG "sysv_footprint"
#include "sysv_broker.h"

#define N_OURS 32
#define N_KERN 16000 /* enough to stand out of the slab's noise */
#define NMAX   N_KERN

/* The objects of the current measure, to remove. */
static int ids[NMAX];
static char is_sem[NMAX];
static int nids, kernel_side;

static void
remove_all(void)
{
	for (int i = 0; i < nids; i++) {
		int sem = is_sem[i], id = ids[i];

		if (kernel_side)
			sem ? kernel_syscall(SYS_semctl, id, 0, IPC_RMID, 0)
			    : kernel_syscall(SYS_msgctl, id, IPC_RMID, NULL);
		else
			sem ? semctl(id, 0, IPC_RMID)
			    : msgctl(id, IPC_RMID, NULL);
	}
	nids = 0;
}

static void
die(const char *what)
{
	fprintf(stderr, "sysv_footprint: %s: %s\n", what, strerror(errno));
	remove_all();
	stop_broker();
	exit(1);
}

static void
sysv_broker_die(const char *what)
{
	die(what);
}

/* Sum of rss and size over the namespace's segments. */
static void
shm_totals(double *rss, double *size)
{
	/* The kernel's own file: libsysv answers /proc/sysvipc/shm itself,
	 * without its backing segments (sysv/procfs.c), and not this
	 * spelling of it. */
	FILE *f = fopen("/proc/self/root/proc/sysvipc/shm", "r");
	char line[512];

	*rss = *size = 0;
	if (f == NULL)
		die("/proc/sysvipc/shm");
	if (fgets(line, sizeof(line), f) == NULL) /* the heading */
		die("/proc/sysvipc/shm is empty");
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long v[16];

		if (sscanf(line,
			   "%llu %llu %llo %llu %llu %llu %llu %llu %llu %llu "
			   "%llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
			   &v[14]) != 15) {
			errno = EINVAL;
			die("a line of /proc/sysvipc/shm");
		}
		*size += (double)v[3];
		*rss += (double)v[14];
	}
	fclose(f);
}

/* /proc/meminfo: Slab and MemFree, in bytes. */
static void
meminfo(double *slab, double *free)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb;

	*slab = *free = -1;
	if (f == NULL)
		die("/proc/meminfo");
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Slab: %llu kB", &kb) == 1)
			*slab = (double)kb * 1024;
		if (sscanf(line, "MemFree: %llu kB", &kb) == 1)
			*free = (double)kb * 1024;
	}
	fclose(f);
	if (*slab < 0 || *free < 0) {
		errno = ENOENT;
		die("Slab or MemFree in /proc/meminfo");
	}
}

/* The calls of either side. */
static int
x_semget(int nsems)
{
	return kernel_side ? (int)kernel_syscall(SYS_semget, IPC_PRIVATE, nsems,
						 IPC_CREAT | 0600)
			   : semget(IPC_PRIVATE, nsems, IPC_CREAT | 0600);
}

static int
x_semop(int id, struct sembuf *b)
{
	return kernel_side ? (int)kernel_syscall(SYS_semop, id, b, 1)
			   : semop(id, b, 1);
}

static int
x_setval(int id, int v)
{
	return kernel_side ? (int)kernel_syscall(SYS_semctl, id, 0, SETVAL, v)
			   : semctl(id, 0, SETVAL, v);
}

static int
x_msgget(void)
{
	return kernel_side ? (int)kernel_syscall(SYS_msgget, IPC_PRIVATE,
						 IPC_CREAT | 0600)
			   : msgget(IPC_PRIVATE, IPC_CREAT | 0600);
}

static int
x_msgsnd(int id, const void *m, size_t n)
{
	return kernel_side
		   ? (int)kernel_syscall(SYS_msgsnd, id, m, n, IPC_NOWAIT)
		   : msgsnd(id, m, n, IPC_NOWAIT);
}

static long
x_msgrcv(int id, void *m, size_t n)
{
	return kernel_side
		   ? (long)kernel_syscall(SYS_msgrcv, id, m, n, 0, IPC_NOWAIT)
		   : (long)msgrcv(id, m, n, 0, IPC_NOWAIT);
}

enum what { SET4, SET4_UNDO, SET250, Q_EMPTY, Q_1MSG, Q_FULL, Q_BURST,
	    Q_CYCLED };

/* The broker's owner sweep (and trim) period, primd.c SWEEP_MS, and some. */
#define SWEEP_WAIT_US 2500000

/* Make one object as the row says. */
static void
make_one(enum what w)
{
	struct {
		long mtype;
		char mtext[64];
	} m = {1, "abc"};
	int id;

	if (w <= SET250) {
		struct sembuf p = {0, -1, 0}, v = {0, 1, 0};
		struct sembuf pu = {0, -1, SEM_UNDO}, vu = {0, 1, SEM_UNDO};

		if ((id = x_semget(w == SET250 ? 250 : 4)) < 0)
			die("semget");
		is_sem[nids] = 1;
		ids[nids++] = id;
		if (x_setval(id, 1) != 0 || x_semop(id, &p) != 0 ||
		    x_semop(id, &v) != 0)
			die("SETVAL, P, V");
		if (w == SET4_UNDO &&
		    (x_semop(id, &pu) != 0 || x_semop(id, &vu) != 0))
			die("P, V with SEM_UNDO");
		return;
	}
	if ((id = x_msgget()) < 0)
		die("msgget");
	is_sem[nids] = 0;
	ids[nids++] = id;
	if (w == Q_1MSG && x_msgsnd(id, &m, 3) != 0)
		die("msgsnd");
	if (w == Q_FULL || w == Q_BURST) {
		int n = 0;

		while (x_msgsnd(id, &m, w == Q_FULL ? 64 : 1) == 0)
			if (++n > 1 << 20)
				break;
		if (errno != EAGAIN)
			die("msgsnd until EAGAIN");
	}
	if (w == Q_CYCLED) {
		for (int n = 0; n < (kernel_side ? 100 : 40000); n++)
			if (x_msgsnd(id, &m, 64) != 0 ||
			    x_msgrcv(id, &m, sizeof(m.mtext)) != 64)
				die("msgsnd, msgrcv");
	}
}

/* Bytes per object for one side: resident (and virtual, for prim). */
static double
measure(enum what w, int kernel, double *virt)
{
	/* A burst is 16384 messages: 64 such queues stand out of the slab's
	 * noise (64 MiB), 16000 would take the machine's memory. */
	int n = !kernel ? N_OURS : w == Q_BURST ? 64 : N_KERN;
	double r0, s0, r1, s1, sl0 = 0, f0 = 0, sl1 = 0, f1 = 0;

	kernel_side = kernel;
	shm_totals(&r0, &s0);
	if (kernel)
		meminfo(&sl0, &f0);
	for (int i = 0; i < n; i++)
		make_one(w);
	/* The broker trims a share of the queues at each sweep: wait for
	 * the sweeps until the resident size stops falling. */
	for (int k = 0; w == Q_CYCLED && !kernel && k < 20; k++) {
		double r, s;

		shm_totals(&r, &s);
		usleep(SWEEP_WAIT_US);
		shm_totals(&r1, &s1);
		if (r1 >= r)
			break;
	}
	shm_totals(&r1, &s1);
	if (kernel)
		meminfo(&sl1, &f1);
	remove_all();
	if (virt != NULL)
		*virt = (s1 - s0) / n;
	if (!kernel)
		return (r1 - r0) / n;
	return (sl1 - sl0 > f0 - f1 ? sl1 - sl0 : f0 - f1) / n;
}

static void
row(const char *name, enum what w, const char *note)
{
	double o[BENCH_REPS], k[BENCH_REPS], v[BENCH_REPS], mo, mk, mv, x;

	for (int i = 0; i < BENCH_REPS; i++) {
		o[i] = measure(w, 0, &v[i]);
		k[i] = measure(w, 1, NULL);
	}
	mo = bench_median(o, BENCH_REPS);
	mk = bench_median(k, BENCH_REPS);
	mv = bench_median(v, BENCH_REPS);
	if (mv <= 0) {
		/* Objects that take no address space: the segments were not
		 * seen (the wrong /proc file), not a result. */
		errno = ENOENT;
		die("no segment growth seen in /proc/sysvipc/shm");
	}
	x = mo > 0 ? mk / mo : 0;
	printf("%-18s %12.0f B %12.0f B %8.2fx  %s; virtual %.0f B\n", name, mo,
	       mk, x, note, mv);
	printf("FOOTPRINT %s resident %.0f virtual %.0f kernel %.0f\n", name,
	       mo, mv, mk);
}

/* Before any object: the namespace's only segment is the registry. */
static void
registry_row(void)
{
	struct seminfo si;
	double rss, size;

	if (semctl(0, 0, IPC_INFO, &si) < 0)
		die("IPC_INFO"); /* a call that registers this process */
	shm_totals(&rss, &size);
	printf("%-18s %12.0f B %14s %9s  %s; virtual %.0f B\n", "fp_registry",
	       rss, "-", "-", "registry, one client", size);
	printf("FOOTPRINT fp_registry resident %.0f virtual %.0f\n", rss,
	       size);
}

static void
set_sysctl(const char *name, const char *val)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	if ((f = fopen(path, "w")) == NULL || fputs(val, f) < 0 ||
	    fclose(f) != 0)
		die(path);
}

static void
on_alarm(int sig)
{
	(void)sig;
	/* A hang is a failure; the broker is killed on the way out. */
	if (broker > 0)
		kill(broker, SIGKILL);
	_exit(3);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(600);
	start_broker();
	printf("sysv_footprint: bytes per object, libsysv (linked, private "
	       "broker: resident growth of its segments over %d objects) "
	       "against the kernel (slab or free memory over %d), median of %d "
	       "reps; "
	       "x = kernel/libsysv\n",
	       N_OURS, N_KERN, BENCH_REPS);
	printf("\n%-18s %14s %14s %9s  %s\n", "row", "libsysv", "kernel", "x",
	       "note");
	registry_row();
	row("fp_set4", SET4, "set of 4, SETVAL, P, V");
	row("fp_set4_undo", SET4_UNDO, "and P, V with SEM_UNDO");
	row("fp_set250", SET250, "set of 250, SETVAL, P, V");
	row("fp_queue_empty", Q_EMPTY, "queue, default limits");
	row("fp_queue_1msg", Q_1MSG, "one 3-byte message");
	row("fp_queue_full", Q_FULL, "full of 64-byte messages");
	row("fp_queue_burst", Q_BURST, "full of 1-byte messages (16384)");
	row("fp_queue_cycled", Q_CYCLED,
	    "40000 messages through, after the broker's sweep");
	/* The namespace's own sysctls; the broker reads them at start. */
	stop_broker();
	set_sysctl("msgmax", "65536");
	set_sysctl("msgmnb", "65536");
	start_broker();
	row("fp_queue_tuned", Q_1MSG, "msgmax = msgmnb = 65536, one message");
	stop_broker();
	return 0;
}
