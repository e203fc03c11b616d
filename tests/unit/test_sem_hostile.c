/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A semaphore set whose memory another process rewrites: every protocol
 * word (HELD and tag bits, the active request, slot identities, request
 * words and counts) set to what the protocol never produces, and random
 * scribbles. Each call must return — IPC_NOWAIT at once, timed calls by
 * their deadline, control within the patience — with an error, never a
 * crash or a hang; an inconsistent set is marked damaged
 * (-ENOTRECOVERABLE). White-box: the test includes prim/sem.c to reach
 * the layout. A watchdog alarm turns a hang into a failure.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "sem.c"

struct fixture {
	void *mem;
	size_t len;
	struct prim_semset *set;
};

static struct fixture fx;

static struct prim_semset *
mk(uint32_t nsems, uint32_t nslots, uint32_t nprocs)
{
	struct prim_semset_attr a = { .nsems = nsems, .nprocs = nprocs,
				      .nslots = nslots };

	fx.len = prim_semset_size(&a);
	assert_true(fx.len > 0);
	fx.mem = mmap(NULL, fx.len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(fx.mem != MAP_FAILED);
	assert_int_equal(prim_semset_init(fx.mem, fx.len, &a), 0);
	/* The attacks forge slots and records anywhere: as if every one had
	 * been claimed once, so that every scan reaches them (SEM_12). */
	((struct prim_semset_shm *)fx.mem)->slots_hw = a.nslots;
	((struct prim_semset_shm *)fx.mem)->undo_hw = a.nprocs;
	assert_int_equal(prim_semset_open(fx.mem, fx.len, &fx.set), 0);
	/* A hang is a failure: the alarm kills the test. */
	alarm(20);
	return fx.set;
}

static int
teardown(void **state)
{
	(void)state;
	alarm(0);
	if (fx.set != NULL)
		prim_semset_close(fx.set);
	if (fx.mem != NULL)
		munmap(fx.mem, fx.len);
	memset(&fx, 0, sizeof(fx));
	return 0;
}

static int
op1(struct prim_semset *s, unsigned short n, short op, short flg)
{
	struct prim_sembuf b = { n, op, flg };

	return prim_sem_op(s, &b, 1);
}

static int
op2(struct prim_semset *s, short a, short b, short flg)
{
	struct prim_sembuf v[2] = { { 0, a, flg }, { 1, b, flg } };

	return prim_sem_op(s, v, 2);
}

static uint64_t *
word(struct prim_semset *s, uint32_t n)
{
	return &sem_at(hdr(s), n)->word;
}

/*
 * One store of HELD (with a tag no request carries) into a word: a stale
 * freeze, repaired by the next call that meets it, value unchanged.
 */
static void
test_held_word_nowait(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);

	(void)state;
	ck_pr_or_64(word(s, 0), W_HELD | tag_of(77));
	assert_int_equal(op1(s, 0, -1, PRIM_IPC_NOWAIT), -EAGAIN);
	assert_false(ck_pr_load_64(word(s, 0)) & W_HELD);
	ck_pr_or_64(word(s, 0), W_HELD | tag_of(78));
	assert_int_equal(op1(s, 0, 2, PRIM_IPC_NOWAIT), 0);
	assert_int_equal(prim_sem_getval(s, 0), 2);
	assert_int_equal(prim_semset_check(s), 0);
}

static void
test_held_word_timed(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_sembuf b = { 0, -1, 0 };
	struct timespec dl;

	(void)state;
	ck_pr_or_64(word(s, 0), W_HELD | tag_of(5));
	deadline_in(&dl, 100);
	assert_int_equal(prim_sem_op_timed(s, &b, 1, &dl), -EAGAIN);
}

static void
test_held_word_setval_and_reap(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	pid_t child;
	int st;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(op1(s, 1, 2, PRIM_SEM_UNDO) == 0 ? 0 : 1);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_pr_or_64(word(s, 1), W_HELD | tag_of(9));
	ck_pr_or_64(&undo_at(hdr(s), 0)->adj[1], W_HELD | tag_of(10));
	assert_int_equal(prim_semset_reap(s, child), 1);
	assert_int_equal(prim_sem_getval(s, 1), 0);
	ck_pr_or_64(word(s, 0), W_HELD | tag_of(11));
	assert_int_equal(prim_sem_setval(s, 0, 4), 0);
	assert_int_equal(prim_sem_getval(s, 0), 4);
}

/* A REMOVED bit on one word: that semaphore says EIDRM, no more. */
static void
test_removed_bit(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_sembuf b = { 0, -1, 0 };
	struct timespec dl;

	(void)state;
	ck_pr_or_64(word(s, 0), W_REMOVED);
	assert_int_equal(op1(s, 0, 1, PRIM_IPC_NOWAIT), -EIDRM);
	deadline_in(&dl, 50);
	assert_int_equal(prim_sem_op_timed(s, &b, 1, &dl), -EIDRM);
	assert_int_equal(op1(s, 1, 1, 0), 0);
	assert_int_equal(prim_sem_setval(s, 0, 1), -EIDRM);
}

/* A slot waiting on semaphore 0 whose request claims 0xffffffff ops. */
static void
test_huge_request_count(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_semset *h = hdr(s);
	struct prim_slot_shm *sl = slot_at(h, 0);

	(void)state;
	sl->ident = prim__ident();
	sl->kind = REQ_OPS;
	sl->nops = 0xffffffffu;
	sl->ndist = 1;
	slot_dist(h, sl)[0] = 0;
	sl->ticket = 1;
	sl->wait_sem = 1;
	sl->wait_kind = WAIT_N;
	sl->blk = BLK(1, 0, WAIT_N, 0); /* blocked on 0 */
	sl->req = REQ_PUBLISHED;
	ck_pr_or_64(word(s, 0), W_SLEEPERS);
	/* The increment is done; the hand-off meets the request. */
	assert_int_equal(op1(s, 0, 1, 0), 0);
	assert_int_equal(prim_sem_getval(s, 0), -ENOTRECOVERABLE);
}

/* The active request's content is insane (an unknown kind). */
static void
test_active_insane(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_semset *h = hdr(s);
	struct prim_slot_shm *sl = slot_at(h, 2);
	uint32_t gen = 40;

	(void)state;
	sl->ident = prim__ident();
	sl->kind = 99;
	sl->req = (REQ_PUBLISHED | W_HELD | tag_of(gen)) + W_VER_ONE;
	h->shm->active = (uint64_t)gen << 16 | 3;
	assert_int_equal(op2(s, 1, 1, PRIM_IPC_NOWAIT), -ENOTRECOVERABLE);
}

static void
test_active_out_of_range(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);

	(void)state;
	hdr(s)->shm->active = 7ULL << 16 | 9999;
	assert_int_equal(op2(s, 1, 1, PRIM_IPC_NOWAIT), -ENOTRECOVERABLE);
}

/* Bits above the 32-bit generation: never written by the protocol. */
static void
test_active_high_bits(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);

	(void)state;
	hdr(s)->shm->active = 1ULL << 48 | 7ULL << 16 | 1;
	assert_int_equal(op2(s, 1, 1, PRIM_IPC_NOWAIT), -ENOTRECOVERABLE);
}

/* Every slot's identity forged: a dead process's pid, any start time. */
static void
test_forged_identities(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_semset *h = hdr(s);
	pid_t dead = dead_pid();
	uint64_t forged = (uint64_t)(uint32_t)dead | 12345ULL << 32;
	struct prim_sembuf v[2] = { { 0, 1, 0 }, { 1, 1, 0 } };
	struct timespec dl;

	(void)state;
	for (uint32_t i = 0; i < h->nslots; i++)
		slot_at(h, i)->ident = forged;
	for (uint32_t i = 0; i < h->nprocs; i++)
		undo_at(h, i)->ident = forged;
	/* A call that never sleeps takes over a dead control slot. */
	assert_int_equal(op2(s, 1, 1, PRIM_IPC_NOWAIT), 0);
	/* One that may sleep but can proceed does, in a control slot. */
	deadline_in(&dl, 100);
	assert_int_equal(prim_sem_op_timed(s, v, 2, &dl), 0);
	/* One that must wait finds no slot to wait in: to its deadline. */
	{
		struct prim_sembuf w2[2] = { { 0, -10, 0 }, { 1, 1, 0 } };

		deadline_in(&dl, 100);
		assert_int_equal(prim_sem_op_timed(s, w2, 2, &dl), -EAGAIN);
	}
	/* No undo record left. */
	v[0].sem_flg = PRIM_SEM_UNDO | PRIM_IPC_NOWAIT;
	assert_int_equal(prim_sem_op(s, v, 1), -ENOMEM);
	/* The reap frees what the forged identity holds... */
	assert_true(prim_semset_reap(s, dead) >= 0);
	deadline_in(&dl, 1000);
	v[0].sem_flg = 0;
	assert_int_equal(prim_sem_op_timed(s, v, 2, &dl), 0);
	assert_int_equal(prim_sem_op(s, v, 1), 0);
	assert_int_equal(prim_sem_getval(s, 0), 4);
	/* ...and so does a reap of a live pid whose start time is forged. */
	slot_at(h, 0)->ident = (uint64_t)(uint32_t)getpid() | 777ULL << 32;
	assert_true(prim_semset_reap(s, getpid()) >= 0);
	assert_int_equal(slot_at(h, 0)->ident, 0);
}

/* A slot whose request is frozen, no request active, owner dead: the
 * reap repairs the stale freeze, withdraws the request, frees the slot. */
static void
test_frozen_request_dead_owner(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_semset *h = hdr(s);
	pid_t dead = dead_pid();
	struct prim_slot_shm *sl = slot_at(h, 3);

	(void)state;
	sl->ident = (uint64_t)(uint32_t)dead | 1ULL << 32;
	sl->kind = REQ_OPS;
	sl->req = (REQ_PUBLISHED | W_HELD | tag_of(999)) + 5 * W_VER_ONE;
	assert_int_equal(prim_semset_reap(s, dead), 0);
	assert_int_equal(sl->ident, 0);
	assert_int_equal(wval(sl->req), REQ_IDLE);
}

/*
 * No corruption at all: every slot a sleeper may take holds one, then a
 * SEM_UNDO process dies. The reap takes a control slot and finishes.
 */
struct blocker {
	struct prim_semset *s;
	int r;
};

static void *
block_on_0(void *arg)
{
	struct blocker *b = arg;

	b->r = op1(b->s, 0, -1, 0);
	return NULL;
}

static void
test_reap_with_every_slot_asleep(void **state)
{
	struct prim_semset *s = mk(2, 6, 4); /* 4 slots for sleepers */
	struct blocker b[6];
	pthread_t t[6];
	pid_t child;
	int st, pipefd[2];
	char c;

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		if (op1(s, 1, 5, PRIM_SEM_UNDO) != 0)
			_exit(1);
		(void)write(pipefd[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(prim_sem_getval(s, 1), 5);
	/* Six sleepers for four slots: two wait for a slot. */
	for (int i = 0; i < 6; i++) {
		b[i].s = s;
		b[i].r = 1;
		assert_int_equal(pthread_create(&t[i], NULL, block_on_0, &b[i]),
				 0);
	}
	while (prim_sem_getncnt(s, 0) < 4)
		usleep(1000);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_int_equal(prim_semset_reap(s, child), 1);
	assert_int_equal(prim_sem_getval(s, 1), 0);
	/* SETVAL also finds a slot, and wakes them all in turn. */
	assert_int_equal(prim_sem_setval(s, 0, 6), 0);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(b[i].r, 0);
	}
	assert_int_equal(prim_sem_getval(s, 0), 0);
	close(pipefd[0]);
	close(pipefd[1]);
}

/*
 * Every slot a sleeper may take holds one: a call that may sleep but can
 * proceed at once (SEM_UNDO, no IPC_NOWAIT) must not wait for a slot, as
 * it would not in the kernel; one that must wait still waits, its turn
 * kept, and is served when a slot frees and the value comes.
 */
static void
test_can_proceed_with_every_slot_asleep(void **state)
{
	struct prim_semset *s = mk(3, 6, 4); /* 4 slots for sleepers */
	struct prim_sembuf undo_up = { 1, 1, PRIM_SEM_UNDO };
	struct blocker b[4], late = { NULL, 1 };
	pthread_t t[4], tl;

	(void)state;
	for (int i = 0; i < 4; i++) {
		b[i].s = s;
		b[i].r = 1;
		assert_int_equal(pthread_create(&t[i], NULL, block_on_0, &b[i]),
				 0);
	}
	while (prim_sem_getncnt(s, 0) < 4)
		usleep(1000);
	assert_int_equal(prim_sem_op(s, &undo_up, 1), 0);
	assert_int_equal(prim_sem_getval(s, 1), 1);
	/* One more that must wait: it waits for a slot, then its turn. */
	late.s = s;
	assert_int_equal(pthread_create(&tl, NULL, block_on_0, &late), 0);
	usleep(20000);
	assert_int_equal(prim_sem_setval(s, 0, 5), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(b[i].r, 0);
	}
	assert_int_equal(pthread_join(tl, NULL), 0);
	assert_int_equal(late.r, 0);
	assert_int_equal(prim_sem_getval(s, 0), 0);
}

/*
 * A huge request in progress (a SETALL freezes nsems * (nprocs + 1)
 * words), left active by its dead owner: whoever helps it does so within
 * its patience and gives up (its progress kept), and helping again
 * finishes it.
 */
static void
test_huge_request_helped_in_parts(void **state)
{
	struct prim_semset *s = mk(20000, 6, 64); /* 1.3 M words */
	struct prim_semset *h = hdr(s);
	struct prim_slot_shm *sl = slot_at(h, 5);
	struct prim_sembuf two[2] = { { 0, 1, PRIM_IPC_NOWAIT },
				      { 1, 1, PRIM_IPC_NOWAIT } };
	uint32_t gen = (uint32_t)(h->shm->active >> 16) + 1;
	int calls = 0, r;

	(void)state;
	prim_semset_set_patience(s, 100000); /* 0.1 ms */
	sl->ident = (uint64_t)(uint32_t)dead_pid() | 1ULL << 32;
	sl->kind = REQ_SETALL;
	sl->nops = h->nsems;
	sl->undo = h->nprocs; /* the records it covers: all (SEM_12) */
	for (uint32_t i = 0; i < h->nsems; i++)
		sl->ops[i].sem_op = 7;
	sl->req = ((uint64_t)REQ_PUBLISHED | W_HELD | tag_of(gen)) + W_VER_ONE;
	h->shm->active = (uint64_t)gen << 16 | 6;
	do {
		r = prim_sem_op(s, two, 2);
		calls++;
	} while (r == -EAGAIN && calls < 10000);
	assert_int_equal(r, 0);
	assert_true(calls > 1); /* it did give up, at least once */
	assert_int_equal(prim_sem_getval(s, 0), 8);
	assert_int_equal(prim_sem_getval(s, 19999), 7);
	printf("huge request: finished by %d helping calls\n", calls);
}

/* A live writer keeps changing a word: calls give up, never spin on. */
/* A stop flag between two threads: atomic (a volatile int would race). */
static uint32_t churn_stop;

static void *
churn(void *arg)
{
	uint64_t *w = arg;

	while (!ck_pr_load_32(&churn_stop))
		ck_pr_add_64(w, W_VER_ONE);
	return NULL;
}

static void
test_live_churn(void **state)
{
	struct prim_semset *s = mk(2, 8, 4);
	struct prim_sembuf v[2] = { { 0, 0, 0 }, { 1, 1, 0 } };
	struct timespec dl;
	pthread_t t;
	int r;

	(void)state;
	prim_semset_set_patience(s, 2000000); /* 2 ms */
	ck_pr_store_32(&churn_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, churn, word(s, 1)), 0);
	for (int i = 0; i < 200; i++) {
		r = op1(s, 1, (i & 1) ? -1 : 1, PRIM_IPC_NOWAIT);
		assert_true(r == 0 || r == -EAGAIN);
		r = op2(s, 0, (i & 1) ? -1 : 1, PRIM_IPC_NOWAIT);
		assert_true(r == 0 || r == -EAGAIN);
		r = prim_sem_setval(s, 1, 1);
		assert_true(r == 0 || r == -EBUSY);
	}
	deadline_in(&dl, 50);
	r = prim_sem_op_timed(s, v, 2, &dl);
	assert_true(r == 0 || r == -EAGAIN);
	ck_pr_store_32(&churn_stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* Contention is not damage. */
	assert_int_equal(prim_semset_check(s), 0);
}

/*
 * A writer flips a published request's semaphore numbers between a valid
 * one and 65535 while callers complete it: every number read from the slot
 * is checked where it is used (a second read once gave an index 4 MB past
 * a one-semaphore set, the SEM_8 check in decide_ops). The set lies at the
 * start of a PROT_NONE reservation, so a read past it faults.
 */
static uint32_t flip_stop, flip_pause, flip_parked;

static void *
flip_dist(void *arg)
{
	struct prim_semset *h = arg;

	while (!ck_pr_load_32(&flip_stop)) {
		/* Parked while the set is made again (not a race to test). */
		if (ck_pr_load_32(&flip_pause)) {
			ck_pr_store_32(&flip_parked, 1);
			while (ck_pr_load_32(&flip_pause))
				ck_pr_stall();
			ck_pr_store_32(&flip_parked, 0);
		}
		for (uint32_t i = 0; i < h->nslots; i++) {
			uint16_t *d = slot_dist(h, slot_at(h, i));

			ck_pr_store_16(&d[0], 0);
			ck_pr_store_16(&d[0], 65535);
		}
	}
	return NULL;
}

static void
test_numbers_flipped_while_deciding(void **state)
{
	struct prim_semset_attr a = { .nsems = 1, .nprocs = 4, .nslots = 8 };
	size_t len = prim_semset_size(&a), resv = 16 << 20;
	struct prim_sembuf ops[2] = { { 0, 1, PRIM_IPC_NOWAIT },
				      { 0, -1, PRIM_IPC_NOWAIT } };
	struct prim_semset *s, *fs;
	double end = now_s() + 1.0;
	char *mem;
	pthread_t t;
	long calls = 0;

	(void)state;
	mem = mmap(NULL, resv, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mprotect(mem, (len + 4095) & ~(size_t)4095,
				  PROT_READ | PROT_WRITE),
			 0);
	alarm(20);
	ck_pr_store_32(&flip_stop, 0);
	/* The flipper's own handle: the geometry stays, the sets change. */
	assert_int_equal(prim_semset_init(mem, len, &a), 0);
	assert_int_equal(prim_semset_open(mem, len, &fs), 0);
	assert_int_equal(pthread_create(&t, NULL, flip_dist, hdr(fs)), 0);
	while (now_s() < end) {
		ck_pr_store_32(&flip_pause, 1);
		while (!ck_pr_load_32(&flip_parked))
			ck_pr_stall();
		assert_int_equal(prim_semset_init(mem, len, &a), 0);
		((struct prim_semset_shm *)(void *)mem)->slots_hw = a.nslots;
		ck_pr_store_32(&flip_pause, 0);
		while (ck_pr_load_32(&flip_parked))
			ck_pr_stall();
		assert_int_equal(prim_semset_open(mem, len, &s), 0);
		for (int k = 0; k < 1000; k++, calls++) {
			int r = prim_sem_op(s, ops, 2);

			assert_true(r == 0 || r == -EAGAIN || r == -EIDRM ||
				    r == -ENOTRECOVERABLE);
			if (r == -EIDRM || r == -ENOTRECOVERABLE)
				break;
		}
		prim_semset_close(s);
	}
	ck_pr_store_32(&flip_stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	prim_semset_close(fs);
	alarm(0);
	printf("flipped numbers: %ld calls, no crash\n", calls);
	munmap(mem, resv);
}

/*
 * Random scribbles over the whole mapping, then random calls: each must
 * return with one of the errors libprim documents.
 */
static uint64_t rng = 88172645463325252ULL;

/* The index (in 64-bit words) of a random protocol word of the set. */
static size_t
proto_word(struct prim_semset *h)
{
	char *base = (char *)h->shm, *p;
	uint32_t i;

	switch (xorshift(&rng) % 6) {
	case 0: /* active, astate, tickets */
		p = (char *)&h->shm->active + 8 * (xorshift(&rng) % 3);
		break;
	case 1: /* a semaphore word or its sempid */
		p = (char *)sem_at(h, xorshift(&rng) % h->nsems) +
		    8 * (xorshift(&rng) % 2);
		break;
	case 2: /* an undo record's owner or an adjustment */
		i = (uint32_t)(xorshift(&rng) % (h->nsems + 1));
		p = (char *)undo_at(h, xorshift(&rng) % h->nprocs) + 8 * i;
		break;
	default: /* a slot header word, or its first operations */
		p = (char *)slot_at(h, xorshift(&rng) % h->nslots) +
		    8 * (xorshift(&rng) % 10);
		break;
	}
	return (size_t)(p - base) / 8;
}

static int
allowed(int r)
{
	return r >= 0 || r == -EAGAIN || r == -EBUSY || r == -EIDRM ||
	       r == -ENOTRECOVERABLE || r == -ERANGE || r == -ENOMEM ||
	       r == -EINVAL || r == -EFBIG;
}

static void
test_scribble(void **state)
{
	const char *e = getenv("PRIM_SCRIBBLE_ROUNDS");
	int rounds = e != NULL ? atoi(e) : 300;
	pid_t dead = dead_pid();
	int damaged = 0;

	(void)state;
	printf("scribble: %d rounds, seed %llu\n", rounds,
	       (unsigned long long)rng);
	for (int round = 0; round < rounds; round++) {
		struct prim_semset *s = mk(3, 6, 4);
		uint64_t *m = fx.mem;
		size_t nw = hdr(s)->shm->seg.size / 8;
		int writes = 1 + (int)(xorshift(&rng) % 8);

		prim_semset_set_patience(s, 1000000);
		(void)op1(s, 0, 2, PRIM_SEM_UNDO);
		(void)op1(s, 2, 1, 0);
		for (int k = 0; k < writes; k++) {
			size_t at = xorshift(&rng) % nw;
			uint64_t v = xorshift(&rng);

			/* Mostly a protocol word. */
			if (xorshift(&rng) % 10 < 7)
				at = proto_word(hdr(s));

			/* Mostly plausible words: flags, small values. */
			switch (xorshift(&rng) % 4) {
			case 0:
				v &= 0xffffffffULL;
				break;
			case 1:
				v = m[at] ^ (1ULL << (xorshift(&rng) % 64));
				break;
			case 2:
				v &= 0x7;
				break;
			}
			m[at] = v;
		}
		for (int k = 0; k < 12; k++) {
			struct prim_sembuf v[3] = {
				{ (unsigned short)(xorshift(&rng) % 3),
				  (short)((int)(xorshift(&rng) % 5) - 2),
				  PRIM_IPC_NOWAIT },
				{ (unsigned short)(xorshift(&rng) % 3),
				  (short)((int)(xorshift(&rng) % 5) - 2),
				  (short)(PRIM_IPC_NOWAIT |
					  ((xorshift(&rng) & 1) ? PRIM_SEM_UNDO : 0)) },
				{ 2, 0, PRIM_IPC_NOWAIT },
			};
			unsigned short vals[3] = { 1, 2, 3 };
			struct timespec dl;
			int r;

			switch (xorshift(&rng) % 8) {
			case 0:
				r = prim_sem_op(s, v, 1 + xorshift(&rng) % 3);
				break;
			case 1:
				v[0].sem_flg = 0;
				deadline_in(&dl, 5);
				r = prim_sem_op_timed(s, v, 1, &dl);
				break;
			case 2:
				r = prim_sem_setval(s, (int)(xorshift(&rng) % 3), 1);
				break;
			case 3:
				r = prim_sem_setall(s, vals);
				break;
			case 4:
				r = prim_sem_getncnt(s, (int)(xorshift(&rng) % 3));
				break;
			case 5:
				r = prim_semset_reap(s, (xorshift(&rng) & 1)
								? dead
								: getpid());
				break;
			case 6:
				r = prim_semset_check(s);
				break;
			default:
				r = prim_sem_getall(s, vals);
				break;
			}
			if (!allowed(r))
				fail_msg("round %d: call %d returned %d", round,
					 k, r);
		}
		damaged += hdr(s)->shm->seg.state == PRIM_SEG_DAMAGED;
		teardown(NULL);
	}
	printf("scribble: %d rounds, %d ended damaged, no hang, no crash\n",
	       rounds, damaged);
}

/*
 * Each protocol word, each of a set of values no honest process writes,
 * then every kind of call: each returns a documented error or succeeds.
 */
static uint64_t *
word_at(struct prim_semset *h, int which)
{
	struct prim_slot_shm *sl = slot_at(h, 1);

	switch (which) {
	case 0: return &h->shm->active;
	case 1: return &h->shm->astate;
	case 2: return &h->shm->tickets;
	case 3: return &sem_at(h, 0)->word;
	case 4: return &sem_at(h, 0)->pidv;
	case 5: return &undo_at(h, 0)->ident;
	case 6: return &undo_at(h, 0)->adj[0];
	case 7: return &sl->ident;
	case 8: return &sl->req;
	case 9: return &sl->ticket;
	case 10: return (uint64_t *)&sl->wait_sem;  /* wait_sem, wait_kind */
	case 11: return (uint64_t *)&sl->nops;	    /* nops, ndist */
	case 12: return (uint64_t *)&sl->undo;	    /* undo, arg */
	case 13: return (uint64_t *)&sl->val;	    /* val, kind */
	case 14: return (uint64_t *)&slot_at(h, 0)->ops[0];
	case 15: return &sl->blk;
	default: return (uint64_t *)&h->shm->nsems; /* the header's copy */
	}
}

static void
battery(struct prim_semset *s, pid_t dead)
{
	struct prim_sembuf one = { 0, -1, PRIM_IPC_NOWAIT };
	struct prim_sembuf two[2] = { { 0, 1, PRIM_IPC_NOWAIT },
				      { 1, -1, PRIM_IPC_NOWAIT | PRIM_SEM_UNDO } };
	unsigned short vals[2] = { 1, 1 };
	struct timespec dl;
	int r[12];

	r[0] = prim_sem_op(s, &one, 1);
	r[1] = prim_sem_op(s, two, 2);
	one.sem_flg = 0;
	deadline_in(&dl, 5);
	r[2] = prim_sem_op_timed(s, &one, 1, &dl);
	two[0].sem_flg = two[1].sem_flg = 0;
	deadline_in(&dl, 5);
	r[3] = prim_sem_op_timed(s, two, 2, &dl);
	r[4] = prim_sem_setval(s, 1, 3);
	r[5] = prim_sem_setall(s, vals);
	r[6] = prim_sem_getncnt(s, 0);
	r[7] = prim_sem_getpid(s, 0);
	r[8] = prim_semset_reap(s, dead);
	r[9] = prim_semset_reap(s, getpid());
	r[10] = prim_semset_check(s);
	r[11] = prim_semset_pids(s, NULL, 0);
	for (int i = 0; i < 12; i++)
		if (!allowed(r[i]))
			fail_msg("call %d returned %d", i, r[i]);
}

static void
test_each_word(void **state)
{
	pid_t dead = dead_pid();
	const uint64_t vals[] = {
		0, ~0ULL, W_HELD | tag_of(3), W_REMOVED, W_SLEEPERS, 0xffff,
		W_HELD | W_SLEEPERS | 0x7fff, 0x8000000080000000ULL,
		(uint64_t)(uint32_t)dead | 1ULL << 32, 1ULL << 16 | 1,
		0xffffffffULL, 7ULL << 16 | 2,
	};
	int calls = 0;

	(void)state;
	for (int which = 0; which < 17; which++)
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			struct prim_semset *s = mk(2, 6, 3);

			prim_semset_set_patience(s, 1000000);
			(void)op1(s, 1, 1, PRIM_SEM_UNDO);
			*word_at(hdr(s), which) = vals[v];
			battery(s, dead);
			calls += 12;
			teardown(NULL);
		}
	printf("each word: %d words x %zu values, %d calls returned\n", 16,
	       sizeof(vals) / sizeof(vals[0]), calls);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_held_word_nowait, teardown),
		cmocka_unit_test_teardown(test_held_word_timed, teardown),
		cmocka_unit_test_teardown(test_held_word_setval_and_reap,
					  teardown),
		cmocka_unit_test_teardown(test_removed_bit, teardown),
		cmocka_unit_test_teardown(test_huge_request_count, teardown),
		cmocka_unit_test_teardown(test_active_insane, teardown),
		cmocka_unit_test_teardown(test_active_out_of_range, teardown),
		cmocka_unit_test_teardown(test_active_high_bits, teardown),
		cmocka_unit_test(test_numbers_flipped_while_deciding),
		cmocka_unit_test_teardown(test_forged_identities, teardown),
		cmocka_unit_test_teardown(test_frozen_request_dead_owner,
					  teardown),
		cmocka_unit_test_teardown(test_reap_with_every_slot_asleep,
					  teardown),
		cmocka_unit_test_teardown(test_can_proceed_with_every_slot_asleep,
					  teardown),
		cmocka_unit_test_teardown(test_huge_request_helped_in_parts,
					  teardown),
		cmocka_unit_test_teardown(test_live_churn, teardown),
		cmocka_unit_test_teardown(test_each_word, teardown),
		cmocka_unit_test_teardown(test_scribble, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
