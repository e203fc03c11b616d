/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * /proc/sysvipc/sem, msg and shm as a preloaded process should see them
 * (issue 10 item 7): the kernel lists only its own objects, so `ipcs`
 * (util-linux reads these files when they exist) and scripts that parse
 * them would show no semaphore set or queue of prim's, and would show the
 * broker's anonymous backing segments and its registry as shm.
 *
 * open, open64, openat, openat64, their fortified forms (__open_2, ...),
 * fopen and fopen64 are interposed. A read-only open of exactly one of
 * the three absolute paths (whatever openat's dirfd) gets a memfd
 * holding the content generated now, positioned at 0:
 *   - sem and msg: the kernel's header and one line per live object of
 *     the broker's registry, in index order, in the kernel's format
 *     (ipc/sem.c and ipc/msg.c sysvipc_*_proc_show), with the figures
 *     of SEM_STAT_ANY / MSG_STAT_ANY (PRIMD_STAT_INDEX). Like the
 *     kernel's, the files list every object whatever the reader's
 *     permissions (checked on 6.18: a 0600 set is listed to nobody).
 *   - shm: the kernel's file, without the lines of the broker's
 *     segments (the registry's own and every registered object's).
 * Anything else, or when the broker cannot be reached, goes to the real
 * function. errno is left untouched on success.
 *
 * shmctl(SHM_INFO) takes the same segments off its figures
 * (sysv__shm_info_hide, from shm.c).
 *
 * Not seen: the C library's internal opens (none of its functions reads
 * these files), raw system calls, any other spelling of the paths
 * (relative, dirfd-relative, /proc/self/root/proc/sysvipc/msg).
 *
 * Concurrency: thread-safe; the real functions are resolved at most once
 * per racing thread (idempotent). Not async-signal-safe on the matching
 * paths (it allocates); other paths only call the real function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <unistd.h>

#include <ck_pr.h>

#include "sysv_int.h"
#include "ucopy.h"

#define PFX "/proc/sysvipc/"

enum { P_NONE, P_SEM, P_MSG, P_SHM };

typedef int (*openat_fn)(int, const char *, int, ...);
typedef FILE *(*fopen_fn)(const char *, const char *);

static _Atomic(fopen_fn) real_fopen, real_fopen64;
/* Initial-exec: no __tls_get_addr, which a sanitizer intercepts and which
 * a library constructor may reach before the sanitizer has started. */
static __thread int __attribute__((tls_model("initial-exec"))) busy;      /* we are generating a file */


/*
 * Each function forwards to its own real counterpart, not to one of them:
 * another interposer after us (fakeroot wraps open but not openat) and
 * glibc's own checks (__open_2 aborts on O_CREAT without a mode) see the
 * call the program made.
 */
enum { F_OPEN, F_OPEN64, F_OPENAT, F_OPENAT64, F_OPEN_2, F_OPEN64_2,
       F_OPENAT_2, F_OPENAT64_2, F_N };
static const char *const fname[F_N] = {
	"open", "open64", "openat", "openat64",
	"__open_2", "__open64_2", "__openat_2", "__openat64_2",
};
static void *_Atomic freal[F_N];

static void *
real(int f)
{
	void *p = sysv__next(&freal[f], fname[f]);

	if (p == NULL)
		errno = ENOSYS;
	return p;
}

/* The kernel's file, through the real openat. */
static int
sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	openat_fn f = (openat_fn)real(F_OPENAT);

	return f == NULL ? -1 : f(dirfd, path, flags, mode);
}

/*
 * Which file path names, read byte by byte with prim__ucopy: open() with a
 * bad pointer must still get the kernel's EFAULT (the real open gives it),
 * not a SIGSEGV here, and a short valid string may end just before an
 * unmapped page, so nothing past its NUL is read.
 */
static int
which(int dirfd, const char *path)
{
	static const char *const name[] = { "sem", "msg", "shm" };
	char s[sizeof(PFX) + 4];
	size_t i;

	(void)dirfd; /* an absolute path ignores it */
	if (path == NULL)
		return P_NONE;
	for (i = 0; i < sizeof(s); i++) {
		if (prim__ucopy(&s[i], path + i, 1) != 0)
			return P_NONE;
		if (i < sizeof(PFX) - 1 && s[i] != PFX[i])
			return P_NONE;
		if (s[i] == '\0')
			break;
	}
	if (i != sizeof(PFX) - 1 + 3)
		return P_NONE;
	for (int k = 0; k < 3; k++)
		if (memcmp(s + sizeof(PFX) - 1, name[k], 4) == 0)
			return k == 0 ? P_SEM : k == 1 ? P_MSG : P_SHM;
	return P_NONE;
}

/* A growing text buffer. */
struct buf {
	char *p;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 8192;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* One object's line: its STAT_INDEX figures, or 0 when it went away. */
static int
obj_line(struct buf *b, int type, int index, int32_t id)
{
	struct primd_req req;
	struct primd_rep rep;
	const struct primd_stat *s = &rep.stat;

	memset(&req, 0, sizeof(req));
	req.op = PRIMD_STAT_INDEX;
	req.type = (uint16_t)type;
	req.id = index;
	req.flags = 1; /* *_STAT_ANY: the file lists every object */
	if (sysv__call(&req, &rep) != 0)
		return -1;
	if (rep.err != 0 || rep.id != id)
		return 0; /* removed, replaced or damaged meanwhile */
	if (type == PRIMD_SEM)
		put(b, "%10d %10d  %4o %10u %5u %5u %5u %5u %10llu %10llu\n",
		    s->key, rep.id, s->mode & 0777, s->nsems, s->uid, s->gid,
		    s->cuid, s->cgid, (unsigned long long)s->otime,
		    (unsigned long long)s->ctime);
	else
		put(b,
		    "%10d %10d  %4o  %10lu %10lu %5u %5u %5u %5u %5u %5u "
		    "%10llu %10llu %10llu\n",
		    s->key, rep.id, s->mode & 0777, (unsigned long)s->cbytes,
		    (unsigned long)s->qnum, (unsigned)s->lspid,
		    (unsigned)s->lrpid, s->uid, s->gid, s->cuid, s->cgid,
		    (unsigned long long)s->stime, (unsigned long long)s->rtime,
		    (unsigned long long)s->ctime);
	return 0;
}

static int
gen_objs(struct buf *b, int type)
{
	int hi = sysv__ent_hi(type);

	if (hi < 0)
		return -1;
	if (type == PRIMD_SEM)
		put(b, "       key      semid perms      nsems   uid   gid  cuid"
		       "  cgid      otime      ctime\n");
	else
		put(b, "       key      msqid perms      cbytes       qnum lspid"
		       " lrpid   uid   gid  cuid  cgid      stime      rtime"
		       "      ctime\n");
	for (int i = 0; i < hi; i++) {
		const struct primd_ent_shm *e = sysv__ent(type, i);
		struct primd_ent_shm c;

		if (e == NULL)
			return -1;
		if (ck_pr_load_32(&e->state) != PRIMD_ENT_LIVE)
			continue;
		if (primd_ent_read(e, &c) != 0 || c.state != PRIMD_ENT_LIVE ||
		    c.id < 0)
			continue;
		if (obj_line(b, type, i, c.id) != 0)
			return -1;
	}
	return 0;
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * The kernel's shm file without the broker's segments into b; or, with si,
 * those segments' share taken off SHM_INFO's figures instead.
 */
static int
gen_shm(struct buf *b, struct shm_info *si)
{
	int *hide = NULL, nhide = 0, cap = 0, fd, rc = -1;
	char chunk[4096];
	struct buf in = {0};
	ssize_t n;

	for (int t = PRIMD_SEM; t <= PRIMD_MSG; t++)
		for (int i = 0, hi = sysv__ent_hi(t); i < hi || hi < 0; i++) {
			const struct primd_ent_shm *e = sysv__ent(t, i);
			struct primd_ent_shm c;

			if (e == NULL)
				goto out;
			if (ck_pr_load_32(&e->state) == PRIMD_ENT_FREE)
				continue;
			if (primd_ent_read(e, &c) != 0 ||
			    c.state == PRIMD_ENT_FREE || c.shmid < 0)
				continue;
			if (nhide + 1 >= cap) {
				int *p = realloc(hide, (size_t)(cap ? cap * 2
								    : 256) *
							   sizeof(int));
				if (p == NULL)
					goto out;
				hide = p;
				cap = cap ? cap * 2 : 256;
			}
			hide[nhide++] = c.shmid;
		}
	if (hide == NULL && (hide = malloc(sizeof(int))) == NULL)
		goto out;
	hide[nhide++] = sysv__reg_shmid();
	qsort(hide, (size_t)nhide, sizeof(int), cmp_int);

	if ((fd = sys_openat(AT_FDCWD, PFX "shm", O_RDONLY | O_CLOEXEC, 0)) <
	    0)
		goto out;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		put(&in, "%.*s", (int)n, chunk);
	}
	close(fd);
	if (n != 0 || in.err || in.p == NULL)
		goto out;
	for (char *line = in.p, *nl; *line != '\0'; line = nl) {
		int shmid;

		nl = strchr(line, '\n');
		nl = nl != NULL ? nl + 1 : line + strlen(line);
		int mine = line != in.p &&
			   sscanf(line, "%*d %d", &shmid) == 1 &&
			   bsearch(&shmid, hide, (size_t)nhide, sizeof(int),
				   cmp_int) != NULL;
		unsigned long size, rss, swp;

		if (si == NULL) {
			if (!mine)
				put(b, "%.*s", (int)(nl - line), line);
		} else if (mine &&
			   sscanf(line,
				  "%*d %*d %*o %lu %*d %*d %*u %*u %*u %*u "
				  "%*u %*u %*u %*u %lu %lu",
				  &size, &rss, &swp) == 3) {
			unsigned long pg = (unsigned long)sysconf(_SC_PAGESIZE);

			si->used_ids--;
			si->shm_tot -= (size + pg - 1) / pg;
			si->shm_rss -= rss / pg;
			si->shm_swp -= swp / pg;
		}
	}
	rc = b->err ? -1 : 0;
out:
	free(in.p);
	free(hide);
	return rc;
}

/*
 * The generated file p as a memfd at offset 0, or -1 (errno untouched)
 * when it cannot be made: the caller opens the real one.
 */
static int
generate(int p, int cloexec)
{
	struct primd_info info;
	struct buf b = {0};
	int saved = errno, fd = -1, r;

	busy = 1;
	/* Reaches the broker (connecting and mapping the registry first
	 * when needed): no broker, the real file. */
	if (sysv__info(PRIMD_SEM, SEM_INFO, &info) != 0 ||
	    sysv__ent(PRIMD_SEM, 0) == NULL)
		goto out;
	if (p == P_SHM)
		r = gen_shm(&b, NULL);
	else
		r = gen_objs(&b, p == P_SEM ? PRIMD_SEM : PRIMD_MSG);
	if (r != 0 || b.err)
		goto out;
	fd = memfd_create("sysvipc", cloexec ? MFD_CLOEXEC : 0);
	if (fd < 0)
		goto out;
	for (size_t off = 0; off < b.len;) {
		ssize_t n = write(fd, b.p + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			fd = -1;
			goto out;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		fd = -1;
	}
out:
	free(b.p);
	busy = 0;
	errno = saved;
	return fd;
}

void
sysv__shm_info_hide(struct shm_info *si)
{
	struct primd_info info;
	struct shm_info c = *si;
	struct buf b = {0};
	int saved = errno;

	if (busy)
		return;
	busy = 1;
	if (sysv__info(PRIMD_SEM, SEM_INFO, &info) == 0 &&
	    sysv__ent(PRIMD_SEM, 0) != NULL && gen_shm(&b, &c) == 0)
		*si = c;
	free(b.p);
	busy = 0;
	errno = saved;
}

/* A read-only open we answer: no creation, no write, not a directory. */
static int
ours(int dirfd, const char *path, int flags)
{
	int p = which(dirfd, path); /* first: most opens stop here */

	if (p == P_NONE || busy || (flags & O_ACCMODE) != O_RDONLY ||
	    (flags & (O_CREAT | O_TRUNC | O_DIRECTORY | O_PATH |
		      (O_TMPFILE & ~O_DIRECTORY))) != 0)
		return P_NONE;
	return p;
}

/* Ours: the memfd (>= 0). Not ours, or not made: -1, errno untouched. */
static int
try_ours(int dirfd, const char *path, int flags)
{
	int p = ours(dirfd, path, flags);

	return p == P_NONE ? -1 : generate(p, flags & O_CLOEXEC);
}

#define NEEDS_MODE(f) (((f) & O_CREAT) != 0 || ((f) & O_TMPFILE) == O_TMPFILE)

#define MODE_ARG(flags, mode)                                           \
	do {                                                            \
		if (NEEDS_MODE(flags)) {                                \
			va_list ap;                                     \
			va_start(ap, flags);                            \
			mode = va_arg(ap, mode_t);                      \
			va_end(ap);                                     \
		}                                                       \
	} while (0)

typedef int (*open_fn)(const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);

#define OPEN_BODY(F)                                                    \
	mode_t mode = 0;                                                \
	open_fn f;                                                      \
	int fd;                                                         \
                                                                        \
	MODE_ARG(flags, mode);                                          \
	if ((fd = try_ours(AT_FDCWD, path, flags)) >= 0)                \
		return fd;                                              \
	if ((f = (open_fn)real(F)) == NULL)                             \
		return -1;                                              \
	return f(path, flags, mode)

#define OPENAT_BODY(F)                                                  \
	mode_t mode = 0;                                                \
	openat_fn f;                                                    \
	int fd;                                                         \
                                                                        \
	MODE_ARG(flags, mode);                                          \
	if ((fd = try_ours(dirfd, path, flags)) >= 0)                   \
		return fd;                                              \
	if ((f = (openat_fn)real(F)) == NULL)                           \
		return -1;                                              \
	return f(dirfd, path, flags, mode)

SYSV_EXPORT int
open(const char *path, int flags, ...)
{
	OPEN_BODY(F_OPEN);
}

SYSV_EXPORT int
open64(const char *path, int flags, ...)
{
	OPEN_BODY(F_OPEN64);
}

SYSV_EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	OPENAT_BODY(F_OPENAT);
}

SYSV_EXPORT int
openat64(int dirfd, const char *path, int flags, ...)
{
	OPENAT_BODY(F_OPENAT64);
}

int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);

/* _FORTIFY_SOURCE's forms, called when the flags are not constant: they
 * take no mode. */
#define OPEN2_BODY(F)                                                   \
	open2_fn f;                                                     \
	int fd;                                                         \
                                                                        \
	if ((fd = try_ours(AT_FDCWD, path, flags)) >= 0)                \
		return fd;                                              \
	if ((f = (open2_fn)real(F)) == NULL)                            \
		return -1;                                              \
	return f(path, flags)

#define OPENAT2_BODY(F)                                                 \
	openat2_fn f;                                                   \
	int fd;                                                         \
                                                                        \
	if ((fd = try_ours(dirfd, path, flags)) >= 0)                   \
		return fd;                                              \
	if ((f = (openat2_fn)real(F)) == NULL)                          \
		return -1;                                              \
	return f(dirfd, path, flags)

SYSV_EXPORT int
__open_2(const char *path, int flags)
{
	OPEN2_BODY(F_OPEN_2);
}

SYSV_EXPORT int
__open64_2(const char *path, int flags)
{
	OPEN2_BODY(F_OPEN64_2);
}

SYSV_EXPORT int
__openat_2(int dirfd, const char *path, int flags)
{
	OPENAT2_BODY(F_OPENAT_2);
}

SYSV_EXPORT int
__openat64_2(int dirfd, const char *path, int flags)
{
	OPENAT2_BODY(F_OPENAT64_2);
}

static FILE *
do_fopen(const char *path, const char *mode, fopen_fn _Atomic *slot,
	 const char *name)
{
	fopen_fn f;
	int p, fd;

	if ((p = which(AT_FDCWD, path)) != P_NONE && !busy && mode != NULL &&
	    mode[0] == 'r' && strchr(mode, '+') == NULL &&
	    (fd = generate(p, strchr(mode, 'e') != NULL)) >= 0) {
		int saved = errno;
		FILE *fp = fdopen(fd, "r");

		if (fp != NULL) {
			errno = saved;
			return fp;
		}
		close(fd);
		errno = saved;
	}
	f = sysv__next((void *_Atomic *)slot, name);
	if (f == NULL) {
		errno = ENOSYS;
		return NULL;
	}
	return f(path, mode);
}

SYSV_EXPORT FILE *
fopen(const char *path, const char *mode)
{
	return do_fopen(path, mode, &real_fopen, "fopen");
}

SYSV_EXPORT FILE *
fopen64(const char *path, const char *mode)
{
	return do_fopen(path, mode, &real_fopen64, "fopen64");
}
