/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which kernel shm segment backs a prim object: run as root (who may OPEN
 * anything), it asks the broker and prints the shmid. For the tests that
 * check what the kernel lets each user do with that memory.
 *
 *   segof SOCK sem|msg ID
 */
#include "../broker/open_obj.h"

int
main(int argc, char **argv)
{
	void *h;

	if (argc != 4) {
		fprintf(stderr, "usage: segof SOCK sem|msg ID\n");
		return 2;
	}
	h = open_obj(argv[1], strcmp(argv[2], "sem") == 0 ? PRIMD_SEM : PRIMD_MSG,
		     atoi(argv[3]), 0);
	shmdt(h);
	printf("%d\n", open_obj_shmid);
	return 0;
}
