/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The private broker of the bench/sysv_*.c programs: primd from
 * <dir of this program>/../primd on a socket in a fresh mkdtemp directory,
 * PRIM_BROKER_SOCK set before the first call; stop_broker() stops it and
 * removes the directory. The program defines SYSV_BROKER_PROG (its name
 * for messages) before including this, and sysv_broker_die() (removes its
 * objects, stops the broker, exits non-zero).
 */
#ifndef PRIM_SYSV_BROKER_H
#define PRIM_SYSV_BROKER_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void sysv_broker_die(const char *what);

static char dir[80];
static char sockp[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pid_t broker = -1;

static void
stop_broker(void)
{
	if (broker > 0) {
		kill(broker, SIGTERM);
		waitpid(broker, NULL, 0);
		broker = -1;
	}
	if (dir[0] != '\0') {
		/* Our own mkdtemp directory: the socket, the log and whatever
		 * the broker keeps beside its socket (lock, state). */
		DIR *d = opendir(dir);
		struct dirent *e;

		while (d && (e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 &&
			    strcmp(e->d_name, "..") != 0)
				unlinkat(dirfd(d), e->d_name, 0);
		if (d)
			closedir(d);
		rmdir(dir);
		dir[0] = '\0';
	}
}

/* Start primd from <dir of this program>/../primd on a fresh socket. */
static void
start_broker(void)
{
	char self[PATH_MAX], primd[PATH_MAX + 16], log[sizeof(dir) + 16],
	    *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *tmpdir = getenv("TMPDIR");

	if (n <= 0)
		sysv_broker_die("readlink /proc/self/exe");
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		sysv_broker_die("no directory in /proc/self/exe");
	*slash = '\0';
	snprintf(primd, sizeof(primd), "%s/../primd", self);
	if (access(primd, X_OK) != 0) {
		fprintf(stderr,
			"%s: %s is missing: build it first (make "
			"build/primd)\n",
			SYSV_BROKER_PROG, primd);
		exit(1);
	}
	if (!tmpdir || !*tmpdir || strlen(tmpdir) > sizeof(dir) - 32)
		tmpdir = "/tmp"; /* a socket path must stay short */
	snprintf(dir, sizeof(dir), "%s/prim_bench.XXXXXX", tmpdir);
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		sysv_broker_die("mkdtemp");
	}
	snprintf(sockp, sizeof(sockp), "%s/sock", dir);
	snprintf(log, sizeof(log), "%s/primd.log", dir);
	fflush(stdout);
	broker = fork();
	if (broker < 0)
		sysv_broker_die("fork");
	if (broker == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(primd, "primd", "-s", sockp, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int st;

		memcpy(a.sun_path, sockp, sizeof(a.sun_path));
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			close(fd);
			if (setenv("PRIM_BROKER_SOCK", sockp, 1) != 0)
				sysv_broker_die("setenv");
			return;
		}
		if (fd >= 0)
			close(fd);
		if (waitpid(broker, &st, WNOHANG) == broker) {
			broker = -1;
			fprintf(stderr,
				"%s: primd exited (see below)\n", SYSV_BROKER_PROG);
			{
				char buf[2048];
				int lf = open(log, O_RDONLY);
				ssize_t r;

				while (lf >= 0 &&
				       (r = read(lf, buf, sizeof(buf))) > 0)
					fwrite(buf, 1, (size_t)r, stderr);
				if (lf >= 0)
					close(lf);
			}
			stop_broker();
			exit(1);
		}
		usleep(10000);
	}
	errno = ETIMEDOUT;
	sysv_broker_die("the broker did not answer");
}

#endif
