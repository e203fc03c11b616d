/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * shmget, shmat, shmdt and shmctl: shared memory stays the kernel's (it
 * must map the pages anyway), so these pass straight to the system calls.
 * They are interposed only so that a program sees one consistent set of
 * SysV functions, and so that libsysv's own attaches (raw system calls,
 * never these) cannot recurse.
 *
 * shmctl(SHM_INFO) leaves the broker's own segments out of its figures,
 * as /proc/sysvipc/shm does (procfs.c).
 *
 * Concurrency: as the system calls; all are async-signal-safe but
 * shmctl(SHM_INFO).
 */
#include <errno.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sysv_int.h"

SYSV_EXPORT int
shmget(key_t key, size_t size, int shmflg)
{
	return (int)syscall(SYS_shmget, key, size, shmflg);
}

SYSV_EXPORT void *
shmat(int shmid, const void *shmaddr, int shmflg)
{
	return (void *)syscall(SYS_shmat, shmid, shmaddr, shmflg);
}

SYSV_EXPORT int
shmdt(const void *shmaddr)
{
	return (int)syscall(SYS_shmdt, shmaddr);
}

SYSV_EXPORT int
shmctl(int shmid, int cmd, struct shmid_ds *buf)
{
	int r = (int)syscall(SYS_shmctl, shmid, cmd & ~SYSV_IPC_64, buf);

	/* Not the broker's segments in the figures (procfs.c). */
	if (r >= 0 && (cmd & ~SYSV_IPC_64) == SHM_INFO)
		sysv__shm_info_hide((struct shm_info *)buf);
	return r;
}
