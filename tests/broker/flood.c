/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper for tests/check_flood.sh: floods primd over the wire
 * protocol (broker/proto.h, no libsysv), measures a client's latency, and
 * uses the kernel's own shmget. Built by the test script:
 *
 *   flood SOCK hold N     N connections, a HELLO on each; once each is
 *                         answered or closed, print "open=A closed=C", then
 *                         hold them all until killed
 *   flood SOCK spam N     N connections, DEPTH requests in flight on each,
 *                         a new one for every reply, until SIGTERM; print
 *                         "spam connections=N" once connected, and
 *                         "spam requests=R connections=N" (the replies so
 *                         far) on SIGUSR1 and at the end
 *   flood SOCK create sem|msg [MAX]
 *                         create IPC_PRIVATE objects (mode 0600) until one
 *                         fails or MAX are made; print "created=N err=NAME
 *                         seg=BYTES" (the last segment's size)
 *   flood SOCK lat N      N rounds of HELLO, GET (a new private set) and
 *                         RMID of it, one request at a time; print
 *                         "latency OP requests=R p50=Xus p99=Yus max=Zus"
 *                         for each OP, then for all of them ("all")
 *   flood - shmget N      N segments from the kernel's own shmget, then
 *                         IPC_RMID of each; print "shmget=N"
 *
 * Exit status 0 on success; 1 when a request is not answered within
 * REPLY_MS (the hang bound), answered with an error where none is
 * expected, or a system call fails.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define REPLY_MS 2000 /* a request unanswered this long is a hang */
#define DEPTH	 4    /* spam: requests in flight per connection */

static const char *sock;
static volatile sig_atomic_t stop, report_now;
static uint32_t seqno;

static void
die(const char *what)
{
	fprintf(stderr, "flood: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
dial(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
mkreq(struct primd_req *q, int op, int type)
{
	memset(q, 0, sizeof(*q));
	q->magic = PRIMD_MAGIC;
	q->version = PRIMD_VERSION;
	q->op = (uint16_t)op;
	q->seq = ++seqno;
	q->type = (uint16_t)type;
}

static int
send_req(int fd, const struct primd_req *q)
{
	return send(fd, q, sizeof(*q), MSG_NOSIGNAL | MSG_DONTWAIT) ==
		       (ssize_t)sizeof(*q)
		   ? 0
		   : -1;
}

/* One request, its reply within REPLY_MS; exits on a hang. */
static void
call(int fd, const struct primd_req *q, struct primd_rep *p)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	if (send_req(fd, q) != 0)
		die("send");
	if (poll(&pf, 1, REPLY_MS) != 1) {
		fprintf(stderr, "flood: op %u unanswered after %d ms\n", q->op,
			REPLY_MS);
		exit(1);
	}
	if (recv(fd, p, sizeof(*p), 0) != (ssize_t)sizeof(*p) ||
	    p->magic != PRIMD_MAGIC || p->seq != q->seq) {
		fprintf(stderr, "flood: op %u: no reply (closed)\n", q->op);
		exit(1);
	}
}

static const char *
errname(int e)
{
	switch (e) {
	case 0:
		return "0";
	case ENOSPC:
		return "ENOSPC";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	case EACCES:
		return "EACCES";
	default:
		return strerror(e);
	}
}

static int
hold(int n)
{
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	int open_ = 0, closed = 0, left = 0;
	long long deadline;
	struct primd_req q;
	struct primd_rep p;

	if (pf == NULL)
		die("calloc");
	for (int i = 0; i < n; i++) {
		pf[i].fd = dial();
		pf[i].events = POLLIN;
		mkreq(&q, PRIMD_HELLO, 0);
		if (pf[i].fd < 0 || send_req(pf[i].fd, &q) != 0) {
			closed++; /* kept open, if it is a socket */
			if (pf[i].fd >= 0)
				pf[i].fd = ~pf[i].fd; /* poll skips it */
		} else {
			left++;
		}
	}
	deadline = now_us() + 30 * 1000000LL;
	while (left > 0) {
		int r = poll(pf, (nfds_t)n, 100);

		if (r < 0 && errno != EINTR)
			die("poll");
		for (int i = 0; r > 0 && i < n; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			if (recv(pf[i].fd, &p, sizeof(p), MSG_DONTWAIT) ==
				(ssize_t)sizeof(p) &&
			    p.err == 0)
				open_++;
			else
				closed++;
			pf[i].fd = ~pf[i].fd; /* resolved: poll skips it */
			left--;
		}
		if (now_us() > deadline) {
			fprintf(stderr, "flood: %d connections unresolved\n",
				left);
			free(pf);
			return 1;
		}
	}
	printf("open=%d closed=%d\n", open_, closed);
	fflush(stdout);
	while (!stop)
		pause();
	free(pf);
	return 0;
}

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_usr1(int sig)
{
	(void)sig;
	report_now = 1;
}

static void
next_req(struct primd_req *q, unsigned long k)
{
	switch (k % 3) {
	case 0:
		mkreq(q, PRIMD_HELLO, 0);
		break;
	case 1:
		mkreq(q, PRIMD_INFO, PRIMD_MSG);
		q->flags = IPC_INFO;
		break;
	default:
		mkreq(q, PRIMD_GET, PRIMD_MSG);
		q->key = 0x5eed; /* never made: ENOENT after a key scan */
		break;
	}
}

static int
spam(int n)
{
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	unsigned long done = 0, k = 0;
	struct primd_req q;
	struct primd_rep p;
	int live = 0;

	if (pf == NULL)
		die("calloc");
	for (int i = 0; i < n; i++) {
		pf[i].fd = dial();
		pf[i].events = POLLIN;
		for (int d = 0; pf[i].fd >= 0 && d < DEPTH; d++) {
			next_req(&q, k++);
			if (send_req(pf[i].fd, &q) != 0)
				break;
		}
		live += pf[i].fd >= 0;
	}
	printf("spam connections=%d\n", live);
	fflush(stdout);
	while (!stop && live > 0) {
		int r = poll(pf, (nfds_t)n, 100);

		if (report_now) {
			report_now = 0;
			printf("spam requests=%lu connections=%d\n", done,
			       live);
			fflush(stdout);
		}

		if (r < 0 && errno != EINTR)
			die("poll");
		for (int i = 0; r > 0 && i < n; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			ssize_t got =
			    recv(pf[i].fd, &p, sizeof(p), MSG_DONTWAIT);

			if (got < 0 && errno == EAGAIN)
				continue;
			if (got != (ssize_t)sizeof(p)) {
				close(pf[i].fd);
				pf[i].fd = -1;
				live--;
				continue;
			}
			done++;
			next_req(&q, k++);
			(void)send_req(pf[i].fd, &q);
		}
	}
	printf("spam requests=%lu connections=%d\n", done, live);
	free(pf);
	return 0;
}

static int
create(const char *type, long max)
{
	int t = strcmp(type, "sem") == 0 ? PRIMD_SEM : PRIMD_MSG;
	int fd = dial();
	uint64_t seg = 0;
	struct primd_req q;
	struct primd_rep p;
	long n = 0;

	if (fd < 0)
		die("connect");
	p.err = 0;
	while (max < 0 || n < max) {
		mkreq(&q, PRIMD_GET, t);
		q.key = 0; /* IPC_PRIVATE */
		q.flags = 0600;
		q.nsems = t == PRIMD_SEM ? 1 : 0;
		call(fd, &q, &p);
		if (p.err != 0)
			break;
		seg = p.seg_size;
		n++;
	}
	printf("created=%ld err=%s seg=%llu\n", n, errname(p.err),
	       (unsigned long long)seg);
	return 0;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, long long *us, int n)
{
	qsort(us, (size_t)n, sizeof(*us), cmp_ll);
	printf("latency %s requests=%d p50=%lldus p99=%lldus max=%lldus\n",
	       what, n, us[n / 2], us[n * 99 / 100], us[n - 1]);
}

static int
lat(int rounds)
{
	static const char *names[3] = {"HELLO", "GET", "RMID"};
	long long *all = calloc((size_t)rounds * 3, sizeof(*all));
	long long *us[3];
	int fd = dial(), n = 0;
	struct primd_req q;
	struct primd_rep p;

	for (int op = 0; op < 3; op++)
		if ((us[op] = calloc((size_t)rounds, sizeof(**us))) == NULL)
			die("calloc");
	if (fd < 0 || all == NULL || rounds < 1)
		die("connect");
	for (int r = 0; r < rounds; r++) {
		for (int op = 0; op < 3; op++) {
			long long t0;

			if (op == 0) {
				mkreq(&q, PRIMD_HELLO, 0);
			} else if (op == 1) {
				mkreq(&q, PRIMD_GET, PRIMD_SEM);
				q.flags = 0600;
				q.nsems = 1;
			} else {
				int id = p.id;

				mkreq(&q, PRIMD_RMID, PRIMD_SEM);
				q.id = id;
			}
			t0 = now_us();
			call(fd, &q, &p);
			us[op][r] = all[n++] = now_us() - t0;
			if (p.err != 0) {
				fprintf(stderr, "flood: %s: %s\n", names[op],
					errname(p.err));
				n = -1;
				goto out;
			}
		}
	}
	for (int op = 0; op < 3; op++)
		report(names[op], us[op], rounds);
	report("all", all, n);
out:
	for (int op = 0; op < 3; op++)
		free(us[op]);
	free(all);
	return n < 0;
}

static int
kernel_shmget(int n)
{
	int *ids = calloc((size_t)n, sizeof(*ids));

	if (ids == NULL)
		die("calloc");
	for (int i = 0; i < n; i++)
		if ((ids[i] = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)) < 0)
			die("shmget");
	for (int i = 0; i < n; i++)
		if (shmctl(ids[i], IPC_RMID, NULL) != 0)
			die("shmctl IPC_RMID");
	printf("shmget=%d\n", n);
	free(ids);
	return 0;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc < 3) {
		fprintf(stderr, "usage: flood SOCK hold|spam|lat N\n"
				"       flood SOCK create sem|msg [MAX]\n"
				"       flood - shmget N\n");
		return 2;
	}
	sock = argv[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[2], "hold") == 0 && argc == 4)
		return hold(atoi(argv[3]));
	if (strcmp(argv[2], "spam") == 0 && argc == 4)
		return spam(atoi(argv[3]));
	if (strcmp(argv[2], "create") == 0 && (argc == 4 || argc == 5))
		return create(argv[3], argc == 5 ? atol(argv[4]) : -1);
	if (strcmp(argv[2], "lat") == 0 && argc == 4)
		return lat(atoi(argv[3]));
	if (strcmp(argv[2], "shmget") == 0 && argc == 4)
		return kernel_shmget(atoi(argv[3]));
	fprintf(stderr, "flood: bad arguments\n");
	return 2;
}
