/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Message queues, libprim against the kernel's msgsnd/msgrcv in the same
 * run (POSIX mq_send/mq_receive shown in the note column):
 *   msg_pair_64, msg_pair_8192  one process, send then receive (ns/pair)
 *   msg_1p1c_64                 one producer, one consumer process (msg/s)
 *   msg_2p2c_64                 two producers, two consumers (msg/s)
 *   msg_typed_64                one producer, 16 consumers of one type each
 * Run inside a private IPC namespace (make bench does); kernel queues are
 * IPC_PRIVATE and removed at the end.
 *
 * bench_msgq [row...] runs only the rows named (all by default).
 *
 * bench_msgq --nosyscall: 100000 send/receive pairs between two getppid()
 * markers, for tests/check_nosyscall_msgq.sh to count system calls under
 * strace.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "prim/msgq.h"

enum impl { OURS, KERN, POSIX };

struct kmsg {
	long type;
	char data[8192];
};

static void *qmem;
static size_t qlen;
static int kid = -1;
static char mqname[64];

static struct prim_msgq *
fresh_q(void)
{
	struct prim_msgq_attr a = { .qbytes = 16384 };
	struct prim_msgq *q;

	if (qmem == NULL) {
		qlen = prim_msgq_size(&a);
		qmem = bench_shared(qlen);
	}
	if (prim_msgq_init(qmem, qlen, &a) != 0 ||
	    prim_msgq_open(qmem, qlen, &q) != 0) {
		fprintf(stderr, "bench_msgq: init failed\n");
		exit(1);
	}
	return q;
}

static int
fresh_k(void)
{
	if (kid >= 0)
		msgctl(kid, IPC_RMID, NULL);
	kid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (kid < 0) {
		perror("msgget");
		exit(1);
	}
	return kid;
}

static mqd_t
fresh_mq(int oflag)
{
	struct mq_attr at = { .mq_maxmsg = 10, .mq_msgsize = 8192 };
	mqd_t m;

	mq_unlink(mqname);
	m = mq_open(mqname, O_CREAT | O_RDWR | oflag, 0600, &at);
	return m;
}

static void
die(const char *what, long r)
{
	fprintf(stderr, "bench_msgq: %s failed: %ld\n", what, r);
	exit(1);
}

/* One process: ns per send+receive pair. */
static double
pair(enum impl im, size_t sz, long n)
{
	static struct kmsg m;
	struct prim_msgq *q = NULL;
	mqd_t mq = (mqd_t)-1;
	uint64_t t0;
	long type;

	if (im == OURS)
		q = fresh_q();
	else if (im == KERN)
		fresh_k();
	else if ((mq = fresh_mq(0)) == (mqd_t)-1)
		return 0;
	m.type = 1;
	t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		if (im == OURS) {
			if (prim_msgq_send(q, 1, m.data, sz, 0) != 0 ||
			    prim_msgq_recv(q, m.data, sz, 0, 0, &type) !=
				    (ssize_t)sz)
				die("prim pair", i);
		} else if (im == KERN) {
			if (msgsnd(kid, &m, sz, 0) != 0 ||
			    msgrcv(kid, &m, sz, 0, 0) != (ssize_t)sz)
				die("kernel pair", errno);
		} else {
			mq_send(mq, m.data, sz, 0);
			mq_receive(mq, m.data, 8192, NULL);
		}
	}
	t0 = bench_now_ns() - t0;
	if (q != NULL)
		prim_msgq_close(q);
	if (mq != (mqd_t)-1)
		mq_close(mq);
	return (double)t0 / (double)n;
}

static void
producer(enum impl im, struct prim_msgq *q, mqd_t mq, long n, int ntypes,
	 int cpu)
{
	static struct kmsg m;

	bench_pin(cpu);
	for (long i = 0; i < n; i++) {
		long type = ntypes ? 1 + i % ntypes : 1;

		m.type = type;
		if (im == OURS) {
			if (prim_msgq_send(q, type, m.data, 64, 0) != 0)
				_exit(1);
		} else if (im == KERN) {
			if (msgsnd(kid, &m, 64, 0) != 0)
				_exit(1);
		} else if (mq_send(mq, m.data, 64, 0) != 0) {
			_exit(1);
		}
	}
	_exit(0);
}

static void
consumer(enum impl im, struct prim_msgq *q, mqd_t mq, long n, long type,
	 int cpu)
{
	static struct kmsg m;

	bench_pin(cpu);
	for (long i = 0; i < n; i++) {
		if (im == OURS) {
			if (prim_msgq_recv(q, m.data, 8192, type, 0, NULL) != 64)
				_exit(1);
		} else if (im == KERN) {
			if (msgrcv(kid, &m, 8192, type, 0) != 64)
				_exit(1);
		} else if (mq_receive(mq, m.data, 8192, NULL) != 64) {
			_exit(1);
		}
	}
	_exit(0);
}

/*
 * np producers, nc consumers (ntypes > 0: consumer i takes type i + 1
 * only, and nc == ntypes). Returns messages per second.
 */
static double
mpmc(enum impl im, int np, int nc, int ntypes, long total)
{
	struct prim_msgq *q = NULL;
	mqd_t mq = (mqd_t)-1;
	pid_t pids[64];
	int k = 0, bad = 0;
	uint64_t t0;

	if (im == OURS)
		q = fresh_q();
	else if (im == KERN)
		fresh_k();
	else if ((mq = fresh_mq(0)) == (mqd_t)-1)
		return 0;
	t0 = bench_now_ns();
	for (int i = 0; i < nc; i++)
		if ((pids[k++] = fork()) == 0)
			consumer(im, q, mq, total / nc, ntypes ? i + 1 : 0, i);
	for (int i = 0; i < np; i++)
		if ((pids[k++] = fork()) == 0)
			producer(im, q, mq, total / np, ntypes, nc + i);
	for (int i = 0; i < k; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	t0 = bench_now_ns() - t0;
	if (bad)
		die("mpmc child", np * 100 + nc);
	if (q != NULL)
		prim_msgq_close(q);
	if (mq != (mqd_t)-1)
		mq_close(mq);
	return (double)total * 1e9 / (double)t0;
}

static int
nosyscall(void)
{
	struct prim_msgq *q = fresh_q();
	char buf[64] = { 0 };
	long type;

	/* Warm up: the pid cache, the vDSO, the pages of the queue. */
	for (int i = 0; i < 1000; i++)
		if (prim_msgq_send(q, 1 + i % 3, buf, 64, 0) != 0 ||
		    prim_msgq_recv(q, buf, 64, 0, 0, &type) != 64)
			return 1;
	getppid();
	for (int i = 0; i < 100000; i++) {
		if (prim_msgq_send(q, 1 + i % 3, buf, 64, 0) != 0 ||
		    prim_msgq_send(q, 1 + i % 3, buf, 32, 0) != 0 ||
		    prim_msgq_recv(q, buf, 64, 1 + i % 3, 0, &type) != 64 ||
		    prim_msgq_recv(q, buf, 64, 0, 0, &type) != 32)
			return 1;
	}
	getppid();
	return 0;
}

typedef double (*runner)(enum impl, long);

static double
r_pair64(enum impl im, long n)
{
	return pair(im, 64, n);
}

static double
r_pair8k(enum impl im, long n)
{
	return pair(im, 8192, n);
}

static double
r_1p1c(enum impl im, long n)
{
	return mpmc(im, 1, 1, 0, n);
}

static double
r_2p2c(enum impl im, long n)
{
	return mpmc(im, 2, 2, 0, n);
}

static double
r_typed(enum impl im, long n)
{
	return mpmc(im, 1, 16, 16, n);
}

struct row {
	const char *name;
	runner fn;
	long n_ours, n_kern;
	int lower;
	const char *unit;
};

int
main(int argc, char **argv)
{
	static const struct row rows[] = {
		{ "msg_pair_64", r_pair64, 2000000, 100000, 1, "ns" },
		{ "msg_pair_8192", r_pair8k, 200000, 30000, 1, "ns" },
		{ "msg_1p1c_64", r_1p1c, 2000000, 200000, 0, "/s" },
		{ "msg_2p2c_64", r_2p2c, 2000000, 200000, 0, "/s" },
		{ "msg_typed_64", r_typed, 1600000, 160000, 0, "/s" },
	};
	double xs[5], untyped = 0;
	int want[5];

	snprintf(mqname, sizeof(mqname), "/prim_bench_msgq_%d", (int)getpid());
	if (argc > 1 && strcmp(argv[1], "--nosyscall") == 0)
		return nosyscall();
	for (int r = 0; r < 5; r++) {
		want[r] = argc < 2;
		for (int i = 1; i < argc; i++)
			want[r] |= strcmp(argv[i], rows[r].name) == 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_header("message queue");
	for (int r = 0; r < 5; r++) {
		double o[BENCH_REPS], k[BENCH_REPS], p[BENCH_REPS];
		double mo, mk, mp;
		char note[96];

		if (!want[r])
			continue;

		for (int i = 0; i < BENCH_REPS; i++) {
			o[i] = rows[r].fn(OURS, rows[r].n_ours);
			k[i] = rows[r].fn(KERN, rows[r].n_kern);
			p[i] = rows[r].fn(POSIX, rows[r].n_kern);
		}
		mo = bench_median(o, BENCH_REPS);
		mk = bench_median(k, BENCH_REPS);
		mp = bench_median(p, BENCH_REPS);
		if (r == 2)
			untyped = mo;
		if (r == 4 && want[2])
			snprintf(note, sizeof(note),
				 "posix mq %.1f %s; %.2f of untyped 1p1c", mp,
				 rows[r].unit, mo / untyped);
		else
			snprintf(note, sizeof(note), "posix mq %.1f %s", mp,
				 rows[r].unit);
		xs[r] = bench_row(rows[r].name, mo, mk, rows[r].lower,
				  rows[r].unit, note);
	}
	for (int r = 0; r < 5; r++)
		if (want[r])
			bench_speedup(rows[r].name, xs[r]);
	if (kid >= 0)
		msgctl(kid, IPC_RMID, NULL);
	mq_unlink(mqname);
	return 0;
}
