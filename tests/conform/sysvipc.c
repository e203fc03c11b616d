/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sysvipc: the objects tests/check_procfs.sh lists through /proc/sysvipc
 * and ipcs. `sysvipc make KEY` makes, with keys from KEY on, and leaves
 * behind:
 *   - semaphore sets: KEY+1 (3 sems, 0600, one semop so otime is set),
 *     KEY+2 (1 sem, 0644, untouched), IPC_PRIVATE (2 sems, 0666);
 *   - message queues: KEY+10 (0640, two messages of 10 and 25 bytes),
 *     KEY+11 (0666, one message sent and one received), IPC_PRIVATE
 *     (0600, empty);
 *   - a shm segment KEY+20 (4096 bytes, 0600), the kernel's in both runs.
 * It prints nothing on success; a failed call is reported and exits 1.
 * `sysvipc clean KEY` removes them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

static void
die(const char *what)
{
	fprintf(stderr, "sysvipc: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct m {
	long type;
	char text[64];
};

static void
snd(int q, long type, size_t len)
{
	struct m m = {type, {0}};

	memset(m.text, 'x', len);
	if (msgsnd(q, &m, len, 0) != 0)
		die("msgsnd");
}

int
main(int argc, char **argv)
{
	key_t k;
	int s, q;

	if (argc != 3)
		return 2;
	k = (key_t)strtol(argv[2], NULL, 0);
	if (strcmp(argv[1], "clean") == 0) {
		int ids[] = {semget(k + 1, 0, 0), semget(k + 2, 0, 0)};
		int qs[] = {msgget(k + 10, 0), msgget(k + 11, 0)};

		for (int i = 0; i < 2; i++) {
			if (ids[i] >= 0)
				semctl(ids[i], 0, IPC_RMID);
			if (qs[i] >= 0)
				msgctl(qs[i], IPC_RMID, NULL);
		}
		if ((s = shmget(k + 20, 0, 0)) >= 0)
			shmctl(s, IPC_RMID, NULL);
		return 0;
	}
	if ((s = semget(k + 1, 3, IPC_CREAT | IPC_EXCL | 0600)) < 0)
		die("semget 1");
	struct sembuf op = {1, 2, 0};
	if (semop(s, &op, 1) != 0)
		die("semop");
	if (semget(k + 2, 1, IPC_CREAT | IPC_EXCL | 0644) < 0)
		die("semget 2");
	if (semget(IPC_PRIVATE, 2, IPC_CREAT | 0666) < 0)
		die("semget private");
	if ((q = msgget(k + 10, IPC_CREAT | IPC_EXCL | 0640)) < 0)
		die("msgget 10");
	snd(q, 1, 10);
	snd(q, 2, 25);
	if ((q = msgget(k + 11, IPC_CREAT | IPC_EXCL | 0666)) < 0)
		die("msgget 11");
	snd(q, 3, 7);
	struct m m;
	if (msgrcv(q, &m, sizeof(m.text), 0, 0) != 7)
		die("msgrcv");
	if (msgget(IPC_PRIVATE, IPC_CREAT | 0600) < 0)
		die("msgget private");
	if (shmget(k + 20, 4096, IPC_CREAT | IPC_EXCL | 0600) < 0)
		die("shmget");
	/* A bad path pointer: the kernel's EFAULT, also through libsysv's
	 * open and fopen, which look at the path first. Not under a
	 * sanitizer (check_procfs says): its own open interceptor reads the
	 * path and crashes, with or without libsysv. */
	if (getenv("PRIM_PROCFS_BADPTR") != NULL) {
		const char *bad = (const char *)8;
		int fd = open(bad, O_RDONLY), e = errno;
		FILE *f;

		printf("open bad path -> %d %s\n", fd, fd < 0 ? strerror(e) : "");
		errno = 0;
		f = fopen(bad, "r");
		printf("fopen bad path -> %s %s\n", f ? "FILE" : "NULL",
		       f ? "" : strerror(errno));
	}
	return 0;
}
