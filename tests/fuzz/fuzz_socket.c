/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The protocol fuzzer over the socket: run as an unprivileged uid against
 * a real root primd, it sends random and mutated datagrams (random bytes,
 * truncated and oversized ones, bad magic or version, valid headers with
 * random fields and trailers, valid-looking trailers for the proxied
 * operations), one at a time, pipelined, on connections it abandons
 * unread, and in floods of connections past its quota. Every datagram on
 * a connection that reads its replies must be answered, in order, within
 * a hang bound; no reply may grant this uid what the objects named on
 * the command line refuse it (the access it has to each is given there).
 *
 *   fuzz_socket SOCK fuzz SEED COUNT SECONDS TARGET...
 *       COUNT datagrams at most (0: no limit), for SECONDS at most (0: no
 *       limit); TARGET is sem:ID:ACC, msg:ID:ACC or semkey:KEY:ACC, ACC
 *       one of - r w rw (this uid's access to it). Prints
 *       "fuzz_socket: N datagrams, ..., unanswered U, violations V";
 *       exit 0, 1 (unanswered or a violation), 2 (usage, no broker).
 *   fuzz_socket SOCK stat TYPE:ID...
 *       print each object's owner, creator, mode and key (SEM_STAT_ANY,
 *       MSG_STAT_ANY through the broker): before and after, for a diff.
 *
 * A hang is a reply that does not come within HANG_MS: a bound, not a
 * timing threshold. Concurrency: one thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define HANG_MS	  10000
#define POOL	  16
#define FLOOD_MAX 300
#define BUFCAP	  (96 * 1024)

static struct sockaddr_un addr;
static uint64_t rng;
static unsigned long long sent, answered, unanswered, violations, dropped,
    floods, refused;
static int gone; /* no connection could be made: the broker is gone */

struct target {
	int type; /* PRIMD_SEM, PRIMD_MSG */
	int32_t id;
	int32_t key; /* semkey: the id is learnt from GET replies */
	unsigned acc;
};

static struct target tg[64];
static int ntg;
/* Ids of objects this uid made (GET replies), to aim at as well. */
static int32_t own[32];
static int nown;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t
below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
conn(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Receive one reply within HANG_MS: its length; 0 if the broker closed
 * the connection (EOF, or ECONNRESET: it closed it with our request
 * unread, as at accept over the quota); -1 if nothing came.
 */
static ssize_t
get_reply(int fd, unsigned char *buf, size_t cap)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, HANG_MS) != 1)
		return -1;
	n = recv(fd, buf, cap, MSG_DONTWAIT);
	if (n < 0 && (errno == ECONNRESET || errno == EPIPE))
		return 0;
	return n;
}

/* ------------------------------------------------------------------
 * Datagrams
 */
struct dgram {
	unsigned char b[BUFCAP];
	size_t len;
	int wellformed; /* a request the broker handles */
};

static int32_t
pick_id(void)
{
	if (ntg > 0 && below(10) < 6) {
		const struct target *t = &tg[below((uint64_t)ntg)];

		return t->id;
	}
	if (nown > 0 && below(3) == 0)
		return own[below((uint64_t)nown)];
	switch (below(4)) {
	case 0:
		return -1;
	case 1:
		return (int32_t)below(8);
	case 2:
		return (int32_t)((0x8000u + (uint32_t)below(4)) << 15 |
				 (uint32_t)below(8));
	default:
		return (int32_t)rnd();
	}
}

static void
trailer(struct dgram *d, const struct primd_req *q)
{
	size_t n = 0;
	unsigned char *t = d->b + sizeof(*q);

	switch (below(4) == 0 ? 0 : q->op) {
	case PRIMD_SEMOP: {
		int32_t k = q->nsems > 0 && q->nsems <= 64 ? q->nsems : 1;

		for (int32_t i = 0; i < k; i++) {
			struct primd_sembuf sb = {
			    .sem_num = (uint16_t)below(4),
			    .sem_op = (int16_t)((int)below(5) - 2),
			    .sem_flg = (int16_t)(below(2) ? IPC_NOWAIT : 0) |
				       (int16_t)(below(3) ? 0 : SEM_UNDO),
			};

			memcpy(t + n, &sb, sizeof(sb));
			n += sizeof(sb);
		}
		break;
	}
	case PRIMD_SEMCTL:
		if (q->flags == SETALL)
			for (int i = 0, k = (int)below(5); i < k; i++) {
				uint16_t v = (uint16_t)below(4);

				memcpy(t + n, &v, 2);
				n += 2;
			}
		break;
	case PRIMD_MSGSND: {
		int64_t mtype = (int64_t)below(4);

		memcpy(t, &mtype, 8);
		n = 8 + below(200);
		memset(t + 8, 'f', n - 8);
		break;
	}
	case PRIMD_MSGRCV: {
		struct primd_msgrcv_req mr = {.msgtyp = (int64_t)below(5) - 2,
					      .msgsz = below(300)};

		memcpy(t, &mr, sizeof(mr));
		n = sizeof(mr);
		break;
	}
	default:
		if (below(3) == 0) {
			n = below(600);
			for (size_t i = 0; i < n; i++)
				t[i] = (unsigned char)rnd();
		}
		break;
	}
	d->len = sizeof(*q) + n;
}

/* A valid header with random fields: the broker's own checks decide. */
static void
structured(struct dgram *d, uint32_t seq)
{
	static const uint32_t ids[6] = {0, 65534, 61002, 61003, 0xffffffffu, 7};
	struct primd_req q;

	memset(&q, 0, sizeof(q));
	q.magic = PRIMD_MAGIC;
	q.version = PRIMD_VERSION;
	q.op = (uint16_t)(below(16) == 0 ? below(20) : 1 + below(13));
	q.seq = seq;
	q.type = (uint16_t)(below(12) == 0 ? below(5) : 1 + below(2));
	if (below(30) == 0)
		q.pad = (uint16_t)rnd();
	if (below(30) == 0)
		q.pad2 = (uint32_t)rnd();
	q.id = pick_id();
	q.key = below(3) == 0 ? (int32_t)rnd() : (int32_t)below(16);
	if (ntg > 0 && below(4) == 0)
		q.key = tg[below((uint64_t)ntg)].key;
	switch (q.op) {
	case PRIMD_GET:
		q.flags = (int32_t)below(010000);
		break;
	case PRIMD_INFO:
		q.flags = (int32_t)(below(2) ? 3 + 16 * below(2) : 12);
		break;
	case PRIMD_SEMCTL:
		q.flags = below(2) ? SETVAL : SETALL;
		break;
	default:
		q.flags = below(4) == 0 ? (int32_t)rnd() : (int32_t)below(3);
		break;
	}
	if (q.op == PRIMD_MSGSND || q.op == PRIMD_MSGRCV)
		q.flags = (int32_t)(below(2) * IPC_NOWAIT | below(2) * 010000 |
				    below(4) / 3 * 020000);
	q.nsems = below(6) == 0 ? (int32_t)rnd() : (int32_t)below(5);
	q.uid = ids[below(6)];
	q.gid = ids[below(6)];
	q.mode = below(5) == 0 ? (uint32_t)rnd() : (uint32_t)below(01000);
	q.qbytes = below(3) == 0 ? rnd() : below(40000);
	memcpy(d->b, &q, sizeof(q));
	trailer(d, &q);
	d->wellformed = q.pad == 0 && q.pad2 == 0;
}

static void
make_dgram(struct dgram *d, uint32_t seq)
{
	struct primd_req q;
	uint64_t k = below(100);

	d->wellformed = 0;
	memset(&q, 0, sizeof(q));
	q.magic = PRIMD_MAGIC;
	q.version = PRIMD_VERSION;
	q.op = PRIMD_HELLO;
	q.seq = seq;
	if (k < 10) { /* random bytes */
		d->len = 1 + below(300);
		for (size_t i = 0; i < d->len; i++)
			d->b[i] = (unsigned char)rnd();
		if (d->len >= 12)
			memcpy(d->b + 8, &seq, 4); /* to match the reply */
	} else if (k < 18) {			   /* a truncated request */
		structured(d, seq);
		d->len = 1 + below(sizeof(q) - 1);
		d->wellformed = 0;
	} else if (k < 23) { /* oversized: past any trailer */
		structured(d, seq);
		d->len = 9000 + below(BUFCAP - 9000);
		memset(d->b + sizeof(q), 'o', d->len - sizeof(q));
		d->wellformed = 0;
	} else if (k < 28) { /* bad magic or version */
		q.magic ^= below(2) ? 1u << below(32) : 0;
		q.version = (uint16_t)(below(2) ? PRIMD_VERSION ^ 1 : rnd());
		if (q.magic == PRIMD_MAGIC && q.version == PRIMD_VERSION)
			q.version = 0;
		memcpy(d->b, &q, sizeof(q));
		d->len = sizeof(q);
	} else {
		structured(d, seq);
	}
}

/* ------------------------------------------------------------------
 * Replies: every one in order, none granting what a target refuses
 */

static struct target *
by_id(int type, int32_t id)
{
	for (int k = 0; k < ntg; k++)
		if (tg[k].type == type && tg[k].id == id && id != -1)
			return &tg[k];
	return NULL;
}

static void
violation(const struct primd_req *q, const struct primd_rep *p, const char *why)
{
	violations++;
	fprintf(stderr,
		"fuzz_socket: VIOLATION: %s (op %u type %u id %d key %#x flags "
		"%#o nsems %d: err %d id %d access %u)\n",
		why, q->op, q->type, q->id, q->key, q->flags, q->nsems, p->err,
		p->id, p->access);
}

static void
judge(const struct dgram *d, const unsigned char *rb, ssize_t n)
{
	struct primd_req q;
	struct primd_rep p;
	struct target *t;
	unsigned need = 0;

	memset(&q, 0, sizeof(q));
	memcpy(&q, d->b, d->len < sizeof(q) ? d->len : sizeof(q));
	if (n < (ssize_t)sizeof(p)) {
		violations++;
		fprintf(stderr, "fuzz_socket: a reply of %zd bytes\n", n);
		return;
	}
	memcpy(&p, rb, sizeof(p));
	if (p.magic != PRIMD_MAGIC || p.version != PRIMD_VERSION ||
	    p.seq != (d->len >= 12 ? q.seq : 0)) {
		violations++;
		fprintf(stderr,
			"fuzz_socket: reply magic %#x version %u seq %u for "
			"seq %u (%zu bytes)\n",
			p.magic, p.version, p.seq, q.seq, d->len);
		return;
	}
	if (!d->wellformed || q.magic != PRIMD_MAGIC ||
	    q.version != PRIMD_VERSION) {
		if (p.err == 0)
			violation(&q, &p, "a malformed datagram was accepted");
		return;
	}
	/* A GET of a protected key teaches its id. */
	for (int k = 0; k < ntg; k++)
		if (q.op == PRIMD_GET && q.type == tg[k].type &&
		    tg[k].key != 0 && q.key == tg[k].key && p.err == 0) {
			unsigned f = (unsigned)q.flags,
				 ask = (f >> 6 | f >> 3 | f) & 7;

			tg[k].id = p.id;
			if (ask & ~tg[k].acc)
				violation(&q, &p,
					  "GET of a protected key "
					  "granted mode bits");
		}
	if ((t = by_id(q.type, p.id)) != NULL && (p.access & ~t->acc))
		violation(&q, &p, "a reply grants more access than the mode");
	if (p.err != 0)
		return;
	if (q.op == PRIMD_GET && t == NULL && p.id != -1)
		own[nown < 32 ? nown++ : (int)below(32)] = p.id;
	if (q.op == PRIMD_STAT_INDEX) {
		for (int k = 0; k < ntg; k++)
			if (tg[k].type == q.type && tg[k].id != -1 &&
			    (tg[k].id & (PRIMD_NIDX - 1)) == q.id &&
			    q.flags == 0 && !(tg[k].acc & PRIMD_ACC_R))
				violation(&q, &p,
					  "SEM_STAT/MSG_STAT without R");
		return;
	}
	if ((t = by_id(q.type, q.id)) == NULL)
		return;
	switch (q.op) {
	case PRIMD_SET:
	case PRIMD_RMID:
		violation(&q, &p, "IPC_SET/IPC_RMID of another user's object");
		return;
	case PRIMD_OPEN:
		need = PRIMD_ACC_R | PRIMD_ACC_W; /* either */
		if (!(t->acc & need))
			violation(&q, &p, "OPEN without access");
		return;
	case PRIMD_SEMOP:
		need = PRIMD_ACC_R;
		for (size_t o = sizeof(q); o + 6 <= d->len; o += 6) {
			struct primd_sembuf sb;

			memcpy(&sb, d->b + o, sizeof(sb));
			if (sb.sem_op != 0)
				need = PRIMD_ACC_W;
		}
		break;
	case PRIMD_SEMCTL:
	case PRIMD_MSGSND:
		need = PRIMD_ACC_W;
		break;
	case PRIMD_MSGRCV:
		need = PRIMD_ACC_R;
		break;
	default:
		return;
	}
	if (!(t->acc & need))
		violation(&q, &p, "a proxied call without the access");
}

/* ------------------------------------------------------------------
 * Connections
 */
static int pool[POOL];
static int pool_used[POOL]; /* it has had an answer */
static unsigned char rbuf[BUFCAP];

/* A connection to send on: from the pool, or now and then a new one. */
static int
pool_get(int *slot)
{
	int i = (int)below(POOL);

	*slot = i;
	if (pool[i] < 0 || below(8) == 0) {
		if (pool[i] >= 0)
			close(pool[i]);
		pool[i] = conn();
		pool_used[i] = 0;
	}
	return pool[i];
}

static void
pool_drop(int i)
{
	if (pool[i] >= 0)
		close(pool[i]);
	pool[i] = -1;
}

/* Send d on fd and read its reply; 1 answered, 0 EOF, -1 none. */
static int
roundtrip(int fd, const struct dgram *d)
{
	ssize_t n;

	if (send(fd, d->b, d->len, MSG_NOSIGNAL) != (ssize_t)d->len)
		return 0;
	sent++;
	n = get_reply(fd, rbuf, sizeof(rbuf));
	if (n > 0) {
		answered++;
		judge(d, rbuf, n);
		return 1;
	}
	return n == 0 ? 0 : -1;
}

/*
 * One datagram, one reply. A new connection that the broker closes at
 * once was refused at accept (over our connection quota, while it still
 * counts connections we closed): try another for a while. A connection
 * that had answers must never be closed under us.
 */
static void
one(struct dgram *d, uint32_t seq)
{
	int slot = 0, fd, r = -1, connected = 0;

	make_dgram(d, seq);
	for (int tries = 0; tries < 400; tries++) {
		fd = pool_get(&slot);
		if (fd < 0) {
			usleep(5000);
			continue;
		}
		connected = 1;
		r = roundtrip(fd, d);
		if (r == 1)
			pool_used[slot] = 1;
		if (r != 0 || pool_used[slot])
			break;
		pool_drop(slot);
		refused++;
		usleep(5000);
	}
	if (r != 1) {
		unanswered++;
		fprintf(stderr,
			"fuzz_socket: datagram %u (%zu bytes) was not "
			"answered\n",
			seq, d->len);
		pool_drop(slot);
	}
	if (!connected) {
		gone = 1;
		fprintf(stderr, "fuzz_socket: the broker accepts no "
				"connection\n");
	}
}

static void
pipelined(struct dgram *d, uint32_t *seq)
{
	static struct dgram v[16];
	int k = 2 + (int)below(15), fd = conn(), got = 0;

	if (fd < 0)
		return;
	for (int i = 0; i < k; i++) {
		make_dgram(&v[i], (*seq)++);
		if (send(fd, v[i].b, v[i].len, MSG_NOSIGNAL) !=
		    (ssize_t)v[i].len)
			break;
		sent++;
	}
	for (; got < k; got++) {
		ssize_t n = get_reply(fd, rbuf, sizeof(rbuf));

		if (n <= 0)
			break;
		answered++;
		judge(&v[got], rbuf, n);
	}
	if (got < k) {
		/* Refused at accept, or the broker dropped us: legitimate
		 * only when it has answered nothing (refusal) */
		if (got > 0) {
			unanswered += (unsigned long long)(k - got);
			fprintf(stderr,
				"fuzz_socket: a pipeline of %d got %d "
				"replies\n",
				k, got);
		} else {
			refused++;
		}
	}
	close(fd);
	(void)d;
}

/* Connections that send and go, unread; an empty datagram; a bare
 * connect. The broker must not wait for any of them. */
static void
abandon(struct dgram *d, uint32_t *seq)
{
	int fd = conn();

	if (fd < 0)
		return;
	switch (below(3)) {
	case 0:
		for (int i = 0, k = 1 + (int)below(8); i < k; i++) {
			make_dgram(d, (*seq)++);
			if (send(fd, d->b, d->len,
				 MSG_NOSIGNAL | MSG_DONTWAIT) ==
			    (ssize_t)d->len)
				sent++;
		}
		break;
	case 1:
		if (send(fd, "", 0, MSG_NOSIGNAL) == 0)
			sent++;
		break;
	default:
		break;
	}
	dropped++;
	close(fd);
}

/* More connections than the quota, a HELLO on each; then all closed. */
static void
flood(uint32_t *seq)
{
	static int fds[FLOOD_MAX];
	int k = 100 + (int)below(FLOOD_MAX - 100), n = 0;
	struct dgram *d = malloc(sizeof(*d));

	if (d == NULL)
		return;
	for (; n < k; n++)
		if ((fds[n] = conn()) < 0)
			break;
	for (int i = 0; i < n; i++) {
		struct primd_req q = {.magic = PRIMD_MAGIC,
				      .version = PRIMD_VERSION,
				      .op = PRIMD_HELLO,
				      .seq = (*seq)++};

		if (send(fds[i], &q, sizeof(q), MSG_NOSIGNAL) == sizeof(q))
			sent++;
	}
	for (int i = 0; i < n; i++) {
		ssize_t r = get_reply(fds[i], rbuf, sizeof(rbuf));

		if (r > 0)
			answered++;
		else if (r == 0)
			refused++; /* over the quota: closed at accept */
		else
			unanswered++, fprintf(stderr, "fuzz_socket: a flood "
						      "connection hung\n");
		close(fds[i]);
	}
	floods++;
	free(d);
}

static int
parse_target(const char *s, struct target *t)
{
	char type[16], acc[8];
	long long v;

	if (sscanf(s, "%15[a-z]:%lli:%7s", type, &v, acc) != 3)
		return -1;
	memset(t, 0, sizeof(*t));
	t->id = -1;
	if (strcmp(type, "sem") == 0 || strcmp(type, "msg") == 0) {
		t->type = type[0] == 's' ? PRIMD_SEM : PRIMD_MSG;
		t->id = (int32_t)v;
	} else if (strcmp(type, "semkey") == 0) {
		t->type = PRIMD_SEM;
		t->key = (int32_t)v;
	} else {
		return -1;
	}
	t->acc = (strchr(acc, 'r') ? PRIMD_ACC_R : 0) |
		 (strchr(acc, 'w') ? PRIMD_ACC_W : 0);
	return 0;
}

static int
fuzz(int argc, char **argv)
{
	static struct dgram d;
	unsigned long long count = strtoull(argv[4], NULL, 0);
	double secs = atof(argv[5]), until = now_s() + secs;
	uint32_t seq = 1;
	int fd;

	rng = strtoull(argv[3], NULL, 0) * 0x9e3779b97f4a7c15ULL + 1;
	for (int k = 6; k < argc && ntg < 64; k++)
		if (parse_target(argv[k], &tg[ntg++]) != 0) {
			fprintf(stderr, "fuzz_socket: bad target %s\n",
				argv[k]);
			return 2;
		}
	for (int i = 0; i < POOL; i++)
		pool[i] = -1;
	if ((fd = conn()) < 0) {
		perror("fuzz_socket: connect");
		return 2;
	}
	close(fd);
	while (!gone && (count == 0 || sent < count) &&
	       (secs <= 0 || now_s() < until)) {
		uint64_t m = below(100);

		if (m < 70)
			one(&d, seq++);
		else if (m < 85)
			pipelined(&d, &seq);
		else if (m < 97)
			abandon(&d, &seq);
		else if (below(4) == 0)
			flood(&seq);
	}
	for (int i = 0; i < POOL; i++)
		pool_drop(i);
	/* Still serving, on a fresh connection, once our closes are seen. */
	{
		struct dgram h;
		int ok = 0;

		memset(&h, 0, sizeof(h));
		for (int tries = 0; tries < 100 && !ok; tries++) {
			struct primd_req q = {.magic = PRIMD_MAGIC,
					      .version = PRIMD_VERSION,
					      .op = PRIMD_HELLO,
					      .seq = seq};

			memcpy(h.b, &q, sizeof(q));
			h.len = sizeof(q);
			h.wellformed = 1;
			if ((fd = conn()) >= 0) {
				ok = roundtrip(fd, &h) == 1;
				close(fd);
			}
			if (!ok)
				usleep(50000);
		}
		if (!ok) {
			unanswered++;
			fprintf(stderr, "fuzz_socket: no HELLO answered at the "
					"end\n");
		}
	}
	printf("fuzz_socket: %llu datagrams, %llu answered, %llu on abandoned "
	       "connections, %llu floods, %llu refused at accept, unanswered "
	       "%llu, violations %llu\n",
	       sent, answered, dropped, floods, refused, unanswered,
	       violations);
	return unanswered || violations ? 1 : 0;
}

/* Print what SEM_STAT_ANY / MSG_STAT_ANY says of each object. */
static int
stat_objs(int argc, char **argv)
{
	int fd = conn(), rc = 0;

	if (fd < 0) {
		perror("fuzz_socket: connect");
		return 2;
	}
	for (int k = 3; k < argc; k++) {
		struct primd_req q = {.magic = PRIMD_MAGIC,
				      .version = PRIMD_VERSION,
				      .op = PRIMD_STAT_INDEX,
				      .seq = (uint32_t)k,
				      .flags = 1};
		struct primd_rep p;
		int id = atoi(argv[k] + 4);

		q.type = argv[k][0] == 's' ? PRIMD_SEM : PRIMD_MSG;
		q.id = id & (PRIMD_NIDX - 1);
		if (send(fd, &q, sizeof(q), 0) != sizeof(q) ||
		    recv(fd, &p, sizeof(p), 0) != sizeof(p)) {
			perror("fuzz_socket: stat");
			return 2;
		}
		if (p.err != 0 || p.id != id) {
			printf("%s: gone (err %d, id %d)\n", argv[k], p.err,
			       p.id);
			rc = 1;
			continue;
		}
		printf("%s: uid %u gid %u cuid %u cgid %u mode %03o key %d "
		       "nsems %u%s\n",
		       argv[k], p.stat.uid, p.stat.gid, p.stat.cuid,
		       p.stat.cgid, p.stat.mode, p.stat.key, p.stat.nsems,
		       (p.flags & PRIMD_REP_DAMAGED) ? " damaged" : "");
	}
	close(fd);
	return rc;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: see tests/fuzz/fuzz_socket.c\n");
		return 2;
	}
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, argv[1]);
	if (strcmp(argv[2], "fuzz") == 0 && argc >= 6)
		return fuzz(argc, argv);
	if (strcmp(argv[2], "stat") == 0)
		return stat_objs(argc, argv);
	fprintf(stderr, "usage: see tests/fuzz/fuzz_socket.c\n");
	return 2;
}
