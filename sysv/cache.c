/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-process id cache: id -> attached backing segment and open libprim
 * handle, one fixed array per type indexed by id % 32768 (the broker's ids
 * are index + 32768 * sequence, so two live objects never share a slot).
 *
 * Concurrency: lookups take no lock: one atomic increment of the slot's
 * reference count, then plain reads of fields that cannot change while a
 * reference is held. Misses, installs and permission refreshes run under
 * one mutex (taken before the broker's, never after). A slot whose object
 * was removed is marked DYING; the last reference dropped detaches the
 * segment, so no thread ever loses a mapping it is still using (a waiter
 * woken by IPC_RMID still reads the segment on its way out). When a slot
 * cannot be reused yet, the call gets a temporary mapping of its own.
 *
 * Memory ordering:
 * CACHE_1: a lookup's increment (acquire) pairs with the install's release
 *          of VALID: fields written before VALID are seen after it.
 * CACHE_2: the release of a reference (release) pairs with the cleanup's
 *          acquire CAS: the mapping is detached only after every use.
 *
 * Each object keeps the access the broker gave it, with the two things that
 * access depends on: the object's permissions (the registry's perm_gen,
 * which IPC_SET moves) and the caller's credentials (sysv__cred_gen, which
 * setuid and its relatives move, creds.c). A lookup compares both with one
 * load each, no system call, and asks the broker again when either moved
 * (refresh). A process that gained write access to an object it mapped
 * read-only maps it again; one whose credentials lost the access its
 * mapping gives retires the slot, so the mapping goes with the last call
 * using it and the next call maps what it may: a process that dropped
 * root does not keep writing root's objects through root's mapping.
 *
 * After fork the child inherits the mappings and the cache, with the
 * references of threads that do not exist in the child: never dropped,
 * they kept a removed object mapped and its slot unusable (every call on
 * its index then made a temporary mapping). The child drops them
 * (sysv__cache_atfork_child): each thread counts the references it holds
 * (held), so the child knows the forking thread holds none, every
 * reference left belongs to a thread that is gone. Slots below used[]
 * are the only ones that were ever installed.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "sysv_int.h"

#define C_REFS	((UINT64_C(1) << 40) - 1)
#define C_VALID (UINT64_C(1) << 40) /* installed, usable */
#define C_DYING (UINT64_C(1) << 41) /* retired, detach at last put */
#define C_BUSY	(UINT64_C(1) << 42) /* owned by an installer or cleaner */

static struct sysv_obj cache[2][SYSV_IPCMNI];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread unsigned long held; /* slot references of this thread */
static _Atomic unsigned used[2];	    /* 1 + highest index installed */

static struct sysv_obj *
slot(int type, int id)
{
	return &cache[type - 1][(unsigned)id % SYSV_IPCMNI];
}

static void
detach(struct sysv_obj *o)
{
	if (o->type == PRIMD_MSG && o->handle != NULL)
		prim_msgq_close(o->handle);
	else if (o->type == PRIMD_SEM && o->handle != NULL)
		prim_semset_close(o->handle);
	if (o->base != NULL)
		syscall(SYS_shmdt, o->base);
	o->handle = NULL;
	o->base = NULL;
	o->hdr = NULL;
}

/* The slot is DYING with no reference: detach it, unless someone else
 * took a reference (then they will) or already did. */
static void
cleanup(struct sysv_obj *e)
{
	uint64_t exp = C_DYING;
	int saved = errno;

	/* CACHE_2: every use happened before; pairs with put's release. */
	if (!atomic_compare_exchange_strong_explicit(&e->ctl, &exp, C_BUSY,
						     memory_order_acquire,
						     memory_order_relaxed))
		return;
	detach(e);
	e->id = -1;
	atomic_fetch_and_explicit(&e->ctl, ~C_BUSY, memory_order_release);
	errno = saved;
}

void
sysv__put(struct sysv_obj *o)
{
	uint64_t old;

	if (o->temp) {
		int saved = errno;

		detach(o);
		free(o);
		errno = saved;
		return;
	}
	held--;
	/* CACHE_2: our reads of the mapping come before; pairs with cleanup. */
	old = atomic_fetch_sub_explicit(&o->ctl, 1, memory_order_release);
	if ((old & C_REFS) == 1 && (old & ~C_REFS) == C_DYING)
		cleanup(o);
}

/* Mark an installed slot DYING (the caller holds a reference). */
static void
retire(struct sysv_obj *e)
{
	uint64_t old = atomic_load(&e->ctl);

	if (e->temp)
		return;
	while ((old & C_VALID) &&
	       !atomic_compare_exchange_weak(&e->ctl, &old,
					     (old & ~C_VALID) | C_DYING))
		;
}

/*
 * Is the object still what the cache says? The registry, which only the
 * broker writes, says so (the object's own memory may have been rewritten
 * by any of its writers). 0, -EINVAL (removed), -ENOTRECOVERABLE
 * (damaged). Two loads of a line the broker rarely writes.
 */
static int
live(const struct sysv_obj *o, int id)
{
	const struct primd_ent_shm *e = sysv__ent(o->type, id);

	if (e == NULL)
		return 0; /* not mapped yet: the broker judged at OPEN */
	if ((int32_t)ck_pr_load_32((const uint32_t *)&e->id) != id)
		return -EINVAL;
	switch (ck_pr_load_32(&e->state)) {
	case PRIMD_ENT_LIVE:
		return 0;
	case PRIMD_ENT_DAMAGED:
		return -ENOTRECOVERABLE;
	default:
		return -EINVAL;
	}
}

/* The registry's change count of id's permissions (0 without one). */
static uint32_t
perm_gen_of(int type, int id)
{
	const struct primd_ent_shm *e = sysv__ent(type, id);

	return e != NULL ? ck_pr_load_32(&e->perm_gen) : 0;
}

/*
 * Attach and open the object the broker described into *o: read-write
 * with R and W, read-only with R alone (the kernel refuses anything more).
 * Its geometry is the broker's (segment size) and the kernel's, checked by
 * libprim; nothing in the header page is believed. gen is the registry's
 * permission count read before the broker was asked.
 */
static int
attach(int type, const struct primd_rep *rep, uint32_t gen,
       struct sysv_obj *o)
{
	struct shmid_ds sd;
	uint64_t segsz;
	void *base, *obj;
	int rw = (rep->access & (PRIMD_ACC_R | PRIMD_ACC_W)) ==
		 (PRIMD_ACC_R | PRIMD_ACC_W),
	    r;

	memset(o, 0, sizeof(*o));
	base =
	    (void *)syscall(SYS_shmat, rep->shmid, NULL, rw ? 0 : SHM_RDONLY);
	if (base == (void *)-1)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	o->base = base;
	o->hdr = base;
	o->type = type;
	o->id = rep->id;
	o->rw = rw;
	segsz = rep->seg_size;
	/* The kernel's size is the truth: never read past the segment. */
	if (syscall(SYS_shmctl, rep->shmid, IPC_STAT, &sd) == 0 &&
	    (uint64_t)sd.shm_segsz < segsz)
		segsz = sd.shm_segsz;
	r = -EINVAL;
	if (segsz <= PRIMD_OBJ_HDR || (r = live(o, rep->id)) != 0)
		goto fail;
	obj = (char *)base + PRIMD_OBJ_HDR;
	atomic_store(&o->perm_gen, gen);
	atomic_store(&o->access, rep->access);
	if (type == PRIMD_SEM)
		r = prim_semset_open(obj, (size_t)(segsz - PRIMD_OBJ_HDR),
				     (struct prim_semset **)&o->handle);
	else
		r = prim_msgq_open(obj, (size_t)(segsz - PRIMD_OBJ_HDR),
				   (struct prim_msgq **)&o->handle);
	if (r == 0) {
		if (type == PRIMD_SEM &&
		    (uint32_t)prim_semset_nsems(o->handle) != rep->nsems)
			r = -ENOTRECOVERABLE; /* not the set the broker made */
		else {
			if (type == PRIMD_SEM)
				o->nsems = (int)rep->nsems;
			return 0;
		}
	}
	/* Unreadable as the object the registry says is there: damaged. */
	if (r == -EINVAL)
		r = -ENOTRECOVERABLE;
	(void)sysv__judge(type, rep->id, r);
fail:
	detach(o);
	return r;
}

/*
 * A temporary record without a mapping for an object the caller has no
 * access to (see struct sysv_obj), as the broker described it.
 */
static int
unmapped(int type, int id, const struct primd_rep *rep, struct sysv_obj **op)
{
	struct sysv_obj *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	t->id = id;
	t->type = type;
	t->temp = 1;
	t->nsems = type == PRIMD_SEM ? (int)rep->nsems : 0;
	if (t->nsems < 0)
		t->nsems = 0;
	/* A write-only caller keeps W: its calls go to the broker. */
	atomic_store(&t->access, rep->access & PRIMD_ACC_W);
	*op = t;
	return 0;
}

/* Put *tmp (attached) into the slot, or into a temporary record.
 * Called with mu held. */
static int
install(struct sysv_obj *e, struct sysv_obj *tmp, struct sysv_obj **op)
{
	struct sysv_obj *t;

	for (int spin = 0; spin < 1000; spin++) {
		uint64_t exp = 0;

		if (atomic_compare_exchange_weak_explicit(
			&e->ctl, &exp, C_BUSY | 1, memory_order_acquire,
			memory_order_relaxed)) {
			unsigned i = (unsigned)(e - cache[tmp->type - 1]) + 1;

			held++;
			if (atomic_load(&used[tmp->type - 1]) < i)
				atomic_store(&used[tmp->type - 1], i); /* mu */
			e->id = tmp->id;
			e->type = tmp->type;
			e->temp = 0;
			e->rw = tmp->rw;
			e->nsems = tmp->nsems;
			atomic_store(&e->access, atomic_load(&tmp->access));
			atomic_store(&e->perm_gen, atomic_load(&tmp->perm_gen));
			atomic_store(&e->gen, atomic_load(&tmp->gen));
			e->base = tmp->base;
			e->hdr = tmp->hdr;
			e->handle = tmp->handle;
			/* CACHE_1: publish the fields; pairs with lookups. */
			atomic_fetch_add_explicit(&e->ctl, C_VALID - C_BUSY,
						  memory_order_release);
			*op = e;
			return 0;
		}
		if (exp & (C_VALID | C_DYING))
			break; /* in use by another object or draining */
		sched_yield(); /* transient references: let them pass */
	}
	if ((t = malloc(sizeof(*t))) == NULL) {
		detach(tmp);
		return -ENOMEM;
	}
	memcpy(t, tmp, sizeof(*t));
	t->temp = 1;
	*op = t;
	return 0;
}

/* Try the slot: 1 with a reference in *op, 0 on a miss, or -EINVAL. */
static int
lookup(int type, int id, struct sysv_obj **op)
{
	struct sysv_obj *e = slot(type, id);
	uint64_t old;
	int r;

	/* CACHE_1: see the installed fields; pairs with install. */
	old = atomic_fetch_add_explicit(&e->ctl, 1, memory_order_acquire);
	held++;
	if (!(old & C_VALID)) {
		sysv__put(e);
		return 0;
	}
	if (e->id != id) {
		/* Another id of this index: drop ours if its object is gone,
		 * and let the broker judge the one asked for. */
		if (live(e, e->id) != 0)
			retire(e);
		sysv__put(e);
		return 0;
	}
	if ((r = live(e, id)) != 0) {
		retire(e);
		sysv__put(e);
		return r; /* removed (-EINVAL) or damaged */
	}
	*op = e;
	return 1;
}

/*
 * The object's permissions (IPC_SET) or the caller's credentials changed
 * since the broker judged its access: ask again. seen is the registry's
 * perm_gen and gen the credential generation the answer will belong to,
 * both read before asking. Called with mu held and a reference on e.
 * Returns 0, 1 (remap needed: e was put), or -errno (e was put).
 */
static int
refresh(int type, int id, struct sysv_obj *e, uint32_t seen, uint32_t gen)
{
	/* A credential change that takes access away also takes the
	 * mapping: retired, it is detached once the last user is done. */
	int dropped = gen != atomic_load(&e->gen);
	struct primd_req req;
	struct primd_rep rep;
	int r;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_OPEN;
	req.type = (uint16_t)type;
	req.id = id;
	if ((r = sysv__call(&req, &rep)) == 0)
		r = -rep.err;
	if (r == -EACCES) {
		/* No access now: allow nothing. */
		atomic_store(&e->access, 0);
		atomic_store(&e->perm_gen, seen);
		atomic_store(&e->gen, gen);
		if (dropped)
			retire(e);
		return 0;
	}
	if (r != 0) {
		if (r == -EINVAL || r == -EIDRM) {
			retire(e);
			r = r == -EIDRM ? -ENOTRECOVERABLE : -EINVAL;
		}
		sysv__put(e);
		return r;
	}
	if (((rep.access & PRIMD_ACC_W) && !e->rw && !e->temp) ||
	    !(rep.access & PRIMD_ACC_R)) {
		/* Now a writer where we map read-only, or no longer a
		 * reader (the mapping must go): map again. */
		retire(e);
		sysv__put(e);
		return 1;
	}
	atomic_store(&e->access, rep.access);
	atomic_store(&e->perm_gen, seen);
	atomic_store(&e->gen, gen);
	if (dropped && e->rw && !(rep.access & PRIMD_ACC_W))
		retire(e);
	return 0;
}

/*
 * A miss: ask the broker (or use hint, its answer to a GET made at
 * credential generation gen) and map the object.
 */
static int
slow_get(int type, int id, const struct primd_rep *hint, uint32_t gen,
	 struct sysv_obj **op)
{
	struct primd_req req;
	struct primd_rep rep;
	struct sysv_obj tmp;
	uint32_t pgen;
	int r;

	pthread_mutex_lock(&mu);
	if ((r = lookup(type, id, op)) != 0) {
		pthread_mutex_unlock(&mu);
		return r < 0 ? r : 0;
	}
	/* Before the broker is asked: a change after it is seen later. */
	pgen = perm_gen_of(type, id);
	if (hint == NULL) {
		gen = sysv__gen(); /* before asking: see sysv_int.h */
		memset(&req, 0, sizeof(req));
		req.op = PRIMD_OPEN;
		req.type = (uint16_t)type;
		req.id = id;
		if ((r = sysv__call(&req, &rep)) == 0)
			r = -rep.err;
		if ((r == 0 || r == -EACCES) && rep.id != id)
			rep.id = id; /* OPEN answers for the id asked */
		if (r == -EACCES)
			rep.access = 0; /* exists, but no access at all */
		else if (r != 0) {
			pthread_mutex_unlock(&mu);
			/* OPEN says EIDRM for a damaged object only. */
			return r == -EIDRM ? -ENOTRECOVERABLE : r;
		}
		hint = &rep;
	}
	if (!(hint->access & PRIMD_ACC_R))
		r = unmapped(type, id, hint, op); /* the kernel would refuse */
	else if ((r = attach(type, hint, pgen, &tmp)) == 0) {
		atomic_store(&tmp.gen, gen);
		r = install(slot(type, id), &tmp, op);
	}
	pthread_mutex_unlock(&mu);
	return r;
}

int
sysv__get(int type, int id, struct sysv_obj **op)
{
	int r;

	if (id < 0)
		return -EINVAL;
	if ((r = sysv__registered()) != 0)
		return r;
	for (int tries = 0; tries < 4; tries++) {
		struct sysv_obj *e;
		uint32_t seq, gen;

		if ((r = lookup(type, id, &e)) < 0)
			return r;
		if (r == 0) {
			if ((r = slow_get(type, id, NULL, 0, &e)) != 0)
				return r;
			if (e->hdr == NULL) {
				*op = e; /* fresh from the broker, unmapped */
				return 0;
			}
		}
		seq = perm_gen_of(type, id);
		gen = sysv__gen();
		if (seq == atomic_load_explicit(&e->perm_gen,
						memory_order_relaxed) &&
		    gen ==
			atomic_load_explicit(&e->gen, memory_order_relaxed)) {
			*op = e;
			return 0;
		}
		pthread_mutex_lock(&mu);
		if (seq == atomic_load(&e->perm_gen) &&
		    gen == atomic_load(&e->gen))
			r = 0; /* another thread asked meanwhile */
		else
			r = refresh(type, id, e, seq, gen);
		pthread_mutex_unlock(&mu);
		if (r < 0)
			return r;
		if (r == 0) {
			*op = e;
			return 0;
		}
		/* r == 1: mapped again on the next round */
	}
	return -EINVAL;
}

/* Install a mapping the broker described in answer to a request made at
 * credential generation gen, and return a reference like sysv__get. */
static int
get_from(int type, const struct primd_rep *rep, uint32_t gen,
	 struct sysv_obj **op)
{
	int r;

	if ((r = sysv__registered()) != 0)
		return r;
	if (rep->id < 0)
		return -EINVAL;
	if ((r = slow_get(type, rep->id, rep, gen, op)) != 0)
		return sysv__get(type, rep->id, op);
	return 0;
}

int
sysv__get_key(int type, int key, int flags, int nsems)
{
	struct primd_req req;
	struct primd_rep rep;
	struct sysv_obj *o;
	uint32_t gen = sysv__gen(); /* before asking: see sysv_int.h */
	int r;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_GET;
	req.type = (uint16_t)type;
	req.key = key;
	req.flags = flags;
	req.nsems = nsems;
	if ((r = sysv__call(&req, &rep)) != 0)
		return r;
	if (rep.err != 0)
		return -rep.err;
	/*
	 * Map it now: the first data-path call then needs no broker. Its
	 * failure is not the caller's (that call maps it again), and
	 * neither is the errno a failed shmat or malloc left: semget and
	 * msgget change errno only when they fail.
	 */
	int saved = errno;

	if (get_from(type, &rep, gen, &o) == 0)
		sysv__put(o);
	errno = saved;
	return rep.id;
}

void
sysv__forget(int type, int id)
{
	struct sysv_obj *e = slot(type, id);
	uint64_t old;

	old = atomic_fetch_add_explicit(&e->ctl, 1, memory_order_acquire);
	held++;
	if ((old & C_VALID) && e->id == id)
		retire(e);
	sysv__put(e);
}

void
sysv__perm(const struct sysv_obj *o, struct sysv_perm *p)
{
	const struct primd_ent_shm *e = sysv__ent(o->type, o->id);
	struct primd_ent_shm c;

	memset(p, 0, sizeof(*p));
	if (e == NULL)
		return;
	/*
	 * The broker's entry, consistently; a broker killed mid-write leaves
	 * the count odd until the next one adopts the registry: then take
	 * the words as they are rather than wait (they are for display).
	 */
	if (primd_ent_read(e, &c) != 0) {
		c.uid = ck_pr_load_32(&e->uid);
		c.gid = ck_pr_load_32(&e->gid);
		c.cuid = ck_pr_load_32(&e->cuid);
		c.cgid = ck_pr_load_32(&e->cgid);
		c.mode = ck_pr_load_32(&e->mode);
		c.key = (int32_t)ck_pr_load_32((const uint32_t *)&e->key);
	}
	p->uid = c.uid;
	p->gid = c.gid;
	p->cuid = c.cuid;
	p->cgid = c.cgid;
	p->mode = c.mode & 0777;
	p->key = c.key;
}

void
sysv__cache_atfork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	/*
	 * Only this thread exists now. A reference of its own means fork
	 * was called by a signal handler that interrupted a call here:
	 * which slot it holds is not known, so keep them all, as they are.
	 */
	if (held != 0)
		return;
	for (int t = 0; t < 2; t++) {
		unsigned n = atomic_load(&used[t]);

		for (unsigned i = 0; i < n && i < SYSV_IPCMNI; i++) {
			struct sysv_obj *e = &cache[t][i];
			uint64_t c = atomic_load(&e->ctl);

			/*
			 * BUSY: a thread that is gone was filling or
			 * detaching it, its fields are half-written: leave
			 * it, calls on its index map temporarily.
			 */
			if ((c & C_BUSY) || (c & C_REFS) == 0)
				continue;
			if ((c & ~C_REFS) == C_DYING) {
				/* Its last user is gone: detach it now. */
				int saved = errno;

				detach(e);
				e->id = -1;
				errno = saved;
				atomic_store(&e->ctl, 0);
			} else {
				atomic_store(&e->ctl, c & ~C_REFS);
			}
		}
	}
}
