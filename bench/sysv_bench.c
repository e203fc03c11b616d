/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sysv_bench: the drop-in (libsysv, linked with -lsysv) against the
 * kernel's own System V IPC, side by side in one run. The libsysv side
 * calls the standard names (semop, msgsnd, ...), which resolve to libsysv;
 * the kernel side makes the raw system calls (kernel_syscall(SYS_semop,
 * ...): the instruction itself, kernel_ipc.h, since libsysv diverts the
 * SysV numbers of syscall()) on objects it made with
 * kernel_syscall(SYS_semget/SYS_msgget, IPC_PRIVATE, ...).
 *
 * It starts its own private broker (primd next to the build's bench/
 * directory: <dir of this program>/../primd, socket in a fresh mkdtemp
 * directory, PRIM_BROKER_SOCK set before the first call) and stops it at
 * the end; it removes every object it made. Run it in a private IPC
 * namespace (make bench does).
 *
 * Rows (BENCH_REPS times per side, interleaved, medians compared):
 *   sysv_sem_pv           one process: semop P then V, value 1
 *   sysv_msg_pair_64      one process: msgsnd then msgrcv of 64 bytes
 *   sysv_semget_existing  semget of an existing key (a broker round trip
 *                         for libsysv); its absolute time is printed too
 *                         and should stay under 100 us
 *
 * Exits non-zero when something does not work (no broker, a failed call),
 * never because of a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "kernel_ipc.h"
#define SYSV_BROKER_PROG "sysv_bench"
#include "sysv_broker.h"

#define PV_OURS	     1000000 /* P+V pairs per rep */
#define PV_KERN	     100000
#define MSG_OURS     500000 /* send+receive pairs per rep */
#define MSG_KERN     100000
#define GET_OURS     5000 /* semget calls per rep */
#define GET_KERN     100000
#define GET_LIMIT_US 100.0
#define KEY_GET	     ((key_t)0x53424e01)

/* Objects to remove at the end: ours (libsysv) and the kernel's. */
static int o_sem = -1, o_msq = -1, o_get = -1;
static int k_sem = -1, k_msq = -1, k_get = -1;

static void
cleanup(void)
{
	if (o_sem >= 0)
		semctl(o_sem, 0, IPC_RMID);
	if (o_get >= 0)
		semctl(o_get, 0, IPC_RMID);
	if (o_msq >= 0)
		msgctl(o_msq, IPC_RMID, NULL);
	o_sem = o_get = o_msq = -1;
	if (k_sem >= 0)
		kernel_syscall(SYS_semctl, k_sem, 0, IPC_RMID, 0);
	if (k_get >= 0)
		kernel_syscall(SYS_semctl, k_get, 0, IPC_RMID, 0);
	if (k_msq >= 0)
		kernel_syscall(SYS_msgctl, k_msq, IPC_RMID, NULL);
	k_sem = k_get = k_msq = -1;
	stop_broker();
}

static void
die(const char *what)
{
	fprintf(stderr, "sysv_bench: %s: %s\n", what, strerror(errno));
	cleanup();
	exit(1);
}

static void
sysv_broker_die(const char *what)
{
	die(what);
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

/* ---- rows -----------------------------------------------------------------
 */

static double
pv_ours(int n)
{
	struct sembuf p = {0, -1, 0}, v = {0, 1, 0};
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (semop(o_sem, &p, 1) != 0 || semop(o_sem, &v, 1) != 0)
			die("semop (libsysv)");
	return (double)(bench_now_ns() - t0) / n;
}

static double
pv_kern(int n)
{
	struct sembuf p = {0, -1, 0}, v = {0, 1, 0};
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (kernel_syscall(SYS_semop, k_sem, &p, 1) != 0 ||
		    kernel_syscall(SYS_semop, k_sem, &v, 1) != 0)
			die("semop (kernel)");
	return (double)(bench_now_ns() - t0) / n;
}

struct msg64 {
	long mtype;
	char mtext[64];
};

static double
msg_ours(int n)
{
	struct msg64 m = {1, {0}}, r;
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++) {
		m.mtext[0] = (char)i;
		if (msgsnd(o_msq, &m, sizeof(m.mtext), 0) != 0 ||
		    msgrcv(o_msq, &r, sizeof(r.mtext), 0, 0) != 64 ||
		    r.mtext[0] != (char)i)
			die("msgsnd/msgrcv (libsysv)");
	}
	return (double)(bench_now_ns() - t0) / n;
}

static double
msg_kern(int n)
{
	struct msg64 m = {1, {0}}, r;
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++) {
		m.mtext[0] = (char)i;
		if (kernel_syscall(SYS_msgsnd, k_msq, &m, sizeof(m.mtext), 0) !=
			0 ||
		    kernel_syscall(SYS_msgrcv, k_msq, &r, sizeof(r.mtext), 0L,
				   0) != 64 ||
		    r.mtext[0] != (char)i)
			die("msgsnd/msgrcv (kernel)");
	}
	return (double)(bench_now_ns() - t0) / n;
}

static double
get_ours(int n)
{
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (semget(KEY_GET, 1, 0) != o_get)
			die("semget existing (libsysv)");
	return (double)(bench_now_ns() - t0) / n;
}

static double
get_kern(int n)
{
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (kernel_syscall(SYS_semget, KEY_GET, 1, 0) != k_get)
			die("semget existing (kernel)");
	return (double)(bench_now_ns() - t0) / n;
}

static void
row(const char *name, double (*ours)(int), int n_ours, double (*kern)(int),
    int n_kern, const char *note, double *ours_med)
{
	double o[BENCH_REPS], k[BENCH_REPS], mo, mk, x;

	ours(n_ours / 10 + 1); /* warm up */
	kern(n_kern / 10 + 1);
	for (int r = 0; r < BENCH_REPS; r++) {
		o[r] = ours(n_ours);
		k[r] = kern(n_kern);
	}
	mo = bench_median(o, BENCH_REPS);
	mk = bench_median(k, BENCH_REPS);
	x = bench_row(name, mo, mk, 1, "ns", note);
	bench_speedup(name, x);
	if (ours_med)
		*ours_med = mo;
}

int
main(void)
{
	struct sigaction sa;
	double get_ns = 0;
	char note[96];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(300);
	setvbuf(stdout, NULL, _IOLBF, 0);

	start_broker();

	/* The objects: libsysv's through the standard names, the kernel's
	 * through raw system calls. */
	if ((o_sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600)) < 0)
		die("semget (libsysv)");
	if (semctl(o_sem, 0, SETVAL, 1) != 0)
		die("SETVAL (libsysv)");
	if ((o_msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600)) < 0)
		die("msgget (libsysv)");
	if ((o_get = semget(KEY_GET, 1, IPC_CREAT | IPC_EXCL | 0600)) < 0)
		die("semget key (libsysv)");
	if ((k_sem = (int)kernel_syscall(SYS_semget, IPC_PRIVATE, 1,
					 IPC_CREAT | 0600)) < 0)
		die("semget (kernel)");
	if (kernel_syscall(SYS_semop, k_sem, &(struct sembuf){0, 1, 0}, 1) != 0)
		die("semop V (kernel)");
	if ((k_msq = (int)kernel_syscall(SYS_msgget, IPC_PRIVATE,
					 IPC_CREAT | 0600)) < 0)
		die("msgget (kernel)");
	if ((k_get = (int)kernel_syscall(SYS_semget, KEY_GET, 1,
					 IPC_CREAT | IPC_EXCL | 0600)) < 0)
		die("semget key (kernel)");

	printf("sysv_bench: libsysv (linked, private broker) against raw "
	       "kernel system calls, median of %d reps; x = kernel/libsysv\n",
	       BENCH_REPS);
	printf("\n%-22s %14s %14s %9s  %s\n", "row", "libsysv", "kernel", "x",
	       "note");
	row("sysv_sem_pv", pv_ours, PV_OURS, pv_kern, PV_KERN,
	    "ns per P+V pair", NULL);
	row("sysv_msg_pair_64", msg_ours, MSG_OURS, msg_kern, MSG_KERN,
	    "ns per msgsnd+msgrcv, 64 B", NULL);
	row("sysv_semget_existing", get_ours, GET_OURS, get_kern, GET_KERN,
	    "ns per semget", &get_ns);
	snprintf(note, sizeof(note),
		 "%.1f us per semget of an existing key "
		 "(limit %.0f us): %s",
		 get_ns / 1000, GET_LIMIT_US,
		 get_ns / 1000 < GET_LIMIT_US ? "under" : "OVER");
	printf("sysv_semget_existing: %s\n", note);
	printf("SEMGET_US %.2f\n", get_ns / 1000);

	cleanup();
	return 0;
}
