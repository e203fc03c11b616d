/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Chaos: many processes doing random semaphore and message-queue work
 * through the standard SysV API (linked with -lsysv), while workers are
 * killed with SIGKILL and stopped/continued at random and the broker itself
 * is killed with SIGKILL and restarted. Nobody here reaps a dead worker:
 * that is the broker's job (pidfd while it runs, a sweep when it starts
 * again), and the invariants say whether it did it.
 *
 * Invariants, checked after the storm (exit 1 when one breaks):
 * - bank: the bank semaphores hold exactly their starting tokens: every
 *   transfer is one atomic semop, every hold is SEM_UNDO and is given back
 *   by the broker when its holder dies;
 * - messages: every message whose msgsnd returned is received exactly once
 *   (by a live consumer, or found in a dead consumer's receive buffer,
 *   which lives in shared memory) or is still queued; none is corrupt;
 *   none is received twice by live consumers;
 * - no worker waits past a bound (all released at the end must exit);
 * - waiter counts (GETNCNT, GETZCNT) are back to 0, and the queue's
 *   qnum/cbytes match what was drained.
 *
 * The last line printed is:
 *   CHAOS kills=<n> broker_restarts=<n> ops=<n> hangs=<n> lost=<n> dup=<n>
 *
 * Usage: chaos -b PRIMD -s SOCKET [-p workers] [-t seconds]
 * (tests/check_chaos.sh runs it in a private IPC namespace.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NBANK 4
#define BANK_TOKENS 30
#define NSEMS NBANK
#define MAXW 32
#define NPROD 1024	/* producer ids; a respawned producer takes a new one */
#define MAXSEQ (1u << 20)	/* messages per producer slot, at most */
#define PAYLOAD 48
#define RELEASE 1000

struct msg {
	long mtype;
	uint32_t prod, seq, sum;
	uint8_t data[PAYLOAD];
};

enum role { R_BANK, R_PROD, R_CONS };

struct shared {
	volatile int stop;
	volatile uint64_t ops[MAXW];
	/* producers: highest seq whose msgsnd returned, per producer id */
	volatile uint32_t sent[NPROD];
	volatile uint32_t next_prod;	/* producer ids handed out */
	/* consumers receive into here: a dead one's buffer is inspected */
	struct msg inbox[MAXW];
	/* messages received by live consumers: seen[prod][seq] counts */
	volatile uint8_t seen[NPROD][4096];
	/* messages found in the receive buffer of a killed consumer */
	volatile uint8_t dead[NPROD][4096];
};

static struct shared *sh;
static int semid, msqid;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint32_t
checksum(const struct msg *m)
{
	uint32_t h = 2166136261u ^ m->prod ^ (m->seq << 7) ^ (uint32_t)m->mtype;

	for (int i = 0; i < PAYLOAD; i++)
		h = (h ^ m->data[i]) * 16777619u;
	return h;
}

static void
die(const char *what)
{
	fprintf(stderr, "chaos: worker %d: %s: %s\n", (int)getpid(), what,
		strerror(errno));
	_exit(3);
}

/* A timed semop: the bank can run dry, so never block for good. */
static int
bank_op(struct sembuf *b, size_t n, unsigned *seed)
{
	struct timespec t = { 0, (1 + rand_r(seed) % 10) * 1000000L };

	if (rand_r(seed) % 3 == 0) {
		for (size_t i = 0; i < n; i++)
			b[i].sem_flg |= IPC_NOWAIT;
		return semop(semid, b, n);
	}
	return semtimedop(semid, b, n, &t);
}

static void
bank(int slot, unsigned seed)
{
	while (!sh->stop) {
		struct sembuf b[2];
		unsigned short a = (unsigned short)(rand_r(&seed) % NBANK);
		unsigned short c = (unsigned short)(rand_r(&seed) % NBANK);
		short x = (short)(1 + rand_r(&seed) % 3);

		if (rand_r(&seed) % 2) {
			b[0] = (struct sembuf){ a, (short)-x, 0 };
			b[1] = (struct sembuf){ c, x, 0 };
			if (bank_op(b, 2, &seed) != 0 && errno != EAGAIN)
				die("transfer");
		} else {
			b[0] = (struct sembuf){ a, -1, SEM_UNDO };
			if (bank_op(b, 1, &seed) == 0) {
				b[0] = (struct sembuf){ a, 1, SEM_UNDO };
				if (semop(semid, b, 1) != 0)
					die("give back");
			} else if (errno != EAGAIN) {
				die("hold");
			}
		}
		sh->ops[slot]++;
	}
	_exit(0);
}

static void
producer(int slot, unsigned seed)
{
	uint32_t id = __sync_fetch_and_add(&sh->next_prod, 1);
	struct msg m;

	if (id >= NPROD)
		_exit(0); /* out of producer ids: retire */
	for (uint32_t seq = 1; !sh->stop && seq < 4096; seq++) {
		m.mtype = 1 + (long)(rand_r(&seed) % 4);
		m.prod = id;
		m.seq = seq;
		for (int i = 0; i < PAYLOAD; i++)
			m.data[i] = (uint8_t)rand_r(&seed);
		m.sum = checksum(&m);
		while (msgsnd(msqid, &m, sizeof(m) - sizeof(long), 0) != 0) {
			if (errno != EINTR)
				die("msgsnd");
		}
		sh->sent[id] = seq; /* this send returned */
		sh->ops[slot]++;
	}
	_exit(0);
}

static void
consumer(int slot, unsigned seed)
{
	struct msg *in = &sh->inbox[slot];

	while (!sh->stop) {
		long typ = (long)(rand_r(&seed) % 6) - 1; /* -1..4 */
		ssize_t n;

		n = msgrcv(msqid, in, sizeof(*in) - sizeof(long), typ, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("msgrcv");
		}
		if (n != (ssize_t)(sizeof(*in) - sizeof(long)) ||
		    in->sum != checksum(in) || in->prod >= NPROD ||
		    in->seq >= 4096) {
			fprintf(stderr, "chaos: corrupt message\n");
			_exit(4);
		}
		sh->seen[in->prod][in->seq]++;
		memset(in, 0, sizeof(*in));
		sh->ops[slot]++;
	}
	_exit(0);
}

/*
 * A killed consumer's receive buffer: the message there was delivered to
 * it (killed after the receive) or will be put back by the reap (killed
 * before it) and received again; either way it is not lost.
 */
static void
harvest(int slot)
{
	struct msg *in = &sh->inbox[slot];

	if (in->seq != 0 && in->prod < NPROD && in->seq < 4096 &&
	    in->sum == checksum(in))
		sh->dead[in->prod][in->seq] = 1;
	memset(in, 0, sizeof(*in));
}

/* Take what is queued without waiting; count it as received. */
static uint64_t
drain(int *bad)
{
	struct msg m;
	uint64_t n = 0;

	while (msgrcv(msqid, &m, sizeof(m) - sizeof(long), 0, IPC_NOWAIT) >= 0) {
		if (m.seq == 0)
			continue; /* a poison message */
		if (m.sum != checksum(&m) || m.prod >= NPROD || m.seq >= 4096) {
			fprintf(stderr, "chaos: corrupt message in queue\n");
			*bad = 1;
			continue;
		}
		sh->seen[m.prod][m.seq]++;
		n++;
	}
	return n;
}

static enum role
role_of(int slot)
{
	return slot % 3 == 0 ? R_BANK : slot % 3 == 1 ? R_PROD : R_CONS;
}

static pid_t
spawn(int slot, unsigned seed)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		switch (role_of(slot)) {
		case R_BANK:
			bank(slot, seed);
			break;
		case R_PROD:
			producer(slot, seed);
			break;
		case R_CONS:
			consumer(slot, seed);
			break;
		}
	}
	return pid;
}

static pid_t
start_broker(const char *primd, const char *sock)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(primd, primd, "-s", sock, (char *)NULL);
		_exit(127);
	}
	/* Wait until it answers. */
	for (int i = 0; i < 500; i++) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int ok;

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
		ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(s);
		if (ok)
			return pid;
		msleep(10);
	}
	fprintf(stderr, "chaos: the broker does not answer\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *primd = NULL, *sock = NULL;
	int nw = 9, seconds = 5, opt, bad = 0;
	uint64_t kills = 0, restarts = 0, hangs = 0, lost = 0, dup = 0;
	pid_t pids[MAXW], broker;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	union semun {
		int val;
		struct semid_ds *buf;
		unsigned short *array;
	} arg;

	while ((opt = getopt(argc, argv, "b:s:p:t:")) != -1) {
		switch (opt) {
		case 'b':
			primd = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'p':
			nw = atoi(optarg);
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (primd == NULL || sock == NULL) {
usage:
		fprintf(stderr, "usage: chaos -b PRIMD -s SOCKET [-p n] [-t s]\n");
		return 2;
	}
	if (nw < 3 || nw > MAXW)
		nw = 9;
	setenv("PRIM_BROKER_SOCK", sock, 1);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	broker = start_broker(primd, sock);
	semid = semget(IPC_PRIVATE, NSEMS, IPC_CREAT | 0600);
	msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (semid < 0 || msqid < 0) {
		perror("chaos: semget/msgget");
		kill(broker, SIGKILL);
		return 2;
	}
	for (int s = 0; s < NBANK; s++) {
		arg.val = BANK_TOKENS;
		semctl(semid, s, SETVAL, arg);
	}
	printf("chaos: %d workers, %d s, seed %u\n", nw, seconds, seed);
	for (int i = 0; i < nw; i++)
		pids[i] = spawn(i, seed + (unsigned)i);

	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	while (now_ms() < end) {
		int i = rand_r(&seed) % nw, what = rand_r(&seed) % 10, st;

		msleep(20 + rand_r(&seed) % 30);
		if (what < 5) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
				fprintf(stderr, "chaos: worker failed (%d)\n",
					WEXITSTATUS(st));
				bad = 1;
			}
			kills++;
			harvest(i);
			pids[i] = spawn(i, seed + (unsigned)kills * 7919);
		} else if (what < 8) {
			kill(pids[i], SIGSTOP);
			msleep(10 + rand_r(&seed) % 40);
			kill(pids[i], SIGCONT);
		} else {
			/* The broker dies; data-path calls go on meanwhile. */
			kill(broker, SIGKILL);
			waitpid(broker, &st, 0);
			msleep(rand_r(&seed) % 100);
			broker = start_broker(primd, sock);
			restarts++;
		}
	}

	/* Release every waiter, then every worker must exit in time. */
	sh->stop = 1;
	for (int s = 0; s < NSEMS; s++) {
		struct sembuf b = { (unsigned short)s, RELEASE, 0 };

		semop(semid, &b, 1);
	}
	/*
	 * Producers blocked on a full queue return once the parent drains it;
	 * consumers blocked on an empty one get a poison message of each
	 * type. A worker still there after 10 s waits past the bound.
	 */
	uint64_t t0 = now_ms(), drained = 0;
	int left = nw;
	int done[MAXW] = { 0 };

	while (left > 0 && now_ms() - t0 < 10000) {
		struct msg m;

		drained += drain(&bad);
		memset(&m, 0, sizeof(m));
		for (long t = 1; t <= 4; t++) {
			m.mtype = t;
			m.sum = checksum(&m);
			msgsnd(msqid, &m, sizeof(m) - sizeof(long), IPC_NOWAIT);
		}
		for (int i = 0; i < nw; i++) {
			int st;

			if (done[i] || waitpid(pids[i], &st, WNOHANG) != pids[i])
				continue;
			done[i] = 1;
			left--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "chaos: worker %d failed\n", i);
				bad = 1;
			}
		}
		msleep(5);
	}
	for (int i = 0; i < nw; i++) {
		if (done[i])
			continue;
		fprintf(stderr, "chaos: worker %d hangs\n", i);
		hangs++;
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
		harvest(i);
	}

	/* The broker reaps the dead: wait for the counts to settle. */
	int bank = 0, counts = 0;

	for (int tries = 0; tries < 500; tries++) {
		bank = 0;
		counts = 0;
		for (int s = 0; s < NBANK; s++) {
			bank += semctl(semid, s, GETVAL) - RELEASE;
			counts += semctl(semid, s, GETNCNT) +
				  semctl(semid, s, GETZCNT);
		}
		if (bank == NBANK * BANK_TOKENS && counts == 0)
			break;
		msleep(10);
	}

	/* Drain what is left; then account for every message. */
	drained += drain(&bad);
	for (uint32_t p = 0; p < sh->next_prod && p < NPROD; p++) {
		for (uint32_t q = 1; q < 4096; q++) {
			if (sh->seen[p][q] > 1)
				dup++;
			else if (q <= sh->sent[p] && sh->seen[p][q] == 0 &&
				 !sh->dead[p][q])
				lost++;
		}
	}
	struct msqid_ds ds;

	if (msgctl(msqid, IPC_STAT, &ds) != 0 || ds.msg_qnum != 0) {
		fprintf(stderr, "chaos: queue not empty after the drain\n");
		bad = 1;
	}
	uint64_t ops = 0;

	for (int i = 0; i < nw; i++)
		ops += sh->ops[i];
	if (bank != NBANK * BANK_TOKENS) {
		fprintf(stderr, "chaos: bank has %d tokens, not %d\n", bank,
			NBANK * BANK_TOKENS);
		bad = 1;
	}
	if (counts != 0) {
		fprintf(stderr, "chaos: waiter counts not back to 0\n");
		bad = 1;
	}
	if (semctl(semid, 0, IPC_RMID) != 0 || msgctl(msqid, IPC_RMID, NULL) != 0) {
		perror("chaos: remove");
		bad = 1;
	}
	kill(broker, SIGTERM);
	waitpid(broker, NULL, 0);
	printf("chaos: drained %llu messages, producers %u\n",
	       (unsigned long long)drained, sh->next_prod);
	printf("CHAOS kills=%llu broker_restarts=%llu ops=%llu hangs=%llu "
	       "lost=%llu dup=%llu\n",
	       (unsigned long long)kills, (unsigned long long)restarts,
	       (unsigned long long)ops, (unsigned long long)hangs,
	       (unsigned long long)lost, (unsigned long long)dup);
	return bad || hangs || lost || dup;
}
