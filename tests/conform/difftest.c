/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * difftest: the randomized differential tester for System V semaphores and
 * message queues. One seeded generator makes a program of steps (semget,
 * semop, semtimedop, semctl with every command, msgget, msgsnd, msgrcv,
 * msgctl with every command, every flag, edge values, bad ids and bad
 * pointers), run by one process (mode a), by a parent and forked children
 * that block, are released, signalled and killed (mode b), or by children
 * of several uids (mode c, as root). It uses only libc, and prints one line
 * per step: the call, its arguments, the return value and errno, and what
 * it read. tests/check_difftest.sh runs the same program on the kernel and
 * with libsysv preloaded, each in a fresh IPC namespace, and compares.
 *
 * What is normalised, and why:
 *   ids       each id returned (semget, msgget, *_STAT) is printed as an
 *             ordinal in order of first sight (sid#1, qid#2): prim's ids
 *             carry bit 30. Reusing a removed id shows as an old ordinal.
 *   pids      sempid, msg_lspid, msg_lrpid as the ordinal of the process
 *             (P, pid#1 for the first child spawned...).
 *   times     only zero or nonzero.
 *   -x FEATURE (see feat_names[]) leaves out a feature whose divergence is
 *             known (libsysv(7) BUGS, issue 10): the generator no longer
 *             makes it, or the field is printed as "?".
 *
 * Deterministic by construction, on the kernel as under prim: a call that
 * may block in the parent, or in a child not told to run it in the
 * background, runs under a 30 ms interval timer whose SIGALRM handler
 * (no SA_RESTART) makes it EINTR. A background call ("bg") in a child is
 * waited for until it has either answered or sleeps in an IPC wait (state
 * S, wchan of a semaphore, message or futex wait, three looks in a row),
 * and after every step that may change an object the parent waits the same
 * way for every child with a call outstanding ("settle"), printing the
 * answers that came in child order. Children answer through a pipe; only
 * the parent prints. A step for a child that still waits first settles;
 * SIGUSR1 (SA_RESTART, which these calls ignore) is sent only to a child
 * settled as blocked.
 *
 * Usage:
 *   difftest [-m a|b|c] [-s SEED] [-c COUNT] [-n STEPS] [-x F,F...]
 *            run COUNT programs from SEED on
 *   difftest -p [-m M] [-s SEED] [-n STEPS] [-x ...]
 *            print the program of one seed as a step script
 *   difftest -r FILE [-x ...]
 *            run a step script (from -p, possibly edited: the shrinker)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

#define NSLOT	 3
#define NKID	 3
#define MAXA	 40
#define MAXSTEP	 4096
#define MAXSOPS	 8
#define SLOT_M1	 7 /* the id -1 */
#define SLOT_BAD 8 /* an id no one has */
#define BOGUS_ID 0x3ffe7ffe
#define GUARD_MS 30
#define KEYBASE	 0x44540000
#define BADPTR	 ((void *)1)

enum op {
	OP_SPAWN,
	OP_REAP,
	OP_SIG,
	OP_SEMGET,
	OP_SEMOP,
	OP_SEMCTL,
	OP_MSGGET,
	OP_MSGSND,
	OP_MSGRCV,
	OP_MSGCTL,
	OP_STOP,
	OP_N
};

static const char *const op_names[OP_N] = {
	"spawn", "reap", "sig", "semget", "semop",
	"semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "stop",
};

struct step {
	int actor; /* 0 the parent, 1..NKID a child */
	int op;
	int n;
	long a[MAXA];
};

/* Features that can be left out (-x), each for a known divergence. */
enum feat {
	F_MSGCOPY,  /* MSG_COPY (matches since prim_msgq_copy) */
	F_LSPID,    /* msg_lspid printed as "?" (item 8) */
	F_OTIME,    /* sem_otime printed as "?" (item 8, exit undo) */
	F_NCNT,	    /* GETNCNT/GETZCNT not made while children wait (item 8) */
	F_MULTIWAIT, /* at most one waiter per object (item 4: order) */
	F_NOWAITBG, /* no IPC_NOWAIT in a semop that may block (item 4) */
	F_BADPTR,   /* no NULL or (void *)1 pointers */
	F_KILLWAIT, /* never kill or reap a child with a call outstanding */
	F_SIG,	    /* no SIGUSR1 to waiters */
	F_SEMSTAT,  /* no SEM_STAT/MSG_STAT(_ANY), *_INFO */
	F_ERRORDER, /* one error at a time: no bad value with a bad id */
	F_SIGSTOP,  /* no SIGSTOP of a waiter (item 4) */
	F_PROXY,    /* no mode giving a class R or W alone (BUGS: the
		       broker's calls for them poll) */
	F_N
};

static const char *const feat_names[F_N] = {
	"msgcopy", "lspid", "otime", "ncnt", "multiwait", "nowaitbg",
	"badptr", "killwait", "sig", "stat", "errorder", "sigstop", "proxy",
};

static int excl[F_N];
static char mode = 'a';
static int semopm = 500, msgmax = 8192;

/* ---- the generator: a pure function of the seed ---------------------- */

static uint64_t rng;

static uint32_t
rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static long
pick(const long *v, int n)
{
	return v[rnd() % (unsigned)n];
}
#define PICK(...)                                                              \
	pick((const long[]){__VA_ARGS__},                                      \
	     sizeof((const long[]){__VA_ARGS__}) / sizeof(long))
#define CHANCE(pct) (rnd() % 100 < (unsigned)(pct))

/* What the generator believes (it cannot see results). */
static struct {
	int nsems[NSLOT];
	int msq[NSLOT];
	int kid_alive[NKID + 1];
	int kid_bg[NKID + 1]; /* 1 + the object kind (1 sem, 2 msg) */
	int kid_bgslot[NKID + 1];
	int kid_uid[NKID + 1];
	int kid_stopped[NKID + 1];
} g;

static struct step prog[MAXSTEP];
static int nprog;

static struct step *
add(int actor, int op)
{
	struct step *s = &prog[nprog++];

	memset(s, 0, sizeof(*s));
	s->actor = actor;
	s->op = op;
	return s;
}

static int
gen_slot(int kind)
{
	int made[NSLOT], n = 0;

	if (!excl[F_ERRORDER] && CHANCE(4))
		return CHANCE(50) ? SLOT_M1 : SLOT_BAD;
	for (int i = 0; i < NSLOT; i++)
		if (kind == 1 ? g.nsems[i] : g.msq[i])
			made[n++] = i;
	if (n && CHANCE(92))
		return made[rnd() % (unsigned)n];
	return (int)(rnd() % NSLOT);
}

static long
gen_mode(void)
{
	if (mode == 'c' && excl[F_PROXY])
		return PICK(0600, 0666, 0666, 0666, 0660, 0606, 0);
	if (mode == 'c')
		return PICK(0600, 0666, 0666, 0666, 0644, 0640, 0604, 0660,
			    0400, 0200, 0622, 0);
	return PICK(0600, 0600, 0666, 0400, 0200);
}

static long
gen_key(void)
{
	return PICK(0, 1, 1, 2, 2, 3);
}

static long
gen_ptr(void)
{
	if (excl[F_BADPTR] || !CHANCE(4))
		return 0;
	return CHANCE(50) ? 1 : 2;
}

/* Would a waiter on this object conflict with -x multiwait? */
static int
object_waited(int kind, int slot)
{
	for (int k = 1; k <= NKID; k++)
		if (g.kid_bg[k] == kind && g.kid_bgslot[k] == slot)
			return 1;
	return 0;
}

static int
any_bg(void)
{
	for (int k = 1; k <= NKID; k++)
		if (g.kid_bg[k])
			return 1;
	return 0;
}

static void
gen_semget(int actor)
{
	struct step *s = add(actor, OP_SEMGET);
	int slot = (int)(rnd() % NSLOT);
	long ns = CHANCE(90) ? PICK(1, 1, 2, 3, 4)
			     : PICK(0, -1, 32000, 32001, 1L << 30);
	long flg;

	if (CHANCE(80))
		flg = IPC_CREAT | gen_mode();
	else
		flg = PICK(IPC_CREAT | IPC_EXCL, 0, 0, 0600) |
		      (CHANCE(50) ? gen_mode() : 0);
	s->a[0] = slot;
	s->a[1] = CHANCE(30) ? 0 : gen_key();
	s->a[2] = ns;
	s->a[3] = flg;
	s->n = 4;
	if (ns > 0 && ns <= 4 && (flg & IPC_CREAT))
		g.nsems[slot] = (int)ns;
}

static long
gen_semnum(int slot)
{
	int ns = slot < NSLOT && g.nsems[slot] ? g.nsems[slot] : 1;

	if (!excl[F_ERRORDER] && CHANCE(5))
		return PICK(ns, 65535, 4);
	return rnd() % (unsigned)ns;
}

static void
gen_semop(int actor)
{
	struct step *s = add(actor, OP_SEMOP);
	int slot = gen_slot(1);
	int bg = actor && !g.kid_bg[actor] && CHANCE(50);
	int cnt, i;

	if (bg && slot < NSLOT && excl[F_MULTIWAIT] && object_waited(1, slot))
		bg = 0;
	s->a[0] = slot;
	s->a[1] = bg ? 0 : gen_ptr();
	s->a[2] = CHANCE(92) ? 0 : PICK(1, 2, 3, 4);
	s->a[3] = CHANCE(50) ? -1 : CHANCE(70) ? PICK(0, 1, 2) : PICK(3, 4, 5, 6);
	if (bg) /* never timed: its timeout would race the settling */
		s->a[3] = CHANCE(50) ? -1 : 0;
	s->a[4] = bg;
	cnt = CHANCE(70) ? 1 : (int)PICK(2, 2, 3, MAXSOPS);
	s->a[5] = cnt;
	for (i = 0; i < cnt; i++) {
		long *t = &s->a[6 + 3 * i];
		long fl = 0;

		t[0] = gen_semnum(slot);
		if (CHANCE(85))
			t[1] = PICK(-1, -1, -2, 0, 1, 1, 2, 3);
		else
			t[1] = PICK(32767, -32768, 32766, -32767, 100);
		if (!bg || !excl[F_NOWAITBG])
			fl |= CHANCE(bg ? 10 : 50) ? IPC_NOWAIT : 0;
		fl |= CHANCE(35) ? SEM_UNDO : 0;
		t[2] = fl;
	}
	s->n = 6 + 3 * cnt;
	if (bg && slot < NSLOT) {
		g.kid_bg[actor] = 1;
		g.kid_bgslot[actor] = slot;
	}
}

static void
gen_semctl(int actor)
{
	struct step *s = add(actor, OP_SEMCTL);
	int slot = gen_slot(1);
	long cmd;

	for (;;) {
		cmd = PICK(IPC_STAT, IPC_STAT, IPC_SET, IPC_RMID, GETVAL,
			   GETVAL, SETVAL, SETVAL, SETVAL, GETALL, GETALL,
			   SETALL, GETPID, GETNCNT, GETZCNT, IPC_INFO, SEM_INFO,
			   SEM_STAT, SEM_STAT_ANY, 99);
		if ((cmd == GETNCNT || cmd == GETZCNT) && excl[F_NCNT] &&
		    any_bg())
			continue;
		if ((cmd == IPC_INFO || cmd == SEM_INFO || cmd == SEM_STAT ||
		     cmd == SEM_STAT_ANY) &&
		    excl[F_SEMSTAT])
			continue;
		if (cmd == IPC_RMID && !CHANCE(40))
			continue;
		if (cmd == 99 && excl[F_ERRORDER])
			continue;
		break;
	}
	s->a[0] = slot;
	s->a[1] = cmd;
	s->a[2] = gen_semnum(slot);
	s->a[3] = gen_ptr();
	s->n = 4;
	switch (cmd) {
	case SEM_STAT:
	case SEM_STAT_ANY:
		s->a[0] = PICK(0, 0, 1, 2, 3, -1, 40000);
		break;
	case SETVAL:
		s->a[4] = CHANCE(85) ? PICK(0, 1, 1, 2, 3, 5)
				     : PICK(32767, 32768, -1, 65536);
		s->n = 5;
		break;
	case SETALL:
		s->a[4] = 4;
		for (int i = 0; i < 4; i++)
			s->a[5 + i] = CHANCE(95) ? PICK(0, 1, 2, 3)
						 : PICK(32767, 32768);
		s->n = 9;
		break;
	case IPC_SET:
		s->a[4] = mode == 'c' && CHANCE(20) ? PICK(65534, 1000) : 0;
		s->a[5] = mode == 'c' && CHANCE(20) ? PICK(65534, 1000) : 0;
		if (!excl[F_ERRORDER] && CHANCE(5))
			s->a[4] = -1;
		s->a[6] = gen_mode();
		s->n = 7;
		break;
	}
}

static void
gen_msgget(int actor)
{
	struct step *s = add(actor, OP_MSGGET);

	s->a[0] = rnd() % NSLOT;
	s->a[1] = CHANCE(30) ? 0 : gen_key();
	if (CHANCE(80))
		s->a[2] = IPC_CREAT | gen_mode();
	else
		s->a[2] = PICK(IPC_CREAT | IPC_EXCL, 0, 0, 0600) |
			  (CHANCE(50) ? gen_mode() : 0);
	s->n = 3;
	if (s->a[2] & IPC_CREAT)
		g.msq[s->a[0]] = 1;
}

static long
gen_msgsize(void)
{
	if (CHANCE(85))
		return PICK(1, 5, 5, 16, 100, 0, 4000);
	return excl[F_ERRORDER] ? PICK(8192, 16) : PICK(8192, 8193, -1);
}

static void
gen_msgsnd(int actor)
{
	struct step *s = add(actor, OP_MSGSND);
	int slot = gen_slot(2);
	int bg = actor && !g.kid_bg[actor] && CHANCE(40);

	if (bg && slot < NSLOT && excl[F_MULTIWAIT] && object_waited(2, slot))
		bg = 0;
	s->a[0] = slot;
	s->a[1] = CHANCE(90) ? PICK(1, 1, 2, 3, 4) : PICK(0, -1, 1000);
	s->a[2] = gen_msgsize();
	if (bg && s->a[2] < 4000 && CHANCE(60))
		s->a[2] = 4000;
	s->a[3] = bg ? 0 : CHANCE(50) ? IPC_NOWAIT : 0;
	s->a[4] = bg ? 0 : gen_ptr();
	s->a[5] = bg;
	s->n = 6;
	if (bg && slot < NSLOT) {
		g.kid_bg[actor] = 2;
		g.kid_bgslot[actor] = slot;
	}
}

static void
gen_msgrcv(int actor)
{
	struct step *s = add(actor, OP_MSGRCV);
	int slot = gen_slot(2);
	int bg = actor && !g.kid_bg[actor] && CHANCE(50);
	long fl = 0;

	if (bg && slot < NSLOT && excl[F_MULTIWAIT] && object_waited(2, slot))
		bg = 0;
	s->a[0] = slot;
	s->a[1] = CHANCE(50) ? 0 : PICK(1, 2, 3, -1, -2, -3, 1000, -1000);
	s->a[2] = CHANCE(90) ? PICK(100, 100, 8192, 4, 16, 0)
			     : (excl[F_ERRORDER] ? 100 : -1);
	if (!bg && CHANCE(50))
		fl |= IPC_NOWAIT;
	if (CHANCE(25))
		fl |= MSG_NOERROR;
	if (CHANCE(20))
		fl |= MSG_EXCEPT;
	if (!excl[F_MSGCOPY] && CHANCE(5))
		fl |= MSG_COPY;
	s->a[3] = fl;
	s->a[4] = bg ? 0 : gen_ptr();
	s->a[5] = bg;
	s->n = 6;
	if (bg && slot < NSLOT) {
		g.kid_bg[actor] = 2;
		g.kid_bgslot[actor] = slot;
	}
}

static void
gen_msgctl(int actor)
{
	struct step *s = add(actor, OP_MSGCTL);
	long cmd;

	for (;;) {
		cmd = PICK(IPC_STAT, IPC_STAT, IPC_STAT, IPC_SET, IPC_RMID,
			   IPC_INFO, MSG_INFO, MSG_STAT, MSG_STAT_ANY, 99);
		if ((cmd == IPC_INFO || cmd == MSG_INFO || cmd == MSG_STAT ||
		     cmd == MSG_STAT_ANY) &&
		    excl[F_SEMSTAT])
			continue;
		if (cmd == IPC_RMID && !CHANCE(40))
			continue;
		if (cmd == 99 && excl[F_ERRORDER])
			continue;
		break;
	}
	s->a[0] = gen_slot(2);
	s->a[1] = cmd;
	s->a[2] = gen_ptr();
	s->n = 3;
	if (cmd == MSG_STAT || cmd == MSG_STAT_ANY)
		s->a[0] = PICK(0, 0, 1, 2, 3, -1, 40000);
	if (cmd == IPC_SET) {
		s->a[3] = PICK(16384, 16384, 8192, 4000, 100, 0, 16385);
		s->a[4] = mode == 'c' && CHANCE(20) ? PICK(65534, 1000) : 0;
		s->a[5] = mode == 'c' && CHANCE(20) ? PICK(65534, 1000) : 0;
		s->a[6] = gen_mode();
		s->n = 7;
	}
}

static void
gen_kidstep(int k)
{
	struct step *s;

	if (!g.kid_alive[k]) {
		s = add(0, OP_SPAWN);
		s->a[0] = k;
		s->a[1] = g.kid_uid[k];
		s->n = 2;
		g.kid_alive[k] = 1;
		return;
	}
	if (g.kid_stopped[k]) {
		if (CHANCE(50)) {
			s = add(0, OP_STOP);
			s->a[0] = k;
			s->a[1] = 1;
			s->n = 2;
			g.kid_stopped[k] = 0;
		}
		return;
	}
	if (g.kid_bg[k]) {
		/* It waits: signal it, reap it, or leave it for now. */
		if (!excl[F_SIGSTOP] && CHANCE(12)) {
			s = add(0, OP_STOP);
			s->a[0] = k;
			s->a[1] = 0;
			s->n = 2;
			g.kid_stopped[k] = 1;
			return;
		}
		if (!excl[F_SIG] && CHANCE(25)) {
			s = add(0, OP_SIG);
			s->a[0] = k;
			s->n = 1;
			g.kid_bg[k] = 0;
			return;
		}
		if (!excl[F_KILLWAIT] && CHANCE(15)) {
			s = add(0, OP_REAP);
			s->a[0] = k;
			s->a[1] = 1;
			s->n = 2;
			g.kid_alive[k] = 0;
			g.kid_bg[k] = 0;
			return;
		}
		/* Perhaps it was released: a step for it settles first. */
		if (!CHANCE(40))
			return;
		g.kid_bg[k] = 0;
	}
	if (CHANCE(6)) {
		s = add(0, OP_REAP);
		s->a[0] = k;
		s->a[1] = CHANCE(50);
		s->n = 2;
		g.kid_alive[k] = 0;
		return;
	}
	switch (rnd() % 10) {
	case 0:
		gen_semget(k);
		break;
	case 1:
		gen_msgget(k);
		break;
	case 2:
	case 3:
	case 4:
		gen_semop(k);
		break;
	case 5:
		gen_semctl(k);
		break;
	case 6:
	case 7:
		gen_msgrcv(k);
		break;
	case 8:
		gen_msgsnd(k);
		break;
	default:
		gen_msgctl(k);
		break;
	}
}

/* gen: the program of one seed, nsteps steps (spawns count). */
static void
gen(uint64_t seed, int nsteps)
{
	int i, k;

	rng = seed * 0x2545f4914f6cdd1dULL + (uint64_t)mode;
	memset(&g, 0, sizeof(g));
	nprog = 0;
	for (k = 1; k <= NKID; k++)
		g.kid_uid[k] = mode == 'c' ? (int)PICK(0, 65534, 65534, 1000) : 0;
	/* Something to work on first. */
	gen_semget(0);
	prog[nprog - 1].a[2] = 2;
	prog[nprog - 1].a[3] = IPC_CREAT | 0600;
	g.nsems[prog[nprog - 1].a[0]] = 2;
	gen_msgget(0);
	prog[nprog - 1].a[2] = IPC_CREAT | 0600;
	g.msq[prog[nprog - 1].a[0]] = 1;
	while (nprog < nsteps && nprog < MAXSTEP - 8) {
		if (mode != 'a' && CHANCE(45)) {
			gen_kidstep(1 + (int)(rnd() % NKID));
			continue;
		}
		/* Every waiter done with, now and then, before the end. */
		switch (rnd() % 12) {
		case 0:
			gen_semget(0);
			break;
		case 1:
			gen_msgget(0);
			break;
		case 2:
		case 3:
		case 4:
			gen_semop(0);
			break;
		case 5:
		case 6:
			gen_semctl(0);
			break;
		case 7:
		case 8:
			gen_msgsnd(0);
			break;
		case 9:
		case 10:
			gen_msgrcv(0);
			break;
		default:
			gen_msgctl(0);
			break;
		}
	}
	(void)i;
}

/* ---- step scripts ----------------------------------------------------- */

static void
print_prog(FILE *f)
{
	fprintf(f, "mode %c\n", mode);
	for (int i = 0; i < nprog; i++) {
		fprintf(f, "%d %s", prog[i].actor, op_names[prog[i].op]);
		for (int j = 0; j < prog[i].n; j++)
			fprintf(f, " %ld", prog[i].a[j]);
		fputc('\n', f);
	}
}

static int
read_prog(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		return -1;
	}
	nprog = 0;
	while (fgets(line, sizeof(line), f) && nprog < MAXSTEP) {
		char name[32], *p = line, *e;
		struct step *s;
		int actor, off, o;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "mode %c", &mode) == 1)
			continue;
		if (sscanf(line, "%d %31s%n", &actor, name, &off) != 2)
			goto bad;
		for (o = 0; o < OP_N; o++)
			if (strcmp(name, op_names[o]) == 0)
				break;
		if (o == OP_N || actor < 0 || actor > NKID)
			goto bad;
		s = add(actor, o);
		p = line + off;
		while (s->n < MAXA) {
			long v = strtol(p, &e, 0);

			if (e == p)
				break;
			s->a[s->n++] = v;
			p = e;
		}
		continue;
	bad:
		fprintf(stderr, "%s: bad line: %s", path, line);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* ---- normalisation ---------------------------------------------------- */

#define MAXIDS 256
static long semids[MAXIDS], msqids[MAXIDS];
static int nsemids, nmsqids;
static pid_t pids[64];
static int npids;

static int
ordinal(long *v, int *n, long id)
{
	for (int i = 0; i < *n; i++)
		if (v[i] == id)
			return i + 1;
	if (*n < MAXIDS)
		v[(*n)++] = id;
	return *n;
}

/*
 * emit: print a line, replacing the tokens @s<id>@, @q<id>@ and @p<pid>@
 * (written by whoever ran the call, parent or child) by ordinals.
 */
static void
emit(const char *fmt, ...)
{
	char raw[4096], out[8192], *o = out;
	const char *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	for (p = raw; *p && o < out + sizeof(out) - 64;) {
		char kind;
		long v;
		char *e;

		if (p[0] != '@' || !strchr("sqp", p[1])) {
			*o++ = *p++;
			continue;
		}
		kind = p[1];
		v = strtol(p + 2, &e, 10);
		if (*e != '@') {
			*o++ = *p++;
			continue;
		}
		p = e + 1;
		if (kind == 's')
			o += sprintf(o, "sid#%d", ordinal(semids, &nsemids, v));
		else if (kind == 'q')
			o += sprintf(o, "qid#%d", ordinal(msqids, &nmsqids, v));
		else if (v == 0)
			o += sprintf(o, "0");
		else {
			int i;

			for (i = 0; i < npids; i++)
				if (pids[i] == (pid_t)v)
					break;
			if (i == 0 && npids)
				o += sprintf(o, "P");
			else if (i < npids)
				o += sprintf(o, "pid#%d", i);
			else
				o += sprintf(o, "pid?");
		}
	}
	*o = 0;
	puts(out);
	fflush(stdout);
}

/* ---- formatting helpers (any process) ---------------------------------- */

struct buf {
	char s[3000];
	size_t n;
};

static void
bp(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->n >= sizeof(b->s) - 1)
		return;
	va_start(ap, fmt);
	b->n += (size_t)vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	if (b->n >= sizeof(b->s))
		b->n = sizeof(b->s) - 1;
}

static const char *
ename(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static void
bp_ret(struct buf *b, long r, int e)
{
	if (r == -1)
		bp(b, "-1 %s", ename(e));
	else
		bp(b, "%ld", r);
}

static void
bp_flags(struct buf *b, long f, int msg)
{
	const char *sep = "";
	long known = IPC_CREAT | IPC_EXCL | IPC_NOWAIT;

	if (f & IPC_CREAT)
		bp(b, "%sCREAT", sep), sep = "|";
	if (f & IPC_EXCL)
		bp(b, "%sEXCL", sep), sep = "|";
	if (f & IPC_NOWAIT)
		bp(b, "%sNOWAIT", sep), sep = "|";
	if (!msg && (f & SEM_UNDO))
		bp(b, "%sUNDO", sep), sep = "|";
	if (msg && (f & MSG_NOERROR))
		bp(b, "%sNOERROR", sep), sep = "|";
	if (msg && (f & MSG_EXCEPT))
		bp(b, "%sEXCEPT", sep), sep = "|";
	if (msg && (f & MSG_COPY))
		bp(b, "%sCOPY", sep), sep = "|";
	known |= msg ? MSG_NOERROR | MSG_EXCEPT | MSG_COPY : SEM_UNDO;
	f &= ~known;
	if (f)
		bp(b, "%s0%lo", sep, f);
	else if (!*sep)
		bp(b, "0");
}

static const char *
ptrname(long k)
{
	return k == 1 ? " ptr=NULL" : k == 2 ? " ptr=1" : "";
}

static void *
ptrof(long k, void *good)
{
	return k == 1 ? NULL : k == 2 ? BADPTR : good;
}

static const char *
tz(long t)
{
	return t ? "nz" : "0";
}

static void
bp_perm(struct buf *b, const struct ipc_perm *p)
{
	bp(b, " key=%#x uid=%u gid=%u cuid=%u cgid=%u mode=%#o", (int)p->__key,
	   p->uid, p->gid, p->cuid, p->cgid, p->mode);
}

static const char *const cmd_names[] = {
	[IPC_RMID] = "IPC_RMID", [IPC_SET] = "IPC_SET",
	[IPC_STAT] = "IPC_STAT", [IPC_INFO] = "IPC_INFO",
	[GETPID] = "GETPID",	 [GETVAL] = "GETVAL",
	[GETALL] = "GETALL",	 [GETNCNT] = "GETNCNT",
	[GETZCNT] = "GETZCNT",	 [SETVAL] = "SETVAL",
	[SETALL] = "SETALL",	 [SEM_STAT] = "SEM_STAT",
	[SEM_INFO] = "SEM_INFO", [SEM_STAT_ANY] = "SEM_STAT_ANY",
};

static const char *
cmdname(long cmd, int msg)
{
	static char b[16];

	if (msg && cmd == MSG_STAT)
		return "MSG_STAT";
	if (msg && cmd == MSG_INFO)
		return "MSG_INFO";
	if (msg && cmd == MSG_STAT_ANY)
		return "MSG_STAT_ANY";
	if (cmd >= 0 && cmd < (long)(sizeof(cmd_names) / sizeof(*cmd_names)) &&
	    cmd_names[cmd])
		return cmd_names[cmd];
	snprintf(b, sizeof(b), "cmd%ld", cmd);
	return b;
}

/* ---- running a step ----------------------------------------------------- */

static volatile sig_atomic_t got_alrm, got_usr1;

static void
on_alrm(int sig)
{
	got_alrm = 1;
}

static void
on_usr1(int sig)
{
	got_usr1 = 1;
}

/* guard: a call that may block gets EINTR after GUARD_MS. */
static void
guard(int on)
{
	struct itimerval it = {{0, 0}, {0, on ? GUARD_MS * 1000 : 0}};

	setitimer(ITIMER_REAL, &it, NULL);
}

static unsigned short vals[32768];
static struct sembuf sops[1024];
static struct {
	long mtype;
	char mtext[16384];
} mbuf;

/* text_of: the bytes msgsnd sends for step seq. */
static void
text_of(char *t, long n, int seq)
{
	for (long i = 0; i < n; i++)
		t[i] = i < 4 ? "0123456789"[(seq / (i == 0 ? 1000 : i == 1 ? 100 : i == 2 ? 10 : 1)) % 10]
			     : (char)('a' + (i % 26));
}

static void
bp_text(struct buf *b, const char *t, long n)
{
	unsigned sum = 0;

	for (long i = 0; i < n; i++)
		sum = sum * 31 + (unsigned char)t[i];
	bp(b, " text=%.*s%s sum=%08x", (int)(n < 8 ? n : 8), t,
	   n > 8 ? "..." : "", sum);
}

/*
 * desc: the call of step s on id, without its result, with id tokens.
 */
static void
desc(struct buf *b, const struct step *s, long id)
{
	const long *a = s->a;
	int idtok = !(s->op == OP_SEMCTL && (a[1] == SEM_STAT ||
					     a[1] == SEM_STAT_ANY)) &&
		    !(s->op == OP_MSGCTL &&
		      (a[1] == MSG_STAT || a[1] == MSG_STAT_ANY));
	char idb[32];

	if (a[0] == SLOT_M1)
		snprintf(idb, sizeof(idb), "-1");
	else if (a[0] == SLOT_BAD || id == BOGUS_ID)
		snprintf(idb, sizeof(idb), "badid");
	else if (s->op == OP_SEMOP || s->op == OP_SEMCTL)
		snprintf(idb, sizeof(idb), "@s%ld@", id);
	else
		snprintf(idb, sizeof(idb), "@q%ld@", id);
	if (!idtok)
		snprintf(idb, sizeof(idb), "idx=%ld", a[0]);
	switch (s->op) {
	case OP_SEMGET:
		bp(b, "semget key=%ld nsems=%ld flg=", a[1], a[2]);
		bp_flags(b, a[3], 0);
		break;
	case OP_MSGGET:
		bp(b, "msgget key=%ld flg=", a[1]);
		bp_flags(b, a[2], 0);
		break;
	case OP_SEMOP:
		bp(b, "%s %s", a[3] < 0 ? "semop" : "semtimedop", idb);
		for (int i = 0; i < a[5] && i < MAXSOPS; i++) {
			bp(b, " [%ld,%+ld,", a[6 + 3 * i], a[7 + 3 * i]);
			bp_flags(b, a[8 + 3 * i], 0);
			bp(b, "]");
		}
		if (a[2])
			bp(b, " nsops=%s",
			   a[2] == 1 ? "0" : a[2] == 2 ? "SEMOPM" :
			   a[2] == 3 ? "SEMOPM+1" : "-1");
		if (a[3] >= 0)
			bp(b, " tmo=%s",
			   (const char *[]){"NULL", "0", "2ms", "nsec-1",
					    "sec-1", "nsec1e9", "badptr"}
				   [a[3] < 7 ? a[3] : 0]);
		bp(b, "%s%s", ptrname(a[1]), a[4] ? " bg" : "");
		break;
	case OP_SEMCTL:
		bp(b, "semctl %s %s", idb, cmdname(a[1], 0));
		switch (a[1]) {
		case GETVAL:
		case GETPID:
		case GETNCNT:
		case GETZCNT:
			bp(b, " semnum=%ld", a[2]);
			break;
		case SETVAL:
			bp(b, " semnum=%ld val=%ld", a[2], a[4]);
			break;
		case SETALL:
			bp(b, " vals=");
			for (int i = 0; i < a[4] && i < 4; i++)
				bp(b, "%s%ld", i ? "," : "", a[5 + i]);
			break;
		case IPC_SET:
			bp(b, " uid=%ld gid=%ld mode=%#lo", a[4], a[5], a[6]);
			break;
		}
		bp(b, "%s", ptrname(a[3]));
		break;
	case OP_MSGSND:
		bp(b, "msgsnd %s mtype=%ld sz=%ld flg=", idb, a[1], a[2]);
		bp_flags(b, a[3], 1);
		bp(b, "%s%s", ptrname(a[4]), a[5] ? " bg" : "");
		break;
	case OP_MSGRCV:
		bp(b, "msgrcv %s typ=%ld sz=%ld flg=", idb, a[1], a[2]);
		bp_flags(b, a[3], 1);
		bp(b, "%s%s", ptrname(a[4]), a[5] ? " bg" : "");
		break;
	case OP_MSGCTL:
		bp(b, "msgctl %s %s", idb, cmdname(a[1], 1));
		if (a[1] == IPC_SET)
			bp(b, " qbytes=%ld uid=%ld gid=%ld mode=%#lo", a[3],
			   a[4], a[5], a[6]);
		bp(b, "%s", ptrname(a[2]));
		break;
	}
}

static long
keyof(long k)
{
	return k == 0 ? IPC_PRIVATE : (long)KEYBASE + k;
}

static void
bp_seminfo(struct buf *b, const struct seminfo *si)
{
	bp(b, " semmap=%d semmni=%d semmns=%d semmnu=%d semmsl=%d semopm=%d"
	      " semume=%d semusz=%d semvmx=%d semaem=%d",
	   si->semmap, si->semmni, si->semmns, si->semmnu, si->semmsl,
	   si->semopm, si->semume, si->semusz, si->semvmx, si->semaem);
}

static void
bp_msginfo(struct buf *b, const struct msginfo *mi)
{
	bp(b, " msgpool=%d msgmap=%d msgmax=%d msgmnb=%d msgmni=%d msgssz=%d"
	      " msgtql=%d msgseg=%d",
	   mi->msgpool, mi->msgmap, mi->msgmax, mi->msgmnb, mi->msgmni,
	   mi->msgssz, mi->msgtql, mi->msgseg);
}

/*
 * run: do step s on id in this process, and write its result (with id
 * and pid tokens) into b. Returns the call's return value.
 */
static long
run(const struct step *s, long id, int seq, struct buf *b)
{
	const long *a = s->a;
	long r = -1;
	int e = 0;

	switch (s->op) {
	case OP_SEMGET:
		errno = 0;
		r = semget((key_t)keyof(a[1]), (int)a[2], (int)a[3]);
		e = errno;
		if (r >= 0)
			bp(b, "@s%ld@", r);
		else
			bp_ret(b, r, e);
		return r;
	case OP_MSGGET:
		errno = 0;
		r = msgget((key_t)keyof(a[1]), (int)a[2]);
		e = errno;
		if (r >= 0)
			bp(b, "@q%ld@", r);
		else
			bp_ret(b, r, e);
		return r;
	case OP_SEMOP: {
		size_t n = (size_t)a[5];
		int i, may_block = 0;
		struct timespec ts, *tp = NULL;

		for (i = 0; i < semopm && i < 1024; i++)
			sops[i] = (struct sembuf){0, 0, IPC_NOWAIT};
		for (i = 0; i < a[5] && i < MAXSOPS; i++) {
			sops[i].sem_num = (unsigned short)a[6 + 3 * i];
			sops[i].sem_op = (short)a[7 + 3 * i];
			sops[i].sem_flg = (short)a[8 + 3 * i];
			if (!(sops[i].sem_flg & IPC_NOWAIT))
				may_block = 1;
		}
		if (a[2] == 1)
			n = 0;
		else if (a[2] == 2)
			n = (size_t)semopm;
		else if (a[2] == 3)
			n = (size_t)semopm + 1;
		else if (a[2] == 4)
			n = (size_t)-1;
		switch (a[3]) {
		case 1:
			ts = (struct timespec){0, 0};
			tp = &ts;
			break;
		case 2:
			ts = (struct timespec){0, 2000000};
			tp = &ts;
			break;
		case 3:
			ts = (struct timespec){0, -1};
			tp = &ts;
			break;
		case 4:
			ts = (struct timespec){-1, 0};
			tp = &ts;
			break;
		case 5:
			ts = (struct timespec){0, 1000000000};
			tp = &ts;
			break;
		case 6:
			tp = BADPTR;
			break;
		}
		if (may_block && !a[4])
			guard(1);
		errno = 0;
		if (a[3] < 0)
			r = semop((int)id, ptrof(a[1], sops), n);
		else
			r = semtimedop((int)id, ptrof(a[1], sops), n, tp);
		e = errno;
		if (may_block && !a[4])
			guard(0);
		bp_ret(b, r, e);
		return r;
	}
	case OP_SEMCTL: {
		struct semid_ds sd;
		struct seminfo si;
		union semun u;
		long cmd = a[1];
		int semnum = (int)a[2], i;

		memset(&sd, 0, sizeof(sd));
		memset(&si, 0, sizeof(si));
		u.buf = ptrof(a[3], &sd);
		switch (cmd) {
		case SETVAL:
			u.val = (int)a[4];
			break;
		case GETALL:
			for (i = 0; i < 32768; i++)
				vals[i] = 0xffff;
			u.array = ptrof(a[3], vals);
			break;
		case SETALL:
			memset(vals, 0, sizeof(vals));
			for (i = 0; i < a[4] && i < 4; i++)
				vals[i] = (unsigned short)a[5 + i];
			u.array = ptrof(a[3], vals);
			break;
		case IPC_INFO:
		case SEM_INFO:
			u.__buf = ptrof(a[3], &si);
			break;
		case IPC_SET:
			sd.sem_perm.uid = (uid_t)a[4];
			sd.sem_perm.gid = (gid_t)a[5];
			sd.sem_perm.mode = (unsigned short)a[6];
			break;
		}
		errno = 0;
		switch (cmd) {
		case IPC_RMID:
		case GETVAL:
		case GETPID:
		case GETNCNT:
		case GETZCNT:
			r = semctl((int)id, semnum, (int)cmd);
			break;
		case SEM_STAT:
		case SEM_STAT_ANY:
			r = semctl((int)a[0], 0, (int)cmd, u);
			break;
		default:
			r = semctl((int)id, semnum, (int)cmd, u);
			break;
		}
		e = errno;
		if (r != -1 && (cmd == SEM_STAT || cmd == SEM_STAT_ANY))
			bp(b, "@s%ld@", r);
		else if (r != -1 && cmd == GETPID)
			bp(b, "@p%ld@", r);
		else if (r != -1 && (cmd == GETNCNT || cmd == GETZCNT) &&
			 excl[F_NCNT])
			bp(b, "?");
		else
			bp_ret(b, r, e);
		if (r == -1 || a[3])
			return r;
		if (cmd == IPC_STAT || cmd == SEM_STAT ||
		    cmd == SEM_STAT_ANY) {
			bp_perm(b, &sd.sem_perm);
			bp(b, " nsems=%lu otime=%s ctime=%s",
			   (unsigned long)sd.sem_nsems,
			   excl[F_OTIME] ? "?" : tz(sd.sem_otime),
			   tz(sd.sem_ctime));
		} else if (cmd == GETALL) {
			bp(b, " [");
			for (i = 0; i < 32768 && vals[i] != 0xffff; i++)
				if (i < 8)
					bp(b, "%s%u", i ? "," : "", vals[i]);
			bp(b, "%s] n=%d", i > 8 ? ",..." : "", i);
		} else if (cmd == IPC_INFO || cmd == SEM_INFO) {
			bp_seminfo(b, &si);
		}
		return r;
	}
	case OP_MSGSND: {
		long sz = a[2];
		int may_block = !(a[3] & IPC_NOWAIT) && !a[5];

		mbuf.mtype = a[1];
		if (sz > 0 && sz <= (long)sizeof(mbuf.mtext))
			text_of(mbuf.mtext, sz, seq);
		if (may_block)
			guard(1);
		errno = 0;
		r = msgsnd((int)id, ptrof(a[4], &mbuf), (size_t)sz, (int)a[3]);
		e = errno;
		if (may_block)
			guard(0);
		bp_ret(b, r, e);
		return r;
	}
	case OP_MSGRCV: {
		long sz = a[2];
		int may_block = !(a[3] & IPC_NOWAIT) && !a[5];

		memset(&mbuf, 0, sizeof(mbuf));
		if (may_block)
			guard(1);
		errno = 0;
		r = msgrcv((int)id, ptrof(a[4], &mbuf), (size_t)sz, a[1],
			   (int)a[3]);
		e = errno;
		if (may_block)
			guard(0);
		bp_ret(b, r, e);
		if (r >= 0) {
			bp(b, " mtype=%ld", mbuf.mtype);
			bp_text(b, mbuf.mtext, r);
		}
		return r;
	}
	case OP_MSGCTL: {
		struct msqid_ds md;
		struct msginfo mi;
		long cmd = a[1];
		void *p;

		memset(&md, 0, sizeof(md));
		memset(&mi, 0, sizeof(mi));
		p = (cmd == IPC_INFO || cmd == MSG_INFO) ? (void *)&mi
							 : (void *)&md;
		if (cmd == IPC_SET) {
			md.msg_qbytes = (msglen_t)a[3];
			md.msg_perm.uid = (uid_t)a[4];
			md.msg_perm.gid = (gid_t)a[5];
			md.msg_perm.mode = (unsigned short)a[6];
		}
		errno = 0;
		if (cmd == MSG_STAT || cmd == MSG_STAT_ANY)
			r = msgctl((int)a[0], (int)cmd, ptrof(a[2], p));
		else
			r = msgctl((int)id, (int)cmd, ptrof(a[2], p));
		e = errno;
		if (r != -1 && (cmd == MSG_STAT || cmd == MSG_STAT_ANY))
			bp(b, "@q%ld@", r);
		else
			bp_ret(b, r, e);
		if (r == -1 || a[2])
			return r;
		if (cmd == IPC_STAT || cmd == MSG_STAT ||
		    cmd == MSG_STAT_ANY) {
			bp_perm(b, &md.msg_perm);
			bp(b, " qnum=%lu qbytes=%lu cbytes=%lu",
			   (unsigned long)md.msg_qnum,
			   (unsigned long)md.msg_qbytes,
			   (unsigned long)md.__msg_cbytes);
			if (excl[F_LSPID])
				bp(b, " lspid=?");
			else
				bp(b, " lspid=@p%d@", (int)md.msg_lspid);
			bp(b, " lrpid=@p%d@ stime=%s rtime=%s ctime=%s",
			   (int)md.msg_lrpid, tz(md.msg_stime),
			   tz(md.msg_rtime), tz(md.msg_ctime));
		} else if (cmd == IPC_INFO || cmd == MSG_INFO) {
			bp_msginfo(b, &mi);
		}
		return r;
	}
	}
	return r;
}

/* ---- children ----------------------------------------------------------- */

struct cmd {
	struct step st;
	long id;
	int seq;
	int quit;
};

struct reply {
	long ret;
	char txt[3000];
};

static struct kid {
	pid_t pid;
	int cfd, rfd; /* command pipe (write end), reply pipe (read end) */
	int bg;	      /* a call outstanding */
	int kind;     /* its object kind, 1 sem 2 msg */
	long id;
	int seq;
	char what[3000]; /* its description */
	int uid;
	int stopped;
} kids[NKID + 1];

static int
readall(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void
kid_main(int cfd, int rfd, int uid)
{
	struct cmd c;
	struct reply rp;

	if (uid) {
		gid_t gid = uid == 65534 ? 65534 : (gid_t)uid;

		if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
		    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid)) {
			perror("difftest: setresuid");
			_exit(3);
		}
	}
	for (;;) {
		struct buf b = {.n = 0};

		if (readall(cfd, &c, sizeof(c)))
			_exit(0);
		if (c.quit)
			_exit(0);
		rp.ret = run(&c.st, c.id, c.seq, &b);
		memcpy(rp.txt, b.s, b.n + 1);
		if (write(rfd, &rp, sizeof(rp)) != sizeof(rp))
			_exit(4);
	}
}

static int
spawn(int k, int uid)
{
	int c[2], r[2];
	pid_t p;

	if (pipe(c) || pipe(r))
		return -1;
	fflush(stdout);
	p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		for (int i = 1; i <= NKID; i++)
			if (kids[i].pid) {
				close(kids[i].cfd);
				close(kids[i].rfd);
			}
		close(c[1]);
		close(r[0]);
		kid_main(c[0], r[1], uid);
	}
	close(c[0]);
	close(r[1]);
	kids[k] = (struct kid){.pid = p, .cfd = c[1], .rfd = r[0], .uid = uid};
	if (npids < 64)
		pids[npids++] = p;
	return 0;
}

/* blocked: pid sleeps in a semaphore, message or futex wait. */
static int
blocked(pid_t pid)
{
	char path[64], st[512], w[128] = "";
	FILE *f;
	char *p;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	ok = fgets(st, sizeof(st), f) != NULL;
	fclose(f);
	if (!ok || !(p = strrchr(st, ')')) || p[1] != ' ' || p[2] != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	ok = fgets(w, sizeof(w), f) != NULL;
	fclose(f);
	return ok && (strstr(w, "semtimedop") || strstr(w, "do_msgrcv") ||
		      strstr(w, "do_msgsnd") || strstr(w, "futex") ||
		      strstr(w, "nanosleep"));
}

static int
readable(int fd, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	return poll(&pf, 1, ms) > 0;
}

/*
 * settle_one: wait until kid k has answered (1, the answer in rp) or
 * sleeps in an IPC wait (0), at most 3 s (-1: neither; -2: it died).
 */
static int
settle_one(int k, struct reply *rp)
{
	int seen = 0;

	for (int i = 0; i < 3000; i++) {
		if (readable(kids[k].rfd, 0)) {
			if (readall(kids[k].rfd, rp, sizeof(*rp)))
				return -2;
			return 1;
		}
		if (blocked(kids[k].pid)) {
			if (++seen >= 3)
				return 0;
		} else {
			seen = 0;
		}
		usleep(1000);
	}
	return -1;
}

static void
kid_answered(int k, const struct reply *rp, const char *how)
{
	emit("  C%d %s: %s -> %s", k, how, kids[k].what, rp->txt);
	kids[k].bg = 0;
}

static void
kid_lost(int k, int r)
{
	emit("  C%d %s: %s", k, r == -2 ? "DIED" : "TIMEOUT", kids[k].what);
	kids[k].bg = 0;
	kill(kids[k].pid, SIGKILL);
	waitpid(kids[k].pid, NULL, 0);
	close(kids[k].cfd);
	close(kids[k].rfd);
	kids[k].pid = 0;
}

/* settle: every child with a call outstanding, in child order. */
static void
settle(void)
{
	struct reply rp;

	for (int k = 1; k <= NKID; k++) {
		int r;

		if (!kids[k].pid || !kids[k].bg || kids[k].stopped)
			continue;
		r = settle_one(k, &rp);
		if (r == 1)
			kid_answered(k, &rp, "woke");
		else if (r < 0)
			kid_lost(k, r);
	}
}

/*
 * reap: end kid k (how 1: SIGKILL, 0: it exits) and wait for it. A kid
 * still waiting cannot read its exit command: it is settled first, and
 * killed if it still waits. Returns how it ended.
 */
static int
reap(int k, int how)
{
	int st = 0;
	struct cmd c = {.quit = 1};
	struct reply rp;

	if (kids[k].stopped && !how) {
		kill(kids[k].pid, SIGCONT);
		kids[k].stopped = 0;
	}
	if (kids[k].bg && !how) {
		st = settle_one(k, &rp);
		if (st == 1)
			kid_answered(k, &rp, "woke");
		else
			how = 1;
		st = 0;
	}
	if (how) {
		kill(kids[k].pid, SIGKILL);
	} else if (write(kids[k].cfd, &c, sizeof(c)) != sizeof(c)) {
		kill(kids[k].pid, SIGKILL);
	}
	waitpid(kids[k].pid, &st, 0);
	close(kids[k].cfd);
	close(kids[k].rfd);
	kids[k].pid = 0;
	kids[k].bg = 0;
	kids[k].stopped = 0;
	return how;
}

/* ---- the parent ----------------------------------------------------------- */

static long semslot[NSLOT], msqslot[NSLOT];

static long
resolve(const struct step *s)
{
	long sl = s->a[0];
	int sem = s->op == OP_SEMOP || s->op == OP_SEMCTL;

	if (s->op == OP_SPAWN || s->op == OP_REAP || s->op == OP_SIG ||
	    s->op == OP_STOP ||
	    s->op == OP_SEMGET || s->op == OP_MSGGET)
		return 0;
	if (sl == SLOT_M1)
		return -1;
	if (sl < 0 || sl >= NSLOT)
		return BOGUS_ID;
	return sem ? semslot[sl] : msqslot[sl];
}

/* Steps after which a waiter may have been released. */
static int
may_release(const struct step *s, long r)
{
	if (r == -1 && s->op != OP_REAP && s->op != OP_SIG)
		return 0;
	switch (s->op) {
	case OP_SEMOP:
	case OP_MSGSND:
	case OP_MSGRCV:
	case OP_REAP:
	case OP_SPAWN:
	case OP_SIG:
	case OP_STOP:
		return 1;
	case OP_SEMCTL:
		return s->a[1] == SETVAL || s->a[1] == SETALL ||
		       s->a[1] == IPC_RMID || s->a[1] == IPC_SET;
	case OP_MSGCTL:
		return s->a[1] == IPC_RMID || s->a[1] == IPC_SET;
	}
	return 0;
}

static void
do_step(const struct step *s, int seq)
{
	struct buf d = {.n = 0}, b = {.n = 0};
	struct reply rp;
	long id = resolve(s), r = 0;
	int k = s->actor;

	switch (s->op) {
	case OP_SPAWN:
	case OP_REAP:
	case OP_SIG:
	case OP_STOP:
		k = (int)s->a[0];
		if (k < 1 || k > NKID)
			return;
		if (s->op == OP_SPAWN) {
			if (kids[k].pid)
				emit("%d reap C%d %s (respawn)", seq, k,
				     reap(k, 0) ? "kill" : "exit");
			if (spawn(k, (int)s->a[1]))
				emit("%d spawn C%d FAILED", seq, k);
			else
				emit("%d spawn C%d uid=%ld", seq, k, s->a[1]);
			return;
		}
		if (!kids[k].pid) {
			emit("%d %s C%d: none", seq, op_names[s->op], k);
			return;
		}
		if (s->op == OP_STOP) {
			/* Only a settled waiter is stopped: no race with its
			 * answer. */
			if (!s->a[1] && kids[k].bg && !kids[k].stopped) {
				int st = settle_one(k, &rp);

				if (st == 1) {
					kid_answered(k, &rp, "woke");
				} else if (st < 0) {
					kid_lost(k, st);
					return;
				} else {
					kill(kids[k].pid, SIGSTOP);
					kids[k].stopped = 1;
				}
			} else if (s->a[1] && kids[k].stopped) {
				kill(kids[k].pid, SIGCONT);
				kids[k].stopped = 0;
			}
			emit("%d %s C%d%s", seq, s->a[1] ? "cont" : "stop", k,
			     kids[k].stopped ? " (stopped)" : "");
			settle();
			return;
		}
		if (s->op == OP_REAP) {
			int was = kids[k].bg, how = reap(k, (int)s->a[1]);

			emit("%d reap C%d %s%s", seq, k, how ? "kill" : "exit",
			     was && how ? " (was waiting)" : "");
			settle();
			return;
		}
		/* OP_SIG */
		if (kids[k].stopped) {
			kill(kids[k].pid, SIGCONT);
			kids[k].stopped = 0;
		}
		if (kids[k].bg) {
			int st = settle_one(k, &rp);

			if (st == 1) {
				kid_answered(k, &rp, "woke");
			} else if (st < 0) {
				kid_lost(k, st);
			} else {
				kill(kids[k].pid, SIGUSR1);
				if (readable(kids[k].rfd, 3000) &&
				    !readall(kids[k].rfd, &rp, sizeof(rp)))
					kid_answered(k, &rp, "signalled");
				else
					kid_lost(k, -1);
			}
		}
		emit("%d sig C%d", seq, k);
		settle();
		return;
	}
	desc(&d, s, id);
	if (k == 0) {
		r = run(s, id, seq, &b);
		emit("%d P %s -> %s", seq, d.s, b.s);
	} else {
		struct cmd c;
		int st;

		if (!kids[k].pid) {
			if (spawn(k, 0))
				return;
			emit("%d spawn C%d uid=0 (implied)", seq, k);
		}
		if (kids[k].stopped) {
			kill(kids[k].pid, SIGCONT);
			kids[k].stopped = 0;
			emit("%d cont C%d (implied)", seq, k);
		}
		if (kids[k].bg) {
			st = settle_one(k, &rp);
			if (st == 1)
				kid_answered(k, &rp, "woke");
			else if (st < 0)
				kid_lost(k, st);
			else
				emit("%d C%d busy: skipped", seq, k);
			if (st != 1)
				return;
		}
		memset(&c, 0, sizeof(c));
		c.st = *s;
		c.id = id;
		c.seq = seq;
		if (write(kids[k].cfd, &c, sizeof(c)) != sizeof(c)) {
			emit("%d C%d: write failed", seq, k);
			return;
		}
		st = (s->op == OP_SEMOP && s->a[4]) ||
		     ((s->op == OP_MSGSND || s->op == OP_MSGRCV) && s->a[5]);
		if (st) {
			kids[k].bg = 1;
			snprintf(kids[k].what, sizeof(kids[k].what), "%d %.2900s",
				 seq, d.s);
			st = settle_one(k, &rp);
			if (st == 1) {
				kids[k].bg = 0;
				r = rp.ret;
				emit("%d C%d %s -> %s", seq, k, d.s, rp.txt);
			} else if (st < 0) {
				kid_lost(k, st);
				return;
			} else {
				emit("%d C%d %s: blocks", seq, k, d.s);
				return;
			}
		} else {
			if (!readable(kids[k].rfd, 5000) ||
			    readall(kids[k].rfd, &rp, sizeof(rp))) {
				emit("%d C%d %s: NO ANSWER", seq, k, d.s);
				kid_lost(k, -1);
				return;
			}
			r = rp.ret;
			emit("%d C%d %s -> %s", seq, k, d.s, rp.txt);
		}
	}
	if (s->op == OP_SEMGET && r >= 0 && s->a[0] >= 0 && s->a[0] < NSLOT)
		semslot[s->a[0]] = r;
	if (s->op == OP_MSGGET && r >= 0 && s->a[0] >= 0 && s->a[0] < NSLOT)
		msqslot[s->a[0]] = r;
	if (may_release(s, r))
		settle();
}

/* cleanup: every child killed, every object we saw removed, silently. */
static void
cleanup(void)
{
	for (int k = 1; k <= NKID; k++)
		if (kids[k].pid)
			reap(k, 1);
	for (int i = 0; i < nsemids; i++)
		semctl((int)semids[i], 0, IPC_RMID);
	for (int i = 0; i < nmsqids; i++)
		msgctl((int)msqids[i], IPC_RMID, NULL);
	for (int i = 0; i < NSLOT; i++) {
		if (semslot[i] != BOGUS_ID)
			semctl((int)semslot[i], 0, IPC_RMID);
		if (msqslot[i] != BOGUS_ID)
			msgctl((int)msqslot[i], IPC_RMID, NULL);
	}
}

static void
run_prog(void)
{
	nsemids = nmsqids = 0;
	npids = 0;
	pids[npids++] = getpid();
	memset(kids, 0, sizeof(kids));
	for (int i = 0; i < NSLOT; i++)
		semslot[i] = msqslot[i] = BOGUS_ID;
	for (int i = 0; i < nprog; i++)
		do_step(&prog[i], i + 1);
	cleanup();
}

static void
read_limits(void)
{
	FILE *f = fopen("/proc/sys/kernel/sem", "r");
	int a, b, c;

	if (f) {
		if (fscanf(f, "%d %d %d", &a, &b, &c) == 3)
			semopm = c;
		fclose(f);
	}
	if ((f = fopen("/proc/sys/kernel/msgmax", "r"))) {
		if (fscanf(f, "%d", &a) == 1)
			msgmax = a;
		fclose(f);
	}
	if (semopm > 1000)
		semopm = 1000;
}

static int
set_excl(const char *list)
{
	char tmp[256], *t, *save = NULL;

	snprintf(tmp, sizeof(tmp), "%s", list);
	for (t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int f;

		for (f = 0; f < F_N; f++)
			if (strcmp(t, feat_names[f]) == 0)
				break;
		if (f == F_N) {
			fprintf(stderr, "difftest: unknown feature %s\n", t);
			return -1;
		}
		excl[f] = 1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: difftest [-m a|b|c] [-s SEED] [-c COUNT] [-n STEPS] "
		"[-x FEATURES] [-p | -r FILE]\nfeatures:");
	for (int f = 0; f < F_N; f++)
		fprintf(stderr, " %s", feat_names[f]);
	fputc('\n', stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned long seed = 1, count = 1;
	int nsteps = 40, print = 0, o;
	const char *script = NULL;

	while ((o = getopt(argc, argv, "m:s:c:n:x:pr:")) != -1) {
		switch (o) {
		case 'm':
			mode = optarg[0];
			if (mode != 'a' && mode != 'b' && mode != 'c')
				usage();
			break;
		case 's':
			seed = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			count = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			nsteps = atoi(optarg);
			break;
		case 'x':
			if (set_excl(optarg))
				usage();
			break;
		case 'p':
			print = 1;
			break;
		case 'r':
			script = optarg;
			break;
		default:
			usage();
		}
	}
	if (nsteps < 2 || nsteps > MAXSTEP - 8)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_limits();
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	if (print) {
		gen(seed, nsteps);
		print_prog(stdout);
		return 0;
	}
	if (script) {
		if (read_prog(script))
			return 2;
		emit("script mode %c", mode);
		run_prog();
		emit("difftest: done");
		return 0;
	}
	for (unsigned long i = 0; i < count; i++) {
		gen(seed + i, nsteps);
		emit("seed %lu mode %c", seed + i, mode);
		run_prog();
	}
	emit("difftest: done");
	return 0;
}
