/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker's registry: which object lives at which index, with which key
 * and which backing segment, and which client processes the broker watches.
 * It lives in a kernel SysV shared memory segment of its own, so a broker
 * that crashes or exits loses nothing: the next one finds the segment's id
 * in "<socket>.state", attaches it and re-adopts every object.
 *
 * Only the broker writes the registry, and the broker is one thread: no
 * field here is accessed concurrently. Clients never map it.
 */
#ifndef PRIMD_REGISTRY_H
#define PRIMD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define PRIMD_REG_MAGIC	  0x47455250u /* "PREG" */
#define PRIMD_REG_VERSION 1

/* One index space per type, as the kernel's IPCMNI. */
#define PRIMD_NIDX	32768
#define PRIMD_SEQ_SHIFT 15
/* Registered client processes the registry remembers. */
#define PRIMD_NPROCS 32768

enum primd_ent_state {
	PRIMD_ENT_FREE = 0,
	PRIMD_ENT_CREATING = 1, /* segment made, object not yet published */
	PRIMD_ENT_LIVE = 2,
	PRIMD_ENT_REMOVING = 3, /* IPC_RMID under way */
};

/* One object slot. The id of its object is seq << 15 | index. */
struct primd_ent_shm {
	uint32_t state; /* enum primd_ent_state */
	uint16_t seq;	/* sequence of the current (or next) object */
	uint16_t pad;
	int32_t key;
	int32_t shmid; /* backing segment */
	uint64_t seg_size;
	uint32_t nsems; /* semaphore sets: nsems */
	int32_t cpid;	/* broker pid that made the segment */
};
_Static_assert(sizeof(struct primd_ent_shm) == 32, "registry entry");

/* One watched client process: pid plus its start time (against reuse). */
struct primd_proc_shm {
	int32_t pid; /* 0: free */
	uint32_t pad;
	uint64_t start; /* /proc/<pid>/stat field 22 */
};
_Static_assert(sizeof(struct primd_proc_shm) == 16, "registry process");

struct primd_reg_shm {
	uint32_t magic;	  /* PRIMD_REG_MAGIC, stored last */
	uint16_t version; /* PRIMD_REG_VERSION */
	uint16_t pad;
	uint64_t size;		  /* bytes of the segment */
	uint64_t generation;	  /* incremented by every broker that adopts */
	struct primd_info limits; /* the limits last in force */
	uint8_t pad2[4096 - 24 - sizeof(struct primd_info)];
	struct primd_ent_shm ent[2][PRIMD_NIDX]; /* [type - 1][index] */
	struct primd_proc_shm proc[PRIMD_NPROCS];
};

/* Broker-private view of one object: its mapping and libprim handle. */
struct primd_obj {
	struct primd_obj_shm *hdr; /* NULL: not attached */
	void *handle; /* struct prim_semset * or struct prim_msgq * */
	int counted;  /* counted in nobj (and nsems) */
};

/* Options that shape the objects the broker creates. */
struct primd_conf {
	struct primd_info lim;
	uint32_t sem_nprocs, sem_nslots;
	uint32_t msg_qbytes_max, msg_nslots;
};

struct primd_reg {
	struct primd_reg_shm *shm;
	int shmid;
	struct primd_conf conf;
	struct primd_obj obj[2][PRIMD_NIDX];
	uint32_t nobj[2]; /* LIVE objects per type */
	int hi[2];	  /* no LIVE index at or above (scan bound) */
	int prochi;	  /* no watched process at or above */
	uint64_t nsems;	  /* semaphores in LIVE sets */
};

/* Caller credentials, from SO_PEERCRED and SO_PEERGROUPS. */
struct primd_cred {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups;
	gid_t *groups;
	uint64_t caps;	/* PRIMD_CAP_* the peer has where the kernel looks */
};

/*
 * The capabilities the kernel's SysV checks use, bit = capability number.
 * CAP_IPC_OWNER and CAP_SYS_ADMIN count in the peer's own user namespace
 * (ns_capable: the namespace owning the IPC namespace); CAP_SYS_RESOURCE
 * only in the initial one (msgctl uses capable()).
 */
#define PRIMD_CAP_IPC_OWNER (1ULL << 15)
#define PRIMD_CAP_SYS_ADMIN (1ULL << 21)
#define PRIMD_CAP_SYS_RESOURCE (1ULL << 24)

/* The capabilities of pid as the kernel's checks see them (0 if gone). */
uint64_t primd__peer_caps(pid_t pid);

/*
 * Attach the registry named in statefile and adopt every object in it, or
 * make a new registry and name it there. Returns 0 or -errno.
 */
int primd__reg_open(struct primd_reg *r, const char *statefile,
		    const struct primd_conf *conf, int *adopted);

/*
 * Handle one request from cred: req, followed in the datagram by inlen
 * bytes at in (its op's trailer, see proto.h). Fills *rep; a reply
 * trailer (PRIMD_MSGRCV) goes to out, of outcap bytes. Returns the
 * trailer's length (0 if none).
 */
size_t primd__reg_handle(struct primd_reg *r, const struct primd_cred *cred,
			 const struct primd_req *req, const void *in,
			 size_t inlen, struct primd_rep *rep, void *out,
			 size_t outcap);

/* Fill the limits and usage of an info reply. */
void primd__reg_info(struct primd_reg *r, struct primd_info *info);

/* Apply the death of pid to every live object (prim_*_reap). */
void primd__reg_reap(struct primd_reg *r, pid_t pid);

/* The watched-process table: find, add, drop by slot. -1 if none. */
/*
 * Call fn(pid) for every pid that owns state in a live object (SEM_UNDO
 * records, calls in progress), whether or not it ever registered.
 */
void primd__reg_owners(struct primd_reg *r, void (*fn)(pid_t));

int primd__proc_find(struct primd_reg *r, pid_t pid);
int primd__proc_add(struct primd_reg *r, pid_t pid, uint64_t start);
void primd__proc_drop(struct primd_reg *r, int slot);

/* Start time of pid from /proc (0 if it cannot be read). */
uint64_t primd__proc_start(pid_t pid);

#endif
