/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The protocol fuzzer of the broker, in process (libFuzzer): the broker's
 * own objects (every file of broker/ but primd.c) and libprim, a registry of
 * their own, and primd__reg_handle fed a sequence of requests decoded from
 * each input, every one from credentials chosen among a few: root,
 * CAP_SYS_ADMIN only, CAP_IPC_OWNER only, and plain uids that share
 * groups or do not. Between requests the input may scribble on an
 * object's segment (the broker's own mapping: what any writer of the
 * object can do), reap a pid, list the owners or restart the broker (a new
 * one adopts the registry and every segment), so the broker's bounded
 * paths run against hostile memory.
 *
 * Every reply is checked by an independent permission oracle: a small
 * model of the kernel's SysV rules (owner = euid is uid or cuid; group =
 * egid or a supplementary group is gid or cgid; CAP_IPC_OWNER bypasses
 * the mode; CAP_SYS_ADMIN may IPC_SET and IPC_RMID; the mode bits of the
 * caller's class) over an object table kept only from the requests and
 * replies. A success the model does not allow, or a kernel segment whose
 * owner, creator or mode differ from the object's in the model (the
 * kernel enforces each class on the segment), is a VIOLATION; a refusal
 * the model allows, or a reply or registry entry that disagrees with the
 * table, is a MISMATCH. Either aborts, so libFuzzer saves the input. The
 * registry and the kernel's segments are read after requests: a scribble
 * or a refused request must change neither.
 *
 * Input: a byte stream; each request takes the bytes below, a missing
 * byte reads as 0 (tests/fuzz/mkcorpus_broker.py writes the seeds):
 *   caller, op, type, target, key, flags (2), nsems, uid, gid, mode (2),
 *   qbytes, trailer selector and its bytes, then an action byte
 *   (scribble, reap, owners, a broker restart) and its bytes.
 *   FUZZ_BROKER_TRACE=1 prints every request, reply and action (to
 *   replay a saved input: fuzz_broker FILE); FUZZ_BROKER_RESTART=0 turns
 *   the restarts off.
 *
 * It runs as root (segments are made as other uids) in a fresh IPC
 * namespace (unshare --ipc; it refuses one that holds objects) and
 * prints at exit, after -runs or -max_total_time:
 *   FUZZ broker: N requests, crashes=0 hangs=0 violations=0
 * A crash, a hang (-timeout) or a violation ends the run before that
 * line: tests/check_fuzz.sh reports which.
 *
 * Concurrency: libFuzzer's one thread; the sleeper children only sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "quota.h"
#include "registry.h"

#ifndef SEM_INFO
#define SEM_INFO 19
#endif
#ifndef MSG_INFO
#define MSG_INFO 12
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Requests per input, at most. */
#define MAXREQ 64
/* Objects the model tracks (the limits below allow 8 + 8). */
#define MAXOBJ 64
#define NSTALE 16

/* Small limits: every ENOSPC, E2BIG and ERANGE is within reach. */
static const struct primd_conf conf = {
    .lim = {.semmsl = 8,
	    .semmns = 40,
	    .semopm = 6,
	    .semmni = 8,
	    .msgmax = 96,
	    .msgmnb = 512,
	    .msgmni = 8},
    .sem_nprocs = 4,
    .sem_nslots = 6,
    .msg_qbytes_max = 1024,
    .msg_nslots = 16,
};

/* ------------------------------------------------------------------
 * The callers
 */
struct fcred {
	const char *name;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[2];
	uint64_t caps;
};

#define C_OWN PRIMD_CAP_IPC_OWNER
#define C_ADM PRIMD_CAP_SYS_ADMIN
#define C_RES PRIMD_CAP_SYS_RESOURCE

static const struct fcred creds[8] = {
    {"root", 0, 0, 0, {0, 0}, C_OWN | C_ADM | C_RES},
    {"sysadmin", 61010, 61010, 0, {0, 0}, C_ADM},
    {"ipcowner", 61011, 61011, 0, {0, 0}, C_OWN},
    {"alice", 61001, 61001, 1, {61100, 0}, 0},
    {"bob", 61002, 61002, 2, {61100, 61101}, 0},
    {"carol", 61003, 61100, 0, {0, 0}, 0},
    {"dave", 61004, 61004, 0, {0, 0}, 0},
    {"alice2", 61001, 61104, 1, {61101, 0}, 0},
};

/* uids and gids an IPC_SET may give (the last: the kernel's -1). */
static const uint32_t ids_pool[12] = {0,     61001, 61002, 61003,
				      61004, 61010, 61011, 61100,
				      61101, 61104, 65534, 0xffffffffu};

/* Caller pids: three live sleepers, a dead pid, and 0 (a peer outside
 * the broker's pid namespace). */
static pid_t pids[5];

/* ------------------------------------------------------------------
 * The model: objects as the requests and replies describe them
 */
struct mobj {
	int used;
	int t; /* T_SEM, T_MSG */
	int32_t id, key;
	uint32_t uid, gid, cuid, cgid, mode, nsems;
};

static struct mobj model[MAXOBJ];
static int32_t stale[NSTALE];
static int nstale;

static struct primd_reg reg;
static struct primd_quota_conf qconf;
static char tmpdir[4096], statefile[4200];
static unsigned long long nrequests, ninputs, ncreated, nscribbles,
    ndamaged_seen, nrestarts;
static int ready, trace, restarts = 1;

static void
report(const char *kind, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_broker: %s: ", kind);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* A success the model refuses. */
#define VIOLATION(...) report("VIOLATION", __VA_ARGS__)
/* Anything else the model disagrees with. */
#define MISMATCH(...) report("MISMATCH", __VA_ARGS__)

static int
m_member(const struct fcred *c, uint32_t g)
{
	if (c->gid == g)
		return 1;
	for (int k = 0; k < c->ngroups; k++)
		if (c->groups[k] == g)
			return 1;
	return 0;
}

/* The rwx bits the kernel grants c on o (ipcperms, with CAP_IPC_OWNER). */
static unsigned
m_bits(const struct fcred *c, const struct mobj *o)
{
	int shift;

	if (c->caps & C_OWN)
		return 7;
	if (c->uid == o->uid || c->uid == o->cuid)
		shift = 6;
	else if (m_member(c, o->gid) || m_member(c, o->cgid))
		shift = 3;
	else
		shift = 0;
	return (o->mode >> shift) & 7;
}

/* IPC_SET and IPC_RMID: the owner, the creator, or CAP_SYS_ADMIN. */
static int
m_control(const struct fcred *c, const struct mobj *o)
{
	return (c->caps & C_ADM) || c->uid == o->uid || c->uid == o->cuid;
}

/* The kernel segment's mode: per class rw, r, or nothing (a write-only
 * class must not attach at all). */
static unsigned
m_segmode(unsigned mode)
{
	unsigned m = 0;

	for (int s = 0; s < 9; s += 3)
		if ((mode >> s) & 4)
			m |= ((mode >> s) & 6) << s;
	return m;
}

static struct mobj *
m_by_id(int t, int32_t id)
{
	for (int k = 0; k < MAXOBJ; k++)
		if (model[k].used && model[k].t == t && model[k].id == id)
			return &model[k];
	return NULL;
}

static struct mobj *
m_by_key(int t, int32_t key)
{
	if (key == 0)
		return NULL;
	for (int k = 0; k < MAXOBJ; k++)
		if (model[k].used && model[k].t == t && model[k].key == key)
			return &model[k];
	return NULL;
}

static struct mobj *
m_by_index(int t, int32_t idx)
{
	for (int k = 0; k < MAXOBJ; k++)
		if (model[k].used && model[k].t == t &&
		    (model[k].id & (PRIMD_NIDX - 1)) == idx)
			return &model[k];
	return NULL;
}

static int
m_count(int t)
{
	int n = 0;

	for (int k = 0; k < MAXOBJ; k++)
		n += model[k].used && model[k].t == t;
	return n;
}

/* The k-th object of type t (any type if t < 0), NULL if none. */
static struct mobj *
m_nth(int t, unsigned k)
{
	int n = 0, seen = 0;

	for (int i = 0; i < MAXOBJ; i++)
		n += model[i].used && (t < 0 || model[i].t == t);
	if (n == 0)
		return NULL;
	k %= (unsigned)n;
	for (int i = 0; i < MAXOBJ; i++)
		if (model[i].used && (t < 0 || model[i].t == t) &&
		    (unsigned)seen++ == k)
			return &model[i];
	return NULL;
}

/* ------------------------------------------------------------------
 * The input
 */
struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t
u8(struct in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t
u16(struct in *in)
{
	uint16_t v = u8(in);

	return (uint16_t)(v | (uint16_t)u8(in) << 8);
}

static uint32_t
u32(struct in *in)
{
	uint32_t v = u16(in);

	return v | (uint32_t)u16(in) << 16;
}

static uint64_t
u64(struct in *in)
{
	uint64_t v = u32(in);

	return v | (uint64_t)u32(in) << 32;
}

/* ------------------------------------------------------------------
 * Set-up and the end of the run
 */

/* Remove every object below the broker's bound (limit: all indexes). */
static void
remove_all(int all)
{
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < (all ? PRIMD_NIDX : reg.hi[t]); i++)
			if (reg.shm->ent[t][i].state != PRIMD_ENT_FREE)
				primd__remove(&reg, t, i);
}

static void
at_exit(void)
{
	if (!ready)
		return;
	ready = 0;
	remove_all(1);
	(void)shmdt(reg.shm);
	(void)shmctl(reg.shmid, IPC_RMID, NULL);
	unlink(statefile);
	rmdir(tmpdir);
	for (int k = 0; k < 3; k++)
		if (pids[k] > 0)
			kill(pids[k], SIGKILL);
	printf("fuzz_broker: %llu inputs, %llu objects made, %llu scribbles, "
	       "%llu broker restarts, %llu replies about damaged objects\n",
	       ninputs, ncreated, nscribbles, nrestarts, ndamaged_seen);
	printf("FUZZ broker: %llu requests, crashes=0 hangs=0 violations=0\n",
	       nrequests);
	fflush(stdout);
}

/*
 * A fresh IPC namespace (unshare --ipc) holds no SysV object: refuse one
 * that does, so that a crash never leaves segments among someone else's.
 */
static int
private_ipcns(void)
{
	static const char *const f[3] = {
	    "/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg"};
	char line[512];

	if (getenv("FUZZ_BROKER_ANY_IPCNS") != NULL)
		return 1;
	for (int k = 0; k < 3; k++) {
		FILE *fp = fopen(f[k], "re");
		int n = 0;

		if (fp == NULL)
			return 0;
		while (fgets(line, sizeof(line), fp) != NULL)
			n++;
		fclose(fp);
		if (n > 1) /* more than the title line */
			return 0;
	}
	return 1;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *td = getenv("TMPDIR");
	int adopted, rc;

	(void)argc;
	(void)argv;
	if (geteuid() != 0) {
		fprintf(stderr, "fuzz_broker: must run as root (it makes "
				"segments as other uids)\n");
		exit(2);
	}
	if (!private_ipcns()) {
		fprintf(stderr, "fuzz_broker: this IPC namespace holds "
				"objects: run me in a fresh one (unshare "
				"--ipc)\n");
		exit(2);
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/prim_fuzz_broker.XXXXXX",
		 td != NULL ? td : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("fuzz_broker: mkdtemp");
		exit(2);
	}
	snprintf(statefile, sizeof(statefile), "%s/state", tmpdir);
	primd__quota_defaults(&qconf);
	qconf.total_conns = 4096;
	qconf.total_procs = PRIMD_NPROCS;
	if (primd__quota_init(&qconf) != 0 ||
	    (rc = primd__reg_open(&reg, statefile, &conf, &adopted)) != 0) {
		fprintf(stderr, "fuzz_broker: cannot open a registry\n");
		exit(2);
	}
	for (int k = 0; k < 4; k++) {
		pid_t p = fork();

		if (p < 0) {
			perror("fuzz_broker: fork");
			exit(2);
		}
		if (p == 0) {
			/* A live caller: sleep until the fuzzer goes. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (k == 3)
				_exit(0);
			for (;;)
				pause();
		}
		pids[k] = p;
		if (k == 3)
			waitpid(p, NULL, 0); /* pids[3] is dead */
	}
	pids[4] = 0;
	trace = getenv("FUZZ_BROKER_TRACE") != NULL;
	if (getenv("FUZZ_BROKER_RESTART") != NULL)
		restarts = atoi(getenv("FUZZ_BROKER_RESTART")) != 0;
	ready = 1;
	atexit(at_exit);
	return 0;
}

/* ------------------------------------------------------------------
 * Checks against the registry and the kernel
 */

static void
check_entry(const struct mobj *o, int segment_too)
{
	const struct primd_ent_shm *e =
	    &reg.shm->ent[o->t][o->id & (PRIMD_NIDX - 1)];
	struct shmid_ds ds;

	if (e->id != o->id ||
	    (e->state != PRIMD_ENT_LIVE && e->state != PRIMD_ENT_DAMAGED))
		MISMATCH("object %d: the registry has id %d state %u", o->id,
			 e->id, e->state);
	if (e->uid != o->uid || e->gid != o->gid || e->cuid != o->cuid ||
	    e->cgid != o->cgid || e->mode != o->mode || e->key != o->key ||
	    e->nsems != (o->t == T_SEM ? o->nsems : 0))
		MISMATCH("object %d: the registry says uid %u gid %u cuid %u "
			 "cgid %u mode %o key %d nsems %u; the model uid %u "
			 "gid %u cuid %u cgid %u mode %o key %d nsems %u",
			 o->id, e->uid, e->gid, e->cuid, e->cgid, e->mode,
			 e->key, e->nsems, o->uid, o->gid, o->cuid, o->cgid,
			 o->mode, o->key, o->nsems);
	if (!segment_too)
		return;
	/* The kernel enforces each class on the segment: it must give what
	 * the model gives, and to the object's creator and owner. */
	if (shmctl(e->shmid, IPC_STAT, &ds) != 0)
		MISMATCH("object %d: its segment %d: %s", o->id, e->shmid,
			 strerror(errno));
	if (ds.shm_perm.cuid != o->cuid || ds.shm_perm.cgid != o->cgid ||
	    ds.shm_perm.uid != o->uid || ds.shm_perm.gid != o->gid)
		VIOLATION("object %d: segment %d belongs to uid %u gid %u "
			  "(cuid %u cgid %u), the object to uid %u gid %u "
			  "(cuid %u cgid %u)",
			  o->id, e->shmid, ds.shm_perm.uid, ds.shm_perm.gid,
			  ds.shm_perm.cuid, ds.shm_perm.cgid, o->uid, o->gid,
			  o->cuid, o->cgid);
	if ((ds.shm_perm.mode & 0777) != m_segmode(o->mode))
		VIOLATION("object %d (mode %o): segment mode %o, not %o", o->id,
			  o->mode, ds.shm_perm.mode & 0777, m_segmode(o->mode));
}

/* Every registry entry in use is an object of the model, and the other
 * way round; limit: scan indexes below it only. */
static void
check_registry(int limit, int segments)
{
	int n[2] = {0, 0};

	for (int t = 0; t < 2; t++)
		for (int i = 0; i < limit; i++) {
			const struct primd_ent_shm *e = &reg.shm->ent[t][i];

			if (e->state == PRIMD_ENT_FREE)
				continue;
			/* REG_1: scans stop at the published bound. */
			if ((uint32_t)i >= reg.shm->ent_hi[t])
				VIOLATION("registry entry [%d][%d] in use at "
					  "or above ent_hi %u",
					  t, i, reg.shm->ent_hi[t]);
			if (m_by_id(t, e->id) == NULL)
				MISMATCH(
				    "registry entry [%d][%d] (id %d, state "
				    "%u) is no object the model knows",
				    t, i, e->id, e->state);
			n[t]++;
		}
	for (int k = 0; k < MAXOBJ; k++)
		if (model[k].used)
			check_entry(&model[k], segments);
	if (limit == PRIMD_NIDX &&
	    (n[0] != m_count(T_SEM) || n[1] != m_count(T_MSG)))
		MISMATCH("the registry holds %d sets and %d queues, the model "
			 "%d and %d",
			 n[0], n[1], m_count(T_SEM), m_count(T_MSG));
}

/* ------------------------------------------------------------------
 * One request: build it from the input
 */
struct sent {
	const struct fcred *c;
	pid_t pid;
	struct primd_req q;
	unsigned char tr[256];
	size_t trlen;
};

static int32_t
pick_id(struct in *in, int t, int *index_only)
{
	uint8_t b = u8(in);
	struct mobj *o;

	*index_only = 0;
	switch (b % 16) {
	case 10:
		return nstale ? stale[(b >> 4) % nstale] : -1;
	case 11:
		return (int32_t)u32(in);
	case 12:
		return -1;
	case 13: /* an object of the other type */
		o = m_nth(t == T_SEM ? T_MSG : T_SEM, b >> 4);
		return o ? o->id : 0;
	case 14: /* the next id at an object's index (a later sequence) */
		o = m_nth(t, b >> 4);
		return o ? o->id + PRIMD_NIDX : 1;
	case 15:
		*index_only = 1;
		return (int32_t)(b >> 4);
	default:
		o = m_nth(t >= 0 ? t : -1, b >> 4);
		return o ? o->id : (int32_t)(b >> 4);
	}
}

static void
build_trailer(struct in *in, struct sent *s, const struct mobj *o)
{
	struct primd_req *q = &s->q;
	uint8_t sel = u8(in);

	s->trlen = 0;
	if (sel >= 224) { /* raw bytes, for any op */
		s->trlen = u8(in) % sizeof(s->tr);
		for (size_t k = 0; k < s->trlen; k++)
			s->tr[k] = u8(in);
		return;
	}
	switch (q->op) {
	case PRIMD_SEMOP: {
		/* nsems sembufs (E2BIG and the length check get the rest). */
		uint32_t n =
		    q->nsems > 0 && q->nsems <= 40 ? (uint32_t)q->nsems : 1;

		if (sel & 1)
			n = sel >> 1 & 7; /* a length that may not match */
		for (uint32_t k = 0; k < n; k++) {
			uint8_t a = u8(in), b = u8(in);
			struct primd_sembuf sb = {
			    .sem_num = (uint16_t)(a % 10),
			    .sem_op = (int16_t)((int)((b & 7) % 7) - 3),
			    .sem_flg = (int16_t)(((b & 0x10) ? IPC_NOWAIT : 0) |
						 ((b & 0x20) ? SEM_UNDO : 0)),
			};

			if ((b & 0xc0) == 0xc0)
				sb.sem_op = (int16_t)(32767 - (a & 3));
			if (s->trlen + sizeof(sb) > sizeof(s->tr))
				break;
			memcpy(s->tr + s->trlen, &sb, sizeof(sb));
			s->trlen += sizeof(sb);
		}
		break;
	}
	case PRIMD_SEMCTL:
		if (q->flags == SETALL) {
			uint32_t n = o != NULL ? o->nsems : sel % 9;

			if (sel & 1)
				n = (n + sel % 3) % 10;
			for (uint32_t k = 0; k < n; k++) {
				uint8_t a = u8(in);
				uint16_t v = (a & 0xf0) == 0xf0 ? 40000 : a % 5;

				memcpy(s->tr + s->trlen, &v, sizeof(v));
				s->trlen += sizeof(v);
			}
		}
		break;
	case PRIMD_MSGSND: {
		int64_t mtype = (int64_t)(sel % 5) - 1;
		size_t len = u8(in) % (conf.lim.msgmax + 10);

		if ((sel & 0xe0) == 0xe0)
			mtype = (int64_t)u64(in);
		memcpy(s->tr, &mtype, sizeof(mtype));
		s->trlen = sizeof(mtype);
		for (size_t k = 0; k < len && s->trlen < sizeof(s->tr); k++)
			s->tr[s->trlen++] = (unsigned char)('a' + k % 26);
		break;
	}
	case PRIMD_MSGRCV: {
		struct primd_msgrcv_req mr = {
		    .msgtyp = (int64_t)(sel % 9) - 4,
		    .msgsz = u8(in) % (conf.lim.msgmax + 20),
		};

		if ((sel & 0xe0) == 0xe0)
			mr.msgsz = u64(in);
		memcpy(s->tr, &mr, sizeof(mr));
		s->trlen = sizeof(mr);
		if (sel & 0x10) /* one byte short */
			s->trlen--;
		break;
	}
	default:
		break;
	}
}

static void
build(struct in *in, struct sent *s)
{
	static const int32_t info_cmds[4] = {IPC_INFO, SEM_INFO, MSG_INFO, 0};
	static const uint64_t qb[8] = {0, 1, 100, 512, 513, 1024, 1025, ~0ULL};
	struct primd_req *q = &s->q;
	uint8_t b0 = u8(in), bop = u8(in), bt = u8(in);
	int raw = b0 & 0x80, index_only, t;
	uint8_t kb;
	struct mobj *o;

	memset(q, 0, sizeof(*q));
	s->c = &creds[b0 & 7];
	/* Mostly a live pid; sometimes a dead one, or 0. */
	s->pid = (b0 >> 3 & 7) < 6 ? pids[(b0 >> 3 & 7) % 3]
				   : pids[3 + (b0 >> 3 & 1)];
	q->magic = PRIMD_MAGIC;
	q->version = PRIMD_VERSION;
	q->seq = (uint32_t)nrequests;
	q->op = bop < 240 ? (uint16_t)(1 + bop % (PRIMD_OP_MAX - 1))
			 : (uint16_t)(bop - 240);
	switch (bt % 8) {
	case 0:
	case 1:
	case 2:
		q->type = PRIMD_SEM;
		break;
	case 3:
	case 4:
	case 5:
		q->type = PRIMD_MSG;
		break;
	case 6:
		q->type = 0;
		break;
	default:
		q->type = (uint16_t)(bt >> 3);
		break;
	}
	t = q->type == PRIMD_SEM ? T_SEM : q->type == PRIMD_MSG ? T_MSG : -1;
	q->id = pick_id(in, t, &index_only);
	o = t >= 0 ? m_by_id(t, q->id) : NULL;
	if ((q->op == PRIMD_STAT_INDEX || q->op == PRIMD_LIST) && !index_only &&
	    q->id >= 0)
		q->id &= PRIMD_NIDX - 1; /* an index, mostly of an object */
	kb = u8(in);
	q->key = kb % 8 == 7 ? (int32_t)u32(in)
			     : (int32_t)(kb % 8 == 0 ? 0 : 0x100 + kb % 8);
	{
		uint16_t f = u16(in);

		switch (q->op) {
		case PRIMD_GET:
			q->flags = f & 07777;
			break;
		case PRIMD_INFO:
			q->flags = info_cmds[f % 4];
			break;
		case PRIMD_STAT_INDEX:
			q->flags = f % 3;
			break;
		case PRIMD_SEMCTL:
			q->flags = (f & 3) == 0	  ? SETVAL
				   : (f & 3) == 1 ? SETALL
				   : (f & 3) == 2 ? GETVAL
						  : (int32_t)(f >> 2);
			break;
		case PRIMD_MSGSND:
		case PRIMD_MSGRCV:
			q->flags = f & (IPC_NOWAIT | PRIM_MSG_NOERROR |
					PRIM_MSG_EXCEPT | PRIM_MSG_COPY);
			break;
		default:
			q->flags = (f & 0xff) == 0xff ? (int32_t)f : 0;
			break;
		}
	}
	{
		uint8_t n = u8(in);

		q->nsems = n < 200 ? n % 10 : (int32_t)u32(in);
	}
	q->uid = ids_pool[u8(in) % 12];
	q->gid = ids_pool[u8(in) % 12];
	q->mode = u16(in) & 0777;
	if (q->op == PRIMD_SEMCTL && (q->mode & 0700) == 0700)
		q->mode = 32768; /* ERANGE */
	q->qbytes = qb[u8(in) % 8];
	if (raw) {
		/* The header and fields a client may get wrong on purpose. */
		uint8_t w = u8(in);

		if (w & 1)
			q->magic ^= 1u << (u8(in) % 32);
		if (w & 2)
			q->version = (uint16_t)u8(in);
		if (w & 4)
			q->pad = (uint16_t)(1 + u8(in));
		if (w & 8)
			q->pad2 = 1;
		if (w & 16)
			q->flags = (int32_t)u32(in);
		if (w & 32)
			q->mode = u32(in);
	}
	build_trailer(in, s, o);
}

/* ------------------------------------------------------------------
 * One reply: the oracle
 */

/* The rwx bits asked for by semget/msgget flags (ipcperms). */
static unsigned
asked(int32_t flg)
{
	unsigned f = (unsigned)flg;

	return (f >> 6 | f >> 3 | f) & 7;
}

static int
has_trailer(int op)
{
	return op == PRIMD_SEMOP || op == PRIMD_SEMCTL || op == PRIMD_MSGSND ||
	       op == PRIMD_MSGRCV;
}

/* The access field of a reply that names o, for caller c. */
static void
check_access(const struct sent *s, const struct primd_rep *p,
	     const struct mobj *o)
{
	unsigned want = m_bits(s->c, o) & 6;

	if (p->access & ~want)
		VIOLATION("op %u by %s on %d (mode %o, uid %u cuid %u gid %u "
			  "cgid %u): access %u, the model gives %u",
			  s->q.op, s->c->name, o->id, o->mode, o->uid, o->cuid,
			  o->gid, o->cgid, p->access, want);
	if (p->access != want)
		MISMATCH("op %u by %s on %d: access %u, the model gives %u",
			 s->q.op, s->c->name, o->id, p->access, want);
	if (o->t == T_SEM && p->nsems != o->nsems)
		MISMATCH("op %u on %d: nsems %u, the model %u", s->q.op, o->id,
			 p->nsems, o->nsems);
	if (p->flags & PRIMD_REP_DAMAGED)
		ndamaged_seen++;
}

/* A proxied call: a success needs the access bit `need`. */
static void
check_proxy(const struct sent *s, const struct primd_rep *p,
	    const struct mobj *o, unsigned need, const char *what)
{
	if (p->err == 0 && o == NULL)
		VIOLATION("%s by %s on %d succeeded: no such object", what,
			  s->c->name, s->q.id);
	if (o == NULL)
		return;
	if (p->err == 0 && !(m_bits(s->c, o) & need))
		VIOLATION("%s by %s on %d (mode %o, uid %u cuid %u gid %u cgid "
			  "%u) succeeded without %s",
			  what, s->c->name, o->id, o->mode, o->uid, o->cuid,
			  o->gid, o->cgid, need == PRIMD_ACC_W ? "W" : "R");
	if (p->err == EACCES && (m_bits(s->c, o) & need))
		MISMATCH("%s by %s on %d: EACCES, the model allows it", what,
			 s->c->name, o->id);
}

static void
forget(struct mobj *o)
{
	stale[nstale < NSTALE ? nstale++ : (int)(nrequests % NSTALE)] = o->id;
	o->used = 0;
}

static void
oracle(const struct sent *s, const struct primd_rep *p, size_t outlen,
       const unsigned char *out)
{
	const struct primd_req *q = &s->q;
	const struct fcred *c = s->c;
	int t = q->type == PRIMD_SEM   ? T_SEM
		: q->type == PRIMD_MSG ? T_MSG
				       : -1;
	int expect = -1;
	struct mobj *o = t >= 0 ? m_by_id(t, q->id) : NULL;

	if (p->magic != PRIMD_MAGIC || p->version != PRIMD_VERSION ||
	    p->op != q->op || p->seq != q->seq)
		MISMATCH("reply header %x %u op %u seq %u for op %u seq %u",
			 p->magic, p->version, p->op, p->seq, q->op, q->seq);
	/* The protocol's own refusals, in the broker's order. */
	if (q->magic != PRIMD_MAGIC || q->version != PRIMD_VERSION ||
	    q->op < PRIMD_HELLO || q->op >= PRIMD_OP_MAX ||
	    (s->trlen != 0 && !has_trailer(q->op)))
		expect = EPROTO;
	else if (q->pad != 0 || q->pad2 != 0)
		expect = EINVAL;
	else if (q->op == PRIMD_HELLO)
		expect = 0;
	else if (q->op == PRIMD_REAPED) /* any type; no pidfds here */
		expect = q->id <= 0 ? EINVAL : ESRCH;
	else if (t < 0)
		expect = EINVAL;
	if (expect >= 0 && p->err != expect)
		MISMATCH("op %u type %u: err %d, the protocol says %d", q->op,
			 q->type, p->err, expect);
	if (expect >= 0)
		return;
	/* A refusal describes nothing (OPEN and STAT_INDEX excepted). */
	if (p->err != 0 && q->op != PRIMD_OPEN && q->op != PRIMD_STAT_INDEX &&
	    (p->id != -1 || p->access != 0 || p->shmid != -1))
		MISMATCH("op %u err %d still names id %d access %u", q->op,
			 p->err, p->id, p->access);
	if (p->err != 0 && outlen != 0)
		MISMATCH("op %u err %d with a %zu-byte trailer", q->op, p->err,
			 outlen);

	switch (q->op) {
	case PRIMD_GET: {
		struct mobj *k = m_by_key(t, q->key);
		int creat = (q->flags & IPC_CREAT) != 0;
		int excl = (q->flags & IPC_EXCL) != 0;

		if (p->err == EACCES &&
		    (k == NULL || (asked(q->flags) & ~m_bits(c, k)) == 0))
			MISMATCH("GET by %s of key %x flags %o: EACCES, the "
				 "model allows it",
				 c->name, q->key, q->flags);
		if (p->err == EEXIST && !(k != NULL && creat && excl))
			MISMATCH("GET of key %x: EEXIST", q->key);
		if (p->err == ENOENT && (k != NULL || q->key == 0 || creat))
			MISMATCH("GET of key %x: ENOENT", q->key);
		if (p->err != 0)
			break;
		if (k != NULL) {
			if (p->id != k->id)
				MISMATCH("GET of key %x gave %d, not %d",
					 q->key, p->id, k->id);
			if (creat && excl)
				MISMATCH("GET of key %x with IPC_EXCL "
					 "succeeded",
					 q->key);
			if (asked(q->flags) & ~m_bits(c, k))
				VIOLATION("GET by %s of key %x (mode %o) "
					  "asked %o and got it",
					  c->name, q->key, k->mode,
					  asked(q->flags));
			if (t == T_SEM && (uint32_t)q->nsems > k->nsems)
				MISMATCH("GET of %d with nsems %d > %u", k->id,
					 q->nsems, k->nsems);
			check_access(s, p, k);
			break;
		}
		/* A new object. */
		if (q->key != 0 && !creat)
			MISMATCH("GET of key %x created %d without IPC_CREAT",
				 q->key, p->id);
		if (p->id < 0 || m_by_id(t, p->id) != NULL)
			MISMATCH("GET created id %d, already known", p->id);
		if (t == T_SEM &&
		    (q->nsems < 1 || (uint32_t)q->nsems > conf.lim.semmsl))
			MISMATCH("GET created a set of %d", q->nsems);
		for (int i = 0; i < MAXOBJ; i++)
			if (!model[i].used) {
				model[i] = (struct mobj){
				    .used = 1,
				    .t = t,
				    .id = p->id,
				    .key = q->key,
				    .uid = c->uid,
				    .cuid = c->uid,
				    .gid = c->gid,
				    .cgid = c->gid,
				    .mode = (uint32_t)q->flags & 0777,
				    .nsems =
					t == T_SEM ? (uint32_t)q->nsems : 0,
				};
				ncreated++;
				check_access(s, p, &model[i]);
				check_entry(&model[i], 1);
				return;
			}
		MISMATCH("more objects than the limits allow");
		break;
	}
	case PRIMD_OPEN:
		if (o == NULL) {
			if (p->err == 0)
				VIOLATION("OPEN of %d, no object, succeeded",
					  q->id);
			if (p->err != EINVAL)
				MISMATCH("OPEN of %d, no object: err %d", q->id,
					 p->err);
			break;
		}
		if (p->id != o->id)
			MISMATCH("OPEN of %d names %d", o->id, p->id);
		check_access(s, p, o);
		if (p->err == 0 && (m_bits(c, o) & 6) == 0)
			VIOLATION("OPEN by %s of %d (mode %o) with no access",
				  c->name, o->id, o->mode);
		if (p->err == EACCES && (m_bits(c, o) & 6) != 0)
			MISMATCH("OPEN of %d: EACCES, the model gives %o",
				 o->id, m_bits(c, o));
		if (p->err != 0 && p->err != EACCES && p->err != EIDRM)
			MISMATCH("OPEN of %d: err %d", o->id, p->err);
		break;
	case PRIMD_SET:
		if (o == NULL) {
			if (p->err == 0)
				VIOLATION("SET of %d, no object, succeeded",
					  q->id);
			break;
		}
		{
			int over = t == T_MSG && q->qbytes > conf.lim.msgmnb &&
				   !(c->caps & C_RES);

			if (p->err == 0 && !m_control(c, o))
				VIOLATION("SET by %s of %d (uid %u cuid %u) "
					  "succeeded",
					  c->name, o->id, o->uid, o->cuid);
			if (p->err == 0 && over)
				VIOLATION("SET by %s of %d raised qbytes to "
					  "%llu without CAP_SYS_RESOURCE",
					  c->name, o->id,
					  (unsigned long long)q->qbytes);
			if (p->err == EPERM && m_control(c, o) && !over)
				MISMATCH("SET by %s of %d: EPERM, the model "
					 "allows it",
					 c->name, o->id);
			if (p->err == 0) {
				if (q->uid == 0xffffffffu ||
				    q->gid == 0xffffffffu)
					MISMATCH("SET to uid or gid -1 "
						 "succeeded");
				o->uid = q->uid;
				o->gid = q->gid;
				o->mode = q->mode & 0777;
				check_access(s, p, o);
				check_entry(o, 1);
			}
		}
		break;
	case PRIMD_RMID:
		if (o == NULL) {
			if (p->err == 0)
				VIOLATION("RMID of %d, no object, succeeded",
					  q->id);
			break;
		}
		if (p->err == 0 && !m_control(c, o))
			VIOLATION("RMID by %s of %d (uid %u cuid %u) succeeded",
				  c->name, o->id, o->uid, o->cuid);
		if (p->err == EPERM && m_control(c, o))
			MISMATCH("RMID by %s of %d: EPERM", c->name, o->id);
		if (p->err == 0)
			forget(o);
		break;
	case PRIMD_INFO:
		if (p->err == 0 &&
		    (p->info.sem_sets != (uint32_t)m_count(T_SEM) ||
		     p->info.msg_queues != (uint32_t)m_count(T_MSG)))
			MISMATCH("INFO: %u sets and %u queues, the model %d "
				 "and %d",
				 p->info.sem_sets, p->info.msg_queues,
				 m_count(T_SEM), m_count(T_MSG));
		break;
	case PRIMD_STAT_INDEX:
		o = q->id >= 0 && q->id < PRIMD_NIDX ? m_by_index(t, q->id)
						     : NULL;
		if (o == NULL) {
			if (p->err == 0)
				VIOLATION("STAT_INDEX of index %d, no object, "
					  "succeeded",
					  q->id);
			if (p->err != EINVAL)
				MISMATCH("STAT_INDEX of index %d, no object: "
					 "err %d",
					 q->id, p->err);
			break;
		}
		if (p->err == 0 && q->flags == 0 && !(m_bits(c, o) & 4))
			VIOLATION("SEM_STAT/MSG_STAT by %s of %d (mode %o) "
				  "without R",
				  c->name, o->id, o->mode);
		if (p->err == EACCES && (q->flags != 0 || (m_bits(c, o) & 4)))
			MISMATCH("STAT_INDEX of %d: EACCES", o->id);
		if (p->err == 0 || p->err == EACCES)
			check_access(s, p, o);
		if (p->err == 0 &&
		    (p->stat.uid != o->uid || p->stat.gid != o->gid ||
		     p->stat.cuid != o->cuid || p->stat.cgid != o->cgid ||
		     p->stat.mode != o->mode || p->stat.key != o->key))
			MISMATCH("STAT of %d: uid %u gid %u cuid %u cgid %u "
				 "mode %o key %d, the model %u %u %u %u %o %d",
				 o->id, p->stat.uid, p->stat.gid, p->stat.cuid,
				 p->stat.cgid, p->stat.mode, p->stat.key,
				 o->uid, o->gid, o->cuid, o->cgid, o->mode,
				 o->key);
		break;
	case PRIMD_LIST:
		if (p->err == 0) {
			struct mobj *l = m_by_id(t, p->id);
			int at = p->id & (PRIMD_NIDX - 1);

			if (l == NULL || at < q->id)
				MISMATCH("LIST from %d gave %d", q->id, p->id);
			for (int i = q->id; i < at; i++)
				if (m_by_index(t, i) != NULL)
					MISMATCH("LIST from %d skipped index "
						 "%d",
						 q->id, i);
			check_access(s, p, l);
		} else if (p->err == ENOENT) {
			for (int i = 0; i < MAXOBJ; i++)
				if (model[i].used && model[i].t == t &&
				    (model[i].id & (PRIMD_NIDX - 1)) >= q->id)
					MISMATCH("LIST from %d: ENOENT, but "
						 "%d exists",
						 q->id, model[i].id);
		}
		break;
	case PRIMD_SEMOP: {
		unsigned need = PRIMD_ACC_R;
		uint32_t maxnum = 0;

		for (size_t k = 0; k + sizeof(struct primd_sembuf) <= s->trlen;
		     k += sizeof(struct primd_sembuf)) {
			struct primd_sembuf sb;

			memcpy(&sb, s->tr + k, sizeof(sb));
			if (sb.sem_op != 0)
				need = PRIMD_ACC_W;
			if (sb.sem_num > maxnum)
				maxnum = sb.sem_num;
		}
		check_proxy(s, p, t == T_SEM ? o : NULL, need, "SEMOP");
		if (p->err == 0 && o != NULL && maxnum >= o->nsems)
			MISMATCH("SEMOP on %d of semaphore %u succeeded", o->id,
				 maxnum);
		break;
	}
	case PRIMD_SEMCTL:
		check_proxy(s, p, t == T_SEM ? o : NULL, PRIMD_ACC_W,
			    q->flags == SETVAL ? "SETVAL" : "SETALL");
		break;
	case PRIMD_MSGSND:
		check_proxy(s, p, t == T_MSG ? o : NULL, PRIMD_ACC_W, "MSGSND");
		break;
	case PRIMD_MSGRCV:
		check_proxy(s, p, t == T_MSG ? o : NULL, PRIMD_ACC_R, "MSGRCV");
		if (p->err == 0) {
			struct primd_msgrcv_rep mh;
			struct primd_msgrcv_req mr;

			memcpy(&mh, out, sizeof(mh));
			memcpy(&mr, s->tr, sizeof(mr));
			if (outlen != sizeof(mh) + mh.len ||
			    mh.len > conf.lim.msgmax || mh.len > mr.msgsz ||
			    mh.mtype < 1)
				MISMATCH("MSGRCV: %zu bytes, len %llu, type "
					 "%lld, for msgsz %llu",
					 outlen, (unsigned long long)mh.len,
					 (long long)mh.mtype,
					 (unsigned long long)mr.msgsz);
		}
		break;
	case PRIMD_REPORT:
		if (p->err == EINVAL && o != NULL)
			MISMATCH("REPORT of %d: EINVAL", o->id);
		if (p->err != EINVAL && o == NULL)
			MISMATCH("REPORT of %d, no object: err %d", q->id,
				 p->err);
		break;
	}
	if (o != NULL && o->used)
		check_entry(o, 1);
}

/* ------------------------------------------------------------------
 * Between requests: what a hostile writer or a death does
 */

static int
no_owner(int t, int i, pid_t pid)
{
	(void)t;
	(void)i;
	(void)pid;
	return 1;
}

/*
 * The broker dies and a new one adopts what it left: every mapping
 * dropped (nothing removed), the quotas counted afresh, the registry and
 * every object adopted from the state file, bounded whatever the
 * segments hold. Every object of the model must still be there, live or
 * damaged, with its owner and mode.
 */
static void
restart(void)
{
	int adopted;

	for (int t = 0; t < 2; t++)
		for (int i = 0; i < reg.hi[t]; i++)
			primd__close_handle(t, &reg.obj[t][i]);
	(void)shmdt(reg.shm);
	if (primd__quota_init(&qconf) != 0 ||
	    primd__reg_open(&reg, statefile, &conf, &adopted) != 0 ||
	    adopted < 0)
		MISMATCH("a restarted broker did not adopt its registry");
	nrestarts++;
	/* What only its owner may remove, a writer's scribble must not. */
	for (int k = 0; k < MAXOBJ; k++) {
		const struct mobj *o = &model[k];
		const struct primd_ent_shm *e;

		if (!o->used)
			continue;
		e = &reg.shm->ent[o->t][o->id & (PRIMD_NIDX - 1)];
		if (e->id != o->id || e->state == PRIMD_ENT_FREE)
			VIOLATION("the restarted broker removed %s %d (owner "
				  "%u, mode %o) because of what its memory "
				  "holds: its key is free for anyone",
				  o->t == T_SEM ? "set" : "queue", o->id,
				  o->uid, o->mode);
	}
	check_registry(PRIMD_NIDX, 1);
}

static void
action(struct in *in)
{
	uint8_t a = u8(in);

	if ((a & 7) == 7) {
		/* Scribble on an object's memory, as any writer of it can:
		 * the broker's own mapping, header page or object. */
		struct mobj *o = m_nth(-1, u8(in));
		int nw = 1 + u8(in) % 4;
		struct primd_obj *ob;
		uint64_t size;

		if (o == NULL)
			return;
		ob = &reg.obj[o->t][o->id & (PRIMD_NIDX - 1)];
		size = reg.shm->ent[o->t][o->id & (PRIMD_NIDX - 1)].seg_size;
		if (ob->hdr == NULL || size <= PRIMD_OBJ_HDR)
			return;
		for (int k = 0; k < nw; k++) {
			uint8_t how = u8(in);
			uint16_t at = u16(in);
			uint64_t off, *w, v = u64(in);

			switch (how & 3) {
			case 0: /* the header page */
				off = (uint64_t)at * 8 % PRIMD_OBJ_HDR;
				break;
			case 1: /* the object's protocol words */
			case 2:
				off = PRIMD_OBJ_HDR + (uint64_t)(at % 512) * 8;
				break;
			default:
				off = (uint64_t)at * 64 % size;
				break;
			}
			if (off + 8 > size)
				off = PRIMD_OBJ_HDR;
			w = (uint64_t *)(void *)((char *)ob->hdr + off);
			switch (how >> 2 & 3) {
			case 0:
				v &= 0xff;
				break;
			case 1:
				v = __atomic_load_n(w, __ATOMIC_RELAXED) ^
				    (1ULL << (v % 64));
				break;
			case 2:
				v = __atomic_load_n(w, __ATOMIC_RELAXED) +
				    (v % 5) - 2;
				break;
			}
			if (trace)
				fprintf(stderr,
					"-- scribble on %d at %#llx: %#llx\n",
					o->id, (unsigned long long)off,
					(unsigned long long)v);
			__atomic_store_n(w, v, __ATOMIC_RELAXED);
			nscribbles++;
		}
	} else if ((a & 7) == 6) {
		/* A caller died: its undo records and calls are reaped. */
		primd__reg_reap(&reg, pids[u8(in) % 4]);
	} else if ((a & 7) == 5) {
		int cursor = 0;

		(void)primd__reg_owners(&reg, no_owner, &cursor);
	} else if ((a & 0x1f) == 0x1c && restarts) {
		if (trace)
			fprintf(stderr, "-- the broker restarts\n");
		restart();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char out[sizeof(struct primd_msgrcv_rep) + 4096];
	struct in in = {data, size};
	int n = 0, hi = 0;

	/* Every input starts from an empty registry and an empty model. */
	remove_all(0);
	memset(model, 0, sizeof(model));
	nstale = 0;
	ninputs++;
	while (in.n > 0 && n++ < MAXREQ) {
		struct sent s;
		struct primd_rep rep;
		struct primd_cred cred;
		gid_t groups[2];
		size_t outlen;

		build(&in, &s);
		memcpy(groups, s.c->groups, sizeof(groups));
		cred = (struct primd_cred){
		    .uid = s.c->uid,
		    .gid = s.c->gid,
		    .pid = s.pid,
		    .ngroups = s.c->ngroups,
		    .groups = groups,
		    .caps = s.c->caps,
		};
		outlen = primd__reg_handle(
		    &reg, &cred, &s.q, s.tr, s.trlen, &rep, out,
		    sizeof(struct primd_msgrcv_rep) + conf.lim.msgmax);
		nrequests++;
		if (trace) /* FUZZ_BROKER_TRACE: what an input does */
			fprintf(stderr,
				"%-8s op %2u type %u id %d key %#x flags %#o "
				"nsems %d uid %u gid %u mode %#o qbytes %llu "
				"trailer %zu -> err %d id %d access %u\n",
				s.c->name, s.q.op, s.q.type, s.q.id, s.q.key,
				s.q.flags, s.q.nsems, s.q.uid, s.q.gid,
				s.q.mode, (unsigned long long)s.q.qbytes,
				s.trlen, rep.err, rep.id, rep.access);
		oracle(&s, &rep, outlen, out);
		/* Our bound and the broker's: entries past both are
		 * found by the full scan below. */
		if (rep.id >= 0 && (rep.id & (PRIMD_NIDX - 1)) >= hi)
			hi = (rep.id & (PRIMD_NIDX - 1)) + 1;
		for (int t = 0; t < 2; t++)
			if (reg.hi[t] > hi)
				hi = reg.hi[t];
		check_registry(hi, 0);
		action(&in);
		check_registry(hi, 0);
	}
	/* Now and then, the whole registry and every segment. */
	check_registry((ninputs & 255) == 0 ? PRIMD_NIDX : hi, 1);
	return 0;
}
