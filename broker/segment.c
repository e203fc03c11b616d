/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Backing segments: kernel SysV shared memory the broker makes for each
 * object. The kernel is the one that enforces an object's access classes
 * on its memory (doc/design.md, "Which access class is enforced by whom"),
 * so a segment must look to the kernel exactly as the object looks to
 * SysV: its cuid and cgid the creator's (they grant the owner and group
 * classes and cannot change after shmget), its uid, gid and mode the
 * object's. A root broker therefore makes each segment with its effective
 * uid and gid switched to the creator's for the one shmget call; it
 * attaches everything afterwards through CAP_IPC_OWNER.
 *
 * Concurrency: the broker's one thread (the switch of effective ids is
 * process-wide: never call these from another thread).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "registry.h"

unsigned
primd__seg_mode(unsigned mode)
{
	unsigned m = 0;

	/*
	 * Per class: a writer must map read-write, which the kernel allows
	 * only with r as well, so r stays r, rw stays rw, and a write-only
	 * class gets nothing: the broker does its calls (PRIMD_SEMOP...).
	 */
	for (int s = 0; s <= 6; s += 3) {
		unsigned c = (mode >> s) & 6;

		m |= ((c & 4) ? c : 0) << s;
	}
	return m;
}

int
primd__seg_create(size_t size, uid_t uid, gid_t gid)
{
	int shmid, e, as = geteuid() == 0 && (uid != 0 || gid != 0);

	if (as) {
		/* gid first: setresgid needs the capabilities euid 0 has. */
		if (setresgid((gid_t)-1, gid, (gid_t)-1) != 0) {
			as = 0;
		} else if (setresuid((uid_t)-1, uid, (uid_t)-1) != 0) {
			(void)setresgid((gid_t)-1, 0, (gid_t)-1);
			as = 0;
		}
		if (!as)
			fprintf(stderr,
				"primd: cannot make a segment as uid %u gid "
				"%u (%s): the broker's ids are its cuid/cgid\n",
				(unsigned)uid, (unsigned)gid, strerror(errno));
	}
	/* SHM_NORESERVE: an object's pages are touched only as it is used
	 * (SEM_12), so its size is not charged to the commit limit up front
	 * (vm.overcommit_memory = 2 would refuse sets the machine can hold). */
	shmid = shmget(IPC_PRIVATE, size, IPC_CREAT | SHM_NORESERVE | 0600);
	e = errno;
	if (as) {
		/* Back to euid 0 restores the effective capabilities. */
		if (setresuid((uid_t)-1, 0, (uid_t)-1) != 0 ||
		    setresgid((gid_t)-1, 0, (gid_t)-1) != 0) {
			fprintf(stderr, "primd: cannot become root again: %s\n",
				strerror(errno));
			_exit(1);
		}
	}
	return shmid >= 0 ? shmid : -e;
}

void
primd__seg_mirror(int shmid, const struct primd_ent_shm *e)
{
	struct shmid_ds ds;
	unsigned mode = primd__seg_mode(e->mode);

	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return;
	if (ds.shm_perm.uid == e->uid && ds.shm_perm.gid == e->gid &&
	    (ds.shm_perm.mode & 0777) == mode)
		return;
	ds.shm_perm.uid = e->uid;
	ds.shm_perm.gid = e->gid;
	ds.shm_perm.mode = (unsigned short)mode;
	if (shmctl(shmid, IPC_SET, &ds) != 0)
		fprintf(stderr, "primd: shmctl(%d, IPC_SET): %s\n", shmid,
			strerror(errno));
}

/*
 * A non-root broker is the segment's cuid but may have mirrored a mode
 * that shuts its own class out; it may still change the mode, so it opens
 * the segment for itself for the attach.
 */
void *
primd__seg_attach(int shmid)
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
