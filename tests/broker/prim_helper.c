/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper for tests/check_broker.sh: opens an object through primd
 * (PRIMD_OPEN), attaches its segment and operates on it with libprim, as
 * libsysv would, without depending on libsysv. Built by the test script:
 *
 *   prim_helper SOCK setval ID SEMNUM VAL
 *   prim_helper SOCK undo ID SEMNUM OP [SECONDS]
 *                                 semop with SEM_UNDO, sleep, exit
 *   prim_helper SOCK msgsnd ID TYPE TEXT
 *   prim_helper SOCK msgrcv ID             print "TYPE TEXT"
 *
 * Exit status 0 on success; a libprim error is printed as "rc=-N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "open_obj.h"

int
main(int argc, char **argv)
{
	char *h;
	void *obj;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: prim_helper SOCK CMD ID ...\n");
		return 2;
	}
	if (strcmp(argv[2], "setval") == 0 || strcmp(argv[2], "undo") == 0) {
		struct prim_semset *set;

		if (argc != 6 && argc != 7)
			return 2;
		h = open_obj(argv[1], PRIMD_SEM, atoi(argv[3]), 1);
		obj = (char *)h + PRIMD_OBJ_HDR;
		if ((rc = prim_semset_open(obj, open_obj_len, &set)) != 0)
			goto out;
		if (argv[2][0] == 's') {
			rc = prim_sem_setval(set, atoi(argv[4]), atoi(argv[5]));
		} else {
			struct prim_sembuf sb = {
			    .sem_num = (unsigned short)atoi(argv[4]),
			    .sem_op = (short)atoi(argv[5]),
			    .sem_flg = PRIM_SEM_UNDO | PRIM_IPC_NOWAIT,
			};

			rc = prim_sem_op(set, &sb, 1);
			/* Exit without undoing: the broker must reap it. */
			if (rc == 0 && argc > 6) {
				printf("ready\n");
				fflush(stdout);
				sleep((unsigned)atoi(argv[6]));
			}
		}
		prim_semset_close(set); /* frees the handle, undoes nothing */
	} else if (strcmp(argv[2], "msgsnd") == 0 ||
		   strcmp(argv[2], "msgrcv") == 0) {
		struct prim_msgq *mq;
		char buf[8192];
		long type = 0;
		ssize_t n;

		h = open_obj(argv[1], PRIMD_MSG, atoi(argv[3]), 1);
		obj = (char *)h + PRIMD_OBJ_HDR;
		if ((rc = prim_msgq_open(obj, open_obj_len, &mq)) != 0)
			goto out;
		if (argv[2][3] == 's') {
			if (argc != 6)
				return 2;
			rc = prim_msgq_send(mq, atol(argv[4]), argv[5],
					    strlen(argv[5]), PRIM_IPC_NOWAIT);
		} else {
			n = prim_msgq_recv(mq, buf, sizeof(buf) - 1, 0,
					   PRIM_IPC_NOWAIT, &type);
			rc = n < 0 ? (int)n : 0;
			if (n >= 0)
				printf("%ld %.*s\n", type, (int)n, buf);
		}
		prim_msgq_close(mq);
	} else {
		fprintf(stderr, "prim_helper: unknown command %s\n", argv[2]);
		return 2;
	}
out:
	if (rc != 0)
		printf("rc=%d\n", rc);
	return rc != 0;
}
