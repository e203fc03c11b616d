/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * limits: the limits follow the namespace's sysctls (issue 10, item 3).
 * Run as root in a fresh IPC namespace (tests/check_limits.sh), once on
 * the kernel and once under libsysv; it writes /proc/sys/kernel/{msgmax,
 * msgmnb, msgmni, sem, msg_next_id, sem_next_id} and prints one line per
 * observation, which must be the same on both. Ids are printed without
 * bit 30, which prim's ids always have (libsysv(7), BUGS). Lines starting
 * with "known:" are documented differences, shown and not compared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static int wrote_ok = 1;

static void
put(const char *name, const char *val)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		printf("SETUP FAILED: write %s: %s\n", path, strerror(errno));
		wrote_ok = 0;
	}
	if (fd >= 0)
		close(fd);
}

static void
get(const char *name)
{
	char path[128], buf[128] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(buf, sizeof(buf), f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	printf("%s = %s\n", name, buf);
}

static const char *
res(long r)
{
	static char b[8][64];
	static int n;
	char *p = b[n++ % 8];

	if (r < 0)
		snprintf(p, 64, "-1 %s", strerror(errno));
	else
		snprintf(p, 64, "%ld", r);
	return p;
}

static const char *
idres(long r)
{
	return r < 0 ? res(r) : res(r & 0x3fffffff);
}

static struct {
	long mtype;
	char text[20000];
} m;

static int qs[64], nq, ss[64], ns;

static int
mq(void)
{
	int q = msgget(IPC_PRIVATE, 0600);

	if (q >= 0)
		qs[nq++] = q;
	return q;
}

static int
sset(int n)
{
	int s = semget(IPC_PRIVATE, n, 0600);

	if (s >= 0)
		ss[ns++] = s;
	return s;
}

static void
info(void)
{
	struct msginfo mi;
	struct seminfo si;
	union semun a = {.__buf = &si};

	memset(&mi, 0, sizeof(mi));
	memset(&si, 0, sizeof(si));
	(void)msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&mi);
	(void)semctl(0, 0, IPC_INFO, a);
	printf("IPC_INFO msg: msgmax %d msgmnb %d msgmni %d\n", mi.msgmax,
	       mi.msgmnb, mi.msgmni);
	printf("IPC_INFO sem: semmsl %d semmns %d semopm %d semmni %d\n",
	       si.semmsl, si.semmns, si.semopm, si.semmni);
}

int
main(void)
{
	struct msqid_ds ds;
	struct sembuf ops[700];
	int q, old, s;

	setvbuf(stdout, NULL, _IOLBF, 0);
	m.mtype = 1;
	info();

	/* msgmax raised: a new queue takes the larger message. */
	old = mq();
	put("msgmax", "10000");
	q = mq();
	printf("msgmax 10000: msgsnd 9000 new queue: %s\n",
	       res(msgsnd(q, &m, 9000, IPC_NOWAIT)));
	printf("msgmax 10000: msgrcv: %s\n",
	       res(msgrcv(q, &m, sizeof(m.text), 0, IPC_NOWAIT)));
	printf("msgmax 10000: msgsnd 10001: %s\n",
	       res(msgsnd(q, &m, 10001, IPC_NOWAIT)));
	printf("msgmax 10000: msgsnd 9000 older queue: %s\n",
	       res(msgsnd(old, &m, 9000, IPC_NOWAIT)));
	printf("msgmax 10000: msgrcv older queue: %s\n",
	       res(msgrcv(old, &m, sizeof(m.text), 0, IPC_NOWAIT)));
	/* Longer than qbytes: it never fits (the kernel's rule). */
	put("msgmax", "20000");
	printf("msgmax 20000: msgsnd 17000 older queue: %s\n",
	       res(msgsnd(old, &m, 17000, IPC_NOWAIT)));
	put("msgmax", "100");
	/* A lowered limit counts in libsysv from the broker's next reading
	 * (any creation, IPC_SET or *_INFO in the namespace). */
	printf("known: msgmax 100, at once: msgsnd 101: %s\n",
	       res(msgsnd(q, &m, 101, IPC_NOWAIT)));
	(void)msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&ds);
	printf("msgmax 100: msgsnd 101: %s\n",
	       res(msgsnd(q, &m, 101, IPC_NOWAIT)));
	printf("msgmax 100: msgsnd 100: %s\n",
	       res(msgsnd(q, &m, 100, IPC_NOWAIT)));
	put("msgmax", "8192");

	/* msgmnb: a new queue's qbytes. */
	put("msgmnb", "20000");
	q = mq();
	memset(&ds, 0, sizeof(ds));
	old = msgctl(q, IPC_STAT, &ds);
	printf("msgmnb 20000: new queue qbytes: %s %lu\n", res(old),
	       (unsigned long)ds.msg_qbytes);
	put("msgmnb", "16384");

	/* msgmni: no more queues than it says. */
	{
		char v[16];

		snprintf(v, sizeof(v), "%d", nq);
		put("msgmni", v);
		printf("msgmni = in use: msgget: %s\n", res(mq()));
		snprintf(v, sizeof(v), "%d", nq + 1);
		put("msgmni", v);
		printf("msgmni = in use + 1: msgget: %s\n",
		       mq() < 0 ? res(-1) : "ok");
		put("msgmni", "32000");
	}

	/* kernel.sem: SEMMSL, SEMOPM, SEMMNI, SEMMNS. */
	put("sem", "10 32000 600 32000");
	printf("semmsl 10: semget 11: %s\n", res(sset(11)));
	s = sset(10);
	printf("semmsl 10: semget 10: %s\n", s < 0 ? res(-1) : "ok");
	for (int i = 0; i < 700; i++) {
		ops[i].sem_num = 0;
		ops[i].sem_op = 0;
		ops[i].sem_flg = IPC_NOWAIT;
	}
	printf("semopm 600: semop 550: %s\n", res(semop(s, ops, 550)));
	printf("semopm 600: semop 601: %s\n", res(semop(s, ops, 601)));
	put("sem", "10 32000 5 32000");
	printf("known: semopm 5, at once: semop 6: %s\n",
	       res(semop(s, ops, 6)));
	{
		struct seminfo si;
		union semun a = {.__buf = &si};

		(void)semctl(0, 0, IPC_INFO, a);
	}
	printf("semopm 5: semop 6: %s\n", res(semop(s, ops, 6)));
	printf("semopm 5: semop 5: %s\n", res(semop(s, ops, 5)));
	{
		char v[64];

		snprintf(v, sizeof(v), "250 32000 32 %d", ns);
		put("sem", v);
		printf("semmni = in use: semget: %s\n", res(sset(1)));
		snprintf(v, sizeof(v), "250 %d 32 32000", 10 + 2);
		put("sem", v);
		printf("semmns = used + 2: semget 3: %s\n", res(sset(3)));
		s = sset(2);
		printf("semmns = used + 2: semget 2: %s\n",
		       s < 0 ? res(-1) : "ok");
	}
	put("sem", "321 32001 123 31999");
	put("msgmax", "7777");
	put("msgmnb", "7778");
	put("msgmni", "31998");
	info();

	/* msg_next_id/sem_next_id: the next id, then reset to -1. */
	if (access("/proc/sys/kernel/msg_next_id", W_OK) == 0) {
		put("msg_next_id", "1234");
		printf("msg_next_id 1234: msgget: %s\n", idres(mq()));
		get("msg_next_id");
		put("msg_next_id", "98308"); /* seq 3, index 4 */
		printf("msg_next_id 98308: msgget: %s\n", idres(mq()));
		put("sem_next_id", "777");
		printf("sem_next_id 777: semget: %s\n", idres(sset(1)));
		get("sem_next_id");
		printf("after: msgget id != 98308: %s\n",
		       (mq() & 0x3fffffff) != 98308 ? "yes" : "no");
	} else {
		printf("no msg_next_id (kernel without checkpoint/restore)\n");
	}

	for (int i = 0; i < nq; i++)
		(void)msgctl(qs[i], IPC_RMID, NULL);
	for (int i = 0; i < ns; i++)
		(void)semctl(ss[i], 0, IPC_RMID);
	printf("limits: done%s\n", wrote_ok ? "" : " (setup failed)");
	return 0;
}
