/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the kernel lets this uid do to the segment behind an object, by
 * raw system calls (no libprim, no libsysv): attach it read-only, attach
 * it read-write, change its owner and mode (IPC_SET), remove it
 * (IPC_RMID). The broker names the segment (an OPEN reply names it even
 * with EACCES; segment ids are no secret, /proc/sysvipc/shm lists them),
 * and the kernel must refuse what the object's mode refuses
 * (doc/design.md, "Which access class is enforced by whom"); a damaged
 * object (EIDRM) keeps its segment until it is removed. Used by
 * tests/check_hostile.sh as the attacker, against the victim's objects.
 *
 *   attach_probe SOCK sem|msg ID none|ro|rw
 *   attach_probe SOCK registry ro
 *
 * EXPECT is the access the object's mode gives this uid (rw: read-write;
 * ro: read-only; none: no attach at all). IPC_SET and IPC_RMID must fail:
 * the probe only ever looks at other users' segments. Exit status: 0 as
 * expected, 3 a violation (more than expected: the attach, IPC_SET or
 * IPC_RMID succeeded), 1 less than expected, 2 usage or no broker.
 *
 * Concurrency: one thread; it detaches what it attached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

static int
ask(int fd, int op, int type, int id, struct primd_rep *p)
{
	struct primd_req q;

	memset(&q, 0, sizeof(q));
	q.magic = PRIMD_MAGIC;
	q.version = PRIMD_VERSION;
	q.op = (uint16_t)op;
	q.seq = (uint32_t)op;
	q.type = (uint16_t)type;
	q.id = id;
	if (send(fd, &q, sizeof(q), 0) != sizeof(q) ||
	    recv(fd, p, sizeof(*p), 0) != sizeof(*p))
		return -1;
	return 0;
}

/* 1 if an attach with flg succeeded (and was undone). */
static int
attaches(int shmid, int flg)
{
	void *p = shmat(shmid, NULL, flg);

	if (p == (void *)-1)
		return 0;
	shmdt(p);
	return 1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct primd_rep p;
	struct shmid_ds ds;
	const char *what = argc > 2 ? argv[2] : "", *expect;
	int fd, shmid, type = 0, ro, rw, set, rmid, bad = 0, less = 0;

	if (argc < 4 || strlen(argv[1]) >= sizeof(a.sun_path)) {
		fprintf(stderr, "usage: attach_probe SOCK sem|msg ID "
				"none|ro|rw; attach_probe SOCK registry ro\n");
		return 2;
	}
	expect = argv[argc - 1];
	strcpy(a.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    ask(fd, PRIMD_HELLO, 0, 0, &p) != 0 || p.err != 0) {
		perror("attach_probe: broker");
		return 2;
	}
	shmid = p.shmid;
	if (strcmp(what, "registry") != 0) {
		type = strcmp(what, "sem") == 0 ? PRIMD_SEM : PRIMD_MSG;
		if (argc != 5 || ask(fd, PRIMD_OPEN, type, atoi(argv[3]), &p) ||
		    (p.err != 0 && p.err != EACCES && p.err != EIDRM) ||
		    p.shmid < 0) {
			fprintf(stderr, "attach_probe: OPEN %s %s: %s\n", what,
				argv[3], strerror(p.err));
			return 2;
		}
		shmid = p.shmid;
	}
	close(fd);

	ro = attaches(shmid, SHM_RDONLY);
	rw = attaches(shmid, 0);
	/* Give the segment to ourselves, open to all: only its owner or
	 * creator may (or CAP_SYS_ADMIN). */
	memset(&ds, 0, sizeof(ds));
	ds.shm_perm.uid = getuid();
	ds.shm_perm.gid = getgid();
	ds.shm_perm.mode = 0666;
	set = shmctl(shmid, IPC_SET, &ds) == 0;
	rmid = shmctl(shmid, IPC_RMID, NULL) == 0;

	if (strcmp(expect, "rw") == 0) {
		less = !ro || !rw;
	} else if (strcmp(expect, "ro") == 0) {
		less = !ro;
		bad = rw;
	} else if (strcmp(expect, "none") == 0) {
		bad = ro || rw;
	} else {
		fprintf(stderr, "attach_probe: EXPECT is none, ro or rw\n");
		return 2;
	}
	bad = bad || set || rmid;
	printf("attach_probe: %s %s (segment %d) as uid %u: read-only attach "
	       "%s, read-write attach %s, IPC_SET %s, IPC_RMID %s: %s\n",
	       what, argc == 5 ? argv[3] : "", shmid, (unsigned)getuid(),
	       ro ? "allowed" : "refused", rw ? "allowed" : "refused",
	       set ? "ALLOWED" : "refused", rmid ? "ALLOWED" : "refused",
	       bad    ? "VIOLATION"
	       : less ? "less than the mode gives"
		      : "ok");
	return bad ? 3 : less ? 1 : 0;
}
