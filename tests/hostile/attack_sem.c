/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A hostile writer of a semaphore set: run as a uid that may write the set
 * (its own, or someone's 0666 set), it maps the set through the broker as
 * libsysv would and writes one protocol word with a value no honest
 * process writes, or keeps writing (churn, scribble) for some seconds.
 * White-box: it includes prim/sem.c for the layout.
 *
 *   attack_sem SOCK ID WORD [SECONDS]
 *
 * WORD: held tag removed sleepers active active-range astate idents
 * undo-idents count frozen-req pidv churn scribble geometry setall
 * dead-pids [K]
 *
 * geometry: rewrite the header into another consistent geometry that fits
 * the segment, as many semaphores as fit (what a broker adopting it must
 * refuse: its registry says otherwise). setall: ask the broker for a
 * SETALL of the registry's nsems values (PRIMD_SEMCTL, as libsysv does for
 * a write-only caller) and print "setall: err=N". dead-pids: every slot
 * and undo record names a distinct pid no process has (just below
 * kernel.pid_max, checked with kill), or one above pid_max: work for an
 * owner sweep that believes them.
 */
#include <signal.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include "../unit/testutil.h"

#include "../broker/open_obj.h"
#include "sem.c"

/* PRIMD_SEMCTL SETALL of n zeros: the broker's errno (or -1). */
static int
broker_setall(const char *path, int id, uint32_t n)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct primd_req q;
	struct primd_rep p;
	char buf[sizeof(q) + 2 * 32000];
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	size_t len = sizeof(q) + (size_t)n * sizeof(uint16_t);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    len > sizeof(buf))
		return -1;
	for (int op = PRIMD_HELLO; op <= PRIMD_SEMCTL;
	     op += PRIMD_SEMCTL - PRIMD_HELLO) {
		memset(&q, 0, sizeof(q));
		q.magic = PRIMD_MAGIC;
		q.version = PRIMD_VERSION;
		q.op = (uint16_t)op;
		q.seq = (uint32_t)op;
		q.type = PRIMD_SEM;
		q.id = id;
		q.flags = op == PRIMD_SEMCTL ? SETALL : 0;
		memset(buf, 0, len);
		memcpy(buf, &q, sizeof(q));
		if (send(fd, buf, op == PRIMD_SEMCTL ? len : sizeof(q), 0) < 0 ||
		    recv(fd, &p, sizeof(p), 0) != sizeof(p)) {
			close(fd);
			return -1;
		}
		if (p.err != 0)
			break;
	}
	close(fd);
	return p.err;
}

int
main(int argc, char **argv)
{
	struct prim_semset *set;
	struct prim_semset *h;
	const char *w;
	double until;
	uint64_t x = 0x2545f4914f6cdd1dULL;
	char *base;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: attack_sem SOCK ID WORD [SECONDS]\n");
		return 2;
	}
	if (argc == 5 && strcmp(argv[3], "setall") == 0) {
		printf("setall: err=%d\n",
		       broker_setall(argv[1], atoi(argv[2]),
				     (uint32_t)atoi(argv[4])));
		return 0;
	}
	base = open_obj(argv[1], PRIMD_SEM, atoi(argv[2]), 1);
	if ((rc = prim_semset_open(base + PRIMD_OBJ_HDR, open_obj_len, &set)) !=
	    0) {
		fprintf(stderr, "attack_sem: open: %s\n", strerror(-rc));
		return 2;
	}
	h = hdr(set);
	w = argv[3];
	until = now_s() + (argc > 4 ? atof(argv[4]) : 0);
	if (strcmp(w, "held") == 0) {
		for (uint32_t n = 0; n < h->nsems; n++)
			__atomic_fetch_or(&sem_at(h, n)->word, W_HELD | tag_of(4242), __ATOMIC_SEQ_CST);
	} else if (strcmp(w, "tag") == 0) {
		__atomic_fetch_or(&sem_at(h, 0)->word, W_TAG_MASK, __ATOMIC_SEQ_CST);
	} else if (strcmp(w, "removed") == 0) {
		__atomic_fetch_or(&sem_at(h, 0)->word, W_REMOVED, __ATOMIC_SEQ_CST);
	} else if (strcmp(w, "sleepers") == 0) {
		for (uint32_t n = 0; n < h->nsems; n++)
			__atomic_fetch_or(&sem_at(h, n)->word, W_SLEEPERS, __ATOMIC_SEQ_CST);
	} else if (strcmp(w, "active") == 0) {
		/* An active request in slot 0, frozen, with insane content. */
		struct prim_slot_shm *s = slot_at(h, 0);

		s->kind = 77;
		s->req = REQ_PUBLISHED | W_HELD | tag_of(99);
		h->shm->active = 99ULL << 16 | 1;
	} else if (strcmp(w, "active-range") == 0) {
		h->shm->active = 5ULL << 16 | 0xfff0;
	} else if (strcmp(w, "astate") == 0) {
		h->shm->astate = ~0ULL;
		h->shm->active = h->shm->active + (1ULL << 16);
	} else if (strcmp(w, "idents") == 0) {
		uint64_t id = (uint64_t)(uint32_t)dead_pid() | 7ULL << 32;

		for (uint32_t i = 0; i < h->nslots; i++)
			slot_at(h, i)->ident = id;
	} else if (strcmp(w, "undo-idents") == 0) {
		uint64_t id = (uint64_t)(uint32_t)dead_pid() | 7ULL << 32;

		for (uint32_t i = 0; i < h->nprocs; i++) {
			undo_at(h, i)->ident = id;
			undo_at(h, i)->adj[0] = 0x7fff;
		}
	} else if (strcmp(w, "count") == 0) {
		/* A published waiting request claiming 0xffffffff ops. */
		struct prim_slot_shm *s = slot_at(h, 1);

		s->ident = prim__ident();
		s->kind = REQ_OPS;
		s->nops = 0xffffffffu;
		s->ndist = 1;
		slot_dist(h, s)[0] = 0;
		s->ticket = 1;
		s->wait_sem = 1;
		s->wait_kind = WAIT_N;
		s->blk = BLK(1, 0, WAIT_N, 0); /* blocked on 0 */
		s->req = REQ_PUBLISHED;
		__atomic_fetch_or(&sem_at(h, 0)->word, W_SLEEPERS, __ATOMIC_SEQ_CST);
	} else if (strcmp(w, "frozen-req") == 0) {
		struct prim_slot_shm *s = slot_at(h, 2);

		s->ident = (uint64_t)(uint32_t)dead_pid() | 1ULL << 32;
		s->kind = REQ_OPS;
		s->req = REQ_PUBLISHED | W_HELD | tag_of(31);
	} else if (strcmp(w, "pidv") == 0) {
		for (uint32_t n = 0; n < h->nsems; n++)
			sem_at(h, n)->pidv = ~0ULL;
	} else if (strcmp(w, "geometry") == 0) {
		/* The fewest slots and records, the most semaphores that fit
		 * (the layout's size stays within the segment's pages). */
		struct prim_semset_shm *m = h->shm;
		struct prim_semset_attr ga = {.semopm = h->semopm,
					      .nprocs = 1,
					      .nslots = CTL_SLOTS + 1};
		struct geom g, best = {0};

		for (ga.nsems = 1; ga.nsems <= MAX_NSEMS; ga.nsems++) {
			if (geometry(&ga, &g) != 0 || g.size > open_obj_len)
				break;
			best = g;
		}
		if (best.nsems <= h->nsems) {
			fprintf(stderr, "attack_sem: no larger geometry fits\n");
			prim_semset_close(set);
			return 2;
		}
		m->nsems = best.nsems;
		m->semopm = best.semopm;
		m->nprocs = best.nprocs;
		m->nslots = best.nslots;
		m->cap = best.cap;
		m->off_sems = best.off_sems;
		m->off_undo = best.off_undo;
		m->off_slots = best.off_slots;
		m->undo_size = (uint32_t)best.undo_size;
		m->slot_size = (uint32_t)best.slot_size;
		m->seg.size = best.size;
		printf("attack_sem: geometry of %u semaphores\n", best.nsems);
	} else if (strcmp(w, "dead-pids") == 0) {
		uint32_t nrec = h->nslots + h->nprocs, k = 0;
		FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
		long pmax = 32768;
		pid_t p;

		if (f != NULL) {
			if (fscanf(f, "%ld", &pmax) != 1)
				pmax = 32768;
			fclose(f);
		}
		/* attack_sem SOCK ID dead-pids K: the Kth set's own pids. */
		p = (pid_t)(pmax - (argc > 4 ? atol(argv[4]) : 0) * nrec);
		for (uint32_t n = 0; n < nrec && p > 1; n++) {
			uint64_t id;

			if (n % 8 == 7) {
				id = (uint64_t)(uint32_t)(pmax + 1 + n);
			} else {
				do
					p--;
				while (p > 1 && (kill(p, 0) == 0 || errno != ESRCH));
				id = (uint64_t)(uint32_t)p;
			}
			id |= 1ULL << 32;
			if (n < h->nslots)
				slot_at(h, n)->ident = id;
			else
				undo_at(h, n - h->nslots)->ident = id;
			k++;
		}
		h->shm->slots_hw = h->nslots;
		h->shm->undo_hw = h->nprocs;
		printf("attack_sem: %u dead pids\n", k);
	} else if (strcmp(w, "churn") == 0) {
		/* A live writer: every word's version, over and over. */
		do
			for (uint32_t n = 0; n < h->nsems; n++)
				ck_pr_add_64(&sem_at(h, n)->word, W_VER_ONE);
		while (now_s() < until);
	} else if (strcmp(w, "scribble") == 0) {
		uint64_t *m = (uint64_t *)(void *)h->shm;
		size_t nw = h->shm->seg.size / 8;

		do {
			xorshift(&x);
			m[x % nw] = (x & 1) ? x : x & 0x7ffff;
			usleep(100);
		} while (now_s() < until);
	} else {
		fprintf(stderr, "attack_sem: unknown word %s\n", w);
		prim_semset_close(set);
		return 2;
	}
	prim_semset_close(set);
	printf("attack_sem: %s written into set %s\n", w, argv[2]);
	return 0;
}
