/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker's registry and the requests that change it: key lookup and
 * creation (semget/msgget), IPC_SET, IPC_RMID, *_INFO, *_STAT by index and
 * the listing for primctl. Error rules and their order follow the kernel's
 * ipc/util.c, ipc/sem.c and ipc/msg.c (see SEMANTICS.md).
 *
 * Crash safety: every change to the registry is ordered so that a broker
 * killed between any two stores leaves a state the next broker can finish
 * or roll back on adoption: a slot is CREATING from the moment its segment
 * exists until the object is published (adoption removes such segments),
 * and REMOVING from the first step of IPC_RMID (adoption finishes it).
 *
 * Concurrency: only the broker's one thread calls these functions. Clients
 * read the permission fields of an object header concurrently, under its
 * perm_seq seqlock, which this file writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "quota.h"
#include "registry.h"

#define T_SEM 0
#define T_MSG 1

#ifndef SEM_INFO
#define SEM_INFO 19
#endif
#ifndef MSG_INFO
#define MSG_INFO 12
#endif

/*
 * Ids are index + sequence, like the kernel's, with bit 30 always set:
 * from 2^30 up, a range kernel ids reach only after 32768 reuses of one
 * index, so an id handed over from a program that is not preloaded is
 * unlikely to name one of ours (PRELOAD.md, item 5). The sequence wraps
 * every 32768 reuses of an index.
 */
static int
mkid(uint16_t seq, int idx)
{
	return (int)((uint32_t)(seq | 0x8000u) << PRIMD_SEQ_SHIFT |
		     (uint32_t)idx);
}

/* ------------------------------------------------------------------
 * Permissions (ipc/util.c ipcperms, ipcctl_obtain_check)
 */

static int
in_group(const struct primd_cred *c, uint32_t g)
{
	if (c->gid == g)
		return 1;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return 1;
	return 0;
}

static int
is_owner(const struct primd_cred *c, const struct primd_obj_shm *h)
{
	return c->uid == h->cuid || c->uid == h->uid;
}

uint64_t
primd__peer_caps(pid_t pid)
{
	char path[64], line[256], ns[64];
	uint64_t caps = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	fclose(f);
	caps &= PRIMD_CAP_IPC_OWNER | PRIMD_CAP_SYS_ADMIN |
		PRIMD_CAP_SYS_RESOURCE;
	/* Outside the initial user namespace, CAP_SYS_RESOURCE is not. */
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n <= 0 || (ns[n] = '\0', strcmp(ns, "user:[4026531837]") != 0))
		caps &= ~PRIMD_CAP_SYS_RESOURCE;
	return caps;
}

/* The rwx bits (0..7) the caller's class is granted (ipcperms). */
static unsigned
granted(const struct primd_cred *c, const struct primd_obj_shm *h)
{
	unsigned m = h->mode;

	if (c->caps & PRIMD_CAP_IPC_OWNER)
		return 7;
	if (is_owner(c, h))
		m >>= 6;
	else if (in_group(c, h->cgid) || in_group(c, h->gid))
		m >>= 3;
	return m & 7;
}

/* IPC_SET and IPC_RMID (ipcctl_obtain_check): the owner or CAP_SYS_ADMIN. */
static int
may_control(const struct primd_cred *c, const struct primd_obj_shm *h)
{
	return (c->caps & PRIMD_CAP_SYS_ADMIN) || is_owner(c, h);
}

/* ipcperms: 0 or EACCES for the mode bits requested in flg. */
static int
ipcperms(const struct primd_cred *c, const struct primd_obj_shm *h, int flg)
{
	unsigned req =
	    ((unsigned)flg >> 6 | (unsigned)flg >> 3 | (unsigned)flg) & 7;

	return (req & ~granted(c, h) & 7) ? EACCES : 0;
}

static uint32_t
access_of(const struct primd_cred *c, const struct primd_obj_shm *h)
{
	return granted(c, h) & (PRIMD_ACC_R | PRIMD_ACC_W);
}

/* ------------------------------------------------------------------
 * Backing segments
 */

/*
 * Attach a segment the broker made. A non-root broker is the segment's
 * cuid but may have mirrored a mode that shuts itself out; it may still
 * change the mode, so it opens the segment for itself for the attach.
 */
static void *
attach(int shmid)
{
	struct shmid_ds ds;
	unsigned short mode;
	void *p = shmat(shmid, NULL, 0);

	if (p != (void *)-1 || errno != EACCES)
		return p;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return (void *)-1;
	mode = ds.shm_perm.mode;
	ds.shm_perm.mode = (unsigned short)((mode & 0777) | 0600);
	if (shmctl(shmid, IPC_SET, &ds) != 0)
		return (void *)-1;
	p = shmat(shmid, NULL, 0);
	ds.shm_perm.mode = mode & 0777;
	(void)shmctl(shmid, IPC_SET, &ds);
	return p;
}

/*
 * The segment mode for an object mode: per class, r if the object gives r
 * or w, w if it gives w. A writer must map the segment read-write, which
 * the kernel allows only with r as well; a write-only user could therefore
 * read the raw segment, while libsysv still refuses it every read
 * (EACCES), as documented in libsysv(7).
 */
static unsigned
seg_mode(unsigned mode)
{
	unsigned m = 0;

	for (int s = 0; s <= 6; s += 3) {
		unsigned c = (mode >> s) & 6;

		if (c & 2)
			c |= 4;
		m |= c << s;
	}
	return m;
}

/* Make the kernel's view of the segment mirror the object's ipc_perm. */
static void
mirror_perm(int shmid, const struct primd_obj_shm *h)
{
	struct shmid_ds ds;

	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return;
	if (ds.shm_perm.uid == h->uid && ds.shm_perm.gid == h->gid &&
	    (ds.shm_perm.mode & 0777) == seg_mode(h->mode))
		return;
	ds.shm_perm.uid = h->uid;
	ds.shm_perm.gid = h->gid;
	ds.shm_perm.mode = (unsigned short)seg_mode(h->mode);
	if (shmctl(shmid, IPC_SET, &ds) != 0)
		fprintf(stderr, "primd: shmctl(%d, IPC_SET): %s\n", shmid,
			strerror(errno));
}

static void
close_handle(int t, struct primd_obj *o)
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

static void
free_ent(struct primd_ent_shm *e)
{
	e->key = 0;
	e->shmid = -1;
	e->seg_size = 0;
	e->nsems = 0;
	e->cpid = 0;
	/* The next object at this index gets another id. */
	e->seq = (uint16_t)(e->seq + 1);
	e->state = PRIMD_ENT_FREE;
}

/*
 * Remove the object at [t][i]: mark it removed for every mapper, wake
 * its waiters (EIDRM), let the kernel free the segment at its last detach
 * and free the index. Also finishes a removal a dead broker began.
 */
static void
remove_obj(struct primd_reg *r, int t, int i)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];
	struct primd_obj *o = &r->obj[t][i];

	e->state = PRIMD_ENT_REMOVING;
	if (o->hdr != NULL) {
		__atomic_store_n(&o->hdr->state, PRIMD_OBJ_REMOVED,
				 __ATOMIC_RELEASE);
		if (o->handle != NULL) {
			if (t == T_SEM)
				(void)prim_semset_remove(o->handle);
			else
				(void)prim_msgq_remove(o->handle);
		}
	}
	(void)shmctl(e->shmid, IPC_RMID, NULL);
	primd__quota_obj_release(PRIMD_QUOTA_OBJ(t, i)); /* quota.c */
	if (o->counted) {
		r->nobj[t]--;
		if (t == T_SEM)
			r->nsems -= e->nsems;
		o->counted = 0;
	}
	close_handle(t, o);
	free_ent(e);
}

/* ------------------------------------------------------------------
 * Adoption
 */

static int
read_state(const char *statefile)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(statefile, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

static int
write_state(const char *statefile, int shmid)
{
	char tmp[4200];
	int fd, n, r = 0;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", statefile, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%d\n", shmid) < 0 || fsync(fd) != 0)
		r = -errno;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, statefile) != 0)
		r = -errno;
	if (r != 0)
		unlink(tmp);
	return r;
}

/* Attach and validate the registry named by statefile, or return NULL. */
static struct primd_reg_shm *
attach_reg(const char *statefile, int *shmidp)
{
	struct primd_reg_shm *s;
	struct shmid_ds ds;
	int shmid = read_state(statefile);

	if (shmid < 0)
		return NULL;
	if (shmctl(shmid, IPC_STAT, &ds) != 0 ||
	    ds.shm_perm.cuid != geteuid() ||
	    ds.shm_segsz != sizeof(struct primd_reg_shm))
		return NULL;
	s = shmat(shmid, NULL, 0);
	if (s == (void *)-1)
		return NULL;
	if (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != PRIMD_REG_MAGIC ||
	    s->version != PRIMD_REG_VERSION || s->size != sizeof(*s)) {
		fprintf(stderr,
			"primd: %s: registry %d has a foreign header, "
			"not adopted\n",
			statefile, shmid);
		shmdt(s);
		return NULL;
	}
	*shmidp = shmid;
	return s;
}

/* A CREATING slot: remove its segment if it is really the one we made. */
static void
discard_creating(struct primd_ent_shm *e)
{
	struct shmid_ds ds;

	if (e->shmid >= 0 && shmctl(e->shmid, IPC_STAT, &ds) == 0 &&
	    ds.shm_cpid == e->cpid && ds.shm_perm.cuid == geteuid() &&
	    ds.shm_segsz == e->seg_size)
		(void)shmctl(e->shmid, IPC_RMID, NULL);
	free_ent(e);
}

static int
open_handle(int t, struct primd_obj_shm *h, void **handle)
{
	void *mem = (char *)h + h->obj_off;

	if (t == T_SEM)
		return prim_semset_open(mem, h->obj_len,
					(struct prim_semset **)handle);
	return prim_msgq_open(mem, h->obj_len, (struct prim_msgq **)handle);
}

/* Re-attach one LIVE or REMOVING slot; 1 if adopted, 0 if dropped. */
static int
adopt_one(struct primd_reg *r, int t, int i)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];
	struct primd_obj *o = &r->obj[t][i];
	struct primd_obj_shm *h;
	struct shmid_ds ds;
	int rc;

	if (e->shmid < 0 || shmctl(e->shmid, IPC_STAT, &ds) != 0 ||
	    ds.shm_segsz != e->seg_size) {
		free_ent(e); /* the segment is gone (or is another) */
		return 0;
	}
	h = attach(e->shmid);
	if (h == (void *)-1) {
		fprintf(stderr, "primd: cannot attach segment %d: %s\n",
			e->shmid, strerror(errno));
		free_ent(e);
		return 0;
	}
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != PRIMD_OBJ_MAGIC ||
	    h->version != PRIMD_OBJ_VERSION || h->type != t + 1 ||
	    h->id != mkid(e->seq, i) || h->obj_off != PRIMD_OBJ_HDR ||
	    h->obj_len > e->seg_size - PRIMD_OBJ_HDR ||
	    (t == T_SEM && h->nsems != e->nsems)) {
		/* Not ours (the id was reused): leave it alone. */
		shmdt(h);
		free_ent(e);
		return 0;
	}
	o->hdr = h;
	rc = open_handle(t, h, &o->handle);
	if (rc != 0 && rc != -EIDRM) {
		/* A layout this libprim does not know: keep the data. */
		fprintf(stderr,
			"primd: object %d (segment %d): %s, not "
			"adopted\n",
			h->id, e->shmid, strerror(-rc));
		o->handle = NULL;
		o->hdr = NULL;
		shmdt(h);
		free_ent(e);
		return 0;
	}
	if (rc != 0)
		o->handle = NULL;
	if (rc != 0 || e->state != PRIMD_ENT_LIVE ||
	    __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != PRIMD_OBJ_LIVE) {
		/* Removed, or half removed by a broker that died. */
		remove_obj(r, t, i);
		return 0;
	}
	/* A segment mirrored by an older broker: the current rule. */
	mirror_perm(e->shmid, h);
	/*
	 * quota.c: charge the creator. The kernel's cuid is the creator's
	 * when the segment was made under the creator's euid; otherwise the
	 * header is the only record (the registry entry should hold it:
	 * see doc/design.md, "Who writes what").
	 */
	primd__quota_obj_charge(PRIMD_QUOTA_OBJ(t, i),
				ds.shm_perm.cuid != geteuid() ? ds.shm_perm.cuid
							      : h->cuid,
				e->seg_size);
	r->nobj[t]++;
	if (t == T_SEM)
		r->nsems += e->nsems;
	o->counted = 1;
	if (i >= r->hi[t])
		r->hi[t] = i + 1;
	return 1;
}

int
primd__reg_open(struct primd_reg *r, const char *statefile,
		const struct primd_conf *conf, int *adopted)
{
	struct primd_reg_shm *s;
	int shmid = -1, n = 0, rc;

	memset(r, 0, sizeof(*r));
	r->conf = *conf;
	s = attach_reg(statefile, &shmid);
	if (s != NULL) {
		r->shm = s;
		r->shmid = shmid;
		s->generation++;
		primd__quota_obj_charge(PRIMD_QUOTA_REG, geteuid(), sizeof(*s));
		for (int t = 0; t < 2; t++)
			for (int i = 0; i < PRIMD_NIDX; i++) {
				struct primd_ent_shm *e = &s->ent[t][i];

				switch (e->state) {
				case PRIMD_ENT_FREE:
					break;
				case PRIMD_ENT_CREATING:
					discard_creating(e);
					break;
				case PRIMD_ENT_LIVE:
				case PRIMD_ENT_REMOVING:
					n += adopt_one(r, t, i);
					break;
				default:
					free_ent(e);
					break;
				}
			}
		s->limits = conf->lim;
		for (int i = 0; i < PRIMD_NPROCS; i++)
			if (s->proc[i].pid != 0)
				r->prochi = i + 1;
		*adopted = n;
		return 0;
	}
	if ((rc = primd__quota_obj_admit(geteuid(), sizeof(*s))) != 0)
		return rc; /* quota.c: no shm id left for prim */
	shmid = shmget(IPC_PRIVATE, sizeof(*s), IPC_CREAT | 0600);
	if (shmid < 0)
		return -errno;
	primd__quota_obj_charge(PRIMD_QUOTA_REG, geteuid(), sizeof(*s));
	s = shmat(shmid, NULL, 0);
	if (s == (void *)-1) {
		rc = -errno;
		shmctl(shmid, IPC_RMID, NULL);
		primd__quota_obj_release(PRIMD_QUOTA_REG);
		return rc;
	}
	s->version = PRIMD_REG_VERSION;
	s->size = sizeof(*s);
	s->generation = 1;
	s->limits = conf->lim;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < PRIMD_NIDX; i++)
			s->ent[t][i].shmid = -1;
	__atomic_store_n(&s->magic, PRIMD_REG_MAGIC, __ATOMIC_RELEASE);
	if ((rc = write_state(statefile, shmid)) != 0) {
		shmdt(s);
		shmctl(shmid, IPC_RMID, NULL);
		primd__quota_obj_release(PRIMD_QUOTA_REG);
		return rc;
	}
	r->shm = s;
	r->shmid = shmid;
	*adopted = -1;
	return 0;
}

/* ------------------------------------------------------------------
 * Requests
 */

/* The LIVE object with this id and type, or -1. */
static int
lookup(struct primd_reg *r, int t, int32_t id)
{
	int i;
	struct primd_ent_shm *e;

	if (id < 0)
		return -1;
	i = id & (PRIMD_NIDX - 1);
	e = &r->shm->ent[t][i];
	if (e->state != PRIMD_ENT_LIVE || r->obj[t][i].hdr == NULL ||
	    mkid(e->seq, i) != id)
		return -1;
	return i;
}

static int
find_key(struct primd_reg *r, int t, int32_t key)
{
	for (int i = 0; i < r->hi[t]; i++) {
		struct primd_ent_shm *e = &r->shm->ent[t][i];

		if (e->state == PRIMD_ENT_LIVE && e->key == key &&
		    r->obj[t][i].hdr != NULL)
			return i;
	}
	return -1;
}

static void
reply_obj(struct primd_reg *r, int t, int i, const struct primd_cred *c,
	  struct primd_rep *rep)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];

	rep->id = mkid(e->seq, i);
	rep->shmid = e->shmid;
	rep->seg_size = e->seg_size;
	rep->access = access_of(c, r->obj[t][i].hdr);
	rep->nsems = t == T_SEM ? e->nsems : 0;
}

static size_t
page_round(size_t n)
{
	long p = sysconf(_SC_PAGESIZE);
	size_t ps = p > 0 ? (size_t)p : 4096;

	return (n + ps - 1) / ps * ps;
}

static uint32_t
cap_u32(uint64_t v, uint64_t max)
{
	return (uint32_t)(v > max ? max : v);
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
	int i, shmid, rc;
	uint32_t max = t == T_SEM ? lim->semmni : lim->msgmni;

	if (t == T_SEM) {
		if (q->nsems == 0)
			return EINVAL;
		if (r->nsems + (uint64_t)q->nsems > lim->semmns)
			return ENOSPC;
		memset(&sa, 0, sizeof(sa));
		sa.nsems = (uint32_t)q->nsems;
		sa.semopm = lim->semopm;
		sa.nprocs = r->conf.sem_nprocs;
		sa.nslots = r->conf.sem_nslots;
		objlen = prim_semset_size(&sa);
	} else {
		memset(&ma, 0, sizeof(ma));
		ma.msgmax = lim->msgmax;
		ma.qbytes = lim->msgmnb;
		ma.qbytes_max = r->conf.msg_qbytes_max;
		if (ma.qbytes_max < ma.qbytes)
			ma.qbytes_max = ma.qbytes;
		ma.nslots = r->conf.msg_nslots;
		objlen = prim_msgq_size(&ma);
	}
	if (objlen == 0)
		return EINVAL;
	if (r->nobj[t] >= max)
		return ENOSPC;
	for (i = 0; i < PRIMD_NIDX; i++)
		if (r->shm->ent[t][i].state == PRIMD_ENT_FREE)
			break;
	if (i == PRIMD_NIDX)
		return ENOSPC;
	e = &r->shm->ent[t][i];
	o = &r->obj[t][i];
	seg = page_round(PRIMD_OBJ_HDR + objlen);
	/* quota.c: the creator's quotas and prim's share of shm ids. */
	if ((rc = primd__quota_obj_admit(c->uid, seg)) != 0)
		return -rc;
	shmid = shmget(IPC_PRIVATE, seg, IPC_CREAT | 0600);
	if (shmid < 0)
		return errno == ENOSPC ? ENOSPC : ENOMEM;
	primd__quota_obj_charge(PRIMD_QUOTA_OBJ(t, i), c->uid, seg);
	/* From here a crash leaves a CREATING slot that adoption removes. */
	e->shmid = shmid;
	e->seg_size = seg;
	e->key = q->key;
	e->nsems = t == T_SEM ? (uint32_t)q->nsems : 0;
	e->cpid = (int32_t)getpid();
	e->state = PRIMD_ENT_CREATING;
	h = shmat(shmid, NULL, 0);
	if (h == (void *)-1) {
		rc = ENOMEM;
		goto fail;
	}
	h->version = PRIMD_OBJ_VERSION;
	h->type = (uint16_t)(t + 1);
	h->id = mkid(e->seq, i);
	h->key = q->key;
	h->state = PRIMD_OBJ_LIVE;
	h->perm_seq = 0;
	h->uid = h->cuid = c->uid;
	h->gid = h->cgid = c->gid;
	h->mode = (uint32_t)q->flags & 0777;
	h->nsems = e->nsems;
	h->obj_off = PRIMD_OBJ_HDR;
	h->obj_len = objlen;
	rc = t == T_SEM
		 ? prim_semset_init((char *)h + PRIMD_OBJ_HDR, objlen, &sa)
		 : prim_msgq_init((char *)h + PRIMD_OBJ_HDR, objlen, &ma);
	if (rc == 0)
		rc = open_handle(t, h, &o->handle);
	if (rc != 0) {
		rc = rc == -ENOMEM ? ENOMEM : EINVAL;
		shmdt(h);
		o->handle = NULL;
		goto fail;
	}
	o->hdr = h;
	mirror_perm(shmid, h);
	/* OBJ_1: the header is complete before its magic says so; pairs
	 * with the acquire load of magic in adopt_one and in libsysv. */
	__atomic_store_n(&h->magic, PRIMD_OBJ_MAGIC, __ATOMIC_RELEASE);
	e->state = PRIMD_ENT_LIVE;
	r->nobj[t]++;
	if (t == T_SEM)
		r->nsems += e->nsems;
	o->counted = 1;
	if (i >= r->hi[t])
		r->hi[t] = i + 1;
	reply_obj(r, t, i, c, rep);
	return 0;
fail:
	(void)shmctl(shmid, IPC_RMID, NULL);
	primd__quota_obj_release(PRIMD_QUOTA_OBJ(t, i)); /* quota.c */
	free_ent(e);
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
	i = find_key(r, t, q->key);
	if (i < 0)
		return (q->flags & IPC_CREAT) ? create(r, t, c, q, rep)
					      : ENOENT;
	if ((q->flags & IPC_CREAT) && (q->flags & IPC_EXCL))
		return EEXIST;
	if (t == T_SEM && (uint32_t)q->nsems > r->shm->ent[t][i].nsems)
		return EINVAL;
	if ((rc = ipcperms(c, r->obj[t][i].hdr, q->flags)) != 0)
		return rc;
	reply_obj(r, t, i, c, rep);
	return 0;
}

static int
do_open(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	int i = lookup(r, t, q->id);

	if (i < 0)
		return EINVAL;
	/* No access: EACCES, the reply still describing the object (id,
	 * nsems), so the caller can check what the kernel checks first. */
	reply_obj(r, t, i, c, rep);
	return rep->access == 0 ? EACCES : 0;
}

/* IPC_SET (ipc/util.c ipcctl_obtain_check, ipc_update_perm). */
static int
do_set(struct primd_reg *r, int t, const struct primd_cred *c,
       const struct primd_req *q, struct primd_rep *rep)
{
	int i = lookup(r, t, q->id), rc;
	struct primd_obj *o;
	struct primd_obj_shm *h;
	uint32_t s;

	if (i < 0)
		return EINVAL;
	o = &r->obj[t][i];
	h = o->hdr;
	if (!may_control(c, h))
		return EPERM;
	if (t == T_MSG && q->qbytes > r->conf.lim.msgmnb &&
	    !(c->caps & PRIMD_CAP_SYS_RESOURCE))
		return EPERM;
	if (q->uid == (uint32_t)-1 || q->gid == (uint32_t)-1)
		return EINVAL;
	if (t == T_MSG) {
		if (o->handle == NULL)
			return EIDRM;
		/* Above what the pool was sized for: EINVAL (documented). */
		rc = prim_msgq_set_qbytes(o->handle, q->qbytes);
		if (rc != 0)
			return -rc;
	}
	/* PERM_1: perm_seq odd before the fields change, even after;
	 * pairs with the seqlock readers in libsysv and primctl. */
	s = h->perm_seq;
	__atomic_store_n(&h->perm_seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&h->uid, q->uid, __ATOMIC_RELAXED);
	__atomic_store_n(&h->gid, q->gid, __ATOMIC_RELAXED);
	__atomic_store_n(&h->mode, q->mode & 0777, __ATOMIC_RELAXED);
	__atomic_store_n(&h->perm_seq, s + 2, __ATOMIC_RELEASE);
	mirror_perm(r->shm->ent[t][i].shmid, h);
	/* prim_msgq_set_qbytes above already set the queue's ctime. */
	if (t == T_SEM && o->handle != NULL)
		prim_semset_touch(o->handle);
	reply_obj(r, t, i, c, rep);
	return 0;
}

static int
do_rmid(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	int i = lookup(r, t, q->id);

	if (i < 0)
		return EINVAL;
	if (!may_control(c, r->obj[t][i].hdr))
		return EPERM;
	rep->id = q->id;
	remove_obj(r, t, i);
	return 0;
}

static int
max_index(struct primd_reg *r, int t)
{
	for (int i = r->hi[t] - 1; i >= 0; i--)
		if (r->shm->ent[t][i].state == PRIMD_ENT_LIVE &&
		    r->obj[t][i].hdr != NULL)
			return i;
	return -1;
}

void
primd__reg_info(struct primd_reg *r, struct primd_info *info)
{
	struct prim_msgq_stat st;

	*info = r->conf.lim;
	info->sem_sets = r->nobj[T_SEM];
	info->sem_sems = cap_u32(r->nsems, UINT32_MAX);
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

/* The *_STAT fields of object [t][i], from the broker's own mapping. */
static int
fill_stat(struct primd_reg *r, int t, int i, struct primd_stat *st)
{
	const struct primd_obj_shm *h = r->obj[t][i].hdr;
	void *handle = r->obj[t][i].handle;
	struct prim_msgq_stat ms;
	int rc;

	memset(st, 0, sizeof(*st));
	st->uid = h->uid;
	st->gid = h->gid;
	st->cuid = h->cuid;
	st->cgid = h->cgid;
	st->mode = h->mode & 0777;
	st->key = h->key;
	if (handle == NULL)
		return EIDRM;
	if (t == T_SEM) {
		st->nsems = r->shm->ent[t][i].nsems;
		rc = prim_semset_times(handle, &st->otime, &st->ctime);
		return rc < 0 ? -rc : 0;
	}
	if ((rc = prim_msgq_stat(handle, &ms)) != 0)
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
	int i = q->id;

	if (q->flags != 0 && q->flags != 1)
		return EINVAL;
	if (i < 0 || i >= PRIMD_NIDX ||
	    r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
	    r->obj[t][i].hdr == NULL)
		return EINVAL;
	reply_obj(r, t, i, c, rep);
	if (q->flags == 0 && !(rep->access & PRIMD_ACC_R))
		return EACCES;
	return fill_stat(r, t, i, &rep->stat) == 0 ? 0 : EINVAL;
}

/*
 * PRIMD_SEMOP_ZERO: the wait-for-zero operations of a caller that may
 * read the set but maps it read-only; never waits (proto.h).
 */
static int
do_semop_zero(struct primd_reg *r, int t, const struct primd_cred *c,
	      const struct primd_req *q, const unsigned char *in,
	      size_t inlen, struct primd_rep *rep)
{
	struct prim_sembuf *sops;
	struct primd_obj *o;
	int i = lookup(r, t, q->id), rc;
	uint32_t nbits = (uint32_t)q->nsems, n = 0, max = 0;

	if (t != T_SEM || i < 0 || q->nsems < 1 ||
	    nbits > PRIMD_SEMBITS_MAX || inlen != (nbits + 7) / 8)
		return EINVAL;
	for (uint32_t k = 0; k < nbits; k++)
		if (in[k / 8] & (1u << (k % 8))) {
			n++;
			max = k;
		}
	if (n == 0)
		return EINVAL;
	o = &r->obj[t][i];
	reply_obj(r, t, i, c, rep);
	if (max >= r->shm->ent[t][i].nsems)
		return EFBIG;
	if (!(rep->access & PRIMD_ACC_R))
		return EACCES;
	if (n > r->conf.lim.semopm)
		return E2BIG;
	if (o->handle == NULL)
		return EIDRM;
	if ((sops = calloc(n, sizeof(*sops))) == NULL)
		return ENOMEM;
	n = 0;
	for (uint32_t k = 0; k <= max; k++)
		if (in[k / 8] & (1u << (k % 8))) {
			sops[n].sem_num = (unsigned short)k;
			sops[n].sem_op = 0;
			sops[n].sem_flg = PRIM_IPC_NOWAIT;
			n++;
		}
	rc = prim_sem_op(o->handle, sops, n);
	free(sops);
	if (rc == -ETIMEDOUT)
		rc = -EAGAIN;
	return rc < 0 ? -rc : 0;
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
	struct primd_obj *o;
	int i = lookup(r, t, q->id);
	uint64_t cap;
	long type = 0;
	ssize_t n;

	if (t != T_MSG || i < 0 || inlen != sizeof(mr) ||
	    (q->flags & PRIM_MSG_COPY) || outcap < sizeof(mh))
		return EINVAL;
	memcpy(&mr, in, sizeof(mr));
	o = &r->obj[t][i];
	reply_obj(r, t, i, c, rep);
	if (!(rep->access & PRIMD_ACC_R))
		return EACCES;
	if (o->handle == NULL)
		return EIDRM;
	cap = outcap - sizeof(mh);
	if (mr.msgsz < cap)
		cap = mr.msgsz;
	n = prim_msgq_recv(o->handle, out + sizeof(mh), (size_t)cap,
			   (long)mr.msgtyp,
			   (q->flags & (PRIM_MSG_NOERROR | PRIM_MSG_EXCEPT)) |
			       PRIM_IPC_NOWAIT,
			   &type);
	if (n < 0)
		return n == -ETIMEDOUT ? ENOMSG : (int)-n;
	mh.mtype = type;
	mh.len = (uint64_t)n;
	memcpy(out, &mh, sizeof(mh));
	*outlen = sizeof(mh) + (size_t)n;
	return 0;
}

/* primctl's listing: no permission check (it reads what it may attach). */
static int
do_list(struct primd_reg *r, int t, const struct primd_cred *c,
	const struct primd_req *q, struct primd_rep *rep)
{
	if (q->id < 0)
		return EINVAL;
	for (int i = q->id; i < r->hi[t]; i++)
		if (r->shm->ent[t][i].state == PRIMD_ENT_LIVE &&
		    r->obj[t][i].hdr != NULL) {
			reply_obj(r, t, i, c, rep);
			return 0;
		}
	return ENOENT;
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
	    (inlen != 0 && q->op != PRIMD_SEMOP_ZERO &&
	     q->op != PRIMD_MSGRCV)) {
		rep->err = EPROTO;
		return 0;
	}
	if (q->pad != 0 || q->pad2 != 0) {
		rep->err = EINVAL;
		return 0;
	}
	if (q->op == PRIMD_HELLO) {
		primd__reg_info(r, &rep->info);
		rep->err = 0;
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
	case PRIMD_SEMOP_ZERO:
		err = do_semop_zero(r, t, c, q, in, inlen, rep);
		break;
	case PRIMD_MSGRCV:
		err = do_msgrcv(r, t, c, q, in, inlen, rep, out, outcap,
				&outlen);
		break;
	default:
		err = do_list(r, t, c, q, rep);
		break;
	}
	rep->err = err;
	if (err != 0 && q->op != PRIMD_OPEN && q->op != PRIMD_STAT_INDEX) {
		rep->id = -1;
		rep->shmid = -1;
		rep->seg_size = 0;
		rep->access = 0;
		rep->nsems = 0;
		memset(&rep->stat, 0, sizeof(rep->stat));
	}
	return err == 0 ? outlen : 0;
}

/* ------------------------------------------------------------------
 * Process deaths
 */

void
primd__reg_reap(struct primd_reg *r, pid_t pid)
{
	for (int t = 0; t < 2; t++) {
		for (int i = 0; i < r->hi[t]; i++) {
			struct primd_obj *o = &r->obj[t][i];
			int rc;

			if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
			    o->handle == NULL)
				continue;
			rc = t == T_SEM ? prim_semset_reap(o->handle, pid)
					: prim_msgq_reap(o->handle, pid);
			if (rc < 0 && rc != -EIDRM)
				fprintf(stderr,
					"primd: reap of pid %d on id "
					"%d: %s\n",
					(int)pid, o->hdr->id, strerror(-rc));
		}
	}
}

void
primd__reg_owners(struct primd_reg *r, void (*fn)(pid_t))
{
	pid_t pids[512];

	for (int t = 0; t < 2; t++) {
		for (int i = 0; i < r->hi[t]; i++) {
			struct primd_obj *o = &r->obj[t][i];
			int n;

			if (r->shm->ent[t][i].state != PRIMD_ENT_LIVE ||
			    o->handle == NULL)
				continue;
			n = t == T_SEM ? prim_semset_pids(o->handle, pids, 512)
				       : prim_msgq_pids(o->handle, pids, 512);
			for (int k = 0; k < n && k < 512; k++)
				fn(pids[k]);
		}
	}
}

int
primd__proc_find(struct primd_reg *r, pid_t pid)
{
	for (int i = 0; i < r->prochi; i++)
		if (r->shm->proc[i].pid == pid)
			return i;
	return -1;
}

int
primd__proc_add(struct primd_reg *r, pid_t pid, uint64_t start)
{
	for (int i = 0; i < PRIMD_NPROCS; i++)
		if (r->shm->proc[i].pid == 0) {
			r->shm->proc[i].start = start;
			r->shm->proc[i].pid = pid;
			if (i >= r->prochi)
				r->prochi = i + 1;
			return i;
		}
	return -1;
}

void
primd__proc_drop(struct primd_reg *r, int slot)
{
	if (slot >= 0 && slot < PRIMD_NPROCS) {
		r->shm->proc[slot].pid = 0;
		r->shm->proc[slot].start = 0;
	}
}

uint64_t
primd__proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	/* Field 22 (starttime) is the 20th after the ")" of field 2. */
	for (int f = 0; f < 20 && p != NULL; f++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
		return 0;
	return v;
}
