/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-uid accounting of what clients make the broker hold (quota.h): a
 * small hash table uid -> connections, processes, objects, bytes, and the
 * record of every charged segment. An entry exists while its uid holds
 * something, so the table is bounded by what is held, never by how many
 * uids have asked: the pool is sized once for the worst case (every
 * connection, process and segment held by a different uid), so a charge
 * never fails for want of memory.
 *
 * kernel.shmmni is per IPC namespace and may be changed at any moment by
 * its administrator; it is read at every creation, which is rare.
 *
 * Concurrency: the broker's one thread only (see quota.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quota.h"

#define NBUCKETS 4096 /* a power of two */
#define NONE	 (-1)

/* The kernel's default SHMMNI, if /proc/sys/kernel/shmmni is unreadable. */
#define SHMMNI_DEFAULT 4096

struct use {
	uid_t uid;
	int32_t next; /* hash chain or free list, NONE at the end */
	uint32_t conns, procs, objects;
	uint64_t bytes;
};

/* A charged segment: to whom, how big. */
struct charge {
	uid_t uid;
	uint32_t on;
	uint64_t bytes;
};

static struct primd_quota_conf conf;
static uid_t broker_euid;
static struct use *pool;
static int32_t npool;
static int32_t bucket[NBUCKETS];
static int32_t freelist;
static struct charge *charges; /* [PRIMD_QUOTA_NOBJS] */
static uint32_t tot_conns, tot_procs, tot_segs;
/* What the uids other than 0 may take of the tables, together. */
static uint32_t others_conns, others_procs;

void
primd__quota_defaults(struct primd_quota_conf *qc)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);

	memset(qc, 0, sizeof(*qc));
	qc->conns = 256;
	qc->procs = 4096;
	/*
	 * 1024 objects: with the default kernel.shmmni (4096), prim's share
	 * is 3584 ids and one uid may hold at most 1792 of them anyway; 1024
	 * leaves room for three users at their quota besides root. Real
	 * SysV users stay far below it (PostgreSQL needs one set per 16
	 * backends: 64 sets for a thousand connections).
	 */
	qc->objects = 1024;
	qc->bytes = pages > 0 && psize > 0
			? (uint64_t)pages * (uint64_t)psize / 2
			: (uint64_t)1 << 30;
}

int
primd__quota_init(const struct primd_quota_conf *qc)
{
	int32_t n =
	    (int32_t)(qc->total_conns + qc->total_procs + PRIMD_QUOTA_NOBJS);

	conf = *qc;
	broker_euid = geteuid();
	free(pool);
	free(charges);
	pool = calloc((size_t)n, sizeof(*pool));
	charges = calloc(PRIMD_QUOTA_NOBJS, sizeof(*charges));
	if (pool == NULL || charges == NULL) {
		free(pool);
		free(charges);
		pool = NULL;
		charges = NULL;
		return -ENOMEM;
	}
	npool = n;
	for (int32_t i = 0; i < n; i++)
		pool[i].next = i + 1 < n ? i + 1 : NONE;
	freelist = 0;
	for (int b = 0; b < NBUCKETS; b++)
		bucket[b] = NONE;
	tot_conns = tot_procs = tot_segs = 0;
	others_conns = qc->total_conns > PRIMD_QUOTA_ROOT_CONNS
			   ? qc->total_conns - PRIMD_QUOTA_ROOT_CONNS
			   : 0;
	others_procs = qc->total_procs > PRIMD_QUOTA_ROOT_PROCS
			   ? qc->total_procs - PRIMD_QUOTA_ROOT_PROCS
			   : 0;
	return 0;
}

int
primd__quota_exempt(uid_t uid)
{
	return uid == 0 || uid == broker_euid;
}

static uint32_t
hash(uid_t uid)
{
	/* Fibonacci hashing: consecutive uids spread over the buckets. */
	return ((uint32_t)uid * 2654435769u) >> 20 & (NBUCKETS - 1);
}

/* The entry of uid; with create, a new empty one if it has none. NULL if
 * it has none (or, which cannot happen, the pool is exhausted). */
static struct use *
find(uid_t uid, int create)
{
	uint32_t b = hash(uid);
	int32_t i;

	for (i = bucket[b]; i != NONE; i = pool[i].next)
		if (pool[i].uid == uid)
			return &pool[i];
	if (!create || freelist == NONE)
		return NULL;
	i = freelist;
	freelist = pool[i].next;
	memset(&pool[i], 0, sizeof(pool[i]));
	pool[i].uid = uid;
	pool[i].next = bucket[b];
	bucket[b] = i;
	return &pool[i];
}

/* Free u's entry once it holds nothing. */
static void
tidy(struct use *u)
{
	uint32_t b;
	int32_t *p;

	if (u == NULL || u->conns || u->procs || u->objects)
		return;
	b = hash(u->uid);
	for (p = &bucket[b]; *p != NONE; p = &pool[*p].next)
		if (&pool[*p] == u) {
			*p = u->next;
			u->next = freelist;
			freelist = (int32_t)(u - pool);
			return;
		}
}

/* ------------------------------------------------------------------
 * Connections and processes
 */

int
primd__quota_conn_admit(uid_t uid)
{
	int root = uid == 0;
	struct use *u;

	if (tot_conns >= conf.total_conns ||
	    (!root && tot_conns >= others_conns))
		return -ENOSPC;
	if ((u = find(uid, 1)) == NULL)
		return -ENOSPC;
	if (!primd__quota_exempt(uid) && u->conns >= conf.conns) {
		tidy(u);
		return -ENOSPC;
	}
	u->conns++;
	tot_conns++;
	return 0;
}

void
primd__quota_conn_release(uid_t uid)
{
	struct use *u = find(uid, 0);

	if (u != NULL && u->conns > 0) {
		u->conns--;
		tot_conns--;
		tidy(u);
	}
}

int
primd__quota_proc_admit(uid_t uid)
{
	int root = uid == 0;
	struct use *u;

	if (tot_procs >= conf.total_procs ||
	    (!root && tot_procs >= others_procs))
		return -ENOSPC;
	if ((u = find(uid, 1)) == NULL)
		return -ENOSPC;
	if (!primd__quota_exempt(uid) && u->procs >= conf.procs) {
		tidy(u);
		return -ENOSPC;
	}
	u->procs++;
	tot_procs++;
	return 0;
}

void
primd__quota_proc_charge(uid_t uid)
{
	struct use *u = find(uid, 1);

	if (u != NULL) {
		u->procs++;
		tot_procs++;
	}
}

void
primd__quota_proc_release(uid_t uid)
{
	struct use *u = find(uid, 0);

	if (u != NULL && u->procs > 0) {
		u->procs--;
		tot_procs--;
		tidy(u);
	}
}

/* ------------------------------------------------------------------
 * Objects and kernel shm ids
 */

static uint32_t
read_shmmni(void)
{
	char buf[32];
	ssize_t n;
	unsigned long v;
	char *end;
	int fd = open("/proc/sys/kernel/shmmni", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return SHMMNI_DEFAULT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return SHMMNI_DEFAULT;
	buf[n] = '\0';
	v = strtoul(buf, &end, 10);
	if (end == buf || v > UINT32_MAX)
		return SHMMNI_DEFAULT;
	return (uint32_t)v;
}

/*
 * The shm ids prim may hold: shmmni less a reserve for the kernel's other
 * users (an eighth, at least 16), so that a flood through prim never makes
 * the kernel's own shmget fail.
 */
static uint32_t
prim_share(void)
{
	uint32_t mni = read_shmmni();
	uint32_t reserve = mni / 8 > 16 ? mni / 8 : 16;

	return mni > reserve ? mni - reserve : 0;
}

int
primd__quota_obj_admit(uid_t uid, uint64_t bytes)
{
	uint32_t share = prim_share();
	uint64_t objs, used;
	struct use *u;

	if (tot_segs + 1 > share)
		return -ENOSPC;
	if (primd__quota_exempt(uid))
		return 0;
	u = find(uid, 0);
	objs = u != NULL ? u->objects : 0;
	used = u != NULL ? u->bytes : 0;
	/* No uid but an exempt one holds more than half of prim's share. */
	if (objs + 1 > share / 2 || objs + 1 > conf.objects)
		return -ENOSPC;
	if (bytes > conf.bytes || used > conf.bytes - bytes)
		return -ENOSPC;
	return 0;
}

void
primd__quota_obj_charge(uint32_t key, uid_t uid, uint64_t bytes)
{
	struct charge *ch;
	struct use *u;

	if (key >= PRIMD_QUOTA_NOBJS)
		return;
	ch = &charges[key];
	if (ch->on)
		primd__quota_obj_release(key);
	ch->uid = uid;
	ch->bytes = bytes;
	ch->on = 1;
	tot_segs++;
	if ((u = find(uid, 1)) != NULL) {
		u->objects++;
		u->bytes += bytes;
	}
}

void
primd__quota_obj_release(uint32_t key)
{
	struct charge *ch;
	struct use *u;

	if (key >= PRIMD_QUOTA_NOBJS || !charges[key].on)
		return;
	ch = &charges[key];
	ch->on = 0;
	tot_segs--;
	if ((u = find(ch->uid, 0)) != NULL && u->objects > 0) {
		u->objects--;
		u->bytes -= ch->bytes < u->bytes ? ch->bytes : u->bytes;
		tidy(u);
	}
}

uint32_t
primd__quota_segments(void)
{
	return tot_segs;
}
