/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The honest users of tests/check_hostile.sh, through the standard API
 * (linked with -lsysv): they make objects, use objects a hostile writer
 * scribbles on, and measure that every call returns — IPC_NOWAIT at once,
 * semtimedop by its timeout — and that the broker keeps answering others.
 * A call is late when it takes more than its bound plus a second: that is
 * a hang detector, not a timing threshold (the figures are printed).
 *
 *   victim mkset NSEMS MODE        print the id of a new set, values 1
 *   victim mkq MODE                print the id of a new queue, 3 messages
 *   victim sem ID                  every kind of call on a set
 *   victim msg ID                  every kind of call on a queue
 *   victim undo ID                 semop +1 with SEM_UNDO, say ready, wait
 *   victim check-set ID V...       GETALL must be V...
 *   victim check-q ID N            msg_qnum must be N
 *   victim crowd ID N              N threads block on semaphore 1 (every
 *                                  slot a sleeper may take, and more), a
 *                                  SEM_UNDO process dies: the broker's reap
 *                                  must finish, then SETVAL frees them all
 *   victim probe STOP PAUSE        broker calls until STOP exists (waiting
 *                                  while PAUSE exists); prints the latency
 *                                  percentiles
 * Exit status: 0, 1 (a late call, a broker that did not answer, a wrong
 * value), 2 (usage).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int late, calls, nosys;
static double slowest;

/* Account for one call that started at t0 and may take up to bound ms. */
static void
took(double t0, double bound, int r, const char *what)
{
	double d = now_ms() - t0;

	calls++;
	if (d > slowest)
		slowest = d;
	if (d > bound + 1000) {
		late++;
		fprintf(stderr, "victim: %s took %.0f ms\n", what, d);
	}
	if (r < 0 && errno == ENOSYS)
		nosys++;
}

#define CALL(bound, what, expr)                                         \
	do {                                                            \
		double t0_ = now_ms();                                  \
		int r_ = (int)(expr);                                   \
		took(t0_, (bound), r_, (what));                         \
	} while (0)

static int
summary(const char *what, const char *id)
{
	printf("victim %s %s: %d calls returned, slowest %.1f ms%s%s\n", what,
	       id, calls, slowest, late ? ", LATE" : "",
	       nosys ? ", broker unreachable" : "");
	return late || nosys ? 1 : 0;
}

static int
sem_battery(int id)
{
	struct sembuf up = { 0, 1, IPC_NOWAIT }, down = { 0, -1, IPC_NOWAIT },
		      zero = { 1, 0, IPC_NOWAIT }, wait = { 2, -5, 0 },
		      two[2] = { { 0, 1, IPC_NOWAIT | SEM_UNDO },
				 { 1, -1, IPC_NOWAIT } };
	struct timespec t100 = { 0, 100000000 };
	unsigned short vals[64];
	struct semid_ds ds;
	union semun a;

	for (int round = 0; round < 20; round++) {
		CALL(0, "semop +1", semop(id, &up, 1));
		CALL(0, "semop -1", semop(id, &down, 1));
		CALL(0, "semop 0", semop(id, &zero, 1));
		CALL(0, "semop two", semop(id, two, 2));
		CALL(100, "semtimedop", semtimedop(id, &wait, 1, &t100));
		a.array = vals;
		CALL(0, "GETALL", semctl(id, 0, GETALL, a));
		a.val = 1;
		CALL(0, "SETVAL", semctl(id, 0, SETVAL, a));
		CALL(0, "GETNCNT", semctl(id, 2, GETNCNT));
		a.buf = &ds;
		CALL(0, "IPC_STAT", semctl(id, 0, IPC_STAT, a));
	}
	return 0;
}

static int
msg_battery(int id)
{
	struct {
		long mtype;
		char mtext[64];
	} m = { 1, "honest" };
	struct msqid_ds ds;

	for (int round = 0; round < 20; round++) {
		m.mtype = 1 + round % 3;
		CALL(0, "msgsnd", msgsnd(id, &m, 6, IPC_NOWAIT));
		CALL(0, "msgrcv 0", msgrcv(id, &m, sizeof(m.mtext), 0, IPC_NOWAIT));
		CALL(0, "msgrcv 2", msgrcv(id, &m, sizeof(m.mtext), 2, IPC_NOWAIT));
		CALL(0, "msgrcv -3",
		     msgrcv(id, &m, sizeof(m.mtext), -3, IPC_NOWAIT));
		CALL(0, "msgrcv except",
		     msgrcv(id, &m, 2, 1, IPC_NOWAIT | MSG_EXCEPT));
		CALL(0, "IPC_STAT", msgctl(id, IPC_STAT, &ds));
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int crowd_id;

static void *
crowd_wait(void *arg)
{
	struct sembuf b = { 1, -1, 0 };

	(void)arg;
	return (void *)(intptr_t)semop(crowd_id, &b, 1);
}

/*
 * Issue 8's deadlock without any corruption: n threads asleep on one set
 * hold every slot a sleeper may take (and more wait for one), then a
 * process with SEM_UNDO on that set dies. Its reap must finish: the value
 * it raised comes back down, within a hang bound.
 */
static int
crowd(int id, int n)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	struct sembuf up = { 0, 1, SEM_UNDO };
	double t0;
	pid_t c;
	int v = -1, st, bad = 0, waiting;

	crowd_id = id;
	if (t == NULL || semctl(id, 0, SETVAL, 0) != 0 ||
	    semctl(id, 1, SETVAL, 0) != 0)
		return perror("crowd setup"), 1;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, crowd_wait, NULL) != 0)
			return perror("pthread_create"), 1;
	t0 = now_ms();
	while ((waiting = semctl(id, 1, GETNCNT)) < n - 8 && now_ms() - t0 < 30000)
		usleep(10000);
	if ((c = fork()) == 0)
		_exit(semop(id, &up, 1) == 0 ? 0 : 1);
	waitpid(c, &st, 0);
	t0 = now_ms();
	while ((v = semctl(id, 0, GETVAL)) != 0 && now_ms() - t0 < 30000)
		usleep(10000);
	printf("victim crowd %d: %d threads, %d asleep counted, the dead "
	       "process's SEM_UNDO reaped after %.0f ms (value %d)\n",
	       id, n, waiting, now_ms() - t0, v);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || v != 0)
		bad = 1;
	if (semctl(id, 1, SETVAL, n) != 0)
		return perror("crowd SETVAL"), 1;
	for (int i = 0; i < n; i++) {
		void *r;

		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	free(t);
	return bad;
}

static void
percentiles(const char *what, double *lat, int n)
{
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_double);
	printf("victim probe: %s: %d calls, p50 %.3f ms, p99 %.3f ms, "
	       "max %.3f ms\n",
	       what, n, n ? lat[n / 2] : 0, n ? lat[n * 99 / 100] : 0,
	       n ? lat[n - 1] : 0);
}

/*
 * Another user's calls while the attacks run: a GET of an existing key
 * and an MSG_INFO (one broker round trip each), and now and then a
 * creation and removal. All must be answered. While PAUSEFILE exists (the
 * test is killing the broker on purpose) it waits, and says so in
 * PAUSEFILE.ack.
 */
static int
probe(const char *stop, const char *pause_file)
{
	static double rt[400000], cr[40000];
	char ack[4096];
	struct msginfo mi;
	struct stat st;
	int n = 0, nc = 0, bad = 0, key_id;

	snprintf(ack, sizeof(ack), "%s.ack", pause_file);
	if ((key_id = semget(0x5052, 1, IPC_CREAT | 0600)) < 0)
		return perror("probe semget"), 1;
	while (stat(stop, &st) != 0 && n < 399990 && nc < 39990) {
		double t0;

		if (stat(pause_file, &st) == 0) {
			FILE *f = fopen(ack, "w");

			if (f != NULL)
				fclose(f);
			usleep(10000);
			continue;
		}
		t0 = now_ms();
		if (semget(0x5052, 1, 0) != key_id)
			bad++, perror("probe: semget existing");
		rt[n++] = now_ms() - t0;
		t0 = now_ms();
		if (msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) < 0)
			bad++, perror("probe: MSG_INFO");
		rt[n++] = now_ms() - t0;
		if (n % 20 == 0) {
			int s, q;

			t0 = now_ms();
			s = semget(IPC_PRIVATE, 1, 0600);
			q = msgget(IPC_PRIVATE, 0600);
			if (s < 0 || q < 0 || semctl(s, 0, IPC_RMID) != 0 ||
			    msgctl(q, IPC_RMID, NULL) != 0)
				bad++, perror("probe: create/remove");
			cr[nc++] = now_ms() - t0;
		}
		usleep(1000);
	}
	semctl(key_id, 0, IPC_RMID);
	percentiles("GET and MSG_INFO", rt, n);
	percentiles("create and remove a set and a queue", cr, nc);
	printf("victim probe: failures %d\n", bad);
	return bad != 0 || n == 0 || rt[n - 1] > 2000 ||
	       (nc && cr[nc - 1] > 5000);
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int id = argc > 2 ? atoi(argv[2]) : -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "mkset") == 0 && argc == 4) {
		unsigned short v[64];
		union semun a = { .array = v };
		int n = atoi(argv[2]);

		if ((id = semget(IPC_PRIVATE, n, (int)strtol(argv[3], NULL, 8))) <
		    0)
			return perror("semget"), 1;
		for (int i = 0; i < n && i < 64; i++)
			v[i] = 1;
		if (semctl(id, 0, SETALL, a) != 0)
			return perror("SETALL"), 1;
		printf("%d\n", id);
		return 0;
	}
	if (strcmp(cmd, "mkq") == 0 && argc == 3) {
		struct {
			long mtype;
			char t[8];
		} m = { 1, "abc" };

		if ((id = msgget(IPC_PRIVATE, (int)strtol(argv[2], NULL, 8))) < 0)
			return perror("msgget"), 1;
		for (int i = 0; i < 3; i++)
			if (msgsnd(id, &m, 3, IPC_NOWAIT) != 0)
				return perror("msgsnd"), 1;
		printf("%d\n", id);
		return 0;
	}
	if (strcmp(cmd, "sem") == 0 && argc == 3) {
		sem_battery(id);
		return summary("sem", argv[2]);
	}
	if (strcmp(cmd, "msg") == 0 && argc == 3) {
		msg_battery(id);
		return summary("msg", argv[2]);
	}
	if (strcmp(cmd, "undo") == 0 && argc == 3) {
		struct sembuf b = { 0, 1, SEM_UNDO | IPC_NOWAIT };

		if (semop(id, &b, 1) != 0)
			return perror("undo"), 1;
		printf("ready\n");
		pause();
		return 0;
	}
	if (strcmp(cmd, "check-set") == 0 && argc >= 4) {
		unsigned short v[64];
		union semun a = { .array = v };

		if (semctl(id, 0, GETALL, a) != 0)
			return perror("GETALL"), 1;
		for (int i = 3; i < argc && i < 67; i++)
			if (v[i - 3] != atoi(argv[i])) {
				fprintf(stderr, "victim: set %d value %d is %u, "
						"not %s\n",
					id, i - 3, v[i - 3], argv[i]);
				return 1;
			}
		return 0;
	}
	if (strcmp(cmd, "check-q") == 0 && argc == 4) {
		struct msqid_ds ds;

		if (msgctl(id, IPC_STAT, &ds) != 0)
			return perror("IPC_STAT"), 1;
		if (ds.msg_qnum != (msgqnum_t)atol(argv[3])) {
			fprintf(stderr, "victim: queue %d holds %lu, not %s\n",
				id, (unsigned long)ds.msg_qnum, argv[3]);
			return 1;
		}
		return 0;
	}
	if (strcmp(cmd, "crowd") == 0 && argc == 4)
		return crowd(id, atoi(argv[3]));
	if (strcmp(cmd, "probe") == 0 && argc == 4)
		return probe(argv[2], argv[3]);
	fprintf(stderr, "usage: see tests/hostile/victim.c\n");
	return 2;
}
