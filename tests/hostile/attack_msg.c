/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A hostile writer of a message queue: run as a uid that may write the
 * queue, it maps it through the broker and writes one protocol word with
 * a value no honest process writes, or keeps writing for some seconds.
 * White-box: it includes prim/msgq.c for the layout.
 *
 *   attack_msg SOCK ID WORD [SECONDS]
 *
 * WORD: pend count head tail qbytes writing claimed length tags
 * futex churn scribble
 */
#include <sys/wait.h>
#include <time.h>
#include "../unit/testutil.h"

#include "../broker/open_obj.h"
#include "msgq.c"

int
main(int argc, char **argv)
{
	struct prim_msgq *q;
	struct prim_msgq_shm *m;
	const char *w;
	double until;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char *base;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: attack_msg SOCK ID WORD [SECONDS]\n");
		return 2;
	}
	base = open_obj(argv[1], PRIMD_MSG, atoi(argv[2]), 1);
	if ((rc = prim_msgq_open(base + PRIMD_OBJ_HDR, open_obj_len, &q)) !=
	    0) {
		fprintf(stderr, "attack_msg: open: %s\n", strerror(-rc));
		return 2;
	}
	m = q->shm;
	w = argv[3];
	until = now_s() + (argc > 4 ? atof(argv[4]) : 0);
	if (strcmp(w, "pend") == 0) {
		m->acct.a = (uint64_t)0xfff0 << 48;
	} else if (strcmp(w, "count") == 0) {
		m->acct.a = 0xffffffffULL | 0xffffULL << 32;
	} else if (strcmp(w, "head") == 0) {
		m->head.a = ~0ULL >> 1;
	} else if (strcmp(w, "tail") == 0) {
		m->tail.a = ~0ULL >> 2;
	} else if (strcmp(w, "qbytes") == 0) {
		m->qb.a = ~0ULL;
	} else if (strcmp(w, "writing") == 0) {
		for (uint32_t i = 0; i < q->n; i++)
			slot(q, i)->state = mkst(i, prim__pid(), ST_WRITING);
	} else if (strcmp(w, "claimed") == 0) {
		pid_t d = dead_pid();

		for (uint32_t i = 0; i < q->n; i++)
			slot(q, i)->state = mkst(i, (uint32_t)d, ST_CLAIMED);
	} else if (strcmp(w, "length") == 0) {
		for (uint32_t i = 0; i < q->n; i++) {
			slot(q, i)->len = 0xffffffffu;
			slot(q, i)->state = mkst(i, 0, ST_READY);
		}
	} else if (strcmp(w, "tags") == 0) {
		for (uint32_t i = 0; i < q->n; i++)
			q->tags[i] = x * i;
	} else if (strcmp(w, "futex") == 0) {
		do {
			ck_pr_add_32(&m->any.word, 2);
			ck_pr_add_32(&m->nf.word, 2);
			ck_pr_add_32(&m->lane[1].word, 2);
		} while (now_s() < until);
	} else if (strcmp(w, "churn") == 0) {
		do
			ck_pr_add_64(&m->acct.a, 1ULL << 32);
		while (now_s() < until);
	} else if (strcmp(w, "scribble") == 0) {
		uint64_t *p = (uint64_t *)(void *)m;
		size_t nw = m->seg.size / 8;

		do {
			xorshift(&x);
			/* Mostly the protocol lines, sometimes anywhere. */
			p[(x & 3) ? (x >> 8) % (sizeof(*m) / 8) : x % nw] = x;
			usleep(100);
		} while (now_s() < until);
	} else {
		fprintf(stderr, "attack_msg: unknown word %s\n", w);
		prim_msgq_close(q);
		return 2;
	}
	prim_msgq_close(q);
	printf("attack_msg: %s written into queue %s\n", w, argv[2]);
	return 0;
}
