/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A queue's memory follows its content: a fresh queue is its header, a
 * message costs the pages it reaches, and prim_msgq_trim gives back what
 * traffic left behind (ring pages the positions passed through, blocks of
 * a drained burst), while senders and receivers go on: nothing is lost,
 * duplicated or reordered, and a trim killed half way is completed by the
 * next one. Residency is what mincore says of the shared mapping.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "msgq.c"

static struct {
	void *mem;
	size_t len;
	struct prim_msgq *q;
} fx;

/* The broker's queue at default limits: msgmax 8192, qbytes 16384,
 * qbytes_max 4 x msgmnb, in fresh (zero) pages. */
static struct prim_msgq *
mk(void)
{
	struct prim_msgq_attr a = { .msgmax = 8192, .qbytes = 16384,
				    .qbytes_max = 65536,
				    .flags = PRIM_MSGQ_ZEROED };

	fx.len = prim_msgq_size(&a);
	assert_true(fx.len > 0);
	fx.mem = mmap(NULL, fx.len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(fx.mem != MAP_FAILED);
	assert_int_equal(prim_msgq_init(fx.mem, fx.len, &a), 0);
	assert_int_equal(prim_msgq_open(fx.mem, fx.len, &fx.q), 0);
	alarm(60); /* a hang is a failure */
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

static size_t
resident(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t n = (fx.len + (size_t)ps - 1) / (size_t)ps, r = 0;
	unsigned char *v = malloc(n);

	assert_non_null(v);
	assert_int_equal(mincore(fx.mem, fx.len, v), 0);
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r * (size_t)ps;
}

/*
 * What a trim leaves: the header, and the ring (slots and tags) as far as
 * positions reached it, since ring pages are not given back yet
 * (prim/msgq.c, PRIM_MSGQ_TRIM_RING).
 */
static size_t
left_bound(const struct prim_msgq *q)
{
	return 8192 + (size_t)q->n * (sizeof(struct mq_slot_shm) + 8) + 4096;
}

static void
send_ok(struct prim_msgq *q, long type, size_t len, unsigned seed)
{
	unsigned char b[8192];

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(seed + i);
	assert_int_equal(prim_msgq_send(q, type, b, len, PRIM_IPC_NOWAIT), 0);
}

static void
recv_ok(struct prim_msgq *q, long type, size_t len, unsigned seed)
{
	unsigned char b[8192];
	long t;

	assert_int_equal(prim_msgq_recv(q, b, sizeof(b), 0, PRIM_IPC_NOWAIT,
					&t),
			 (ssize_t)len);
	assert_int_equal(t, type);
	for (size_t i = 0; i < len; i++)
		if (b[i] != (unsigned char)(seed + i))
			fail_msg("byte %zu of a %zu-byte message", i, len);
}

/* A fresh queue is its header; one small message adds a few pages. */
static void
test_fresh(void **state)
{
	struct prim_msgq *q = mk();
	size_t r0, r1;

	(void)state;
	r0 = resident();
	send_ok(q, 1, 3, 7);
	r1 = resident();
	printf("fresh: %zu B resident, %zu B with one message, of %zu B\n",
	       r0, r1, fx.len);
	assert_true(r0 <= 8192);
	assert_true(r1 <= r0 + 4 * 4096);
	recv_ok(q, 1, 3, 7);
}

/*
 * Traffic that never holds more than a few messages still walks every
 * ring position and every block of its classes: they become resident. A
 * trim gives the blocks back (the ring stays), and the queue goes on as
 * before.
 */
static void
test_cycle(void **state)
{
	struct prim_msgq *q = mk();
	size_t before, after;
	int back;

	(void)state;
	for (unsigned i = 0; i < 100000; i++) {
		size_t len = 1 + (i * 2654435761u) % 2000;

		send_ok(q, 1 + i % 3, len, i);
		recv_ok(q, 1 + i % 3, len, i);
	}
	before = resident();
	back = prim_msgq_trim(q);
	after = resident();
	printf("cycled 100000 messages: %zu B resident, trim gave back %d B, "
	       "%zu B left\n", before, back, after);
	assert_true(back > 0);
	assert_true(after <= left_bound(q));
	/* Still a queue, in order. */
	for (unsigned i = 0; i < 20000; i++) {
		send_ok(q, 5, 100, i);
		if (i % 2 == 1) {
			recv_ok(q, 5, 100, i - 1);
			recv_ok(q, 5, 100, i);
		}
	}
	assert_true(prim_msgq_check(q) == 0);
}

/* A burst of 16384 one-byte messages, drained: the blocks go back. */
static void
test_burst(void **state)
{
	struct prim_msgq *q = mk();
	size_t full, after;
	int n = 0;

	(void)state;
	while (prim_msgq_send(q, 1, "b", 1, PRIM_IPC_NOWAIT) == 0)
		n++;
	assert_int_equal(n, 16384);
	full = resident();
	for (int i = 0; i < n; i++) {
		char c;

		assert_int_equal(prim_msgq_recv(q, &c, 1, 0, PRIM_IPC_NOWAIT,
						NULL), 1);
	}
	assert_true(prim_msgq_trim(q) > 0);
	after = resident();
	printf("burst of %d: %zu B resident full, %zu B after drain and trim\n",
	       n, full, after);
	assert_true(after <= left_bound(q));
	n = 0;
	while (prim_msgq_send(q, 1, "b", 1, PRIM_IPC_NOWAIT) == 0)
		n++;
	assert_int_equal(n, 16384);
}

/*
 * A trim killed half way leaves fenced blocks: the queue works around
 * them (senders skip them), and the next trim clears them, so the whole
 * capacity is back.
 */
static void
test_trim_died(void **state)
{
	struct prim_msgq *q = mk();
	int n = 0;

	(void)state;
	for (unsigned i = 0; i < 300; i++) {
		send_ok(q, 1, 40, i);
		recv_ok(q, 1, 40, i);
	}
	/* What a trim leaves when it dies after fencing. */
	for (uint32_t b = 0; b < 64; b++)
		if (q->pool[1].own[b] == 0)
			q->pool[1].own[b] = OWN_FENCED;
	for (unsigned i = 0; i < 1000; i++) {
		send_ok(q, 2, 40, i);
		recv_ok(q, 2, 40, i);
	}
	assert_true(prim_msgq_trim(q) >= 0);
	for (uint32_t b = 0; b < q->pool[1].count; b++)
		assert_true(q->pool[1].own[b] != OWN_FENCED);
	while (prim_msgq_send(q, 1, "b", 1, PRIM_IPC_NOWAIT) == 0)
		n++;
	assert_int_equal(n, 16384);
}

/*
 * Senders, receivers and a trimmer at once: every message (sender,
 * counter, size) is received exactly once, and each sender's messages in
 * the order sent.
 */
#define NSEND 2
#define NRECV 2

#define MAXN (1u << 24)

static struct prim_msgq *q_shared;
static uint32_t stop, trims;
static uint64_t sent[NSEND], got[NSEND];
static uint8_t *seen[NSEND];	/* one byte per message */

struct hdr {
	uint32_t who, n;
};

static void *
sender(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;
	unsigned char b[4096];

	for (uint32_t n = 0; !ck_pr_load_32(&stop) && n < MAXN; n++) {
		size_t len = sizeof(struct hdr) + (n * 2654435761u) % 3000;
		struct hdr h = { who, n };

		memcpy(b, &h, sizeof(h));
		memset(b + sizeof(h), (int)(n & 0xff), len - sizeof(h));
		while (prim_msgq_send(q_shared, 1 + who, b, len,
				      PRIM_IPC_NOWAIT) != 0)
			if (ck_pr_load_32(&stop))
				return NULL;
		ck_pr_store_64(&sent[who], n + 1);
	}
	return NULL;
}

static void *
receiver(void *arg)
{
	unsigned char b[4096];
	int64_t last[NSEND];

	(void)arg;
	for (int i = 0; i < NSEND; i++)
		last[i] = -1;
	for (;;) {
		struct hdr h;
		ssize_t r = prim_msgq_recv(q_shared, b, sizeof(b), 0,
					   PRIM_IPC_NOWAIT, NULL);

		if (r < 0) {
			if (ck_pr_load_32(&stop) == 2)
				return NULL;
			continue;
		}
		memcpy(&h, b, sizeof(h));
		assert_true(h.who < NSEND);
		for (ssize_t i = sizeof(h); i < r; i++)
			if (b[i] != (unsigned char)(h.n & 0xff))
				fail_msg("sender %u message %u byte %zd", h.who,
					 h.n, i);
		/* None twice; each receiver takes a sender's messages in
		 * the order sent (it always takes the oldest). */
		assert_true(h.n < MAXN);
		if (__atomic_fetch_add(&seen[h.who][h.n], 1, __ATOMIC_RELAXED) != 0)
			fail_msg("sender %u message %u received twice", h.who,
				 h.n);
		if ((int64_t)h.n <= last[h.who])
			fail_msg("sender %u: message %u after %lld", h.who,
				 h.n, (long long)last[h.who]);
		last[h.who] = h.n;
		ck_pr_inc_64(&got[h.who]);
	}
}

static void *
trimmer(void *arg)
{
	(void)arg;
	while (!ck_pr_load_32(&stop)) {
		assert_true(prim_msgq_trim(q_shared) >= 0);
		ck_pr_inc_32(&trims);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	pthread_t s[NSEND], r[NRECV], t;
	double end;

	(void)state;
	q_shared = mk();
	ck_pr_store_32(&stop, 0);
	for (int i = 0; i < NSEND; i++) {
		sent[i] = got[i] = 0;
		seen[i] = calloc(MAXN, 1);
		assert_non_null(seen[i]);
	}
	for (int i = 0; i < NSEND; i++)
		assert_int_equal(pthread_create(&s[i], NULL, sender,
						(void *)(uintptr_t)i), 0);
	for (int i = 0; i < NRECV; i++)
		assert_int_equal(pthread_create(&r[i], NULL, receiver, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, trimmer, NULL), 0);
	end = now_s() + 2;
	while (now_s() < end)
		usleep(10000);
	ck_pr_store_32(&stop, 1);
	for (int i = 0; i < NSEND; i++)
		pthread_join(s[i], NULL);
	pthread_join(t, NULL);
	/* Drain what is left, then stop the receivers. */
	for (int spin = 0; spin < 1000; spin++) {
		uint64_t a = ck_pr_load_64(&q_shared->shm->acct.a);

		if (acct_qnum(a) == 0)
			break;
		usleep(1000);
	}
	ck_pr_store_32(&stop, 2);
	for (int i = 0; i < NRECV; i++)
		pthread_join(r[i], NULL);
	printf("concurrent: %llu + %llu sent, %llu + %llu received, %u trims\n",
	       (unsigned long long)sent[0], (unsigned long long)sent[1],
	       (unsigned long long)got[0], (unsigned long long)got[1], trims);
	for (int i = 0; i < NSEND; i++) {
		assert_int_equal(got[i], sent[i]);
		for (uint64_t n = 0; n < sent[i]; n++)
			if (seen[i][n] != 1)
				fail_msg("sender %d message %llu lost", i,
					 (unsigned long long)n);
		free(seen[i]);
	}
	assert_true(trims > 10);
	assert_int_equal(prim_msgq_check(q_shared), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fresh, teardown),
		cmocka_unit_test_teardown(test_cycle, teardown),
		cmocka_unit_test_teardown(test_burst, teardown),
		cmocka_unit_test_teardown(test_trim_died, teardown),
		cmocka_unit_test_teardown(test_concurrent, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
