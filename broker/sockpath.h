/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Finding the broker safely (broker/sockpath.c), shared by libsysv, primctl
 * and primd. A socket is used only in a directory that root or the caller
 * (its effective uid) owns and that nobody else may write, and a broker is
 * talked to only when its SO_PEERCRED uid is 0 or the caller's: otherwise
 * anyone who can create /tmp/prim-<uid> first could read another user's
 * messages (doc/design.md, "Finding the broker").
 *
 * Concurrency: no state; safe from any number of threads at once. Not
 * async-signal-safe (snprintf, realpath). None allocates memory.
 *
 * Every function that can refuse writes why into why[n] (when why is not
 * NULL): one line naming the path and the reason, for primctl to print;
 * libsysv never prints it.
 */
#ifndef PRIMD_SOCKPATH_H
#define PRIMD_SOCKPATH_H

#include <stddef.h>

/*
 * Resolve the socket path into buf (size n): $PRIM_BROKER_SOCK if set;
 * else the system socket /run/prim/primd-ipc-<ns>.sock if it exists (or,
 * with for_server, whenever the caller is root); else the user's own,
 * $XDG_RUNTIME_DIR/prim/primd-ipc-<ns>.sock or
 * /tmp/prim-<euid>/primd-ipc-<ns>.sock. Returns 0 or -errno. This only
 * names the path; primd__connect judges it.
 */
int primd__sock_path(char *buf, unsigned long n, int for_server);

/* The system socket of this IPC namespace, whether it exists or not. */
int primd__sock_system(char *buf, unsigned long n);

/* The user's own socket of this IPC namespace (see primd__sock_path). */
int primd__sock_user(char *buf, unsigned long n);

/*
 * May a socket live in the directory dir? It must be a real directory
 * (lstat: not a symbolic link), owned by root or the effective uid, with
 * the group and other write bits clear (sticky or not), and each of its
 * ancestors (symbolic links resolved) owned by root or the effective uid
 * and, if writable by its group or others, sticky: otherwise someone else
 * could rename it and put theirs in its place.
 * Returns 0; -EPERM when it is refused (why says why); -ENOENT when it
 * does not exist; another -errno when it cannot be examined.
 */
int primd__dir_check(const char *dir, char *why, size_t n);

/*
 * Connect to the broker on path: primd__dir_check of its directory, then
 * the path must be a socket (lstat), then connect (SOCK_SEQPACKET,
 * SOCK_CLOEXEC), waiting at most wait_ms (0: once) while the broker's
 * listen backlog is full, then the peer's SO_PEERCRED uid must be 0 or
 * the caller's effective uid. The descriptor is left blocking. Returns
 * the connected descriptor, or:
 *   -EPERM          refused (an unsafe directory, not a socket, a broker
 *                   of another uid): waiting will not help;
 *   -EACCES         the caller may not reach or connect to it;
 *   -ENOENT, -ECONNREFUSED   no broker listens there (yet);
 *   -ETIMEDOUT      its backlog stayed full for wait_ms;
 *   another -errno.
 * why is filled on every failure.
 */
int primd__connect(const char *path, char *why, size_t n, long wait_ms);

#endif
