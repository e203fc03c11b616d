/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of libprim semaphore arrays: every behaviour of SEMANTICS.md
 * that exists at this level (no keys, no permissions), each errno included.
 * Sets live in shared anonymous mappings; children are forked to block.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "prim/sem.h"

struct fixture {
	void *mem;
	size_t len;
	struct prim_semset *set;
};

static struct prim_semset *
mkset(struct fixture *f, uint32_t nsems)
{
	struct prim_semset_attr a = { .nsems = nsems, .nprocs = 8, .nslots = 16 };

	f->len = prim_semset_size(&a);
	assert_true(f->len > 0);
	f->mem = mmap(NULL, f->len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(f->mem != MAP_FAILED);
	assert_int_equal(prim_semset_init(f->mem, f->len, &a), 0);
	assert_int_equal(prim_semset_open(f->mem, f->len, &f->set), 0);
	return f->set;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	mkset(f, 4);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	prim_semset_close(f->set);
	munmap(f->mem, f->len);
	free(f);
	return 0;
}

static int
op1(struct prim_semset *s, unsigned short n, short op, short flg)
{
	struct prim_sembuf b = { n, op, flg };

	return prim_sem_op(s, &b, 1);
}

static void
msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Wait until f() reaches want (bounded: fail after 5 s). */
static void
await(struct prim_semset *s, int (*f)(const struct prim_semset *, int),
      int semnum, int want)
{
	for (int i = 0; i < 5000; i++) {
		if (f(s, semnum) == want)
			return;
		msleep(1);
	}
	assert_int_equal(f(s, semnum), want);
}

static int
child_exit_code(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* --- creation and validation --- */

static void
test_attr_limits(void **state)
{
	struct prim_semset_attr a = { 0 };
	char buf[64];

	(void)state;
	assert_int_equal(prim_semset_size(&a), 0);
	a.nsems = 32001;
	assert_int_equal(prim_semset_size(&a), 0);
	a.nsems = 32000;
	assert_true(prim_semset_size(&a) > 0);
	a.nsems = 1;
	assert_int_equal(prim_semset_init(buf, sizeof(buf), &a), -EINVAL);
	assert_int_equal(prim_semset_init(NULL, 1 << 20, &a), -EINVAL);
}

static void
test_open_rejects_corrupt(void **state)
{
	struct fixture *f = *state;
	struct prim_semset *s;
	uint32_t *magic = f->mem;

	assert_int_equal(prim_semset_open(f->mem, f->len, &s), 0);
	prim_semset_close(s);
	assert_int_equal(prim_semset_open(f->mem, 32, &s), -EINVAL);
	assert_int_equal(prim_semset_open((char *)f->mem + 64, f->len - 64, &s),
			 -EINVAL);
	*magic ^= 1;
	assert_int_equal(prim_semset_open(f->mem, f->len, &s), -EINVAL);
	*magic ^= 1;
	/* A geometry field that disagrees with the size is refused. */
	((uint32_t *)f->mem)[16] += 1; /* nsems */
	assert_int_equal(prim_semset_open(f->mem, f->len, &s), -EINVAL);
	((uint32_t *)f->mem)[16] -= 1;
	assert_int_equal(prim_semset_open(f->mem, f->len, &s), 0);
	assert_int_equal(prim_semset_nsems(s), 4);
	prim_semset_close(s);
}

/*
 * A header corrupted after open (by a process with write access) cannot
 * send a call outside the mapping: the handle keeps its own geometry.
 */
static void
test_corrupt_after_open(void **state)
{
	struct fixture *f = *state;
	uint32_t *geo = (uint32_t *)f->mem + 16; /* nsems, semopm, nprocs, nslots */
	uint64_t *off = (uint64_t *)((uint32_t *)f->mem + 20); /* off_sems… */
	struct prim_sembuf two[2] = { { 0, 1, 0 }, { 3, 1, PRIM_SEM_UNDO } };

	geo[0] = 1u << 30;
	geo[3] = 1u << 30;
	off[0] = 1ULL << 40;
	off[1] = 1ULL << 41;
	off[2] = 1ULL << 42;
	assert_int_equal(op1(f->set, 999, 1, 0), -EFBIG);
	assert_int_equal(op1(f->set, 3, 1, 0), 0);
	assert_int_equal(prim_sem_op(f->set, two, 2), 0);
	assert_int_equal(prim_sem_getval(f->set, 3), 2);
	assert_int_equal(prim_sem_getncnt(f->set, 3), 0);
	assert_int_equal(prim_sem_getval(f->set, 4), -EINVAL);
	assert_int_equal(prim_semset_nsems(f->set), 4);
}

/* --- semop argument checks (item 16) --- */

static void
test_semop_args(void **state)
{
	struct fixture *f = *state;
	struct prim_sembuf many[501];
	struct prim_sembuf b = { 4, 1, 0 };
	struct timespec bad = { 0, 1000000000L };

	memset(many, 0, sizeof(many));
	assert_int_equal(prim_sem_op(f->set, many, 0), -EINVAL);
	assert_int_equal(prim_sem_op(f->set, many, 501), -E2BIG);
	assert_int_equal(prim_sem_op(f->set, &b, 1), -EFBIG);
	/* EFBIG before anything is applied. */
	many[0] = (struct prim_sembuf){ 0, 1, 0 };
	many[1] = (struct prim_sembuf){ 9, 1, 0 };
	assert_int_equal(prim_sem_op(f->set, many, 2), -EFBIG);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	b.sem_num = 0;
	assert_int_equal(prim_sem_op_timed(f->set, &b, 1, &bad), -EINVAL);
	assert_int_equal(prim_sem_op(f->set, NULL, 1), -EFAULT);
}

/* --- values, ERANGE, EAGAIN (items 17-19) --- */

static void
test_simple_pv(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(op1(f->set, 1, 5, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 1), 5);
	assert_int_equal(op1(f->set, 1, -3, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 1), 2);
	assert_int_equal(op1(f->set, 1, -3, PRIM_IPC_NOWAIT), -EAGAIN);
	assert_int_equal(op1(f->set, 1, 0, PRIM_IPC_NOWAIT), -EAGAIN);
	assert_int_equal(op1(f->set, 2, 0, PRIM_IPC_NOWAIT), 0);
	assert_int_equal(prim_sem_getpid(f->set, 1), getpid());
	assert_int_equal(prim_sem_getval(f->set, 1), 2);
}

static void
test_erange_value(void **state)
{
	struct fixture *f = *state;
	struct prim_sembuf two[2] = { { 0, 32767, 0 }, { 1, 1, 0 } };

	assert_int_equal(op1(f->set, 0, 32767, 0), 0);
	assert_int_equal(op1(f->set, 0, 1, 0), -ERANGE);
	assert_int_equal(op1(f->set, 0, 1, PRIM_SEM_UNDO), -ERANGE);
	assert_int_equal(prim_sem_getval(f->set, 0), 32767);
	assert_int_equal(op1(f->set, 0, -32767, 0), 0);
	/* Multi: second is fine, first overflows -> nothing applied. */
	assert_int_equal(op1(f->set, 0, 1, 0), 0);
	assert_int_equal(prim_sem_op(f->set, two, 2), -ERANGE);
	assert_int_equal(prim_sem_getval(f->set, 0), 1);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
}

static void
test_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct prim_sembuf ops[3] = {
		{ 0, 1, 0 }, { 1, -1, PRIM_IPC_NOWAIT }, { 2, 1, 0 }
	};

	assert_int_equal(prim_sem_op(f->set, ops, 3), -EAGAIN);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 2), 0);
	assert_int_equal(op1(f->set, 1, 1, 0), 0);
	assert_int_equal(prim_sem_op(f->set, ops, 3), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 1);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
	assert_int_equal(prim_sem_getval(f->set, 2), 1);
}

static void
test_same_sem_in_order(void **state)
{
	struct fixture *f = *state;
	/* Each op sees the ones before it: +2 then -2 then wait-zero. */
	struct prim_sembuf a[3] = { { 3, 2, 0 }, { 3, -2, 0 }, { 3, 0, 0 } };
	/* -1 before +1 on a zero semaphore blocks (the order matters). */
	struct prim_sembuf b[2] = { { 3, -1, PRIM_IPC_NOWAIT }, { 3, 1, 0 } };
	struct prim_sembuf c[2] = { { 3, 1, 0 }, { 3, -1, 0 } };
	/* Overflow in the middle of a sequence is ERANGE. */
	struct prim_sembuf d[2] = { { 3, 32767, 0 }, { 3, 1, 0 } };

	assert_int_equal(prim_sem_op(f->set, a, 3), 0);
	assert_int_equal(prim_sem_getval(f->set, 3), 0);
	assert_int_equal(prim_sem_op(f->set, b, 2), -EAGAIN);
	assert_int_equal(prim_sem_op(f->set, c, 2), 0);
	assert_int_equal(prim_sem_op(f->set, d, 2), -ERANGE);
	assert_int_equal(prim_sem_getval(f->set, 3), 0);
}

static void
test_max_ops(void **state)
{
	struct fixture *f = *state;
	struct prim_sembuf ops[500];

	for (int i = 0; i < 500; i++)
		ops[i] = (struct prim_sembuf){ (unsigned short)(i % 4), 1, 0 };
	assert_int_equal(prim_sem_op(f->set, ops, 500), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(prim_sem_getval(f->set, i), 125);
}

/* --- blocking, timeouts, signals, removal (items 14, 19-23) --- */

static void
test_timeout_eagain(void **state)
{
	struct fixture *f = *state;
	struct prim_sembuf b = { 0, -1, 0 };
	struct prim_sembuf two[2] = { { 1, 1, 0 }, { 0, -1, 0 } };
	struct timespec d;

	deadline_in(&d, 30);
	assert_int_equal(prim_sem_op_timed(f->set, &b, 1, &d), -EAGAIN);
	deadline_in(&d, 30);
	assert_int_equal(prim_sem_op_timed(f->set, two, 2, &d), -EAGAIN);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
	/* A deadline already past still tries once. */
	assert_int_equal(op1(f->set, 0, 1, 0), 0);
	deadline_in(&d, 0);
	d.tv_sec -= 1;
	assert_int_equal(prim_sem_op_timed(f->set, &b, 1, &d), 0);
	assert_int_equal(prim_sem_getncnt(f->set, 0), 0);
}

static void
test_block_then_wake(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();

	if (pid == 0) {
		struct prim_sembuf b[2] = { { 0, -2, 0 }, { 1, 1, 0 } };

		_exit(prim_sem_op(f->set, b, 2) == 0 ? 0 : 1);
	}
	await(f->set, prim_sem_getncnt, 0, 1);
	assert_int_equal(prim_sem_getzcnt(f->set, 0), 0);
	assert_int_equal(op1(f->set, 0, 1, 0), 0);
	msleep(20);
	assert_int_equal(prim_sem_getval(f->set, 1), 0); /* still blocked */
	assert_int_equal(op1(f->set, 0, 1, 0), 0);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 1), 1);
	assert_int_equal(prim_sem_getpid(f->set, 1), pid);
	assert_int_equal(prim_sem_getncnt(f->set, 0), 0);
}

static void
test_wait_for_zero(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	assert_int_equal(op1(f->set, 2, 2, 0), 0);
	pid = fork();
	if (pid == 0)
		_exit(op1(f->set, 2, 0, 0) == 0 ? 0 : 1);
	await(f->set, prim_sem_getzcnt, 2, 1);
	assert_int_equal(prim_sem_getncnt(f->set, 2), 0);
	assert_int_equal(op1(f->set, 2, -1, 0), 0);
	assert_int_equal(op1(f->set, 2, -1, 0), 0);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getzcnt(f->set, 2), 0);
}

/* A waiter counts only on the semaphore of its first blocking op (23). */
static void
test_counts_first_blocking_only(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	assert_int_equal(op1(f->set, 0, 1, 0), 0);
	pid = fork();
	if (pid == 0) {
		struct prim_sembuf b[3] = {
			{ 0, -1, 0 }, { 1, 0, 0 }, { 2, -1, 0 }
		};

		assert_int_equal(op1(f->set, 1, 1, 0), 0);
		_exit(prim_sem_op(f->set, b, 3) == 0 ? 0 : 1);
	}
	/* sem 0 can proceed, sem 1 (== 1) blocks on zero: zcnt of 1 only. */
	await(f->set, prim_sem_getzcnt, 1, 1);
	assert_int_equal(prim_sem_getncnt(f->set, 0), 0);
	assert_int_equal(prim_sem_getncnt(f->set, 2), 0);
	assert_int_equal(op1(f->set, 1, -1, 0), 0);
	/* Now it blocks on sem 2: ncnt of 2. */
	await(f->set, prim_sem_getncnt, 2, 1);
	assert_int_equal(prim_sem_getzcnt(f->set, 1), 0);
	assert_int_equal(op1(f->set, 2, 1, 0), 0);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 2), 0);
}

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void
test_eintr_not_restarted(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();

	if (pid == 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART; /* SysV calls ignore it */
		sigaction(SIGUSR1, &sa, NULL);
		_exit(op1(f->set, 0, -1, 0) == -EINTR && got_signal ? 0 : 1);
	}
	await(f->set, prim_sem_getncnt, 0, 1);
	msleep(10);
	kill(pid, SIGUSR1);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getncnt(f->set, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
}

static void
test_remove_wakes_eidrm(void **state)
{
	struct fixture *f = *state;
	pid_t p1, p2;

	p1 = fork();
	if (p1 == 0)
		_exit(op1(f->set, 0, -1, 0) == -EIDRM ? 0 : 1);
	p2 = fork();
	if (p2 == 0) {
		struct prim_sembuf b[2] = { { 1, 1, 0 }, { 2, -1, 0 } };

		_exit(prim_sem_op(f->set, b, 2) == -EIDRM ? 0 : 1);
	}
	await(f->set, prim_sem_getncnt, 0, 1);
	await(f->set, prim_sem_getncnt, 2, 1);
	assert_int_equal(prim_semset_remove(f->set), 0);
	assert_int_equal(child_exit_code(p1), 0);
	assert_int_equal(child_exit_code(p2), 0);
	assert_int_equal(op1(f->set, 0, 1, 0), -EIDRM);
	assert_int_equal(prim_sem_getval(f->set, 0), -EIDRM);
	assert_int_equal(prim_semset_remove(f->set), -EIDRM);
	assert_int_equal(prim_semset_open(f->mem, f->len, &f->set), -EIDRM);
}

/* --- control (items 24-27) --- */

static void
test_setval_getall(void **state)
{
	struct fixture *f = *state;
	unsigned short v[4], w[4] = { 1, 2, 3, 32767 }, bad[4] = { 0, 0, 0, 32768 };
	int64_t ot, ct;

	assert_int_equal(prim_sem_setval(f->set, 0, 32768), -ERANGE);
	assert_int_equal(prim_sem_setval(f->set, 0, -1), -ERANGE);
	assert_int_equal(prim_sem_setval(f->set, 9, 32768), -ERANGE);
	assert_int_equal(prim_sem_setval(f->set, 9, 1), -EINVAL);
	assert_int_equal(prim_sem_setval(f->set, -1, 1), -EINVAL);
	assert_int_equal(prim_sem_getval(f->set, 4), -EINVAL);
	assert_int_equal(prim_sem_getncnt(f->set, -1), -EINVAL);
	assert_int_equal(prim_sem_setval(f->set, 2, 7), 0);
	assert_int_equal(prim_sem_getval(f->set, 2), 7);
	assert_int_equal(prim_sem_setall(f->set, bad), -ERANGE);
	assert_int_equal(prim_sem_getval(f->set, 2), 7);
	assert_int_equal(prim_sem_setall(f->set, w), 0);
	assert_int_equal(prim_sem_getall(f->set, v), 0);
	assert_memory_equal(v, w, sizeof(v));
	assert_int_equal(prim_sem_getpid(f->set, 3), getpid());
	assert_int_equal(prim_semset_times(f->set, &ot, &ct), 0);
	assert_true(ct > 0);
	assert_int_equal(ot, 0); /* no semop yet */
	assert_int_equal(op1(f->set, 0, 0, PRIM_IPC_NOWAIT), -EAGAIN);
	assert_int_equal(op1(f->set, 0, -1, 0), 0);
	assert_int_equal(op1(f->set, 0, 0, 0), 0); /* wait-for-zero */
	assert_int_equal(prim_semset_times(f->set, &ot, NULL), 0);
	assert_true(ot >= ct);
}

static void
test_setval_wakes(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();

	if (pid == 0)
		_exit(op1(f->set, 1, -3, 0) == 0 ? 0 : 1);
	await(f->set, prim_sem_getncnt, 1, 1);
	assert_int_equal(prim_sem_setval(f->set, 1, 3), 0);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
}

/* --- SEM_UNDO and reaping (items 18, 25, 28; DESIGN "death") --- */

static void
test_undo_applied_on_reap(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	assert_int_equal(prim_sem_setval(f->set, 0, 5), 0);
	pid = fork();
	if (pid == 0) {
		struct prim_sembuf b[2] = {
			{ 0, -2, PRIM_SEM_UNDO }, { 1, 3, PRIM_SEM_UNDO }
		};

		if (prim_sem_op(f->set, b, 2) != 0 ||
		    op1(f->set, 2, 4, PRIM_SEM_UNDO) != 0 ||
		    op1(f->set, 2, -1, PRIM_SEM_UNDO) != 0)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 3);
	assert_int_equal(prim_sem_getval(f->set, 1), 3);
	assert_int_equal(prim_sem_getval(f->set, 2), 3);
	/* Someone else took 2 from sem 1: the undo of +3 clamps at 0. */
	assert_int_equal(op1(f->set, 1, -2, 0), 0);
	assert_int_equal(prim_semset_reap(f->set, pid), 3);
	assert_int_equal(prim_sem_getval(f->set, 0), 5);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
	assert_int_equal(prim_sem_getval(f->set, 2), 0);
	assert_int_equal(prim_sem_getpid(f->set, 0), pid);
	/* Idempotent. */
	assert_int_equal(prim_semset_reap(f->set, pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 5);
	assert_int_equal(prim_semset_reap(f->set, 0), -EINVAL);
}

static void
test_undo_clamp_high(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	assert_int_equal(prim_sem_setval(f->set, 0, 10), 0);
	pid = fork();
	if (pid == 0)
		_exit(op1(f->set, 0, -10, PRIM_SEM_UNDO) == 0 ? 0 : 1);
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_setval(f->set, 1, 0), 0);
	assert_int_equal(op1(f->set, 0, 32767, 0), 0);
	assert_int_equal(prim_semset_reap(f->set, pid), 1);
	assert_int_equal(prim_sem_getval(f->set, 0), 32767);
}

static void
test_undo_erange(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(op1(f->set, 0, 32767, PRIM_SEM_UNDO), 0);
	assert_int_equal(op1(f->set, 0, -32767, 0), 0);
	/* adj is -32767; one more +2 would make it -32769. */
	assert_int_equal(op1(f->set, 0, 2, PRIM_SEM_UNDO), -ERANGE);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	assert_int_equal(op1(f->set, 0, 1, PRIM_SEM_UNDO), 0); /* -32768 ok */
	assert_int_equal(prim_sem_getval(f->set, 0), 1);
}

static void
test_setval_clears_undo(void **state)
{
	struct fixture *f = *state;
	unsigned short all[4] = { 0, 0, 0, 0 };
	pid_t pid = fork();

	if (pid == 0) {
		if (op1(f->set, 0, 4, PRIM_SEM_UNDO) ||
		    op1(f->set, 1, 4, PRIM_SEM_UNDO) ||
		    op1(f->set, 2, 4, PRIM_SEM_UNDO))
			_exit(1);
		_exit(0);
	}
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_sem_setval(f->set, 0, 4), 0);
	all[0] = 4;
	all[1] = 4;
	all[2] = 4;
	assert_int_equal(prim_sem_setall(f->set, all), 0);
	assert_int_equal(op1(f->set, 2, 1, PRIM_SEM_UNDO), -0); /* mine */
	/* Nothing left to undo for the child on any semaphore. */
	assert_int_equal(prim_semset_reap(f->set, pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 4);
	assert_int_equal(prim_sem_getval(f->set, 1), 4);
	assert_int_equal(prim_sem_getval(f->set, 2), 5);
}

static void
test_undo_not_inherited_by_fork(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	assert_int_equal(op1(f->set, 0, 2, PRIM_SEM_UNDO), 0);
	pid = fork();
	if (pid == 0)
		_exit(0); /* the child has no adjustment of its own */
	assert_int_equal(child_exit_code(pid), 0);
	assert_int_equal(prim_semset_reap(f->set, pid), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 2);
}

static void
test_killed_waiter_leaves_counts(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct prim_sembuf b[2] = {
			{ 0, 1, PRIM_SEM_UNDO }, { 1, -1, PRIM_SEM_UNDO }
		};

		prim_sem_op(f->set, b, 2);
		_exit(1);
	}
	await(f->set, prim_sem_getncnt, 1, 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(prim_semset_reap(f->set, pid), 0);
	assert_int_equal(prim_sem_getncnt(f->set, 1), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 0);
	/* Its slot is free again: all 16 can be used. */
	assert_int_equal(op1(f->set, 1, 1, 0), 0);
	assert_int_equal(prim_sem_getval(f->set, 1), 1);
}

/* Reaping a live process does nothing: records belong to an identity. */
static void
test_reap_live_is_noop(void **state)
{
	struct fixture *f = *state;
	pid_t pids[8];

	assert_int_equal(op1(f->set, 0, 3, PRIM_SEM_UNDO), 0);
	assert_int_equal(prim_semset_pids(f->set, pids, 8), 1);
	assert_int_equal(pids[0], getpid());
	assert_int_equal(prim_semset_reap(f->set, getpid()), 0);
	assert_int_equal(prim_sem_getval(f->set, 0), 3);
	/* Still my record: the adjustment keeps counting. */
	assert_int_equal(op1(f->set, 0, 32767 - 3 + 1, PRIM_SEM_UNDO), -ERANGE);
	assert_int_equal(prim_semset_pids(f->set, NULL, -1), -EINVAL);
}

/* A zombie (exited, not yet waited for) is dead: the broker is not its
 * parent and reaps it before anyone waits. */
/*
 * FIFO among waiters: A waits, then B, both for one unit; one V must go to
 * A. A waiter that saw the value change used to run its own request and
 * overtake A while the V was serving it (1 round in 30). Repeated, since
 * the race needs many rounds to show.
 */
static void
test_fifo_two_waiters(void **state)
{
	struct fixture *f = *state;

	for (int round = 0; round < 100; round++) {
		pid_t p[2];
		int st;

		assert_int_equal(prim_sem_setval(f->set, 0, 0), 0);
		for (int i = 0; i < 2; i++) {
			p[i] = fork();
			assert_true(p[i] >= 0);
			if (p[i] == 0) {
				alarm(5);
				_exit(op1(f->set, 0, -1, 0) == 0 ? 0 : 1);
			}
			while (prim_sem_getncnt(f->set, 0) < i + 1)
				usleep(100);
		}
		assert_int_equal(op1(f->set, 0, 1, 0), 0);
		assert_int_equal(waitpid(p[0], &st, 0), p[0]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(prim_sem_getncnt(f->set, 0), 1);
		kill(p[1], SIGKILL);
		assert_int_equal(waitpid(p[1], &st, 0), p[1]);
		assert_int_equal(prim_semset_reap(f->set, p[1]), 0);
	}
}

static void
test_reap_zombie(void **state)
{
	struct fixture *f = *state;
	pid_t pids[8], pid = fork();
	int st;

	if (pid == 0)
		_exit(op1(f->set, 1, 2, PRIM_SEM_UNDO) == 0 ? 0 : 1);
	/* Wait for the exit without reaping the zombie. */
	for (int i = 0; i < 5000; i++) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0 &&
		    si.si_pid == pid)
			break;
		msleep(1);
	}
	assert_int_equal(prim_sem_getval(f->set, 1), 2);
	assert_int_equal(prim_semset_pids(f->set, pids, 8), 1);
	assert_int_equal(pids[0], pid);
	assert_int_equal(prim_semset_reap(f->set, pid), 1);
	assert_int_equal(prim_sem_getval(f->set, 1), 0);
	assert_int_equal(prim_semset_pids(f->set, pids, 8), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* Pages of [mem, mem + len) that are resident. */
static size_t
resident_pages(void *mem, size_t len)
{
	size_t np = (len + 4095) / 4096, n = 0;
	unsigned char *v = malloc(np);

	assert_non_null(v);
	assert_int_equal(mincore(mem, len, v), 0);
	for (size_t i = 0; i < np; i++)
		n += v[i] & 1;
	free(v);
	return n;
}

/*
 * SEM_12 (issue 9): a set made in fresh zero pages touches only what is
 * used. Until a caller blocks, makes a call of several operations or uses
 * SEM_UNDO, its resident memory is at most 4 KiB + 64 B per semaphore:
 * here SETVAL, P, V, GETNCNT and GETALL of 32000 semaphores. A call of two
 * operations then adds one slot (its header and the pages its operations
 * lie on), SEM_UNDO the one undo record's pages, not the other records'.
 */
static void
test_memory_follows_use(void **state)
{
	struct prim_semset_attr a = { .nsems = 32000, .nprocs = 64,
				      .nslots = 64,
				      .flags = PRIM_SEMSET_ZEROED };
	size_t len = prim_semset_size(&a), budget;
	struct prim_sembuf p = { 0, -1, 0 }, v = { 0, 1, 0 };
	struct prim_sembuf two[2] = { { 0, -1, 0 }, { 31999, 1, 0 } };
	struct prim_sembuf u = { 5, 1, PRIM_SEM_UNDO };
	static unsigned short vals[32000];
	struct prim_semset *s;
	void *mem;

	(void)state;
	budget = (4096 + 64 * (size_t)a.nsems + 4095) / 4096;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(prim_semset_init(mem, len, &a), 0);
	assert_int_equal(prim_semset_open(mem, len, &s), 0);
	assert_int_equal(resident_pages(mem, len), 1);
	assert_int_equal(prim_sem_setval(s, 0, 1), 0);
	assert_int_equal(prim_sem_op(s, &p, 1), 0);
	assert_int_equal(prim_sem_op(s, &v, 1), 0);
	assert_int_equal(prim_sem_getncnt(s, 0), 0);
	assert_int_equal(prim_sem_getall(s, vals), 0);
	assert_true(resident_pages(mem, len) <= budget);
	/* A slot: its header, its first operations, its first semaphore
	 * numbers (a slot of 32000 has room for 32000 of each). */
	assert_int_equal(prim_sem_op(s, two, 2), 0);
	assert_int_equal(prim_sem_getval(s, 31999), 1);
	assert_true(resident_pages(mem, len) <= budget + 3);
	/* One undo record: its own pages (8 B per semaphore), no other's
	 * (and one more slot's, as for two operations). */
	assert_int_equal(prim_sem_op(s, &u, 1), 0);
	assert_true(resident_pages(mem, len) <=
		    budget + 6 + (8 * (size_t)a.nsems + 4095) / 4096 + 1);
	prim_semset_close(s);
	munmap(mem, len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attr_limits),
		cmocka_unit_test(test_memory_follows_use),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_open_rejects_corrupt),
		T(test_corrupt_after_open),
		T(test_semop_args),
		T(test_simple_pv),
		T(test_erange_value),
		T(test_all_or_nothing),
		T(test_same_sem_in_order),
		T(test_max_ops),
		T(test_timeout_eagain),
		T(test_block_then_wake),
		T(test_wait_for_zero),
		T(test_counts_first_blocking_only),
		T(test_eintr_not_restarted),
		T(test_remove_wakes_eidrm),
		T(test_setval_getall),
		T(test_setval_wakes),
		T(test_undo_applied_on_reap),
		T(test_undo_clamp_high),
		T(test_undo_erange),
		T(test_setval_clears_undo),
		T(test_undo_not_inherited_by_fork),
		T(test_killed_waiter_leaves_counts),
		T(test_reap_live_is_noop),
		T(test_reap_zombie),
		T(test_fifo_two_waiters),
#undef T
	};

	return cmocka_run_group_tests_name("prim_sem", tests, NULL, NULL);
}
