/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The requests of proto.h: key lookup and creation (semget/msgget),
 * IPC_SET, IPC_RMID, *_INFO, *_STAT by index, the listing for primctl,
 * the operations the broker does for callers that may not map an object
 * read-write, and damage reports. Error rules and their order follow the
 * kernel's ipc/util.c, ipc/sem.c and ipc/msg.c (see SEMANTICS.md).
 * Permissions come from the registry entry and the caller's kernel
 * credentials only (perm.c); every call into an object's memory is
 * bounded by the broker's patience and judged (primd__judge), so a
 * hostile object costs at most a patience per request and ends up damaged.
 *
 * Concurrency: the broker's one thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "quota.h"
#include "registry.h"

#ifndef SEM_INFO
#define SEM_INFO 19
#endif
#ifndef MSG_INFO
#define MSG_INFO 12
#endif

static struct primd_ent_shm *
ent(struct primd_reg *r, int t, int i)
{
	return &r->shm->ent[t][i];
}

static void
reply_obj(struct primd_reg *r, int t, int i, const struct primd_cred *c,
	  struct primd_rep *rep)
{
	struct primd_ent_shm *e = ent(r, t, i);

	rep->id = e->id;
	rep->shmid = e->shmid;
	rep->seg_size = e->seg_size;
	rep->access = primd__access(c, e);
	rep->nsems = t == T_SEM ? e->nsems : 0;
	if (e->state == PRIMD_ENT_DAMAGED)
		rep->flags |= PRIMD_REP_DAMAGED;
}

static size_t
page_round(size_t n)
{
	long p = sysconf(_SC_PAGESIZE);
	size_t ps = p > 0 ? (size_t)p : 4096;

	return (n + ps - 1) / ps * ps;
}

/*
 * The index a new object gets, as the kernel's ipc_idr_alloc picks it:
 * idr_alloc_cyclic(0, max(in_use * 3 / 2, 64) capped at IPCMNI), i.e. the
 * first free index from the cursor (one past the last one given), then
 * from 0. So a removed object's index is not reused at once, and *_INFO
 * (the highest index in use) and *_STAT by index see what they see on the
 * kernel. Beyond that range only if slots being created or removed fill
 * it. The cursor moves when create() succeeds.
 */
static int
pick_index(struct primd_reg *r, int t)
{
	int end = (int)(r->nobj[t] * 3 / 2), start = r->next_idx[t], i;

	if (end < 64)
		end = 64;
	if (end > PRIMD_NIDX)
		end = PRIMD_NIDX;
	if (start < 0 || start >= end)
		start = 0;
	for (i = start; i < end; i++)
		if (ent(r, t, i)->state == PRIMD_ENT_FREE)
			return i;
	for (i = 0; i < PRIMD_NIDX; i++)
		if (ent(r, t, i)->state == PRIMD_ENT_FREE)
			return i;
	return -1;
}

/* Create an object for GET; the caller checked that it may. */
static int
create(struct primd_reg *r, int t, const struct primd_cred *c,
       const struct primd_req *q, struct primd_rep *rep)
{
	const struct primd_info *lim = &r->conf.lim;
	struct prim_semset_attr sa;
	struct prim_msgq_attr ma;
	struct primd_ent_shm *e;
	struct primd_obj *o;
	struct primd_obj_shm *h;
	size_t objlen, seg;
	long long next;
	int i, shmid, rc;
	uint32_t max = t == T_SEM ? lim->semmni : lim->msgmni;

	if (t == T_SEM) {
		if (q->nsems == 0)
			return EINVAL;
		if (r->nsems + (uint64_t)q->nsems > lim->semmns)
			return ENOSPC;
		memset(&sa, 0, sizeof(sa));
		sa.nsems = (uint32_t)q->nsems;
		/* libprim's bounds (libsysv(7), BUGS), not the sysctl's. */
		sa.semopm = lim->semopm < 8191 ? lim->semopm : 8191;
		sa.nprocs = r->conf.sem_nprocs;
		sa.nslots = r->conf.sem_nslots;
		sa.flags = PRIM_SEMSET_ZEROED; /* a fresh segment */
		objlen = prim_semset_size(&sa);
	} else {
		memset(&ma, 0, sizeof(ma));
		ma.qbytes = lim->msgmnb;
		ma.qbytes_max = r->conf.msg_qbytes_max;
		if (ma.qbytes_max < ma.qbytes)
			ma.qbytes_max = ma.qbytes;
		/*
		 * Blocks for any length the queue can ever hold (no message
		 * longer than qbytes_max fits), not only for today's msgmax:
		 * a msgmax raised later applies to this queue too (libsysv
		 * and the proxied msgsnd check the sysctl itself). It costs
		 * address space only; a class's pages are touched by its
		 * messages alone.
		 */
		ma.msgmax = lim->msgmax > ma.qbytes_max ? lim->msgmax
							: ma.qbytes_max;
		if (ma.msgmax > 1u << 24)
			ma.msgmax = 1u << 24;
		ma.nslots = r->conf.msg_nslots;
		ma.flags = PRIM_MSGQ_ZEROED; /* a fresh segment */
		objlen = prim_msgq_size(&ma);
	}
	if (objlen == 0)
		return EINVAL;
	if (r->nobj[t] >= max)
		return ENOSPC;
	/* msg_next_id/sem_next_id (limits.c): the first free index from
	 * the one it names, with its sequence, as ipc_idr_alloc does;
	 * otherwise the next index after the last one given (pick_index). */
	next = primd__next_id(t);
	if (next >= 0) {
		for (i = (int)(next & (PRIMD_NIDX - 1)); i < PRIMD_NIDX; i++)
			if (ent(r, t, i)->state == PRIMD_ENT_FREE)
				break;
		if (i == PRIMD_NIDX)
			i = -1;
	} else {
		i = pick_index(r, t);
	}
	if (i < 0)
		return ENOSPC;
	e = ent(r, t, i);
	primd__reg_raise(&r->shm->ent_hi[t], i); /* REG_1 */
	if (next >= 0) {
		primd__ent_begin(e);
		e->seq = (uint16_t)((next >> PRIMD_SEQ_SHIFT) & 0x7fff);
		primd__ent_end(e);
	}
	o = &r->obj[t][i];
	seg = page_round(PRIMD_OBJ_HDR + objlen);
	/* quota.c: the creator's quotas and prim's share of shm ids. */
	if ((rc = primd__quota_obj_admit(c->uid, seg)) != 0)
		return -rc;
	/* Made as the creator: the kernel's classes are the object's. */
	shmid = primd__seg_create(seg, c->uid, c->gid);
	if (shmid < 0)
		return shmid == -ENOSPC ? ENOSPC : ENOMEM;
	primd__quota_obj_charge(PRIMD_QUOTA_OBJ(t, i), c->uid, seg);
	/* From here a crash leaves a CREATING slot that adoption removes. */
	primd__ent_begin(e);
	e->shmid = shmid;
	e->seg_size = seg;
	e->key = q->key;
	e->nsems = t == T_SEM ? (uint32_t)q->nsems : 0;
	e->cpid = (int32_t)getpid();
	e->uid = e->cuid = c->uid;
	e->gid = e->cgid = c->gid;
	e->mode = (uint32_t)q->flags & 0777;
	e->id = primd__mkid(e->seq, i);
	e->state = PRIMD_ENT_CREATING;
	primd__ent_end(e);
	h = primd__seg_attach(shmid);
	if (h == (void *)-1) {
		rc = ENOMEM;
		goto fail;
	}
	h->version = PRIMD_OBJ_VERSION;
	h->type = (uint16_t)(t + 1);
	h->id = e->id;
	h->key = q->key;
	o->hdr = h;
	rc = t == T_SEM
		 ? prim_semset_init((char *)h + PRIMD_OBJ_HDR, objlen, &sa)
		 : prim_msgq_init((char *)h + PRIMD_OBJ_HDR, objlen, &ma);
	if (rc == 0)
		rc = primd__open_handle(t, o, seg, e->nsems);
	if (rc != 0) {
		rc = rc == -ENOMEM ? ENOMEM : EINVAL;
		primd__close_handle(t, o);
		goto fail;
	}
	primd__seg_mirror(shmid, e);
	/* OBJ_1: the header is complete before its magic says so (for
	 * tools); the object is published by the entry. */
	__atomic_store_n(&h->magic, PRIMD_OBJ_MAGIC, __ATOMIC_RELEASE);
	primd__ent_begin(e);
	e->state = PRIMD_ENT_LIVE;
	primd__ent_end(e);
	primd__count(r, t, i);
	/* The cyclic cursor moves for a cyclic choice only (the kernel's
	 * next_id takes idr_alloc at that index, not idr_alloc_cyclic). */
	if (next < 0)
		r->next_idx[t] = i + 1;
	reply_obj(r, t, i, c, rep);
	return 0;
fail:
	(void)shmctl(shmid, IPC_RMID, NULL);
	primd__quota_obj_release(PRIMD_QUOTA_OBJ(t, i));
	primd__ent_free(e);
	return rc;
}

/* semget/msgget in the kernel's order (ipc/util.c ipcget). */
static int
do_get(struct primd_reg *r, int t, const struct primd_cred *c,
       const struct primd_req *q, struct primd_rep *rep)
{
	int i, rc;

	if (t == T_SEM &&
	    (q->nsems < 0 || (uint32_t)q->nsems > r->conf.lim.semmsl))
		return EINVAL;
	if (q->key == 0) /* IPC_PRIVATE */
		return create(r, t, c, q, rep);
	i = primd__find_key(r, t, q->key);
	if (i < 0)
		return (q->flags & IPC_CREAT) ? create(r, t, c, q, rep)
					      : ENOENT;
	if ((q->flags & IPC_CREAT) && (q->flags & IPC_EXCL))
		return EEXIST;
	if (t == T_SEM && (uint32_t)q->nsems > ent(r, t, i)->nsems)
		return EINVAL;
	if ((rc = primd__ipcperms(c, ent(r, t, i), q->flags)) != 0)
		return rc;
	reply_obj(r, t, i, c, rep);
	return 0;
}

static int
do_open(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	int i = primd__lookup_any(r, t, q->id);

	if (i < 0)
		return EINVAL;
	/* No access: EACCES, the reply still describing the object (id,
	 * nsems), so the caller can check what the kernel checks first. */
	reply_obj(r, t, i, c, rep);
	if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	return rep->access == 0 ? EACCES : 0;
}

/* IPC_SET (ipc/util.c ipcctl_obtain_check, ipc_update_perm). */
static int
do_set(struct primd_reg *r, int t, const struct primd_cred *c,
       const struct primd_req *q, struct primd_rep *rep)
{
	int i = primd__lookup_any(r, t, q->id), rc;
	struct primd_ent_shm *e;
	struct primd_obj *o;

	if (i < 0)
		return EINVAL;
	e = ent(r, t, i);
	o = &r->obj[t][i];
	if (!primd__may_control(c, e))
		return EPERM;
	if (e->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	if (t == T_MSG && q->qbytes > r->conf.lim.msgmnb &&
	    !(c->caps & PRIMD_CAP_SYS_RESOURCE))
		return EPERM;
	if (q->uid == (uint32_t)-1 || q->gid == (uint32_t)-1)
		return EINVAL;
	if (t == T_MSG) {
		/* Above what the pool was sized for: EINVAL (documented). */
		rc = primd__judge(r, t, i,
				  prim_msgq_set_qbytes(o->handle, q->qbytes));
		if (rc != 0)
			return rc == -ENOTRECOVERABLE || rc == -EIDRM ? EIDRM
								     : -rc;
	}
	primd__ent_begin(e);
	e->uid = q->uid;
	e->gid = q->gid;
	e->mode = q->mode & 0777;
	e->perm_gen++;
	primd__ent_end(e);
	primd__seg_mirror(e->shmid, e);
	/* prim_msgq_set_qbytes above already set the queue's ctime. */
	if (t == T_SEM)
		prim_semset_touch(o->handle);
	reply_obj(r, t, i, c, rep);
	return 0;
}

static int
do_rmid(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	int i = primd__lookup_any(r, t, q->id);

	if (i < 0)
		return EINVAL;
	if (!primd__may_control(c, ent(r, t, i)))
		return EPERM;
	rep->id = q->id;
	primd__remove(r, t, i);
	return 0;
}

static int
max_index(struct primd_reg *r, int t)
{
	for (int i = r->hi[t] - 1; i >= 0; i--)
		if (ent(r, t, i)->state == PRIMD_ENT_LIVE ||
		    ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
			return i;
	return -1;
}

static int
do_info(struct primd_reg *r, int t, const struct primd_req *q,
	struct primd_rep *rep)
{
	if (q->flags != IPC_INFO &&
	    q->flags != (t == T_SEM ? SEM_INFO : MSG_INFO))
		return EINVAL;
	primd__reg_info(r, &rep->info);
	rep->info.max_index = max_index(r, t);
	return 0;
}

/* The *_STAT fields of object [t][i]: permissions from the registry, the
 * rest from the broker's own mapping. */
static int
fill_stat(struct primd_reg *r, int t, int i, struct primd_stat *st)
{
	const struct primd_ent_shm *e = ent(r, t, i);
	void *handle = r->obj[t][i].handle;
	struct prim_msgq_stat ms;
	int rc;

	memset(st, 0, sizeof(*st));
	st->uid = e->uid;
	st->gid = e->gid;
	st->cuid = e->cuid;
	st->cgid = e->cgid;
	st->mode = e->mode & 0777;
	st->key = e->key;
	st->nsems = t == T_SEM ? e->nsems : 0;
	if (handle == NULL)
		return EIDRM;
	if (t == T_SEM) {
		rc = prim_semset_times(handle, &st->otime, &st->ctime);
		return rc < 0 ? -rc : 0;
	}
	if ((rc = primd__judge(r, t, i, prim_msgq_stat(handle, &ms))) != 0)
		return -rc;
	st->ctime = ms.ctime;
	st->qnum = ms.qnum;
	st->cbytes = ms.cbytes;
	st->qbytes = ms.qbytes;
	st->lspid = ms.lspid;
	st->lrpid = ms.lrpid;
	st->stime = ms.stime;
	st->rtime = ms.rtime;
	return 0;
}

static int
do_stat_index(struct primd_reg *r, int t, const struct primd_cred *c,
	      const struct primd_req *q, struct primd_rep *rep)
{
	/* The kernel's ipc_obtain_object_idr takes ipcid_to_idx(arg): the
	 * low 15 bits, so an object's id, or index + k * 32768, finds it. */
	int i = q->id < 0 ? -1 : q->id & (PRIMD_NIDX - 1);

	if (q->flags != 0 && q->flags != 1)
		return EINVAL;
	if (i < 0 ||
	    (ent(r, t, i)->state != PRIMD_ENT_LIVE &&
	     ent(r, t, i)->state != PRIMD_ENT_DAMAGED))
		return EINVAL;
	reply_obj(r, t, i, c, rep);
	if (q->flags == 0 && !(rep->access & PRIMD_ACC_R))
		return EACCES;
	return fill_stat(r, t, i, &rep->stat) == 0 ? 0 : EIDRM;
}

/* The errno a proxied call's libprim result becomes, after judging it. */
static int
proxied(struct primd_reg *r, int t, int i, int rc)
{
	rc = primd__judge(r, t, i, rc);
	if (rc == -ENOTRECOVERABLE)
		return EIDRM;
	return rc < 0 ? -rc : 0;
}

/*
 * PRIMD_SEMOP: semop for a caller that maps the set read-only or not at
 * all; never waits (proto.h).
 */
static int
do_semop(struct primd_reg *r, int t, const struct primd_cred *c,
	 const struct primd_req *q, const unsigned char *in, size_t inlen,
	 struct primd_rep *rep)
{
	struct prim_sembuf *sops;
	uint32_t n = (uint32_t)q->nsems, max = 0, alter = 0;
	int i = primd__lookup_any(r, t, q->id), rc, blocked = 0;

	if (t != T_SEM || q->nsems < 1)
		return EINVAL;
	if (n > r->conf.lim.semopm)
		return E2BIG;
	if (inlen != (size_t)n * sizeof(struct primd_sembuf) || i < 0)
		return EINVAL;
	if ((sops = calloc(n, sizeof(*sops))) == NULL)
		return ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		struct primd_sembuf b;

		memcpy(&b, in + k * sizeof(b), sizeof(b));
		sops[k].sem_num = b.sem_num;
		sops[k].sem_op = b.sem_op;
		sops[k].sem_flg = b.sem_flg;
		if (b.sem_num > max)
			max = b.sem_num;
		if (b.sem_op != 0)
			alter = 1;
	}
	reply_obj(r, t, i, c, rep);
	if (max >= ent(r, t, i)->nsems)
		rc = EFBIG;
	else if (!(rep->access & (alter ? PRIMD_ACC_W : PRIMD_ACC_R)))
		rc = EACCES;
	else if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		rc = EIDRM;
	else if (c->pid <= 0)
		rc = EINVAL; /* a peer outside our pid namespace */
	else
		rc = proxied(r, t, i,
			     prim_sem_op_as(r->obj[t][i].handle, sops, n,
					    c->pid, &blocked));
	free(sops);
	if (rc == EAGAIN && blocked)
		rep->flags |= PRIMD_REP_BLOCKED;
	return rc;
}

/* PRIMD_SEMCTL: SETVAL and SETALL for a write-only caller. */
static int
do_semctl(struct primd_reg *r, int t, const struct primd_cred *c,
	  const struct primd_req *q, const unsigned char *in, size_t inlen,
	  struct primd_rep *rep)
{
	int i = primd__lookup_any(r, t, q->id), rc;
	unsigned short *vals;
	uint32_t ns;

	if (t != T_SEM || i < 0)
		return EINVAL;
	ns = ent(r, t, i)->nsems;
	reply_obj(r, t, i, c, rep);
	if (q->flags == SETVAL) {
		/* ERANGE, then EINVAL (semnum), then EACCES, as the kernel. */
		if (inlen != 0)
			return EINVAL;
		if (q->mode > 32767)
			return ERANGE;
		if (q->nsems < 0 || (uint32_t)q->nsems >= ns)
			return EINVAL;
		if (!(rep->access & PRIMD_ACC_W))
			return EACCES;
		if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
			return EIDRM;
		return proxied(r, t, i,
			       prim_sem_setval(r->obj[t][i].handle, q->nsems,
					       (int)q->mode));
	}
	if (q->flags != SETALL || inlen != (size_t)ns * sizeof(uint16_t))
		return EINVAL;
	if (!(rep->access & PRIMD_ACC_W))
		return EACCES;
	if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	/* SETALL reads as many values as the handle has semaphores; the
	 * buffer has the registry's. open_handle refuses any other set. */
	if (r->obj[t][i].handle == NULL ||
	    (uint32_t)prim_semset_nsems(r->obj[t][i].handle) != ns) {
		primd__damage(r, t, i, "its geometry is not the registry's");
		return EIDRM;
	}
	if ((vals = malloc(inlen)) == NULL)
		return ENOMEM;
	memcpy(vals, in, inlen);
	rc = proxied(r, t, i, prim_sem_setall(r->obj[t][i].handle, vals));
	free(vals);
	return rc;
}

/* PRIMD_MSGSND: msgsnd for a write-only caller; never waits. */
static int
do_msgsnd(struct primd_reg *r, int t, const struct primd_cred *c,
	  const struct primd_req *q, const unsigned char *in, size_t inlen,
	  struct primd_rep *rep)
{
	int i = primd__lookup_any(r, t, q->id), rc;
	int64_t mtype;

	if (t != T_MSG || inlen < sizeof(mtype) ||
	    inlen - sizeof(mtype) > r->conf.lim.msgmax)
		return EINVAL;
	memcpy(&mtype, in, sizeof(mtype));
	if (mtype < 1 || i < 0)
		return EINVAL;
	reply_obj(r, t, i, c, rep);
	if (!(rep->access & PRIMD_ACC_W))
		return EACCES;
	if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	if (c->pid <= 0)
		return EINVAL;
	rc = proxied(r, t, i,
		     prim_msgq_send_as(r->obj[t][i].handle, (long)mtype,
				       in + sizeof(mtype),
				       inlen - sizeof(mtype), q->flags,
				       c->pid));
	if (rc == EAGAIN && !(q->flags & IPC_NOWAIT))
		rep->flags |= PRIMD_REP_BLOCKED;
	return rc;
}

/*
 * PRIMD_MSGRCV: msgrcv for a caller that may read the queue but maps it
 * read-only; never waits. The message goes to out (after a struct
 * primd_msgrcv_rep), *outlen its length.
 */
static int
do_msgrcv(struct primd_reg *r, int t, const struct primd_cred *c,
	  const struct primd_req *q, const unsigned char *in, size_t inlen,
	  struct primd_rep *rep, unsigned char *out, size_t outcap,
	  size_t *outlen)
{
	struct primd_msgrcv_req mr;
	struct primd_msgrcv_rep mh;
	int i = primd__lookup_any(r, t, q->id), rc;
	uint64_t cap;
	long type = 0;
	ssize_t n;

	if (t != T_MSG || i < 0 || inlen != sizeof(mr) ||
	    (q->flags & PRIM_MSG_COPY) || outcap < sizeof(mh))
		return EINVAL;
	memcpy(&mr, in, sizeof(mr));
	reply_obj(r, t, i, c, rep);
	if (!(rep->access & PRIMD_ACC_R))
		return EACCES;
	if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	if (c->pid <= 0)
		return EINVAL;
	cap = outcap - sizeof(mh);
	if (mr.msgsz < cap)
		cap = mr.msgsz;
	n = prim_msgq_recv_as(r->obj[t][i].handle, out + sizeof(mh),
			      (size_t)cap, (long)mr.msgtyp,
			      q->flags & (PRIM_MSG_NOERROR | PRIM_MSG_EXCEPT),
			      &type, c->pid);
	if (n < 0) {
		rc = proxied(r, t, i, (int)n);
		return rc == ETIMEDOUT ? ENOMSG : rc;
	}
	(void)primd__judge(r, t, i, 0);
	mh.mtype = type;
	mh.len = (uint64_t)n;
	memcpy(out, &mh, sizeof(mh));
	*outlen = sizeof(mh) + (size_t)n;
	return 0;
}

/* PRIMD_REPORT: check the object ourselves before believing anyone. */
static int
do_report(struct primd_reg *r, int t, const struct primd_req *q)
{
	int i = primd__lookup_any(r, t, q->id), rc;
	void *h;

	if (i < 0)
		return EINVAL;
	if (ent(r, t, i)->state == PRIMD_ENT_DAMAGED)
		return EIDRM;
	h = r->obj[t][i].handle;
	rc = t == T_SEM ? prim_semset_check(h) : prim_msgq_check(h);
	rc = primd__judge(r, t, i, rc);
	return ent(r, t, i)->state == PRIMD_ENT_DAMAGED ? EIDRM : 0;
}

/* primctl's listing: no permission check (the registry is readable). */
static int
do_list(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	if (q->id < 0)
		return EINVAL;
	for (int i = q->id; i < r->hi[t]; i++)
		if (ent(r, t, i)->state == PRIMD_ENT_LIVE ||
		    ent(r, t, i)->state == PRIMD_ENT_DAMAGED) {
			reply_obj(r, t, i, c, rep);
			return 0;
		}
	return ENOENT;
}

int (*primd__reaped_fn)(struct primd_reg *r, pid_t pid);

size_t
primd__trailer_max(const struct primd_info *lim)
{
	size_t semop = (size_t)lim->semopm * sizeof(struct primd_sembuf);
	size_t setall = (size_t)lim->semmsl * sizeof(uint16_t);
	size_t msgsnd = sizeof(int64_t) + lim->msgmax;
	size_t m = semop > setall ? semop : setall;

	return m > msgsnd ? m : msgsnd;
}

/* Ops whose requests carry a trailer. */
static int
has_trailer(int op)
{
	return op == PRIMD_SEMOP || op == PRIMD_SEMCTL || op == PRIMD_MSGSND ||
	       op == PRIMD_MSGRCV;
}

size_t
primd__reg_handle(struct primd_reg *r, const struct primd_cred *c,
		  const struct primd_req *q, const void *in, size_t inlen,
		  struct primd_rep *rep, void *out, size_t outcap)
{
	int t = (int)q->type - 1, err;
	size_t outlen = 0;

	memset(rep, 0, sizeof(*rep));
	rep->magic = PRIMD_MAGIC;
	rep->version = PRIMD_VERSION;
	rep->op = q->op;
	rep->seq = q->seq;
	rep->id = -1;
	rep->shmid = -1;
	if (q->magic != PRIMD_MAGIC || q->version != PRIMD_VERSION ||
	    q->op < PRIMD_HELLO || q->op >= PRIMD_OP_MAX ||
	    (inlen != 0 && !has_trailer(q->op))) {
		rep->err = EPROTO;
		return 0;
	}
	if (q->pad != 0 || q->pad2 != 0) {
		rep->err = EINVAL;
		return 0;
	}
	/* A broker that is not root serves only its own uid: its segments
	 * are its own, so another uid's objects would be its to read. */
	if (r->self != 0 && c->uid != r->self) {
		rep->err = EACCES;
		return 0;
	}
	if (q->op == PRIMD_HELLO) {
		primd__reg_info(r, &rep->info);
		rep->shmid = r->shmid;
		rep->seg_size = sizeof(*r->shm);
		rep->err = 0;
		return 0;
	}
	if (q->op == PRIMD_REAPED) { /* any type: it names a process */
		rep->err = q->id <= 0		  ? EINVAL
			   : primd__reaped_fn == NULL ? ESRCH
						  : primd__reaped_fn(r, q->id);
		return 0;
	}
	if (q->type != PRIMD_SEM && q->type != PRIMD_MSG) {
		rep->err = EINVAL;
		return 0;
	}
	switch (q->op) {
	case PRIMD_GET:
		err = do_get(r, t, c, q, rep);
		break;
	case PRIMD_OPEN:
		err = do_open(r, t, c, q, rep);
		break;
	case PRIMD_SET:
		err = do_set(r, t, c, q, rep);
		break;
	case PRIMD_RMID:
		err = do_rmid(r, t, c, q, rep);
		break;
	case PRIMD_INFO:
		err = do_info(r, t, q, rep);
		break;
	case PRIMD_STAT_INDEX:
		err = do_stat_index(r, t, c, q, rep);
		break;
	case PRIMD_SEMOP:
		err = do_semop(r, t, c, q, in, inlen, rep);
		break;
	case PRIMD_SEMCTL:
		err = do_semctl(r, t, c, q, in, inlen, rep);
		break;
	case PRIMD_MSGSND:
		err = do_msgsnd(r, t, c, q, in, inlen, rep);
		break;
	case PRIMD_MSGRCV:
		err = do_msgrcv(r, t, c, q, in, inlen, rep, out, outcap,
				&outlen);
		break;
	case PRIMD_REPORT:
		err = do_report(r, t, q);
		break;
	default:
		err = do_list(r, t, c, q, rep);
		break;
	}
	rep->err = err;
	/* OPEN and STAT_INDEX describe the object with EACCES and EIDRM;
	 * the proxies keep the flags. */
	if (err != 0 && q->op != PRIMD_OPEN && q->op != PRIMD_STAT_INDEX) {
		rep->id = -1;
		rep->shmid = -1;
		rep->seg_size = 0;
		rep->access = 0;
		rep->nsems = 0;
		rep->flags &= PRIMD_REP_BLOCKED;
		memset(&rep->stat, 0, sizeof(rep->stat));
	}
	return err == 0 ? outlen : 0;
}
