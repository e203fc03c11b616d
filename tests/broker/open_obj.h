/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * For test programs that act on an object's memory directly, as libsysv
 * would or as an attacker can: say HELLO to the broker on a socket path,
 * ask it to OPEN an id, attach the segment it names (read-write, or
 * read-only when rw is 0). Dies (exit 2) when any step fails.
 */
#ifndef TESTS_OPEN_OBJ_H
#define TESTS_OPEN_OBJ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

/* Bytes of the libprim object after the header page, and the segment's
 * id, set by open_obj. */
static size_t open_obj_len;
static int open_obj_shmid;

static void *
open_obj(const char *path, int type, int id, int rw)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct primd_req q;
	struct primd_rep p;
	void *h;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("open_obj: connect");
		exit(2);
	}
	for (int op = PRIMD_HELLO; op <= PRIMD_OPEN; op += PRIMD_OPEN - 1) {
		memset(&q, 0, sizeof(q));
		q.magic = PRIMD_MAGIC;
		q.version = PRIMD_VERSION;
		q.op = (uint16_t)op;
		q.seq = (uint32_t)op;
		q.type = (uint16_t)type;
		q.id = id;
		if (send(fd, &q, sizeof(q), 0) != sizeof(q) ||
		    recv(fd, &p, sizeof(p), 0) != sizeof(p)) {
			perror("open_obj: broker");
			exit(2);
		}
		if (p.err != 0) {
			fprintf(stderr, "open_obj: op %d: %s\n", op,
				strerror(p.err));
			exit(2);
		}
	}
	close(fd);
	h = shmat(p.shmid, NULL, rw ? 0 : SHM_RDONLY);
	if (h == (void *)-1) {
		perror("open_obj: shmat");
		exit(2);
	}
	open_obj_len = (size_t)p.seg_size - PRIMD_OBJ_HDR;
	open_obj_shmid = p.shmid;
	return h;
}

#endif
