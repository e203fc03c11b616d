/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of libprim message queues: each msgsnd/msgrcv behaviour and
 * error, the native timed and batch calls, removal, reaping of dead
 * senders and receivers, corrupt segments and qbytes changes. Queues live
 * in shared anonymous mappings; children are forked where a call must
 * block.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "prim/msgq.h"

/* Layout facts the crash tests poke at (see prim/msgq.c). */
#define OFF_TAIL 256
#define OFF_ANY 512
#define OFF_TAGS (640 + 64 * 64)

struct fx {
	void *mem;
	size_t len;
	struct prim_msgq *q;
	struct prim_msgq_attr attr;
};

static struct fx *
mk(uint32_t msgmax, uint32_t qbytes, uint32_t qmax, uint32_t nslots)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	f.attr.msgmax = msgmax;
	f.attr.qbytes = qbytes;
	f.attr.qbytes_max = qmax;
	f.attr.nslots = nslots;
	f.len = prim_msgq_size(&f.attr);
	assert_true(f.len > 0);
	f.mem = mmap(NULL, f.len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(f.mem != MAP_FAILED);
	assert_int_equal(prim_msgq_init(f.mem, f.len, &f.attr), 0);
	assert_int_equal(prim_msgq_open(f.mem, f.len, &f.q), 0);
	return &f;
}

static void
rm(struct fx *f)
{
	prim_msgq_close(f->q);
	munmap(f->mem, f->len);
}

static void
t_basic(void **s)
{
	struct fx *f = mk(0, 0, 0, 0);
	char buf[64];
	long type = 0;
	struct prim_msgq_stat st;

	assert_int_equal(prim_msgq_send(f->q, 7, "hello", 5, 0), 0);
	assert_int_equal(prim_msgq_stat(f->q, &st), 0);
	assert_int_equal(st.qnum, 1);
	assert_int_equal(st.cbytes, 5);
	assert_int_equal(st.qbytes, 16384);
	assert_int_equal(st.lspid, getpid());
	assert_true(st.stime > 0 && st.ctime > 0);
	assert_int_equal(prim_msgq_recv(f->q, buf, sizeof(buf), 0, 0, &type),
			 5);
	assert_int_equal(type, 7);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(prim_msgq_stat(f->q, &st), 0);
	assert_int_equal(st.qnum, 0);
	assert_int_equal(st.cbytes, 0);
	assert_int_equal(st.lrpid, getpid());
	/* Zero-length messages. */
	assert_int_equal(prim_msgq_send(f->q, 1, NULL, 0, 0), 0);
	assert_int_equal(prim_msgq_recv(f->q, buf, 0, 0, 0, NULL), 0);
	rm(f);
}

static void
t_einval(void **s)
{
	struct fx *f = mk(128, 0, 0, 0);
	struct prim_msgq_attr bad = { .qbytes = 100, .qbytes_max = 50 };
	char buf[256] = { 0 };

	assert_int_equal(prim_msgq_size(&bad), 0);
	assert_int_equal(prim_msgq_send(f->q, 0, buf, 1, 0), -EINVAL);
	assert_int_equal(prim_msgq_send(f->q, -5, buf, 1, 0), -EINVAL);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 129, 0), -EINVAL);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 128, 0), 0);
	assert_int_equal(prim_msgq_recv(f->q, buf, 256, 0, PRIM_MSG_COPY |
					PRIM_IPC_NOWAIT, NULL), -ENOSYS);
	assert_int_equal(prim_msgq_init(f->mem, 100, NULL), -EINVAL);
	assert_int_equal(prim_msgq_init((char *)f->mem + 8, f->len - 8, NULL),
			 -EINVAL);
	rm(f);
}

/* MSG_COPY: by index, every type counted, the queue unchanged. */
static void
t_copy(void **s)
{
	struct fx *f = mk(64, 1024, 1024, 8);
	struct prim_msgq_stat st;
	char buf[64];
	long type = 0;
	size_t len = 0;

	assert_int_equal(prim_msgq_copy(f->q, 0, buf, 64, &type, &len),
			 -ENOMSG);
	assert_int_equal(prim_msgq_send(f->q, 3, "old", 3, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 9, "nine", 4, 0), 0);
	assert_int_equal(prim_msgq_copy(f->q, 1, buf, 64, &type, &len), 0);
	assert_int_equal(type, 9);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "nine", 4);
	assert_int_equal(prim_msgq_copy(f->q, 0, buf, 2, &type, &len), -E2BIG);
	assert_int_equal(len, 3);
	assert_int_equal(prim_msgq_copy(f->q, 2, buf, 64, &type, &len),
			 -ENOMSG);
	assert_int_equal(prim_msgq_copy(f->q, UINT64_MAX, buf, 64, NULL, &len),
			 -ENOMSG);
	assert_int_equal(prim_msgq_stat(f->q, &st), 0);
	assert_int_equal(st.qnum, 2);
	assert_int_equal(st.lrpid, 0);
	/* The old message stays while positions walk past the ring (8
	 * slots): head lags tail by more than the ring, the sorted scan. */
	for (int i = 0; i < 40; i++) {
		assert_int_equal(prim_msgq_send(f->q, 5, "x", 1, 0), 0);
		assert_int_equal(prim_msgq_recv(f->q, buf, 64, 5, 0, NULL), 1);
	}
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 9, 0, NULL), 4);
	assert_int_equal(prim_msgq_send(f->q, 6, "a", 1, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 7, "b", 1, 0), 0);
	assert_int_equal(prim_msgq_copy(f->q, 0, buf, 64, &type, &len), 0);
	assert_int_equal(type, 3);
	assert_int_equal(prim_msgq_copy(f->q, 1, buf, 64, &type, &len), 0);
	assert_int_equal(type, 6);
	assert_int_equal(prim_msgq_copy(f->q, 2, buf, 64, &type, &len), 0);
	assert_int_equal(type, 7);
	assert_int_equal(prim_msgq_copy(f->q, 3, buf, 64, &type, &len),
			 -ENOMSG);
	assert_int_equal(prim_msgq_remove(f->q), 0);
	assert_int_equal(prim_msgq_copy(f->q, 0, buf, 64, &type, &len),
			 -EIDRM);
	rm(f);
}

/* A copy racing receivers and senders is always one whole message: each
 * message's bytes are its type, and a block is reused as soon as its
 * message is taken. */
static void
t_copy_race(void **s)
{
	struct fx *f = mk(64, 4096, 4096, 0);
	unsigned char buf[64], m[64];
	long type;
	size_t len;
	int copies = 0;
	pid_t pid;

	for (int i = 0; i < 4; i++) {
		memset(m, 1 + i, sizeof(m));
		assert_int_equal(prim_msgq_send(f->q, 1 + i, m, 64, 0), 0);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (long i = 0; i < 400000; i++) {
			int t = 1 + (int)(i % 100);

			memset(m, t, sizeof(m));
			if (prim_msgq_send(f->q, t, m, 64, 0) != 0 ||
			    prim_msgq_recv(f->q, m, 64, 0, 0, NULL) != 64)
				_exit(1);
		}
		_exit(0);
	}
	for (;;) {
		int st, r = prim_msgq_copy(f->q, (uint64_t)(copies & 3), buf,
					   sizeof(buf), &type, &len);

		if (r == 0) {
			assert_int_equal(len, 64);
			for (int k = 0; k < 64; k++)
				assert_int_equal(buf[k], (unsigned char)type);
			copies++;
		} else {
			assert_true(r == -ENOMSG || r == -EAGAIN);
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			break;
		}
	}
	assert_true(copies > 0);
	rm(f);
}

static void
t_fit_rule(void **s)
{
	struct fx *f = mk(64, 100, 100, 128);
	char buf[64] = { 0 };

	/* Bytes: 64 + 36 = 100 fits, one more byte does not. */
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 64, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 37, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 36, PRIM_IPC_NOWAIT), 0);
	/* An empty message still fits by bytes (100 + 0 <= 100). */
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 0, PRIM_IPC_NOWAIT), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	rm(f);
	/* Count: qnum + 1 <= qbytes, with empty messages. */
	f = mk(64, 4, 4, 16);
	for (int i = 0; i < 4; i++)
		assert_int_equal(prim_msgq_send(f->q, 1, NULL, 0, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, NULL, 0, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	rm(f);
	/* The pool: nslots messages at most. */
	f = mk(64, 1000, 1000, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, NULL), 1);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, PRIM_IPC_NOWAIT), 0);
	rm(f);
}

static void
t_enomsg_e2big(void **s)
{
	struct fx *f = mk(0, 0, 0, 0);
	char buf[16];
	long type;

	assert_int_equal(prim_msgq_recv(f->q, buf, 16, 0, PRIM_IPC_NOWAIT,
					NULL), -ENOMSG);
	assert_int_equal(prim_msgq_send(f->q, 3, "0123456789", 10, 0), 0);
	assert_int_equal(prim_msgq_recv(f->q, buf, 4, 0, PRIM_IPC_NOWAIT,
					NULL), -E2BIG);
	assert_int_equal(prim_msgq_recv(f->q, buf, 4, 3, PRIM_IPC_NOWAIT,
					NULL), -E2BIG);
	/* Still queued; MSG_NOERROR truncates. */
	assert_int_equal(prim_msgq_recv(f->q, buf, 4, 0,
					PRIM_IPC_NOWAIT | PRIM_MSG_NOERROR,
					&type), 4);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(type, 3);
	assert_int_equal(prim_msgq_recv(f->q, buf, 16, 0, PRIM_IPC_NOWAIT,
					NULL), -ENOMSG);
	rm(f);
}

static long
rtype(struct prim_msgq *q, long msgtyp, int flags, int *val)
{
	long type = -1;
	int v = -1;
	ssize_t n = prim_msgq_recv(q, &v, sizeof(v), msgtyp,
				   flags | PRIM_IPC_NOWAIT, &type);

	if (n < 0)
		return n;
	*val = v;
	return type;
}

static void
t_types(void **s)
{
	struct fx *f = mk(0, 0, 0, 0);
	static const long types[] = { 5, 3, 5, 2, 7, 3, 2 };
	int v;

	for (int i = 0; i < 7; i++)
		assert_int_equal(prim_msgq_send(f->q, types[i], &i, sizeof(i),
						0), 0);
	/* > 0: first of that type, FIFO within the type. */
	assert_int_equal(rtype(f->q, 3, 0, &v), 3);
	assert_int_equal(v, 1);
	assert_int_equal(rtype(f->q, 3, 0, &v), 3);
	assert_int_equal(v, 5);
	assert_int_equal(rtype(f->q, 3, 0, &v), -ENOMSG);
	/* EXCEPT: first of any other type. */
	assert_int_equal(rtype(f->q, 5, PRIM_MSG_EXCEPT, &v), 2);
	assert_int_equal(v, 3);
	/* < 0: lowest type <= |t|, FIFO among equals. */
	assert_int_equal(rtype(f->q, -6, 0, &v), 2);
	assert_int_equal(v, 6);
	assert_int_equal(rtype(f->q, -6, 0, &v), 5);
	assert_int_equal(v, 0);
	assert_int_equal(rtype(f->q, -4, 0, &v), -ENOMSG);
	/* 0: first overall. */
	assert_int_equal(rtype(f->q, 0, 0, &v), 5);
	assert_int_equal(v, 2);
	assert_int_equal(rtype(f->q, 0, 0, &v), 7);
	assert_int_equal(v, 4);
	assert_int_equal(rtype(f->q, 0, 0, &v), -ENOMSG);
	rm(f);
}

static void
t_fifo_wrap(void **s)
{
	/* Many laps of a small pool, with a message left behind. */
	struct fx *f = mk(64, 4096, 4096, 8);
	int v, next = 0, sent = 0;

	assert_int_equal(prim_msgq_send(f->q, 99, &sent, sizeof(sent), 0), 0);
	for (int lap = 0; lap < 1000; lap++) {
		int k = lap % 7;

		for (int i = 0; i < k; i++, sent++)
			assert_int_equal(prim_msgq_send(f->q, 1 + sent % 1,
							&sent, sizeof(sent),
							0), 0);
		for (int i = 0; i < k; i++, next++) {
			long t = rtype(f->q, -50, 0, &v);

			assert_int_equal(t, 1);
			assert_int_equal(v, next);
		}
	}
	assert_int_equal(rtype(f->q, 0, 0, &v), 99);
	assert_int_equal(rtype(f->q, 0, 0, &v), -ENOMSG);
	/* Typed receives across laps with an old message in front. */
	assert_int_equal(prim_msgq_send(f->q, 50, &v, sizeof(v), 0), 0);
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(prim_msgq_send(f->q, 1 + i % 4, &i, sizeof(i),
						0), 0);
		assert_int_equal(rtype(f->q, 1 + i % 4, 0, &v), 1 + i % 4);
		assert_int_equal(v, i);
	}
	assert_int_equal(rtype(f->q, 0, 0, &v), 50);
	rm(f);
}

static void
t_timed(void **s)
{
	struct fx *f = mk(64, 10, 10, 16);
	struct timespec d;
	char buf[64] = { 0 };

	deadline_in(&d, 30);
	assert_int_equal(prim_msgq_recv_timed(f->q, buf, 64, 0, 0, NULL, &d),
			 -ETIMEDOUT);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 10, 0), 0);
	deadline_in(&d, 30);
	assert_int_equal(prim_msgq_send_timed(f->q, 1, buf, 1, 0, &d),
			 -ETIMEDOUT);
	deadline_in(&d, 30);
	assert_int_equal(prim_msgq_recv_timed(f->q, buf, 64, 2, 0, NULL, &d),
			 -ETIMEDOUT);
	assert_int_equal(prim_msgq_recv_timed(f->q, buf, 64, 1, 0, NULL, &d),
			 10);
	rm(f);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

static void
t_eintr(void **s)
{
	struct fx *f = mk(64, 10, 10, 16);
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { .it_value = { .tv_usec = 20000 } };
	char buf[64] = { 0 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, NULL), -EINTR);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 10, 0), 0);
	setitimer(ITIMER_REAL, &it, NULL);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), -EINTR);
	signal(SIGALRM, SIG_DFL);
	rm(f);
}

static int
child_status(pid_t p)
{
	int st;

	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void
t_eidrm(void **s)
{
	struct fx *f = mk(64, 10, 10, 16);
	char buf[64] = { 0 };
	pid_t r, w;

	r = fork();
	if (r == 0)
		_exit(prim_msgq_recv(f->q, buf, 64, 5, 0, NULL) == -EIDRM ? 0
									  : 1);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 10, 0), 0);
	w = fork();
	if (w == 0)
		_exit(prim_msgq_send(f->q, 1, buf, 10, 0) == -EIDRM ? 0 : 1);
	usleep(50000);
	assert_int_equal(prim_msgq_remove(f->q), 0);
	assert_int_equal(child_status(r), 0);
	assert_int_equal(child_status(w), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), -EIDRM);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, NULL), -EIDRM);
	assert_int_equal(prim_msgq_remove(f->q), -EIDRM);
	prim_msgq_close(f->q);
	assert_int_equal(prim_msgq_open(f->mem, f->len, &f->q), -EIDRM);
	munmap(f->mem, f->len);
}

static void
t_wakeups(void **s)
{
	struct fx *f = mk(64, 8, 64, 16);
	char buf[64] = { 0 };
	pid_t r, w;
	long type;

	/* A typed receiver woken by its type only. */
	r = fork();
	if (r == 0) {
		long t = 0;
		ssize_t n = prim_msgq_recv(f->q, buf, 64, 9, 0, &t);

		_exit(n == 3 && t == 9 ? 0 : 1);
	}
	usleep(20000);
	assert_int_equal(prim_msgq_send(f->q, 4, buf, 1, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 9, buf, 3, 0), 0);
	assert_int_equal(child_status(r), 0);
	/* A blocked sender woken by a receive, then by raising qbytes. */
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 7, 0), 0);
	w = fork();
	if (w == 0)
		_exit(prim_msgq_send(f->q, 2, buf, 4, 0) == 0 &&
				      prim_msgq_send(f->q, 3, buf, 30, 0) == 0
			      ? 0
			      : 1);
	usleep(20000);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 4, 0, &type), 1);
	usleep(20000);
	assert_int_equal(prim_msgq_set_qbytes(f->q, 64), 0);
	assert_int_equal(child_status(w), 0);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, &type), 7);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, &type), 4);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, &type), 30);
	rm(f);
}

static void
t_qbytes(void **s)
{
	struct fx *f = mk(64, 100, 200, 16);
	struct prim_msgq_stat st;
	char buf[64] = { 0 };

	assert_int_equal(prim_msgq_set_qbytes(f->q, 201), -EINVAL);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 60, 0), 0);
	assert_int_equal(prim_msgq_set_qbytes(f->q, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 0, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	assert_int_equal(prim_msgq_stat(f->q, &st), 0);
	assert_int_equal(st.qbytes, 0);
	assert_int_equal(st.qnum, 1);
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0, 0, NULL), 60);
	assert_int_equal(prim_msgq_set_qbytes(f->q, 200), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(prim_msgq_send(f->q, 1, buf, 64, 0), 0);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 9, PRIM_IPC_NOWAIT),
			 -EAGAIN);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 8, PRIM_IPC_NOWAIT), 0);
	rm(f);
}

static void
t_batch(void **s)
{
	struct fx *f = mk(64, 20, 20, 16);
	char a[4] = "abc", b[8] = "defghij", c[16] = "0123456789";
	char o1[8], o2[8], o3[8];
	struct prim_msgq_msg in[3] = { { 1, a, 3 }, { 2, b, 7 },
				       { 3, c, 11 } };
	struct prim_msgq_msg out[3] = { { 0, o1, 8 }, { 0, o2, 8 },
					{ 0, o3, 8 } };

	/* The third does not fit (3 + 7 + 11 > 20). */
	assert_int_equal(prim_msgq_send_batch(f->q, in, 3, 0, NULL), 2);
	assert_int_equal(prim_msgq_recv_batch(f->q, out, 3, 0, 0, NULL), 2);
	assert_int_equal(out[0].type, 1);
	assert_int_equal(out[0].len, 3);
	assert_int_equal(out[1].type, 2);
	assert_int_equal(out[1].len, 7);
	assert_memory_equal(o2, "defghij", 7);
	assert_int_equal(prim_msgq_recv_batch(f->q, out, 3, 0, PRIM_IPC_NOWAIT,
					      NULL), -ENOMSG);
	rm(f);
}

/* The ring of 32-byte slots, on the first page after the tags. */
static uint64_t *
slot_state(struct fx *f, uint64_t x)
{
	uint64_t off = (OFF_TAGS + 8 * (uint64_t)f->attr.nslots + 4095) &
		       ~(uint64_t)4095;

	return (uint64_t *)((char *)f->mem + off + x * 32);
}

/* A slot's state word: the sequence is stored plus one. */
static uint64_t
mkst(uint64_t seq, uint32_t pid, uint32_t st)
{
	return ((seq + 1) & ((1ULL << 39) - 1)) << 25 | (uint64_t)pid << 3 | st;
}

static void
t_reap_receiver(void **s)
{
	struct fx *f = mk(64, 0, 0, 8);
	pid_t dead = dead_pid();
	uint64_t *st = slot_state(f, 0);
	int v = 42, o = 0;
	long type;

	assert_int_equal(prim_msgq_send(f->q, 3, &v, sizeof(v), 0), 0);
	v = 43;
	assert_int_equal(prim_msgq_send(f->q, 3, &v, sizeof(v), 0), 0);
	/* A receiver that claimed the first message and died. */
	assert_int_equal(*st & 7, 2);
	*st = (*st & ~(uint64_t)((1u << 25) - 1)) | (uint64_t)dead << 3 | 3;
	assert_int_equal(prim_msgq_recv(f->q, &o, 4, 0, PRIM_IPC_NOWAIT,
					&type), 4);
	assert_int_equal(o, 43);
	assert_int_equal(prim_msgq_recv(f->q, &o, 4, 0, PRIM_IPC_NOWAIT,
					&type), -ENOMSG);
	assert_int_equal(prim_msgq_reap(f->q, dead), 1);
	assert_int_equal(prim_msgq_reap(f->q, dead), 0);
	assert_int_equal(prim_msgq_recv(f->q, &o, 4, 3, PRIM_IPC_NOWAIT,
					&type), 4);
	assert_int_equal(o, 42);
	rm(f);
}

static void
t_reap_sender(void **s)
{
	struct fx *f = mk(64, 0, 0, 8);
	pid_t dead = dead_pid();
	uint64_t *tail = (uint64_t *)((char *)f->mem + OFF_TAIL), p;
	struct prim_msgq_stat sst;
	int v = 1, o;
	long type;

	/* A sender that took ticket p, claimed its slot and died writing. */
	p = (*tail)++;
	*slot_state(f, p % 8) = mkst(p, (uint32_t)dead, 1);
	assert_int_equal(prim_msgq_recv(f->q, &o, 4, 0, PRIM_IPC_NOWAIT,
					&type), -ENOMSG);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(prim_msgq_send(f->q, 1, &i, sizeof(i), 0), 0);
		assert_int_equal(prim_msgq_recv(f->q, &o, 4, 0, 0, &type), 4);
		assert_int_equal(o, i);
	}
	assert_int_equal(prim_msgq_stat(f->q, &sst), 0);
	assert_int_equal(sst.qnum, 0);
	assert_int_equal(prim_msgq_reap(f->q, dead), 1);
	assert_int_equal(*slot_state(f, p % 8) & 7, 0);
	/* A sender that took a ticket and died before claiming. */
	p = (*tail)++;
	assert_int_equal(prim_msgq_send(f->q, 1, &v, sizeof(v), 0), 0);
	assert_int_equal(prim_msgq_recv(f->q, &o, 4, 1, 0, &type), 4);
	assert_int_equal(prim_msgq_reap(f->q, dead), 0);
	rm(f);
}

/* A sleeper that died leaves the may-sleep bit: one wake-up clears it. */
static void
t_wake_bit(void **s)
{
	struct fx *f = mk(64, 0, 0, 8);
	uint32_t *any = (uint32_t *)((char *)f->mem + OFF_ANY);
	char buf[64] = { 0 };
	uint32_t w0;

	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), 0);
	assert_int_equal(*any & 1, 0);
	*any |= 1;
	w0 = *any;
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), 0);
	assert_int_equal(*any & 1, 0);
	assert_int_equal(*any, (w0 + 2) & ~1u);
	/* No sleeper: the word is left alone. */
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), 0);
	assert_int_equal(*any, (w0 + 2) & ~1u);
	rm(f);
}

/* The default ring: room for qbytes_max messages twice over, a power of
 * 2, at least 16, at most 32768. */
static void
t_default_pool(void **s)
{
	struct prim_msgq_attr a = { .msgmax = 64, .qbytes = 1024 };
	struct prim_msgq_attr b = { .msgmax = 64, .qbytes = 1024,
				    .nslots = 2048 };

	assert_int_equal(prim_msgq_size(&a), prim_msgq_size(&b));
	a.qbytes = b.qbytes = 5;
	b.nslots = 16;
	assert_int_equal(prim_msgq_size(&a), prim_msgq_size(&b));
	a.qbytes = b.qbytes = 1 << 20;
	b.nslots = 32768;
	assert_int_equal(prim_msgq_size(&a), prim_msgq_size(&b));
	b.nslots = 32769;
	assert_int_equal(prim_msgq_size(&b), 0);
}

/*
 * Typed receives over many wraps of a small pool, with other types in
 * between and taken out of order: each type comes out in FIFO order.
 */
static void
t_typed_wrap(void **s)
{
	struct fx *f = mk(16, 16 * 6, 16 * 6, 6);
	uint32_t next_in[4] = { 0 }, next_out[4] = { 0 };
	uint32_t v;
	long type;

	for (int round = 0; round < 500; round++) {
		for (long t = 1; t <= 3; t++) {
			v = next_in[t]++;
			if (prim_msgq_send(f->q, t, &v, sizeof(v),
					   PRIM_IPC_NOWAIT) != 0)
				next_in[t]--;
		}
		/* Take type 3 first, then 1, leave 2 to pile up a little. */
		for (long t = 3; t >= 1; t -= 2) {
			while (prim_msgq_recv(f->q, &v, sizeof(v), t,
					      PRIM_IPC_NOWAIT, &type) == 4) {
				assert_int_equal(type, t);
				assert_int_equal(v, next_out[t]++);
			}
		}
		if (round % 3 == 0)
			while (prim_msgq_recv(f->q, &v, sizeof(v), 2,
					      PRIM_IPC_NOWAIT, &type) == 4)
				assert_int_equal(v, next_out[2]++);
	}
	for (long t = 1; t <= 3; t++) {
		while (prim_msgq_recv(f->q, &v, sizeof(v), t, PRIM_IPC_NOWAIT,
				      &type) == 4)
			assert_int_equal(v, next_out[t]++);
		assert_int_equal(next_out[t], next_in[t]);
		assert_true(next_in[t] > 300);
	}
	rm(f);
}

static void
t_corrupt(void **s)
{
	struct fx *f = mk(64, 0, 0, 8);
	struct prim_msgq *q2;
	uint32_t *magic = f->mem;
	uint64_t *acct = (uint64_t *)((char *)f->mem + 192);
	char buf[64] = { 0 };

	assert_int_equal(prim_msgq_open(f->mem, f->len - 64, &q2), -EINVAL);
	*magic ^= 1;
	assert_int_equal(prim_msgq_open(f->mem, f->len, &q2), -EINVAL);
	*magic ^= 1;
	/* Geometry that does not match the size. */
	((uint32_t *)((char *)f->mem + 64))[1] = 60000;
	assert_int_equal(prim_msgq_open(f->mem, f->len, &q2), -EINVAL);
	((uint32_t *)((char *)f->mem + 64))[1] = 8;
	/* A pend naming a slot that does not exist: damaged, for good. */
	*acct = (uint64_t)1000 << 48;
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), -ENOTRECOVERABLE);
	*acct = 0;
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), -ENOTRECOVERABLE);
	assert_int_equal(prim_msgq_open(f->mem, f->len, &q2), -ENOTRECOVERABLE);
	/* It can still be removed. */
	assert_int_equal(prim_msgq_remove(f->q), 0);
	rm(f);
	/* A length beyond msgmax in a READY slot. */
	f = mk(64, 0, 0, 8);
	assert_int_equal(prim_msgq_send(f->q, 1, buf, 1, 0), 0);
	for (uint64_t x = 0; x < 8; x++)
		if ((*slot_state(f, x) & 7) == 2)
			((uint32_t *)slot_state(f, x))[4] = 100000;
	assert_int_equal(prim_msgq_recv(f->q, buf, 64, 0,
					PRIM_IPC_NOWAIT | PRIM_MSG_NOERROR,
					NULL), -ENOTRECOVERABLE);
	assert_int_equal(prim_msgq_check(f->q), -ENOTRECOVERABLE);
	rm(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_basic),
		cmocka_unit_test(t_einval),
		cmocka_unit_test(t_copy),
		cmocka_unit_test(t_copy_race),
		cmocka_unit_test(t_fit_rule),
		cmocka_unit_test(t_enomsg_e2big),
		cmocka_unit_test(t_types),
		cmocka_unit_test(t_fifo_wrap),
		cmocka_unit_test(t_timed),
		cmocka_unit_test(t_eintr),
		cmocka_unit_test(t_eidrm),
		cmocka_unit_test(t_wakeups),
		cmocka_unit_test(t_qbytes),
		cmocka_unit_test(t_batch),
		cmocka_unit_test(t_reap_receiver),
		cmocka_unit_test(t_reap_sender),
		cmocka_unit_test(t_corrupt),
		cmocka_unit_test(t_wake_bit),
		cmocka_unit_test(t_default_pool),
		cmocka_unit_test(t_typed_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
