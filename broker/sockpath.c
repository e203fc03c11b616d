/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where the broker of this IPC namespace listens, and whether a client may
 * trust what listens there (sockpath.h). Shared by libsysv, primd and
 * primctl, so that the library, the launcher and the broker apply one rule.
 *
 * The rule exists because the default per-user path, /tmp/prim-<uid>, can
 * be created by anyone first: without it, a user who plants the directory
 * and runs a broker in it gets every request, and every message, of the
 * victim's programs. A planted directory is refused (it is not the
 * victim's), a directory others may write is refused (they could replace
 * the socket), and a broker that is neither root nor the caller is refused
 * even in a good directory (a socket passed on, a race lost).
 *
 * Concurrency: no state; every function is safe from any number of threads
 * at once. No allocation; not async-signal-safe (snprintf, realpath).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockpath.h"

#define SUN_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

static int
ns_inode(unsigned long long *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/ipc", &st) != 0)
		return -errno;
	*ino = (unsigned long long)st.st_ino;
	return 0;
}

/* snprintf into buf, -ENAMETOOLONG when it does not fit. */
static int
fmt(char *buf, unsigned long n, const char *f, ...)
{
	va_list ap;
	int r;

	va_start(ap, f);
	r = vsnprintf(buf, n, f, ap);
	va_end(ap);
	return r < 0 || (unsigned long)r >= n ? -ENAMETOOLONG : 0;
}

int
primd__sock_system(char *buf, unsigned long n)
{
	unsigned long long ino = 0;
	int r;

	if ((r = ns_inode(&ino)) != 0)
		return r;
	return fmt(buf, n, "/run/prim/primd-ipc-%llu.sock", ino);
}

int
primd__sock_user(char *buf, unsigned long n)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned long long ino = 0;
	int r;

	if ((r = ns_inode(&ino)) != 0)
		return r;
	if (xdg != NULL && xdg[0] == '/')
		return fmt(buf, n, "%s/prim/primd-ipc-%llu.sock", xdg, ino);
	return fmt(buf, n, "/tmp/prim-%u/primd-ipc-%llu.sock",
		   (unsigned)geteuid(), ino);
}

int
primd__sock_path(char *buf, unsigned long n, int for_server)
{
	const char *env = getenv("PRIM_BROKER_SOCK");
	struct stat st;
	int r;

	if (env != NULL && env[0] != '\0')
		return fmt(buf, n, "%s", env);
	if ((r = primd__sock_system(buf, n)) != 0)
		return r;
	if (for_server ? geteuid() == 0 : stat(buf, &st) == 0)
		return 0;
	return primd__sock_user(buf, n);
}

/* Say why into why[n] (if wanted) and return err. */
static int
say(int err, char *why, size_t n, const char *f, ...)
{
	va_list ap;

	if (why != NULL && n > 0) {
		va_start(ap, f);
		vsnprintf(why, n, f, ap);
		va_end(ap);
	}
	return err;
}

/* Is this owner one a client may trust: root or itself? */
static int
trusted_uid(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/*
 * The checks of primd__dir_check; the directory's canonical path (every
 * symbolic link of its ancestors resolved) goes to real[PATH_MAX].
 */
static int
dir_check(const char *dir, char *real, char *why, size_t n)
{
	struct stat st, rst;

	if (lstat(dir, &st) != 0) {
		int e = errno;

		return say(-e, why, n, "%s: %s", dir, strerror(e));
	}
	if (S_ISLNK(st.st_mode))
		return say(-EPERM, why, n,
			   "%s is a symbolic link, not a directory", dir);
	if (!S_ISDIR(st.st_mode))
		return say(-EPERM, why, n, "%s is not a directory", dir);
	if (!trusted_uid(st.st_uid))
		return say(-EPERM, why, n,
			   "%s belongs to uid %u, neither root nor you "
			   "(uid %u)",
			   dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return say(-EPERM, why, n,
			   "%s is writable by its group or others (mode %04o)",
			   dir, (unsigned)(st.st_mode & 07777));
	if (realpath(dir, real) == NULL) {
		int e = errno;

		return say(-e, why, n, "%s: %s", dir, strerror(e));
	}
	/* The same directory, not one swapped in between the two looks. */
	if (stat(real, &rst) != 0 || rst.st_dev != st.st_dev ||
	    rst.st_ino != st.st_ino)
		return say(-EPERM, why, n, "%s changed while it was checked",
			   dir);
	/* Each ancestor of the canonical path, from the root down: a "/"
	 * at i > 0 ends the ancestor real[0, i), the one at 0 is "/". */
	for (size_t i = 0; real[i] != '\0'; i++) {
		const char *anc = "/";
		char c = real[i];
		int r;

		if (c != '/' || (i == 0 && real[1] == '\0'))
			continue;
		if (i > 0) {
			real[i] = '\0';
			anc = real;
		}
		r = stat(anc, &st) != 0 ? -errno : 0;
		if (r == 0 && (!trusted_uid(st.st_uid) ||
			       ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
				!(st.st_mode & S_ISVTX))))
			r = say(-EPERM, why, n,
				"%s is inside %s, which %s could replace", dir,
				anc,
				trusted_uid(st.st_uid) ? "its group or others"
						       : "another user");
		else if (r != 0)
			say(r, why, n, "%s: %s: %s", dir, anc, strerror(-r));
		real[i] = c;
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * The effective uid of the process that made the other end of a connected
 * Unix socket, as the kernel recorded it: SO_PEERCRED on Linux,
 * getpeereid elsewhere.
 */
static int
peer_uid(int fd, uid_t *uid)
{
#ifdef SO_PEERCRED
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return -errno;
	if (len != sizeof(uc))
		return -EPROTO;
	*uid = uc.uid;
	return 0;
#else
	gid_t gid;

	return getpeereid(fd, uid, &gid) == 0 ? 0 : -errno;
#endif
}

int
primd__dir_check(const char *dir, char *why, size_t n)
{
	char real[PATH_MAX];

	return dir_check(dir, real, why, n);
}

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * connect() on a non-blocking fd, waiting at most wait_ms: a blocking one
 * waits forever once the listen backlog is full (a broker stopped, or
 * overwhelmed), with libsysv's mutex held. A Unix socket whose backlog is
 * full says EAGAIN at once rather than EINPROGRESS: try again after a
 * sleep of 1 ms doubling to 50 ms. EINPROGRESS (elsewhere) is waited for
 * with poll. 0 or -errno, -ETIMEDOUT past the wait.
 */
static int
connect_within(int fd, const struct sockaddr_un *sa, long wait_ms)
{
	long deadline = mono_ms() + wait_ms, pause = 1, left;

	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((left = deadline - mono_ms()) <= 0)
			return -ETIMEDOUT;
		if (pause > left)
			pause = left;
		struct timespec ts = {pause / 1000, (pause % 1000) * 1000000};
		nanosleep(&ts, NULL);
		if (pause < 50)
			pause *= 2;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int e = 0, k;
		socklen_t len = sizeof(e);

		if ((left = deadline - mono_ms()) <= 0)
			return -ETIMEDOUT;
		k = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (k < 0 && errno != EINTR)
			return -errno;
		if (k <= 0)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			return -errno;
		return -e;
	}
}

/* Back to blocking: what the callers of primd__connect expect. */
static int
set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		return -errno;
	return 0;
}

int
primd__connect(const char *path, char *why, size_t n, long wait_ms)
{
	char dir[SUN_MAX], real[PATH_MAX];
	struct sockaddr_un sa;
	uid_t uid = (uid_t)-1;
	const char *base, *slash = strrchr(path, '/');
	struct stat st;
	int fd, r;

	if (slash == NULL) {
		strcpy(dir, ".");
		base = path;
	} else {
		size_t dl = slash == path ? 1 : (size_t)(slash - path);

		if (dl >= sizeof(dir))
			return say(-ENAMETOOLONG, why, n, "%s: %s", path,
				   strerror(ENAMETOOLONG));
		memcpy(dir, path, dl);
		dir[dl] = '\0';
		base = slash + 1;
	}
	if (*base == '\0')
		return say(-EINVAL, why, n, "%s: not a socket name", path);
	if ((r = dir_check(dir, real, why, n)) != 0)
		return r;
	/* Use the checked directory, not a path that may resolve anew. */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (fmt(sa.sun_path, SUN_MAX, "%s%s%s", real,
		strcmp(real, "/") == 0 ? "" : "/", base) != 0 &&
	    fmt(sa.sun_path, SUN_MAX, "%s", path) != 0)
		return say(-ENAMETOOLONG, why, n, "%s: %s", path,
			   strerror(ENAMETOOLONG));
	if (lstat(sa.sun_path, &st) != 0) {
		int e = errno;

		return say(-e, why, n, "%s: %s", path,
			   e == ENOENT ? "no broker listens there"
				       : strerror(e));
	}
	if (!S_ISSOCK(st.st_mode))
		return say(-EPERM, why, n, "%s is not a socket", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;

		return say(-e, why, n, "socket: %s", strerror(e));
	}
	if ((r = connect_within(fd, &sa, wait_ms)) != 0 ||
	    (r = set_blocking(fd)) != 0) {
		close(fd);
		return say(r, why, n, "%s: %s", path,
			   r == -ECONNREFUSED ? "no broker listens there"
			   : r == -ETIMEDOUT  ? "the broker accepts no connection"
					      : strerror(-r));
	}
	if ((r = peer_uid(fd, &uid)) != 0) {
		close(fd);
		return say(-EPERM, why, n,
			   "%s: the broker's credentials cannot be read: %s",
			   path, strerror(-r));
	}
	if (!trusted_uid(uid)) {
		close(fd);
		return say(-EPERM, why, n,
			   "the broker on %s runs as uid %u, neither root "
			   "nor you (uid %u)",
			   path, (unsigned)uid, (unsigned)geteuid());
	}
	return fd;
}
