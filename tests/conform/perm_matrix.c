/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The permission matrix, with real uids, run once against the kernel and
 * once under libsysv (tests/check_perm_matrix.sh compares the outputs line
 * by line). A creator (uid 61011) makes, for every mode of a list that
 * includes the write-only ones, a semaphore set, a queue and a kernel shm
 * segment with the same key and mode, then gives all three to another
 * owner (uid 61012, gid 61020) with IPC_SET. Then each actor tries every
 * call that needs R, W or ownership, and a raw shmat (read-only and
 * read-write) of the memory behind each object:
 *   creator   61011   owner class through cuid, after the IPC_SET
 *   owner     61012   owner class through uid
 *   member    61013   supplementary group 61020: the group class
 *   wheel     61014   supplementary group 0: nothing through the
 *                     broker's gid (prim's segments used to have it)
 *   other     65534   the other class
 * On the kernel, "the memory behind" a set or a queue is the kernel shm
 * segment of the same ipc_perm (the oracle); under prim it is the object's
 * backing segment, whose id the check script finds as root and passes in
 * a map file: the kernel must grant on it exactly what the object's mode
 * grants.
 *
 *   perm_matrix make KEY           as the creator
 *   perm_matrix try KEY NAME [MAP] as each actor; MAP: lines "i sem msg"
 *   perm_matrix ids KEY            as root: lines "i semid msqid"
 *   perm_matrix clean KEY          as root
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static const int modes[] = {
	0600, 0640, 0660, 0604, 0606, 0620, 0602, 0622, 0462, 0246,
	0444, 0222, 0000, 0666, 0060, 0006, 0400, 0200, 0700, 0042,
};
#define NMODES (int)(sizeof(modes) / sizeof(modes[0]))
#define OWNER 61012
#define GROUP 61020

static const char *
res(long r)
{
	static char buf[16][32];
	static int n;
	char *b = buf[n++ % 16];

	if (r < 0)
		snprintf(b, 32, "%s", errno == EACCES  ? "EACCES"
				      : errno == EPERM ? "EPERM"
				      : errno == EAGAIN ? "EAGAIN"
				      : errno == ENOMSG ? "ENOMSG"
				      : errno == ENOENT ? "ENOENT"
				      : errno == EINVAL ? "EINVAL"
							: strerror(errno));
	else
		snprintf(b, 32, "ok");
	return b;
}

static int
make(key_t base)
{
	for (int i = 0; i < NMODES; i++) {
		int s = semget(base + i, 2, IPC_CREAT | IPC_EXCL | modes[i]);
		int q = msgget(base + i, IPC_CREAT | IPC_EXCL | modes[i]);
		int m = shmget(base + i, 4096, IPC_CREAT | IPC_EXCL | modes[i]);
		struct {
			long mtype;
			char t[4];
		} msg = { 1, "m" };
		struct semid_ds sd;
		struct msqid_ds qd;
		struct shmid_ds md;
		unsigned short v[2] = { 1, 0 };

		if (s < 0 || q < 0 || m < 0)
			return perror("perm_matrix make"), 1;
		/* Values and messages while the creator still owns them (a
		 * creator may not read or write what its mode forbids). */
		if (semctl(s, 0, SETALL, (union semun){ .array = v }) != 0 &&
		    errno != EACCES)
			return perror("SETALL"), 1;
		for (int k = 0; k < 3; k++)
			if (msgsnd(q, &msg, 1, IPC_NOWAIT) != 0 &&
			    errno != EACCES)
				return perror("msgsnd"), 1;
		/* IPC_STAT needs R, which some modes deny: build the
		 * structure from what we know. */
		memset(&sd, 0, sizeof(sd));
		sd.sem_perm.uid = OWNER;
		sd.sem_perm.gid = GROUP;
		sd.sem_perm.mode = (unsigned short)modes[i];
		memset(&qd, 0, sizeof(qd));
		qd.msg_perm = sd.sem_perm;
		qd.msg_qbytes = 16384;
		memset(&md, 0, sizeof(md));
		md.shm_perm.uid = OWNER;
		md.shm_perm.gid = GROUP;
		md.shm_perm.mode = (unsigned short)modes[i];
		if (semctl(s, 0, IPC_SET, (union semun){ .buf = &sd }) != 0 ||
		    msgctl(q, IPC_SET, &qd) != 0 || shmctl(m, IPC_SET, &md) != 0)
			return perror("perm_matrix IPC_SET"), 1;
	}
	printf("perm_matrix make: %d modes, euid %d\n", NMODES, (int)geteuid());
	return 0;
}

/* The memory behind object i: prim's backing segments from the map, or
 * (no map: the kernel) the kernel shm segment of the same perm. */
static int seg_of[64][2];

static void
read_map(const char *path, key_t base)
{
	FILE *f = path != NULL ? fopen(path, "r") : NULL;
	int i, a, b;

	for (i = 0; i < NMODES; i++) {
		int m = shmget(base + i, 0, 0);

		seg_of[i][0] = seg_of[i][1] = m;
	}
	if (f == NULL)
		return;
	while (fscanf(f, "%d %d %d", &i, &a, &b) == 3)
		if (i >= 0 && i < NMODES) {
			seg_of[i][0] = a;
			seg_of[i][1] = b;
		}
	fclose(f);
}

static const char *
attach(int shmid, int ro)
{
	void *p;

	/* The kernel run may not find the segment (EACCES on shmget with
	 * flags 0 does not happen; a missing one would be -1). */
	if (shmid < 0)
		return "no segment";
	p = shmat(shmid, NULL, ro ? SHM_RDONLY : 0);
	if (p == (void *)-1)
		return res(-1);
	shmdt(p);
	return "ok";
}

static int
try(key_t base, const char *name, const char *map)
{
	read_map(map, base);
	for (int i = 0; i < NMODES; i++) {
		int s = semget(base + i, 0, 0), q = msgget(base + i, 0);
		struct sembuf zero = { 1, 0, IPC_NOWAIT },
			      up = { 0, 1, IPC_NOWAIT },
			      down = { 0, -1, IPC_NOWAIT };
		struct {
			long mtype;
			char t[8];
		} msg = { 2, "x" };
		unsigned short v[2];
		struct semid_ds sd;
		struct msqid_ds qd;
		char p[64];

		snprintf(p, sizeof(p), "%s mode %04o", name, modes[i]);
		printf("%s semget 0/0400/0200 -> %s %s %s\n", p, res(s),
		       res(semget(base + i, 0, 0400)),
		       res(semget(base + i, 0, 0200)));
		printf("%s msgget 0/0400/0200 -> %s %s %s\n", p, res(q),
		       res(msgget(base + i, 0400)), res(msgget(base + i, 0200)));
		if (s >= 0) {
			int r1 = semop(s, &zero, 1), r2 = semop(s, &up, 1);
			int r3 = r2 == 0 ? semop(s, &down, 1) : -1;

			printf("%s semop wait-for-zero -> %s, +1 -> %s, -1 -> %s\n",
			       p, res(r1), res(r2),
			       r2 == 0 ? res(r3) : "(skipped)");
			printf("%s GETVAL -> %s, GETALL -> %s, GETNCNT -> %s\n", p,
			       res(semctl(s, 0, GETVAL)),
			       res(semctl(s, 0, GETALL, (union semun){ .array = v })),
			       res(semctl(s, 0, GETNCNT)));
			printf("%s SETVAL -> %s\n", p,
			       res(semctl(s, 0, SETVAL, (union semun){ .val = 1 })));
			printf("%s sem IPC_STAT -> %s\n", p,
			       res(semctl(s, 0, IPC_STAT, (union semun){ .buf = &sd })));
			memset(&sd, 0, sizeof(sd));
			sd.sem_perm.uid = OWNER;
			sd.sem_perm.gid = GROUP;
			sd.sem_perm.mode = (unsigned short)modes[i];
			printf("%s sem IPC_SET (no change) -> %s\n", p,
			       res(semctl(s, 0, IPC_SET, (union semun){ .buf = &sd })));
		}
		if (q >= 0) {
			int r1 = msgsnd(q, &msg, 1, IPC_NOWAIT);
			long r2 = msgrcv(q, &msg, sizeof(msg.t), 0, IPC_NOWAIT);

			printf("%s msgsnd -> %s, msgrcv -> %s\n", p, res(r1),
			       res(r2));
			printf("%s msg IPC_STAT -> %s\n", p,
			       res(msgctl(q, IPC_STAT, &qd)));
			memset(&qd, 0, sizeof(qd));
			qd.msg_perm.uid = OWNER;
			qd.msg_perm.gid = GROUP;
			qd.msg_perm.mode = (unsigned short)modes[i];
			qd.msg_qbytes = 16384;
			printf("%s msg IPC_SET (no change) -> %s\n", p,
			       res(msgctl(q, IPC_SET, &qd)));
		}
		printf("%s raw shmat of the set's memory: ro %s, rw %s\n", p,
		       attach(seg_of[i][0], 1), attach(seg_of[i][0], 0));
		printf("%s raw shmat of the queue's memory: ro %s, rw %s\n", p,
		       attach(seg_of[i][1], 1), attach(seg_of[i][1], 0));
	}
	return 0;
}

static int
clean(key_t base)
{
	int n = 0;

	for (int i = 0; i < NMODES; i++) {
		int s = semget(base + i, 0, 0), q = msgget(base + i, 0);
		int m = shmget(base + i, 0, 0);

		n += s >= 0 && semctl(s, 0, IPC_RMID) == 0;
		n += q >= 0 && msgctl(q, IPC_RMID, NULL) == 0;
		n += m >= 0 && shmctl(m, IPC_RMID, NULL) == 0;
	}
	printf("perm_matrix clean: removed %d\n", n);
	return n == 3 * NMODES ? 0 : 1;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "make") == 0)
		return make((key_t)strtol(argv[2], NULL, 0));
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "try") == 0)
		return try((key_t)strtol(argv[2], NULL, 0), argv[3],
			   argc == 5 ? argv[4] : NULL);
	if (argc == 3 && strcmp(argv[1], "clean") == 0)
		return clean((key_t)strtol(argv[2], NULL, 0));
	if (argc == 3 && strcmp(argv[1], "ids") == 0) {
		key_t base = (key_t)strtol(argv[2], NULL, 0);

		for (int i = 0; i < NMODES; i++)
			printf("%d %d %d\n", i, semget(base + i, 0, 0),
			       msgget(base + i, 0));
		return 0;
	}
	fprintf(stderr, "usage: perm_matrix make|try|clean KEY ...\n");
	return 2;
}
