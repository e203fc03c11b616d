/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libprim message queues: System V message queues that live in a shared
 * mapping the caller provides (SysV shm, a shared mmap, a memfd...): typed,
 * variable-length messages, any number of sending and receiving processes.
 * A send or receive on a queue that is neither full nor empty, with nobody
 * asleep, makes no system call; a blocked call sleeps on a futex (umtx on
 * FreeBSD/DragonFly) and is woken only when the shared word says so.
 *
 * Every function is safe from any number of threads and processes at once,
 * on any mapping of the same queue, unless its comment says otherwise.
 * None is async-signal-safe. None is a cancellation point. Every function
 * returns 0 (or a non-negative value) on success and -errno on failure;
 * errno itself is never touched.
 */
#ifndef PRIM_MSGQ_H
#define PRIM_MSGQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libprim is built with hidden visibility: its public API is default. */
#pragma GCC visibility push(default)

#ifndef PRIM_IPC_NOWAIT
#define PRIM_IPC_NOWAIT 04000	/* same bit as IPC_NOWAIT */
#endif
#define PRIM_MSG_NOERROR 010000	/* same bit as MSG_NOERROR */
#define PRIM_MSG_EXCEPT 020000	/* same bit as MSG_EXCEPT */
#define PRIM_MSG_COPY 040000	/* same bit as MSG_COPY: see prim_msgq_copy */

#define PRIM_MSGQ_MSGMAX 8192	/* default largest message */
#define PRIM_MSGQ_QBYTES 16384	/* default qbytes (the kernel's msgmnb) */

/* Opaque handle made by prim_msgq_open, freed by prim_msgq_close. */
struct prim_msgq;

/* Sizes fixed when the queue is created. Zero fields take the defaults. */
struct prim_msgq_attr {
	uint32_t msgmax;	/* largest message, bytes (8192) */
	uint32_t qbytes;	/* initial qbytes (16384) */
	uint32_t qbytes_max;	/* most qbytes may be raised to (qbytes) */
	uint32_t nslots;	/* most messages queued at once, 1..32768
				   (2 * qbytes_max rounded up to a power
				   of 2, at least 16, at most 32768) */
	uint32_t flags;		/* PRIM_MSGQ_ZEROED */
};

/*
 * prim_msgq_init: mem is known to hold zeros (fresh pages of a new segment
 * or mapping), so only the header is written. A page of the queue is then
 * touched only when a message (or the position ring's turn) reaches it.
 */
#define PRIM_MSGQ_ZEROED 1u

/* What msgctl(IPC_STAT) reports. Times are CLOCK_REALTIME seconds. */
struct prim_msgq_stat {
	uint64_t qnum;		/* messages in the queue */
	uint64_t cbytes;	/* bytes in the queue */
	uint64_t qbytes;	/* capacity in bytes */
	pid_t lspid;		/* last sender */
	pid_t lrpid;		/* last receiver */
	int64_t stime;		/* last send */
	int64_t rtime;		/* last receive */
	int64_t ctime;		/* creation or last change */
};

/* One message of a batch: send uses type, buf, len; receive fills buf
 * (capacity len) and sets type and len to what it received. */
struct prim_msgq_msg {
	long type;
	void *buf;
	size_t len;
};

/* Bytes a queue with these attributes needs, or 0 if they are invalid. */
size_t prim_msgq_size(const struct prim_msgq_attr *attr);

/*
 * Initialise an empty queue in mem (len bytes, 64-byte aligned). Not safe
 * concurrently with any other use of the same memory. Returns 0 or -EINVAL
 * (bad attributes, misaligned or too small).
 */
int prim_msgq_init(void *mem, size_t len, const struct prim_msgq_attr *attr);

/*
 * Validate a mapping made by prim_msgq_init (possibly in another process
 * and at another address) and return a handle in *q. Returns 0, -EINVAL
 * (foreign or corrupt), -EIDRM (removed), -ENOMEM.
 */
int prim_msgq_open(void *mem, size_t len, struct prim_msgq **q);
/* Free a handle (not the queue). Not safe concurrently with its use. */
void prim_msgq_close(struct prim_msgq *q);

/*
 * msgsnd(2): queue len bytes of buf with type (>= 1). Waits while the
 * message does not fit (cbytes + len <= qbytes and qnum + 1 <= qbytes, as
 * the kernel's rule, and at most nslots messages) unless flags has
 * PRIM_IPC_NOWAIT.
 * prim_msgq_send_timed gives up at the absolute CLOCK_MONOTONIC *deadline.
 * Errors: -EINVAL (type < 1, len > msgmax), -EAGAIN (full and
 * PRIM_IPC_NOWAIT), -ETIMEDOUT (deadline passed), -EINTR (a signal handler
 * ran; never restarted), -EIDRM (removed), -ENOTRECOVERABLE (damaged),
 * -EFAULT (buf could not be read, when the caller's fault handler calls
 * prim_fault_fixup: nothing is sent), -EOVERFLOW (pid does not fit in 22
 * bits).
 */
int prim_msgq_send(struct prim_msgq *q, long type, const void *buf,
		   size_t len, int flags);
int prim_msgq_send_timed(struct prim_msgq *q, long type, const void *buf,
			 size_t len, int flags,
			 const struct timespec *deadline);

/*
 * msgrcv(2): take the first message selected by msgtyp (0: any; > 0: that
 * type, or with PRIM_MSG_EXCEPT any other; < 0: the lowest type <=
 * |msgtyp|), copy it to buf (cap bytes) and store its type in *type (if
 * not NULL). Returns the bytes copied. A message longer than cap gives
 * -E2BIG and stays queued, unless PRIM_MSG_NOERROR truncates it.
 * Errors: -ENOMSG (none and PRIM_IPC_NOWAIT), -ETIMEDOUT (the timed form's
 * deadline passed), -EINTR, -EIDRM, -E2BIG, -EINVAL (a message longer than
 * msgmax), -ENOTRECOVERABLE (damaged), -EFAULT (buf could not be written,
 * when the caller's fault handler calls prim_fault_fixup: the message is
 * taken all the same, as the kernel's msgrcv does, and *type set), -ENOSYS
 * (PRIM_MSG_COPY: use prim_msgq_copy).
 */
ssize_t prim_msgq_recv(struct prim_msgq *q, void *buf, size_t cap,
		       long msgtyp, int flags, long *type);
ssize_t prim_msgq_recv_timed(struct prim_msgq *q, void *buf, size_t cap,
			     long msgtyp, int flags, long *type,
			     const struct timespec *deadline);

/*
 * Native batches: send or receive up to n messages in one call. Only the
 * first may wait (as flags and deadline say); the rest stop at the first
 * that would wait. Return how many were done (> 0), or the first one's
 * -errno.
 */
int prim_msgq_send_batch(struct prim_msgq *q, const struct prim_msgq_msg *v,
			 size_t n, int flags, const struct timespec *deadline);
int prim_msgq_recv_batch(struct prim_msgq *q, struct prim_msgq_msg *v,
			 size_t n, long msgtyp, int flags,
			 const struct timespec *deadline);

/*
 * Every process that may write a queue may write any byte of it, so no
 * call trusts what it reads there, and none loops for ever on it: a call
 * that does not wait retries against other processes' writes for at most
 * its patience (ns nanoseconds, after at least 1024 retries; 10 ms unless
 * set here), then gives up as if the queue were full or empty; a timed
 * call gives up at its deadline; a call that waits without a deadline
 * backs off with sleeps instead of spinning. Memory the protocol can never
 * produce marks the queue damaged: that call and every later one return
 * -ENOTRECOVERABLE. Not safe concurrently with other uses of the handle.
 */
void prim_msgq_set_patience(struct prim_msgq *q, uint64_t ns);

/*
 * For a broker acting for process pid (one that may not map the queue
 * read-write): prim_msgq_send and prim_msgq_recv, never waiting
 * (PRIM_IPC_NOWAIT is implied), with pid shown as msg_lspid or msg_lrpid.
 */
int prim_msgq_send_as(struct prim_msgq *q, long type, const void *buf,
		      size_t len, int flags, pid_t pid);
ssize_t prim_msgq_recv_as(struct prim_msgq *q, void *buf, size_t cap,
			  long msgtyp, int flags, long *type, pid_t pid);

/*
 * Check the queue's consistency as far as it can be checked from outside.
 * Returns 0, -ENOTRECOVERABLE (damaged, now marked so), -EIDRM, or -EBUSY
 * (undecided within the patience).
 */
int prim_msgq_check(struct prim_msgq *q);

/*
 * msgrcv(MSG_COPY): copy the message at index idx of the queue (0 the
 * oldest, every type counted) to buf and its type to *type (if not NULL),
 * without taking it; *len is its length. Only reads the queue: a process
 * that maps it read-only may call it. Returns 0, -ENOMSG (fewer than
 * idx + 1 messages), -E2BIG (longer than cap: nothing copied, *len set),
 * -EFAULT (buf could not be written, as prim_msgq_recv), -EIDRM,
 * -ENOTRECOVERABLE (the message is no message a sender can write; the
 * queue is not marked damaged: prim_msgq_check does that), -EAGAIN (every
 * message it tried was taken while it copied, 1024 times in a row),
 * -ENOMEM.
 */
int prim_msgq_copy(const struct prim_msgq *q, uint64_t idx, void *buf,
		   size_t cap, long *type, size_t *len);

/* msgctl(IPC_STAT). Returns 0, -EIDRM, -ENOTRECOVERABLE. */
int prim_msgq_stat(const struct prim_msgq *q, struct prim_msgq_stat *st);

/*
 * Change qbytes (0..qbytes_max; lowering below cbytes keeps what is queued
 * and only blocks senders), set ctime, re-evaluate sleeping senders.
 * Returns 0, -EINVAL (above qbytes_max), -EIDRM.
 */
int prim_msgq_set_qbytes(struct prim_msgq *q, uint64_t qbytes);
/* Set ctime to now (IPC_SET of fields libprim does not keep). */
void prim_msgq_touch(struct prim_msgq *q);

/*
 * Give back the memory of pages that hold nothing: message blocks all
 * free, and their bookkeeping (not yet the position ring's pages).
 * They read as zeros afterwards, which the queue takes for free, so every
 * call goes on unchanged; a page is made resident again when content
 * reaches it. For the one process that manages the queue (the broker),
 * off the data path: it makes system calls (mincore, madvise), and it is
 * not safe concurrently with another prim_msgq_trim of the same queue;
 * it is safe concurrently with every other call, and a trim killed at any
 * instruction is completed or undone by the next one. Needs a writable
 * shared mapping backed by shmem or tmpfs (MADV_REMOVE); elsewhere it
 * gives nothing back. Returns the bytes given back, or -EIDRM,
 * -ENOTRECOVERABLE, -ENOMEM.
 */
int prim_msgq_trim(struct prim_msgq *q);

/* msgctl(IPC_RMID): every waiter returns -EIDRM, later calls -EIDRM. */
int prim_msgq_remove(struct prim_msgq *q);

/*
 * Clean up after process pid once it is dead: a message it was sending is
 * either completed (if counted) or rolled back; a message it had claimed
 * and not finished receiving is put back in its place. While a process
 * with that pid lives (a zombie counts as dead) nothing is done: it may
 * have reused a dead one's pid. Idempotent; any process may call it at
 * any time. Reads /proc/<pid>/stat. Returns the number of slots repaired,
 * or -errno.
 */
int prim_msgq_reap(struct prim_msgq *q, pid_t pid);

/*
 * The pids that own a message half sent or half received: up to max of
 * them in pids. Returns how many there are (possibly more than max). For
 * a broker that restarts: reap each one (a live pid is left alone).
 */
int prim_msgq_pids(const struct prim_msgq *q, pid_t *pids, int max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
