/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * primctl: run a program against the broker of this IPC namespace
 * (starting one if none answers), list the objects the broker keeps, and
 * remove them. It talks the wire protocol of broker/proto.h and reads the
 * objects themselves through a read-only attach of their segments. Every
 * socket is judged by primd__connect (broker/sockpath.c), the rule libsysv
 * follows too, and a refusal is printed with its reason.
 *
 * `run` stays the parent of the program (see cmd_run): a child subreaper
 * that passes signals on, reaps every orphaned descendant, holds a
 * connection to the broker so that it never exits idle while the program
 * lives, starts it again if it dies, and exits as the program did.
 *
 * Concurrency: one thread. The run supervisor waits in poll(2) on a
 * signalfd and its broker connection; no signal handler runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prim/msgq.h"
#include "prim/sem.h"
#include "proto.h"
#include "sockpath.h"

#define SOCKMAX sizeof(((struct sockaddr_un *)0)->sun_path)

static const char *prog = "primctl";
static char sockbuf[SOCKMAX];
static const char *sock; /* --sock, else primd__sock_path */
static uint32_t reqseq;
static char why[512]; /* why the last bconnect failed */

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: primctl [--sock PATH] run [-s PATH] -- CMD [ARG...]\n"
		"       primctl [--sock PATH] ipcs [-s PATH] [--json]\n"
		"       primctl [--sock PATH] ipcrm [--sock PATH] "
		"(-s ID | -q ID | -S KEY | -Q KEY | --all[=sem|msg])...\n"
		"       primctl [--sock PATH] status [-s PATH]\n");
}

static int
resolve_sock(void)
{
	int r;

	if (sock != NULL)
		return 0;
	r = primd__sock_path(sockbuf, sizeof(sockbuf), 0);
	if (r != 0) {
		fprintf(stderr, "%s: socket path: %s\n", prog, strerror(-r));
		return -1;
	}
	sock = sockbuf;
	return 0;
}

/* ------------------------------------------------------------------
 * Talking to the broker
 */

/*
 * Connect to the broker on path, as libsysv would (primd__connect: the
 * directory, the socket, the broker's uid). Returns the descriptor, or
 * -errno with the reason in why (-EPERM: refused).
 */
static int
bconnect(const char *path)
{
	struct timeval tv = {.tv_sec = 5};
	int fd = primd__connect(path, why, sizeof(why), 5000);

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
req_init(struct primd_req *q, int op, int type)
{
	memset(q, 0, sizeof(*q));
	q->magic = PRIMD_MAGIC;
	q->version = PRIMD_VERSION;
	q->op = (uint16_t)op;
	q->type = (uint16_t)type;
	q->seq = ++reqseq;
}

/* One request, one reply. Returns the reply's err, or -1 (I/O). */
static int
call(int fd, struct primd_req *q, struct primd_rep *p)
{
	ssize_t n;

	if (send(fd, q, sizeof(*q), MSG_NOSIGNAL) != (ssize_t)sizeof(*q))
		return -1;
	n = recv(fd, p, sizeof(*p), 0);
	if (n != (ssize_t)sizeof(*p) || p->magic != PRIMD_MAGIC ||
	    p->seq != q->seq) {
		errno = n < 0 ? errno : EPROTO;
		return -1;
	}
	return p->err;
}

static int
open_broker(void)
{
	int fd;

	if (resolve_sock() != 0)
		return -1;
	fd = bconnect(sock);
	if (fd == -EPERM)
		fprintf(stderr, "%s: refusing the broker socket: %s\n", prog,
			why);
	else if (fd < 0)
		fprintf(stderr, "%s: no broker answers: %s\n", prog, why);
	return fd < 0 ? -1 : fd;
}

/* The broker's pid and uid on a connection (SO_PEERCRED). */
static void
peer(int fd, int *pid, unsigned *uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	*pid = 0;
	*uid = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
		*pid = (int)uc.pid;
		*uid = (unsigned)uc.uid;
	}
}

/* ------------------------------------------------------------------
 * run
 */

/* dirname of this executable + "/" + name, in buf. */
static int
beside_me(const char *name, char *buf, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (len <= 0)
		return -1;
	self[len] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(buf, n, "%s/%s", self, name) >= n)
		return -1;
	return 0;
}

#ifndef PRIM_SBINDIR
#define PRIM_SBINDIR "/usr/local/sbin"
#endif
#ifndef PRIM_LIBDIR
#define PRIM_LIBDIR "/usr/local/lib"
#endif

/*
 * A companion file: next to this executable (the build tree), else where
 * make install put it (dir/installed).
 */
static int
locate(const char *name, const char *dir, const char *installed, char *buf,
       size_t n)
{
	if (beside_me(name, buf, n) == 0 && access(buf, R_OK) == 0)
		return 0;
	if ((size_t)snprintf(buf, n, "%s/%s", dir, installed) >= n)
		return -1;
	return access(buf, R_OK) == 0 ? 0 : -1;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The supervisor of `run` (see cmd_run). One thread; the state is only
 * touched from the poll loop, never from a signal handler.
 */
static struct {
	char primd[PATH_MAX]; /* "" if primd cannot be found */
	const char *idle;     /* --idle-exit of the brokers it starts */
	pid_t prog;	      /* the program, until it is reaped */
	int prog_done, prog_status;
	pid_t broker;	 /* a broker this primctl started, while it lives */
	int bfd;	 /* its connection to the broker, -1 while none */
	long next_try;	 /* when to look for a broker again (ms) */
	long last_start; /* when it last started one */
	int starts;	 /* brokers started since one last answered */
	int warned;	 /* said so since one last answered */
} run = {.bfd = -1};

/* What primctl was started with, given back to every child it makes. */
static sigset_t old_mask;
static struct sigaction old_pipe, old_chld;

/* Passed on to the program: what a supervisor or a terminal sends. */
static const int fwd_sigs[] = {SIGHUP,	SIGINT,	 SIGQUIT, SIGUSR1,  SIGUSR2,
			       SIGALRM, SIGTERM, SIGCONT, SIGWINCH, SIGPWR};

static void
child_reset(void)
{
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
}

/* Connect to the broker on path and say HELLO: the descriptor, or -errno
 * with the reason in why. */
static int
broker_hello(const char *path)
{
	struct primd_req q;
	struct primd_rep p;
	int fd = bconnect(path);

	if (fd < 0)
		return fd;
	req_init(&q, PRIMD_HELLO, 0);
	if (call(fd, &q, &p) != 0) {
		close(fd);
		snprintf(why, sizeof(why), "%s: the broker does not answer",
			 path);
		return -EPROTO;
	}
	return fd;
}

/*
 * Start a broker on sock as a child of this process, in a session of its
 * own, its output appended to sock.log. Not a daemon: as primctl's child
 * it is seen to die at once, and when primctl exits it is left to init.
 */
static pid_t
spawn_broker(void)
{
	char logf[SOCKMAX + 8];
	pid_t pid;
	int fd;

	if (run.primd[0] == '\0')
		return -1;
	snprintf(logf, sizeof(logf), "%s.log", sock);
	if ((pid = fork()) != 0)
		return pid;
	child_reset();
	setsid();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	/* The directory was judged: nobody else may put a link there. */
	fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	/* Nothing of the caller's: a pipe held open here would keep a
	 * reader of primctl's output waiting for the broker to exit. */
	closefrom(3);
	execl(run.primd, "primd", "-s", sock, "--idle-exit", run.idle,
	      (char *)NULL);
	_exit(127);
}

/*
 * The socket's directory, made as primd makes it (0755 for /run/prim, so
 * that a program which drops root still reaches the broker; 0700
 * otherwise), so that the broker's log can go there; then judged as
 * libsysv will judge it.
 */
static int
prepare_dir(void)
{
	char dir[SOCKMAX], *slash;
	mode_t mode;
	int r;

	snprintf(dir, sizeof(dir), "%s", sock);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0; /* made absolute by cmd_run */
	slash[slash == dir] = '\0';
	mode = strcmp(dir, "/run/prim") == 0 ? 0755 : 0700;
	if (mkdir(dir, mode) == 0) {
		/* Exactly that, whatever the umask. */
		if (chmod(dir, mode) != 0) {
			fprintf(stderr, "%s: chmod %s: %s\n", prog, dir,
				strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", prog, dir,
			strerror(errno));
		return -1;
	}
	if ((r = primd__dir_check(dir, why, sizeof(why))) != 0) {
		fprintf(stderr, "%s: refusing the broker socket %s: %s\n", prog,
			sock, why);
		return -1;
	}
	return 0;
}

/*
 * Before the program starts: a broker that answers on sock, started if
 * none does, within five seconds. Its descriptor, or -1 (said why).
 */
static int
first_broker(void)
{
	long deadline;
	int fd = broker_hello(sock), st;

	if (fd >= 0)
		return fd;
	if (fd == -EPERM)
		goto refused;
	if (run.primd[0] == '\0') {
		fprintf(stderr,
			"%s: cannot find primd next to primctl or in %s\n",
			prog, PRIM_SBINDIR);
		return -1;
	}
	if (prepare_dir() != 0)
		return -1;
	if ((run.broker = spawn_broker()) < 0) {
		run.broker = 0;
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		return -1;
	}
	run.last_start = now_ms();
	run.starts = 1;
	for (deadline = now_ms() + 5000; now_ms() < deadline; usleep(20000)) {
		if ((fd = broker_hello(sock)) >= 0)
			return fd;
		if (fd == -EPERM)
			goto refused;
		if (run.broker > 0 &&
		    waitpid(run.broker, &st, WNOHANG) == run.broker) {
			run.broker = 0;
			/* 3: another broker won the race; wait for it. */
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 3) {
				fprintf(stderr,
					"%s: primd exited at start (see "
					"%s.log)\n",
					prog, sock);
				return -1;
			}
		}
	}
	fprintf(stderr, "%s: the broker did not answer on %s (see %s.log)\n",
		prog, sock, sock);
	return -1;
refused:
	fprintf(stderr, "%s: refusing the broker socket: %s\n", prog, why);
	return -1;
}

/*
 * While the program runs, after the broker went away: connect again,
 * starting a broker when none answers and none of ours is starting (at
 * once the first time, then backing off from 1 s to 30 s while they keep
 * failing). It re-adopts every object from the registry.
 */
static void
try_broker(long now)
{
	long gap;
	pid_t pid;
	int fd = broker_hello(sock);

	if (fd >= 0) {
		run.bfd = fd;
		run.starts = 0;
		run.warned = 0;
		return;
	}
	run.next_try = now + 20;
	if (fd == -EPERM) {
		/* Someone else's now: look again, but not often. */
		if (!run.warned++)
			fprintf(stderr, "%s: refusing the broker socket: %s\n",
				prog, why);
		run.next_try = now + 1000;
		return;
	}
	if (run.broker != 0) {
		/* Ours is starting: look often for five seconds, then not. */
		if (now - run.last_start > 5000) {
			run.next_try = now + 1000;
			if (!run.warned++)
				fprintf(stderr,
					"%s: the broker did not answer on %s "
					"(see %s.log)\n",
					prog, sock, sock);
		}
		return;
	}
	if (run.starts > 0 && !run.warned++)
		fprintf(stderr,
			"%s: the broker started on %s exited before it "
			"answered (see %s.log); trying again\n",
			prog, sock, sock);
	gap = run.starts == 0 ? 0
			      : 1000L << (run.starts > 5 ? 5 : run.starts - 1);
	if (gap > 30000)
		gap = 30000;
	if (now - run.last_start < gap) {
		run.next_try = run.last_start + gap;
		return;
	}
	if ((pid = spawn_broker()) > 0) {
		run.broker = pid;
		run.starts++;
	} else if (!run.warned++) {
		fprintf(stderr, "%s: cannot start primd again on %s\n", prog,
			sock);
	}
	run.last_start = now;
}

/*
 * This process's children other than the broker it started, into
 * pids[max] (pids may be NULL): their number, or -1 if it cannot be known.
 * A subreaper's children are the program and every orphaned descendant;
 * the kernel lists them in /proc/self/task/<tid>/children (reliable here:
 * only this thread reaps them, and orphans are added at the end).
 */
static int
children(pid_t *pids, int max)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	FILE *f;
	long v;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
		 (int)getpid());
	if ((f = fopen(path, "re")) != NULL) {
		while (fscanf(f, "%ld", &v) == 1)
			if ((pid_t)v != run.broker && n++ < max && pids)
				pids[n - 1] = (pid_t)v;
		fclose(f);
		return n;
	}
	/* Without CONFIG_PROC_CHILDREN: every process's parent. */
	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char buf[512], spath[sizeof(e->d_name) + 16], *rp;
		int ppid = 0;
		ssize_t len;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(spath, sizeof(spath), "/proc/%s/stat", e->d_name);
		if ((fd = open(spath, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* "pid (comm) state ppid": comm may hold anything. */
		if ((rp = strrchr(buf, ')')) == NULL ||
		    sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != getpid())
			continue;
		v = atol(e->d_name);
		if ((pid_t)v != run.broker && n++ < max && pids)
			pids[n - 1] = (pid_t)v;
	}
	closedir(d);
	return n;
}

/* Reap every child that is done: the program, the broker, orphans. */
static void
reap(void)
{
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == run.prog) {
			run.prog = 0;
			run.prog_done = 1;
			run.prog_status = st;
		} else if (p == run.broker) {
			run.broker = 0; /* the connection says so too */
		}
	}
}

/*
 * Pass a signal on: to the program, or once it is gone to the orphans of
 * it this subreaper adopted. Not back to the process that sent it, nor
 * when the terminal sent it (SI_KERNEL) to our process group, which the
 * target is still in: it has had it already.
 */
static void
forward(const struct signalfd_siginfo *si)
{
	pid_t pids[256], pg = getpgrp(), sender = 0;
	int n = 1, tty = si->ssi_code == SI_KERNEL;

	if (si->ssi_code == SI_USER || si->ssi_code == SI_QUEUE ||
	    si->ssi_code == SI_TKILL)
		sender = (pid_t)si->ssi_pid;
	if (!run.prog_done)
		pids[0] = run.prog;
	else if ((n = children(pids, 256)) < 0)
		n = 0;
	for (int i = 0; i < n && i < 256; i++) {
		if (pids[i] <= 0 || pids[i] == sender ||
		    (tty && getpgid(pids[i]) == pg))
			continue;
		kill(pids[i], (int)si->ssi_signo);
	}
}

/* Until the program and every descendant left are gone. */
static void
supervise(int sfd)
{
	for (;;) {
		struct pollfd pf[2] = {
		    {.fd = sfd, .events = POLLIN},
		    {.fd = run.bfd, .events = POLLIN | POLLRDHUP},
		};
		struct signalfd_siginfo si;
		long now = now_ms(), wait = -1;
		int chld = 0;

		if (run.bfd < 0)
			wait = run.next_try > now ? run.next_try - now : 0;
		if (poll(pf, run.bfd >= 0 ? 2 : 1,
			 wait > 60000 ? 60000 : (int)wait) < 0) {
			/* EINTR, or short of memory: never leave the
			 * program unwatched, never spin. */
			pf[0].revents = pf[1].revents = 0;
			if (errno != EINTR)
				usleep(10000);
		}
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				chld = 1;
			else
				forward(&si);
		}
		if (chld) {
			reap();
			if (run.prog_done && children(NULL, 0) <= 0)
				return;
		}
		/* The broker never writes unasked: this is it going away. */
		if (run.bfd >= 0 && pf[1].revents != 0) {
			close(run.bfd);
			run.bfd = -1;
			run.next_try = now_ms();
		}
		if (run.bfd < 0 && now_ms() >= run.next_try)
			try_broker(now_ms());
	}
}

/* Exit as the program did: its status, or the signal that killed it. */
static int
finish(void)
{
	int st = run.prog_status, sig;
	struct rlimit rl = {0, 0};
	sigset_t set;

	if (run.bfd >= 0)
		close(run.bfd);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (!WIFSIGNALED(st))
		return 1;
	sig = WTERMSIG(st);
	fflush(NULL);
	setrlimit(RLIMIT_CORE, &rl); /* the program dumped its own */
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	return 128 + sig;
}

/*
 * run: find or start the broker, then run the program as a child, with
 * libsysv preloaded and PRIM_BROKER_SOCK set, and stay its parent. As
 * root the socket is the system one, /run/prim (0755; the broker makes it
 * 0666 as root), even before it exists, so that a program which drops
 * root still reaches the broker, which judges each request by the
 * connection's credentials. Otherwise a system broker that answers, else
 * the user's own.
 *
 * primctl is a child subreaper, so every descendant, a daemon that forked
 * twice and called setsid included, stays its descendant: it waits for all
 * of them, and its connection keeps the broker from exiting idle (sh -c
 * 'sleep 40; prog' is served) and notices when it dies, to start it again.
 */
static int
cmd_run(int argc, char **argv)
{
	char lib[PATH_MAX], abssock[PATH_MAX];
	const char *old;
	sigset_t set;
	pid_t pid;
	int i, sfd;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if ((strcmp(argv[i], "-s") == 0 ||
		     strcmp(argv[i], "--sock") == 0) &&
		    i + 1 < argc)
			sock = argv[++i];
		else if (argv[i][0] == '-') {
			usage(stderr);
			return 2;
		} else
			break;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	/* An ignored SIGCHLD would reap our children before we see them. */
	signal(SIGCHLD, SIG_DFL);
	if (locate("primd", PRIM_SBINDIR, "primd", run.primd,
		   sizeof(run.primd)) != 0 ||
	    access(run.primd, X_OK) != 0)
		run.primd[0] = '\0';
	run.idle = getenv("PRIM_IDLE_EXIT");
	if (run.idle == NULL || run.idle[0] == '\0')
		run.idle = "30";
	if (sock == NULL && (old = getenv("PRIM_BROKER_SOCK")) != NULL &&
	    old[0] != '\0')
		sock = old;
	if (sock == NULL) {
		int r = primd__sock_system(sockbuf, sizeof(sockbuf));

		if (r == 0 && geteuid() != 0 &&
		    (run.bfd = broker_hello(sockbuf)) < 0) {
			run.bfd = -1;
			r = primd__sock_user(sockbuf, sizeof(sockbuf));
		}
		if (r != 0) {
			fprintf(stderr, "%s: socket path: %s\n", prog,
				strerror(-r));
			return 1;
		}
		sock = sockbuf;
	}
	if (sock[0] != '/') {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    (size_t)snprintf(abssock, sizeof(abssock), "%s/%s", cwd,
				     sock) >= sizeof(abssock))
			return 1;
		sock = abssock;
	}
	if (strlen(sock) >= SOCKMAX) {
		fprintf(stderr, "%s: socket path too long: %s\n", prog, sock);
		return 1;
	}
	if (locate("libsysv.so", PRIM_LIBDIR, "libsysv.so.0", lib,
		   sizeof(lib)) != 0 ||
	    access(lib, R_OK) != 0) {
		fprintf(stderr,
			"%s: cannot find libsysv.so next to primctl or in "
			"%s\n",
			prog, PRIM_LIBDIR);
		return 127;
	}
	if (run.bfd < 0 && (run.bfd = first_broker()) < 0)
		return 1;
	run.starts = 0; /* one answers */

	/* From here every signal passed on, and SIGCHLD, waits in sfd. */
	sigemptyset(&set);
	for (size_t k = 0; k < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); k++)
		sigaddset(&set, fwd_sigs[k]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog,
			sfd < 0 ? "signalfd" : "PR_SET_CHILD_SUBREAPER",
			strerror(errno));
		return 1;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		char *pre = lib;

		child_reset();
		old = getenv("LD_PRELOAD");
		if (old != NULL && old[0] != '\0') {
			pre = malloc(strlen(lib) + strlen(old) + 2);
			if (pre == NULL)
				_exit(127);
			sprintf(pre, "%s:%s", lib, old);
		}
		if (setenv("LD_PRELOAD", pre, 1) != 0 ||
		    setenv("PRIM_BROKER_SOCK", sock, 1) != 0)
			_exit(127);
		execvp(argv[i], argv + i);
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[i],
			strerror(errno));
		_exit(127);
	}
	run.prog = pid;
	supervise(sfd);
	close(sfd);
	return finish();
}

/* ------------------------------------------------------------------
 * ipcs
 */

struct perm {
	uint32_t uid, gid, cuid, cgid, mode;
	int32_t key, id;
};

/* The registry, mapped read-only from the HELLO reply (NULL: none). */
static const struct primd_reg_shm *registry;

static void
map_registry(int fd)
{
	struct primd_req q;
	struct primd_rep p;
	const struct primd_reg_shm *r;

	req_init(&q, PRIMD_HELLO, 0);
	if (call(fd, &q, &p) != 0 || p.shmid < 0 ||
	    p.seg_size != sizeof(struct primd_reg_shm))
		return;
	r = shmat(p.shmid, NULL, SHM_RDONLY);
	if (r == (void *)-1)
		return;
	if (r->magic != PRIMD_REG_MAGIC || r->version != PRIMD_REG_VERSION) {
		shmdt(r);
		return;
	}
	registry = r;
}

/* The object's permissions, from the broker's registry (never from the
 * object's own memory, which its writers may rewrite). */
static int
read_perm(int type, int32_t id, struct perm *p)
{
	struct primd_ent_shm e;

	if (registry == NULL ||
	    primd_ent_read(&registry->ent[type - 1][id & (PRIMD_NIDX - 1)],
			   &e) != 0 ||
	    e.id != id)
		return -1;
	p->uid = e.uid;
	p->gid = e.gid;
	p->cuid = e.cuid;
	p->cgid = e.cgid;
	p->mode = e.mode & 0777;
	p->key = e.key;
	p->id = e.id;
	return 0;
}

/* Attach a listed object read-only, if we may; NULL if not (or damaged:
 * the broker no longer trusts its memory, nor do we). */
static void *
attach_obj(const struct primd_rep *p)
{
	void *h;

	if ((p->flags & PRIMD_REP_DAMAGED) || p->seg_size <= PRIMD_OBJ_HDR)
		return NULL;
	h = shmat(p->shmid, NULL, SHM_RDONLY);
	return h == (void *)-1 ? NULL : h;
}

static const char *
uname_of(uint32_t uid, char *buf, size_t n)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		return pw->pw_name;
	snprintf(buf, n, "%u", uid);
	return buf;
}

static void
json_perm(const struct perm *p)
{
	printf("\"key\":%d,\"id\":%d,\"uid\":%u,\"gid\":%u,\"cuid\":%u,"
	       "\"cgid\":%u,\"perms\":\"%03o\"",
	       p->key, p->id, p->uid, p->gid, p->cuid, p->cgid, p->mode);
}

static void
json_array(const char *name, const int *v, int n)
{
	printf(",\"%s\":[", name);
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", v[i]);
	printf("]");
}

/* A row for an object whose memory we do not read: damaged, or not
 * readable by us. */
static void
show_bare(const struct primd_rep *rp, const struct perm *p, int type,
	  int json, int *first)
{
	const char *state = (rp->flags & PRIMD_REP_DAMAGED) ? "damaged"
							    : "unreadable";
	char ub[16];

	if (json) {
		printf("%s{", *first ? "" : ",");
		json_perm(p);
		if (type == PRIMD_SEM)
			printf(",\"nsems\":%u", rp->nsems);
		printf(",\"state\":\"%s\"}", state);
	} else if (type == PRIMD_SEM) {
		printf("0x%08x %-10d %-10.10s %-10o %-10u %-10s\n",
		       (unsigned)p->key, p->id, uname_of(p->uid, ub, sizeof(ub)),
		       p->mode, rp->nsems, state);
	} else {
		printf("0x%08x %-10d %-10.10s %-10o %-12s\n", (unsigned)p->key,
		       p->id, uname_of(p->uid, ub, sizeof(ub)), p->mode, state);
	}
	*first = 0;
}

/* One semaphore set: a table row or a JSON object. */
static void
show_sem(void *h, size_t len, const struct perm *p, int json, int *first)
{
	struct prim_semset *set;
	int n, *val, *pid, *ncnt, *zcnt, waiters = 0;
	int64_t otime = 0, ctime = 0;
	char ub[16];

	if (prim_semset_open((char *)h + PRIMD_OBJ_HDR, len, &set) != 0)
		return;
	n = prim_semset_nsems(set);
	val = n > 0 && n <= 65536 ? calloc((size_t)n * 4, sizeof(int)) : NULL;
	if (val == NULL) {
		prim_semset_close(set);
		return;
	}
	pid = val + n;
	ncnt = pid + n;
	zcnt = ncnt + n;
	for (int i = 0; i < n; i++) {
		val[i] = prim_sem_getval(set, i);
		pid[i] = prim_sem_getpid(set, i);
		ncnt[i] = prim_sem_getncnt(set, i);
		zcnt[i] = prim_sem_getzcnt(set, i);
		waiters +=
		    (ncnt[i] > 0 ? ncnt[i] : 0) + (zcnt[i] > 0 ? zcnt[i] : 0);
	}
	prim_semset_times(set, &otime, &ctime);
	if (json) {
		printf("%s{", *first ? "" : ",");
		json_perm(p);
		printf(",\"nsems\":%d,\"state\":\"live\",\"waiters\":%d,"
		       "\"otime\":%lld,\"ctime\":%lld",
		       n, waiters, (long long)otime, (long long)ctime);
		json_array("values", val, n);
		json_array("pids", pid, n);
		json_array("ncnt", ncnt, n);
		json_array("zcnt", zcnt, n);
		printf("}");
	} else {
		printf("0x%08x %-10d %-10.10s %-10o %-10d %-10d %-10d\n",
		       (unsigned)p->key, p->id, uname_of(p->uid, ub, sizeof(ub)),
		       p->mode, n, waiters, pid[0]);
	}
	*first = 0;
	free(val);
	prim_semset_close(set);
}

static void
show_msg(void *h, size_t len, const struct perm *p, int json, int *first)
{
	struct prim_msgq *q;
	struct prim_msgq_stat st;
	char ub[16];

	if (prim_msgq_open((char *)h + PRIMD_OBJ_HDR, len, &q) != 0)
		return;
	if (prim_msgq_stat(q, &st) != 0) {
		prim_msgq_close(q);
		return;
	}
	prim_msgq_close(q);
	if (json) {
		printf("%s{", *first ? "" : ",");
		json_perm(p);
		printf(",\"state\":\"live\",\"used_bytes\":%llu,"
		       "\"messages\":%llu,"
		       "\"qbytes\":%llu,\"lspid\":%d,\"lrpid\":%d,"
		       "\"stime\":%lld,\"rtime\":%lld,\"ctime\":%lld}",
		       (unsigned long long)st.cbytes,
		       (unsigned long long)st.qnum,
		       (unsigned long long)st.qbytes, (int)st.lspid,
		       (int)st.lrpid, (long long)st.stime, (long long)st.rtime,
		       (long long)st.ctime);
	} else {
		printf("0x%08x %-10d %-10.10s %-10o %-12llu %-12llu "
		       "%-10d %-10d\n",
		       (unsigned)p->key, p->id, uname_of(p->uid, ub, sizeof(ub)),
		       p->mode, (unsigned long long)st.cbytes,
		       (unsigned long long)st.qnum, (int)st.lspid,
		       (int)st.lrpid);
	}
	*first = 0;
}

/* Walk every object of type through PRIMD_LIST. */
static int
list_type(int fd, int type, int json)
{
	struct primd_req q;
	struct primd_rep p;
	int idx = 0, first = 1, r;

	for (;;) {
		struct perm pm;
		void *h;

		req_init(&q, PRIMD_LIST, type);
		q.id = idx;
		r = call(fd, &q, &p);
		if (r == ENOENT)
			return 0;
		if (r != 0) {
			fprintf(stderr, "%s: list: %s\n", prog,
				strerror(r < 0 ? errno : r));
			return -1;
		}
		idx = (p.id & 32767) + 1;
		if (read_perm(type, p.id, &pm) != 0)
			continue; /* removed meanwhile */
		if ((h = attach_obj(&p)) == NULL) {
			show_bare(&p, &pm, type, json, &first);
			continue;
		}
		if (type == PRIMD_SEM)
			show_sem(h, p.seg_size - PRIMD_OBJ_HDR, &pm, json,
				 &first);
		else
			show_msg(h, p.seg_size - PRIMD_OBJ_HDR, &pm, json,
				 &first);
		shmdt(h);
	}
}

static int
cmd_ipcs(int argc, char **argv)
{
	int json = 0, fd, r = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if ((strcmp(argv[i], "-s") == 0 ||
			  strcmp(argv[i], "--sock") == 0) &&
			 i + 1 < argc)
			sock = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if ((fd = open_broker()) < 0)
		return 1;
	map_registry(fd);
	if (json) {
		printf("{\"semaphores\":[");
		r |= list_type(fd, PRIMD_SEM, 1);
		printf("],\"queues\":[");
		r |= list_type(fd, PRIMD_MSG, 1);
		printf("]}\n");
	} else {
		printf("\n------ Message Queues --------\n");
		printf("%-10s %-10s %-10s %-10s %-12s %-12s %-10s %-10s\n",
		       "key", "msqid", "owner", "perms", "used-bytes",
		       "messages", "lspid", "lrpid");
		r |= list_type(fd, PRIMD_MSG, 0);
		printf("\n------ Semaphore Arrays --------\n");
		printf("%-10s %-10s %-10s %-10s %-10s %-10s %-10s\n", "key",
		       "semid", "owner", "perms", "nsems", "waiters", "sempid");
		r |= list_type(fd, PRIMD_SEM, 0);
		printf("\n");
	}
	close(fd);
	return r ? 1 : 0;
}

/* ------------------------------------------------------------------
 * ipcrm
 */

static int
parse_int(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || *v < min || *v > max)
		return -1;
	return 0;
}

static int
rm_id(int fd, int type, int id, int quiet_eperm)
{
	struct primd_req q;
	struct primd_rep p;
	int r;

	req_init(&q, PRIMD_RMID, type);
	q.id = id;
	r = call(fd, &q, &p);
	if (r == 0 || (r == EPERM && quiet_eperm))
		return 0;
	if (r == EINVAL)
		fprintf(stderr, "%s: invalid id (%d)\n", prog, id);
	else if (r == EPERM)
		fprintf(stderr, "%s: permission denied for id (%d)\n", prog,
			id);
	else
		fprintf(stderr, "%s: id %d: %s\n", prog, id,
			strerror(r < 0 ? errno : r));
	return -1;
}

static int
rm_key(int fd, int type, int32_t key)
{
	struct primd_req q;
	struct primd_rep p;
	int r;

	req_init(&q, PRIMD_GET, type);
	q.key = key;
	r = call(fd, &q, &p);
	if (r == ENOENT) {
		fprintf(stderr, "%s: key (0x%x) not found\n", prog,
			(unsigned)key);
		return -1;
	}
	if (r != 0) {
		fprintf(stderr, "%s: key 0x%x: %s\n", prog, (unsigned)key,
			strerror(r < 0 ? errno : r));
		return -1;
	}
	return rm_id(fd, type, p.id, 0);
}

static int
rm_all(int fd, int type)
{
	struct primd_req q;
	struct primd_rep p;
	int idx = 0, r, bad = 0;

	for (;;) {
		req_init(&q, PRIMD_LIST, type);
		q.id = idx;
		r = call(fd, &q, &p);
		if (r == ENOENT)
			return bad;
		if (r != 0)
			return -1;
		idx = (p.id & 32767) + 1;
		if (rm_id(fd, type, p.id, 1) != 0)
			bad = -1;
	}
}

static int
cmd_ipcrm(int argc, char **argv)
{
	int fd = -1, bad = 0, did = 0;

	/* First pass: the socket, and a syntax check. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--sock") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else if ((strcmp(a, "-s") == 0 || strcmp(a, "-q") == 0 ||
			    strcmp(a, "-S") == 0 || strcmp(a, "-Q") == 0) &&
			   i + 1 < argc) {
			i++;
			did = 1;
		} else if (strcmp(a, "--all") == 0 || strcmp(a, "-a") == 0 ||
			   strcmp(a, "--all=sem") == 0 ||
			   strcmp(a, "--all=msg") == 0) {
			did = 1;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!did) {
		fprintf(stderr,
			"%s: ipcrm: nothing to remove (give -s, -q, "
			"-S, -Q or --all)\n",
			prog);
		usage(stderr);
		return 2;
	}
	if ((fd = open_broker()) < 0)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;

		if (strcmp(a, "--sock") == 0) {
			i++;
		} else if (a[0] == '-' && (a[1] == 's' || a[1] == 'q') &&
			   a[2] == '\0') {
			int type = a[1] == 's' ? PRIMD_SEM : PRIMD_MSG;

			if (parse_int(argv[++i], 0, INT_MAX, &v) != 0) {
				fprintf(stderr, "%s: invalid id: %s\n", prog,
					argv[i]);
				bad = 1;
			} else if (rm_id(fd, type, (int)v, 0) != 0)
				bad = 1;
		} else if (a[0] == '-' && (a[1] == 'S' || a[1] == 'Q') &&
			   a[2] == '\0') {
			int type = a[1] == 'S' ? PRIMD_SEM : PRIMD_MSG;

			if (parse_int(argv[++i], INT_MIN, UINT_MAX, &v) != 0 ||
			    v == 0) {
				fprintf(stderr, "%s: invalid key: %s\n", prog,
					argv[i]);
				bad = 1;
			} else if (rm_key(fd, type, (int32_t)(uint32_t)v) != 0)
				bad = 1;
		} else {
			if (strcmp(a, "--all=msg") != 0 &&
			    rm_all(fd, PRIMD_SEM) != 0)
				bad = 1;
			if (strcmp(a, "--all=sem") != 0 &&
			    rm_all(fd, PRIMD_MSG) != 0)
				bad = 1;
		}
	}
	close(fd);
	return bad;
}

/* ------------------------------------------------------------------
 * status
 */

static int
cmd_status(int argc, char **argv)
{
	struct primd_req q;
	struct primd_rep p;
	unsigned buid;
	int fd, bpid;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-s") == 0 ||
		     strcmp(argv[i], "--sock") == 0) &&
		    i + 1 < argc)
			sock = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (resolve_sock() != 0)
		return 1;
	printf("socket: %s\n", sock);
	fd = bconnect(sock);
	if (fd == -EPERM) {
		printf("broker: refused: %s\n", why);
		return 1;
	}
	if (fd < 0) {
		printf("broker: not running (%s)\n", strerror(-fd));
		return 1;
	}
	req_init(&q, PRIMD_HELLO, 0);
	if (call(fd, &q, &p) != 0) {
		printf("broker: not answering\n");
		close(fd);
		return 1;
	}
	peer(fd, &bpid, &buid);
	printf("broker: running (pid %d, uid %u)\n", bpid, buid);
	printf("semaphore sets: %u (%u semaphores), queues: %u "
	       "(%llu messages, %llu bytes)\n",
	       p.info.sem_sets, p.info.sem_sems, p.info.msg_queues,
	       (unsigned long long)p.info.msg_msgs,
	       (unsigned long long)p.info.msg_bytes);
	printf("limits: semmsl %u semmns %u semopm %u semmni %u msgmax %u "
	       "msgmnb %u msgmni %u\n",
	       p.info.semmsl, p.info.semmns, p.info.semopm, p.info.semmni,
	       p.info.msgmax, p.info.msgmnb, p.info.msgmni);
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	int i = 1;

	sigprocmask(SIG_BLOCK, NULL, &old_mask);
	sigaction(SIGPIPE, NULL, &old_pipe);
	sigaction(SIGCHLD, NULL, &old_chld);
	signal(SIGPIPE, SIG_IGN);
	if (i + 1 < argc && strcmp(argv[i], "--sock") == 0) {
		sock = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(argv[0], "ipcs") == 0)
		return cmd_ipcs(argc, argv);
	if (strcmp(argv[0], "ipcrm") == 0)
		return cmd_ipcrm(argc, argv);
	if (strcmp(argv[0], "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
