/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Semaphore arrays in shared memory.
 *
 * Layout (offsets from the mapping's base, all fixed-width):
 *
 *   struct prim_semset_shm  header: segment header, geometry, times; on
 *                           their own line `active` (the request being
 *                           completed), `astate` (its decision) and
 *                           `tickets` (FIFO order of waiters)
 *   struct prim_sem_shm     nsems of them, one cache line each: the
 *                           semaphore word and sempid
 *   struct prim_undo_shm    nprocs of them: owner identity, then nsems
 *                           adjustment words (SEM_UNDO, per process)
 *   struct prim_slot_shm    nslots of them: a thread inside a slow call
 *                           owns one; it holds its request, the request
 *                           word, and what it waits for (GETNCNT, FIFO)
 *
 * Every semaphore, adjustment and request word is 64 bits:
 *   bits  0-15 value (semval 0..32767, semadj as int16, or enum req_state)
 *   bit     16 SLEEPERS  someone may sleep on this word's futex
 *   bit     17 HELD      frozen by the active request
 *   bit     18 REMOVED   the set was removed
 *   bits 19-31 tag       low bits of the generation that holds it
 *   bits 32-63 version   +1 on every change: no ABA on any CAS
 * The futex is the low half (value and flags), so a sleeper sleeps only
 * while the value it saw is still there and SLEEPERS is still set.
 *
 * Protocol.
 * - Fast path: one operation without SEM_UNDO on a word with no SLEEPERS
 *   is one CAS that changes value and version. A process killed anywhere
 *   here either did the CAS or did not: nothing half done.
 * - Requests (several operations, SEM_UNDO, a blocked call, SETVAL,
 *   SETALL, reap): the caller claims a slot (CAS identity 0 -> its own),
 *   writes its request there and publishes it (request word IDLE ->
 *   PUBLISHED). From then on anyone may complete it, exactly once: the
 *   request word is the first word it freezes and turns DONE with the
 *   values. To complete a request one makes it the set's one active
 *   request (CAS on `active`: gen, slot); anyone who finds a HELD word, or
 *   wants to activate a request, first completes the active one
 *   ("helping"), so a process stopped or killed while its request is
 *   active delays nobody. Completing means: freeze (HELD) every word the
 *   request touches, decide from the frozen values and record the
 *   decision by CAS in `astate`, unfreeze each word to its new value
 *   (semaphores, adjustments, the request word last), then CAS `active`
 *   back to idle. Value and SEM_UNDO adjustment change in the same
 *   request: a process killed at any instruction leaves them consistent.
 * - Waiting, FIFO (SEM_8): a blocked caller takes a ticket, records in its
 *   slot the semaphore of its first blocking operation and the count it
 *   belongs to (ncnt/zcnt), sets SLEEPERS on that word and sleeps. An
 *   increment that finds SLEEPERS keeps the flag (a newcomer's decrement
 *   then queues instead of slipping in) and completes the waiters'
 *   requests in ticket order, as the kernel's update_queue does; woken
 *   waiters do the same, and each looks for itself at least once a second.
 *   Whoever finds nobody left waiting clears SLEEPERS.
 * - Death: prim_semset_reap(pid) withdraws the dead process's requests
 *   (completing one first if it is active), frees its slots (so it leaves
 *   the waiter counts), and applies its adjustments with one more request
 *   (clamped to 0..32767). Records are owned by an identity, pid and start
 *   time, so a reused pid is another process. Until the reap, a request
 *   the dead process left published may still be completed by a hand-off:
 *   its operation then happened, as in the kernel when the grant comes
 *   before the fatal signal (SEM_UNDO records it like any other).
 *   A process killed between claiming a slot and publishing leaves an
 *   idle slot the reap frees; killed between publishing and sleeping, a
 *   published request the reap withdraws.
 *
 * Memory ordering: every access to a shared word is a ck_pr load, store or
 * CAS; on the architectures ck supports these CAS are full barriers.
 * SEM_1: a request's content is written before its request word says
 *        PUBLISHED (store fence, then CAS); pairs with SEM_7.
 * SEM_4: every CAS a helper makes on a word expects the value it read
 *        before checking that its generation is still active (and, to
 *        freeze, undecided): completing the generation changes the word's
 *        version, so a late helper's CAS fails; no word is frozen after
 *        the decision nor unfrozen twice.
 * SEM_5: the header's geometry is read once at open, after the acquire of
 *        the segment magic (SEG_2), and re-checked on every use.
 * SEM_6: sempid is stored after the CAS that made the value (by CAS on
 *        version << 32 | pid, forward only), and before any wake-up, so a
 *        woken waiter's own operation, later, overwrites it.
 * SEM_7: a helper reads a request's content only once its request word is
 *        frozen by the helper's generation: the owner cannot withdraw or
 *        rewrite it meanwhile (its CAS expects the word unfrozen); pairs
 *        with SEM_1.
 * SEM_8: hand-off; see handoff().
 * SEM_9: reap; see prim_semset_reap().
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#include "prim/sem.h"
#include "prim_int.h"

#define SEM_LAYOUT_VERSION 2

#define W_VALUE 0xffffULL
#define W_SLEEPERS (1ULL << 16)
#define W_HELD (1ULL << 17)
#define W_REMOVED (1ULL << 18)
#define W_TAG_SHIFT 19
#define W_TAG_MASK (0x1fffULL << W_TAG_SHIFT)
#define W_VER_ONE (1ULL << 32)
#define W_LOW_MASK 0xffffffffULL

#define DEF_SEMOPM 500
#define DEF_NPROCS 32
#define DEF_NSLOTS 64
#define MAX_NSEMS 32000
#define MAX_SEMOPM 8191
#define MAX_NPROCS 4096
#define MAX_NSLOTS 4096

/* Spins before sleeping: long enough for a hand-off on another CPU. */
#define SPIN_LIMIT 4000

struct prim_sem_shm {
	uint64_t word;
	/*
	 * sempid: version << 32 | pid, the version being the word's after
	 * the operation. A store only moves forward (SEM_6), so the pid
	 * shown is that of the operation which made the current value, even
	 * when two operations' bookkeeping lands out of order.
	 */
	uint64_t pidv;
	uint8_t pad[48];
};
_Static_assert(sizeof(struct prim_sem_shm) == PRIM_CACHELINE,
	       "one semaphore per cache line");

struct prim_semset_shm {
	struct prim_seg_shm seg;
	/* Geometry, written at init, read-only afterwards. */
	uint32_t nsems, semopm, nprocs, nslots;
	uint64_t off_sems, off_undo, off_slots;
	uint32_t undo_size, slot_size, cap;
	uint32_t pad0;
	int64_t otime, ctime;
	uint8_t pad1[192 - 64 - 72];
	/*
	 * Own line. active: gen << 16 | (slot + 1) of the one request being
	 * completed, or gen << 16 when idle. astate: the decision of the last
	 * decided generation (ST()). tickets: FIFO order of waiters.
	 */
	uint64_t active;
	uint64_t astate;
	uint64_t tickets;
	uint8_t pad2[40];
};
_Static_assert(sizeof(struct prim_semset_shm) == 4 * PRIM_CACHELINE,
	       "set header is four cache lines");
_Static_assert(offsetof(struct prim_semset_shm, active) ==
		       3 * PRIM_CACHELINE,
	       "active word on its own line");

/*
 * The handle: private to the process, made by prim_semset_open. The
 * geometry is copied from the validated header once, so nothing a process
 * writes into the mapping later can make an index or offset point outside
 * it (STYLE: a corrupt segment gives an error, never a crash).
 */
struct prim_semset {
	struct prim_semset_shm *shm;
	uint32_t nsems, semopm, nprocs, nslots, cap;
	uint32_t undo_size, slot_size;
	uint64_t off_sems, off_undo, off_slots;
};

struct prim_undo_shm {
	uint64_t ident;	/* owner: pid | start << 32 (prim__ident), 0 if free */
	uint64_t adj[];	/* nsems words */
};

enum req_kind {
	REQ_OPS = 1,
	REQ_SETVAL,
	REQ_SETALL,
	REQ_REAP,
};

enum status {
	ST_NONE = 0,
	ST_DONE = 2,
	ST_BLOCK,
	ST_ERANGE,
	ST_EIDRM,
	ST_ABORT,	/* the request was not published (done or withdrawn) */
};

/*
 * Decision word: gen (32) << 32 | value (16) << 16 | index (13) << 3 |
 * status (3). For ST_BLOCK, index is the blocking operation and value the
 * frozen value of its semaphore.
 */
#define ST(gen, status, idx, val)                                       \
	((uint64_t)(uint32_t)(gen) << 32 | (uint64_t)(uint16_t)(val) << 16 | \
	 (uint64_t)(idx) << 3 | (uint64_t)(status))
#define ST_GEN(s) ((uint32_t)((s) >> 32))
#define ST_STATUS(s) ((unsigned)((s)&7))
#define ST_IDX(s) ((unsigned)(((s) >> 3) & 0x1fff))
#define ST_VAL(s) ((unsigned)(((s) >> 16) & 0xffff))

/* Value of a slot's request word. */
enum req_state {
	REQ_IDLE = 0,		/* its owner may write the request */
	REQ_PUBLISHED = 1,	/* anyone may complete it, once */
	REQ_DONE = 2,		/* completed; its owner resets it */
};

enum wait_kind {
	WAIT_NONE = 0,
	WAIT_N = 1,
	WAIT_Z = 2,
};

struct prim_slot_shm {
	uint64_t ident;		/* owner (prim__ident), 0 if free */
	uint64_t req;		/* request word: enum req_state, MCAS format */
	uint64_t ticket;	/* FIFO place while waiting */
	uint32_t wait_sem;	/* semaphore + 1 the owner sleeps on, or 0 */
	uint32_t wait_kind;	/* enum wait_kind */
	uint32_t nops;		/* REQ_OPS: operations; REQ_SETALL: nsems */
	uint32_t ndist;		/* REQ_OPS: distinct semaphores */
	uint32_t undo;		/* undo record + 1, or 0 */
	uint32_t arg;		/* SETVAL: semnum; REAP: pid */
	int32_t val;		/* SETVAL: value */
	uint32_t kind;		/* enum req_kind */
	uint32_t pad[2];
	/* Then cap operations, then cap distinct semaphore numbers. */
	struct prim_sembuf ops[];
};
_Static_assert(sizeof(struct prim_slot_shm) == 64, "slot header is a line");
_Static_assert(sizeof(struct prim_sembuf) == 6, "sembuf layout");

/* ---------------------------------------------------------------------
 * Geometry and validation
 */

static size_t
align_line(size_t n)
{
	return (n + PRIM_CACHELINE - 1) & ~(size_t)(PRIM_CACHELINE - 1);
}

struct geom {
	uint32_t nsems, semopm, nprocs, nslots, cap;
	size_t off_sems, off_undo, off_slots, undo_size, slot_size, size;
};

static int
geometry(const struct prim_semset_attr *a, struct geom *g)
{
	size_t n;

	if (a == NULL || a->nsems < 1 || a->nsems > MAX_NSEMS)
		return -EINVAL;
	g->nsems = a->nsems;
	g->semopm = a->semopm ? a->semopm : DEF_SEMOPM;
	g->nprocs = a->nprocs ? a->nprocs : DEF_NPROCS;
	g->nslots = a->nslots ? a->nslots : DEF_NSLOTS;
	if (g->semopm > MAX_SEMOPM || g->nprocs > MAX_NPROCS ||
	    g->nslots > MAX_NSLOTS)
		return -EINVAL;
	/* A slot holds up to semopm operations or nsems SETALL values. */
	g->cap = g->semopm > g->nsems ? g->semopm : g->nsems;
	g->off_sems = sizeof(struct prim_semset_shm);
	g->off_undo = g->off_sems + (size_t)g->nsems * sizeof(struct prim_sem_shm);
	g->undo_size = align_line(sizeof(struct prim_undo_shm) +
				  (size_t)g->nsems * sizeof(uint64_t));
	g->off_slots = g->off_undo + (size_t)g->nprocs * g->undo_size;
	n = sizeof(struct prim_slot_shm) +
	    (size_t)g->cap * sizeof(struct prim_sembuf) +
	    (size_t)g->cap * sizeof(uint16_t);
	g->slot_size = align_line(n);
	g->size = g->off_slots + (size_t)g->nslots * g->slot_size;
	return 0;
}

size_t
prim_semset_size(const struct prim_semset_attr *attr)
{
	struct geom g;

	return geometry(attr, &g) == 0 ? g.size : 0;
}

static struct prim_semset *
hdr(const struct prim_semset *set)
{
	return (struct prim_semset *)(uintptr_t)set;
}

static struct prim_sem_shm *
sem_at(const struct prim_semset *h, uint32_t i)
{
	return (struct prim_sem_shm *)((char *)h->shm + h->off_sems) + i;
}

static struct prim_undo_shm *
undo_at(const struct prim_semset *h, uint32_t i)
{
	return (struct prim_undo_shm *)((char *)h->shm + h->off_undo +
					(size_t)i * h->undo_size);
}

static struct prim_slot_shm *
slot_at(const struct prim_semset *h, uint32_t i)
{
	return (struct prim_slot_shm *)((char *)h->shm + h->off_slots +
					(size_t)i * h->slot_size);
}

static uint16_t *
slot_dist(const struct prim_semset *h, struct prim_slot_shm *s)
{
	return (uint16_t *)(s->ops + h->cap);
}

int
prim_semset_init(void *mem, size_t len, const struct prim_semset_attr *attr)
{
	struct prim_semset_shm *h = mem;
	struct geom g;
	int r;

	if ((r = geometry(attr, &g)) != 0)
		return r;
	if (mem == NULL || len < g.size ||
	    ((uintptr_t)mem & (PRIM_CACHELINE - 1)) != 0)
		return -EINVAL;
	memset(mem, 0, g.size);
	prim__seg_init(mem, PRIM_SEG_SEM, SEM_LAYOUT_VERSION, g.size);
	h->nsems = g.nsems;
	h->semopm = g.semopm;
	h->nprocs = g.nprocs;
	h->nslots = g.nslots;
	h->cap = g.cap;
	h->off_sems = g.off_sems;
	h->off_undo = g.off_undo;
	h->off_slots = g.off_slots;
	h->undo_size = (uint32_t)g.undo_size;
	h->slot_size = (uint32_t)g.slot_size;
	h->ctime = prim__realtime();
	h->active = 1ULL << 16; /* generation 1, idle */
	prim__seg_publish(mem);
	return 0;
}

int
prim_semset_open(void *mem, size_t len, struct prim_semset **set)
{
	struct prim_semset_shm *h = mem;
	struct prim_semset *p;
	struct prim_semset_attr a;
	struct geom g;
	int r;

	if (set == NULL)
		return -EINVAL;
	if ((r = prim__seg_check(mem, len, PRIM_SEG_SEM,
				 SEM_LAYOUT_VERSION)) != 0)
		return r;
	/* SEM_5: the geometry must be exactly what the sizes imply. */
	a.nsems = h->nsems;
	a.semopm = h->semopm;
	a.nprocs = h->nprocs;
	a.nslots = h->nslots;
	if (geometry(&a, &g) != 0 || g.cap != h->cap ||
	    g.off_sems != h->off_sems || g.off_undo != h->off_undo ||
	    g.off_slots != h->off_slots || g.undo_size != h->undo_size ||
	    g.slot_size != h->slot_size || g.size != h->seg.size ||
	    g.size > len)
		return -EINVAL;
	if ((p = malloc(sizeof(*p))) == NULL)
		return -ENOMEM;
	/* From our copy, not the header: see struct prim_semset. */
	p->shm = h;
	p->nsems = g.nsems;
	p->semopm = g.semopm;
	p->nprocs = g.nprocs;
	p->nslots = g.nslots;
	p->cap = g.cap;
	p->undo_size = (uint32_t)g.undo_size;
	p->slot_size = (uint32_t)g.slot_size;
	p->off_sems = g.off_sems;
	p->off_undo = g.off_undo;
	p->off_slots = g.off_slots;
	*set = p;
	return 0;
}

void
prim_semset_close(struct prim_semset *set)
{
	free(set);
}

int
prim_semset_nsems(const struct prim_semset *set)
{
	return (int)hdr(set)->nsems;
}

/* ---------------------------------------------------------------------
 * Words
 */

static unsigned
wval(uint64_t w)
{
	return (unsigned)(w & W_VALUE);
}

static uint64_t
tag_of(uint32_t gen)
{
	return ((uint64_t)gen << W_TAG_SHIFT) & W_TAG_MASK;
}

/* Same flags, new value, next version. */
static uint64_t
wnext(uint64_t w, unsigned value)
{
	return ((w & ~W_VALUE) + W_VER_ONE) | (value & W_VALUE);
}

static uint32_t *
wfutex(uint64_t *word)
{
	/* The low half: value and flags. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)word;
#else
	return (uint32_t *)word + 1;
#endif
}

static bool
cas64(uint64_t *p, uint64_t *expect, uint64_t set)
{
	uint64_t seen;

	if (ck_pr_cas_64_value(p, *expect, set, &seen))
		return true;
	*expect = seen;
	return false;
}

static void
wake_word(uint64_t *word)
{
	prim__wake(wfutex(word), INT_MAX);
}

static void
touch_otime(struct prim_semset *h)
{
	int64_t now = prim__realtime();

	if (ck_pr_load_64((uint64_t *)&h->shm->otime) != (uint64_t)now)
		ck_pr_store_64((uint64_t *)&h->shm->otime, (uint64_t)now);
}

/*
 * SEM_6: record pid as sempid for the operation that left the word at
 * version ver. Only a newer version replaces the one stored; equal too
 * when same_ok (a wait-for-zero that saw version ver, and so came after
 * the operation that made it).
 */
static void
set_pid(struct prim_sem_shm *s, uint32_t pid, uint32_t ver, bool same_ok)
{
	uint64_t cur = ck_pr_load_64(&s->pidv);
	uint64_t want = (uint64_t)ver << 32 | pid;

	for (;;) {
		int32_t d = (int32_t)(ver - (uint32_t)(cur >> 32));

		if (cur == want || d < 0 || (d == 0 && !same_ok))
			return;
		if (cas64(&s->pidv, &cur, want))
			return;
	}
}

static uint32_t
wver(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static bool
set_removed(const struct prim_semset *h)
{
	return ck_pr_load_32((uint32_t *)&h->shm->seg.state) != PRIM_SEG_LIVE;
}

/* ---------------------------------------------------------------------
 * Descriptors: the targets of a request, and its decision
 */

/* Targets of a request: its own request word, then semaphores, then
 * adjustments. Reads the request's content: only once the request word is
 * frozen by the generation being completed (target 0 needs no content). */
static uint32_t
ntargets(const struct prim_semset *h, const struct prim_slot_shm *s)
{
	switch (s->kind) {
	case REQ_OPS:
		return 1 + (s->undo ? 2 * s->ndist : s->ndist);
	case REQ_SETVAL:
		return 2 + h->nprocs;
	case REQ_SETALL:
		return 1 + h->nsems + h->nprocs * h->nsems;
	case REQ_REAP:
		return 1 + 2 * h->nsems;
	}
	return 1;
}

/*
 * The word of target i, the semaphore it belongs to, and what it is (the
 * request word, a semaphore, an adjustment). NULL when the slot's content
 * is not sane (a late helper reading a slot being rewritten, or
 * corruption).
 */
enum tkind { T_REQ, T_SEM, T_ADJ };

static uint64_t *
target(const struct prim_semset *h, struct prim_slot_shm *s, uint32_t i,
       uint32_t *semnum, enum tkind *tk)
{
	uint32_t n, u = 0;
	bool adj = false;

	*semnum = 0;
	*tk = T_REQ;
	if (i == 0)
		return &s->req;
	i--;
	switch (s->kind) {
	case REQ_OPS:
		if (s->ndist > h->cap || s->ndist > h->nsems)
			return NULL;
		if (i >= s->ndist) {
			i -= s->ndist;
			adj = true;
		}
		if (i >= s->ndist)
			return NULL;
		n = slot_dist(h, s)[i];
		u = s->undo;
		break;
	case REQ_SETVAL:
		n = s->arg;
		if (i > 0) {
			adj = true;
			u = i;
		}
		break;
	case REQ_SETALL:
		n = i % h->nsems;
		if (i >= h->nsems) {
			adj = true;
			u = i / h->nsems;
		}
		break;
	case REQ_REAP:
		n = i % h->nsems;
		u = s->undo;
		adj = i >= h->nsems;
		break;
	default:
		return NULL;
	}
	if (n >= h->nsems)
		return NULL;
	*semnum = n;
	*tk = adj ? T_ADJ : T_SEM;
	if (!adj)
		return &sem_at(h, n)->word;
	if (u == 0 || u > h->nprocs)
		return NULL;
	return &undo_at(h, u - 1)->adj[n];
}

/*
 * Decide a REQ_OPS request from the frozen words, as the kernel does: the
 * operations apply in order and the first that cannot proceed decides. Ops
 * on different semaphores do not interact, so each semaphore's ops are
 * simulated on their own and the lowest failing index wins: no scratch
 * memory, whatever nsops is (a helper may run on a small thread stack).
 */
static uint64_t
decide_ops(const struct prim_semset *h, struct prim_slot_shm *s,
	   uint32_t gen)
{
	uint32_t nops = s->nops, first = UINT32_MAX;
	uint64_t res = ST(gen, ST_DONE, 0, 0);
	const uint16_t *d = slot_dist(h, s);

	if (nops > h->cap || s->ndist > h->cap)
		return ST(gen, ST_EIDRM, 0, 0);
	for (uint32_t k = 0; k < s->ndist; k++) {
		uint32_t n = d[k];
		unsigned frozen;
		int v, a = 0;

		if (n >= h->nsems)
			return ST(gen, ST_EIDRM, 0, 0);
		frozen = wval(ck_pr_load_64(&sem_at(h, n)->word));
		v = (int)frozen;
		if (s->undo >= 1 && s->undo <= h->nprocs)
			a = (int16_t)wval(ck_pr_load_64(
				&undo_at(h, s->undo - 1)->adj[n]));
		for (uint32_t i = 0; i < nops && i < first; i++) {
			struct prim_sembuf op = s->ops[i];

			if (op.sem_num != n)
				continue;
			/* Blocked: the caller sleeps on the real value. */
			if ((op.sem_op == 0 && v != 0) || v + op.sem_op < 0) {
				first = i;
				res = ST(gen, ST_BLOCK, i, frozen);
				break;
			}
			if (v + op.sem_op > PRIM_SEMVMX) {
				first = i;
				res = ST(gen, ST_ERANGE, i, 0);
				break;
			}
			if ((op.sem_flg & PRIM_SEM_UNDO) && s->undo) {
				a -= op.sem_op;
				if (a < -PRIM_SEMAEM - 1 || a > PRIM_SEMAEM) {
					first = i;
					res = ST(gen, ST_ERANGE, i, 0);
					break;
				}
			}
			v += op.sem_op;
		}
	}
	return res;
}

/* Net change of semaphore n (adj: of its adjustment) on success. */
static int
ops_delta(struct prim_slot_shm *s, uint32_t n, bool adj)
{
	int d = 0;

	for (uint32_t i = 0; i < s->nops; i++) {
		struct prim_sembuf op = s->ops[i];

		if (op.sem_num != n)
			continue;
		if (!adj)
			d += op.sem_op;
		else if (op.sem_flg & PRIM_SEM_UNDO)
			d -= op.sem_op;
	}
	return d;
}

static int
clamp_val(int v)
{
	return v < 0 ? 0 : v > PRIM_SEMVMX ? PRIM_SEMVMX : v;
}

/*
 * New value of a frozen word w (target i) once the request is decided.
 * For REQ_REAP a semaphore's new value needs its adjustment, which is
 * still frozen: adjustments are unfrozen only after every semaphore.
 */
static unsigned
new_value(const struct prim_semset *h, struct prim_slot_shm *s,
	  uint64_t w, uint32_t n, bool is_adj, unsigned status)
{
	int v = is_adj ? (int16_t)wval(w) : (int)wval(w);

	if (status != ST_DONE)
		return wval(w);
	switch (s->kind) {
	case REQ_OPS:
		v += ops_delta(s, n, is_adj);
		break;
	case REQ_SETVAL:
		v = is_adj ? 0 : s->val;
		break;
	case REQ_SETALL:
		v = is_adj ? 0 : (int)(uint16_t)s->ops[n].sem_op;
		break;
	case REQ_REAP:
		if (is_adj) {
			v = 0;
		} else if (s->undo >= 1 && s->undo <= h->nprocs) {
			uint64_t a = ck_pr_load_64(&undo_at(h, s->undo - 1)->adj[n]);

			v = clamp_val(v + (int16_t)wval(a));
		}
		break;
	}
	return (unsigned)v & W_VALUE;
}

/*
 * sempid of semaphore n once a request is done: its owner's pid for the
 * operations (every semaphore named, wait-for-zero too), SETVAL and
 * SETALL; the dead pid for exit-time undo, only where it had an
 * adjustment (still frozen: adjustments unfreeze last); 0 for no change.
 */
static uint32_t
sempid_of(const struct prim_semset *h, struct prim_slot_shm *s,
	  uint32_t n, unsigned status)
{
	if (status != ST_DONE)
		return 0;
	if (s->kind != REQ_REAP)
		return PRIM_IDENT_PID(ck_pr_load_64(&s->ident));
	if (s->undo < 1 || s->undo > h->nprocs)
		return 0;
	return wval(ck_pr_load_64(&undo_at(h, s->undo - 1)->adj[n])) != 0
		       ? s->arg
		       : 0;
}

/* Is gen's request still the active one? */
static bool
still_active(const struct prim_semset *h, uint64_t act)
{
	return ck_pr_load_64((uint64_t *)&h->shm->active) == act;
}

/*
 * Complete the request of slot si, generation gen, if it is still the one
 * the caller saw active, and return its decision (0 when the caller came
 * too late to see it). Safe from any number of helpers at once.
 *
 * SEM_4: every CAS on a word expects the value read BEFORE checking that
 * gen is still active and (for freezing) undecided: a late helper's CAS
 * fails, because completing gen changed the word's version. So no word
 * is frozen after the decision, and none is unfrozen twice.
 * SEM_7: the request word is frozen first, and the request's content is
 * read only while it is frozen by gen: its owner cannot withdraw or
 * rewrite a request whose word is frozen (its CAS would fail).
 * A helper killed or stopped anywhere here leaves words frozen by gen;
 * the next helper (anyone who finds a frozen word or wants to activate)
 * finishes the same steps.
 */
static uint64_t
complete(struct prim_semset *h, uint32_t si, uint32_t gen)
{
	struct prim_slot_shm *s = slot_at(h, si);
	const uint64_t act = (uint64_t)gen << 16 | (si + 1);
	uint64_t st, tag = tag_of(gen);
	uint32_t i, n, nt = 1;
	enum tkind tk;

	st = ck_pr_load_64(&h->shm->astate);
	if (ST_GEN(st) != gen) {
		unsigned why = ST_NONE;
		uint64_t d;

		/* Freeze every target, the request word first. */
		for (i = 0; i < nt; i++) {
			uint64_t *p = target(h, s, i, &n, &tk);
			uint64_t w;

			if (p == NULL)
				return 0; /* insane content: we are late */
			w = ck_pr_load_64(p);
			for (;;) {
				if (!still_active(h, act))
					return 0;
				st = ck_pr_load_64(&h->shm->astate);
				if (ST_GEN(st) == gen)
					goto decided;
				if ((w & W_HELD) && (w & W_TAG_MASK) == tag)
					break;
				if (tk == T_REQ && wval(w) != REQ_PUBLISHED) {
					why = ST_ABORT;
					break;
				}
				if (w & W_REMOVED) {
					why = ST_EIDRM;
					break;
				}
				if (cas64(p, &w,
					  ((((w | W_HELD) & ~W_TAG_MASK) | tag) +
					   W_VER_ONE)))
					break;
			}
			if (why != ST_NONE)
				break;
			if (i == 0)
				nt = ntargets(h, s); /* SEM_7: now stable */
		}
		/* Decide from the frozen values. */
		if (why != ST_NONE) {
			d = ST(gen, why, 0, 0);
		} else {
			for (i = 0; i < nt; i++) {
				uint64_t *p = target(h, s, i, &n, &tk);
				uint64_t w = p ? ck_pr_load_64(p) : 0;

				if (p == NULL || !(w & W_HELD) ||
				    (w & W_TAG_MASK) != tag)
					goto recheck; /* decided meanwhile */
			}
			d = s->kind == REQ_OPS ? decide_ops(h, s, gen)
					       : ST(gen, ST_DONE, 0, 0);
		}
		if (still_active(h, act))
			ck_pr_cas_64(&h->shm->astate, st, d);
	recheck:
		st = ck_pr_load_64(&h->shm->astate);
		if (ST_GEN(st) != gen)
			return 0;
	}
decided:
	/* Unfreeze: semaphores, adjustments, and the request word last. */
	if (ST_STATUS(st) != ST_ABORT) {
		nt = ntargets(h, s);
		for (uint32_t k = 1; k <= nt; k++) {
			uint64_t *p, w, nw;
			uint32_t pid = 0;
			unsigned v;

			i = k % nt;
			p = target(h, s, i, &n, &tk);
			if (p == NULL)
				break;
			w = ck_pr_load_64(p);
			if (!(w & W_HELD) || (w & W_TAG_MASK) != tag)
				continue;
			if (!still_active(h, act))
				return st;
			if (tk == T_REQ) {
				v = ST_STATUS(st) == ST_DONE ? REQ_DONE : wval(w);
			} else {
				v = new_value(h, s, w, n, tk == T_ADJ,
					      ST_STATUS(st));
				/* Read while frozen: the slot is gen's. */
				if (tk == T_SEM)
					pid = sempid_of(h, s, n, ST_STATUS(st));
			}
			nw = wnext(w & ~(W_HELD | W_TAG_MASK), v);
			if (!ck_pr_cas_64(p, w, nw))
				continue; /* another helper unfroze it */
			if (pid != 0)
				set_pid(sem_at(h, n), pid, wver(nw), false);
			/* Sleepers stay flagged: they take their turn (handoff). */
			if (tk == T_SEM && v != wval(w) && (w & W_SLEEPERS))
				wake_word(p);
		}
	}
	ck_pr_cas_64(&h->shm->active, act, (uint64_t)gen << 16);
	return st;
}

/* Complete whatever request is active. Returns false if none was. */
static bool
help(struct prim_semset *h)
{
	uint64_t a = ck_pr_load_64(&h->shm->active);
	uint32_t si = (uint32_t)(a & 0xffff);

	if (si == 0)
		return false;
	if (si <= h->nslots)
		complete(h, si - 1, (uint32_t)(a >> 16));
	else /* corrupt: make the set usable again */
		ck_pr_cas_64(&h->shm->active, a, a & ~0xffffULL);
	return true;
}

/*
 * Run the request published in slot si, whoever's it is: activate it
 * (helping whoever is active first) and complete it. Returns its decision:
 * ST_DONE exactly once per publication; ST_ABORT when it was already done
 * or withdrawn.
 */
static uint64_t
run(struct prim_semset *h, uint32_t si)
{
	for (;;) {
		uint64_t a = ck_pr_load_64(&h->shm->active), d;
		uint32_t gen;

		if (a & 0xffff) {
			help(h);
			continue;
		}
		gen = (uint32_t)(a >> 16) + 1;
		if (gen == 0)
			gen = 1;
		if (!ck_pr_cas_64(&h->shm->active, a,
				  (uint64_t)gen << 16 | (si + 1)))
			continue;
		d = complete(h, si, gen);
		if (d != 0)
			return d;
		/* Completed by others and overtaken: read what it became. */
		return ST(gen, wval(ck_pr_load_64(&slot_at(h, si)->req)) ==
					       REQ_DONE
				       ? ST_DONE
				       : ST_ABORT,
			  0, 0);
	}
}

/* ---------------------------------------------------------------------
 * Slots and undo records
 */

static __thread uint32_t slot_hint;

/*
 * Claim a free slot for this thread. Slots are few and held only during a
 * slow call; if all are taken, wait for one (until the deadline).
 */
static int
slot_claim(struct prim_semset *h, const struct timespec *deadline,
	   uint32_t *out)
{
	uint64_t me = prim__ident();
	uint32_t n = h->nslots;

	for (unsigned round = 0;; round++) {
		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = (slot_hint + k) % n;
			struct prim_slot_shm *s = slot_at(h, i);

			/* A free slot's request word is idle (released so). */
			if (ck_pr_load_64(&s->ident) == 0 &&
			    ck_pr_cas_64(&s->ident, 0, me)) {
				slot_hint = i;
				*out = i;
				return 0;
			}
		}
		if (set_removed(h))
			return -EIDRM;
		if (deadline != NULL && prim__deadline_passed(deadline))
			return -EAGAIN;
		if (round < 64) {
			ck_pr_stall();
		} else {
			struct timespec ts = { 0, 50000 };

			nanosleep(&ts, NULL);
		}
	}
}

/*
 * Publish the request just written in slot si: from now on anyone may
 * complete it, once (SEM_1: the content is written before the request
 * word says so; pairs with SEM_7).
 */
static void
publish(struct prim_slot_shm *s)
{
	uint64_t w = ck_pr_load_64(&s->req);

	ck_pr_fence_store();
	while (!cas64(&s->req, &w,
		      wnext(w & ~(W_HELD | W_TAG_MASK), REQ_PUBLISHED)))
		;
}

/*
 * Take the request back: after this, nobody completes it. Returns true if
 * it had been completed (by its owner or, handing off, by anyone) before
 * it could be withdrawn. Leaves the request word idle.
 */
static bool
withdraw(struct prim_semset *h, struct prim_slot_shm *s)
{
	uint64_t w = ck_pr_load_64(&s->req);

	for (;;) {
		bool done = wval(w) == REQ_DONE;

		if (w & W_HELD) { /* being completed: finish it first */
			help(h);
			w = ck_pr_load_64(&s->req);
			continue;
		}
		if (wval(w) == REQ_IDLE)
			return false;
		if (cas64(&s->req, &w, wnext(w, REQ_IDLE)))
			return done;
	}
}

static void
slot_release(struct prim_semset *h, uint32_t si)
{
	struct prim_slot_shm *s = slot_at(h, si);

	ck_pr_store_32(&s->wait_kind, WAIT_NONE);
	ck_pr_store_32(&s->wait_sem, 0);
	withdraw(h, s);
	ck_pr_fence_store();
	ck_pr_store_64(&s->ident, 0);
}

/*
 * Threads of one process share one undo record: its first claim is made
 * under this process-local lock so two threads never claim two records.
 * It is never shared between processes; a fork child gets a fresh one.
 */
static pthread_mutex_t undo_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t undo_once = PTHREAD_ONCE_INIT;

static void
undo_lock_reset(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	undo_lock = fresh;
}

static void
undo_atfork(void)
{
	pthread_atfork(NULL, NULL, undo_lock_reset);
}

static uint32_t
undo_find(const struct prim_semset *h, uint64_t me)
{
	for (uint32_t i = 0; i < h->nprocs; i++)
		if (ck_pr_load_64(&undo_at(h, i)->ident) == me)
			return i + 1;
	return 0;
}

/*
 * This process's undo record (+1), claimed on first use; 0 if none is
 * left. The owner word is the process's identity, pid and start time, set
 * by one CAS: a process that reuses a dead one's pid never inherits its
 * adjustments, and a claimer killed anywhere leaves a whole identity.
 */
static uint32_t
undo_claim(struct prim_semset *h)
{
	uint64_t me = prim__ident();
	uint32_t u = undo_find(h, me);

	if (u != 0)
		return u;
	pthread_once(&undo_once, undo_atfork);
	pthread_mutex_lock(&undo_lock);
	if ((u = undo_find(h, me)) == 0) {
		for (uint32_t i = 0; i < h->nprocs; i++) {
			struct prim_undo_shm *r = undo_at(h, i);

			/* A free record's adjustments are all zero. */
			if (ck_pr_load_64(&r->ident) == 0 &&
			    ck_pr_cas_64(&r->ident, 0, me)) {
				u = i + 1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&undo_lock);
	return u;
}

/* ---------------------------------------------------------------------
 * semop
 */

static int
check_deadline(const struct timespec *d)
{
	if (d != NULL && (d->tv_sec < 0 || d->tv_nsec < 0 ||
			  d->tv_nsec >= 1000000000L))
		return -EINVAL;
	return 0;
}

/*
 * Sleep until the word of semaphore n may have changed from w (whose value
 * blocks the caller): set SLEEPERS, then sleep on the low half.
 */
static int
sleep_on(struct prim_semset *h, uint32_t n, uint64_t w,
	 const struct timespec *deadline)
{
	uint64_t *p = &sem_at(h, n)->word;
	uint64_t cur = ck_pr_load_64(p);
	int r;

	if (wval(cur) != wval(w) || (cur & (W_HELD | W_REMOVED)))
		return 0;
	if (!(cur & W_SLEEPERS)) {
		uint64_t nw = (cur | W_SLEEPERS) + W_VER_ONE;

		if (!ck_pr_cas_64(p, cur, nw))
			return 0; /* changed: look again */
		cur = nw;
	}
	r = prim__wait(wfutex(p), (uint32_t)(cur & W_LOW_MASK), deadline);
	return r == -ETIMEDOUT ? -EAGAIN : r;
}

/*
 * SEM_8: hand-off. Complete, in FIFO order (ticket), the published
 * requests of everyone waiting on semaphore n, as the kernel's
 * update_queue does: each that can proceed now does, those that cannot
 * keep their place. Then wake the word's sleepers if anyone was served,
 * and clear SLEEPERS when nobody waits any more (a waiter sets it again
 * before it sleeps). Anyone may run it, any number of times: each request
 * completes once. Woken waiters run it too, so a waker stopped before it
 * delays nobody for long.
 */
static void
handoff(struct prim_semset *h, uint32_t n)
{
	uint64_t *word = &sem_at(h, n)->word, last = 0, w;
	bool served = false;
	uint32_t left;

	for (uint32_t round = 0; round < h->nslots; round++) {
		uint64_t best = UINT64_MAX;
		uint32_t bi = 0;

		for (uint32_t i = 0; i < h->nslots; i++) {
			struct prim_slot_shm *s = slot_at(h, i);
			uint64_t t;

			if (ck_pr_load_32(&s->wait_sem) != n + 1 ||
			    ck_pr_load_32(&s->wait_kind) == WAIT_NONE ||
			    wval(ck_pr_load_64(&s->req)) != REQ_PUBLISHED)
				continue;
			t = ck_pr_load_64(&s->ticket);
			if (t > last && t < best) {
				best = t;
				bi = i;
			}
		}
		if (best == UINT64_MAX)
			break;
		last = best;
		if (ST_STATUS(run(h, bi)) == ST_DONE)
			served = true;
	}
	if (served)
		wake_word(word);
	/* Nobody left waiting here: the fast path may take the word again. */
	left = 0;
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct prim_slot_shm *s = slot_at(h, i);

		if (ck_pr_load_32(&s->wait_sem) == n + 1 &&
		    ck_pr_load_32(&s->wait_kind) != WAIT_NONE &&
		    wval(ck_pr_load_64(&s->req)) == REQ_PUBLISHED)
			left++;
	}
	w = ck_pr_load_64(word);
	if (left == 0 && (w & W_SLEEPERS) && !(w & (W_HELD | W_REMOVED)))
		ck_pr_cas_64(word, w, (w & ~W_SLEEPERS) + W_VER_ONE);
}

static void
mark_waiting(struct prim_semset *h, uint32_t si, uint32_t n, int op)
{
	struct prim_slot_shm *s = slot_at(h, si);

	ck_pr_store_32(&s->wait_kind, op == 0 ? WAIT_Z : WAIT_N);
	ck_pr_store_32(&s->wait_sem, n + 1);
}

/*
 * One operation, no SEM_UNDO, by CAS. Returns 0, -EAGAIN when it would
 * block (*seen holds the word), -EBUSY when it must queue behind sleepers
 * (a decrement while someone waits: FIFO), or another -errno. An increment
 * that finds sleepers keeps SLEEPERS set and hands off (SEM_8), so nobody
 * slips in between.
 */
static int
op_one(struct prim_semset *h, const struct prim_sembuf *op, uint64_t *seen)
{
	struct prim_sem_shm *sem = sem_at(h, op->sem_num);
	uint64_t w = ck_pr_load_64(&sem->word);

	for (;;) {
		int v, nv;
		uint64_t nw;

		if (w & W_REMOVED)
			return -EIDRM;
		if (w & W_HELD) {
			if (!help(h))
				ck_pr_stall();
			w = ck_pr_load_64(&sem->word);
			continue;
		}
		v = (int)wval(w);
		nv = v + op->sem_op;
		if (op->sem_op < 0 && (w & W_SLEEPERS))
			return -EBUSY;
		if (nv < 0 || (op->sem_op == 0 && v != 0)) {
			*seen = w;
			return -EAGAIN;
		}
		if (nv > PRIM_SEMVMX)
			return -ERANGE;
		if (op->sem_op == 0) {
			set_pid(sem, prim__pid(), wver(w), true);
			break;
		}
		nw = wnext(w, (unsigned)nv);
		if (cas64(&sem->word, &w, nw)) {
			/* SEM_6: sempid before anyone we serve runs. */
			set_pid(sem, prim__pid(), wver(nw), false);
			if (w & W_SLEEPERS)
				handoff(h, op->sem_num);
			break;
		}
	}
	touch_otime(h);
	return 0;
}

/* Write a REQ_OPS request into slot si (not yet published). */
static void
write_ops(struct prim_semset *h, uint32_t si,
	  const struct prim_sembuf *sops, size_t nsops, uint32_t undo)
{
	struct prim_slot_shm *s = slot_at(h, si);
	uint16_t *d = slot_dist(h, s);
	uint32_t nd = 0;

	s->kind = REQ_OPS;
	s->nops = (uint32_t)nsops;
	s->undo = undo;
	memcpy(s->ops, sops, nsops * sizeof(*sops));
	/* Sorted distinct semaphore numbers (insertion sort: slow path). */
	for (size_t i = 0; i < nsops; i++) {
		uint16_t n = sops[i].sem_num;
		uint32_t j = nd;

		while (j > 0 && d[j - 1] > n)
			j--;
		if (j > 0 && d[j - 1] == n)
			continue;
		memmove(d + j + 1, d + j, (nd - j) * sizeof(*d));
		d[j] = n;
		nd++;
	}
	s->ndist = nd;
}

/* After a request of ours changed semaphores: serve their waiters. */
static void
serve_waiters(struct prim_semset *h, struct prim_slot_shm *s)
{
	const uint16_t *d = slot_dist(h, s);

	for (uint32_t k = 0; k < s->ndist && k < h->nsems; k++)
		if (ck_pr_load_64(&sem_at(h, d[k])->word) & W_SLEEPERS)
			handoff(h, d[k]);
}

/*
 * The fast path: one operation without SEM_UNDO on a word nobody holds or
 * sleeps on is one CAS. Kept small so that it is all a caller runs; the
 * rest (argument errors, blocking, helping) is op_slow's.
 */
static inline bool
op_fast(struct prim_semset *h, const struct prim_sembuf *sops,
	size_t nsops)
{
	struct prim_sem_shm *sem;
	uint64_t w, w2;
	int nv;

	if (nsops != 1 || sops == NULL || sops->sem_num >= h->nsems ||
	    (sops->sem_flg & PRIM_SEM_UNDO) || sops->sem_op == 0)
		return false;
	sem = sem_at(h, sops->sem_num);
	w = ck_pr_load_64(&sem->word);
	nv = (int)wval(w) + sops->sem_op;
	if ((w & (W_SLEEPERS | W_HELD | W_REMOVED)) || nv < 0 ||
	    nv > PRIM_SEMVMX)
		return false;
	w2 = wnext(w, (unsigned)nv);
	if (!ck_pr_cas_64(&sem->word, w, w2))
		return false;
	set_pid(sem, prim__pid(), wver(w2), false);
	touch_otime(h);
	return true;
}

/* Longest a waiter sleeps before it looks for itself (SEM_8). */
#define WAIT_SLICE_NS 1000000000L

static void
slice_deadline(const struct timespec *user, struct timespec *out)
{
	prim__now(out);
	out->tv_sec += WAIT_SLICE_NS / 1000000000L;
	if (user != NULL && (user->tv_sec < out->tv_sec ||
			     (user->tv_sec == out->tv_sec &&
			      user->tv_nsec < out->tv_nsec)))
		*out = *user;
}

/*
 * Everything but the fast path. A call that cannot finish at once becomes
 * a request in a slot, published so that anyone may complete it (once):
 * its owner, a waker handing off in FIFO order, or a helper. The owner
 * sleeps on the semaphore of its first blocking operation; if it stops or
 * dies, nobody waits for it.
 */
static __attribute__((noinline)) int
op_slow(struct prim_semset *h, const struct prim_sembuf *sops,
	size_t nsops, const struct timespec *deadline)
{
	bool undo = false, queued = nsops != 1;
	uint32_t si = UINT32_MAX, u = 0;
	struct prim_slot_shm *s = NULL;
	uint64_t st, w = 0;
	int r, spins = 0;

	if (nsops == 0)
		return -EINVAL;
	if (nsops > h->semopm)
		return -E2BIG;
	if (sops == NULL)
		return -EFAULT;
	if ((r = check_deadline(deadline)) != 0)
		return r;
	for (size_t i = 0; i < nsops; i++) {
		if (sops[i].sem_num >= h->nsems)
			return -EFBIG;
		if (sops[i].sem_flg & PRIM_SEM_UNDO)
			undo = queued = true;
	}
	if (set_removed(h))
		return -EIDRM;

	/* One plain operation: a CAS, spinning briefly while it would block. */
	while (!queued) {
		const uint64_t *p = &sem_at(h, sops->sem_num)->word;

		r = op_one(h, sops, &w);
		if (r == -EBUSY)
			break; /* sleepers first: queue behind them */
		if (r != -EAGAIN || (sops->sem_flg & PRIM_IPC_NOWAIT))
			return r;
		if (deadline != NULL && prim__deadline_passed(deadline))
			return -EAGAIN;
		/* A hand-off from another CPU is far cheaper than a sleep. */
		while (spins < SPIN_LIMIT && ck_pr_load_64(p) == w) {
			spins++;
			ck_pr_stall();
		}
		if (spins >= SPIN_LIMIT)
			break;
	}

	/* A request anyone may complete. */
	if ((r = slot_claim(h, deadline, &si)) != 0)
		return r;
	s = slot_at(h, si);
	if (undo && (u = undo_claim(h)) == 0) {
		r = -ENOMEM;
		goto out;
	}
	write_ops(h, si, sops, nsops, u);
	publish(s);
	for (;;) {
		const struct prim_sembuf *b;
		struct timespec slice;

		st = run(h, si);
		switch (ST_STATUS(st)) {
		case ST_DONE:
			r = 0;
			goto out;
		case ST_ERANGE:
			r = -ERANGE;
			goto out;
		case ST_EIDRM:
			r = -EIDRM;
			goto out;
		case ST_BLOCK:
			break;
		default: /* done by someone else, or overtaken */
			if (wval(ck_pr_load_64(&s->req)) == REQ_DONE) {
				r = 0;
				goto out;
			}
			if (set_removed(h)) {
				r = -EIDRM;
				goto out;
			}
			continue;
		}
		if (ST_IDX(st) >= nsops) {
			r = -EIDRM;
			goto out;
		}
		b = &sops[ST_IDX(st)];
		if (b->sem_flg & PRIM_IPC_NOWAIT) {
			r = -EAGAIN;
			goto out;
		}
		/* Wait, FIFO: take a place once, keep it across retries. */
		if (ck_pr_load_64(&s->ticket) == 0)
			ck_pr_store_64(&s->ticket,
				       ck_pr_faa_64(&h->shm->tickets, 1) + 1);
		mark_waiting(h, si, b->sem_num, b->sem_op);
		w = ck_pr_load_64(&sem_at(h, b->sem_num)->word);
		if (wval(w) != ST_VAL(st))
			continue; /* changed since the decision */
		/* Older waiters first; maybe us. */
		handoff(h, b->sem_num);
		if (wval(ck_pr_load_64(&s->req)) == REQ_DONE) {
			r = 0;
			goto out;
		}
		/*
		 * Spin briefly for the value to change before sleeping
		 * (SPIN_LIMIT in all, each retry counting): a hand-off from
		 * another CPU is far cheaper than a futex sleep.
		 */
		w = ck_pr_load_64(&sem_at(h, b->sem_num)->word);
		if (spins < SPIN_LIMIT) {
			const uint64_t *p = &sem_at(h, b->sem_num)->word;

			spins += 64;
			while (spins < SPIN_LIMIT &&
			       wval(ck_pr_load_64(p)) == wval(w) &&
			       wval(ck_pr_load_64(&s->req)) != REQ_DONE) {
				spins++;
				ck_pr_stall();
			}
			if (spins < SPIN_LIMIT)
				continue;
		}
		if (wval(w) != ST_VAL(st))
			continue;
		slice_deadline(deadline, &slice);
		r = sleep_on(h, b->sem_num, w, &slice);
		if (r == -EINTR)
			goto out;
		if (r == -EAGAIN && deadline != NULL &&
		    prim__deadline_passed(deadline))
			goto out;
		handoff(h, b->sem_num);
		if (wval(ck_pr_load_64(&s->req)) == REQ_DONE) {
			r = 0;
			goto out;
		}
		if (set_removed(h)) {
			r = -EIDRM;
			goto out;
		}
	}
out:
	/* Done by a hand-off while we gave up (a signal, the deadline)? */
	if (s != NULL) {
		ck_pr_store_32(&s->wait_kind, WAIT_NONE);
		ck_pr_store_64(&s->ticket, 0);
		if (withdraw(h, s))
			r = 0;
		if (r == 0) {
			serve_waiters(h, s);
			touch_otime(h);
		}
		slot_release(h, si);
	}
	return r;
}

int
prim_sem_op_timed(struct prim_semset *set, const struct prim_sembuf *sops,
		  size_t nsops, const struct timespec *deadline)
{
	struct prim_semset *h = hdr(set);

	if (check_deadline(deadline) == 0 && op_fast(h, sops, nsops))
		return 0;
	return op_slow(h, sops, nsops, deadline);
}

int
prim_sem_op(struct prim_semset *set, const struct prim_sembuf *sops,
	    size_t nsops)
{
	struct prim_semset *h = hdr(set);

	if (op_fast(h, sops, nsops))
		return 0;
	return op_slow(h, sops, nsops, NULL);
}

/* ---------------------------------------------------------------------
 * Control
 */

static int
check_num(const struct prim_semset *h, int semnum)
{
	if (semnum < 0 || (uint32_t)semnum >= h->nsems)
		return -EINVAL;
	return set_removed(h) ? -EIDRM : 0;
}

int
prim_sem_getval(const struct prim_semset *set, int semnum)
{
	const struct prim_semset *h = hdr(set);
	int r;

	if ((r = check_num(h, semnum)) != 0)
		return r;
	return (int)wval(ck_pr_load_64(&sem_at(h, (uint32_t)semnum)->word));
}

int
prim_sem_getpid(const struct prim_semset *set, int semnum)
{
	const struct prim_semset *h = hdr(set);
	int r;

	if ((r = check_num(h, semnum)) != 0)
		return r;
	return (int)(uint32_t)ck_pr_load_64(&sem_at(h, (uint32_t)semnum)->pidv);
}

static int
count_waiters(const struct prim_semset *set, int semnum, uint32_t kind)
{
	const struct prim_semset *h = hdr(set);
	int r, c = 0;

	if ((r = check_num(h, semnum)) != 0)
		return r;
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct prim_slot_shm *s = slot_at(h, i);

		if (ck_pr_load_64(&s->ident) != 0 &&
		    ck_pr_load_32(&s->wait_kind) == kind &&
		    ck_pr_load_32(&s->wait_sem) == (uint32_t)semnum + 1 &&
		    wval(ck_pr_load_64(&s->req)) == REQ_PUBLISHED)
			c++;
	}
	return c;
}

int
prim_sem_getncnt(const struct prim_semset *set, int semnum)
{
	return count_waiters(set, semnum, WAIT_N);
}

int
prim_sem_getzcnt(const struct prim_semset *set, int semnum)
{
	return count_waiters(set, semnum, WAIT_Z);
}

int
prim_sem_getall(const struct prim_semset *set, unsigned short *vals)
{
	const struct prim_semset *h = hdr(set);

	if (vals == NULL)
		return -EFAULT;
	if (set_removed(h))
		return -EIDRM;
	for (uint32_t i = 0; i < h->nsems; i++)
		vals[i] = (unsigned short)wval(ck_pr_load_64(&sem_at(h, i)->word));
	return 0;
}

/* Run a control request (SETVAL, SETALL, REAP) prepared by fill(). */
static int
control(struct prim_semset *h, uint32_t kind, uint32_t arg, int val,
	const unsigned short *vals, uint32_t undo)
{
	struct prim_slot_shm *s;
	uint32_t si;
	uint64_t st;
	int r;

	if ((r = slot_claim(h, NULL, &si)) != 0)
		return r;
	s = slot_at(h, si);
	s->kind = kind;
	s->arg = arg;
	s->val = val;
	s->undo = undo;
	s->nops = kind == REQ_SETALL ? h->nsems : 0;
	s->ndist = 0;
	if (kind == REQ_SETALL)
		for (uint32_t i = 0; i < h->nsems; i++)
			s->ops[i].sem_op = (short)vals[i];
	publish(s);
	st = run(h, si);
	r = ST_STATUS(st) == ST_DONE ||
			    wval(ck_pr_load_64(&s->req)) == REQ_DONE
		    ? 0
		    : -EIDRM;
	slot_release(h, si);
	/* SETVAL, SETALL and exit-time undo serve whoever can now proceed. */
	for (uint32_t n = 0; r == 0 && n < h->nsems; n++) {
		if (kind == REQ_SETVAL && n != arg)
			continue;
		if (ck_pr_load_64(&sem_at(h, n)->word) & W_SLEEPERS)
			handoff(h, n);
	}
	return r;
}

int
prim_sem_setval(struct prim_semset *set, int semnum, int val)
{
	struct prim_semset *h = hdr(set);
	int r;

	if (val < 0 || val > PRIM_SEMVMX)
		return -ERANGE;
	if ((r = check_num(h, semnum)) != 0)
		return r;
	if ((r = control(h, REQ_SETVAL, (uint32_t)semnum, val, NULL, 0)) != 0)
		return r;
	prim_semset_touch(set);
	return 0;
}

int
prim_sem_setall(struct prim_semset *set, const unsigned short *vals)
{
	struct prim_semset *h = hdr(set);
	int r;

	if (vals == NULL)
		return -EFAULT;
	for (uint32_t i = 0; i < h->nsems; i++)
		if (vals[i] > PRIM_SEMVMX)
			return -ERANGE;
	if (set_removed(h))
		return -EIDRM;
	if ((r = control(h, REQ_SETALL, 0, 0, vals, 0)) != 0)
		return r;
	prim_semset_touch(set);
	return 0;
}

int
prim_semset_times(const struct prim_semset *set, int64_t *otime,
		  int64_t *ctime)
{
	const struct prim_semset *h = hdr(set);

	if (otime != NULL)
		*otime = (int64_t)ck_pr_load_64((uint64_t *)&h->shm->otime);
	if (ctime != NULL)
		*ctime = (int64_t)ck_pr_load_64((uint64_t *)&h->shm->ctime);
	return 0;
}

void
prim_semset_touch(struct prim_semset *set)
{
	struct prim_semset *h = hdr(set);

	ck_pr_store_64((uint64_t *)&h->shm->ctime, (uint64_t)prim__realtime());
}

int
prim_semset_remove(struct prim_semset *set)
{
	struct prim_semset *h = hdr(set);

	if (!ck_pr_cas_32(&h->shm->seg.state, PRIM_SEG_LIVE, PRIM_SEG_REMOVED))
		return -EIDRM;
	/* Mark every word, then wake every sleeper: they return -EIDRM. */
	for (uint32_t i = 0; i < h->nsems; i++) {
		uint64_t *p = &sem_at(h, i)->word;
		uint64_t w = ck_pr_load_64(p);

		while (!cas64(p, &w, (w | W_REMOVED) + W_VER_ONE))
			;
		wake_word(p);
	}
	return 0;
}

/*
 * SEM_9: reap. Records belong to a dead process when their pid is pid and
 * no live process is that identity (pid and start time): so reaping a
 * live pid does nothing, and a newcomer that reuses a dead pid keeps its
 * own records. The dead process's active request is completed, its slots
 * freed, its adjustments applied by one more request, then every word is
 * woken (a process killed between a fast-path CAS and its wake leaves
 * sleepers with SLEEPERS already clear).
 */
static bool
dead_owner(uint64_t ident, uint32_t pid, uint64_t live)
{
	return ident != 0 && PRIM_IDENT_PID(ident) == pid && ident != live;
}

int
prim_semset_reap(struct prim_semset *set, pid_t pid)
{
	struct prim_semset *h = hdr(set);
	uint32_t dead = (uint32_t)pid;
	uint64_t live;
	int changed = 0;

	if (pid <= 0)
		return -EINVAL;
	if (set_removed(h))
		return -EIDRM;
	live = prim__ident_of(pid);
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct prim_slot_shm *s = slot_at(h, i);
		uint64_t id = ck_pr_load_64(&s->ident);

		if (!dead_owner(id, dead, live))
			continue;
		/* Nobody completes its request any more (finished if active). */
		ck_pr_store_32(&s->wait_kind, WAIT_NONE);
		ck_pr_store_32(&s->wait_sem, 0);
		ck_pr_store_64(&s->ticket, 0);
		withdraw(h, s);
		ck_pr_fence_store();
		ck_pr_cas_64(&s->ident, id, 0);
	}
	for (uint32_t u = 0; u < h->nprocs; u++) {
		struct prim_undo_shm *rec = undo_at(h, u);
		uint64_t id = ck_pr_load_64(&rec->ident);
		int r;

		if (!dead_owner(id, dead, live))
			continue;
		/* The request sets sempid where it applies an adjustment. */
		for (uint32_t n = 0; n < h->nsems; n++)
			if (wval(ck_pr_load_64(&rec->adj[n])) != 0)
				changed++;
		if ((r = control(h, REQ_REAP, dead, 0, NULL, u + 1)) != 0)
			return r;
		/* Adjustments are all zero now: the record is free. */
		ck_pr_cas_64(&rec->ident, id, 0);
	}
	for (uint32_t n = 0; n < h->nsems; n++)
		wake_word(&sem_at(h, n)->word);
	return changed;
}

int
prim_semset_pids(const struct prim_semset *set, pid_t *pids, int max)
{
	const struct prim_semset *h = hdr(set);
	int n = 0;

	if (max < 0 || (max > 0 && pids == NULL))
		return -EINVAL;
	for (uint32_t i = 0; i < h->nslots + h->nprocs; i++) {
		uint64_t id = i < h->nslots
				      ? ck_pr_load_64(&slot_at(h, i)->ident)
				      : ck_pr_load_64(&undo_at(h, i - h->nslots)->ident);
		pid_t p = (pid_t)PRIM_IDENT_PID(id);
		int k;

		if (id == 0)
			continue;
		for (k = 0; k < n && k < max && pids[k] != p; k++)
			;
		if (k < n && k < max)
			continue; /* listed already */
		if (n < max)
			pids[n] = p;
		n++;
	}
	return n;
}
