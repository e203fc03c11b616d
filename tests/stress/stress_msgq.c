/*
 * Stress of libprim message queues: P producer and C consumer processes on
 * one small queue (so it is often full and often empty), messages carrying
 * producer id, sequence number, type and a checksum; workers are killed
 * with SIGKILL, reaped and respawned, or stopped and continued, at random.
 *
 * The accounting is exact. A producer records the sequence number it is
 * about to send and, once the send returned, that it returned; so only the
 * one send in flight when a producer is killed is uncertain (it may or may
 * not be in the queue, never twice). Each consumer receives directly into
 * its own buffer in the shared mapping, so the bytes of a message are in
 * shared memory before the receive releases the slot; after killing a
 * consumer the parent reads that buffer: a valid message there was
 * delivered to the dead consumer (if it died before the release, the reap
 * put the message back and it may be delivered again: that is allowed).
 * At the end the queue is drained and the check proves: no corrupt message
 * (checksum); no message received twice by live consumers; every message
 * whose send returned was received by a live consumer, found in a dead
 * consumer's buffer or drained: 0 lost, no allowance; FIFO per producer
 * within a type for each consumer (reset when a reap may have put an older
 * message back); qnum and cbytes back to 0. No progress for 10 s is a
 * failure (a hang). The run lasts the seconds asked for.
 *
 * A trimmer process gives the queue's empty pages back in a loop
 * (prim_msgq_trim, as the broker does at each sweep), and is killed,
 * respawned, stopped and continued like the workers; never two at once.
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
/* Sequence numbers per producer: far more than 60 s can use. */
#define MAXSEQ (1u << 31)
#define NTYPES 6
#define MSGMAX 256
#define MAXMARK 65536

struct msg {
	uint32_t prod;
	uint32_t seq;
	int64_t type;
	uint32_t len;
	uint32_t sum;
	unsigned char fill[MSGMAX - 24];
};
_Static_assert(sizeof(struct msg) == MSGMAX, "msg");

struct ctl {
	uint32_t stop_prod;
	uint32_t stop_cons;
	uint32_t epoch;		/* odd while a consumer reap runs */
	uint32_t bad;		/* a worker saw a broken invariant */
	uint32_t dups;		/* second receipts of a message */
	uint64_t progress;
	uint64_t trimmed;	/* bytes the trimmer gave back */
	uint32_t next[MAXP];		/* first seq of a producer's life */
	uint32_t attempting[MAXP];	/* seq being sent (or last sent) */
	uint32_t returned[MAXP];	/* the send of returned - 1 returned */
	char why[128];
	/* Each consumer receives into its own buffer, in shared memory. */
	struct msg cbuf[MAXC] __attribute__((aligned(64)));
};

/* Messages that need no receipt: sends in flight at a producer kill, and
 * messages found in a dead consumer's buffer. Parent only. */
struct mark {
	uint32_t prod, seq;
};

static struct ctl *ctl;
/* Bit p * MAXSEQ + s: (p, s) was received by a live consumer or drained;
 * a lazily-touched shared map, 1 bit per message. */
static uint64_t *got;
static struct mark inflight[MAXMARK], found[MAXMARK];
static unsigned ninflight, nfound;
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

	s ^= hash(m->len);
	for (uint32_t i = 0; i + 24 < m->len && i < sizeof(m->fill); i++)
		s = s * 31 + m->fill[i];
	return s;
}

/* A whole, uncorrupted message of n bytes? */
static int
valid(const struct msg *m, size_t n)
{
	return n >= 24 && n <= MSGMAX && n == m->len && m->prod < MAXP &&
	       m->seq < MAXSEQ && m->type >= 1 && m->type <= NTYPES &&
	       checksum(m) == m->sum;
}

static void
fail(const char *why)
{
	if (ck_pr_fas_32(&ctl->bad, 1) == 0)
		snprintf(ctl->why, sizeof(ctl->why), "%s", why);
}

/* Record a receipt; returns 1 if (p, s) had been received already. */
static int
receipt(uint32_t p, uint32_t s)
{
	uint64_t b = (uint64_t)p * MAXSEQ + s;

	return ck_pr_bts_64(&got[b / 64], (unsigned)(b % 64));
}

static int
received(uint32_t p, uint32_t s)
{
	uint64_t b = (uint64_t)p * MAXSEQ + s;

	return (int)(got[b / 64] >> (b % 64) & 1);
}

static void
add_mark(struct mark *v, unsigned *n, uint32_t p, uint32_t s)
{
	if (*n >= MAXMARK) {
		fail("too many marks");
		return;
	}
	v[*n].prod = p;
	v[*n].seq = s;
	(*n)++;
}

static int
marked(const struct mark *v, unsigned n, uint32_t p, uint32_t s)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].prod == p && v[i].seq == s)
			return 1;
	return 0;
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
	uint32_t seq = ck_pr_load_32(&ctl->next[p]);
	struct msg m;

	srand((unsigned)getpid());
	while (!ck_pr_load_32(&ctl->stop_prod)) {
		int flags = rand() % 4 == 0 ? PRIM_IPC_NOWAIT : 0, r;

		if (seq >= MAXSEQ) {
			fail("sequence numbers used up before the time");
			_exit(1);
		}
		m.prod = p;
		m.seq = seq;
		m.type = 1 + (int64_t)(hash(seq * 8 + p) % NTYPES);
		m.len = 24 + hash(seq ^ (p << 24)) % (MSGMAX - 24 + 1);
		for (uint32_t i = 0; i + 24 < m.len; i++)
			m.fill[i] = (unsigned char)(seq + i);
		m.sum = checksum(&m);
		/* Known as attempted before the send can begin. */
		ck_pr_store_32(&ctl->attempting[p], seq);
		ck_pr_fence_store();
		r = prim_msgq_send(q, m.type, &m, m.len, flags);
		if (r == -EAGAIN)
			continue;	/* not sent: retry the same seq */
		if (r != 0) {
			fail("send error");
			_exit(1);
		}
		/* The send returned: from now on it must be received. */
		ck_pr_store_32(&ctl->returned[p], seq + 1);
		ck_pr_fence_store();
		seq++;
	}
	_exit(0);
}

static void
consumer(uint32_t c)
{
	struct prim_msgq *q = openq();
	static int32_t last[MAXP][NTYPES + 1];
	struct msg *m = &ctl->cbuf[c];
	uint32_t base = 1;	/* epoch of the FIFO window (odd: none) */

	srand((unsigned)getpid() * 7 + c);
	for (;;) {
		long want, type = 0;
		int flags = 0, mode = rand() % 8;
		uint32_t e0, e1;
		struct timespec d;
		ssize_t n;

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
		/* Empty the buffer (the last message was recorded): what
		 * the parent finds here after a kill came from this receive. */
		memset(m, 0xff, sizeof(*m));
		e0 = ck_pr_load_32(&ctl->epoch);
		ck_pr_fence_memory();
		n = prim_msgq_recv_timed(q, m, sizeof(*m), want, flags, &type,
					 &d);
		if (n == -ENOMSG || n == -ETIMEDOUT) {
			if (ck_pr_load_32(&ctl->stop_cons))
				_exit(0);
			continue;
		}
		if (n < 0 || !valid(m, (size_t)n) || type != m->type) {
			fail("corrupt message");
			_exit(1);
		}
		if ((want > 0 && !(flags & PRIM_MSG_EXCEPT) && type != want) ||
		    (want > 0 && (flags & PRIM_MSG_EXCEPT) && type == want) ||
		    (want < 0 && type > -want)) {
			fail("wrong type for msgtyp");
			_exit(1);
		}
		if (receipt(m->prod, m->seq)) {
			ck_pr_inc_32(&ctl->dups);
			fail("duplicate");
		}
		ck_pr_inc_64(&ctl->progress);
		/*
		 * A reap may put back an older message that a dead consumer
		 * had claimed, so FIFO is checked only between receipts with
		 * no reap in between: the epoch before the first receive of
		 * the window equals the epoch after this one, and is even.
		 */
		ck_pr_fence_load();
		e1 = ck_pr_load_32(&ctl->epoch);
		if (e1 == base && !(e1 & 1)) {
			if ((int32_t)m->seq <= last[m->prod][type]) {
				fail("FIFO within a type broken");
				_exit(1);
			}
		} else {
			memset(last, 0xff, sizeof(last));
			base = e0 == e1 ? e0 : 1;
		}
		last[m->prod][type] = (int32_t)m->seq;
	}
}

/* After a consumer died: what its buffer holds was delivered to it. */
static void
inspect(uint32_t c)
{
	const struct msg *m = &ctl->cbuf[c];

	if (m->len >= 24 && m->len <= MSGMAX && valid(m, m->len))
		add_mark(found, &nfound, m->prod, m->seq);
}

/* After a producer died: the send it had in flight, if it had not
 * returned, may or may not have happened. */
static void
producer_died(uint32_t p)
{
	uint32_t att = ctl->attempting[p], ret = ctl->returned[p];

	if (ret <= att)
		add_mark(inflight, &ninflight, p, att);
	ctl->next[p] = att + 1;
}

/* Give empty pages back, again and again, until killed or told to stop. */
static void
trimmer(void)
{
	struct prim_msgq *q;

	if (prim_msgq_open(qmem, qlen, &q) != 0)
		_exit(3);
	while (!ck_pr_load_32(&ctl->stop_cons)) {
		int r = prim_msgq_trim(q);

		if (r < 0 && r != -ENOMEM)
			_exit(4);
		if (r > 0)
			ck_pr_add_64(&ctl->trimmed, (uint64_t)r);
		usleep((useconds_t)(rand() % 2000));
	}
	_exit(0);
}

static pid_t
spawn_trimmer(void)
{
	pid_t p = fork();

	if (p < 0) {
		perror("fork");
		exit(2);
	}
	if (p == 0)
		trimmer();
	return p;
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

/* Kill worker w (a consumer if w >= np), reap it, account for it. */
static void
kill_worker(struct prim_msgq *q, pid_t pid, int np, int w)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (w >= np) {
		/* Odd while the reap may put messages back (see consumer). */
		ck_pr_inc_32(&ctl->epoch);
		ck_pr_fence_memory();
		inspect((uint32_t)(w - np));
	} else {
		producer_died((uint32_t)w);
	}
	if (prim_msgq_reap(q, pid) < 0)
		fail("reap");
	if (w >= np) {
		ck_pr_fence_memory();
		ck_pr_inc_32(&ctl->epoch);
	}
}

int
main(int argc, char **argv)
{
	/* A ring of 4 pages, so that the trimmer has ring pages to give
	 * back; qbytes keeps the queue often full. */
	struct prim_msgq_attr a = { .msgmax = MSGMAX, .qbytes = 2048,
				    .qbytes_max = 4096, .nslots = 512 };
	int np = 3, nc = 3, secs = 3, quiet = 0, chaos = 1, opt;
	pid_t pids[MAXP + MAXC], tpid;
	unsigned tkills = 0;
	unsigned kills[2] = { 0 }, stops = 0;
	uint64_t lost = 0, dup = 0, total = 0, dead = 0, lastprog = 0;
	struct prim_msgq *q;
	struct prim_msgq_stat st;
	double t0, tprog, elapsed;
	struct msg m;
	ssize_t n;

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
	got = mmap(NULL, (size_t)np * (MAXSEQ / 8), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	qlen = prim_msgq_size(&a);
	qmem = mmap(NULL, qlen, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || got == MAP_FAILED || qmem == MAP_FAILED ||
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
	tpid = spawn_trimmer();
	t0 = tprog = now();
	while (now() - t0 < secs && !ck_pr_load_32(&ctl->bad)) {
		int w = rand() % (np + nc), kind = w < np ? 0 : 1;
		uint64_t pr = ck_pr_load_64(&ctl->progress);

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
		if (rand() % 8 == 0) {
			/* The trimmer: killed (and waited for) or stopped. */
			if (rand() % 2 == 0) {
				kill(tpid, SIGKILL);
				waitpid(tpid, NULL, 0);
				tpid = spawn_trimmer();
				tkills++;
			} else {
				kill(tpid, SIGSTOP);
				usleep(1000 + (useconds_t)(rand() % 30000));
				kill(tpid, SIGCONT);
			}
			continue;
		}
		if (rand() % 3 == 0) {
			kill_worker(q, pids[w], np, w);
			kills[kind]++;
			pids[w] = spawn(kind, (uint32_t)(kind ? w - np : w));
		} else {
			kill(pids[w], SIGSTOP);
			usleep(1000 + (useconds_t)(rand() % 30000));
			kill(pids[w], SIGCONT);
			stops++;
		}
	}
	elapsed = now() - t0;
	/* Stop: producers first, then consumers; then drain. */
	ck_pr_store_32(&ctl->stop_prod, 1);
	for (int i = 0; i < np; i++) {
		int stv;

		waitpid(pids[i], &stv, 0);
		if (!WIFEXITED(stv) || WEXITSTATUS(stv) != 0)
			fail("producer failed");
	}
	ck_pr_store_32(&ctl->stop_cons, 1);
	{
		int stv;

		kill(tpid, SIGCONT);
		waitpid(tpid, &stv, 0);
		if (!WIFEXITED(stv) || WEXITSTATUS(stv) != 0)
			fail("trimmer failed");
	}
	for (int i = 0; i < nc; i++) {
		double td = now();
		int stv;

		while (waitpid(pids[np + i], &stv, WNOHANG) == 0) {
			if (now() - td > 10) {
				fail("consumer does not stop");
				kill_worker(q, pids[np + i], np, np + i);
				stv = 0;
				break;
			}
			usleep(1000);
		}
		if (!WIFEXITED(stv) || WEXITSTATUS(stv) != 0)
			fail("consumer failed");
	}
	while ((n = prim_msgq_recv(q, &m, sizeof(m), 0, PRIM_IPC_NOWAIT,
				   NULL)) != -ENOMSG) {
		if (n < 0 || !valid(&m, (size_t)n)) {
			fail("corrupt message in the drain");
			break;
		}
		if (receipt(m.prod, m.seq)) {
			dup++;
			fail("duplicate in the drain");
		}
	}
	for (int p = 0; p < np; p++) {
		uint32_t att = ctl->attempting[p], ret = ctl->returned[p];

		for (uint32_t s = 0; s <= att && s < MAXSEQ; s++) {
			int c = received((uint32_t)p, s);

			total += (uint64_t)c;
			if (c == 0 && s < ret &&
			    !marked(inflight, ninflight, (uint32_t)p, s)) {
				if (marked(found, nfound, (uint32_t)p, s))
					dead++;
				else
					lost++;
			}
		}
		/* Nothing beyond the last attempt can have been received. */
		for (uint32_t s = att + 1; s < att + 4096 && s < MAXSEQ; s++)
			if (received((uint32_t)p, s))
				fail("received a message never sent");
	}
	dup += ctl->dups;
	if (dup)
		fail("duplicates");
	if (lost)
		fail("lost messages");
	if (prim_msgq_stat(q, &st) != 0 || st.qnum != 0 || st.cbytes != 0)
		fail("qnum/cbytes not 0 after the drain");
	if (!quiet || ctl->bad)
		printf("stress_msgq: %d producers %d consumers %.1f s: %llu "
		       "messages, %u producer kills, %u consumer kills, %u "
		       "stops, %u trimmer kills (%llu KiB given back), %llu "
		       "delivered to dead consumers, %llu lost, %llu dup: "
		       "%s%s\n",
		       np, nc, elapsed, (unsigned long long)total, kills[0],
		       kills[1], stops, tkills,
		       (unsigned long long)(ctl->trimmed >> 10),
		       (unsigned long long)dead,
		       (unsigned long long)lost, (unsigned long long)dup,
		       ctl->bad ? "FAIL: " : "ok", ctl->bad ? ctl->why : "");
	prim_msgq_close(q);
	return ctl->bad ? 1 : 0;
}
