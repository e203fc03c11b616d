/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A message queue whose memory another process rewrites: every protocol
 * word (the capacity word and its pending slot, head, tail, qbytes, lane
 * hints, wait words, slot states, types, lengths, tags) set to what the
 * protocol never produces, a live writer that keeps changing words, and
 * random scribbles. Each call must return — IPC_NOWAIT at once, timed
 * calls by their deadline — with an error, never a crash or a hang; an
 * inconsistent queue is marked damaged (-ENOTRECOVERABLE). White-box: the
 * test includes prim/msgq.c. A watchdog alarm turns a hang into a failure.
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

#include "msgq.c"

static struct {
	void *mem;
	size_t len;
	struct prim_msgq *q;
} fx;

static struct prim_msgq *
mk(uint32_t msgmax, uint32_t nslots)
{
	struct prim_msgq_attr a = { .msgmax = msgmax, .qbytes = 1024,
				    .nslots = nslots };

	fx.len = prim_msgq_size(&a);
	assert_true(fx.len > 0);
	fx.mem = mmap(NULL, fx.len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(fx.mem != MAP_FAILED);
	assert_int_equal(prim_msgq_init(fx.mem, fx.len, &a), 0);
	assert_int_equal(prim_msgq_open(fx.mem, fx.len, &fx.q), 0);
	prim_msgq_set_patience(fx.q, 1000000); /* 1 ms */
	alarm(20); /* a hang is a failure */
	return fx.q;
}

static int
teardown(void **state)
{
	(void)state;
	alarm(0);
	if (fx.q != NULL)
		prim_msgq_close(fx.q);
	if (fx.mem != NULL)
		munmap(fx.mem, fx.len);
	memset(&fx, 0, sizeof(fx));
	return 0;
}

static int
allowed(long r)
{
	return r >= 0 || r == -EAGAIN || r == -ENOMSG || r == -ETIMEDOUT ||
	       r == -EBUSY || r == -EIDRM || r == -ENOTRECOVERABLE ||
	       r == -E2BIG || r == -EINVAL;
}

/* Every kind of call; each must return something documented. */
static void
battery(struct prim_msgq *q, pid_t dead)
{
	char buf[64] = "hostile";
	struct prim_msgq_stat st;
	struct timespec dl;
	long type, r[14];

	r[0] = prim_msgq_send(q, 1, buf, 8, PRIM_IPC_NOWAIT);
	r[1] = prim_msgq_send(q, 65, buf, 8, PRIM_IPC_NOWAIT);
	deadline_in(&dl, 5);
	r[2] = prim_msgq_send_timed(q, 2, buf, 8, 0, &dl);
	r[3] = prim_msgq_recv(q, buf, sizeof(buf), 0, PRIM_IPC_NOWAIT, &type);
	r[4] = prim_msgq_recv(q, buf, sizeof(buf), 65, PRIM_IPC_NOWAIT,
			      &type);
	r[5] = prim_msgq_recv(q, buf, sizeof(buf), -3, PRIM_IPC_NOWAIT,
			      &type);
	r[6] = prim_msgq_recv(q, buf, sizeof(buf), 2,
			      PRIM_IPC_NOWAIT | PRIM_MSG_EXCEPT, &type);
	deadline_in(&dl, 5);
	r[7] = prim_msgq_recv_timed(q, buf, 4, 7, 0, &type, &dl);
	r[8] = prim_msgq_stat(q, &st);
	r[9] = prim_msgq_reap(q, dead);
	r[10] = prim_msgq_check(q);
	r[11] = prim_msgq_pids(q, NULL, 0);
	r[12] = prim_msgq_set_qbytes(q, 512);
	r[13] = prim_msgq_recv_as(q, buf, sizeof(buf), 0, 0, &type, getpid());
	for (int i = 0; i < 14; i++)
		if (!allowed(r[i]))
			fail_msg("call %d returned %ld", i, r[i]);
}

/* The words word_at names (the last is the geometry). */
#define NWORDS 17

static uint64_t *
word_at(struct prim_msgq *q, int which)
{
	struct prim_msgq_shm *m = q->shm;

	switch (which) {
	case 0: return &m->acct.a;
	case 1: return &m->tail.a;
	case 2: return &m->head.a;
	case 3: return &m->qb.a;
	case 4: return &m->lane[1].hint;
	case 5: return (uint64_t *)&m->any.word;
	case 6: return (uint64_t *)&m->nf.word;
	case 7: return &slot(q, 0)->state;
	case 8: return &slot(q, 1)->state;
	case 9: return (uint64_t *)&slot(q, 0)->type;
	case 10: return (uint64_t *)&slot(q, 0)->len; /* len, ref */
	case 11: return &q->tags[0];
	case 12: return &m->snd.a;
	case 13: return &q->pool[0].own[0];
	case 14: return &q->pool[0].own[1];
	case 15: return &q->pool[1].own[0];
	default: return (uint64_t *)&m->geom; /* the header's geometry */
	}
}

static void
test_each_word(void **state)
{
	pid_t dead = dead_pid();
	const uint64_t vals[] = {
		0, ~0ULL, 1, 0xffffffffULL, 1ULL << 48, PEND_RELEASE | 1ULL << 48,
		mkst(5, (uint32_t)dead, ST_WRITING), mkst(0, 0, ST_READY),
		mkst(1000, (uint32_t)dead, ST_CLAIMED), 100000ULL,
		(uint64_t)1 << 40 | 3,
	};
	int calls = 0;

	(void)state;
	for (int which = 0; which < NWORDS; which++)
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			struct prim_msgq *q = mk(64, 8);
			char m[8] = "honest";

			assert_int_equal(prim_msgq_send(q, 1, m, 6, 0), 0);
			assert_int_equal(prim_msgq_send(q, 65, m, 6, 0), 0);
			*word_at(q, which) = vals[v];
			battery(q, dead);
			calls += 14;
			teardown(NULL);
		}
	printf("each word: %d words x %zu values, %d calls returned\n",
	       NWORDS, sizeof(vals) / sizeof(vals[0]), calls);
}

/* The pending slot of the capacity word names no slot: damaged. */
static void
test_pend_out_of_range(void **state)
{
	struct prim_msgq *q = mk(64, 8);
	char buf[8];

	(void)state;
	q->shm->acct.a = (uint64_t)999 << 48;
	assert_int_equal(prim_msgq_send(q, 1, "x", 1, PRIM_IPC_NOWAIT),
			 -ENOTRECOVERABLE);
	assert_int_equal(prim_msgq_recv(q, buf, 8, 0, 0, NULL),
			 -ENOTRECOVERABLE);
	assert_int_equal(prim_msgq_remove(q), 0);
}

/* A count that a receive would take below zero: damaged. */
static void
test_count_underflow(void **state)
{
	struct prim_msgq *q = mk(64, 8);
	char buf[8];

	(void)state;
	assert_int_equal(prim_msgq_send(q, 1, "abcdef", 6, 0), 0);
	q->shm->acct.a = 0; /* nothing counted, one message ready */
	assert_int_equal(prim_msgq_recv(q, buf, 8, 0, PRIM_IPC_NOWAIT, NULL),
			 -ENOTRECOVERABLE);
}

/* Every slot WRITING by a live process: no room, the sender gives up. */
static void
test_no_free_slot(void **state)
{
	struct prim_msgq *q = mk(64, 8);
	struct timespec dl;
	char buf[8];

	(void)state;
	for (uint32_t x = 0; x < q->n; x++)
		slot(q, x)->state = mkst(x + 100, prim__pid(), ST_WRITING);
	assert_int_equal(prim_msgq_send(q, 1, "x", 1, PRIM_IPC_NOWAIT), -EAGAIN);
	deadline_in(&dl, 30);
	assert_int_equal(prim_msgq_send_timed(q, 1, "x", 1, 0, &dl),
			 -ETIMEDOUT);
	deadline_in(&dl, 30);
	assert_int_equal(prim_msgq_recv_timed(q, buf, 8, 0, 0, NULL, &dl),
			 -ETIMEDOUT);
}

/* A live writer keeps changing the capacity word, or toggles a wait
 * word: calls give up or time out; nothing spins for ever. */
/* A stop flag between two threads: atomic (a volatile int would race). */
static uint32_t churn_stop;

static void *
churn_acct(void *arg)
{
	uint64_t *w = arg;

	while (!ck_pr_load_32(&churn_stop))
		ck_pr_add_64(w, 1ULL << 32); /* qnum + 1, again and again */
	return NULL;
}

static void *
churn_futex(void *arg)
{
	uint32_t *w = arg;

	while (!ck_pr_load_32(&churn_stop))
		ck_pr_add_32(w, 2);
	return NULL;
}

static void
test_live_churn(void **state)
{
	struct prim_msgq *q = mk(64, 8);
	struct timespec dl;
	pthread_t t;
	char buf[8];
	long r;

	(void)state;
	ck_pr_store_32(&churn_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, churn_acct, &q->shm->acct.a),
			 0);
	for (int i = 0; i < 100; i++) {
		r = prim_msgq_send(q, 1, "x", 1, PRIM_IPC_NOWAIT);
		assert_true(allowed(r));
		r = prim_msgq_recv(q, buf, 8, 0, PRIM_IPC_NOWAIT, NULL);
		assert_true(allowed(r));
	}
	ck_pr_store_32(&churn_stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	teardown(NULL);

	q = mk(64, 8);
	ck_pr_store_32(&churn_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, churn_futex,
					&q->shm->any.word),
			 0);
	deadline_in(&dl, 200);
	assert_int_equal(prim_msgq_recv_timed(q, buf, 8, 0, 0, NULL, &dl),
			 -ETIMEDOUT);
	ck_pr_store_32(&churn_stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static void
test_scribble(void **state)
{
	const char *e = getenv("PRIM_SCRIBBLE_ROUNDS");
	int rounds = e != NULL ? atoi(e) : 300, damaged = 0;
	pid_t dead = dead_pid();

	(void)state;
	printf("scribble: %d rounds, seed %llu\n", rounds,
	       (unsigned long long)rng);
	for (int round = 0; round < rounds; round++) {
		struct prim_msgq *q = mk(64, 8);
		uint64_t *m = fx.mem;
		size_t nw = q->shm->seg.size / 8;

		for (int k = 0; k < 4; k++)
			(void)prim_msgq_send(q, 1 + (long)(xorshift(&rng) % 70), "m",
					     1, PRIM_IPC_NOWAIT);
		for (int k = 0, n = 1 + (int)(xorshift(&rng) % 6); k < n; k++) {
			size_t at = xorshift(&rng) % 14 < 10
					    ? (size_t)(word_at(q, (int)(xorshift(&rng) % NWORDS)) -
						       m)
					    : xorshift(&rng) % nw;
			uint64_t v = xorshift(&rng);

			switch (xorshift(&rng) % 4) {
			case 0:
				v &= 0xffff;
				break;
			case 1:
				v = m[at] ^ (1ULL << (xorshift(&rng) % 64));
				break;
			case 2:
				v = m[at] + (xorshift(&rng) % 5) - 2;
				break;
			}
			m[at] = v;
		}
		battery(q, dead);
		damaged += q->shm->seg.state == PRIM_SEG_DAMAGED;
		teardown(NULL);
	}
	printf("scribble: %d rounds, %d ended damaged, no hang, no crash\n",
	       rounds, damaged);
}

/*
 * A writer toggles the header's size between the true one and 2^64 - 1
 * while another process opens the queue with a hostile geometry (32767
 * slots, messages of 16 MiB, qbytes_max 2 GiB) that only the huge size would allow: the geometry is
 * read once and checked against the length of the mapping, so no open
 * ever accepts it (a second read of the size once let it through).
 */
static uint32_t toggle_stop;
static uint64_t true_size;

static void *
toggle_size(void *arg)
{
	uint64_t *sz = &((struct prim_seg_shm *)arg)->size;

	while (!ck_pr_load_32(&toggle_stop)) {
		ck_pr_store_64(sz, true_size);
		ck_pr_store_64(sz, UINT64_MAX);
	}
	return NULL;
}

static void
test_geometry_read_once(void **state)
{
	struct prim_msgq_attr a = { 0 };
	size_t len = prim_msgq_size(&a);
	struct prim_msgq_shm *m;
	uint32_t msgmax = 1u << 24, n = 32767;
	double end = now_s() + 0.5;
	pthread_t t;
	long tries = 0;

	(void)state;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(prim_msgq_init(m, len, &a), 0);
	true_size = m->seg.size;
	m->geom.msgmax = msgmax;
	m->geom.nslots = n;
	m->geom.qbytes_max = INT32_MAX;
	ck_pr_store_32(&toggle_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, toggle_size, m), 0);
	while (now_s() < end) {
		struct prim_msgq *q = NULL;

		for (int i = 0; i < 1000; i++, tries++) {
			assert_int_equal(prim_msgq_open(m, len, &q), -EINVAL);
		}
	}
	ck_pr_store_32(&toggle_stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	printf("hostile geometry: refused %ld times\n", tries);
	munmap(m, len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pend_out_of_range, teardown),
		cmocka_unit_test_teardown(test_count_underflow, teardown),
		cmocka_unit_test_teardown(test_no_free_slot, teardown),
		cmocka_unit_test_teardown(test_live_churn, teardown),
		cmocka_unit_test_teardown(test_each_word, teardown),
		cmocka_unit_test_teardown(test_scribble, teardown),
		cmocka_unit_test(test_geometry_read_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
