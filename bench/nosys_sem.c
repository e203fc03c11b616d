/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nosys_sem: the workload of tests/check_nosyscall_sem.sh, which runs it
 * under strace and asserts that no system call happens between the two
 * markers (a write(2) to fd -1 of a distinctive string, failing EBADF).
 *
 *   nosys_sem          do nothing, print one line, exit 0 (make bench runs it)
 *   nosys_sem run      between the markers: non-blocking semops only
 *   nosys_sem leak     the same plus one getppid(2): the script must see it
 *
 * Between the markers: 100000 single-op P/V pairs, 100000 two-op calls,
 * 10000 SEM_UNDO P/V pairs, 10000 wait-for-zero operations that succeed and
 * 10000 IPC_NOWAIT operations that fail with EAGAIN. One operation of each
 * kind runs before the first marker (one-time set-up such as the pid cache).
 * Results are checked after the second marker; exit 1 on any error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <prim/sem.h>

#include "bench.h"

#define MARK_BEGIN "PRIM_NOSYS_BEGIN"
#define MARK_END "PRIM_NOSYS_END"

#define N_SINGLE 100000
#define N_MULTI 100000
#define N_UNDO 10000
#define N_ZERO 10000
#define N_NOWAIT 10000

static void
mark(const char *s)
{
	/* Fails with EBADF: only strace sees it. */
	(void)!write(-1, s, strlen(s));
}

/* Counts of failures, by kind; filled between the markers, printed after. */
struct result {
	int single, multi, undo, zero, nowait, first_err;
};

static void
fail(struct result *res, int *kind, int r)
{
	(*kind)++;
	if (res->first_err == 0)
		res->first_err = r;
}

static void
workload(struct prim_semset *set, struct result *res)
{
	static const struct prim_sembuf p0 = { 0, -1, 0 }, v0 = { 0, 1, 0 };
	static const struct prim_sembuf ab[2] = { { 0, -1, 0 }, { 1, 1, 0 } };
	static const struct prim_sembuf ba[2] = { { 1, -1, 0 }, { 0, 1, 0 } };
	static const struct prim_sembuf pu = { 0, -1, PRIM_SEM_UNDO };
	static const struct prim_sembuf vu = { 0, 1, PRIM_SEM_UNDO };
	static const struct prim_sembuf z2 = { 2, 0, 0 };
	static const struct prim_sembuf nw = { 2, -1, PRIM_IPC_NOWAIT };
	int r;

	for (int i = 0; i < N_SINGLE; i++) {
		if ((r = prim_sem_op(set, &p0, 1)) < 0)
			fail(res, &res->single, r);
		if ((r = prim_sem_op(set, &v0, 1)) < 0)
			fail(res, &res->single, r);
	}
	for (int i = 0; i < N_MULTI; i++)
		if ((r = prim_sem_op(set, i % 2 ? ba : ab, 2)) < 0)
			fail(res, &res->multi, r);
	for (int i = 0; i < N_UNDO; i++) {
		if ((r = prim_sem_op(set, &pu, 1)) < 0)
			fail(res, &res->undo, r);
		if ((r = prim_sem_op(set, &vu, 1)) < 0)
			fail(res, &res->undo, r);
	}
	for (int i = 0; i < N_ZERO; i++)
		if ((r = prim_sem_op(set, &z2, 1)) < 0)
			fail(res, &res->zero, r);
	for (int i = 0; i < N_NOWAIT; i++)
		if (prim_sem_op(set, &nw, 1) != -EAGAIN)
			res->nowait++;
}

int
main(int argc, char **argv)
{
	struct prim_semset_attr attr = { .nsems = 3 };
	struct result res = { 0 };
	struct prim_semset *set;
	size_t len;
	void *mem;
	int leak, r;

	if (argc < 2) {
		printf("nosys_sem: helper of tests/check_nosyscall_sem.sh\n");
		return 0;
	}
	if (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "leak") != 0) {
		fprintf(stderr, "usage: nosys_sem [run|leak]\n");
		return 2;
	}
	leak = strcmp(argv[1], "leak") == 0;

	len = prim_semset_size(&attr);
	if (len == 0) {
		fprintf(stderr, "nosys_sem: prim_semset_size failed\n");
		return 1;
	}
	mem = bench_shared(len);
	if ((r = prim_semset_init(mem, len, &attr)) < 0 ||
	    (r = prim_semset_open(mem, len, &set)) < 0 ||
	    (r = prim_sem_setval(set, 0, 1)) < 0) {
		fprintf(stderr, "nosys_sem: set-up: %s\n", strerror(-r));
		return 1;
	}

	/* Warm-up: every kind of operation once, outside the markers. */
	{
		static const struct prim_sembuf p0 = { 0, -1, 0 };
		static const struct prim_sembuf v0 = { 0, 1, 0 };
		static const struct prim_sembuf ab[2] = { { 0, -1, 0 },
							  { 1, 1, 0 } };
		static const struct prim_sembuf ba[2] = { { 1, -1, 0 },
							  { 0, 1, 0 } };
		static const struct prim_sembuf pu = { 0, -1, PRIM_SEM_UNDO };
		static const struct prim_sembuf vu = { 0, 1, PRIM_SEM_UNDO };
		static const struct prim_sembuf z2 = { 2, 0, 0 };
		static const struct prim_sembuf nw = { 2, -1,
						       PRIM_IPC_NOWAIT };

		if ((r = prim_sem_op(set, &p0, 1)) < 0 ||
		    (r = prim_sem_op(set, &v0, 1)) < 0 ||
		    (r = prim_sem_op(set, ab, 2)) < 0 ||
		    (r = prim_sem_op(set, ba, 2)) < 0 ||
		    (r = prim_sem_op(set, &pu, 1)) < 0 ||
		    (r = prim_sem_op(set, &vu, 1)) < 0 ||
		    (r = prim_sem_op(set, &z2, 1)) < 0 ||
		    (r = prim_sem_op(set, &nw, 1)) != -EAGAIN) {
			fprintf(stderr, "nosys_sem: warm-up: %s\n",
				strerror(r < 0 ? -r : EPROTO));
			return 1;
		}
	}

	mark(MARK_BEGIN);
	workload(set, &res);
	if (leak)
		syscall(SYS_getppid);
	mark(MARK_END);

	if (res.single || res.multi || res.undo || res.zero || res.nowait) {
		fprintf(stderr,
			"nosys_sem: failed ops: single %d multi %d undo %d "
			"zero %d nowait %d (first error: %s)\n",
			res.single, res.multi, res.undo, res.zero, res.nowait,
			res.first_err ? strerror(-res.first_err) : "-");
		return 1;
	}
	if (prim_sem_getval(set, 0) != 1 || prim_sem_getval(set, 1) != 0 ||
	    prim_sem_getval(set, 2) != 0) {
		fprintf(stderr, "nosys_sem: wrong final values %d %d %d\n",
			prim_sem_getval(set, 0), prim_sem_getval(set, 1),
			prim_sem_getval(set, 2));
		return 1;
	}
	printf("nosys_sem %s: %d single-op pairs, %d two-op calls, "
	       "%d SEM_UNDO pairs, %d zero waits, %d EAGAIN: all succeeded\n",
	       argv[1], N_SINGLE, N_MULTI, N_UNDO, N_ZERO, N_NOWAIT);
	return 0;
}
