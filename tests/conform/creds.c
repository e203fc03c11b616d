/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * creds: System V calls made as whoever runs it, for the checks that run
 * programs as several users. It uses only the standard API and plain
 * libc; the checks preload libsysv or not.
 *
 * Modes:
 *   creds try    semget and msgget of IPC_PRIVATE, one line ("try:
 *                semget=id msgget=id", or the errno names), removed
 *                again (tests/check_discovery.sh)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

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

int
main(int argc, char **argv)
{
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
	fprintf(stderr, "usage: creds try\n");
	return 2;
}
