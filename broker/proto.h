/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The wire protocol between libsysv (sysv/), primctl (cli/) and the broker
 * (broker/), and the two kinds of shared memory they agree on: the
 * registry the broker publishes (read-only for everyone else) and the
 * header page of every backing segment. Everything here crosses a process
 * boundary: fixed-width types only, and every field is validated by
 * whoever receives it.
 *
 * Transport: a Unix SOCK_SEQPACKET socket; one request datagram, one reply
 * datagram, in order. A datagram is the fixed struct (primd_req or
 * primd_rep), followed by an op-specific trailer only where the op says so
 * (PRIMD_SEMOP, PRIMD_SEMCTL, PRIMD_MSGSND and PRIMD_MSGRCV requests, a
 * PRIMD_MSGRCV reply); every other datagram is exactly the fixed struct.
 * The broker learns who asks from SO_PEERCRED and SO_PEERGROUPS only;
 * nothing a client writes about itself is trusted. A client reconnects
 * after fork (in the child) and whenever its credentials changed since it
 * connected.
 *
 * Socket path (primd__sock_path in broker/sockpath.c, used by all three;
 * a socket is used only under the rules of sockpath.h: a directory of
 * root's or the user's that no one else may write, a broker whose peer
 * uid is 0 or the user's):
 *   $PRIM_BROKER_SOCK if set; else the system socket
 *   /run/prim/primd-ipc-<ns>.sock if it exists; else the user's own,
 *   $XDG_RUNTIME_DIR/prim/primd-ipc-<ns>.sock, or
 *   /tmp/prim-<uid>/primd-ipc-<ns>.sock without XDG_RUNTIME_DIR,
 * where <ns> is the inode of /proc/self/ns/ipc: one broker per IPC
 * namespace, as kernel SysV objects are scoped.
 *
 * Authority (doc/design.md, "Trust and containment"): who owns an object,
 * its mode and its state live in the registry, which only the broker
 * writes. Object segments are written by every process that may write
 * the object, so nothing in them decides anything.
 */
#ifndef PRIMD_PROTO_H
#define PRIMD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <ck_pr.h>
#include <ck_sequence.h>

#define PRIMD_MAGIC 0x444d5250u	/* "PRMD" little-endian */
#define PRIMD_VERSION 2

enum primd_op {
	PRIMD_HELLO = 1,	/* register this process; reply: limits and
				   the registry (shmid, seg_size) */
	PRIMD_GET,		/* semget/msgget: key, flags, nsems */
	PRIMD_OPEN,		/* id -> backing segment and access; a
				   caller with no access at all gets EACCES
				   with id, access 0 and nsems still set (so
				   it can order EFBIG/EINVAL before EACCES
				   as the kernel) */
	PRIMD_SET,		/* IPC_SET: uid, gid, mode, qbytes */
	PRIMD_RMID,		/* IPC_RMID */
	PRIMD_INFO,		/* IPC_INFO, SEM_INFO, MSG_INFO (cmd in flags) */
	PRIMD_STAT_INDEX,	/* SEM_STAT(_ANY), MSG_STAT(_ANY): index -> id
				   and stat; flags: 1 = _ANY (no read check) */
	PRIMD_LIST,		/* next object with index >= id (primctl),
				   live or damaged */
	PRIMD_SEMOP,		/* semop for a caller that may not map the set
				   read-write (R only, or W only) */
	PRIMD_SEMCTL,		/* SETVAL, SETALL for a W-only caller */
	PRIMD_MSGSND,		/* msgsnd for a W-only caller */
	PRIMD_MSGRCV,		/* msgrcv for a caller with a read-only map */
	PRIMD_REPORT,		/* "this object looks damaged": the broker
				   checks it itself */
	PRIMD_REAPED,		/* "wait() said process id is dead": reap
				   it now (see below) */
	PRIMD_OP_MAX
};

enum primd_type {
	PRIMD_SEM = 1,
	PRIMD_MSG = 2,
};

/*
 * Operations done by the broker for a caller that may not map the object
 * read-write (the kernel allows them by the object's mode, but libprim
 * writes the object to do them; a write-only class cannot map it at all).
 * The broker does them on its own mapping, never waiting; for a caller
 * that would wait, the reply says so (PRIMD_REP_BLOCKED) and the caller
 * asks again after a sleep (libsysv(7)). The broker checks the access the
 * kernel would (EACCES); sempid, msg_lspid and msg_lrpid become the
 * caller's pid, and SEM_UNDO adjustments are the caller's (applied when it
 * dies).
 *
 * PRIMD_SEMOP request: id; nsems = nsops (1 .. semopm); trailer: nsops
 * struct primd_sembuf. Errors as semop's: EINVAL, E2BIG, EFBIG, EACCES,
 * ERANGE, EAGAIN (with PRIMD_REP_BLOCKED when the operation that decided
 * lacks IPC_NOWAIT), EIDRM, ENOMEM. No reply trailer.
 *
 * PRIMD_SEMCTL request: id; flags = SETVAL or SETALL; SETVAL: nsems =
 * semnum, mode = value, no trailer; SETALL: trailer of nsems uint16_t
 * values (nsems of the set). Errors as semctl's.
 *
 * PRIMD_MSGSND request: id; flags = msgflg; trailer: int64_t mtype, then
 * the text (at most the broker's msgmax). Errors as msgsnd's (EAGAIN with
 * PRIMD_REP_BLOCKED when the caller did not ask IPC_NOWAIT).
 *
 * PRIMD_MSGRCV request: id; flags = msgflg (MSG_NOERROR, MSG_EXCEPT;
 * IPC_NOWAIT is implied; MSG_COPY gives EINVAL); trailer struct
 * primd_msgrcv_req. Errors: EINVAL, EACCES, ENOMSG, E2BIG, EIDRM. On
 * success the reply is followed by struct primd_msgrcv_rep and its len
 * bytes of text (len <= msgsz and <= the broker's msgmax).
 *
 * PRIMD_REAPED request: id = a pid (in the broker's pid namespace, as
 * every pid prim records), type 0 or any; sent by libsysv when wait(),
 * waitpid(), wait3(), wait4() or waitid() reported that child dead, so
 * that its SEM_UNDO adjustments are applied before the call returns, as
 * the kernel applies them at exit (doc/design.md, "Undo by the time wait
 * returns"). The broker reaps pid now, once, if it is really dead: a
 * watched pid whose pidfd says it exited, or an unwatched one that /proc
 * shows gone or a zombie (a few per second). Anyone may ask: reaping a
 * dead process is what the broker does anyway. Reply err: 0 (reaped),
 * ESRCH (alive, unknown, or over the budget: nothing done), EINVAL
 * (pid <= 0). An older broker answers EPROTO; libsysv ignores the answer
 * either way. No trailer.
 *
 * PRIMD_REPORT request: id (any type). The broker checks the object on
 * its own mapping (bounded); reply err: 0 if it found it sound, EIDRM if
 * it is damaged (now marked so), EINVAL for an unknown id.
 */
struct primd_sembuf {
	uint16_t sem_num;
	int16_t sem_op;
	int16_t sem_flg;
};
_Static_assert(sizeof(struct primd_sembuf) == 6, "sembuf on the wire");

struct primd_msgrcv_req {
	int64_t msgtyp;
	uint64_t msgsz;		/* the caller's buffer */
};

struct primd_msgrcv_rep {
	int64_t mtype;
	uint64_t len;		/* bytes of text that follow */
};

/* Access the caller has to an object (reply field `access`). */
#define PRIMD_ACC_R 4
#define PRIMD_ACC_W 2

/* Reply flags. */
#define PRIMD_REP_BLOCKED 1	/* EAGAIN: it would wait (no IPC_NOWAIT) */
#define PRIMD_REP_DAMAGED 2	/* LIST, STAT_INDEX: the object is damaged */

struct primd_req {
	uint32_t magic;		/* PRIMD_MAGIC */
	uint16_t version;	/* PRIMD_VERSION */
	uint16_t op;		/* enum primd_op */
	uint32_t seq;		/* echoed in the reply */
	uint16_t type;		/* enum primd_type */
	uint16_t pad;		/* 0 */
	int32_t key;		/* GET */
	int32_t id;		/* OPEN, SET, RMID...; index for STAT_INDEX,
				   LIST */
	int32_t flags;		/* GET: semflg/msgflg; INFO: cmd; ... */
	int32_t nsems;		/* GET of a semaphore set; SEMOP: nsops */
	uint32_t uid, gid, mode;	/* SET; SEMCTL SETVAL: mode = value */
	uint32_t pad2;		/* 0 */
	uint64_t qbytes;	/* SET of a message queue */
};

/* Limits given on the command line: the sysctl no longer counts
 * (struct primd_info's pinned). */
#define PRIMD_PIN_SEMMSL 0x01u
#define PRIMD_PIN_SEMMNS 0x02u
#define PRIMD_PIN_SEMOPM 0x04u
#define PRIMD_PIN_SEMMNI 0x08u
#define PRIMD_PIN_MSGMAX 0x10u
#define PRIMD_PIN_MSGMNB 0x20u
#define PRIMD_PIN_MSGMNI 0x40u
#define PRIMD_PIN_QBMAX	 0x80u
/* Limits and usage: what IPC_INFO, SEM_INFO and MSG_INFO report. */
struct primd_info {
	/* limits */
	uint32_t semmsl, semmns, semopm, semmni;
	uint32_t msgmax, msgmnb, msgmni;
	/* PRIMD_PIN_*: limits given on the broker's command
	 * line, which win over the sysctls; libsysv follows the sysctls
	 * (/proc/sys/kernel) for the others, as the broker does. */
	uint32_t pinned;
	/* usage (SEM_INFO, MSG_INFO) */
	uint32_t sem_sets;	/* sets in use */
	uint32_t sem_sems;	/* semaphores in those sets */
	uint32_t msg_queues;	/* queues in use */
	uint32_t pad2;
	uint64_t msg_msgs;	/* messages queued, all queues */
	uint64_t msg_bytes;	/* bytes queued, all queues */
	int32_t max_index;	/* highest index in use, -1 if none */
	int32_t pad3;
};

/*
 * An object's *_STAT fields, read by the broker from its own mapping, for
 * a caller that may have no mapping (SEM_STAT_ANY, MSG_STAT_ANY without
 * R). Times in seconds. Semaphore sets: otime, ctime, nsems; queues:
 * ctime, qnum .. rtime (stime/rtime = msg_stime/msg_rtime).
 */
struct primd_stat {
	uint32_t uid, gid, cuid, cgid, mode;
	int32_t key;
	int64_t otime, ctime;
	uint32_t nsems;
	uint32_t pad;
	uint64_t qnum, cbytes, qbytes;
	int32_t lspid, lrpid;
	int64_t stime, rtime;
};

struct primd_rep {
	uint32_t magic;		/* PRIMD_MAGIC */
	uint16_t version;	/* PRIMD_VERSION */
	uint16_t op;		/* the request's op */
	uint32_t seq;		/* the request's seq */
	int32_t err;		/* 0, or a positive errno to report */
	int32_t id;		/* GET, STAT_INDEX, LIST: the object's id */
	int32_t shmid;		/* GET, OPEN, STAT_INDEX, LIST: the segment;
				   HELLO: the registry's */
	uint32_t access;	/* PRIMD_ACC_* the caller has */
	uint32_t nsems;		/* GET, OPEN, STAT_INDEX of a set: its
				   nsems (0 for queues) */
	uint64_t seg_size;	/* bytes of the backing segment (HELLO: of
				   the registry) */
	uint32_t flags;		/* PRIMD_REP_* */
	uint32_t pad;
	struct primd_info info;	/* HELLO, INFO */
	struct primd_stat stat;	/* STAT_INDEX: what *_STAT reports */
};

_Static_assert(sizeof(struct primd_req) == 56, "request layout");
_Static_assert(sizeof(struct primd_rep) == 120 + sizeof(struct primd_stat),
	       "reply layout");

/* ------------------------------------------------------------------
 * The registry: a kernel SysV shm segment the broker makes (mode 0644:
 * only the broker writes it, anyone may attach it read-only) and names in
 * the HELLO reply. It outlives the broker; the next one adopts it.
 */
#define PRIMD_REG_MAGIC	  0x47455250u /* "PREG" */
#define PRIMD_REG_VERSION 3

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
	PRIMD_ENT_DAMAGED = 4,	/* memory inconsistent: users get EIDRM,
				   IPC_RMID removes it, key still held */
};

/*
 * One object slot. The id of its object is (seq | 0x8000) << 15 | index.
 * Written by the broker under sq (odd while it writes, ck_sequence);
 * readers copy it with primd_ent_read. A change of uid, gid or mode bumps
 * perm_gen, so that a client knows to ask for its access again.
 */
struct primd_ent_shm {
	struct ck_sequence sq;
	uint32_t state;		/* enum primd_ent_state */
	int32_t id;		/* the current object's id (-1 when free) */
	int32_t key;
	int32_t shmid;		/* backing segment */
	uint32_t nsems;		/* semaphore sets: nsems */
	uint64_t seg_size;
	uint32_t uid, gid, cuid, cgid, mode; /* ipc_perm; mode & 0777 */
	uint32_t perm_gen;
	int32_t cpid;		/* broker pid that made the segment */
	uint16_t seq;		/* sequence of the current (or next) object */
	uint16_t pad;
};
_Static_assert(sizeof(struct ck_sequence) == 4, "ck_sequence is a word");
_Static_assert(sizeof(struct primd_ent_shm) == 64, "registry entry");

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
	/*
	 * REG_1: bounds for scans. No entry of type t at or above ent_hi[t],
	 * no process at or above proc_hi, was ever written: the broker
	 * raises them (release) before it first writes there, and never
	 * lowers them. Whoever scans the whole table (the broker adopting,
	 * /proc/sysvipc under libsysv) stops there (acquire), so the pages
	 * beyond stay untouched: a free entry is all zeros (its id 0 is no
	 * object's), which is what a page the kernel hands out holds.
	 */
	uint32_t ent_hi[2];
	uint32_t proc_hi;
	uint8_t pad2[4096 - 36 - sizeof(struct primd_info)];
	struct primd_ent_shm ent[2][PRIMD_NIDX]; /* [type - 1][index] */
	struct primd_proc_shm proc[PRIMD_NPROCS];
};
_Static_assert(offsetof(struct primd_reg_shm, ent) == 4096,
	       "registry header is one page");

/* REG_1: how far a scan of type t's entries (0 sem, 1 msg) must go. */
static inline int
primd_reg_ent_hi(const struct primd_reg_shm *r, int t)
{
	uint32_t hi = ck_pr_load_32(&r->ent_hi[t]);

	ck_pr_fence_load(); /* REG_1: pairs with primd__reg_raise's */
	return hi < PRIMD_NIDX ? (int)hi : PRIMD_NIDX;
}

/* REG_1: how far a scan of the watched processes must go. */
static inline int
primd_reg_proc_hi(const struct primd_reg_shm *r)
{
	uint32_t hi = ck_pr_load_32(&r->proc_hi);

	ck_pr_fence_load(); /* REG_1: pairs with primd__reg_raise's */
	return hi < PRIMD_NPROCS ? (int)hi : PRIMD_NPROCS;
}

/*
 * Copy entry e of a registry mapped read-only into *out, consistently.
 * Bounded: a broker killed in the middle of a write leaves the count odd
 * until the next broker adopts the registry; after PRIMD_ENT_TRIES the
 * reader gives up (-1) and asks the broker instead. Returns 0 or -1.
 */
#define PRIMD_ENT_TRIES 1000

static inline int
primd_ent_read(const struct primd_ent_shm *e, struct primd_ent_shm *out)
{
	struct ck_sequence *sq = (struct ck_sequence *)(uintptr_t)&e->sq;

	for (int tries = 0; tries < PRIMD_ENT_TRIES; tries++) {
		unsigned int v = ck_pr_load_uint(&sq->sequence);

		if (v & 1) {
			ck_pr_stall();
			continue;
		}
		/* After the even count: the fields; then the count again. */
		ck_pr_fence_load();
		out->state = ck_pr_load_32(&e->state);
		out->id = (int32_t)ck_pr_load_32((const uint32_t *)&e->id);
		out->key = (int32_t)ck_pr_load_32((const uint32_t *)&e->key);
		out->shmid = (int32_t)ck_pr_load_32((const uint32_t *)&e->shmid);
		out->nsems = ck_pr_load_32(&e->nsems);
		out->seg_size = ck_pr_load_64(&e->seg_size);
		out->uid = ck_pr_load_32(&e->uid);
		out->gid = ck_pr_load_32(&e->gid);
		out->cuid = ck_pr_load_32(&e->cuid);
		out->cgid = ck_pr_load_32(&e->cgid);
		out->mode = ck_pr_load_32(&e->mode);
		out->perm_gen = ck_pr_load_32(&e->perm_gen);
		if (!ck_sequence_read_retry(sq, v))
			return 0;
	}
	return -1;
}

/* ------------------------------------------------------------------
 * A backing segment: kernel SysV shared memory made by the broker
 * (IPC_PRIVATE), created with the creator's uid and gid as its cuid and
 * cgid and with its uid, gid and mode mirroring the object's (the mode per
 * class: rw where the object gives rw, r where it gives r, nothing
 * otherwise), so that the kernel refuses an attach the object's
 * permissions refuse. It starts with this header, one cache line (not a
 * page: a set's first page holds this, its header, its semaphores and its
 * first slots, issue 9); the libprim object follows at PRIMD_OBJ_HDR,
 * 64-byte aligned as libprim requires, and runs to the end of the segment. Every
 * writer of the object may rewrite this page: its fields are a hint for
 * tools and are checked against the registry, never believed.
 */
#define PRIMD_OBJ_MAGIC 0x4f4d5250u	/* "PRMO" */
#define PRIMD_OBJ_VERSION 3
#define PRIMD_OBJ_HDR 64

struct primd_obj_shm {
	uint32_t magic;		/* PRIMD_OBJ_MAGIC, stored last at creation */
	uint16_t version;	/* PRIMD_OBJ_VERSION */
	uint16_t type;		/* enum primd_type */
	int32_t id;		/* the object's id */
	int32_t key;		/* its key (IPC_PRIVATE = 0) */
	uint8_t pad[PRIMD_OBJ_HDR - 16];
};
_Static_assert(sizeof(struct primd_obj_shm) == PRIMD_OBJ_HDR,
	       "object header is one cache line");

#endif
