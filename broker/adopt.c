/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The state file and adoption. The registry lives in a kernel SysV shm
 * segment of its own, so a broker that crashes or exits loses nothing: the
 * next one finds the segment's id in "<socket>.state", attaches it and
 * re-adopts every object. Adoption believes only the registry (the
 * broker's own memory) and the kernel (a segment's size and creator pid);
 * an object whose memory libprim refuses is adopted as damaged, listed and
 * removable, never dropped with its segment left behind. Adoption only
 * validates headers: it is bounded whatever the segments hold, so a
 * restarted broker comes up.
 *
 * Concurrency: the broker's one thread, before it serves anyone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "quota.h"
#include "registry.h"

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
	/* Ours: made by our uid, only we may write it, the right size. */
	if (shmctl(shmid, IPC_STAT, &ds) != 0 ||
	    ds.shm_perm.cuid != geteuid() || ds.shm_perm.uid != geteuid() ||
	    (ds.shm_perm.mode & 0022) != 0 ||
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

/* Is shmid still the segment the entry names (same size, same maker)? */
static int
same_segment(const struct primd_ent_shm *e)
{
	struct shmid_ds ds;

	return e->shmid >= 0 && shmctl(e->shmid, IPC_STAT, &ds) == 0 &&
	       ds.shm_segsz == e->seg_size && ds.shm_cpid == e->cpid;
}

/* A CREATING slot: remove its segment if it is really the one we made. */
static void
discard_creating(struct primd_ent_shm *e)
{
	if (same_segment(e))
		(void)shmctl(e->shmid, IPC_RMID, NULL);
	primd__ent_free(e);
}

/* Re-attach one LIVE, DAMAGED or REMOVING slot; 1 if adopted. */
static int
adopt_one(struct primd_reg *r, int t, int i)
{
	struct primd_ent_shm *e = &r->shm->ent[t][i];
	struct primd_obj *o = &r->obj[t][i];
	void *h;
	int rc;

	if (!same_segment(e)) {
		primd__ent_free(e); /* the segment is gone (or is another) */
		return 0;
	}
	/* Charged to its creator, from the registry (quota.c). */
	primd__quota_obj_charge(PRIMD_QUOTA_OBJ(t, i), e->cuid, e->seg_size);
	if (e->state == PRIMD_ENT_REMOVING) {
		/* Half removed by a broker that died: finish it. */
		primd__remove(r, t, i);
		return 0;
	}
	primd__count(r, t, i);
	/* The registry's owner and mode, never the segment's. */
	primd__seg_mirror(e->shmid, e);
	if (e->state == PRIMD_ENT_DAMAGED)
		return 1; /* never touched again */
	h = primd__seg_attach(e->shmid);
	if (h == (void *)-1) {
		fprintf(stderr, "primd: cannot attach segment %d: %s\n",
			e->shmid, strerror(errno));
		primd__damage(r, t, i, "its segment cannot be attached");
		return 1;
	}
	o->hdr = h;
	rc = primd__open_handle(t, o, e->seg_size, e->nsems);
	if (rc != 0) {
		/*
		 * The registry says LIVE. Only the broker removes, and a
		 * removal under a dead broker is REMOVING (finished above):
		 * an object whose own memory says removed was written so by
		 * a writer of it, who may not remove it (and would free its
		 * key for itself). Like any memory the protocol cannot
		 * produce, it is damage, never a removal.
		 */
		primd__damage(r, t, i,
			      rc == -ENOTRECOVERABLE ? "marked damaged in its memory"
			      : rc == -EIDRM	     ? "marked removed in its memory"
					     : "its memory is not a valid object");
		return 1;
	}
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
	r->self = geteuid();
	s = attach_reg(statefile, &shmid);
	if (s != NULL) {
		r->shm = s;
		r->shmid = shmid;
		s->generation++;
		primd__quota_obj_charge(PRIMD_QUOTA_REG, geteuid(), sizeof(*s));
		for (int t = 0; t < 2; t++)
			for (int i = 0; i < primd_reg_ent_hi(s, t); i++) {
				struct primd_ent_shm *e = &s->ent[t][i];

				/* A broker killed mid-write: even the count. */
				if (e->sq.sequence & 1)
					e->sq.sequence++;
				switch (e->state) {
				case PRIMD_ENT_FREE:
					break;
				case PRIMD_ENT_CREATING:
					discard_creating(e);
					break;
				case PRIMD_ENT_LIVE:
				case PRIMD_ENT_DAMAGED:
				case PRIMD_ENT_REMOVING:
					n += adopt_one(r, t, i);
					break;
				default:
					primd__ent_free(e);
					break;
				}
			}
		s->limits = conf->lim;
		for (int i = 0; i < primd_reg_proc_hi(s); i++)
			if (s->proc[i].pid != 0)
				r->prochi = i + 1;
		*adopted = n;
		return 0;
	}
	if ((rc = primd__quota_obj_admit(geteuid(), sizeof(*s))) != 0)
		return rc; /* quota.c: no shm id left for prim */
	/* Only the broker writes it; every client may read it. */
	shmid = shmget(IPC_PRIVATE, sizeof(*s), IPC_CREAT | 0644);
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
	/* The entries stay as the kernel gave them: zeros, free (REG_1). */
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
