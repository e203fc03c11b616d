/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * creds: the differential test of credential changes. Run as root, it
 * makes semaphore sets and message queues with several modes (some with
 * their group set to a gid the children get as a supplementary group, one
 * created by another uid), uses them all once (so a preloaded libsysv has
 * them cached, judged as root), then forks one child per way of changing
 * credentials: setuid, seteuid and back, setreuid, setresuid, setgid with
 * setgroups, setgroups alone adding and removing the objects' group (with
 * CAP_SETGID kept), initgroups, capset dropping and raising
 * CAP_IPC_OWNER, and exec after a drop. After each change the child tries
 * every object: semop (alter, and wait for zero), GETVAL, SETVAL,
 * IPC_STAT, msgsnd, msgrcv, msgctl IPC_STAT, semget and msgget with and
 * without mode bits; and a new object, whose owner must be the new
 * credentials.
 *
 * It prints one line per object and probe, no ids, pids or times, in an
 * order fixed by the parent waiting for each child: tests/check_creds.sh
 * runs it against the kernel, with libsysv preloaded and under
 * `primctl run`, and the outputs must be identical.
 *
 * Modes:
 *   creds KEY                    the full run (as root, in its own IPC
 *                                namespace); removes what it made
 *   creds probe TAG KEY IDS...   (internal) the probes, in the image the
 *                                exec scenario starts
 *   creds try                    semget and msgget of IPC_PRIVATE, one
 *                                line, removed again (check_discovery.sh,
 *                                check_run.sh)
 *   creds keep KEY VAL           a set with semaphore 0 at VAL and a queue
 *                                holding "kept", both of key KEY
 *   creds check KEY              what keep left, one line; removed
 *                                (check_run.sh: across a broker's death)
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

/* Not declared by glibc's headers. */
int capget(cap_user_header_t hdr, cap_user_data_t data);
int capset(cap_user_header_t hdr, const cap_user_data_t data);

#define NOBODY 65534
#define GRP    4242 /* the objects' group, a supplementary group */
#define OTHER  4243 /* the creator of object 8 */

static const struct {
	int mode;
	int gid;     /* set with IPC_SET, -1: keep 0 */
	int creator; /* made by this uid, -1: root */
} objs[] = {
    {0600, -1, -1},  {0640, GRP, -1}, {0660, GRP, -1},
    {0604, -1, -1},  {0606, -1, -1},  {0666, -1, -1},
    {0620, GRP, -1}, {0660, -1, -1},  {0600, -1, OTHER},
};
#define NOBJ ((int)(sizeof(objs) / sizeof(objs[0])))

static key_t base;
static int semid[NOBJ], msqid[NOBJ];
static char self[PATH_MAX];

static void
P(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A line built one call at a time, so that each errno is its own. */
struct line {
	char b[1024];
	size_t n;
};

static void
add(struct line *l, const char *fmt, ...)
{
	va_list ap;

	if (l->n >= sizeof(l->b))
		return;
	va_start(ap, fmt);
	l->n += (size_t)vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
	va_end(ap);
}

/* " name=N" or " name=-1 ENAME" for the call just made. */
static void
res(struct line *l, const char *name, long r, int e)
{
	if (r == -1)
		add(l, " %s=-1 %s", name, strerrorname_np(e));
	else
		add(l, " %s=%ld", name, r);
}

#define RES(l, name, call)                                                     \
	do {                                                                   \
		errno = 0;                                                     \
		long r_ = (long)(call);                                        \
		res(l, name, r_, errno);                                       \
	} while (0)

/* The same for a *get: "id" rather than the number. */
#define RESID(l, name, call)                                                   \
	do {                                                                   \
		errno = 0;                                                     \
		long r_ = (long)(call);                                        \
		if (r_ >= 0)                                                   \
			add(l, " %s=id", name);                                \
		else                                                           \
			res(l, name, r_, errno);                               \
	} while (0)

struct msg {
	long mtype;
	char text[16];
};

/* Every operation on object i, as the process is now. */
static void
try_obj(const char *tag, int i)
{
	struct sembuf up = {0, 1, IPC_NOWAIT}, zero = {1, 0, IPC_NOWAIT};
	struct msg m = {1, "abcd"}, r;
	struct semid_ds sd;
	struct msqid_ds md;
	struct line l = {.n = 0};
	int s = semid[i], q = msqid[i];

	add(&l, "%s obj%d %04o sem:", tag, i, objs[i].mode);
	RES(&l, "op+1", semop(s, &up, 1));
	RES(&l, "zero", semop(s, &zero, 1));
	RES(&l, "GETVAL", semctl(s, 0, GETVAL));
	RES(&l, "SETVAL", semctl(s, 0, SETVAL, (union semun){.val = 0}));
	errno = 0;
	if (semctl(s, 0, IPC_STAT, (union semun){.buf = &sd}) == 0)
		add(&l, " STAT=uid:%u,gid:%u,cuid:%u,cgid:%u,mode:%04o",
		    (unsigned)sd.sem_perm.uid, (unsigned)sd.sem_perm.gid,
		    (unsigned)sd.sem_perm.cuid, (unsigned)sd.sem_perm.cgid,
		    (unsigned)sd.sem_perm.mode & 0777);
	else
		res(&l, "STAT", -1, errno);
	RESID(&l, "get0", semget(base + 2 * i, 0, 0));
	RESID(&l, "get0600", semget(base + 2 * i, 0, 0600));
	P("%s", l.b);

	l.n = 0;
	add(&l, "%s obj%d %04o msg:", tag, i, objs[i].mode);
	RES(&l, "snd", msgsnd(q, &m, 4, IPC_NOWAIT));
	RES(&l, "rcv", msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT));
	errno = 0;
	if (msgctl(q, IPC_STAT, &md) == 0)
		add(&l, " STAT=qnum:%lu,uid:%u,gid:%u,mode:%04o",
		    (unsigned long)md.msg_qnum, (unsigned)md.msg_perm.uid,
		    (unsigned)md.msg_perm.gid,
		    (unsigned)md.msg_perm.mode & 0777);
	else
		res(&l, "STAT", -1, errno);
	RESID(&l, "get0", msgget(base + 2 * i + 1, 0));
	RESID(&l, "get0600", msgget(base + 2 * i + 1, 0600));
	P("%s", l.b);
}

/* A new set and queue, owned by whoever the process is now; removed. */
static void
try_create(const char *tag)
{
	struct semid_ds sd;
	struct msqid_ds md;
	struct line l = {.n = 0};
	int s = semget(IPC_PRIVATE, 1, 0600), q = msgget(IPC_PRIVATE, 0600);

	add(&l, "%s create:", tag);
	if (s >= 0 && semctl(s, 0, IPC_STAT, (union semun){.buf = &sd}) == 0)
		add(&l, " sem=uid:%u,gid:%u,cuid:%u,cgid:%u",
		    (unsigned)sd.sem_perm.uid, (unsigned)sd.sem_perm.gid,
		    (unsigned)sd.sem_perm.cuid, (unsigned)sd.sem_perm.cgid);
	else
		res(&l, "sem", -1, errno);
	if (q >= 0 && msgctl(q, IPC_STAT, &md) == 0)
		add(&l, " msg=uid:%u,gid:%u,cuid:%u,cgid:%u",
		    (unsigned)md.msg_perm.uid, (unsigned)md.msg_perm.gid,
		    (unsigned)md.msg_perm.cuid, (unsigned)md.msg_perm.cgid);
	else
		res(&l, "msg", -1, errno);
	if (s >= 0)
		RES(&l, "semrm", semctl(s, 0, IPC_RMID));
	if (q >= 0)
		RES(&l, "msgrm", msgctl(q, IPC_RMID, NULL));
	P("%s", l.b);
}

static void
probe(const char *tag)
{
	gid_t g[16];
	int n = getgroups(16, g);
	struct line l = {.n = 0};

	add(&l, "%s: euid=%u egid=%u groups=", tag, (unsigned)geteuid(),
	    (unsigned)getegid());
	for (int i = 0; i < n; i++)
		add(&l, "%s%u", i ? "," : "", (unsigned)g[i]);
	P("%s", l.b);
	for (int i = 0; i < NOBJ; i++)
		try_obj(tag, i);
}

#define MUST(x)                                                                \
	do {                                                                   \
		errno = 0;                                                     \
		if ((long)(x) != 0) {                                          \
			P("SETUP FAILED line %d: %s: %s", __LINE__, #x,        \
			  strerrorname_np(errno));                             \
			_exit(1);                                              \
		}                                                              \
	} while (0)

/* Effective capabilities: add or remove cap (CAP_SETGID: permitted too). */
static int
cap_effective(int cap, int on, int only)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (capget(&h, d) != 0)
		return -1;
	if (only) {
		memset(d, 0, sizeof(d));
		d[cap / 32].permitted = 1u << (cap % 32);
	}
	if (on)
		d[cap / 32].effective |= 1u << (cap % 32);
	else
		d[cap / 32].effective &= ~(1u << (cap % 32));
	return capset(&h, d);
}

static void
sc_setuid(void)
{
	MUST(setuid(NOBODY));
	probe("setuid");
	try_create("setuid");
}

static void
sc_seteuid(void)
{
	MUST(seteuid(NOBODY));
	probe("seteuid");
	MUST(seteuid(0));
	probe("seteuid-back");
}

static void
sc_setreuid(void)
{
	MUST(setregid(NOBODY, NOBODY));
	MUST(setreuid(NOBODY, NOBODY));
	probe("setreuid");
	try_create("setreuid");
}

static void
sc_setresuid(void)
{
	MUST(setresgid(GRP, GRP, GRP));
	MUST(setresuid(NOBODY, NOBODY, NOBODY));
	probe("setresuid");
	try_create("setresuid");
}

static void
sc_setgid_groups(void)
{
	gid_t g = GRP;

	MUST(setgroups(1, &g));
	MUST(setgid(NOBODY));
	MUST(setuid(NOBODY));
	probe("setgid+setgroups");
}

/* Only the supplementary groups change between the two probes. */
static void
sc_setgroups(void)
{
	gid_t g = GRP;

	MUST(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	MUST(setresgid(NOBODY, NOBODY, NOBODY));
	MUST(setresuid(NOBODY, NOBODY, NOBODY));
	MUST(cap_effective(CAP_SETGID, 1, 1));
	MUST(setgroups(1, &g));
	probe("setgroups-add");
	MUST(setgroups(0, NULL));
	probe("setgroups-remove");
}

static void
sc_setegid(void)
{
	gid_t g = GRP;

	MUST(setgroups(1, &g));
	MUST(setegid(GRP));
	MUST(seteuid(NOBODY));
	probe("setegid");
}

static void
sc_initgroups(void)
{
	MUST(initgroups("nobody", GRP));
	MUST(setresgid(NOBODY, NOBODY, NOBODY));
	MUST(setresuid(NOBODY, NOBODY, NOBODY));
	probe("initgroups");
}

static void
sc_capset(void)
{
	MUST(cap_effective(CAP_IPC_OWNER, 0, 0));
	probe("capset-drop");
	MUST(cap_effective(CAP_IPC_OWNER, 1, 0));
	probe("capset-raise");
}

static void
sc_exec(void)
{
	char *argv[4 + 2 * NOBJ + 1], key[32], ids[2 * NOBJ][16];
	gid_t g = GRP;
	int a = 0;

	MUST(setgroups(1, &g));
	MUST(setresgid(NOBODY, NOBODY, NOBODY));
	MUST(setresuid(NOBODY, NOBODY, NOBODY));
	snprintf(key, sizeof(key), "%d", (int)base);
	argv[a++] = self;
	argv[a++] = "probe";
	argv[a++] = "exec";
	argv[a++] = key;
	for (int i = 0; i < NOBJ; i++) {
		snprintf(ids[2 * i], 16, "%d", semid[i]);
		snprintf(ids[2 * i + 1], 16, "%d", msqid[i]);
		argv[a++] = ids[2 * i];
		argv[a++] = ids[2 * i + 1];
	}
	argv[a] = NULL;
	execv(self, argv);
	P("SETUP FAILED exec %s: %s", self, strerrorname_np(errno));
	_exit(1);
}

/*
 * Defined only when a sanitizer's runtime is loaded (make check-asan,
 * check-tsan): it stops the runtime's own threads, as before a sandbox.
 * ThreadSanitizer starts a thread of its own in every child of fork, and
 * registers the call that stops it only once the program has started a
 * thread: no_op is that thread (see main).
 */
extern void __sanitizer_sandbox_on_notify(void *args) __attribute__((weak));

static void *
no_op(void *arg)
{
	return arg;
}

/* Run fn in a child that first talks to the broker as root. */
static void
scenario(void (*fn)(void))
{
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		/*
		 * The child must have one thread: capset changes the calling
		 * thread only, while glibc applies setgroups and the set*id
		 * calls to every thread and aborts if one of them may not.
		 */
		if (__sanitizer_sandbox_on_notify != NULL)
			__sanitizer_sandbox_on_notify(NULL);
		/* A control call as root: libsysv connects as root now, and
		 * must connect again after the change. */
		(void)semget(base, 0, 0);
		fn();
		fflush(stdout);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		P("SETUP FAILED fork/wait");
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		P("  child status %#x", st);
}

/* Object 8, made by another uid (so root is not its owner). */
static void
make_other(int i)
{
	MUST(setresgid(OTHER, OTHER, OTHER));
	MUST(setresuid(OTHER, OTHER, OTHER));
	if (semget(base + 2 * i, 2, IPC_CREAT | IPC_EXCL | objs[i].mode) < 0 ||
	    msgget(base + 2 * i + 1, IPC_CREAT | IPC_EXCL | objs[i].mode) < 0)
		P("SETUP FAILED create %d as %d: %s", i, OTHER,
		  strerrorname_np(errno));
	fflush(stdout);
	_exit(0);
}

static int
setup(void)
{
	for (int i = 0; i < NOBJ; i++) {
		struct semid_ds sd;
		struct msqid_ds md;
		int s, q;

		if (objs[i].creator >= 0) {
			pid_t pid = fork();

			if (pid == 0)
				make_other(i);
			waitpid(pid, NULL, 0);
			s = semget(base + 2 * i, 0, 0);
			q = msgget(base + 2 * i + 1, 0);
		} else {
			s = semget(base + 2 * i, 2,
				   IPC_CREAT | IPC_EXCL | objs[i].mode);
			q = msgget(base + 2 * i + 1,
				   IPC_CREAT | IPC_EXCL | objs[i].mode);
		}
		if (s < 0 || q < 0) {
			P("SETUP FAILED object %d: %s", i,
			  strerrorname_np(errno));
			return -1;
		}
		semid[i] = s;
		msqid[i] = q;
		if (objs[i].gid >= 0) {
			if (semctl(s, 0, IPC_STAT, (union semun){.buf = &sd}) ||
			    msgctl(q, IPC_STAT, &md))
				return -1;
			sd.sem_perm.gid = md.msg_perm.gid = (gid_t)objs[i].gid;
			if (semctl(s, 0, IPC_SET, (union semun){.buf = &sd}) ||
			    msgctl(q, IPC_SET, &md)) {
				P("SETUP FAILED IPC_SET %d: %s", i,
				  strerrorname_np(errno));
				return -1;
			}
		}
		P("made obj%d mode %04o%s%s", i, objs[i].mode,
		  objs[i].gid >= 0 ? " group 4242" : "",
		  objs[i].creator >= 0 ? " by uid 4243" : "");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	ssize_t n;
	int left = 0;

	if (__sanitizer_sandbox_on_notify != NULL) {
		pthread_t t;

		if (pthread_create(&t, NULL, no_op, NULL) == 0)
			pthread_join(t, NULL);
	}

	if (argc >= 4 + 2 * NOBJ && strcmp(argv[1], "probe") == 0) {
		base = (key_t)strtol(argv[3], NULL, 0);
		for (int i = 0; i < NOBJ; i++) {
			semid[i] = atoi(argv[4 + 2 * i]);
			msqid[i] = atoi(argv[5 + 2 * i]);
		}
		probe(argv[2]);
		try_create(argv[2]);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "try") == 0) {
		struct line l = {.n = 0};
		int s, q;

		add(&l, "try:");
		RESID(&l, "semget", s = semget(IPC_PRIVATE, 1, 0600));
		RESID(&l, "msgget", q = msgget(IPC_PRIVATE, 0600));
		P("%s", l.b);
		if (s >= 0)
			semctl(s, 0, IPC_RMID);
		if (q >= 0)
			msgctl(q, IPC_RMID, NULL);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "keep") == 0) {
		key_t k = (key_t)strtol(argv[2], NULL, 0);
		struct msg m = {1, "kept"};
		int s = semget(k, 1, IPC_CREAT | 0600);
		int q = msgget(k, IPC_CREAT | 0600);

		if (s < 0 || q < 0 ||
		    semctl(s, 0, SETVAL, (union semun){.val = atoi(argv[3])}) ||
		    msgsnd(q, &m, 5, IPC_NOWAIT)) {
			P("keep: %s", strerrorname_np(errno));
			return 1;
		}
		P("keep: ok");
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "check") == 0) {
		key_t k = (key_t)strtol(argv[2], NULL, 0);
		struct msg m;
		struct line l = {.n = 0};
		int s, q;

		add(&l, "check:");
		RESID(&l, "semget", s = semget(k, 0, 0));
		RES(&l, "GETVAL", semctl(s, 0, GETVAL));
		RESID(&l, "msgget", q = msgget(k, 0));
		errno = 0;
		if (msgrcv(q, &m, sizeof(m.text), 0, IPC_NOWAIT) == 5)
			add(&l, " msg=%s", m.text);
		else
			res(&l, "msgrcv", -1, errno);
		RES(&l, "semrm", semctl(s, 0, IPC_RMID));
		RES(&l, "msgrm", msgctl(q, IPC_RMID, NULL));
		P("%s", l.b);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: creds KEY | try | keep KEY VAL | "
				"check KEY\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "creds: must run as root\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	base = (key_t)strtol(argv[1], NULL, 0);
	/* Root with no supplementary groups: every child starts the same. */
	if (setgroups(0, NULL) != 0 || setup() != 0)
		return 1;
	/* Use each object once: a preloaded libsysv caches it, as root. */
	for (int i = 0; i < NOBJ; i++) {
		struct msqid_ds md;

		(void)semctl(semid[i], 0, GETVAL);
		(void)msgctl(msqid[i], IPC_STAT, &md);
	}
	probe("root");
	scenario(sc_setuid);
	scenario(sc_seteuid);
	scenario(sc_setreuid);
	scenario(sc_setresuid);
	scenario(sc_setgid_groups);
	scenario(sc_setgroups);
	scenario(sc_setegid);
	scenario(sc_initgroups);
	scenario(sc_capset);
	scenario(sc_exec);
	probe("root-after");
	for (int i = 0; i < NOBJ; i++) {
		left += semctl(semid[i], 0, IPC_RMID) == 0;
		left += msgctl(msqid[i], IPC_RMID, NULL) == 0;
	}
	P("removed %d objects", left);
	P("creds: done");
	return 0;
}
