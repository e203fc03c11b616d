/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * msgget, msgsnd, msgrcv and msgctl on libprim message queues. msgget and
 * the control commands that need the broker's authority (IPC_SET,
 * IPC_RMID, IPC_INFO, MSG_INFO, MSG_STAT, MSG_STAT_ANY) ask the broker;
 * msgsnd, msgrcv and IPC_STAT run in the caller on the mapped queue.
 * Checks come in the kernel's order (ipc/msg.c). The mtype and every
 * control structure are copied with sysv__copy, so a bad pointer gives
 * EFAULT where the kernel copies it; the message text is copied by libprim
 * itself (prim_msgq_send, prim_msgq_recv).
 *
 * Concurrency: every function is thread-safe; none is async-signal-safe.
 * msgsnd and msgrcv are not cancellation points (see libsysv(7)).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/types.h>

#include "prim/msgq.h"
#include "sysv_int.h"

_Static_assert(MSG_NOERROR == PRIM_MSG_NOERROR &&
		   MSG_EXCEPT == PRIM_MSG_EXCEPT && MSG_COPY == PRIM_MSG_COPY &&
		   IPC_NOWAIT == PRIM_IPC_NOWAIT,
	       "flag bits are the kernel's");

/* The kernel's compile-time constants (uapi linux/msg.h) for IPC_INFO. */
#define K_MSGSSZ  16
#define K_MSGSEG  0xffff
#define K_MSGMAP  16384
#define K_MSGPOOL 512000
#define K_MSGTQL  16384

struct sysv_msgbuf {
	long mtype;
	char mtext[];
};

/*
 * The caller's msgp may be any address, misaligned or wild, as the
 * kernel's copy_from_user takes it: it is never used as a struct pointer
 * (a member access through a misaligned one is undefined behaviour, which
 * UBSan stops at), only offset as an integer (no pointer overflow either:
 * (void *)-1 gives EFAULT) and handed to the copies.
 */
static const void *
text_in(const void *msgp)
{
	return (const void *)((uintptr_t)msgp +
			      offsetof(struct sysv_msgbuf, mtext));
}

static void *
text_out(void *msgp)
{
	return (void *)((uintptr_t)msgp + offsetof(struct sysv_msgbuf, mtext));
}

SYSV_EXPORT int
msgget(key_t key, int msgflg)
{
	int saved = errno, r = sysv__get_key(PRIMD_MSG, key, msgflg, 0);

	errno = saved; /* changed only on failure, as the kernel's */
	return SYSV_RET(r);
}

/*
 * msgsnd for a writer that may not read the queue (the kernel lets it map
 * nothing): the broker sends for it (PRIMD_MSGSND), never waiting; to
 * wait, ask again after a sleep of 1 ms doubling to 50 ms (libsysv(7)).
 * The caller checked msgsz, mtype and W.
 */
static int
send_broker(int msqid, long mtype, const void *text, size_t msgsz,
	    int msgflg)
{
	struct primd_req req;
	unsigned char *buf;
	int64_t t = mtype;
	int r;

	if ((buf = malloc(sizeof(t) + msgsz)) == NULL)
		return -ENOMEM;
	memcpy(buf, &t, sizeof(t));
	if (sysv__copy(buf + sizeof(t), text, msgsz) != 0) {
		free(buf);
		return -EFAULT; /* the kernel copies the text first: nothing sent */
	}
	memset(&req, 0, sizeof(req));
	req.op = PRIMD_MSGSND;
	req.type = PRIMD_MSG;
	req.id = msqid;
	req.flags = msgflg & IPC_NOWAIT;
	r = sysv__proxy(&req, buf, sizeof(t) + msgsz, NULL, 0, NULL, -EAGAIN,
			NULL);
	free(buf);
	return r;
}

static int
do_send(int msqid, const void *msgp, size_t msgsz, int msgflg)
{
	const struct primd_info *lim;
	struct sysv_obj *o;
	long mtype;
	int r;

	/* The kernel reads mtype (at offset 0) before anything else. */
	if (sysv__copy(&mtype, msgp, sizeof(mtype)) != 0)
		return -EFAULT;
	if ((lim = sysv__limits(&r)) == NULL)
		return r;
	if ((long)msgsz < 0 || msgsz > sysv__msgmax(lim, msgsz) || msqid < 0)
		return -EINVAL;
	if (mtype < 1)
		return -EINVAL;
	if ((r = sysv__get(PRIMD_MSG, msqid, &o)) != 0)
		return r;
	if (!(sysv__access(o) & PRIMD_ACC_W))
		r = -EACCES;
	else if (!o->rw) /* write-only: nothing mapped, the broker sends */
		r = send_broker(msqid, mtype, text_in(msgp), msgsz, msgflg);
	else
		r = prim_msgq_send(o->handle, mtype, text_in(msgp), msgsz,
				   msgflg);
	sysv__put(o);
	if (r == -ETIMEDOUT)
		r = -EAGAIN;
	return sysv__judge(PRIMD_MSG, msqid, r);
}

SYSV_EXPORT int
msgsnd(int msqid, const void *msgp, size_t msgsz, int msgflg)
{
	/* errno changes only on failure, as the kernel's; restored here
	 * rather than trusting every path below (the broker's socket, the
	 * poll sleeps, libprim) to leave it alone. */
	int saved = errno, r = do_send(msqid, msgp, msgsz, msgflg);

	errno = saved;
	return SYSV_RET(r);
}

/*
 * msgrcv for a caller with R but not W, which maps the queue read-only
 * while taking a message writes it: the broker takes it (PRIMD_MSGRCV),
 * never waiting; to wait, ask again after a sleep of 1 ms doubling to
 * 50 ms (libsysv(7)). The caller checked msqid, msgsz, MSG_COPY and R.
 */
static ssize_t
recv_broker(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)
{
	const struct primd_info *lim;
	struct primd_msgrcv_req mr;
	struct primd_msgrcv_rep mh;
	struct primd_req req;
	size_t cap = msgsz, got = 0;
	unsigned char *buf;
	ssize_t n;
	int r;

	if ((lim = sysv__limits(&r)) == NULL)
		return r;
	if (cap > lim->msgmax)
		cap = lim->msgmax;
	if ((buf = malloc(sizeof(mh) + cap)) == NULL)
		return -ENOMEM;
	mr.msgtyp = msgtyp;
	mr.msgsz = msgsz;
	memset(&req, 0, sizeof(req));
	req.op = PRIMD_MSGRCV;
	req.type = PRIMD_MSG;
	req.id = msqid;
	req.flags = msgflg & (MSG_NOERROR | MSG_EXCEPT);
	r = sysv__proxy(&req, &mr, sizeof(mr), buf, sizeof(mh) + cap, &got,
			(msgflg & IPC_NOWAIT) ? 0 : -ENOMSG, NULL);
	if (r != 0) {
		n = r;
	} else if (got < sizeof(mh) ||
		   (memcpy(&mh, buf, sizeof(mh)), mh.len != got - sizeof(mh)) ||
		   mh.len > msgsz) {
		n = -EPROTO; /* not what proto.h says: never */
	} else {
		/* The kernel's order: mtype, then the text; a fault in
		 * either is EFAULT with the message taken. */
		long mtype = (long)mh.mtype;

		if (sysv__copy(msgp, &mtype, sizeof(mtype)) != 0 ||
		    sysv__copy(text_out(msgp), buf + sizeof(mh),
			       (size_t)mh.len) != 0)
			n = -EFAULT;
		else
			n = (ssize_t)mh.len;
	}
	free(buf);
	return n;
}

/*
 * msgrcv(MSG_COPY), as the kernel's do_msgrcv with checkpoint/restore: a
 * copy of the message at index idx (every type counted), the queue left
 * as it was (no lrpid, no rtime, nobody woken). The kernel first reads
 * min(msgsz, msgmax) bytes from msgp (its copy buffer is made from them:
 * EFAULT before the queue is even looked up), and refuses a message longer
 * than that buffer with EINVAL after the E2BIG check, so MSG_NOERROR
 * truncates nothing. Only reads the queue: a caller with R alone does it
 * in its read-only mapping, without the broker.
 */
static ssize_t
copy_msg(int msqid, void *msgp, size_t msgsz, long idx, int msgflg)
{
	const struct primd_info *lim;
	struct sysv_obj *o;
	char probe[256];
	size_t cap = msgsz, len = 0;
	long type = 0;
	ssize_t n;
	int r;

	if ((lim = sysv__limits(&r)) == NULL)
		return r;
	if (cap > lim->msgmax)
		cap = lim->msgmax;
	for (size_t off = 0; off < cap; off += sizeof(probe)) {
		size_t k = cap - off < sizeof(probe) ? cap - off : sizeof(probe);

		if (sysv__copy(probe, (const char *)msgp + off, k) != 0)
			return -EFAULT;
	}
	if ((r = sysv__get(PRIMD_MSG, msqid, &o)) != 0)
		return r;
	if (!(sysv__access(o) & PRIMD_ACC_R) || o->handle == NULL) {
		n = -EACCES;
		goto out;
	}
	n = prim_msgq_copy(o->handle, (uint64_t)idx, text_out(msgp), cap,
			   &type, &len);
	if (n == -E2BIG && (len <= msgsz || (msgflg & MSG_NOERROR)))
		n = -EINVAL; /* fits msgsz, not the msgmax-sized copy */
	else if (n == -EAGAIN)
		n = -ENOMSG; /* every try was taken under it: gone */
	if (n == 0 || n == -EFAULT)
		n = sysv__copy(msgp, &type, sizeof(type)) != 0 ? -EFAULT
			: n == 0				 ? (ssize_t)len
								 : n;
out:
	sysv__put(o);
	(void)sysv__judge(PRIMD_MSG, msqid, (int)n);
	return n;
}

static ssize_t
do_recv(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)
{
	const struct primd_info *lim;
	struct sysv_obj *o;
	char small[256], *scratch = NULL;
	long type = 0;
	ssize_t n;
	int r;

	if (msqid < 0 || (long)msgsz < 0)
		return -EINVAL;
	if (msgflg & MSG_COPY) {
		if ((msgflg & MSG_EXCEPT) || !(msgflg & IPC_NOWAIT))
			return -EINVAL;
		return copy_msg(msqid, msgp, msgsz, msgtyp, msgflg);
	}
	if ((r = sysv__get(PRIMD_MSG, msqid, &o)) != 0)
		return r;
	if (!(sysv__access(o) & PRIMD_ACC_R) || o->handle == NULL) {
		n = -EACCES;
		goto out;
	}
	if (!o->rw) {
		/* R only: taking a message writes the queue. */
		sysv__put(o);
		return recv_broker(msqid, msgp, msgsz, msgtyp, msgflg);
	}
	if (sysv__copy(&type, msgp, sizeof(type)) != 0) {
		/*
		 * The kernel takes the message, then fails to copy it out
		 * (EFAULT, message gone); E2BIG, ENOMSG and waiting come
		 * first. A buffer whose mtype cannot even be read cannot be
		 * written either: receive into scratch space to do the same.
		 * The read is only a probe, so nothing is written before the
		 * message is taken.
		 */
		size_t cap = msgsz;

		if ((lim = sysv__limits(&r)) != NULL && cap > lim->msgmax)
			cap = lim->msgmax;
		if (cap > sizeof(small) && (scratch = malloc(cap)) == NULL) {
			n = -ENOMEM;
			goto out;
		}
		n = prim_msgq_recv(o->handle, scratch ? scratch : small, cap,
				   msgtyp, msgflg, &type);
		free(scratch);
		if (n >= 0)
			n = -EFAULT;
		goto out;
	}
	n = prim_msgq_recv(o->handle, text_out(msgp), msgsz, msgtyp, msgflg,
			   &type);
	/*
	 * The message is taken: an mtype we may read but not write loses it
	 * with EFAULT, as in the kernel (which stores mtype before the text,
	 * so it would leave the text unwritten too); a text we may not write
	 * (EFAULT from the queue's copy) still gets its mtype, as there.
	 */
	if ((n >= 0 || n == -EFAULT) &&
	    sysv__copy(msgp, &type, sizeof(type)) != 0)
		n = -EFAULT;
out:
	sysv__put(o);
	if (n == -ETIMEDOUT)
		n = -ENOMSG;
	(void)sysv__judge(PRIMD_MSG, msqid, (int)n);
	return n;
}

SYSV_EXPORT ssize_t
msgrcv(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)
{
	int saved = errno;
	ssize_t r = do_recv(msqid, msgp, msgsz, msgtyp, msgflg);

	errno = saved; /* changed only on failure, as the kernel's */
	return SYSV_RET(r);
}

static void
fill_stat(struct sysv_obj *o, int id, const struct prim_msgq_stat *st,
	  struct msqid_ds *ds)
{
	struct sysv_perm p;

	sysv__perm(o, &p);
	memset(ds, 0, sizeof(*ds));
	ds->msg_perm.__key = p.key;
	ds->msg_perm.uid = p.uid;
	ds->msg_perm.gid = p.gid;
	ds->msg_perm.cuid = p.cuid;
	ds->msg_perm.cgid = p.cgid;
	ds->msg_perm.mode = (unsigned short)p.mode;
	ds->msg_perm.__seq = (unsigned short)(id / SYSV_IPCMNI);
	ds->msg_stime = (time_t)st->stime;
	ds->msg_rtime = (time_t)st->rtime;
	ds->msg_ctime = (time_t)st->ctime;
	ds->__msg_cbytes = (msgqnum_t)st->cbytes;
	ds->msg_qnum = (msgqnum_t)st->qnum;
	ds->msg_qbytes = (msglen_t)st->qbytes;
	ds->msg_lspid = st->lspid;
	ds->msg_lrpid = st->lrpid;
}

/* IPC_STAT by id (R needed). */
static int
msg_stat(int id, struct msqid_ds *ds)
{
	struct prim_msgq_stat st;
	struct msqid_ds local;
	struct sysv_obj *o;
	int r;

	if ((r = sysv__get(PRIMD_MSG, id, &o)) != 0)
		return r;
	if (!(sysv__access(o) & PRIMD_ACC_R) || o->handle == NULL)
		r = -EACCES;
	else if ((r = prim_msgq_stat(o->handle, &st)) != 0)
		r = r == -EIDRM ? -EINVAL : r;
	else {
		fill_stat(o, id, &st, &local);
		if (sysv__copy(ds, &local, sizeof(local)) != 0)
			r = -EFAULT; /* after the work, as the kernel */
	}
	sysv__put(o);
	return r;
}

/* MSG_STAT(_ANY): what the broker read on its own mapping (the caller
 * may have none, MSG_STAT_ANY without R). */
static int
msg_stat_index(const struct primd_rep *rep, struct msqid_ds *uds)
{
	const struct primd_stat *s = &rep->stat;
	struct msqid_ds local, *ds = &local;

	memset(ds, 0, sizeof(*ds));
	ds->msg_perm.__key = s->key;
	ds->msg_perm.uid = s->uid;
	ds->msg_perm.gid = s->gid;
	ds->msg_perm.cuid = s->cuid;
	ds->msg_perm.cgid = s->cgid;
	ds->msg_perm.mode = (unsigned short)(s->mode & 0777);
	ds->msg_perm.__seq = (unsigned short)(rep->id / SYSV_IPCMNI);
	ds->msg_stime = (time_t)s->stime;
	ds->msg_rtime = (time_t)s->rtime;
	ds->msg_ctime = (time_t)s->ctime;
	ds->__msg_cbytes = (msgqnum_t)s->cbytes;
	ds->msg_qnum = (msgqnum_t)s->qnum;
	ds->msg_qbytes = (msglen_t)s->qbytes;
	ds->msg_lspid = s->lspid;
	ds->msg_lrpid = s->lrpid;
	if (sysv__copy(uds, ds, sizeof(*ds)) != 0)
		return -EFAULT;
	return rep->id;
}

static int
msg_info(int cmd, struct msginfo *umi)
{
	struct primd_info info;
	struct msginfo local, *mi = &local;
	int r;

	if ((r = sysv__info(PRIMD_MSG, cmd, &info)) != 0)
		return r;
	memset(mi, 0, sizeof(*mi));
	mi->msgmni = (int)info.msgmni;
	mi->msgmax = (int)info.msgmax;
	mi->msgmnb = (int)info.msgmnb;
	mi->msgssz = K_MSGSSZ;
	mi->msgseg = K_MSGSEG;
	if (cmd == MSG_INFO) {
		mi->msgpool = (int)info.msg_queues;
		mi->msgmap = info.msg_msgs > INT_MAX
				 ? INT_MAX
				 : (int)info.msg_msgs;
		mi->msgtql = info.msg_bytes > INT_MAX
				 ? INT_MAX
				 : (int)info.msg_bytes;
	} else {
		mi->msgmap = K_MSGMAP;
		mi->msgpool = K_MSGPOOL;
		mi->msgtql = K_MSGTQL;
	}
	if (sysv__copy(umi, mi, sizeof(*mi)) != 0)
		return -EFAULT; /* after the work, as the kernel */
	return info.max_index < 0 ? 0 : info.max_index;
}

SYSV_EXPORT int
msgctl(int msqid, int cmd, struct msqid_ds *buf)
{
	struct msqid_ds ds;
	struct primd_req req;
	struct primd_rep rep;
	int r, saved = errno;

	cmd &= ~SYSV_IPC_64;
	if (msqid < 0 || cmd < 0)
		return SYSV_RET(-EINVAL);
	memset(&req, 0, sizeof(req));
	req.type = PRIMD_MSG;
	req.id = msqid;
	switch (cmd) {
	case IPC_INFO:
	case MSG_INFO:
		r = msg_info(cmd, (struct msginfo *)buf);
		break;
	case IPC_STAT:
		r = msg_stat(msqid, buf);
		break;
	case MSG_STAT:
	case MSG_STAT_ANY:
		req.op = PRIMD_STAT_INDEX;
		req.flags = cmd == MSG_STAT_ANY;
		if ((r = sysv__call(&req, &rep)) == 0 && (r = -rep.err) == 0)
			r = msg_stat_index(&rep, buf);
		break;
	case IPC_SET:
		/* Copied before the id is even looked up, as the kernel. */
		if (sysv__copy(&ds, buf, sizeof(ds)) != 0) {
			r = -EFAULT;
			break;
		}
		req.op = PRIMD_SET;
		req.uid = ds.msg_perm.uid;
		req.gid = ds.msg_perm.gid;
		req.mode = ds.msg_perm.mode & 0777;
		/* The kernel's msgctl_down takes int msg_qbytes: the low 32
		 * bits, sign-extended when stored, compared with msgmnb as
		 * unsigned (2^32 + 100 sets 100; 2^31 is EPERM). */
		req.qbytes = (uint64_t)(int64_t)(int)ds.msg_qbytes;
		/* The broker applies qbytes and sets msg_ctime. */
		if ((r = sysv__call(&req, &rep)) == 0)
			r = -rep.err;
		break;
	case IPC_RMID:
		req.op = PRIMD_RMID;
		if ((r = sysv__call(&req, &rep)) == 0 && (r = -rep.err) == 0)
			sysv__forget(PRIMD_MSG, msqid);
		break;
	default:
		r = -EINVAL;
		break;
	}
	errno = saved;
	return SYSV_RET(r);
}
