/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The registry's entries: ids, lookup, publishing an entry to the clients
 * that read the registry, removal and damage. The entry is the authority
 * on an object (state, owner, mode); the object's own memory decides
 * nothing (doc/design.md, "Trust and containment").
 *
 * Crash safety: every change to an entry is ordered so that a broker
 * killed between any two stores leaves a state the next broker can finish
 * or roll back on adoption: a slot is CREATING from the moment its segment
 * exists until the object is published (adoption removes such segments),
 * and REMOVING from the first step of IPC_RMID (adoption finishes it).
 * A broker killed inside primd__ent_begin/end leaves the entry's count
 * odd; clients then ask the broker, and adoption evens it.
 *
 * Concurrency: only the broker's one thread calls these functions;
 * clients read entries concurrently with primd_ent_read (proto.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "prim_int.h"
#include "quota.h"
#include "registry.h"

/*
 * Ids are index + sequence, like the kernel's, with bit 30 always set:
 * from 2^30 up, a range kernel ids reach only after 32768 reuses of one
 * index, so an id handed over from a program that is not preloaded is
 * unlikely to name one of ours (PRELOAD.md, item 5). The sequence wraps
 * every 32768 reuses of an index.
 */
int
primd__mkid(uint16_t seq, int idx)
{
	return (int)((uint32_t)(seq | 0x8000u) << PRIMD_SEQ_SHIFT |
		     (uint32_t)idx);
}

static int
lookup_in(struct primd_reg *r, int t, int32_t id, int damaged_too)
{
	struct primd_ent_shm *e;
	int i;

	if (id < 0)
		return -1;
	i = id & (PRIMD_NIDX - 1);
	e = &r->shm->ent[t][i];
	if (primd__mkid(e->seq, i) != id)
		return -1;
	if (e->state == PRIMD_ENT_LIVE && r->obj[t][i].hdr != NULL)
		return i;
	if (damaged_too && e->state == PRIMD_ENT_DAMAGED)
		return i;
	return -1;
}

int
primd__lookup(struct primd_reg *r, int t, int32_t id)
{
	return lookup_in(r, t, id, 0);
}

int
primd__lookup_any(struct primd_reg *r, int t, int32_t id)
{
	return lookup_in(r, t, id, 1);
}

int
primd__find_key(struct primd_reg *r, int t, int32_t key)
{
	for (int i = 0; i < r->hi[t]; i++) {
		struct primd_ent_shm *e = &r->shm->ent[t][i];

		/* A damaged object keeps its key until it is removed. */
		if ((e->state == PRIMD_ENT_LIVE || e->state == PRIMD_ENT_DAMAGED) &&
		    e->key == key)
			return i;
	}
	return -1;
}

void
primd__ent_begin(struct primd_ent_shm *e)
{
	ck_sequence_write_begin(&e->sq);
}

void
primd__ent_end(struct primd_ent_shm *e)
{
	ck_sequence_write_end(&e->sq);
}

void
primd__ent_free(struct primd_ent_shm *e)
{
	primd__ent_begin(e);
	e->state = PRIMD_ENT_FREE;
	e->id = -1;
	e->key = 0;
	e->shmid = -1;
	e->seg_size = 0;
	e->nsems = 0;
	e->cpid = 0;
	e->uid = e->gid = e->cuid = e->cgid = e->mode = 0;
	e->perm_gen++;
	/* The next object at this index gets another id. */
	e->seq = (uint16_t)(e->seq + 1);
	primd__ent_end(e);
}

/* The segment size the broker makes for a libprim object of len bytes. */
static uint64_t
seg_round(uint64_t len)
{
	long p = sysconf(_SC_PAGESIZE);
	uint64_t ps = p > 0 ? (uint64_t)p : 4096;

	return (PRIMD_OBJ_HDR + len + ps - 1) / ps * ps;
}

int
primd__open_handle(int t, struct primd_obj *o, uint64_t seg_size,
		   uint32_t nsems)
{
	void *mem = (char *)o->hdr + PRIMD_OBJ_HDR;
	size_t len = (size_t)(seg_size - PRIMD_OBJ_HDR);
	const struct prim_seg_shm *sh = mem;
	uint64_t need;
	int rc;

	if (seg_size <= PRIMD_OBJ_HDR)
		return -EINVAL;
	/*
	 * Any writer of the object may rewrite its memory into another
	 * geometry that is consistent and fits the segment (2000 semaphores
	 * where the registry says 1). libprim would open it, and the broker
	 * sizes its buffers from the registry: only the geometry the
	 * registry made is this object. The layout's size, read before the
	 * open so that the open's own check covers the header it accepts,
	 * must be one the broker's segment size implies.
	 */
	need = __atomic_load_n(&sh->size, __ATOMIC_ACQUIRE);
	if (seg_round(need) != seg_size)
		return -EINVAL;
	if (t == T_SEM) {
		rc = prim_semset_open(mem, len, (struct prim_semset **)&o->handle);
		if (rc == 0 &&
		    (uint32_t)prim_semset_nsems(o->handle) != nsems) {
			prim_semset_close(o->handle);
			rc = -EINVAL;
		}
		if (rc == 0)
			prim_semset_set_patience(o->handle, PRIMD_PATIENCE_NS);
	} else {
		rc = prim_msgq_open(mem, len, (struct prim_msgq **)&o->handle);
		if (rc == 0)
			prim_msgq_set_patience(o->handle, PRIMD_PATIENCE_NS);
	}
	if (rc != 0)
		o->handle = NULL;
	return rc;
}

void
primd__close_handle(int t, struct primd_obj *o)
{
	if (t == T_MSG && o->handle != NULL)
		prim_msgq_close(o->handle);
	else if (t == T_SEM && o->handle != NULL)
		prim_semset_close(o->handle);
	o->handle = NULL;
	if (o->hdr != NULL)
		(void)shmdt(o->hdr);
	o->hdr = NULL;
}

void
primd__reg_raise(uint32_t *hi, int i)
{
	if ((uint32_t)i < ck_pr_load_32(hi))
		return;
	ck_pr_store_32(hi, (uint32_t)i + 1);
	ck_pr_fence_store(); /* REG_1: before the entry is written */
}

void
primd__count(struct primd_reg *r, int t, int i)
{
	struct primd_obj *o = &r->obj[t][i];

	if (o->counted)
		return;
	r->nobj[t]++;
	if (t == T_SEM)
		r->nsems += r->shm->ent[t][i].nsems;
	o->counted = 1;
	if (i >= r->hi[t])
		r->hi[t] = i + 1;
}

void
primd__remove(struct primd_reg *r, int t, int i)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];
	struct primd_obj *o = &r->obj[t][i];
	int damaged = e->state == PRIMD_ENT_DAMAGED;

	primd__ent_begin(e);
	e->state = PRIMD_ENT_REMOVING;
	primd__ent_end(e);
	/* Wake its waiters (EIDRM); bounded whatever the memory holds. */
	if (!damaged && o->handle != NULL) {
		if (t == T_SEM)
			(void)prim_semset_remove(o->handle);
		else
			(void)prim_msgq_remove(o->handle);
	}
	(void)shmctl(e->shmid, IPC_RMID, NULL);
	primd__quota_obj_release(PRIMD_QUOTA_OBJ(t, i));
	if (o->counted) {
		r->nobj[t]--;
		if (t == T_SEM)
			r->nsems -= e->nsems;
		o->counted = 0;
	}
	primd__close_handle(t, o);
	o->strikes = 0;
	primd__ent_free(e);
}

void
primd__damage(struct primd_reg *r, int t, int i, const char *why)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];
	struct primd_obj *o = &r->obj[t][i];

	if (e->state != PRIMD_ENT_LIVE)
		return;
	fprintf(stderr, "primd: %s %d (segment %d, owner %u) is damaged: %s\n",
		t == T_SEM ? "semaphore set" : "queue", e->id, e->shmid,
		(unsigned)e->uid, why);
	primd__ent_begin(e);
	e->state = PRIMD_ENT_DAMAGED;
	primd__ent_end(e);
	/*
	 * Its users get EIDRM (libsysv reads the entry; those asleep in it
	 * are woken by the removal mark, which is bounded). The broker never
	 * touches its memory again; the owner's IPC_RMID frees it.
	 */
	if (o->handle != NULL) {
		if (t == T_SEM)
			(void)prim_semset_remove(o->handle);
		else
			(void)prim_msgq_remove(o->handle);
	}
	primd__close_handle(t, o);
}

int
primd__judge(struct primd_reg *r, int t, int i, int rc)
{
	struct primd_obj *o = &r->obj[t][i];

	if (rc == -ENOTRECOVERABLE) {
		primd__damage(r, t, i, "inconsistent memory");
	} else if (rc == -EIDRM) {
		/* Only the broker removes: the registry says it lives. */
		primd__damage(r, t, i, "marked removed in its memory");
	} else if (rc == -EBUSY) {
		if (++o->strikes >= PRIMD_STRIKES)
			primd__damage(r, t, i,
				      "kept changing under the broker");
	} else {
		o->strikes = 0;
	}
	return rc;
}

void
primd__reg_info(struct primd_reg *r, struct primd_info *info)
{
	struct prim_msgq_stat st;

	*info = r->conf.lim;
	info->sem_sets = r->nobj[T_SEM];
	info->sem_sems = r->nsems > UINT32_MAX ? UINT32_MAX
					       : (uint32_t)r->nsems;
	info->msg_queues = r->nobj[T_MSG];
	info->msg_msgs = 0;
	info->msg_bytes = 0;
	for (int i = 0; i < r->hi[T_MSG]; i++) {
		struct primd_obj *o = &r->obj[T_MSG][i];

		if (r->shm->ent[T_MSG][i].state != PRIMD_ENT_LIVE ||
		    o->handle == NULL || prim_msgq_stat(o->handle, &st) != 0)
			continue;
		info->msg_msgs += st.qnum;
		info->msg_bytes += st.cbytes;
	}
	info->max_index = -1;
}
