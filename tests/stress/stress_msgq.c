/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Stress of libprim message queues: P producer and C consumer processes on
 * one small queue (so it is often full and often empty), messages carrying
 * producer id, sequence number, type and a checksum; workers are killed
 * with SIGKILL, reaped and respawned, or stopped and continued, at random.
 * At the end the queue is drained and the check proves: nothing corrupt;
 * nothing received twice; every message whose send returned received
 * (except at most one per consumer killed between its receive returning
 * and recording it); FIFO per producer within a type for each consumer;
 * qnum and cbytes back to 0. No progress for 10 s is a failure (a hang).
 *
 *   stress_msgq [-p producers] [-c consumers] [-s seconds] [-q] [-n]
 *   (-q: print only failures; -n: no kills or stops)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "prim/msgq.h"

#define MAXP 8
#define MAXC 8
#define MAXSEQ (1u << 22)
#define NTYPES 6
#define MSGMAX 256

struct msg {
	uint32_t prod;
	uint32_t seq;
	int64_t type;
	uint32_t len;
	uint32_t sum;
	unsigned char fill[MSGMAX - 24];
};

struct ctl {
	uint32_t stop_prod;
	uint32_t stop_cons;
	uint32_t epoch;		/* bumped after every reap */
	uint32_t bad;		/* a consumer saw a broken invariant */
	uint64_t progress;
	uint32_t attempting[MAXP];	/* seq being sent (or last sent) */
	uint32_t returned[MAXP];	/* sends that returned: seq < this */
	char why[128];
	uint8_t count[MAXP][MAXSEQ];
};

static struct ctl *ctl;
/* Parent only: the seq each killed producer had in flight. */
static uint8_t inflight[MAXP][MAXSEQ];
static void *qmem;
static size_t qlen;

static uint32_t
hash(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static uint32_t
checksum(const struct msg *m)
{
	uint32_t s = hash(m->prod * 2654435761U ^ m->seq) ^ (uint32_t)m->type;

	for (uint32_t i = 0; i + 24 < m->len; i++)
		s = s * 31 + m->fill[i];
	return s;
}

static void
fail(const char *why)
{
	if (ck_pr_fas_32(&ctl->bad, 1) == 0)
		snprintf(ctl->why, sizeof(ctl->why), "%s", why);
}

static struct prim_msgq *
openq(void)
{
	struct prim_msgq *q;

	if (prim_msgq_open(qmem, qlen, &q) != 0) {
		fail("open");
		_exit(1);
	}
	return q;
}

static void
producer(uint32_t p)
{
	struct prim_msgq *q = openq();
	uint32_t seq = ck_pr_load_32(&ctl->attempting[p]);
	struct msg m;

	srand((unsigned)getpid());
	if (ck_pr_load_32(&ctl->returned[p]) != 0 || seq != 0)
		seq++;		/* the one in flight may or may not be there */
	while (!ck_pr_load_32(&ctl->stop_prod) && seq < MAXSEQ) {
		int flags = rand() % 4 == 0 ? PRIM_IPC_NOWAIT : 0, r;

		m.prod = p;
		m.seq = seq;
		m.type = 1 + (int64_t)(hash(seq * 8 + p) % NTYPES);
		m.len = 24 + hash(seq ^ (p << 24)) % (MSGMAX - 24);
		for (uint32_t i = 0; i + 24 < m.len; i++)
			m.fill[i] = (unsigned char)(seq + i);
		m.sum = checksum(&m);
		ck_pr_store_32(&ctl->attempting[p], seq);
		ck_pr_fence_store();
		r = prim_msgq_send(q, m.type, &m, m.len, flags);
		if (r == -EAGAIN)
			continue;	/* not sent: retry the same seq */
		if (r != 0) {
			fail("send error");
			_exit(1);
		}
		ck_pr_fence_store();
		ck_pr_store_32(&ctl->returned[p], seq + 1);
		seq++;
	}
	_exit(0);
}

static void
consumer(uint32_t c)
{
	struct prim_msgq *q = openq();
	static int32_t last[MAXP][NTYPES + 1];
	uint32_t epoch = ~0u;
	struct msg m;

	srand((unsigned)getpid() * 7 + c);
	for (;;) {
		long want, type = 0;
		int flags = 0, mode = rand() % 8;
		struct timespec d;
		ssize_t n;

		if (ck_pr_load_32(&ctl->epoch) != epoch) {
			epoch = ck_pr_load_32(&ctl->epoch);
			memset(last, 0xff, sizeof(last));
		}
		if (c == 0 && mode >= 3)
			mode = 2;	/* one consumer takes anything */
		want = mode < 3 ? 0 : mode < 6 ? 1 + rand() % NTYPES
					       : -(1 + rand() % NTYPES);
		if (mode == 5)
			flags |= PRIM_MSG_EXCEPT;
		if (rand() % 4 == 0)
			flags |= PRIM_IPC_NOWAIT;
		clock_gettime(CLOCK_MONOTONIC, &d);
		d.tv_nsec += want == 0 ? 50000000 : 2000000;
		if (d.tv_nsec >= 1000000000) {
			d.tv_sec++;
			d.tv_nsec -= 1000000000;
		}
		n = prim_msgq_recv_timed(q, &m, sizeof(m), want, flags, &type,
					 &d);
		if (n == -ENOMSG || n == -ETIMEDOUT) {
			if (ck_pr_load_32(&ctl->stop_cons))
				_exit(0);
			continue;
		}
		if (n < 24 || (size_t)n != m.len || m.prod >= MAXP ||
		    m.seq >= MAXSEQ || type != m.type || type < 1 ||
		    type > NTYPES || checksum(&m) != m.sum) {
			fail("corrupt message");
			_exit(1);
		}
		if ((want > 0 && !(flags & PRIM_MSG_EXCEPT) && type != want) ||
		    (want > 0 && (flags & PRIM_MSG_EXCEPT) && type == want) ||
		    (want < 0 && type > -want)) {
			fail("wrong type for msgtyp");
			_exit(1);
		}
		if (ck_pr_faa_8(&ctl->count[m.prod][m.seq], 1) != 0)
			fail("duplicate");
		ck_pr_inc_64(&ctl->progress);
		if ((int32_t)m.seq <= last[m.prod][type]) {
			fail("FIFO within a type broken");
			_exit(1);
		}
		last[m.prod][type] = (int32_t)m.seq;
	}
}

static pid_t
spawn(int kind, uint32_t i)
{
	pid_t p = fork();

	if (p < 0) {
		perror("fork");
		exit(2);
	}
	if (p == 0) {
		if (kind == 0)
			producer(i);
		consumer(i);
	}
	return p;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	struct prim_msgq_attr a = { .msgmax = MSGMAX, .qbytes = 2048,
				    .qbytes_max = 4096, .nslots = 24 };
	int np = 3, nc = 3, secs = 3, quiet = 0, chaos = 1, opt;
	pid_t pids[MAXP + MAXC];
	unsigned kills[2] = { 0 }, stops = 0;
	uint64_t lost = 0, dup = 0, total = 0, lastprog = 0;
	struct prim_msgq *q;
	struct prim_msgq_stat st;
	double t0, tprog;
	struct msg m;

	while ((opt = getopt(argc, argv, "p:c:s:qn")) != -1) {
		switch (opt) {
		case 'p': np = atoi(optarg); break;
		case 'c': nc = atoi(optarg); break;
		case 's': secs = atoi(optarg); break;
		case 'q': quiet = 1; break;
		case 'n': chaos = 0; break;
		default:
			fprintf(stderr, "usage: %s [-p n] [-c n] [-s secs]\n",
				argv[0]);
			return 2;
		}
	}
	if (np < 1 || np > MAXP || nc < 1 || nc > MAXC || secs < 1)
		return 2;
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	qlen = prim_msgq_size(&a);
	qmem = mmap(NULL, qlen, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || qmem == MAP_FAILED ||
	    prim_msgq_init(qmem, qlen, &a) != 0 ||
	    prim_msgq_open(qmem, qlen, &q) != 0) {
		fprintf(stderr, "stress_msgq: setup failed\n");
		return 2;
	}
	srand((unsigned)getpid());
	for (int i = 0; i < np; i++)
		pids[i] = spawn(0, (uint32_t)i);
	for (int i = 0; i < nc; i++)
		pids[np + i] = spawn(1, (uint32_t)i);
	t0 = tprog = now();
	while (now() - t0 < secs && !ck_pr_load_32(&ctl->bad)) {
		int w = rand() % (np + nc), kind = w < np ? 0 : 1;
		uint64_t pr = ck_pr_load_64(&ctl->progress);

		int done = 1;

		for (int i = 0; i < np; i++)
			done &= ck_pr_load_32(&ctl->attempting[i]) + 1 >= MAXSEQ;
		if (done)
			break;	/* every producer used up its sequence numbers */
		usleep(1000 + (useconds_t)(rand() % 20000));
		if (pr != lastprog) {
			lastprog = pr;
			tprog = now();
		} else if (now() - tprog > 10) {
			fail("no progress for 10 s");
			break;
		}
		if (!chaos)
			continue;
		if (rand() % 3 == 0) {
			kill(pids[w], SIGKILL);
			waitpid(pids[w], NULL, 0);
			if (kind == 0)
				inflight[w][ctl->attempting[w]] = 1;
			if (prim_msgq_reap(q, pids[w]) < 0)
				fail("reap");
			ck_pr_inc_32(&ctl->epoch);
			kills[kind]++;
			pids[w] = spawn(kind, (uint32_t)(kind ? w - np : w));
		} else {
			kill(pids[w], SIGSTOP);
			usleep(1000 + (useconds_t)(rand() % 30000));
			kill(pids[w], SIGCONT);
			stops++;
		}
	}
	/* Stop: producers first, then consumers; then drain. */
	ck_pr_store_32(&ctl->stop_prod, 1);
	for (int i = 0; i < np; i++)
		waitpid(pids[i], NULL, 0);
	ck_pr_store_32(&ctl->stop_cons, 1);
	for (int i = 0; i < nc; i++) {
		double td = now();
		int stv;

		while (waitpid(pids[np + i], &stv, WNOHANG) == 0) {
			if (now() - td > 10) {
				fail("consumer does not stop");
				kill(pids[np + i], SIGKILL);
			}
			usleep(1000);
		}
	}
	while (prim_msgq_recv(q, &m, sizeof(m), 0, PRIM_IPC_NOWAIT, NULL) >
	       0) {
		if (m.prod >= MAXP || m.seq >= MAXSEQ ||
		    checksum(&m) != m.sum) {
			fail("corrupt message in the drain");
			break;
		}
		if (ck_pr_faa_8(&ctl->count[m.prod][m.seq], 1) != 0)
			fail("duplicate in the drain");
	}
	for (int p = 0; p < np; p++) {
		uint32_t att = ctl->attempting[p], ret = ctl->returned[p];

		for (uint32_t s = 0; s <= att && s < MAXSEQ; s++) {
			uint8_t c = ctl->count[p][s];

			total += c;
			if (c > 1)
				dup++;
			else if (c == 0 && s < ret && !inflight[p][s])
				lost++;
		}
	}
	if (dup)
		fail("duplicates");
	if (lost > kills[1])
		fail("lost messages (more than killed consumers)");
	if (prim_msgq_stat(q, &st) != 0 || st.qnum != 0 || st.cbytes != 0)
		fail("qnum/cbytes not 0 after the drain");
	if (!quiet || ctl->bad)
		printf("stress_msgq: %d producers %d consumers %d s: %llu "
		       "messages, %u producer kills, %u consumer kills, %u "
		       "stops, %llu lost (allowed %u), %llu dup: %s%s\n",
		       np, nc, secs, (unsigned long long)total, kills[0],
		       kills[1], stops, (unsigned long long)lost, kills[1],
		       (unsigned long long)dup, ctl->bad ? "FAIL: " : "ok",
		       ctl->bad ? ctl->why : "");
	return ctl->bad ? 1 : 0;
}
