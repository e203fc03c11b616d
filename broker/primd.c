/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * primd, the broker of one IPC namespace: resolves keys to objects, checks
 * permissions from kernel credentials, creates and removes the backing
 * segments, watches client processes die (pidfd) and repairs what they
 * left half done. One thread, one epoll loop; it never blocks on a client:
 * sockets are non-blocking and a client that does not read its replies is
 * disconnected. Everything it knows, apart from connections and pidfds, is
 * in the registry segment (registry.c), so it may crash, exit when idle or
 * restart, and the next primd re-adopts every object.
 *
 * Fairness (doc/design.md, "Quotas and fairness"): what one uid may make
 * the broker hold is bounded by quota.c, checked here at accept and when a
 * process is first watched; and the time it gets is bounded here. Ready
 * connections wait in one queue per uid, and the uids with ready
 * connections in one queue of turns: a turn serves one request of the
 * uid's first ready connection, which goes to the back of its uid's queue,
 * and the uid to the back of the turns. A uid with many connections thus
 * gets no more service than a uid with one.
 *
 * Each wake-up accepts at most ACCEPT_PER_WAKE connections, handles at
 * most DEATHS_PER_WAKE process deaths and serves one round of turns (at
 * most SERVE_PER_WAKE receives), then goes back to epoll: epoll is
 * level-triggered, what is left is reported again, and signals, the timer
 * and deaths are never starved. A connection is reported once
 * (EPOLLONESHOT) and re-armed only when a receive finds it empty, so a
 * wake-up sees only what became ready since the last one, and going back
 * to epoll after every round costs little: a request that arrives waits
 * for the round under way, not for every ready connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"
#include "sockpath.h"
#include "quota.h"
#include "registry.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define MAX_CLIENTS  4096
#define MAX_GROUPS   65536
/* Descriptors kept out of the tables' totals: the broker's own (standard
 * streams, lock, epoll, signalfd, timerfd, listener, the reserve) and
 * those it opens for a moment (/proc). */
#define FD_MARGIN    32
#define EXIT_RUNNING 3

/* Work per wake-up of the loop (see the file comment). */
#define ACCEPT_PER_WAKE 64
#define SERVE_PER_WAKE	64
#define DEATHS_PER_WAKE 64 /* each reap walks every object */
/* Every fd in the epoll set: one wake-up sees every ready connection. */
#define MAX_EVENTS (3 + MAX_CLIENTS + PRIMD_NPROCS)

enum { EV_LISTEN, EV_SIGNAL, EV_TIMER, EV_CLIENT, EV_PROC };

struct uidq;

struct client {
	int fd;
	int idx; /* in clients[] */
	int registered;
	int queued;	      /* in its uid's queue of ready connections */
	struct client *qnext; /* that queue */
	struct uidq *uq;      /* its uid's queue */
	struct primd_cred cred;
};

/*
 * One uid with connections: its ready connections, in the order they are
 * served, and its place in the queue of turns. Freed when the uid has no
 * connection left and no turn pending.
 */
struct uidq {
	uid_t uid;
	int nconns;
	int active; /* in the queue of turns, or taking its turn */
	struct client *head, *tail;
	struct uidq *tnext; /* queue of turns */
	struct uidq *hnext; /* hash chain */
};

#define UIDQ_BUCKETS 1024

static struct primd_reg reg;
static struct primd_quota_conf qconf;
static struct client *clients[MAX_CLIENTS];
static int nclients;
static struct uidq *uidqs[UIDQ_BUCKETS];
static struct uidq *turn_head, *turn_tail;
static int nturns; /* uids in the queue of turns */
static int pidfds[PRIMD_NPROCS];
static uid_t proc_uid[PRIMD_NPROCS]; /* charged for slot, while watched */
static int nprocs;
static int epfd = -1;
static int timer_fd = -1;
static int timer_armed;
static long idle_exit; /* seconds, 0: never */

/*
 * One request datagram (the fixed struct and the longest trailer the
 * limits allow, primd__trailer_max, plus one byte to see a longer one),
 * sized at start-up.
 */
static struct primd_req *rxreq;
static unsigned char *rxbuf;
static size_t rxcap;
static unsigned char *txbuf;
static size_t txcap;

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: primd [-s socket] [--idle-exit SECONDS] [--foreground]\n"
	    "             [--semmsl N] [--semmns N] [--semopm N] [--semmni N]\n"
	    "             [--msgmax N] [--msgmnb N] [--msgmni N]\n"
	    "             [--sem-nprocs N] [--sem-nslots N]\n"
	    "             [--msg-qbytes-max N] [--msg-nslots N]\n"
	    "             [--quota-conns N] [--quota-procs N]\n"
	    "             [--quota-objects N] [--quota-bytes N]\n");
}

static uint64_t
ev(int kind, int idx)
{
	return (uint64_t)kind << 32 | (uint32_t)idx;
}

static int
ep_add(int fd, uint32_t events, uint64_t data)
{
	struct epoll_event e = {.events = events, .data.u64 = data};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

/* A connection is reported once, until re-armed (see the file comment). */
#define CLIENT_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLONESHOT)

/* Report connection fd (slot idx) again when it is readable: at once if
 * it already is. */
static int
ep_rearm(int fd, int idx)
{
	struct epoll_event e = {.events = CLIENT_EVENTS,
				.data.u64 = ev(EV_CLIENT, idx)};

	return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
}

/* ------------------------------------------------------------------
 * Limits
 */

static void
default_limits(struct primd_info *l)
{
	l->semmsl = 32000;
	l->semmns = 1024000000;
	l->semopm = 500;
	l->semmni = 32000;
	l->msgmax = 8192;
	l->msgmnb = 16384;
	l->msgmni = 32000;
	primd__limits_read(l); /* the sysctls, read again later (limits.c) */
}

/*
 * The request and reply buffers fit the limits in force: grown when a
 * sysctl raises them (never shrunk), before any object that the larger
 * request could address exists, since every creation refreshes the
 * limits first (serve_one). Returns 0, or -1 if memory ran out (the old
 * buffers stay).
 */
static int
fit_buffers(const struct primd_info *lim)
{
	size_t rx = sizeof(struct primd_req) + primd__trailer_max(lim) + 1;
	size_t tx = sizeof(struct primd_msgrcv_rep) + lim->msgmax;
	unsigned char *p;

	if (rx > rxcap) {
		if ((p = realloc(rxbuf, rx)) == NULL)
			return -1;
		rxbuf = p;
		rxreq = (struct primd_req *)(void *)rxbuf;
		rxcap = rx;
	}
	if (tx > txcap) {
		if ((p = realloc(txbuf, tx)) == NULL)
			return -1;
		txbuf = p;
		txcap = tx;
	}
	return 0;
}

/* Ops that decide by the limits: the sysctls are read again first. */
static int
reads_limits(int op)
{
	return op == PRIMD_HELLO || op == PRIMD_GET || op == PRIMD_SET ||
	       op == PRIMD_INFO || op == PRIMD_SEMOP || op == PRIMD_MSGSND;
}

static int
parse_num(const char *s, const char *opt, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
		fprintf(stderr, "primd: bad value for --%s: %s\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------
 * Log lines a flood could repeat: at most one a second of each kind.
 */

enum { LOG_CONNS, LOG_PROCS, LOG_ACCEPT, LOG_NKINDS };

static int
log_now(int kind)
{
	static time_t last[LOG_NKINDS];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (last[kind] != 0 && ts.tv_sec == last[kind])
		return 0;
	last[kind] = ts.tv_sec;
	return 1;
}

/* ------------------------------------------------------------------
 * Process registration (pidfd)
 *
 * A watched slot (pidfds[slot] >= 0) is charged to proc_uid[slot]
 * (quota.c); a slot that is not watched is dropped from the registry.
 */

static void
forget_proc(int slot)
{
	if (pidfds[slot] >= 0) {
		close(pidfds[slot]); /* also leaves the epoll set */
		pidfds[slot] = -1;
		nprocs--;
		primd__quota_proc_release(proc_uid[slot]);
	}
	primd__proc_drop(&reg, slot);
}

/* The effective uid of pid, from /proc; uid 0 (charged to no quota, only
 * to the total) if it cannot be read: the process is exiting. */
static uid_t
proc_euid(pid_t pid)
{
	char path[64], line[256];
	unsigned long r, e;
	uid_t uid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %lu %lu", &r, &e) == 2) {
			uid = (uid_t)e;
			break;
		}
	fclose(f);
	return uid;
}

/* Start watching pid (start time start) in registry slot `slot`, charged
 * to uid (the caller has admitted or charged it). */
static int
watch(int slot, pid_t pid, uint64_t start, uid_t uid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	/* The pid may have been reused since start was read. */
	if (primd__proc_start(pid) != start) {
		close(fd);
		return -ESRCH;
	}
	if (ep_add(fd, EPOLLIN, ev(EV_PROC, slot)) != 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	pidfds[slot] = fd;
	proc_uid[slot] = uid;
	nprocs++;
	return 0;
}

/*
 * Register a client's process, once per process (exec keeps the pid),
 * charged to uid. Over its quota it is not watched: if it owns state in
 * an object, the owner sweep (sweep_owners) finds it and reaps it after
 * its death.
 */
static void
register_proc(pid_t pid, uid_t uid)
{
	uint64_t start;
	int slot, rc;

	if (pid <= 0)
		return;
	start = primd__proc_start(pid);
	if (start == 0)
		return; /* already gone, or not in our pid namespace */
	slot = primd__proc_find(&reg, pid);
	if (slot >= 0) {
		if (reg.shm->proc[slot].start == start && pidfds[slot] >= 0)
			return;
		/* Its previous owner died and the pid came back. */
		forget_proc(slot);
		primd__reg_reap(&reg, pid);
	}
	if (primd__quota_proc_admit(uid) != 0) {
		if (log_now(LOG_PROCS))
			fprintf(stderr,
				"primd: uid %u is at its process quota, "
				"pid %d is not watched\n",
				(unsigned)uid, (int)pid);
		return;
	}
	slot = primd__proc_add(&reg, pid, start);
	if (slot < 0) {
		primd__quota_proc_release(uid);
		fprintf(stderr,
			"primd: process table full, pid %d is not "
			"watched\n",
			(int)pid);
		return;
	}
	rc = watch(slot, pid, start, uid);
	if (rc != 0) {
		primd__quota_proc_release(uid);
		primd__proc_drop(&reg, slot);
		if (rc == -ESRCH)
			primd__reg_reap(&reg, pid);
		else
			fprintf(stderr, "primd: pidfd_open(%d): %s\n", (int)pid,
				strerror(-rc));
	}
}

/*
 * A pidfd is readable once its process has exited. Checked again because
 * an event may be stale: its slot freed and reused earlier in the batch.
 */
static int
exited(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP));
}

static void
proc_died(int slot)
{
	pid_t pid = reg.shm->proc[slot].pid;

	forget_proc(slot);
	if (pid > 0)
		primd__reg_reap(&reg, pid);
}

/* pid is gone, or a zombie (dead, its pid held until it is waited for). */
static int
proc_dead(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1; /* reaped meanwhile */
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Reaps of unwatched pids that PRIMD_REAPED may ask for, per second. */
#define REAPED_UNWATCHED_PER_S 128

/*
 * PRIMD_REAPED (proto.h): a client's wait() said pid is dead. Reap it now,
 * so that its SEM_UNDO adjustments are applied before that wait returns,
 * as the kernel's are at exit, instead of when its pidfd event comes round
 * (doc/design.md, "Undo by the time wait returns"). At most one reap per
 * request, and only of the dead: a watched pid whose pidfd says it exited
 * (the reap its event would do; the event never comes, the pidfd is
 * closed), or an unwatched pid (a process that never registered) that
 * /proc shows gone or a zombie, at most REAPED_UNWATCHED_PER_S a second:
 * each walks every object, and made-up pids are free to send.
 */
static int
reaped(struct primd_reg *r, pid_t pid)
{
	static struct timespec window;
	static int unwatched;
	struct timespec now;
	int slot = primd__proc_find(r, pid);

	if (slot >= 0 && pidfds[slot] >= 0) {
		if (!exited(pidfds[slot]))
			return ESRCH; /* alive */
		proc_died(slot);
		return 0;
	}
	/*
	 * A registered process no pidfd watches (the kernel or valgrind has
	 * no pidfd_open): it leaves the table once reaped, so a request
	 * reaps it at most once, unlimited. A pid the broker never heard of
	 * costs a reap of every object: at most REAPED_UNWATCHED_PER_S.
	 */
	if (slot < 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec != window.tv_sec) {
			window = now;
			unwatched = 0;
		}
		if (unwatched >= REAPED_UNWATCHED_PER_S)
			return ESRCH;
	}
	if (!proc_dead(pid))
		return ESRCH;
	if (slot < 0)
		unwatched++;
	else
		primd__proc_drop(r, slot); /* an entry no pidfd watched */
	primd__reg_reap(r, pid);
	return 0;
}

/*
 * After adoption: watch the processes the last broker watched, charged
 * without a check (they were admitted then; a smaller quota now only
 * refuses new ones).
 */
static void
adopt_procs(void)
{
	for (int i = 0; i < primd_reg_proc_hi(reg.shm); i++) {
		pid_t pid = reg.shm->proc[i].pid;
		uint64_t start = reg.shm->proc[i].start;
		uid_t uid = pid > 0 ? proc_euid(pid) : 0;

		if (pid == 0)
			continue;
		if (pid < 0 || watch(i, pid, start, uid) != 0) {
			/* Died (or the pid is another process's now). */
			primd__proc_drop(&reg, i);
			if (pid > 0)
				primd__reg_reap(&reg, pid);
			continue;
		}
		primd__quota_proc_charge(uid);
	}
}

/*
 * A process that owns state in object [t][i] but that this broker does not
 * watch (a fork child whose first call found no broker running, so it
 * never registered, or a process over its quota): watch it if it lives
 * and may be, reap it in that object if it is dead. Only there: the pid is
 * what a writer of the object wrote, and a dead process's state in other
 * objects is found when they are swept (a watched process's death reaps
 * it everywhere). Returns the work done (primd__reg_owners).
 */
static int
sweep_one(int t, int i, pid_t pid)
{
	int slot = primd__proc_find(&reg, pid);

	if (pid <= 0 || (slot >= 0 && pidfds[slot] >= 0))
		return 0;
	if (primd__proc_start(pid) == 0)
		primd__reg_reap_in(&reg, t, i, pid);
	else
		register_proc(pid, proc_euid(pid));
	return 1;
}

/* Every SWEEP_MS, and once after adoption: dead owners, then queue
 * memory (trim.c). */
#define SWEEP_MS 2000

/* A share of the sweep (bounded), from where the last one stopped. */
static void
sweep_owners(void)
{
	static int cursor, trim_cursor;

	(void)primd__reg_owners(&reg, sweep_one, &cursor);
	(void)primd__reg_trim(&reg, &trim_cursor);
}

/* ------------------------------------------------------------------
 * Queues of turns (see the file comment)
 */

static struct uidq *
uidq_get(uid_t uid)
{
	struct uidq **b = &uidqs[(uint32_t)uid % UIDQ_BUCKETS];
	struct uidq *q;

	for (q = *b; q != NULL; q = q->hnext)
		if (q->uid == uid)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->uid = uid;
	q->hnext = *b;
	*b = q;
	return q;
}

/* Free q once it has no connection and no turn. */
static void
uidq_tidy(struct uidq *q)
{
	struct uidq **p = &uidqs[(uint32_t)q->uid % UIDQ_BUCKETS];

	if (q->nconns > 0 || q->active)
		return;
	while (*p != q)
		p = &(*p)->hnext;
	*p = q->hnext;
	free(q);
}

static void
turn_push(struct uidq *q)
{
	q->active = 1;
	q->tnext = NULL;
	if (turn_tail != NULL)
		turn_tail->tnext = q;
	else
		turn_head = q;
	turn_tail = q;
	nturns++;
}

static struct uidq *
turn_pop(void)
{
	struct uidq *q = turn_head;

	if (q != NULL) {
		turn_head = q->tnext;
		if (turn_head == NULL)
			turn_tail = NULL;
		nturns--;
	}
	return q;
}

/* Put c at the back of its uid's ready connections; give the uid a turn
 * if it has none pending. */
static void
ready_push(struct client *c)
{
	struct uidq *q = c->uq;

	c->queued = 1;
	c->qnext = NULL;
	if (q->tail != NULL)
		q->tail->qnext = c;
	else
		q->head = c;
	q->tail = c;
	if (!q->active)
		turn_push(q);
}

static struct client *
ready_pop(struct uidq *q)
{
	struct client *c = q->head;

	if (c != NULL) {
		q->head = c->qnext;
		if (q->head == NULL)
			q->tail = NULL;
		c->queued = 0;
	}
	return c;
}

/* ------------------------------------------------------------------
 * Clients
 */

/* Close client i. It is never in a ready queue: only the client being
 * served, already taken off its queue, or one not yet queued is dropped. */
static void
drop_client(int i)
{
	struct client *c = clients[i];

	if (c == NULL)
		return;
	close(c->fd);
	primd__quota_conn_release(c->cred.uid);
	c->uq->nconns--;
	uidq_tidy(c->uq);
	free(c->cred.groups);
	free(c);
	clients[i] = NULL;
	nclients--;
}

static int
peer_groups(int fd, struct primd_cred *cr)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *g = NULL;

	for (;;) {
		gid_t *n = realloc(g, len ? len : sizeof(gid_t));

		if (n == NULL) {
			free(g);
			return -1;
		}
		g = n;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0)
			break;
		if (errno != ERANGE || len > MAX_GROUPS * sizeof(gid_t)) {
			free(g);
			return -1;
		}
	}
	cr->groups = g;
	cr->ngroups = (int)(len / sizeof(gid_t));
	return 0;
}

/* Set up an admitted connection in slot i; 0, or -1 (nothing kept). */
static int
add_client(int fd, int i, const struct ucred *uc)
{
	struct client *c = calloc(1, sizeof(*c));
	struct uidq *q = uidq_get(uc->uid);

	if (c == NULL || q == NULL)
		goto fail;
	c->fd = fd;
	c->idx = i;
	c->uq = q;
	c->cred.uid = uc->uid;
	c->cred.gid = uc->gid;
	c->cred.pid = uc->pid;
	c->cred.caps = primd__peer_caps(uc->pid, uc->uid, uc->gid);
	if (sizeof(struct primd_rep) + txcap > 200000) {
		/* A PRIMD_MSGRCV reply must fit in one datagram. */
		int sb = (int)(2 * (sizeof(struct primd_rep) + txcap));

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	}
	if (peer_groups(fd, &c->cred) != 0 ||
	    ep_add(fd, CLIENT_EVENTS, ev(EV_CLIENT, i)) != 0)
		goto fail;
	q->nconns++;
	clients[i] = c;
	nclients++;
	return 0;
fail:
	if (c != NULL)
		free(c->cred.groups);
	free(c);
	if (q != NULL)
		uidq_tidy(q);
	return -1;
}

/*
 * A descriptor kept for the moment accept fails for want of one (EMFILE,
 * ENFILE): the connection waiting would keep the listening socket
 * readable, and the loop would spin on it. It is closed, the connection
 * accepted and closed at once (its client sees EOF), and it is taken
 * again. The quotas' totals (main) are meant to refuse first.
 */
static int reserve_fd = -1;

static void
reserve_take(void)
{
	if (reserve_fd < 0)
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Shed one waiting connection with the reserve; 0 if none was shed. */
static int
shed_one(int lfd)
{
	int fd;

	if (reserve_fd < 0)
		return 0;
	close(reserve_fd);
	reserve_fd = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0)
		close(fd);
	reserve_take();
	return fd >= 0;
}

/*
 * Accept up to ACCEPT_PER_WAKE connections; the listening socket stays
 * readable for the rest. A connection over its uid's quota (or past the
 * slots left to it) is closed before it costs anything but its
 * SO_PEERCRED.
 */
static void
accept_clients(int lfd)
{
	static unsigned long failed; /* since the last line logged */

	for (int k = 0; k < ACCEPT_PER_WAKE; k++) {
		struct ucred uc;
		socklen_t len = sizeof(uc);
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int i, e = errno;

		if (fd < 0) {
			if (e == EINTR || e == ECONNABORTED)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK)
				return;
			/* Out of descriptors: shed the connection, or the
			 * listener stays readable and the loop spins. */
			failed++;
			if ((e != EMFILE && e != ENFILE) || !shed_one(lfd))
				k = ACCEPT_PER_WAKE; /* nothing more now */
			if (log_now(LOG_ACCEPT)) {
				fprintf(stderr,
					"primd: accept: %s (%lu connection%s "
					"refused)\n",
					strerror(e), failed,
					failed == 1 ? "" : "s");
				failed = 0;
			}
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
		    len != sizeof(uc)) {
			close(fd);
			continue;
		}
		if (primd__quota_conn_admit(uc.uid) != 0) {
			if (log_now(LOG_CONNS))
				fprintf(stderr,
					"primd: uid %u is at its connection "
					"quota, connection of pid %d "
					"closed\n",
					(unsigned)uc.uid, (int)uc.pid);
			close(fd);
			continue;
		}
		/* The quota's totals keep a slot free for this one. */
		for (i = 0; i < MAX_CLIENTS && clients[i] != NULL; i++)
			;
		if (i == MAX_CLIENTS || add_client(fd, i, &uc) != 0) {
			primd__quota_conn_release(uc.uid);
			close(fd);
		}
	}
}

/*
 * Receive and answer one datagram of c. Returns 1 if it answered a
 * request, 0 if there was nothing to read, -1 if c was dropped (EOF, an
 * error, or a reply it does not read).
 */
static int
serve_one(struct client *c)
{
	struct primd_rep rep;
	struct iovec iov[2];
	struct msghdr mh;
	size_t extra = 0;
	ssize_t n;

	memset(rxbuf, 0, sizeof(struct primd_req));
	n = recv(c->fd, rxbuf, rxcap, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		drop_client(c->idx);
		return -1;
	}
	if (n == 0) { /* EOF (or an empty datagram) */
		drop_client(c->idx);
		return -1;
	}
	if ((size_t)n < sizeof(struct primd_req) ||
	    (size_t)n >= rxcap) {
		/* Echo what can be read of the header. */
		memset(&rep, 0, sizeof(rep));
		rep.magic = PRIMD_MAGIC;
		rep.version = PRIMD_VERSION;
		if ((size_t)n >= 12) {
			rep.op = rxreq->op;
			rep.seq = rxreq->seq;
		}
		rep.err = EPROTO;
		rep.id = -1;
		rep.shmid = -1;
	} else {
		if (!c->registered && rxreq->magic == PRIMD_MAGIC &&
		    rxreq->version == PRIMD_VERSION) {
			register_proc(c->cred.pid, c->cred.uid);
			c->registered = 1;
		}
		if (reads_limits(rxreq->op) && primd__limits_refresh(&reg))
			(void)fit_buffers(&reg.conf.lim);
		extra = primd__reg_handle(&reg, &c->cred, rxreq,
					  rxbuf + sizeof(struct primd_req),
					  (size_t)n - sizeof(struct primd_req),
					  &rep, txbuf, txcap);
	}
	iov[0].iov_base = &rep;
	iov[0].iov_len = sizeof(rep);
	iov[1].iov_base = txbuf;
	iov[1].iov_len = extra;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = extra ? 2 : 1;
	if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(rep) + extra)) {
		if (extra)
			fprintf(stderr,
				"primd: a message taken for pid %d "
				"could not be sent: %s\n",
				(int)c->cred.pid, strerror(errno));
		/* Not reading its replies: never wait for it. */
		drop_client(c->idx);
		return -1;
	}
	return 1;
}

/* A readiness event for client i: queue it, unless it is queued. */
static void
client_ready(int i)
{
	/* Defensive: a spurious event only costs a receive that finds
	 * nothing. */
	if (i < MAX_CLIENTS && clients[i] != NULL && !clients[i]->queued)
		ready_push(clients[i]);
}

/*
 * Serve one round: a turn for every uid that has one pending, in order,
 * at most SERVE_PER_WAKE receives (a round cut short goes on where it
 * stopped). A turn ends with the uid's first answered request; a
 * connection with nothing to read leaves the queue and is re-armed.
 * Returns 1 if work is left.
 */
static int
serve_turns(void)
{
	int budget = SERVE_PER_WAKE, round = nturns;
	struct uidq *q;

	while (budget > 0 && round-- > 0 && (q = turn_pop()) != NULL) {
		struct client *c;
		int done = 0;

		while (!done && budget > 0 && (c = ready_pop(q)) != NULL) {
			int r;

			budget--;
			r = serve_one(c);
			if (r > 0) {
				done = 1;
				ready_push(c); /* q->active: no new turn */
			} else if (r == 0 && ep_rearm(c->fd, c->idx) != 0) {
				drop_client(c->idx); /* could not watch it */
			}
		}
		if (q->head != NULL) {
			turn_push(q);
		} else {
			q->active = 0;
			uidq_tidy(q);
		}
	}
	return turn_head != NULL;
}

/* ------------------------------------------------------------------
 * Socket
 */

static int
make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], why[256];
	char *slash;
	mode_t mode;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	mode = strcmp(dir, "/run/prim") == 0 ? 0755 : 0700;
	if (mkdir(dir, mode) == 0) {
		/* Exactly that mode, whatever the umask. */
		(void)chmod(dir, mode);
	} else if (errno != EEXIST) {
		fprintf(stderr, "primd: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	/*
	 * Never listen where a client would refuse to connect (sockpath.c):
	 * a directory, not a link, owned by root or us and writable by no one
	 * else, in parents no one else may replace it in.
	 */
	if (primd__dir_check(dir, why, sizeof(why)) != 0) {
		fprintf(stderr, "primd: refusing to listen in %s: %s\n", dir,
			why);
		return -1;
	}
	return 0;
}

static int
sock_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -1;
	strcpy(a->sun_path, path);
	return 0;
}

/* 1 if a broker answers on path. */
static int
answers(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return 0;
	r = connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0;
	close(fd);
	return r;
}

static int
listen_on(const struct sockaddr_un *a, mode_t mode)
{
	int fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old;

	if (fd < 0)
		return -1;
	old = umask(0177);
	if (bind(fd, (const struct sockaddr *)a, sizeof(*a)) != 0) {
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(a->sun_path, mode) != 0 || listen(fd, SOMAXCONN) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------------
 * Idle exit
 */

static void
update_timer(void)
{
	struct itimerspec its;
	int idle = nclients == 0 && nprocs == 0;

	if (idle_exit <= 0 || idle == timer_armed)
		return;
	memset(&its, 0, sizeof(its));
	if (idle)
		its.it_value.tv_sec = idle_exit;
	if (timerfd_settime(timer_fd, 0, &its, NULL) == 0)
		timer_armed = idle;
}

/* ------------------------------------------------------------------
 * Main
 */

enum {
	O_IDLE = 256,
	O_FG,
	O_SEMMSL,
	O_SEMMNS,
	O_SEMOPM,
	O_SEMMNI,
	O_MSGMAX,
	O_MSGMNB,
	O_MSGMNI,
	O_SEMNPROCS,
	O_SEMNSLOTS,
	O_QBMAX,
	O_MSGNSLOTS,
	O_QCONNS,
	O_QPROCS,
	O_QOBJECTS,
	O_QBYTES
};

static const struct option longopts[] = {
    {"socket", required_argument, NULL, 's'},
    {"idle-exit", required_argument, NULL, O_IDLE},
    {"foreground", no_argument, NULL, O_FG},
    {"semmsl", required_argument, NULL, O_SEMMSL},
    {"semmns", required_argument, NULL, O_SEMMNS},
    {"semopm", required_argument, NULL, O_SEMOPM},
    {"semmni", required_argument, NULL, O_SEMMNI},
    {"msgmax", required_argument, NULL, O_MSGMAX},
    {"msgmnb", required_argument, NULL, O_MSGMNB},
    {"msgmni", required_argument, NULL, O_MSGMNI},
    {"sem-nprocs", required_argument, NULL, O_SEMNPROCS},
    {"sem-nslots", required_argument, NULL, O_SEMNSLOTS},
    {"msg-qbytes-max", required_argument, NULL, O_QBMAX},
    {"msg-nslots", required_argument, NULL, O_MSGNSLOTS},
    {"quota-conns", required_argument, NULL, O_QCONNS},
    {"quota-procs", required_argument, NULL, O_QPROCS},
    {"quota-objects", required_argument, NULL, O_QOBJECTS},
    {"quota-bytes", required_argument, NULL, O_QBYTES},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
parse_args(int argc, char **argv, const char **sock, struct primd_conf *cf,
	   struct primd_quota_conf *qc)
{
	int o, qbmax_set = 0;
	unsigned long v;

	while ((o = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		const char *name = NULL;
		unsigned long max = UINT32_MAX;

		for (const struct option *p = longopts; p->name; p++)
			if (p->val == o)
				name = p->name;
		switch (o) {
		case 's':
			*sock = optarg;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		case O_FG:
			continue; /* primd never detaches itself */
		case '?':
			usage(stderr);
			return -1;
		case O_SEMMNI:
		case O_MSGMNI:
			max = PRIMD_NIDX;
			break;
		case O_IDLE:
			max = INT_MAX;
			break;
		case O_QBMAX:
			max = INT32_MAX;
			break;
		case O_QBYTES:
			max = ULONG_MAX;
			break;
		}
		if (parse_num(optarg, name, max, &v) != 0)
			return -1;
		switch (o) {
		case O_IDLE:
			idle_exit = (long)v;
			break;
		case O_SEMMSL:
			cf->lim.semmsl = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_SEMMSL);
			break;
		case O_SEMMNS:
			cf->lim.semmns = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_SEMMNS);
			break;
		case O_SEMOPM:
			cf->lim.semopm = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_SEMOPM);
			break;
		case O_SEMMNI:
			cf->lim.semmni = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_SEMMNI);
			break;
		case O_MSGMAX:
			cf->lim.msgmax = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_MSGMAX);
			break;
		case O_MSGMNB:
			cf->lim.msgmnb = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_MSGMNB);
			break;
		case O_MSGMNI:
			cf->lim.msgmni = (uint32_t)v;
			primd__limits_pin(PRIMD_PIN_MSGMNI);
			break;
		case O_SEMNPROCS:
			cf->sem_nprocs = (uint32_t)v;
			break;
		case O_SEMNSLOTS:
			cf->sem_nslots = (uint32_t)v;
			break;
		case O_QBMAX:
			cf->msg_qbytes_max = (uint32_t)v;
			qbmax_set = 1;
			primd__limits_pin(PRIMD_PIN_QBMAX);
			break;
		case O_MSGNSLOTS:
			cf->msg_nslots = (uint32_t)v;
			break;
		case O_QCONNS:
			qc->conns = v;
			break;
		case O_QPROCS:
			qc->procs = v;
			break;
		case O_QOBJECTS:
			qc->objects = v;
			break;
		case O_QBYTES:
			qc->bytes = v;
			break;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if (cf->lim.semmni > PRIMD_NIDX)
		cf->lim.semmni = PRIMD_NIDX;
	if (cf->lim.msgmni > PRIMD_NIDX)
		cf->lim.msgmni = PRIMD_NIDX;
	if (!qbmax_set)
		cf->msg_qbytes_max = primd__qbytes_max_of(cf->lim.msgmnb);
	return 0;
}

int
main(int argc, char **argv)
{
	static char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char statefile[sizeof(pathbuf) + 16], lockfile[sizeof(pathbuf) + 16];
	struct primd_conf cf;
	struct sockaddr_un addr;
	struct rlimit rl;
	struct stat st;
	sigset_t sigs;
	const char *sock = NULL;
	int lfd, sfd, lockfd, adopted, rc, running = 1;
	ino_t sock_ino;

	memset(&cf, 0, sizeof(cf));
	default_limits(&cf.lim);
	cf.sem_nprocs = 256;
	cf.sem_nslots = 256;
	primd__quota_defaults(&qconf);
	if (parse_args(argc, argv, &sock, &cf, &qconf) != 0)
		return 2;
	primd__limits_read(&cf.lim); /* the pins in force: pinned */
	qconf.total_conns = MAX_CLIENTS;
	qconf.total_procs = PRIMD_NPROCS;
	if (sock == NULL) {
		rc = primd__sock_path(pathbuf, sizeof(pathbuf), 1);
		if (rc != 0) {
			fprintf(stderr, "primd: socket path: %s\n",
				strerror(-rc));
			return 1;
		}
		sock = pathbuf;
	}
	if (sock_addr(sock, &addr) != 0) {
		fprintf(stderr, "primd: socket path too long: %s\n", sock);
		return 1;
	}
	snprintf(statefile, sizeof(statefile), "%s.state", sock);
	snprintf(lockfile, sizeof(lockfile), "%s.lock", sock);
	if (make_parent(sock) != 0)
		return 1;

	/* One broker per socket: the lock, then whoever answers. */
	lockfd = open(lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0) {
		fprintf(stderr, "primd: %s: %s\n", lockfile, strerror(errno));
		return 1;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) != 0 || answers(&addr)) {
		fprintf(stderr, "primd: another broker is running on %s\n",
			sock);
		return EXIT_RUNNING;
	}
	if (lstat(sock, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr,
				"primd: %s exists and is not a "
				"socket\n",
				sock);
			return 1;
		}
		unlink(sock); /* stale: nobody answers */
	}

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/*
	 * Every connection and every watched process is a descriptor: the
	 * tables' totals must fit the limit, less the broker's own and a
	 * margin (the reserve, /proc reads), so that the quotas refuse
	 * before accept or pidfd_open fails.
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		uint64_t avail = rl.rlim_cur > FD_MARGIN
				     ? (uint64_t)rl.rlim_cur - FD_MARGIN
				     : 0;

		if (avail < (uint64_t)qconf.total_conns + qconf.total_procs) {
			if (qconf.total_conns > avail / 2)
				qconf.total_conns = (uint32_t)(avail / 2);
			if (qconf.total_procs > avail - qconf.total_conns)
				qconf.total_procs =
				    (uint32_t)(avail - qconf.total_conns);
			fprintf(stderr,
				"primd: %llu descriptors: at most %u "
				"connections and %u watched processes\n",
				(unsigned long long)rl.rlim_cur,
				qconf.total_conns, qconf.total_procs);
		}
	}
	reserve_take();
	for (int i = 0; i < PRIMD_NPROCS; i++)
		pidfds[i] = -1;
	primd__reaped_fn = reaped;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("primd: epoll_create1");
		return 1;
	}

	txcap = sizeof(struct primd_msgrcv_rep) + cf.lim.msgmax;
	rxcap = sizeof(struct primd_req) + primd__trailer_max(&cf.lim) + 1;
	rxbuf = malloc(rxcap);
	rxreq = (struct primd_req *)(void *)rxbuf;
	if ((txbuf = malloc(txcap)) == NULL || rxbuf == NULL ||
	    primd__quota_init(&qconf) != 0) {
		perror("primd: malloc");
		return 1;
	}
	rc = primd__reg_open(&reg, statefile, &cf, &adopted);
	if (rc != 0) {
		fprintf(stderr, "primd: registry: %s\n", strerror(-rc));
		return 1;
	}
	if (adopted >= 0)
		fprintf(stderr,
			"primd: adopted registry %d (generation %llu), "
			"%d objects\n",
			reg.shmid, (unsigned long long)reg.shm->generation,
			adopted);
	adopt_procs();
	sweep_owners();

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	lfd = listen_on(&addr, geteuid() == 0 ? 0666 : 0600);
	if (lfd < 0 || sfd < 0 || timer_fd < 0) {
		fprintf(stderr, "primd: %s: %s\n", sock, strerror(errno));
		return 1;
	}
	sock_ino = stat(sock, &st) == 0 ? st.st_ino : 0;
	if (ep_add(lfd, EPOLLIN, ev(EV_LISTEN, 0)) != 0 ||
	    ep_add(sfd, EPOLLIN, ev(EV_SIGNAL, 0)) != 0 ||
	    ep_add(timer_fd, EPOLLIN, ev(EV_TIMER, 0)) != 0) {
		perror("primd: epoll_ctl");
		return 1;
	}
	fprintf(stderr, "primd: listening on %s (pid %d)\n", sock,
		(int)getpid());

	struct timespec last_sweep;
	static struct epoll_event evs[MAX_EVENTS];
	int pending = 0;

	clock_gettime(CLOCK_MONOTONIC, &last_sweep);
	while (running) {
		struct timespec now;
		int n, deaths = 0;

		update_timer();
		/* Ready connections left from the last wake-up: only look. */
		n = epoll_wait(epfd, evs, MAX_EVENTS, pending ? 0 : SWEEP_MS);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last_sweep.tv_sec) * 1000 +
			    (now.tv_nsec - last_sweep.tv_nsec) / 1000000 >=
		    SWEEP_MS) {
			sweep_owners();
			last_sweep = now;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("primd: epoll_wait");
			break;
		}
		for (int k = 0; k < n && running; k++) {
			int kind = (int)(evs[k].data.u64 >> 32);
			int idx = (int)(uint32_t)evs[k].data.u64;
			uint64_t ticks;
			struct signalfd_siginfo si;

			switch (kind) {
			case EV_LISTEN:
				accept_clients(lfd);
				break;
			case EV_SIGNAL:
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					fprintf(stderr,
						"primd: signal %u, "
						"exiting\n",
						si.ssi_signo);
					running = 0;
				}
				break;
			case EV_TIMER:
				if (read(timer_fd, &ticks, sizeof(ticks)) > 0 &&
				    nclients == 0 && nprocs == 0) {
					fprintf(stderr,
						"primd: idle for %ld s, "
						"exiting\n",
						idle_exit);
					running = 0;
				}
				timer_armed = 0;
				break;
			case EV_CLIENT:
				/* Also on HUP/ERR: recv sees them. */
				client_ready(idx);
				break;
			case EV_PROC:
				/* The rest are reported again next time. */
				if (deaths < DEATHS_PER_WAKE &&
				    idx < PRIMD_NPROCS && pidfds[idx] >= 0 &&
				    exited(pidfds[idx])) {
					proc_died(idx);
					deaths++;
				}
				break;
			}
		}
		pending = running && serve_turns();
	}
	/* Leave the registry and every object for the next broker. */
	if (sock_ino != 0 && stat(sock, &st) == 0 && st.st_ino == sock_ino)
		unlink(sock);
	return 0;
}
