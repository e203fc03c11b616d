/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker client: one SOCK_SEQPACKET connection per process to the
 * broker of this IPC namespace (see broker/proto.h), used only by the rare
 * control calls (*get, IPC_SET, IPC_RMID, *_INFO, *_STAT by index) and by
 * a cache miss. Data-path calls never come here once a process is
 * registered.
 *
 * Concurrency: one mutex serialises requests; a request holds it from send
 * to reply, so replies can never be mixed up. The connection is made again
 * after fork (in the child), after an error, after every credential change
 * libsysv sees (sysv__cred_gen, creds.c) and whenever the effective uid or
 * gid differs from the one it was made with (a raw setuid system call):
 * the broker trusts only SO_PEERCRED, read at connect time. The fork child
 * handler only forgets state; it takes no lock. The socket is SOCK_CLOEXEC.
 *
 * The socket is found and judged by primd__connect (broker/sockpath.c): a
 * directory someone else controls, or a broker that is neither root nor
 * this process's effective uid, is refused at once, without waiting.
 *
 * When no broker answers within PRIM_BROKER_WAIT milliseconds (default
 * 3000), control calls fail with ENOSYS, what a kernel without System V
 * IPC says. Data-path calls (semop, msgsnd, msgrcv, GETVAL, IPC_STAT…) on
 * ids the process has mapped never wait for the broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockpath.h"
#include "sysv_int.h"

#define WAIT_DEFAULT_MS 3000
#define SOCKMAX		sizeof(((struct sockaddr_un *)0)->sun_path)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int bfd = -1; /* under mu */
static pid_t bpid;   /* process the connection belongs to */
static uid_t beuid;
static gid_t begid;
static uint32_t bgen; /* sysv__cred_gen when it was made */
static uint32_t seq;
static struct primd_info limits; /* from HELLO, under mu */
static _Atomic int have_limits;	 /* limits valid (kept across fork) */
static _Atomic int registered;	 /* HELLO done by this process */
/*
 * The registry, mapped read-only (HELLO names it). A mapping is never
 * detached: another thread may be reading it; a broker that made a new
 * registry (its state file was lost) gets a new mapping, the old one is
 * left. Kept across fork (the child inherits the attach).
 */
static const struct primd_reg_shm *_Atomic reg;
static int reg_shmid = -1; /* under mu */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long
wait_ms(void)
{
	const char *s = getenv("PRIM_BROKER_WAIT");
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return WAIT_DEFAULT_MS;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 0)
		return WAIT_DEFAULT_MS;
	return v > 86400000L ? 86400000L : v;
}

static void
disconnect(void)
{
	/* Only close a descriptor this process made: after fork the child's
	 * copy is closed by the fork handler already. */
	if (bfd >= 0)
		close(bfd);
	bfd = -1;
	atomic_store(&registered, 0);
}

/*
 * Every exchange with the broker has a deadline, under mu: a broker that is
 * stopped (SIGSTOP), wedged or overwhelmed must not hang its clients, and
 * connect() succeeds on its listening socket even while it is stopped.
 * arm() gives the exchanges of one call PRIM_BROKER_WAIT ms, at least a
 * second (a creation may take a while on a loaded machine); past it, the
 * connection is dropped, as for a broker that died, and the call fails
 * with ENOSYS. A request it may still carry out later (a creation, a
 * removal, a message sent or taken, a proxied semop) is then the caller's
 * to check, as after a crash: it is never sent twice (retryable()).
 */
static long xdeadline;
/* The least arm() gives; sysv__registered lowers it for its one try
 * (under mu). */
static long arm_floor = 1000;

static void
arm(long wait)
{
	xdeadline = now_ms() + (wait < arm_floor ? arm_floor : wait);
}

/* Wait until bfd is ready for events, within the deadline. 0 or -1. */
static int
ready(short events)
{
	for (;;) {
		struct pollfd p = { .fd = bfd, .events = events };
		long left = xdeadline - now_ms();
		int n;

		if (left <= 0)
			return -1;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* One exchange on the current connection, with trailers (sysv__call_x).
 * 0, or -1 when it is broken or the broker did not answer in time. */
static int
exchange_x(struct primd_req *req, const void *tx, size_t txlen,
	   struct primd_rep *rep, void *rx, size_t rxcap, size_t *rxlen)
{
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;

	req->magic = PRIMD_MAGIC;
	req->version = PRIMD_VERSION;
	req->seq = ++seq;
	iov[0].iov_base = req;
	iov[0].iov_len = sizeof(*req);
	iov[1].iov_base = (void *)(uintptr_t)tx;
	iov[1].iov_len = txlen;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = txlen ? 2 : 1;
	for (;;) {
		n = sendmsg(bfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN &&
			       errno != EWOULDBLOCK))
			break;
		if (errno != EINTR && ready(POLLOUT) != 0)
			return -1;
	}
	if (n != (ssize_t)(sizeof(*req) + txlen))
		return -1;
	iov[0].iov_base = rep;
	iov[0].iov_len = sizeof(*rep);
	iov[1].iov_base = rx;
	iov[1].iov_len = rxcap;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = rxcap ? 2 : 1;
	for (;;) {
		if (ready(POLLIN) != 0)
			return -1;
		n = recvmsg(bfd, &mh, MSG_DONTWAIT);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN &&
			       errno != EWOULDBLOCK))
			break;
	}
	if (n < (ssize_t)sizeof(*rep) || (mh.msg_flags & MSG_TRUNC) ||
	    rep->magic != PRIMD_MAGIC || rep->version != PRIMD_VERSION ||
	    rep->seq != req->seq || rep->op != req->op)
		return -1;
	*rxlen = (size_t)n - sizeof(*rep);
	return 0;
}

static int
exchange(struct primd_req *req, struct primd_rep *rep)
{
	size_t extra;

	return exchange_x(req, NULL, 0, rep, NULL, 0, &extra);
}

/*
 * Map the registry the HELLO reply names, read-only, unless it is the one
 * mapped already. Checked as the broker's: the size it says, a segment no
 * one but its owner may write. Called with mu held.
 */
static void
map_registry(const struct primd_rep *rep)
{
	struct shmid_ds ds;
	const struct primd_reg_shm *r;

	if (rep->shmid < 0 || rep->shmid == reg_shmid ||
	    rep->seg_size != sizeof(struct primd_reg_shm))
		return;
	if (syscall(SYS_shmctl, rep->shmid, IPC_STAT, &ds) != 0 ||
	    ds.shm_segsz != sizeof(struct primd_reg_shm) ||
	    (ds.shm_perm.mode & 0022) != 0)
		return;
	r = (const void *)syscall(SYS_shmat, rep->shmid, NULL, SHM_RDONLY);
	if (r == (const void *)-1)
		return;
	if (ck_pr_load_32(&r->magic) != PRIMD_REG_MAGIC ||
	    r->version != PRIMD_REG_VERSION || r->size != sizeof(*r)) {
		syscall(SYS_shmdt, r);
		return;
	}
	reg_shmid = rep->shmid;
	atomic_store_explicit(&reg, r, memory_order_release);
}

const struct primd_ent_shm *
sysv__ent(int type, int id)
{
	const struct primd_reg_shm *r =
	    atomic_load_explicit(&reg, memory_order_acquire);

	if (r == NULL || (type != PRIMD_SEM && type != PRIMD_MSG) || id < 0)
		return NULL;
	return &r->ent[type - 1][(unsigned)id % PRIMD_NIDX];
}

int
sysv__ent_hi(int type)
{
	const struct primd_reg_shm *r =
	    atomic_load_explicit(&reg, memory_order_acquire);

	if (r == NULL || (type != PRIMD_SEM && type != PRIMD_MSG))
		return -1;
	return primd_reg_ent_hi(r, type - 1);
}

int
sysv__reg_shmid(void)
{
	int s;

	pthread_mutex_lock(&mu);
	s = atomic_load_explicit(&reg, memory_order_acquire) != NULL
		? reg_shmid
		: -1;
	pthread_mutex_unlock(&mu);
	return s;
}

int
sysv__judge(int type, int id, int r)
{
	struct primd_req req;
	struct primd_rep rep;

	const struct primd_ent_shm *e = sysv__ent(type, id);

	if (r != -ENOTRECOVERABLE ||
	    (e != NULL && ck_pr_load_32(&e->state) == PRIMD_ENT_DAMAGED))
		return r; /* not damage, or the broker knows already */
	memset(&req, 0, sizeof(req));
	req.op = PRIMD_REPORT;
	req.type = (uint16_t)type;
	req.id = id;
	(void)sysv__call(&req, &rep);
	return r;
}

/* Connect and say HELLO, waiting for a broker up to PRIM_BROKER_WAIT ms.
 * Called with mu held. Returns 0 or -ENOSYS. */
static int
connect_broker(long wait)
{
	long deadline = now_ms() + wait, pause = 5;
	char path[SOCKMAX];
	struct primd_req req;
	struct primd_rep rep;
	int saved = errno, fd;

	disconnect();
	for (;;) {
		/* Read before connecting: a change after this is seen by
		 * the next call, which connects again. */
		uint32_t gen = sysv__gen();
		uid_t euid = geteuid();
		gid_t egid = getegid();

		if (primd__sock_path(path, sizeof(path), 0) != 0)
			break;
		/* A full listen backlog (a stopped broker) would block
		 * connect() forever, with mu held: within the wait. */
		long cleft = deadline - now_ms();
		fd = primd__connect(path, NULL, 0, cleft > 0 ? cleft : 0);
		if (fd >= 0) {
			bfd = fd;
			bpid = getpid();
			beuid = euid;
			begid = egid;
			bgen = gen;
			memset(&req, 0, sizeof(req));
			req.op = PRIMD_HELLO;
			if (exchange(&req, &rep) == 0 && rep.err == 0) {
				map_registry(&rep);
				limits = rep.info;
				atomic_store(&have_limits, 1);
				atomic_store(&registered, 1);
				errno = saved;
				return 0;
			}
			disconnect();
		} else if (fd == -EPERM || fd == -EACCES) {
			break; /* refused, or out of reach: waiting is vain */
		}
		long left = deadline - now_ms();
		if (left <= 0)
			break;
		if (pause > left)
			pause = left;
		struct timespec ts = {pause / 1000, (pause % 1000) * 1000000};
		nanosleep(&ts, NULL);
		if (pause < 100)
			pause *= 2;
	}
	errno = saved;
	return -ENOSYS;
}

/*
 * Called with mu held: a connection usable by this process, as it is now,
 * waiting up to wait ms for a broker to answer.
 */
static int
ensure_within(long wait)
{
	struct pollfd p = { .fd = bfd, .events = POLLIN | POLLRDHUP };

	/*
	 * A broker that died (and maybe came back) left this connection
	 * hung up: notice it before sending, so that a request which cannot
	 * be retried (RMID, a creating GET) goes to the new broker instead
	 * of failing. Nothing is ever pending on a healthy connection.
	 */
	if (bfd >= 0 && bpid == getpid() && bgen == sysv__gen() &&
	    beuid == geteuid() && begid == getegid() && poll(&p, 1, 0) == 0)
		return 0;
	arm(wait); /* the HELLO exchanges of the connection, all together */
	return connect_broker(wait);
}

static int
ensure(void)
{
	return ensure_within(wait_ms());
}

/*
 * May a request be sent again after the connection broke mid-way, or the
 * broker did not answer in time? Not one that does something twice when
 * done twice: the broker still carries out what it received on a
 * connection the client dropped, so a slow broker did the first one too.
 * So no creation, removal, message sent or taken, nor semop (the broker
 * does it for a caller without a read-write mapping; even one that only
 * waits for zero, to keep the rule simple). They fail with ENOSYS.
 */
static int
retryable(const struct primd_req *req)
{
	if (req->op == PRIMD_RMID || req->op == PRIMD_MSGRCV ||
	    req->op == PRIMD_MSGSND || req->op == PRIMD_SEMOP)
		return 0;
	if (req->op == PRIMD_GET &&
	    (req->key == 0 || ((req->flags & 01000) && (req->flags & 02000))))
		return 0; /* IPC_PRIVATE, or IPC_CREAT | IPC_EXCL */
	return 1;
}

int
sysv__call_x(struct primd_req *req, const void *tx, size_t txlen,
	     struct primd_rep *rep, void *rx, size_t rxcap, size_t *rxlen)
{
	int saved = errno, r = -ENOSYS;
	size_t extra = 0;

	pthread_mutex_lock(&mu);
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((r = ensure()) != 0)
			break;
		arm(wait_ms());
		if (exchange_x(req, tx, txlen, rep, rx, rxcap, &extra) == 0) {
			r = 0;
			break;
		}
		disconnect();
		r = -ENOSYS;
		if (!retryable(req))
			break;
	}
	pthread_mutex_unlock(&mu);
	if (rxlen != NULL)
		*rxlen = extra;
	errno = saved;
	return r;
}

int
sysv__info(int type, int cmd, struct primd_info *info)
{
	struct primd_req req;
	struct primd_rep rep;
	int r;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_INFO;
	req.type = (uint16_t)type;
	req.flags = cmd;
	if ((r = sysv__call(&req, &rep)) != 0)
		return r;
	if (rep.err != 0)
		return -rep.err;
	*info = rep.info;
	return 0;
}

int
sysv__call(struct primd_req *req, struct primd_rep *rep)
{
	size_t extra = 0;
	int r = sysv__call_x(req, NULL, 0, rep, NULL, 0, &extra);

	/* Only PRIMD_MSGRCV replies have a trailer. */
	return r == 0 && extra != 0 ? -EPROTO : r;
}

#define POLL_MAX_NS 50000000L /* 50 ms */

int
sysv__poll_sleep(long *delay, const struct timespec *deadline)
{
	struct timespec ts, now;
	long d = *delay;

	if (deadline != NULL) {
		long long left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
		       (deadline->tv_nsec - now.tv_nsec);
		if (left <= 0)
			return -EAGAIN;
		if (left < d)
			d = (long)left;
	}
	ts.tv_sec = d / 1000000000L;
	ts.tv_nsec = d % 1000000000L;
	/* A signal handler ends the sleep: EINTR, as the kernel's waits. */
	if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
		return -EINTR;
	if (*delay < POLL_MAX_NS)
		*delay = *delay * 2 > POLL_MAX_NS ? POLL_MAX_NS : *delay * 2;
	return 0;
}

int
sysv__proxy(struct primd_req *req, const void *tx, size_t txlen, void *rx,
	    size_t rxcap, size_t *rxlen, int wait_err,
	    const struct timespec *deadline)
{
	struct primd_req q = *req;
	struct primd_rep rep;
	long delay = 1000000L; /* 1 ms, doubling to 50 ms */
	int r;

	for (int round = 0;; round++) {
		*req = q; /* sysv__call_x fills in magic, version, seq */
		if ((r = sysv__call_x(req, tx, txlen, &rep, rx, rxcap, rxlen)) !=
		    0)
			return r;
		r = -rep.err;
		if (r == -EIDRM && round == 0)
			return -ENOTRECOVERABLE; /* the broker's word for damaged */
		if (r == -EINVAL && round > 0)
			return -EIDRM; /* removed while we waited */
		if (r == 0 || r != wait_err ||
		    (r == -EAGAIN && !(rep.flags & PRIMD_REP_BLOCKED)))
			return r;
		if ((r = sysv__poll_sleep(&delay, deadline)) != 0)
			return r;
	}
}

/*
 * Before a data-path call: make sure the broker knows this process (it
 * watches pids to undo what a dead one leaves), without ever failing or
 * waiting: data-path calls need no broker, and go on working while it is
 * down (a fork child's first call included). Without an answer, try again
 * at most once a second; a process the broker never heard of is still
 * found through the objects it owns state in when it dies.
 */
static _Atomic long next_try;

int
sysv__registered(void)
{
	int saved;

	if (atomic_load_explicit(&registered, memory_order_acquire))
		return 0;
	if (now_ms() < atomic_load(&next_try))
		return 0;
	saved = errno;
	if (pthread_mutex_trylock(&mu) != 0)
		return 0; /* someone is talking to the broker already */
	/*
	 * A data-path call never waits for the broker: a stopped one still
	 * accepts connections (its backlog), and the HELLO would take the
	 * exchanges' whole second. 200 ms (enough for a broker under valgrind to
	 * register the process), then again a second later.
	 */
	arm_floor = 200;
	if (!atomic_load(&registered) && ensure_within(0) != 0)
		atomic_store(&next_try, now_ms() + 1000);
	arm_floor = 1000;
	pthread_mutex_unlock(&mu);
	errno = saved;
	return 0;
}

const struct primd_info *
sysv__limits(int *err)
{
	int r;

	if (atomic_load_explicit(&have_limits, memory_order_acquire))
		return &limits;
	pthread_mutex_lock(&mu);
	r = atomic_load(&have_limits) ? 0 : ensure();
	pthread_mutex_unlock(&mu);
	if (r != 0) {
		*err = r;
		return NULL;
	}
	return &limits;
}

/*
 * The limits libsysv checks itself, msgsnd's msgmax (EINVAL) and semop's
 * semopm (E2BIG), follow the namespace's sysctls as the broker's do
 * (broker/limits.c), unless the broker was given them on its command line
 * (info.pinned). The fast path makes no system call: it compares with a
 * cached value; a size above it reads /proc/sys/kernel again before
 * failing, so a raise counts at once; and whenever the broker has read
 * another value (it re-reads the sysctls on every creation, IPC_SET and
 * *_INFO and publishes them in the registry it maps read-only), that value
 * replaces the cache, so a lowered limit counts from the next such request
 * by any process of the namespace (libsysv(7), BUGS).
 */
static _Atomic uint32_t sc_msgmax, sc_semopm; /* 0: not read (or unreadable) */
static _Atomic uint32_t sc_msgmax_b, sc_semopm_b; /* the broker's, last seen */

static int
read_sysctl(const char *path, long long *v, int n)
{
	char buf[128], *p, *end;
	ssize_t len;
	int saved = errno, got = 0;
	/* Raw: libsysv may interpose open and read (/proc/sysvipc). */
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		len = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		(void)syscall(SYS_close, fd);
		buf[len > 0 ? len : 0] = '\0';
		for (p = buf; got < n; p = end) {
			v[got] = strtoll(p, &end, 10);
			if (end == p)
				break;
			got++;
		}
	}
	errno = saved;
	return got;
}

static uint32_t
clamp_sysctl(long long v)
{
	return v < 1 ? 1 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void
sysctl_reread(void)
{
	long long v[4];

	if (read_sysctl("/proc/sys/kernel/msgmax", v, 1) == 1)
		atomic_store_explicit(&sc_msgmax, clamp_sysctl(v[0]),
				      memory_order_relaxed);
	if (read_sysctl("/proc/sys/kernel/sem", v, 4) == 4)
		atomic_store_explicit(&sc_semopm, clamp_sysctl(v[2]),
				      memory_order_relaxed);
}

static uint32_t
follow(const struct primd_info *lim, _Atomic uint32_t *cache,
       _Atomic uint32_t *seen, uint32_t pin, uint32_t broker,
       size_t off, uint64_t want)
{
	const struct primd_reg_shm *g =
	    atomic_load_explicit(&reg, memory_order_acquire);
	uint32_t v, b;

	if (lim->pinned & pin)
		return broker;
	if (g != NULL) {
		/* The broker's latest reading (a word it stores whole). */
		b = __atomic_load_n((const uint32_t *)(const void *)((const char *)&g->limits + off),
				    __ATOMIC_RELAXED);
		if (b != atomic_load_explicit(seen, memory_order_relaxed)) {
			atomic_store_explicit(seen, b, memory_order_relaxed);
			atomic_store_explicit(cache, b, memory_order_relaxed);
		}
	}
	v = atomic_load_explicit(cache, memory_order_relaxed);
	if (v == 0 || want > v) {
		sysctl_reread();
		v = atomic_load_explicit(cache, memory_order_relaxed);
	}
	return v != 0 ? v : broker;
}

uint32_t
sysv__msgmax(const struct primd_info *lim, uint64_t want)
{
	return follow(lim, &sc_msgmax, &sc_msgmax_b, PRIMD_PIN_MSGMAX,
		      lim->msgmax, offsetof(struct primd_info, msgmax), want);
}

uint32_t
sysv__semopm(const struct primd_info *lim, uint64_t want)
{
	return follow(lim, &sc_semopm, &sc_semopm_b, PRIMD_PIN_SEMOPM,
		      lim->semopm, offsetof(struct primd_info, semopm), want);
}

void
sysv__broker_atfork_child(void)
{
	/*
	 * The child shares the parent's socket: close its copy, so the two
	 * never read each other's replies, and register again on first use
	 * (the broker watches pids). The mutex may have been held by a
	 * thread that does not exist here: start from a fresh one.
	 */
	if (bfd >= 0)
		close(bfd);
	bfd = -1;
	atomic_store(&registered, 0);
	atomic_store(&next_try, 0);
	pthread_mutex_init(&mu, NULL);
}

/*
 * For wait.c: one request, only if this process (or the parent it was
 * forked from) has had a broker (have_limits), never waiting for the lock
 * a signal handler's own thread may hold (trylock, a few tries over about
 * 2 ms) nor for a broker to come up (a connection is tried once, at once);
 * the exchange itself has PRIM_BROKER_WAIT. 0 with the reply, or -errno:
 * -ENOSYS (no broker, never had one), -EBUSY (the lock stayed busy).
 */
int
sysv__call_quick(struct primd_req *req, struct primd_rep *rep)
{
	int saved = errno, r, tries = 0;

	if (!atomic_load_explicit(&have_limits, memory_order_acquire))
		return -ENOSYS;
	while (pthread_mutex_trylock(&mu) != 0) {
		struct timespec ts = {0, 100000};

		if (++tries > 20) {
			errno = saved;
			return -EBUSY;
		}
		nanosleep(&ts, NULL);
	}
	r = ensure_within(0);
	if (r == 0) {
		size_t extra = 0;

		arm(wait_ms());
		if (exchange_x(req, NULL, 0, rep, NULL, 0, &extra) != 0 ||
		    extra != 0) {
			disconnect();
			r = -ENOSYS;
		}
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}
