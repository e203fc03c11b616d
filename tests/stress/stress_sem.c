/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Stress of libprim semaphore arrays: P worker processes do random single-
 * and multi-operation semops (blocking, timed, IPC_NOWAIT, SEM_UNDO) that
 * conserve tokens, while the parent kills workers with SIGKILL (and reaps
 * them, as the broker will), stops them with SIGSTOP and continues them.
 *
 * Invariants, checked at the end (exit 1 when one breaks):
 * - tokens: the "bank" semaphores hold exactly the tokens they started
 *   with: every transfer is one atomic multi-op, every hold is undone by
 *   SEM_UNDO when its holder dies;
 * - the "fast" semaphore (single-op P/V without SEM_UNDO, the CAS fast
 *   path) never holds more than it started with, and less only by the
 *   number of workers killed between its P and its V;
 * - nobody hangs: a stopped or killed worker never stops the others
 *   (progress is checked during every stop), and at the end every worker,
 *   released, exits within a bound (a lost wake-up would keep it asleep);
 * - waiter counts are back to 0.
 *
 * Usage: stress_sem [-p workers] [-s seconds] [-k kills/s] [-v]
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

#include "prim/sem.h"

#define NBANK 4		/* bank semaphores 0..3 */
#define FAST NBANK	/* semaphore 4: fast path only */
#define PING (NBANK + 1)	/* 5, 6: untimed ping-pong of two workers */
#define PONG (NBANK + 2)
#define SPARE (NBANK + 3)	/* 7: always 1, used in multi-op forms */
#define NSEMS (NBANK + 4)
#define BANK_TOKENS 40	/* per bank semaphore */
#define FAST_TOKENS 3
#define MAXW 64
#define RELEASE 1000	/* added to every semaphore at the end */

enum phase { PH_NONE, PH_FAST };

struct shared {
	volatile int stop;
	volatile uint64_t ops[MAXW];	/* completed calls, per worker slot */
	volatile int phase[MAXW];
	volatile uint64_t rounds[2];	/* ping-pong hand-offs */
};

static struct shared *sh;
static struct prim_semset *set;
static int verbose;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
fail(const char *what, int r)
{
	fprintf(stderr, "stress_sem: %s: %s\n", what, strerror(-r));
	_exit(3);
}

/* A call that may block: untimed, timed, or IPC_NOWAIT, at random. */
static int
call(struct prim_sembuf *b, size_t n, unsigned *seed)
{
	struct timespec d;
	int how = rand_r(seed) % 3, r;

	if (how == 0) {
		for (size_t i = 0; i < n; i++)
			b[i].sem_flg |= PRIM_IPC_NOWAIT;
		r = prim_sem_op(set, b, n);
	} else {
		/* Bank workers never block for good: the bank can run dry. */
		deadline_in(&d, 1 + rand_r(seed) % 20);
		r = prim_sem_op_timed(set, b, n, &d);
	}
	if (r != 0 && r != -EAGAIN)
		fail("semop", r);
	return r;
}

static void
worker(int slot, unsigned seed)
{
	while (!sh->stop) {
		struct prim_sembuf b[4];
		unsigned short a = (unsigned short)(rand_r(&seed) % NBANK);
		unsigned short c = (unsigned short)(rand_r(&seed) % NBANK);
		short x = (short)(1 + rand_r(&seed) % 3);
		int kind = rand_r(&seed) % 6;

		switch (kind) {
		case 0: /* atomic transfer a -> c */
			b[0] = (struct prim_sembuf){ a, (short)-x, 0 };
			b[1] = (struct prim_sembuf){ c, x, 0 };
			call(b, 2, &seed);
			break;
		case 1: /* transfer with the same semaphore twice */
			b[0] = (struct prim_sembuf){ a, -1, 0 };
			b[1] = (struct prim_sembuf){ c, 2, 0 };
			b[2] = (struct prim_sembuf){ a, -1, 0 };
			call(b, 3, &seed);
			break;
		case 2: /* hold one token with SEM_UNDO, then give it back */
			b[0] = (struct prim_sembuf){ a, -1, PRIM_SEM_UNDO };
			if (call(b, 1, &seed) == 0) {
				b[0] = (struct prim_sembuf){ a, 1, PRIM_SEM_UNDO };
				if (prim_sem_op(set, b, 1) != 0)
					fail("undo give back", -EINVAL);
			}
			break;
		case 3: /* hold two with SEM_UNDO in one call, give back */
			b[0] = (struct prim_sembuf){ a, -1, PRIM_SEM_UNDO };
			b[1] = (struct prim_sembuf){ c, -1, PRIM_SEM_UNDO };
			if (call(b, 2, &seed) == 0) {
				b[0].sem_op = 1;
				b[1].sem_op = 1;
				if (prim_sem_op(set, b, 2) != 0)
					fail("undo give back 2", -EINVAL);
			}
			break;
		case 4: /* the fast path: single P and V, no undo */
			sh->phase[slot] = PH_FAST;
			b[0] = (struct prim_sembuf){ FAST, -1, 0 };
			if (call(b, 1, &seed) == 0) {
				b[0] = (struct prim_sembuf){ FAST, 1, 0 };
				if (prim_sem_op(set, b, 1) != 0)
					fail("fast V", -EINVAL);
			}
			sh->phase[slot] = PH_NONE;
			break;
		default: /* wait-for-zero, never blocking */
			b[0] = (struct prim_sembuf){ a, 0, PRIM_IPC_NOWAIT };
			call(b, 1, &seed);
			break;
		}
		sh->ops[slot]++;
	}
	_exit(0);
}

/*
 * Two workers hand one token back and forth with untimed blocking calls in
 * single- and multi-operation forms: they make progress unless a wake-up
 * is lost. They are stopped, never killed (a kill would lose the token).
 */
static void
pingpong(int me, unsigned seed)
{
	unsigned short mine = me ? PONG : PING, other = me ? PING : PONG;

	while (!sh->stop) {
		struct prim_sembuf b[3];
		int r;

		if (rand_r(&seed) % 2) {
			b[0] = (struct prim_sembuf){ mine, -1, 0 };
			r = prim_sem_op(set, b, 1);
		} else {
			b[0] = (struct prim_sembuf){ SPARE, -1, 0 };
			b[1] = (struct prim_sembuf){ mine, -1, 0 };
			b[2] = (struct prim_sembuf){ SPARE, 1, 0 };
			r = prim_sem_op(set, b, 3);
		}
		if (r != 0)
			fail("ping-pong P", r);
		if (rand_r(&seed) % 2) {
			b[0] = (struct prim_sembuf){ other, 1, 0 };
			r = prim_sem_op(set, b, 1);
		} else {
			b[0] = (struct prim_sembuf){ other, 1, 0 };
			b[1] = (struct prim_sembuf){ SPARE, -1, PRIM_IPC_NOWAIT };
			b[2] = (struct prim_sembuf){ SPARE, 1, 0 };
			r = prim_sem_op(set, b, 3);
		}
		if (r != 0)
			fail("ping-pong V", r);
		sh->rounds[me]++;
	}
	_exit(0);
}

static pid_t
spawn_pp(int me, unsigned seed)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0)
		pingpong(me, seed);
	return pid;
}

static pid_t
spawn(int slot, unsigned seed)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0)
		worker(slot, seed);
	return pid;
}

static uint64_t
total_ops(int n)
{
	uint64_t t = 0;

	for (int i = 0; i < n; i++)
		t += sh->ops[i];
	return t;
}

/* Calls completed by everyone but worker i (ping-pong rounds count). */
static uint64_t
progress(int nw, int i)
{
	uint64_t t = total_ops(nw) + sh->rounds[0] + sh->rounds[1];

	if (i < nw)
		return t - sh->ops[i];
	return t - sh->rounds[i - nw];
}

static void
msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
main(int argc, char **argv)
{
	struct prim_semset_attr attr = { .nsems = NSEMS, .nprocs = MAXW + 8,
					 .nslots = MAXW + 8 };
	int nw = 6, seconds = 5, kps = 20, opt, bad = 0;
	pid_t pids[MAXW + 2];
	uint64_t kills = 0, stops = 0, amb = 0, hangs = 0;
	size_t len;
	void *mem;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	while ((opt = getopt(argc, argv, "p:s:k:v")) != -1) {
		switch (opt) {
		case 'p':
			nw = atoi(optarg);
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'k':
			kps = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: stress_sem [-p n] [-s sec] [-k kills/s]\n");
			return 2;
		}
	}
	if (nw < 2 || nw > MAXW)
		nw = 6;
	len = prim_semset_size(&attr);
	mem = mmap(NULL, len + sizeof(*sh), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || prim_semset_init(mem, len, &attr) != 0 ||
	    prim_semset_open(mem, len, &set) != 0) {
		fprintf(stderr, "stress_sem: cannot create the set\n");
		return 2;
	}
	sh = (struct shared *)((char *)mem + len);
	for (int i = 0; i < NBANK; i++)
		prim_sem_setval(set, i, BANK_TOKENS);
	prim_sem_setval(set, FAST, FAST_TOKENS);
	prim_sem_setval(set, PING, 1);
	prim_sem_setval(set, SPARE, 1);
	printf("stress_sem: %d workers, %d s, seed %u\n", nw, seconds, seed);
	for (int i = 0; i < nw; i++)
		pids[i] = spawn(i, seed + (unsigned)i);
	pids[nw] = spawn_pp(0, seed * 3);
	pids[nw + 1] = spawn_pp(1, seed * 5);

	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	while (now_ms() < end) {
		int i = rand_r(&seed) % (nw + 2), st;
		uint64_t pp0 = sh->rounds[0];

		msleep(1000 / (kps > 0 ? kps : 1));
		if (i < nw && sh->rounds[0] == pp0) {
			/* Give it a full second before calling it a hang. */
			uint64_t t1 = now_ms();

			while (sh->rounds[0] == pp0 && now_ms() - t1 < 1000)
				msleep(5);
			if (sh->rounds[0] == pp0) {
				fprintf(stderr,
					"stress_sem: ping-pong stalled\n");
				hangs++;
			} else if (verbose) {
				printf("ping-pong paused %llu ms\n",
				       (unsigned long long)(now_ms() - t1 + 50));
			}
		}
		if (i < nw && rand_r(&seed) % 2) {
			/* SIGKILL, reap, replace. */
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
				fprintf(stderr, "stress_sem: worker failed\n");
				bad = 1;
			}
			if (sh->phase[i] == PH_FAST)
				amb++;
			sh->phase[i] = PH_NONE;
			int r = prim_semset_reap(set, pids[i]);

			if (r < 0) {
				fprintf(stderr, "stress_sem: reap: %s\n",
					strerror(-r));
				bad = 1;
			}
			kills++;
			pids[i] = spawn(i, seed + (unsigned)kills * 7919);
		} else {
			/* SIGSTOP: the others must keep going meanwhile. */
			uint64_t before, after = 0, t0 = now_ms();

			kill(pids[i], SIGSTOP);
			msleep(20);
			before = progress(nw, i);
			while (now_ms() - t0 < 2000) {
				msleep(20);
				after = progress(nw, i);
				if (after > before + 10)
					break;
			}
			if (after <= before + 10) {
				fprintf(stderr,
					"stress_sem: no progress while worker %d was stopped\n",
					i);
				hangs++;
				if (getenv("STRESS_HOLD") != NULL)
					msleep(60000); /* time to attach gdb */
			}
			kill(pids[i], SIGCONT);
			stops++;
		}
	}

	/* Release everyone; a lost wake-up leaves a worker asleep. */
	sh->stop = 1;
	for (int s = 0; s < NSEMS; s++) {
		struct prim_sembuf b = { (unsigned short)s, RELEASE, 0 };

		if (prim_sem_op(set, &b, 1) != 0)
			bad = 1;
	}
	uint64_t t0 = now_ms();

	for (int i = 0; i < nw + 2; i++) {
		int st;
		pid_t r;

		while ((r = waitpid(pids[i], &st, WNOHANG)) == 0 &&
		       now_ms() - t0 < 10000)
			msleep(5);
		if (r == 0) {
			fprintf(stderr, "stress_sem: worker %d hangs\n", i);
			hangs++;
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			if (i < nw && sh->phase[i] == PH_FAST)
				amb++;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "stress_sem: worker %d failed\n", i);
			bad = 1;
		}
		prim_semset_reap(set, pids[i]);
	}

	int bank = 0, fast = prim_sem_getval(set, FAST) - RELEASE;

	for (int s = 0; s < NBANK; s++)
		bank += prim_sem_getval(set, s) - RELEASE;
	for (int s = 0; s < NSEMS; s++) {
		if (prim_sem_getncnt(set, s) != 0 ||
		    prim_sem_getzcnt(set, s) != 0) {
			fprintf(stderr, "stress_sem: waiter counts of %d not 0\n",
				s);
			bad = 1;
		}
	}
	printf("stress_sem: ping-pong rounds=%llu\n",
	       (unsigned long long)(sh->rounds[0] + sh->rounds[1]));
	printf("stress_sem: ops=%llu kills=%llu stops=%llu hangs=%llu "
	       "bank=%d/%d fast=%d/%d (ambiguous kills %llu)\n",
	       (unsigned long long)total_ops(nw), (unsigned long long)kills,
	       (unsigned long long)stops, (unsigned long long)hangs, bank,
	       NBANK * BANK_TOKENS, fast, FAST_TOKENS,
	       (unsigned long long)amb);
	if (bank != NBANK * BANK_TOKENS) {
		fprintf(stderr, "stress_sem: bank tokens %s\n",
			bank < NBANK * BANK_TOKENS ? "lost" : "duplicated");
		bad = 1;
	}
	if (fast > FAST_TOKENS || fast < FAST_TOKENS - (int)amb) {
		fprintf(stderr, "stress_sem: fast tokens wrong\n");
		bad = 1;
	}
	if (hangs)
		bad = 1;
	prim_semset_close(set);
	return bad;
}
