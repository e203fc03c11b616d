/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The wire protocol between libsysv (sysv/) and the broker (broker/), and
 * the header every backing segment starts with. This is the only header
 * the two share. Everything here crosses a process boundary: fixed-width
 * types only, and every field is validated by whoever receives it.
 *
 * Transport: a Unix SOCK_SEQPACKET socket; one request datagram, one reply
 * datagram, in order. A datagram is the fixed struct (primd_req or
 * primd_rep), followed by an op-specific trailer only where the op says so
 * (PRIMD_SEMOP_ZERO and PRIMD_MSGRCV requests, a PRIMD_MSGRCV reply);
 * every other datagram is exactly the fixed struct. The broker learns who asks from SO_PEERCRED and
 * SO_PEERGROUPS only; nothing a client writes about itself is trusted.
 * A client reconnects after fork (in the child) and whenever its euid or
 * egid differs from the one it connected with.
 *
 * Socket path (primd__sock_path in broker/sockpath.c, used by both):
 *   $PRIM_BROKER_SOCK if set; else the system socket
 *   /run/prim/primd-ipc-<ns>.sock if it exists; else the user's own,
 *   $XDG_RUNTIME_DIR/prim/primd-ipc-<ns>.sock, or
 *   /tmp/prim-<uid>/primd-ipc-<ns>.sock without XDG_RUNTIME_DIR,
 * where <ns> is the inode of /proc/self/ns/ipc: one broker per IPC
 * namespace, as kernel SysV objects are scoped.
 */
#ifndef PRIMD_PROTO_H
#define PRIMD_PROTO_H

#include <stdint.h>

#define PRIMD_MAGIC 0x444d5250u	/* "PRMD" little-endian */
#define PRIMD_VERSION 1

enum primd_op {
	PRIMD_HELLO = 1,	/* register this process; reply: limits */
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
	PRIMD_LIST,		/* next live object with index >= id (primctl) */
	PRIMD_SEMOP_ZERO,	/* wait-for-zero semop for a reader (no W) */
	PRIMD_MSGRCV,		/* msgrcv for a reader with a read-only map */
	PRIMD_OP_MAX
};

enum primd_type {
	PRIMD_SEM = 1,
	PRIMD_MSG = 2,
};

/*
 * PRIMD_SEMOP_ZERO and PRIMD_MSGRCV: the operations a caller with R but
 * without W may do on an object it can only map read-only (the kernel
 * allows them with R, but libprim writes the object to do them). The
 * broker does them on its own mapping, always without waiting (IPC_NOWAIT
 * forced): a caller that wants to wait asks again (libsysv(7)). Both check
 * R (EACCES), as the kernel; sempid and lrpid become the broker's pid.
 *
 * PRIMD_SEMOP_ZERO request: id; nsems = n, the number of bits of the
 * trailer, a bitmap of ceil(n / 8) bytes: bit k (byte k / 8, bit k % 8,
 * least significant first) set = semaphore k must be zero. 1 <= n <=
 * PRIMD_SEMBITS_MAX; the set bits (at least one, at most semopm) are the
 * distinct sem_num of the caller's zero operations. Errors: EINVAL (id,
 * bitmap), EFBIG (a bit >= nsems), EACCES, EAGAIN (a semaphore is not
 * zero), EIDRM. No reply trailer.
 *
 * PRIMD_MSGRCV request: id; flags = msgflg (MSG_NOERROR, MSG_EXCEPT;
 * IPC_NOWAIT is implied; MSG_COPY gives EINVAL); trailer struct
 * primd_msgrcv_req. Errors: EINVAL, EACCES, ENOMSG, E2BIG, EIDRM. On
 * success the reply is followed by struct primd_msgrcv_rep and its len
 * bytes of text (len <= msgsz and <= the broker's msgmax).
 */
#define PRIMD_SEMBITS_MAX 65536

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

struct primd_req {
	uint32_t magic;		/* PRIMD_MAGIC */
	uint16_t version;	/* PRIMD_VERSION */
	uint16_t op;		/* enum primd_op */
	uint32_t seq;		/* echoed in the reply */
	uint16_t type;		/* enum primd_type */
	uint16_t pad;		/* 0 */
	int32_t key;		/* GET */
	int32_t id;		/* OPEN, SET, RMID; index for STAT_INDEX, LIST */
	int32_t flags;		/* GET: semflg/msgflg; INFO: cmd */
	int32_t nsems;		/* GET of a semaphore set */
	uint32_t uid, gid, mode;	/* SET */
	uint32_t pad2;		/* 0 */
	uint64_t qbytes;	/* SET of a message queue */
};

/* Limits and usage: what IPC_INFO, SEM_INFO and MSG_INFO report. */
struct primd_info {
	/* limits */
	uint32_t semmsl, semmns, semopm, semmni;
	uint32_t msgmax, msgmnb, msgmni;
	uint32_t pad;
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
	int32_t shmid;		/* GET, OPEN, STAT_INDEX, LIST: the segment */
	uint32_t access;	/* PRIMD_ACC_* the caller has */
	uint32_t nsems;		/* GET, OPEN, STAT_INDEX of a set: its
				   nsems (0 for queues) */
	uint64_t seg_size;	/* bytes of the backing segment */
	struct primd_info info;	/* HELLO, INFO */
	struct primd_stat stat;	/* STAT_INDEX: what *_STAT reports */
};

/*
 * A backing segment: kernel SysV shared memory made by the broker
 * (IPC_PRIVATE), its kernel uid, gid and mode mirroring the object's, so
 * the kernel refuses an attach the object's permissions refuse. It starts
 * with this page; the libprim object (semaphore set or message queue)
 * follows at obj_off. The broker writes the permission fields under the
 * seqlock perm_seq (odd while writing); clients read them for IPC_STAT.
 */
#define PRIMD_OBJ_MAGIC 0x4f4d5250u	/* "PRMO" */
#define PRIMD_OBJ_VERSION 1
#define PRIMD_OBJ_HDR 4096

enum primd_obj_state {
	PRIMD_OBJ_LIVE = 1,
	PRIMD_OBJ_REMOVED = 2,
};

struct primd_obj_shm {
	uint32_t magic;		/* PRIMD_OBJ_MAGIC, stored last at creation */
	uint16_t version;	/* PRIMD_OBJ_VERSION */
	uint16_t type;		/* enum primd_type */
	int32_t id;		/* the object's id */
	int32_t key;		/* its key (IPC_PRIVATE = 0) */
	uint32_t state;		/* enum primd_obj_state */
	uint32_t perm_seq;	/* seqlock over the five fields below */
	uint32_t uid, gid, cuid, cgid, mode;	/* ipc_perm; mode & 0777 */
	uint32_t nsems;		/* semaphore sets: nsems */
	uint64_t obj_off;	/* offset of the libprim object (>= 4096) */
	uint64_t obj_len;	/* its length */
	uint8_t pad[PRIMD_OBJ_HDR - 64];
};
_Static_assert(sizeof(struct primd_obj_shm) == PRIMD_OBJ_HDR,
	       "object header is one page");

/*
 * Resolve the socket path into buf (size n), following the order above.
 * for_server: the path a broker should listen on when PRIM_BROKER_SOCK is
 * unset (the user's own; /run/prim when run as root). Returns 0 or -errno.
 */
_Static_assert(sizeof(struct primd_req) == 56, "request layout");
_Static_assert(sizeof(struct primd_rep) == 112 + sizeof(struct primd_stat),
	       "reply layout");

int primd__sock_path(char *buf, unsigned long n, int for_server);

#endif
