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
 *   struct prim_slot_shm    nslots of them: a thread inside a slow call
 *                           owns one; it holds its request, the request
 *                           word, and what it waits for (GETNCNT, FIFO).
 *                           The first CTL_SLOTS are control slots, never
 *                           held by a caller that sleeps.
 *   struct prim_undo_shm    nprocs of them: owner identity, then nsems
 *                           adjustment words (SEM_UNDO, per process)
 *
 * Memory follows use (SEM_12): records and slots are claimed lowest first,
 * and the header's high-water marks (slots_hw, undo_hw) bound every scan,
 * so a page of the set is touched only once something lives there. A set
 * made in memory known to be zero (PRIM_SEMSET_ZEROED, fresh pages of a
 * new segment) is not cleared either: until callers block or use SEM_UNDO
 * its resident memory is the pages of the header, the semaphores and the
 * first slot's header.
 *
 * Every semaphore, adjustment and request word is 64 bits:
 *   bits  0-15 value (semval 0..32767, semadj as int16, or enum req_state)
 *   bit     16 SLEEPERS  someone may sleep on this word's futex
 *   bit     17 HELD      frozen by the active request
 *   bit     18 REMOVED   the set was removed (or damaged)
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
 * - Waiting, FIFO (SEM_8): a blocked caller takes a ticket, marks its
 *   slot waiting, sets SLEEPERS on the word of its first blocking operation
 *   and sleeps there (wait_sem). An increment that finds SLEEPERS keeps the
 *   flag (a newcomer's decrement then queues instead of slipping in) and
 *   completes the waiters' requests in ticket order, as the kernel's
 *   update_queue does; woken waiters do the same, and each looks for
 *   itself at least once a second. Whoever finds nobody left waiting
 *   clears SLEEPERS.
 * - Retries (SEM_13): whoever decides that a request blocks records where
 *   (blk: operation, semaphore, ncnt or zcnt) and flags every semaphore
 *   named up to that operation, so that any change of one of them hands
 *   off to the waiter, as the kernel retries a waiting array on every
 *   change (one that only waits for zero when a changed semaphore is
 *   zero). A retry may move the wait to another semaphore (GETNCNT and
 *   GETZCNT count it where blk says) or end it: done, or failed with
 *   ERANGE or, at an IPC_NOWAIT operation, EAGAIN (REQ_ERANGE,
 *   REQ_EAGAIN: final, like REQ_DONE). The hand-off then wakes the waiter
 *   where it sleeps.
 * - Control slots: a request that never sleeps (SETVAL, SETALL, a reap,
 *   one whose operations all have IPC_NOWAIT, a proxied one) may take any
 *   slot; a caller that may sleep takes only the others. So a reap or a
 *   SETVAL finds a slot even when every other slot holds a sleeper; a
 *   control slot whose owner is dead is taken over.
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
 * Hostile memory. Every process that may write the set may write any of
 * it, so nothing read from it is trusted (doc/design.md, "Trust and
 * containment"):
 * - The geometry is the handle's copy (SEM_5). A request's content is
 *   copied and checked once its request word is frozen (snapshot()); only
 *   the checked copy gives sizes, counts and indices, and every semaphore
 *   number read from the slot again is checked against nsems at use.
 * - Every loop that retries because of another process's write counts its
 *   retries against the call's patience (prim__patience_spent): a call that
 *   does not sleep gives up within its patience (-EAGAIN for an operation,
 *   -EBUSY for control), a timed call at its deadline.
 * - A frozen word no active request holds is stale and is repaired
 *   (SEM_11). What the protocol never produces is damage, not contention:
 *   a request whose frozen content is out of range, an active slot outside
 *   the pool, a request word that is not idle when its owner publishes, a
 *   decision naming an operation the request does not have. The set is
 *   then marked DAMAGED (every word REMOVED, sleepers woken) and every
 *   call returns -ENOTRECOVERABLE.
 *
 * Memory ordering: every access to a shared word is a ck_pr load, store or
 * CAS. ck's CAS is a full barrier on x86 and POWER but not everywhere
 * (aarch64's is acquire-release at most): the orderings below carry tagged
 * fences; the rest of the file still leans on the CAS being a barrier, and
 * its audit for weakly ordered machines is yet to be done.
 * SEM_1: a request's content is written before its request word says
 *        PUBLISHED (store fence, then CAS); pairs with SEM_7.
 * SEM_4: every CAS a helper makes on a word expects the value it read
 *        before checking that its generation is still active (and, to
 *        freeze, undecided): completing the generation changes the word's
 *        version, so a late helper's CAS fails; no word is frozen after
 *        the decision nor unfrozen twice. The loads of astate and active
 *        that decide are ordered after the load of the word (load fence).
 * SEM_5: the header's geometry is read once at open, after the acquire of
 *        the segment magic (SEG_2), and re-checked on every use.
 * SEM_6: sempid is stored after the CAS that made the value (by CAS on
 *        version << 32 | pid, forward only), and before any wake-up, so a
 *        woken waiter's own operation, later, overwrites it.
 * SEM_7: a helper reads a request's content only once its request word is
 *        frozen by the helper's generation, and trusts what it read only if
 *        the request word and `active` are unchanged after the reads (load
 *        fences on both sides): the owner cannot withdraw or rewrite a
 *        request whose word is frozen; pairs with SEM_1.
 * SEM_8: hand-off; see handoff().
 * SEM_9: reap; see prim_semset_reap().
 * SEM_13: blk is stored (blk_put(), a CAS, forward only by generation)
 *        before the first unfreeze CAS of the decision that blocked, the
 *        one that sets SLEEPERS on the words it names; a hand-off loads a
 *        word's SLEEPERS, then (load fence in slots_used()) the slots'
 *        blk: one that sees the flag sees where the waiter blocks. blk only
 *        advises (counts, whom to serve): the decision is made on frozen
 *        words.
 * SEM_11: stale freezes. A helper's freeze CAS is checked against the
 *        decision just before it (SEM_4), but a decision made without
 *        freezing every target (ST_ABORT, ST_EIDRM) does not change the
 *        targets it did not reach, so a straggler's freeze may still land
 *        on one after the generation is decided, even after it went idle.
 *        Such a word's value is still its true value. So a word HELD with
 *        a tag that is not the active generation's is stale: the active
 *        generation freezes it as if it were not frozen, and anyone else
 *        unfreezes it (CAS on the exact word, value unchanged), after
 *        loading `active` (load fence after the word). A generation that
 *        is really freezing the word stays active until it has unfrozen
 *        it, which changes its version: the CAS on a stale copy fails. A
 *        hostile HELD bit is repaired the same way.
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

#define SEM_LAYOUT_VERSION 5

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
/* Slots kept for requests that never sleep (see "Control slots"). */
#define CTL_SLOTS 2

/* Spins before sleeping: long enough for a hand-off on another CPU. */
#define SPIN_LIMIT 4000

/* op_one(): the operation cannot proceed now (not an errno). */
#define WOULD_BLOCK 1
/* complete(), snapshot(): came too late to see the generation (not an
 * errno). */
#define LATE 0

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
	/* SEM_12: slots and undo records ever claimed (+1 of the highest):
	 * every scan stops there. Raised before the claim, never lowered. */
	uint32_t slots_hw, undo_hw;
	uint8_t pad1[192 - 64 - 80];
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
	uint64_t patience_ns;
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
	ST_EAGAIN,	/* blocked at an IPC_NOWAIT operation: fails */
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
	REQ_ERANGE = 3,		/* failed with ERANGE; its owner resets it */
	REQ_EAGAIN = 4,		/* failed with EAGAIN (IPC_NOWAIT) */
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
	uint32_t arg;		/* SETVAL: semnum; REAP: pid; OPS: sempid
				   (0: the owner's) */
	int32_t val;		/* SETVAL: value */
	uint32_t kind;		/* enum req_kind */
	/*
	 * Where the request last blocked (SEM_13): BLK(gen, index of the
	 * blocking operation, wait_kind, semaphore + 1) of the newest
	 * generation that decided it blocked, or 0. Written by whoever
	 * decided, forward only (blk_put()), so a waiter is counted and
	 * served where the kernel would count it even when another process
	 * re-decided its request while it slept.
	 */
	uint64_t blk;
	/* Then cap operations, then cap distinct semaphore numbers. */
	struct prim_sembuf ops[];
};
_Static_assert(sizeof(struct prim_slot_shm) == 64, "slot header is a line");
_Static_assert(offsetof(struct prim_slot_shm, blk) == 56, "blk aligned");

#define BLK(gen, idx, kind, sem)                                         \
	((uint64_t)(uint32_t)(gen) << 32 | (uint64_t)((idx)&0x1fff) << 18 | \
	 (uint64_t)((kind)&3) << 16 | (uint64_t)(((sem) + 1) & 0xffff))
#define BLK_GEN(b) ((uint32_t)((b) >> 32))
#define BLK_IDX(b) ((uint32_t)(((b) >> 18) & 0x1fff))
#define BLK_KIND(b) ((uint32_t)(((b) >> 16) & 3))
/* The semaphore + 1, 0 for none. */
#define BLK_SEM1(b) ((uint32_t)((b)&0xffff))
_Static_assert(sizeof(struct prim_sembuf) == 6, "sembuf layout");

/* A request's content as a helper copied and checked it (snapshot()). */
struct req {
	uint32_t kind, nops, ndist, undo, arg;
	int32_t val;
};

/* Who an operation is for: the caller, or a process a broker acts for. */
struct actor {
	uint32_t pid;		/* sempid */
	uint64_t ident;		/* SEM_UNDO owner, 0: this process */
	int proxy;		/* never sleep; report a blocking operation */
	int blocked;		/* out: it would block without IPC_NOWAIT */
};

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
	    g->nslots > MAX_NSLOTS || g->nslots <= CTL_SLOTS)
		return -EINVAL;
	/* A slot holds up to semopm operations or nsems SETALL values. */
	g->cap = g->semopm > g->nsems ? g->semopm : g->nsems;
	/* SEM_12: the first slot (a control slot) right after the
	 * semaphores, on the page a SETVAL touches anyway. */
	g->off_sems = sizeof(struct prim_semset_shm);
	g->off_slots = g->off_sems + (size_t)g->nsems * sizeof(struct prim_sem_shm);
	n = sizeof(struct prim_slot_shm) +
	    (size_t)g->cap * sizeof(struct prim_sembuf) +
	    (size_t)g->cap * sizeof(uint16_t);
	g->slot_size = align_line(n);
	g->off_undo = g->off_slots + (size_t)g->nslots * g->slot_size;
	g->undo_size = align_line(sizeof(struct prim_undo_shm) +
				  (size_t)g->nsems * sizeof(uint64_t));
	g->size = g->off_undo + (size_t)g->nprocs * g->undo_size;
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

/*
 * SEM_12: how many slots (undo records) a scan must look at: the
 * high-water mark, clamped to the handle's geometry. A hostile mark is
 * harmless to the scanner: a lower one hides that set's own waiters from
 * hand-offs (they still look for themselves once a second) and counts.
 * The mark is loaded after what made the scan necessary (a word with
 * SLEEPERS, a dead owner): a claimer raises it before its claim CAS, both
 * before it publishes (SEM_1) or flags a word, so a scanner that sees the
 * request or the flag sees the mark (load fence; pairs with raise_hw()).
 */
static uint32_t
used_of(const uint32_t *mark, uint32_t max)
{
	uint32_t x;

	ck_pr_fence_load();
	x = ck_pr_load_32(mark);
	return x < max ? x : max;
}

static uint32_t
slots_used(const struct prim_semset *h)
{
	return used_of(&h->shm->slots_hw, h->nslots);
}

static uint32_t
undo_used(const struct prim_semset *h)
{
	return used_of(&h->shm->undo_hw, h->nprocs);
}

/* Raise a mark to at least v before claiming index v - 1 (a CAS: a full
 * barrier before the claim's CAS). Bounded: a mark someone keeps lowering
 * only hides this set's own records. */
static void
raise_hw(uint32_t *mark, uint32_t v)
{
	for (int i = 0; i < 64; i++) {
		uint32_t x = ck_pr_load_32(mark);

		if (x >= v || ck_pr_cas_32(mark, x, v))
			return;
	}
}

static uint16_t *
slot_dist(const struct prim_semset *h, struct prim_slot_shm *s)
{
	return (uint16_t *)(s->ops + h->cap);
}

/*
 * A slot's operation i, each field loaded once: others may rewrite the
 * slot meanwhile (a late helper reads a request its owner is replacing,
 * SEM_7), so a plain read would be a data race, and a compiler may read a
 * plain field twice (once for its check, once for its use).
 */
static struct prim_sembuf
slot_op(const struct prim_slot_shm *s, uint32_t i)
{
	const uint16_t *f = (const uint16_t *)(const void *)&s->ops[i];
	struct prim_sembuf op;

	op.sem_num = ck_pr_load_16(&f[0]);
	op.sem_op = (short)ck_pr_load_16(&f[1]);
	op.sem_flg = (short)ck_pr_load_16(&f[2]);
	return op;
}

/* Store operation i of a slot (the owner's, before it publishes). */
static void
slot_op_put(struct prim_slot_shm *s, uint32_t i, const struct prim_sembuf *op)
{
	uint16_t *f = (uint16_t *)(void *)&s->ops[i];

	ck_pr_store_16(&f[0], op->sem_num);
	ck_pr_store_16(&f[1], (uint16_t)op->sem_op);
	ck_pr_store_16(&f[2], (uint16_t)op->sem_flg);
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
	/* SEM_12: fresh pages are zero already; clearing would touch them. */
	if (attr->flags & PRIM_SEMSET_ZEROED)
		memset(mem, 0, sizeof(*h));
	else
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
	a.nsems = ck_pr_load_32(&h->nsems);
	a.semopm = ck_pr_load_32(&h->semopm);
	a.nprocs = ck_pr_load_32(&h->nprocs);
	a.nslots = ck_pr_load_32(&h->nslots);
	a.flags = 0;
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
	p->patience_ns = PRIM_PATIENCE_NS;
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

void
prim_semset_set_patience(struct prim_semset *set, uint64_t ns)
{
	hdr(set)->patience_ns = ns;
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

/* w frozen by tag, next version. */
static uint64_t
wfreeze(uint64_t w, uint64_t tag)
{
	return (((w | W_HELD) & ~W_TAG_MASK) | tag) + W_VER_ONE;
}

static bool
frozen_by(uint64_t w, uint64_t tag)
{
	return (w & W_HELD) && (w & W_TAG_MASK) == tag;
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
 * the operation that made it). sempid is for display: a few tries, then
 * it is left to whoever keeps changing it.
 */
static void
set_pid(struct prim_sem_shm *s, uint32_t pid, uint32_t ver, bool same_ok)
{
	uint64_t cur = ck_pr_load_64(&s->pidv);
	uint64_t want = (uint64_t)ver << 32 | pid;

	for (int tries = 0; tries < 16; tries++) {
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

/* 0 while the set is live, else its error (-EIDRM, -ENOTRECOVERABLE). */
static int
set_dead(const struct prim_semset *h)
{
	if (ck_pr_load_32((uint32_t *)&h->shm->seg.state) == PRIM_SEG_LIVE)
		return 0;
	return prim__seg_dead(h->shm);
}

/* The error for a word marked REMOVED: removed, or damaged. */
static int
dead(const struct prim_semset *h)
{
	int r = set_dead(h);

	return r != 0 ? r : -EIDRM;
}

/*
 * Mark every word REMOVED and wake its sleepers (who then find the set's
 * state). The OR cannot fail, so this is bounded whatever others write;
 * SLEEPERS is read after it, so a sleeper that set it before is woken and
 * one that tries after fails its CAS and finds REMOVED.
 */
static void
mark_words(struct prim_semset *h)
{
	for (uint32_t i = 0; i < h->nsems; i++) {
		uint64_t *p = &sem_at(h, i)->word;

		ck_pr_or_64(p, W_REMOVED);
		if (ck_pr_load_64(p) & W_SLEEPERS)
			wake_word(p);
	}
}

/* The set's memory is inconsistent: mark it damaged (doc/design.md). */
static int
damage(struct prim_semset *h)
{
	int r = prim__seg_damage(h->shm);

	mark_words(h);
	return r;
}

/* ---------------------------------------------------------------------
 * Requests: their content, targets and decision
 */

/* Is n among the ndist sorted distinct numbers d? */
static bool
in_dist(const uint16_t *d, uint32_t ndist, uint16_t n)
{
	uint32_t lo = 0, hi = ndist;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint16_t v = ck_pr_load_16(&d[mid]);

		if (v == n)
			return true;
		if (v < n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Is the request r, read from slot s, one that write_ops() or control()
 * could have written? */
static bool
req_sane(const struct prim_semset *h, struct prim_slot_shm *s,
	 const struct req *r)
{
	const uint16_t *d = slot_dist(h, s);

	switch (r->kind) {
	case REQ_OPS:
		if (r->nops < 1 || r->nops > h->cap || r->ndist < 1 ||
		    r->ndist > r->nops || r->ndist > h->nsems ||
		    r->undo > h->nprocs)
			return false;
		for (uint32_t k = 0; k < r->ndist; k++) {
			uint16_t n = ck_pr_load_16(&d[k]);

			if (n >= h->nsems ||
			    (k > 0 && n <= ck_pr_load_16(&d[k - 1])))
				return false;
		}
		for (uint32_t i = 0; i < r->nops; i++)
			if (!in_dist(d, r->ndist, slot_op(s, i).sem_num))
				return false;
		return true;
	case REQ_SETVAL:
		return r->arg < h->nsems && r->val >= 0 &&
		       r->val <= PRIM_SEMVMX && r->undo <= h->nprocs;
	case REQ_SETALL:
		if (r->nops != h->nsems || r->undo > h->nprocs)
			return false;
		for (uint32_t i = 0; i < h->nsems; i++)
			if ((uint16_t)slot_op(s, i).sem_op > PRIM_SEMVMX)
				return false;
		return true;
	case REQ_REAP:
		return r->undo >= 1 && r->undo <= h->nprocs;
	}
	return false;
}

/*
 * SEM_12: SETVAL and SETALL clear the adjustments of the undo records in
 * use when their owner published (r->undo of them), not of all nprocs: a
 * record nobody ever claimed is zero and untouched. A record claimed since
 * then and used by a request that completed before this one (it froze and
 * unfroze a word this request froze after it) raised the mark first:
 * read after every target is frozen (load fence, after the loads that saw
 * them frozen), it says so, and the request is decided ST_BLOCK, which for
 * a control request means "again": its owner republishes it with the new
 * count (control()).
 */
static uint64_t
decide_ctl(const struct prim_semset *h, const struct req *r, uint32_t gen)
{
	if ((r->kind == REQ_SETVAL || r->kind == REQ_SETALL) &&
	    undo_used(h) > r->undo)
		return ST(gen, ST_BLOCK, 0, 0);
	return ST(gen, ST_DONE, 0, 0);
}

/* Is gen's request still the active one? */
static bool
still_active(const struct prim_semset *h, uint64_t act)
{
	return ck_pr_load_64((uint64_t *)&h->shm->active) == act;
}

/*
 * Copy the request of slot s, whose request word the generation act
 * (tag) has frozen, into r and check it (SEM_7). Returns 1, LATE when
 * the request word is no longer frozen by act (the caller came late, and
 * what it read may be a later request), or -ENOTRECOVERABLE when a frozen,
 * active request's content is out of range: only a hostile write does
 * that.
 */
static int
snapshot(struct prim_semset *h, struct prim_slot_shm *s, uint64_t act,
	 uint64_t tag, struct req *r)
{
	uint64_t w = ck_pr_load_64(&s->req);

	if (!frozen_by(w, tag) || !still_active(h, act))
		return LATE;
	/* SEM_7: the content after the frozen request word... */
	ck_pr_fence_load();
	r->kind = ck_pr_load_32(&s->kind);
	r->nops = ck_pr_load_32(&s->nops);
	r->ndist = ck_pr_load_32(&s->ndist);
	r->undo = ck_pr_load_32(&s->undo);
	r->arg = ck_pr_load_32(&s->arg);
	r->val = (int32_t)ck_pr_load_32((uint32_t *)&s->val);
	/* ...and the word and act unchanged after it. */
	ck_pr_fence_load();
	if (ck_pr_load_64(&s->req) != w || !still_active(h, act))
		return LATE;
	if (req_sane(h, s, r))
		return 1;
	ck_pr_fence_load();
	if (ck_pr_load_64(&s->req) != w || !still_active(h, act))
		return LATE;
	return damage(h);
}

/* Targets of a request: its own request word, then semaphores, then
 * adjustments. */
static uint32_t
ntargets(const struct prim_semset *h, const struct req *r)
{
	switch (r->kind) {
	case REQ_OPS:
		return 1 + (r->undo ? 2 * r->ndist : r->ndist);
	/* SETVAL, SETALL: undo is the number of records in use (SEM_12). */
	case REQ_SETVAL:
		return 2 + r->undo;
	case REQ_SETALL:
		return 1 + h->nsems + r->undo * h->nsems;
	case REQ_REAP:
		return 1 + 2 * h->nsems;
	}
	return 1;
}

/*
 * The word of target i of request r in slot s, the semaphore it belongs
 * to, and what it is. NULL only when a semaphore number in the slot changed
 * since snapshot() checked it (a hostile write).
 */
enum tkind { T_REQ, T_SEM, T_ADJ };

static uint64_t *
target(const struct prim_semset *h, struct prim_slot_shm *s,
       const struct req *r, uint32_t i, uint32_t *semnum, enum tkind *tk)
{
	uint32_t n, u = 0;
	bool adj = false;

	*semnum = 0;
	*tk = T_REQ;
	if (i == 0)
		return &s->req;
	i--;
	switch (r->kind) {
	case REQ_OPS:
		if (i >= r->ndist) {
			i -= r->ndist;
			adj = true;
		}
		n = ck_pr_load_16(&slot_dist(h, s)[i]);
		u = r->undo;
		break;
	case REQ_SETVAL:
		n = r->arg;
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
	default: /* REQ_REAP */
		n = i % h->nsems;
		u = r->undo;
		adj = i >= h->nsems;
		break;
	}
	if (n >= h->nsems || (adj && (u == 0 || u > h->nprocs)))
		return NULL;
	*semnum = n;
	*tk = adj ? T_ADJ : T_SEM;
	if (!adj)
		return &sem_at(h, n)->word;
	return &undo_at(h, u - 1)->adj[n];
}

/*
 * SEM_8: would an older waiter on semaphore n (its request about n alone)
 * proceed at value v? The kernel serves waiters in order under its lock,
 * each at the value the one before it left; here passes and increments
 * run concurrently, and a younger request decided just after an increment
 * another process made could take what the older waiter now may have. So
 * a request that decrements n yields (is decided blocked) to such a
 * waiter; the hand-off serves the older one first. Older means an earlier
 * ticket, or any ticket for a request that has none yet (a newcomer). A
 * multi-semaphore waiter is not judged here (that needs its other frozen
 * words): among those, order is approximate. Bounded by nslots; a slot's
 * content is read as any other, checked, and only advises the decision.
 */
static bool
older_could_take(const struct prim_semset *h, struct prim_slot_shm *self,
		 uint32_t n, int v)
{
	uint64_t mine = ck_pr_load_64(&self->ticket);
	uint32_t used = slots_used(h);

	for (uint32_t j = 0; j < used; j++) {
		struct prim_slot_shm *o = slot_at(h, j);
		uint32_t nops;
		uint64_t t;
		int x = v;
		bool ok = true;

		if (o == self || BLK_SEM1(ck_pr_load_64(&o->blk)) != n + 1 ||
		    ck_pr_load_32(&o->wait_kind) == WAIT_NONE ||
		    ck_pr_load_64(&o->req) == 0 ||
		    wval(ck_pr_load_64(&o->req)) != REQ_PUBLISHED)
			continue;
		t = ck_pr_load_64(&o->ticket);
		if (t == 0 || (mine != 0 && t >= mine))
			continue;
		nops = ck_pr_load_32(&o->nops);
		if (ck_pr_load_32(&o->kind) != REQ_OPS ||
		    ck_pr_load_32(&o->ndist) != 1 ||
		    ck_pr_load_16(&slot_dist(h, o)[0]) != n || nops < 1 ||
		    nops > h->cap)
			continue;
		for (uint32_t i = 0; i < nops && ok; i++) {
			struct prim_sembuf op = slot_op(o, i);

			if (op.sem_num != n || (op.sem_op == 0 && x != 0) ||
			    x + op.sem_op < 0 || x + op.sem_op > PRIM_SEMVMX)
				ok = false;
			else
				x += op.sem_op;
		}
		if (ok)
			return true;
	}
	return false;
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
	   const struct req *r, uint32_t gen)
{
	uint32_t first = UINT32_MAX;
	uint64_t res = ST(gen, ST_DONE, 0, 0);
	const uint16_t *d = slot_dist(h, s);

	for (uint32_t k = 0; k < r->ndist; k++) {
		uint32_t n = ck_pr_load_16(&d[k]);
		unsigned frozen;
		int v, a = 0;

		if (n >= h->nsems)
			return ST(gen, ST_EIDRM, 0, 0);
		frozen = wval(ck_pr_load_64(&sem_at(h, n)->word));
		v = (int)frozen;
		if (r->undo != 0)
			a = (int16_t)wval(ck_pr_load_64(
				&undo_at(h, r->undo - 1)->adj[n]));
		for (uint32_t i = 0; i < r->nops && i < first; i++) {
			struct prim_sembuf op = slot_op(s, i);

			if (op.sem_num != n)
				continue;
			/*
			 * Blocked: the caller sleeps on the real value. At an
			 * IPC_NOWAIT operation the request fails, also when
			 * a hand-off retries a waiter (the kernel's
			 * perform_atomic_semop returns -EAGAIN to
			 * update_queue, which wakes the waiter with it).
			 */
			if ((op.sem_op == 0 && v != 0) || v + op.sem_op < 0) {
				first = i;
				res = ST(gen,
					 (op.sem_flg & PRIM_IPC_NOWAIT)
						 ? ST_EAGAIN
						 : ST_BLOCK,
					 i, frozen);
				break;
			}
			if (v + op.sem_op > PRIM_SEMVMX) {
				first = i;
				res = ST(gen, ST_ERANGE, i, 0);
				break;
			}
			if ((op.sem_flg & PRIM_SEM_UNDO) && r->undo) {
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
	if (ST_STATUS(res) != ST_DONE)
		return res;
	/* SEM_8: an older waiter that may proceed first goes first. */
	for (uint32_t k = 0; k < r->ndist; k++) {
		/* Loaded again: checked again (a writer may have changed it
		 * since the loop above). */
		uint32_t n = ck_pr_load_16(&d[k]);
		unsigned frozen;

		if (n >= h->nsems)
			return ST(gen, ST_EIDRM, 0, 0);
		frozen = wval(ck_pr_load_64(&sem_at(h, n)->word));
		for (uint32_t i = 0; i < r->nops; i++) {
			struct prim_sembuf op = slot_op(s, i);

			if (op.sem_num != n || op.sem_op >= 0)
				continue;
			if (older_could_take(h, s, n, (int)frozen))
				return ST(gen, ST_BLOCK, i, frozen);
			break;
		}
	}
	return res;
}

/* Net change of semaphore n (adj: of its adjustment) on success. */
static int
ops_delta(struct prim_slot_shm *s, const struct req *r, uint32_t n, bool adj)
{
	int d = 0;

	for (uint32_t i = 0; i < r->nops; i++) {
		struct prim_sembuf op = slot_op(s, i);

		if (op.sem_num != n)
			continue;
		if (!adj)
			d += op.sem_op;
		else if (op.sem_flg & PRIM_SEM_UNDO)
			d -= op.sem_op;
	}
	return d;
}

/* Does an operation before or at index idx of request r name n? */
static bool
named_upto(struct prim_slot_shm *s, const struct req *r, uint32_t n,
	   uint32_t idx)
{
	for (uint32_t i = 0; i <= idx && i < r->nops; i++)
		if (slot_op(s, i).sem_num == n)
			return true;
	return false;
}

/* The request word's state once a request is decided st. */
static unsigned
req_after(uint64_t st, uint64_t w)
{
	switch (ST_STATUS(st)) {
	case ST_DONE:
		return REQ_DONE;
	case ST_ERANGE:
		return REQ_ERANGE;
	case ST_EAGAIN:
		return REQ_EAGAIN;
	}
	return wval(w);
}

/* What a finished request word's state stands for: 0, -ERANGE, -EAGAIN;
 * 1 while it is not finished. */
static int
req_outcome(unsigned state)
{
	switch (state) {
	case REQ_DONE:
		return 0;
	case REQ_ERANGE:
		return -ERANGE;
	case REQ_EAGAIN:
		return -EAGAIN;
	}
	return 1;
}

/*
 * SEM_13: record b (BLK()) as where slot s's request blocks, unless a
 * newer generation's decision is there already. What it feeds (GETNCNT,
 * GETZCNT, whom a hand-off serves) is advisory: the decision is made on
 * frozen words. A few tries, as set_pid().
 */
static void
blk_put(struct prim_slot_shm *s, uint64_t b)
{
	uint64_t cur = ck_pr_load_64(&s->blk);

	for (int tries = 0; tries < 16; tries++) {
		if (cur == b || (cur != 0 &&
				 (int32_t)(BLK_GEN(b) - BLK_GEN(cur)) <= 0))
			return;
		if (cas64(&s->blk, &cur, b))
			return;
	}
}

static int
clamp_val(int v)
{
	return v < 0 ? 0 : v > PRIM_SEMVMX ? PRIM_SEMVMX : v;
}

static int
clamp_adj(int v)
{
	return v < -PRIM_SEMAEM - 1 ? -PRIM_SEMAEM - 1
				    : v > PRIM_SEMAEM ? PRIM_SEMAEM : v;
}

/*
 * New value of a frozen word w (target of semaphore n) once the request
 * is decided. For REQ_REAP a semaphore's new value needs its adjustment,
 * which is still frozen: adjustments are unfrozen only after every
 * semaphore. Clamped: a slot rewritten since the decision (a hostile
 * write) still leaves values in range.
 */
static unsigned
new_value(const struct prim_semset *h, struct prim_slot_shm *s,
	  const struct req *r, uint64_t w, uint32_t n, bool is_adj,
	  unsigned status)
{
	int v = is_adj ? (int16_t)wval(w) : (int)wval(w);

	if (status != ST_DONE)
		return wval(w);
	switch (r->kind) {
	case REQ_OPS:
		v += ops_delta(s, r, n, is_adj);
		break;
	case REQ_SETVAL:
		v = is_adj ? 0 : r->val;
		break;
	case REQ_SETALL:
		v = is_adj ? 0 : (int)(uint16_t)slot_op(s, n).sem_op;
		break;
	case REQ_REAP:
		if (is_adj) {
			v = 0;
		} else {
			uint64_t a = ck_pr_load_64(&undo_at(h, r->undo - 1)->adj[n]);

			v += (int16_t)wval(a);
		}
		break;
	}
	v = is_adj ? clamp_adj(v) : clamp_val(v);
	return (unsigned)v & W_VALUE;
}

/*
 * sempid of semaphore n once a request is done: its owner's pid (or the
 * pid it acts for) for the operations (every semaphore named, wait-for-
 * zero too), SETVAL and SETALL; the dead pid for exit-time undo, only
 * where it had an adjustment (still frozen: adjustments unfreeze last); 0
 * for no change.
 */
static uint32_t
sempid_of(const struct prim_semset *h, struct prim_slot_shm *s,
	  const struct req *r, uint32_t n, unsigned status)
{
	if (status != ST_DONE)
		return 0;
	if (r->kind == REQ_OPS && r->arg != 0)
		return r->arg;
	if (r->kind != REQ_REAP)
		return PRIM_IDENT_PID(ck_pr_load_64(&s->ident));
	return wval(ck_pr_load_64(&undo_at(h, r->undo - 1)->adj[n])) != 0
		       ? r->arg
		       : 0;
}

/* ---------------------------------------------------------------------
 * Completing requests
 */

static int help(struct prim_semset *h, struct prim_patience *pt);

/*
 * Complete the request of slot si, generation gen, if it is still the one
 * the caller saw active, and set *out to its decision (0 when the caller
 * came too late to see it). Returns 0, or -EAGAIN (patience), -EINTR,
 * -ENOTRECOVERABLE. Safe from any number of helpers at once.
 *
 * SEM_4: every CAS on a word expects the value read BEFORE checking that
 * gen is still active and (for freezing) undecided: a late helper's CAS
 * fails, because completing gen changed the word's version. So no word
 * is frozen after the decision, and none is unfrozen twice.
 * SEM_7: the request word is frozen first, and the request's content is
 * read and checked only while it is frozen by gen (snapshot()).
 * A helper killed or stopped anywhere here leaves words frozen by gen;
 * the next helper (anyone who finds a frozen word or wants to activate)
 * finishes the same steps. A helper that gives up (patience) leaves the
 * same: its progress stays for the next one. A request may be huge (a
 * SETALL freezes nsems * (nprocs + 1) words): one who helps another's
 * request (!own) counts every 1024 words it freezes or unfreezes as a
 * retry, so that helping is bounded in time too; the owner finishes its
 * own. Only words it changed count: the next helper skips them at once,
 * so each helper that gives up has still moved the request on.
 */
static int
complete(struct prim_semset *h, uint32_t si, uint32_t gen, bool own,
	 struct prim_patience *pt, uint64_t *out)
{
	struct prim_slot_shm *s = slot_at(h, si);
	const uint64_t act = (uint64_t)gen << 16 | (si + 1);
	const uint64_t tag = tag_of(gen);
	struct req r;
	uint64_t st;
	uint32_t i, n, nt = 1;
	enum tkind tk;
	bool have = false;
	uint32_t work = 0; /* words changed, for a helper's patience */
	int e;

	*out = 0;
	st = ck_pr_load_64(&h->shm->astate);
	if (ST_GEN(st) != gen) {
		unsigned why = ST_NONE;
		uint64_t d;

		/* Freeze every target, the request word first. */
		for (i = 0; i < nt; i++) {
			uint64_t *p = have ? target(h, s, &r, i, &n, &tk)
					   : &s->req;
			uint64_t w;

			if (p == NULL)
				return damage(h);
			w = ck_pr_load_64(p);
			for (;;) {
				/* SEM_4: the word, then active and astate. */
				ck_pr_fence_load();
				if (!still_active(h, act))
					return 0;
				st = ck_pr_load_64(&h->shm->astate);
				if (ST_GEN(st) == gen)
					goto decided;
				if (frozen_by(w, tag))
					break;
				if (i == 0 && !(w & W_HELD) &&
				    wval(w) != REQ_PUBLISHED) {
					why = ST_ABORT;
					break;
				}
				if (w & W_REMOVED) {
					why = ST_EIDRM;
					break;
				}
				/* Frozen by another generation while gen is
				 * active: never in the protocol. */
				/* Frozen by another generation while gen is
				 * active: a stale freeze (SEM_11), taken over
				 * with its value. */
				if (cas64(p, &w, wfreeze(w, tag))) {
					if (!own && (++work & 1023) == 0 &&
					    (e = prim__patience_spent(pt)) != 0)
						return e;
					break;
				}
				if ((e = prim__patience_spent(pt)) != 0)
					return e;
			}
			if (why != ST_NONE)
				break;
			if (i == 0) {
				e = snapshot(h, s, act, tag, &r);
				if (e <= 0)
					return e; /* LATE (0) or damaged */
				have = true;
				nt = ntargets(h, &r);
			}
		}
		/* Decide from the frozen values. */
		if (why != ST_NONE) {
			d = ST(gen, why, 0, 0);
		} else {
			for (i = 0; i < nt; i++) {
				uint64_t *p = target(h, s, &r, i, &n, &tk);

				if (p == NULL || !frozen_by(ck_pr_load_64(p), tag))
					goto recheck; /* decided meanwhile */
			}
			d = r.kind == REQ_OPS ? decide_ops(h, s, &r, gen)
					      : decide_ctl(h, &r, gen);
		}
		if (still_active(h, act))
			ck_pr_cas_64(&h->shm->astate, st, d);
	recheck:
		st = ck_pr_load_64(&h->shm->astate);
		if (ST_GEN(st) != gen)
			return 0;
	}
decided:
	*out = st;
	/*
	 * Unfreeze: semaphores, adjustments, and the request word last. Also
	 * after ST_ABORT: one helper may have seen the request word idle (its
	 * owner withdrew it) while another, later, saw it published again
	 * (the slot's next request) and froze it and more: those go back
	 * unchanged, and the next request runs in a generation of its own.
	 */
	{
		if (!have) {
			e = snapshot(h, s, act, tag, &r);
			if (e < 0)
				return e;
			if (e == LATE)
				goto idle; /* all unfrozen already */
			have = true;
		}
		nt = ntargets(h, &r);
		/*
		 * SEM_13: where it blocks, before any target is unfrozen (so
		 * before a word flagged below is seen): a hand-off finds it
		 * there, and GETNCNT/GETZCNT count it there, as the kernel
		 * counts a waiter on the semaphore of its `blocking' sop.
		 */
		if (r.kind == REQ_OPS && ST_STATUS(st) == ST_BLOCK) {
			struct prim_sembuf op;

			if (ST_IDX(st) >= r.nops)
				return damage(h);
			op = slot_op(s, ST_IDX(st));
			if (op.sem_num >= h->nsems)
				return damage(h);
			blk_put(s, BLK(gen, ST_IDX(st),
				       op.sem_op == 0 ? WAIT_Z : WAIT_N,
				       op.sem_num));
		}
		for (uint32_t k = 1; k <= nt; k++) {
			uint64_t *p, w, nw;
			uint32_t pid = 0;
			unsigned v;

			i = k % nt;
			if ((p = target(h, s, &r, i, &n, &tk)) == NULL)
				return damage(h);
			w = ck_pr_load_64(p);
			for (;;) {
				if (!frozen_by(w, tag))
					break; /* another helper unfroze it */
				if (!still_active(h, act))
					return 0;
				if (tk == T_REQ) {
					v = req_after(st, w);
				} else {
					v = new_value(h, s, &r, w, n,
						      tk == T_ADJ,
						      ST_STATUS(st));
					/* Read while frozen: the slot is
					 * gen's. */
					if (tk == T_SEM)
						pid = sempid_of(h, s, &r, n,
								ST_STATUS(st));
				}
				nw = wnext(w & ~(W_HELD | W_TAG_MASK), v);
				/*
				 * SEM_13: a request that blocks flags every
				 * semaphore up to its blocking operation: a
				 * change of any of them hands off, and may
				 * move or end its wait (the kernel retries
				 * waiters on every change, update_queue).
				 */
				if (tk == T_SEM && r.kind == REQ_OPS &&
				    ST_STATUS(st) == ST_BLOCK &&
				    named_upto(s, &r, n, ST_IDX(st)))
					nw |= W_SLEEPERS;
				if (cas64(p, &w, nw)) {
					if (pid != 0)
						set_pid(sem_at(h, n), pid,
							wver(nw), false);
					/* Sleepers stay flagged: they take
					 * their turn (handoff). */
					if (tk == T_SEM && v != wval(w) &&
					    (w & W_SLEEPERS))
						wake_word(p);
					/* After the word's bookkeeping. */
					if (!own && (++work & 1023) == 0 &&
					    (e = prim__patience_spent(pt)) != 0)
						return e;
					break;
				}
				if ((e = prim__patience_spent(pt)) != 0)
					return e;
			}
		}
	}
idle:
	ck_pr_cas_64(&h->shm->active, act, (uint64_t)gen << 16);
	return 0;
}

/*
 * Complete whatever request is active. Returns 0 if none was, 1 if one
 * was helped along, or -errno (patience, damage).
 */
static int
help(struct prim_semset *h, struct prim_patience *pt)
{
	uint64_t a = ck_pr_load_64(&h->shm->active), st;
	uint32_t si = (uint32_t)(a & 0xffff);
	int r;

	if (si == 0)
		return 0;
	/* gen is 32 bits: bits above it are never written by the protocol
	 * (complete() would never match such a word: a wedge). */
	if (si > h->nslots || (a >> 48) != 0)
		return damage(h);
	if ((r = complete(h, si - 1, (uint32_t)(a >> 16), false, pt, &st)) <
	    0)
		return r;
	return 1;
}

/*
 * A word w, read from p, is frozen: help the request that froze it.
 * Returns 0 to look at the word again, or -errno. SEM_11: when no active
 * request carries w's tag, the freeze is stale (a helper's freeze that
 * landed after its generation was decided without it, or a hostile
 * write): nothing will unfreeze it, so unfreeze it here, value unchanged.
 */
static int
on_frozen(struct prim_semset *h, uint64_t *p, uint64_t w,
	  struct prim_patience *pt)
{
	uint64_t a;
	int r;

	/* SEM_11: the word, then active. */
	ck_pr_fence_load();
	a = ck_pr_load_64(&h->shm->active);
	if ((a & 0xffff) != 0 &&
	    tag_of((uint32_t)(a >> 16)) == (w & W_TAG_MASK)) {
		if ((r = help(h, pt)) < 0)
			return r;
	} else if (!(w & W_REMOVED)) {
		(void)ck_pr_cas_64(p, w,
				   wnext(w & ~(W_HELD | W_TAG_MASK), wval(w)));
	}
	return prim__patience_spent(pt);
}

/*
 * Run the request published in slot si, whoever's it is (own: the
 * caller's): activate it (helping whoever is active first) and complete
 * it. Sets *out to its
 * decision: ST_DONE exactly once per publication; ST_ABORT when it was
 * already done or withdrawn. Returns 0 or -errno (patience, damage).
 */
static int
run(struct prim_semset *h, uint32_t si, bool own, struct prim_patience *pt,
    uint64_t *out)
{
	for (;;) {
		uint64_t a = ck_pr_load_64(&h->shm->active), d;
		uint32_t gen;
		int e;

		if (a & 0xffff) {
			if ((e = help(h, pt)) < 0 ||
			    (e = prim__patience_spent(pt)) != 0)
				return e;
			continue;
		}
		gen = (uint32_t)(a >> 16) + 1;
		if (gen == 0)
			gen = 1;
		if (!ck_pr_cas_64(&h->shm->active, a,
				  (uint64_t)gen << 16 | (si + 1))) {
			if ((e = prim__patience_spent(pt)) != 0)
				return e;
			continue;
		}
		if ((e = complete(h, si, gen, own, pt, &d)) < 0)
			return e;
		if (d != 0) {
			*out = d;
			return 0;
		}
		/* Completed by others and overtaken: read what it became. */
		switch (req_outcome(wval(ck_pr_load_64(&slot_at(h, si)->req)))) {
		case 0:
			*out = ST(gen, ST_DONE, 0, 0);
			break;
		case -ERANGE:
			*out = ST(gen, ST_ERANGE, 0, 0);
			break;
		case -EAGAIN:
			*out = ST(gen, ST_EAGAIN, 0, 0);
			break;
		default:
			*out = ST(gen, ST_ABORT, 0, 0);
		}
		return 0;
	}
}

/* ---------------------------------------------------------------------
 * Slots and undo records
 */

static __thread uint32_t slot_hint;

/* Try to claim slot i for me. */
static bool
try_claim(struct prim_semset *h, uint32_t i, uint64_t me)
{
	struct prim_slot_shm *s = slot_at(h, i);

	/* A free slot's request word is idle (released so). */
	if (ck_pr_load_64(&s->ident) != 0)
		return false;
	raise_hw(&h->shm->slots_hw, i + 1); /* SEM_12 */
	return ck_pr_cas_64(&s->ident, 0, me);
}

static int withdraw(struct prim_semset *h, struct prim_slot_shm *s,
		    struct prim_patience *pt, int *fin);

/*
 * A control slot held by a process that is dead (or whose pid is another
 * process's now): its request is withdrawn and the slot is ours. What it
 * was doing either happened or did not, as for any dead process.
 */
static bool
take_over(struct prim_semset *h, uint32_t i, uint64_t me,
	  struct prim_patience *pt)
{
	struct prim_slot_shm *s = slot_at(h, i);
	uint64_t id = ck_pr_load_64(&s->ident);

	if (id == 0 || id == me || !prim__ident_gone(id))
		return false;
	if (!ck_pr_cas_64(&s->ident, id, me))
		return false;
	ck_pr_store_32(&s->wait_kind, WAIT_NONE);
	ck_pr_store_32(&s->wait_sem, 0);
	ck_pr_store_64(&s->ticket, 0);
	if (withdraw(h, s, pt, NULL) < 0) {
		ck_pr_store_64(&s->ident, id); /* leave it to the reap */
		return false;
	}
	return true;
}

/*
 * Claim a free slot for this thread. A caller that never sleeps
 * (CLAIM_ANY) tries the control slots first, then the others, then takes
 * over a control slot whose owner died. One that may sleep takes only the
 * first nslots - CTL_SLOTS to sleep in (CLAIM_WAIT), but when none is free
 * it may first try its luck in a free control slot (CLAIM_TRY): it must
 * leave it if it has to wait (in_ctl()), but an operation that can proceed
 * at once does, as it would in the kernel, however many sleepers there
 * are. If all are taken, wait for one, within the patience.
 */
enum claim { CLAIM_WAIT, CLAIM_TRY, CLAIM_ANY };

static bool
in_ctl(const struct prim_semset *h, uint32_t si)
{
	return si < CTL_SLOTS;
}

static int
slot_claim(struct prim_semset *h, enum claim how, struct prim_patience *pt,
	   uint32_t *out)
{
	uint64_t me = prim__ident();
	uint32_t nw = h->nslots - CTL_SLOTS;
	bool ctl = how == CLAIM_ANY;
	int e;

	for (unsigned round = 0;; round++) {
		/* SEM_12: among the slots in use first (from this thread's
		 * last one, to spread threads), then the lowest unused. */
		uint32_t used = slots_used(h);
		uint32_t inuse = used > CTL_SLOTS ? used - CTL_SLOTS : 0;

		for (uint32_t k = 0; ctl && k < CTL_SLOTS; k++)
			if (try_claim(h, k, me)) {
				*out = k;
				return 0;
			}
		for (uint32_t k = 0; k < nw; k++) {
			uint32_t i = k < inuse ? (slot_hint + k) % inuse : k;

			if (try_claim(h, CTL_SLOTS + i, me)) {
				slot_hint = i;
				*out = CTL_SLOTS + i;
				return 0;
			}
		}
		for (uint32_t k = 0; how == CLAIM_TRY && round == 0 && k < CTL_SLOTS;
		     k++)
			if (try_claim(h, k, me)) {
				*out = k;
				return 0;
			}
		/* Reads /proc: only now and then. */
		for (uint32_t k = 0; ctl && round % 16 == 1 && k < CTL_SLOTS;
		     k++)
			if (take_over(h, k, me, pt)) {
				*out = k;
				return 0;
			}
		if ((e = set_dead(h)) != 0)
			return e;
		if ((e = prim__patience_spent(pt)) != 0)
			return e;
		if (round < 64) {
			ck_pr_stall();
		} else {
			struct timespec ts = { 0, 50000 };

			nanosleep(&ts, NULL);
		}
	}
}

/*
 * Publish the request just written in slot s: from now on anyone may
 * complete it, once (SEM_1: the content is written before the request
 * word says so; pairs with SEM_7). Only its owner changes an idle request
 * word (a late helper's CAS expects an older version), so the CAS fails
 * only after a hostile write: damage.
 */
static int
publish(struct prim_semset *h, struct prim_slot_shm *s)
{
	uint64_t w = ck_pr_load_64(&s->req);

	/* SEM_1: the content before the request word; pairs with SEM_7. */
	ck_pr_fence_store_atomic();
	if ((w & (W_HELD | W_VALUE)) == REQ_IDLE &&
	    ck_pr_cas_64(&s->req, w,
			 wnext(w & ~(W_HELD | W_TAG_MASK), REQ_PUBLISHED)))
		return 0;
	return damage(h);
}

/*
 * Take the request back: after this, nobody completes it. Returns 1 if
 * it had been finished (by its owner or, handing off, by anyone) before
 * it could be withdrawn, with its outcome in *fin (0, -ERANGE, -EAGAIN)
 * if fin is not NULL; 0 if not, or -errno (patience, damage). Leaves the
 * request word idle.
 */
static int
withdraw(struct prim_semset *h, struct prim_slot_shm *s,
	 struct prim_patience *pt, int *fin)
{
	uint64_t w = ck_pr_load_64(&s->req);
	int e;

	for (;;) {
		int o = req_outcome(wval(w));

		if (w & W_HELD) { /* being completed: finish it first */
			if ((e = on_frozen(h, &s->req, w, pt)) != 0)
				return e;
			w = ck_pr_load_64(&s->req);
			continue;
		}
		if (wval(w) == REQ_IDLE)
			return 0;
		if (cas64(&s->req, &w, wnext(w, REQ_IDLE))) {
			if (o == 1)
				return 0;
			if (fin != NULL)
				*fin = o;
			return 1;
		}
		if ((e = prim__patience_spent(pt)) != 0)
			return e;
	}
}

/* Free slot si. A slot whose request cannot be withdrawn is not freed: a
 * later owner would find it published. */
static int
slot_release(struct prim_semset *h, uint32_t si, struct prim_patience *pt)
{
	struct prim_slot_shm *s = slot_at(h, si);
	int e;

	ck_pr_store_32(&s->wait_kind, WAIT_NONE);
	ck_pr_store_32(&s->wait_sem, 0);
	if ((e = withdraw(h, s, pt, NULL)) < 0)
		return e;
	ck_pr_fence_store();
	ck_pr_store_64(&s->ident, 0);
	return 0;
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
	for (uint32_t i = 0, used = undo_used(h); i < used; i++)
		if (ck_pr_load_64(&undo_at(h, i)->ident) == me)
			return i + 1;
	return 0;
}

/*
 * The undo record (+1) of identity me, claimed on first use; 0 if none is
 * left. The owner word is the process's identity, pid and start time, set
 * by one CAS: a process that reuses a dead one's pid never inherits its
 * adjustments, and a claimer killed anywhere leaves a whole identity.
 */
static uint32_t
undo_claim(struct prim_semset *h, uint64_t me)
{
	uint32_t u = undo_find(h, me);

	if (u != 0)
		return u;
	pthread_once(&undo_once, undo_atfork);
	pthread_mutex_lock(&undo_lock);
	if ((u = undo_find(h, me)) == 0) {
		for (uint32_t i = 0; i < h->nprocs; i++) {
			struct prim_undo_shm *r = undo_at(h, i);

			/* A free record's adjustments are all zero. Lowest
			 * first, the mark raised before the claim (SEM_12). */
			if (ck_pr_load_64(&r->ident) != 0)
				continue;
			raise_hw(&h->shm->undo_hw, i + 1);
			if (ck_pr_cas_64(&r->ident, 0, me)) {
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
 * blocks the caller): set SLEEPERS, then sleep on the low half. Returns 0
 * after a sleep, 1 when the word had changed (no sleep), -EAGAIN at the
 * deadline, -EINTR (also for a handler seen by the watch iw, which may have
 * run before the sleep: see prim/intr.c).
 */
static int
sleep_on(struct prim_semset *h, uint32_t n, uint64_t w,
	 const struct timespec *deadline, const struct prim_intr_watch *iw)
{
	uint64_t *p = &sem_at(h, n)->word;
	uint64_t cur = ck_pr_load_64(p);
	int r;

	if (wval(cur) != wval(w) || (cur & (W_HELD | W_REMOVED)))
		return 1;
	if (!(cur & W_SLEEPERS)) {
		uint64_t nw = (cur | W_SLEEPERS) + W_VER_ONE;

		if (!ck_pr_cas_64(p, cur, nw))
			return 1; /* changed: look again */
		cur = nw;
	}
	r = prim__wait_intr(iw, wfutex(p), (uint32_t)(cur & W_LOW_MASK),
			    deadline);
	return r == -ETIMEDOUT ? -EAGAIN : r;
}

/*
 * SEM_13: how a hand-off for semaphore n concerns slot s. A waiter (its
 * owner waits, its request is published) is ON n when its request last
 * blocked at an operation on n; BEFORE n when an operation before that one
 * names n: a change of n may make that one block instead, or fail. ALTER:
 * some operation of it is not a wait-for-zero. Advisory reads, bounded by
 * cap, each checked; the decision is made on frozen words (complete()).
 */
#define HO_ON 1u
#define HO_BEFORE 2u
#define HO_ALTER 4u

static unsigned
concern(const struct prim_semset *h, struct prim_slot_shm *s, uint32_t n)
{
	uint64_t b;
	uint32_t nops, idx;
	unsigned c = 0;

	if (ck_pr_load_32(&s->wait_kind) == WAIT_NONE ||
	    wval(ck_pr_load_64(&s->req)) != REQ_PUBLISHED)
		return 0;
	b = ck_pr_load_64(&s->blk);
	if (BLK_SEM1(b) == 0)
		return 0;
	if (BLK_SEM1(b) == n + 1)
		c |= HO_ON;
	nops = ck_pr_load_32(&s->nops);
	idx = BLK_IDX(b);
	if (nops > h->cap || idx >= nops)
		/* Insane: let run() judge it if it is ours to run. */
		return c | HO_ALTER;
	for (uint32_t i = 0; i < nops; i++) {
		struct prim_sembuf op = slot_op(s, i);

		if (op.sem_op != 0)
			c |= HO_ALTER;
		if (i < idx && op.sem_num == n)
			c |= HO_BEFORE;
	}
	return c;
}

/*
 * Why a hand-off runs. HO_SELF: a waiter looks for itself (after a sleep
 * or before one); HO_CHANGE: n changed; HO_ZERO: n changed and a semaphore
 * the change named is zero now (the kernel's do_smart_wakeup_zero
 * "got_zero"; every semaphore for SETVAL, SETALL and exit-time undo);
 * HO_ZCONST: the same, but only the waiters whose operations all wait for
 * zero, which the kernel serves first in a change (do_smart_update calls
 * do_smart_wakeup_zero before update_queue).
 */
enum ho { HO_SELF, HO_CHANGE, HO_ZERO, HO_ZCONST };

/*
 * Does a hand-off for n, run for why, with n's value val, run a waiter of
 * concern c? The kernel retries a waiting operation array that alters on
 * every change (update_queue), one that only waits for zero when a changed
 * semaphore is zero (wake_const_ops), and each of its retries can move the
 * operation it blocks at; so a change of n runs every waiter ON or BEFORE
 * n that it would retry. A waiter looking for itself (HO_SELF) runs only
 * those ON n, and a wait-for-zero one only while n is zero: the kernel
 * would not have retried it since its last look.
 */
static bool
to_serve(unsigned c, enum ho why, unsigned val)
{
	bool zero = why == HO_ZERO || why == HO_ZCONST || val == 0;

	if (c == 0 || (!(c & HO_ALTER) && !zero) ||
	    (why == HO_ZCONST && (c & HO_ALTER)))
		return false;
	return (c & HO_ON) || (why != HO_SELF && (c & HO_BEFORE));
}

/*
 * SEM_8: hand-off. Complete, in FIFO order (ticket), the published
 * requests of everyone waiting on semaphore n (to_serve()), as the
 * kernel's update_queue does: each that can proceed now does, those that
 * cannot keep their place. Then wake the word's sleepers if anyone was
 * served, and clear SLEEPERS when nobody waits any more (a waiter sets it
 * again before it sleeps). Anyone may run it, any number of times: each
 * request completes once. Woken waiters run it too, so a waker stopped
 * before it delays nobody for long. It is a service to others, with a
 * patience of its own: if it gives up, the waiters look for themselves
 * (each at least once a second). A waiter that runs it for itself (self:
 * its slot) gets its own decision in *self_st if it was run (else *self_st
 * stays 0). SEM_13: a waiter whose request it finished (done, or failed:
 * ERANGE, an IPC_NOWAIT operation) or moved to another semaphore is woken
 * where it sleeps (wait_sem), to return or to sleep where it now waits.
 */
static void
handoff_for(struct prim_semset *h, uint32_t n, uint32_t self,
	    uint64_t *self_st, enum ho why)
{
	uint64_t *word = &sem_at(h, n)->word, last = 0, w;
	struct prim_patience pt;
	bool served = false;
	uint32_t left, restarts = 0;
	unsigned vat = 0;

	prim__patience_init(&pt, h->patience_ns, NULL, 0);
	for (uint32_t round = 0; round < h->nslots; round++) {
		uint64_t best = UINT64_MAX, st;
		uint32_t bi = 0, used = slots_used(h), ws;
		unsigned val = wval(ck_pr_load_64(word));
		struct prim_slot_shm *o;

		/*
		 * SEM_8: the value changed under the pass since the last
		 * request it ran (a V by someone else, which may find no
		 * sleeper to hand off to): the older waiters it judged
		 * blocked are judged again first, so that a younger one does
		 * not take what an older one may now have.
		 */
		if (last != 0 && val != vat && restarts < 8) {
			restarts++;
			last = 0;
		}
		for (uint32_t i = 0; i < used; i++) {
			struct prim_slot_shm *s = slot_at(h, i);
			uint64_t t = ck_pr_load_64(&s->ticket);

			if (t <= last || t >= best ||
			    !to_serve(concern(h, s, n), why, val))
				continue;
			best = t;
			bi = i;
		}
		if (best == UINT64_MAX)
			break;
		last = best;
		o = slot_at(h, bi);
		if (run(h, bi, bi == self, &pt, &st) < 0)
			return;
		vat = wval(ck_pr_load_64(word));
		if (bi == self && self_st != NULL)
			*self_st = st;
		if (bi == self)
			continue;
		ws = ck_pr_load_32(&o->wait_sem);
		if (ST_STATUS(st) == ST_DONE || ST_STATUS(st) == ST_ERANGE ||
		    ST_STATUS(st) == ST_EAGAIN ||
		    (ST_STATUS(st) == ST_BLOCK &&
		     BLK_SEM1(ck_pr_load_64(&o->blk)) != ws)) {
			if (ws == n + 1)
				served = true;
			else if (ws >= 1 && ws <= h->nsems)
				wake_word(&sem_at(h, ws - 1)->word);
		}
	}
	if (served)
		wake_word(word);
	/* Nobody left waiting here: the fast path may take the word again. */
	left = 0;
	for (uint32_t i = 0, used = slots_used(h); i < used; i++)
		if (concern(h, slot_at(h, i), n) & (HO_ON | HO_BEFORE))
			left++;
	w = ck_pr_load_64(word);
	if (left == 0 && (w & W_SLEEPERS) && !(w & (W_HELD | W_REMOVED)))
		ck_pr_cas_64(word, w, (w & ~W_SLEEPERS) + W_VER_ONE);
}

static void
handoff(struct prim_semset *h, uint32_t n, enum ho why)
{
	handoff_for(h, n, UINT32_MAX, NULL, why);
}

/*
 * SEM_8: a waiter flags its word (SLEEPERS) as soon as it queues, not only
 * when it goes to sleep: a V that finds the flag hands off, in ticket
 * order, instead of taking the fast path, and a newcomer's decrement
 * queues behind the waiters instead of slipping in while they spin. One
 * try: a word that changed is looked at again anyway.
 */
static void
flag_waiters(struct prim_semset *h, uint32_t n)
{
	uint64_t *p = &sem_at(h, n)->word;
	uint64_t w = ck_pr_load_64(p);

	if (!(w & (W_SLEEPERS | W_HELD | W_REMOVED)))
		ck_pr_cas_64(p, w, (w | W_SLEEPERS) + W_VER_ONE);
}

static void
mark_waiting(struct prim_semset *h, uint32_t si, uint32_t n, int op)
{
	struct prim_slot_shm *s = slot_at(h, si);

	ck_pr_store_32(&s->wait_kind, op == 0 ? WAIT_Z : WAIT_N);
	ck_pr_store_32(&s->wait_sem, n + 1);
}

/*
 * One operation, no SEM_UNDO, by CAS. Returns 0, WOULD_BLOCK (*seen holds
 * the word), -EBUSY when it must queue behind sleepers (a decrement while
 * someone waits: FIFO), or another -errno. An increment that finds
 * sleepers keeps SLEEPERS set and hands off (SEM_8), so nobody slips in
 * between.
 */
static int
op_one(struct prim_semset *h, const struct prim_sembuf *op, uint32_t pid,
       uint64_t *seen, struct prim_patience *pt)
{
	struct prim_sem_shm *sem = sem_at(h, op->sem_num);
	uint64_t w = ck_pr_load_64(&sem->word);
	int e;

	for (;;) {
		int v, nv;
		uint64_t nw;

		if (w & W_REMOVED)
			return dead(h);
		if (w & W_HELD) {
			if ((e = on_frozen(h, &sem->word, w, pt)) != 0)
				return e;
			w = ck_pr_load_64(&sem->word);
			continue;
		}
		v = (int)wval(w);
		nv = v + op->sem_op;
		if (op->sem_op < 0 && (w & W_SLEEPERS))
			return -EBUSY;
		if (nv < 0 || (op->sem_op == 0 && v != 0)) {
			*seen = w;
			return WOULD_BLOCK;
		}
		if (nv > PRIM_SEMVMX)
			return -ERANGE;
		if (op->sem_op == 0) {
			set_pid(sem, pid, wver(w), true);
			break;
		}
		nw = wnext(w, (unsigned)nv);
		if (cas64(&sem->word, &w, nw)) {
			/* SEM_6: sempid before anyone we serve runs. */
			set_pid(sem, pid, wver(nw), false);
			if (w & W_SLEEPERS)
				handoff(h, op->sem_num, HO_CHANGE);
			break;
		}
		if ((e = prim__patience_spent(pt)) != 0)
			return e;
	}
	touch_otime(h);
	return 0;
}

/* Write a REQ_OPS request into slot si (not yet published). */
static void
write_ops(struct prim_semset *h, uint32_t si,
	  const struct prim_sembuf *sops, size_t nsops, uint32_t undo,
	  uint32_t pid)
{
	struct prim_slot_shm *s = slot_at(h, si);
	uint16_t *d = slot_dist(h, s);
	uint32_t nd = 0;

	/* With ck_pr stores, as a late helper may still read the slot (SEM_7;
	 * what it reads then, it throws away). */
	ck_pr_store_32(&s->kind, REQ_OPS);
	ck_pr_store_32(&s->nops, (uint32_t)nsops);
	ck_pr_store_32(&s->undo, undo);
	ck_pr_store_32(&s->arg, pid);
	ck_pr_store_32((uint32_t *)&s->val, 0);
	for (size_t i = 0; i < nsops; i++)
		slot_op_put(s, (uint32_t)i, &sops[i]);
	/* Sorted distinct semaphore numbers (insertion sort: slow path). */
	for (size_t i = 0; i < nsops; i++) {
		uint16_t n = sops[i].sem_num;
		uint32_t j = nd;

		while (j > 0 && ck_pr_load_16(&d[j - 1]) > n)
			j--;
		if (j > 0 && ck_pr_load_16(&d[j - 1]) == n)
			continue;
		for (uint32_t m = nd; m > j; m--)
			ck_pr_store_16(&d[m], ck_pr_load_16(&d[m - 1]));
		ck_pr_store_16(&d[j], n);
		nd++;
	}
	ck_pr_store_32(&s->ndist, nd);
}

/* After a request of ours (sops) changed semaphores: serve their
 * waiters. A request that only waited for zero changed nothing (the kernel
 * updates nobody then); got_zero as in the kernel's do_smart_wakeup_zero:
 * a semaphore the request names is zero now. The slot is ours, but may
 * have been rewritten: bounded by what we wrote (nsops), each number
 * checked. */
static void
serve_waiters(struct prim_semset *h, struct prim_slot_shm *s,
	      const struct prim_sembuf *sops, size_t nsops)
{
	const uint16_t *d = slot_dist(h, s);
	uint32_t nd = ck_pr_load_32(&s->ndist);
	enum ho why = HO_CHANGE;
	bool alter = false;

	for (size_t i = 0; i < nsops; i++) {
		if (sops[i].sem_op != 0)
			alter = true;
		if (sops[i].sem_num < h->nsems &&
		    wval(ck_pr_load_64(&sem_at(h, sops[i].sem_num)->word)) == 0)
			why = HO_ZERO;
	}
	if (!alter)
		return;
	/* Wait-for-zero waiters first, as the kernel's do_smart_update. */
	for (uint32_t k = 0; why == HO_ZERO && k < nd && k < nsops; k++) {
		uint32_t n = ck_pr_load_16(&d[k]);

		if (n < h->nsems &&
		    (ck_pr_load_64(&sem_at(h, n)->word) & W_SLEEPERS))
			handoff(h, n, HO_ZCONST);
	}
	for (uint32_t k = 0; k < nd && k < nsops; k++) {
		uint32_t n = ck_pr_load_16(&d[k]);

		if (n < h->nsems &&
		    (ck_pr_load_64(&sem_at(h, n)->word) & W_SLEEPERS))
			handoff(h, n, why);
	}
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

/* Has the request of slot s finished? Then *r is its outcome. */
static bool
finished(struct prim_slot_shm *s, int *r)
{
	int o = req_outcome(wval(ck_pr_load_64(&s->req)));

	if (o == 1)
		return false;
	*r = o;
	return true;
}

/* Is slot s's request still published and blocked on semaphore n? */
static bool
waits_on(struct prim_slot_shm *s, uint32_t n)
{
	return wval(ck_pr_load_64(&s->req)) == REQ_PUBLISHED &&
	       BLK_SEM1(ck_pr_load_64(&s->blk)) == n + 1;
}

/*
 * SEM_13: a waiter whose operations only wait for zero (sops, nsops: the
 * caller's own copy), awake while nobody ran its request: the kernel
 * retries such a waiter only when a semaphore a change named is zero
 * (do_smart_wakeup_zero), so while the one it blocks at is not zero it
 * stays blocked there, even if an earlier one changed meanwhile. Returns
 * the decision to go on waiting with (at that semaphore's value now), or
 * 0 to run the request.
 */
static uint64_t
stay(const struct prim_semset *h, struct prim_slot_shm *s,
     const struct prim_sembuf *sops, size_t nsops)
{
	uint64_t b = ck_pr_load_64(&s->blk);
	uint32_t i = BLK_IDX(b);
	unsigned v;

	if (BLK_SEM1(b) == 0 || i >= nsops ||
	    BLK_SEM1(b) != (uint32_t)sops[i].sem_num + 1 ||
	    wval(ck_pr_load_64(&s->req)) != REQ_PUBLISHED)
		return 0;
	v = wval(ck_pr_load_64(&sem_at(h, sops[i].sem_num)->word));
	if (v == 0)
		return 0;
	return ST(BLK_GEN(b), ST_BLOCK, i, v);
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
 * dies, nobody waits for it. A call that never sleeps (IPC_NOWAIT on
 * every operation, or a proxy) gives up within the set's patience; one
 * that may sleep retries until its deadline, if any.
 */
static __attribute__((noinline)) int
op_slow(struct prim_semset *h, const struct prim_sembuf *sops,
	size_t nsops, const struct timespec *deadline, struct actor *who)
{
	bool undo = false, queued = nsops != 1, nowait = true, alter = false;
	uint32_t si = UINT32_MAX, u = 0;
	struct prim_slot_shm *s = NULL;
	struct prim_patience pt, cpt;
	struct prim_intr_watch iw = { NULL, 0 };
	uint64_t st, w = 0;
	int r, e, spins = 0;

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
		if (!(sops[i].sem_flg & PRIM_IPC_NOWAIT))
			nowait = false;
		if (sops[i].sem_op != 0)
			alter = true;
	}
	if ((r = set_dead(h)) != 0)
		return r;
	nowait = nowait || who->proxy;
	prim__patience_init(&pt, h->patience_ns, deadline, !nowait);
	/*
	 * A call that may sleep returns -EINTR once a handler has run on this
	 * thread since it started, as the kernel's would, even if that was
	 * while it spun: no system call was interrupted then (prim/intr.c).
	 */
	if (!nowait)
		prim__intr_begin(&iw);

	/* One plain operation: a CAS, spinning briefly while it would block. */
	while (!queued) {
		const uint64_t *p = &sem_at(h, sops->sem_num)->word;

		r = op_one(h, sops, who->pid, &w, &pt);
		if (r == -EBUSY)
			break; /* sleepers first: queue behind them */
		if (r != WOULD_BLOCK)
			return r;
		if (sops->sem_flg & PRIM_IPC_NOWAIT)
			return -EAGAIN;
		if (who->proxy) {
			who->blocked = 1;
			return -EAGAIN;
		}
		if (deadline != NULL && prim__deadline_passed(deadline))
			return -EAGAIN;
		if (prim__intr_seen(&iw))
			return -EINTR; /* nothing published: nothing to undo */
		/* A hand-off from another CPU is far cheaper than a sleep. */
		while (spins < SPIN_LIMIT && ck_pr_load_64(p) == w &&
		       !prim__intr_seen(&iw)) {
			spins++;
			ck_pr_stall();
		}
		if (spins >= SPIN_LIMIT)
			break;
	}

	/* A request anyone may complete. */
	if ((r = slot_claim(h, nowait ? CLAIM_ANY : CLAIM_TRY, &pt, &si)) != 0)
		return r;
	s = slot_at(h, si);
	if (undo &&
	    (u = undo_claim(h, who->ident ? who->ident : prim__ident())) == 0) {
		r = -ENOMEM;
		goto out;
	}
	write_ops(h, si, sops, nsops, u, who->proxy ? who->pid : 0);
	if ((r = publish(h, s)) != 0)
		goto out;
	for (uint32_t waiting = UINT32_MAX;;) {
		const struct prim_sembuf *b;
		struct timespec slice;

		/*
		 * SEM_8: once it waits, a caller is run only in its turn, by
		 * the hand-off, never by itself: a waiter that saw the value
		 * change and ran its own request would overtake an older one
		 * that a V is serving at that moment.
		 */
		st = 0;
		if (waiting != UINT32_MAX) {
			handoff_for(h, waiting, si, &st, HO_SELF);
			if (finished(s, &r))
				goto out;
			if (st == 0 && !alter)
				st = stay(h, s, sops, nsops);
		}
		if (st == 0 && (r = run(h, si, true, &pt, &st)) != 0)
			goto out;
		switch (ST_STATUS(st)) {
		case ST_DONE:
			r = 0;
			goto out;
		case ST_ERANGE:
			r = -ERANGE;
			goto out;
		case ST_EAGAIN:
			r = -EAGAIN;
			goto out;
		case ST_EIDRM:
			r = dead(h);
			goto out;
		case ST_BLOCK:
			break;
		default: /* done by someone else, or overtaken */
			if (finished(s, &r))
				goto out;
			if ((r = set_dead(h)) != 0 ||
			    (r = prim__patience_spent(&pt)) != 0)
				goto out;
			continue;
		}
		if (ST_IDX(st) >= nsops) {
			r = damage(h);
			goto out;
		}
		b = &sops[ST_IDX(st)];
		/* SEM_13: where we wait, if our complete() could not say. */
		blk_put(s, BLK(ST_GEN(st), ST_IDX(st),
			       b->sem_op == 0 ? WAIT_Z : WAIT_N, b->sem_num));
		/* Yielded (SEM_8) at an IPC_NOWAIT operation. */
		if (b->sem_flg & PRIM_IPC_NOWAIT) {
			r = -EAGAIN;
			goto out;
		}
		if (who->proxy) {
			who->blocked = 1;
			r = -EAGAIN;
			goto out;
		}
		if (in_ctl(h, si)) {
			/*
			 * It must wait, in a control slot, which is not for
			 * sleeping in (a reap may need it): take the request
			 * back and move to a slot for waiters.
			 */
			prim__patience_init(&cpt, h->patience_ns, NULL, 0);
			e = withdraw(h, s, &cpt, &r);
			if (e == 1)
				goto out; /* finished by a hand-off meanwhile */
			if (e < 0 || slot_release(h, si, &cpt) < 0) {
				r = damage(h);
				goto out;
			}
			s = NULL;
			if ((r = slot_claim(h, CLAIM_WAIT, &pt, &si)) != 0)
				goto out;
			s = slot_at(h, si);
			write_ops(h, si, sops, nsops, u, 0);
			if ((r = publish(h, s)) != 0)
				goto out;
			continue;
		}
		/* A handler ran: stop waiting (out: withdraws the request,
		 * or succeeds if a hand-off completed it first). */
		if (prim__intr_seen(&iw)) {
			r = -EINTR;
			goto out;
		}
		/* Wait, FIFO: take a place once, keep it across retries. */
		if (ck_pr_load_64(&s->ticket) == 0)
			ck_pr_store_64(&s->ticket,
				       ck_pr_faa_64(&h->shm->tickets, 1) + 1);
		mark_waiting(h, si, b->sem_num, b->sem_op);
		waiting = b->sem_num;
		flag_waiters(h, b->sem_num);
		w = ck_pr_load_64(&sem_at(h, b->sem_num)->word);
		if (wval(w) != ST_VAL(st)) {
			/* Changed since the decision. */
			if ((r = prim__patience_spent(&pt)) != 0)
				goto out;
			continue;
		}
		/* Older waiters first; maybe us. */
		handoff(h, b->sem_num, HO_SELF);
		if (finished(s, &r))
			goto out;
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
			       waits_on(s, b->sem_num) &&
			       !prim__intr_seen(&iw)) {
				spins++;
				ck_pr_stall();
			}
			if (spins < SPIN_LIMIT)
				continue;
		}
		/* Changed, or finished or moved by a hand-off (SEM_13)? */
		if (wval(w) != ST_VAL(st) || !waits_on(s, b->sem_num)) {
			if ((r = prim__patience_spent(&pt)) != 0)
				goto out;
			continue;
		}
		slice_deadline(deadline, &slice);
		r = sleep_on(h, b->sem_num, w, &slice, &iw);
		if (r == -EINTR)
			goto out;
		if (r == -EAGAIN && deadline != NULL &&
		    prim__deadline_passed(deadline))
			goto out;
		/* A sleep is waiting, not spinning: only a wait that did not
		 * sleep is a retry. */
		e = r == 1 ? prim__patience_spent(&pt) : 0;
		handoff(h, b->sem_num, HO_SELF);
		if (finished(s, &r))
			goto out;
		if ((r = set_dead(h)) != 0 || (r = e) != 0)
			goto out;
	}
out:
	/*
	 * Done by a hand-off while we gave up (a signal, the deadline)? The
	 * clean-up has a patience of its own; a request that cannot even be
	 * withdrawn within it means the set is inconsistent.
	 */
	if (s != NULL && set_dead(h) != 0) {
		/* Removed or damaged: nothing to give back; done is done. */
		(void)finished(s, &r);
	} else if (s != NULL) {
		prim__patience_init(&cpt, h->patience_ns, NULL, 0);
		ck_pr_store_32(&s->wait_kind, WAIT_NONE);
		ck_pr_store_64(&s->ticket, 0);
		e = withdraw(h, s, &cpt, &r);
		if (e >= 0 && r == 0) {
			serve_waiters(h, s, sops, nsops);
			touch_otime(h);
		}
		if (e < 0 || slot_release(h, si, &cpt) < 0) {
			e = damage(h);
			if (r != 0)
				r = e;
		}
	}
	return r;
}

int
prim_sem_op_timed(struct prim_semset *set, const struct prim_sembuf *sops,
		  size_t nsops, const struct timespec *deadline)
{
	struct prim_semset *h = hdr(set);
	struct actor me = { .pid = prim__pid() };

	if (check_deadline(deadline) == 0 && op_fast(h, sops, nsops))
		return 0;
	return op_slow(h, sops, nsops, deadline, &me);
}

int
prim_sem_op(struct prim_semset *set, const struct prim_sembuf *sops,
	    size_t nsops)
{
	struct prim_semset *h = hdr(set);
	struct actor me;

	if (op_fast(h, sops, nsops))
		return 0;
	me.pid = prim__pid();
	me.ident = 0;
	me.proxy = 0;
	me.blocked = 0;
	return op_slow(h, sops, nsops, NULL, &me);
}

int
prim_sem_op_as(struct prim_semset *set, const struct prim_sembuf *sops,
	       size_t nsops, pid_t pid, int *blocked)
{
	struct prim_semset *h = hdr(set);
	struct actor who = { .pid = (uint32_t)pid, .proxy = 1 };
	int r;

	if (blocked != NULL)
		*blocked = 0;
	if (pid <= 0)
		return -EINVAL;
	for (size_t i = 0; sops != NULL && i < nsops; i++)
		if (sops[i].sem_flg & PRIM_SEM_UNDO) {
			/* The record is the process's, not ours. */
			if ((who.ident = prim__ident_of(pid)) == 0)
				return -ESRCH;
			break;
		}
	r = op_slow(h, sops, nsops, NULL, &who);
	if (blocked != NULL)
		*blocked = who.blocked;
	return r;
}

/* ---------------------------------------------------------------------
 * Control
 */

static int
check_num(const struct prim_semset *h, int semnum)
{
	if (semnum < 0 || (uint32_t)semnum >= h->nsems)
		return -EINVAL;
	return set_dead(h);
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
	return (int)(uint32_t)ck_pr_load_64(&sem_at(h, (uint32_t)semnum)->pidv) &
	       INT_MAX;
}

static int
count_waiters(const struct prim_semset *set, int semnum, uint32_t kind)
{
	const struct prim_semset *h = hdr(set);
	int r, c = 0;

	if ((r = check_num(h, semnum)) != 0)
		return r;
	for (uint32_t i = 0, used = slots_used(h); i < used; i++) {
		struct prim_slot_shm *s = slot_at(h, i);

		uint64_t b = ck_pr_load_64(&s->blk);

		/* SEM_13: where its request last blocked. */
		if (ck_pr_load_64(&s->ident) != 0 &&
		    ck_pr_load_32(&s->wait_kind) != WAIT_NONE &&
		    BLK_KIND(b) == kind &&
		    BLK_SEM1(b) == (uint32_t)semnum + 1 &&
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
	int r;

	if (vals == NULL)
		return -EFAULT;
	if ((r = set_dead(h)) != 0)
		return r;
	for (uint32_t i = 0; i < h->nsems; i++)
		vals[i] = (unsigned short)wval(ck_pr_load_64(&sem_at(h, i)->word));
	return 0;
}

/*
 * Run a control request (SETVAL, SETALL, REAP) in a slot of its own: it
 * never sleeps, so it may take a control slot. Returns 0 or -errno
 * (-EBUSY: patience spent).
 */
static int
control(struct prim_semset *h, uint32_t kind, uint32_t arg, int val,
	const unsigned short *vals, uint32_t undo, struct prim_patience *pt)
{
	struct prim_slot_shm *s;
	struct prim_patience cpt;
	uint32_t si;
	uint64_t st = 0;
	int r, e;

	if ((r = slot_claim(h, CLAIM_ANY, pt, &si)) != 0)
		return r == -EAGAIN ? -EBUSY : r;
	s = slot_at(h, si);
	/* ck_pr stores: as in write_ops. */
	ck_pr_store_32(&s->kind, kind);
	ck_pr_store_32(&s->arg, arg);
	ck_pr_store_32((uint32_t *)&s->val, (uint32_t)val);
	ck_pr_store_32(&s->nops, kind == REQ_SETALL ? h->nsems : 0);
	ck_pr_store_32(&s->ndist, 0);
	if (kind == REQ_SETALL)
		for (uint32_t i = 0; i < h->nsems; i++)
			ck_pr_store_16((uint16_t *)(void *)&s->ops[i].sem_op,
				       vals[i]);
	for (;;) {
		/* SEM_12: SETVAL, SETALL cover the records in use. */
		ck_pr_store_32(&s->undo, kind == REQ_SETVAL ||
						 kind == REQ_SETALL
					     ? undo_used(h)
					     : undo);
		if ((r = publish(h, s)) != 0 ||
		    (r = run(h, si, true, pt, &st)) != 0)
			break;
		if (ST_STATUS(st) != ST_BLOCK || kind == REQ_REAP) {
			r = ST_STATUS(st) == ST_DONE ? 0 : dead(h);
			break;
		}
		/* Decided "again" (decide_ctl): withdraw and republish. */
		prim__patience_init(&cpt, h->patience_ns, NULL, 0);
		if ((e = withdraw(h, s, &cpt, NULL)) == 1) {
			r = 0; /* completed after all */
			break;
		}
		if (e < 0)
			return damage(h);
		if ((r = prim__patience_spent(pt)) != 0)
			break;
	}
	if (r == -EAGAIN)
		r = -EBUSY;
	if (set_dead(h) != 0) /* removed or damaged: nothing to give back */
		return req_outcome(wval(ck_pr_load_64(&s->req))) == 0 ? 0
								       : dead(h);
	prim__patience_init(&cpt, h->patience_ns, NULL, 0);
	e = withdraw(h, s, &cpt, NULL);
	if (e == 1)
		r = 0; /* completed after all */
	if (e < 0 || slot_release(h, si, &cpt) < 0)
		return damage(h);
	/*
	 * SETVAL, SETALL and exit-time undo serve whoever can now proceed.
	 * The kernel's do_smart_update(sma, NULL, ...) looks at every
	 * semaphore: got_zero when any is zero (looked for only once a word
	 * has sleepers).
	 */
	for (uint32_t pass = 0, zero = 2; r == 0 && pass < 2; pass++) {
		for (uint32_t n = 0; n < h->nsems; n++) {
			if (kind == REQ_SETVAL && n != arg)
				continue;
			if (!(ck_pr_load_64(&sem_at(h, n)->word) & W_SLEEPERS))
				continue;
			for (uint32_t m = 0; zero == 2 && m < h->nsems; m++)
				if (wval(ck_pr_load_64(&sem_at(h, m)->word)) == 0)
					zero = 1;
			if (zero == 2)
				zero = 0;
			/* Pass 0: wait-for-zero waiters first, if any. */
			if (pass == 0 && zero)
				handoff(h, n, HO_ZCONST);
			else if (pass == 1)
				handoff(h, n, zero ? HO_ZERO : HO_CHANGE);
		}
	}
	return r;
}

int
prim_sem_setval(struct prim_semset *set, int semnum, int val)
{
	struct prim_semset *h = hdr(set);
	struct prim_patience pt;
	int r;

	if (val < 0 || val > PRIM_SEMVMX)
		return -ERANGE;
	if ((r = check_num(h, semnum)) != 0)
		return r;
	prim__patience_init(&pt, h->patience_ns, NULL, 0);
	if ((r = control(h, REQ_SETVAL, (uint32_t)semnum, val, NULL, 0,
			 &pt)) != 0)
		return r;
	prim_semset_touch(set);
	return 0;
}

int
prim_sem_setall(struct prim_semset *set, const unsigned short *vals)
{
	struct prim_semset *h = hdr(set);
	struct prim_patience pt;
	int r;

	if (vals == NULL)
		return -EFAULT;
	for (uint32_t i = 0; i < h->nsems; i++)
		if (vals[i] > PRIM_SEMVMX)
			return -ERANGE;
	if ((r = set_dead(h)) != 0)
		return r;
	prim__patience_init(&pt, h->patience_ns, NULL, 0);
	if ((r = control(h, REQ_SETALL, 0, 0, vals, 0, &pt)) != 0)
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

	/* A damaged set may be removed too. */
	if (!ck_pr_cas_32(&h->shm->seg.state, PRIM_SEG_LIVE,
			  PRIM_SEG_REMOVED) &&
	    !ck_pr_cas_32(&h->shm->seg.state, PRIM_SEG_DAMAGED,
			  PRIM_SEG_REMOVED))
		return -EIDRM;
	/* Mark every word, waking sleepers: they return -EIDRM. */
	mark_words(h);
	return 0;
}

int
prim_semset_check(struct prim_semset *set)
{
	struct prim_semset *h = hdr(set);
	struct prim_patience pt;
	int r;

	if ((r = set_dead(h)) != 0)
		return r;
	prim__patience_init(&pt, h->patience_ns, NULL, 0);
	/* Help the active request, if any... */
	if ((r = help(h, &pt)) < 0)
		return r == -EAGAIN ? -EBUSY : r;
	/* ...then repair stale freezes (SEM_11). */
	for (uint32_t i = 0; i < h->nsems; i++) {
		uint64_t *p = &sem_at(h, i)->word;
		uint64_t w = ck_pr_load_64(p);

		while (w & W_HELD) {
			if ((r = on_frozen(h, p, w, &pt)) != 0)
				return r == -EAGAIN ? -EBUSY : r;
			w = ck_pr_load_64(p);
		}
		if (w & W_REMOVED)
			return dead(h);
	}
	return set_dead(h);
}

/*
 * SEM_9: reap. Records belong to a dead process when their pid is pid and
 * no live process is that identity (pid and start time): so reaping a
 * live pid does nothing to its records, a record whose identity is stale
 * (forged, or of an earlier process with that pid) is freed, and a
 * newcomer that reuses a dead pid keeps its own records. The dead
 * process's active request is completed, its slots freed, its adjustments
 * applied by one more request; where something changed, every sleeper is
 * woken. Bounded by the set's patience: -EBUSY when it gave up (a later
 * reap goes on from where it stopped).
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
	struct prim_patience pt;
	uint32_t dead_pid = (uint32_t)pid;
	uint64_t live, me = prim__ident();
	int changed = 0, touched = 0, r;

	if (pid <= 0)
		return -EINVAL;
	if ((r = set_dead(h)) != 0)
		return r;
	prim__patience_init(&pt, h->patience_ns, NULL, 0);
	live = prim__ident_of(pid);
	for (uint32_t i = 0, used = slots_used(h); i < used; i++) {
		struct prim_slot_shm *s = slot_at(h, i);
		uint64_t id = ck_pr_load_64(&s->ident);

		if (!dead_owner(id, dead_pid, live))
			continue;
		/*
		 * The slot is the reaper's first, as in take_over(): one that
		 * a caller took over meanwhile holds its request, which is not
		 * the dead process's to withdraw. A reaper killed from here on
		 * leaves the slot to whoever reaps the reaper.
		 */
		if (!ck_pr_cas_64(&s->ident, id, me))
			continue;
		/* Nobody completes its request any more (finished if active). */
		ck_pr_store_32(&s->wait_kind, WAIT_NONE);
		ck_pr_store_32(&s->wait_sem, 0);
		ck_pr_store_64(&s->ticket, 0);
		if ((r = withdraw(h, s, &pt, NULL)) < 0) {
			ck_pr_store_64(&s->ident, id); /* the next reap's */
			return r == -EAGAIN ? -EBUSY : r;
		}
		ck_pr_fence_store();
		ck_pr_cas_64(&s->ident, me, 0);
		touched = 1;
	}
	for (uint32_t u = 0, used = undo_used(h); u < used; u++) {
		struct prim_undo_shm *rec = undo_at(h, u);
		uint64_t id = ck_pr_load_64(&rec->ident);

		if (!dead_owner(id, dead_pid, live))
			continue;
		/* The request sets sempid where it applies an adjustment. */
		for (uint32_t n = 0; n < h->nsems; n++)
			if (wval(ck_pr_load_64(&rec->adj[n])) != 0)
				changed++;
		if ((r = control(h, REQ_REAP, dead_pid, 0, NULL, u + 1, &pt)) !=
		    0)
			return r;
		/* Adjustments are all zero now: the record is free. */
		ck_pr_cas_64(&rec->ident, id, 0);
		touched = 1;
		/* The kernel's exit_sem ends each set it had an undo record
		 * for with do_smart_update(..., otime 1): sem_otime moves,
		 * even when every adjustment was zero. */
		touch_otime(h);
	}
	for (uint32_t n = 0; touched && n < h->nsems; n++) {
		uint64_t *p = &sem_at(h, n)->word;

		if (ck_pr_load_64(p) & W_SLEEPERS)
			wake_word(p);
	}
	return changed;
}

int
prim_semset_pids(const struct prim_semset *set, pid_t *pids, int max)
{
	const struct prim_semset *h = hdr(set);
	int n = 0;

	if (max < 0 || (max > 0 && pids == NULL))
		return -EINVAL;
	uint32_t ns = slots_used(h), nu = undo_used(h);

	for (uint32_t i = 0; i < ns + nu; i++) {
		uint64_t id = i < ns ? ck_pr_load_64(&slot_at(h, i)->ident)
				     : ck_pr_load_64(&undo_at(h, i - ns)->ident);
		pid_t p = (pid_t)(PRIM_IDENT_PID(id) & INT_MAX);
		int k;

		if (id == 0 || p == 0)
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
