#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# A slow broker (SIGSTOP) must neither make a request happen twice nor hang
# its clients. In a private IPC namespace with a private broker:
#
#   1. uid 65534, which may write a queue and a set (mode 0622) but not
#      read them, so the broker does its msgsnd and semop, calls while the
#      broker is stopped longer than PRIM_BROKER_WAIT: the call fails with
#      ENOSYS, and is done at most once when the broker wakes (a request
#      resent after the deadline was done twice).
#   2. In a private network namespace (net.core.somaxconn is per network
#      namespace) with somaxconn 2, six clients call msgget while the
#      broker is stopped: its listen backlog fills, and those past it
#      blocked in connect() forever. Each must fail with ENOSYS within
#      about PRIM_BROKER_WAIT.
#
# With the broker running: a semget whose set cannot be mapped (RLIMIT_AS)
# succeeds with errno untouched, and a fork child whose parent had a
# thread waiting in semop detaches the set when it removes it (the
# thread's reference, of a thread the child does not have, kept it).
#
# Needs root (to become nobody, to unshare a network namespace); skips
# what it cannot do.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
W=${PRIMD_WRAPPER:-}
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
CC=${CC:-cc}

fail() { echo "check_slowbroker: FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

# Every part runs, or the check fails: a skipped part would hide a
# failure in CI (make check runs as root, in namespaces of its own).
[ "$(id -u)" -eq 0 ] || fail "needs root to be uid 65534 and to set somaxconn (uid $(id -u))"
case "${IPCNS:-}" in
'') fail "cannot unshare an IPC namespace (IPCNS is empty)" ;;
*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace where uid 65534 is not mapped" ;;
esac

mode=all
if [ "${1:-}" = --backlog ]; then
	mode=backlog
elif [ "${PRIM_SLOW_INNER:-}" != 1 ]; then
	PRIM_SLOW_INNER=1 exec $IPCNS sh "$0" "$@"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/check_slowbroker.XXXXXX")
chmod 0755 "$dir"
bpid=
cleanup() {
	if [ -n "$bpid" ]; then
		kill -CONT "$bpid" 2>/dev/null || :
		kill "$bpid" 2>/dev/null || :
		wait "$bpid" 2>/dev/null || :
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cat > "$dir/slowt.c" <<'CEOF'
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct mbuf { long t; char x[8]; };

static void *waiter(void *p) {
	struct sembuf down = {0, -1, 0};

	semop(*(int *)p, &down, 1); /* until the set is removed */
	return NULL;
}

/* Shared memory segments attached (the registry's included). */
static int sysv_maps(void) {
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, "/SYSV") != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

static long ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
	key_t kq = 0x51500001, ks = 0x51500002;
	int q, s;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "make") == 0) {
		q = msgget(kq, IPC_CREAT | 0622);
		s = semget(ks, 1, IPC_CREAT | 0622);
		return q < 0 || s < 0;
	}
	if (strcmp(argv[1], "count") == 0) {
		struct msqid_ds md;
		q = msgget(kq, 0);
		s = semget(ks, 1, 0);
		if (q < 0 || s < 0 || msgctl(q, IPC_STAT, &md) != 0)
			return 1;
		printf("%lu %d\n", (unsigned long)md.msg_qnum, semctl(s, 0, GETVAL));
		return 0;
	}
	if (strcmp(argv[1], "writer") == 0 && argc == 3) {
		/*
		 * Each call of a write-only caller is a lookup (which may be
		 * sent again) and then the operation: call, as fast as it
		 * goes, so that the broker stops as often between the two as
		 * before the lookup, until one fails, which is one whose
		 * operation met a stopped broker. At most 10000: the
		 * queue never fills (msgmnb 16384), nor the value (32767).
		 */
		struct mbuf m = {1, "x"};
		struct sembuf up = {0, 1, 0};
		long n = 0, t0 = ms();
		int r = 0;

		q = msgget(kq, 0);
		s = semget(ks, 1, 0);
		if (q < 0 || s < 0) { perror("get"); return 1; }
		while (ms() - t0 < 20000 && n < 10000) {
			errno = 0;
			r = strcmp(argv[2], "msg") == 0 ? msgsnd(q, &m, 1, 0)
			    : semop(s, &up, 1);
			if (r != 0)
				break;
			n++;
		}
		printf("%ld %s\n", n, r == 0 ? "none" : strerror(errno));
		return 0;
	}
	if (strcmp(argv[1], "errno") == 0) {
		/*
		 * No address space left for the segment of a new set: semget
		 * still succeeds (its first use maps it), and must leave
		 * errno alone, whatever the failed shmat set.
		 */
		struct rlimit rl;
		char line[256];
		long kb = -1;
		FILE *f;
		int e;

		if (semget(IPC_PRIVATE, 1, 0600) < 0) { perror("semget"); return 1; }
		if ((f = fopen("/proc/self/status", "r")) == NULL) return 1;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmSize: %ld", &kb) == 1)
				break;
		fclose(f);
		rl.rlim_cur = rl.rlim_max = (rlim_t)kb * 1024;
		if (kb < 0 || setrlimit(RLIMIT_AS, &rl) != 0) return 1;
		errno = 0;
		s = semget(IPC_PRIVATE, 1, 0600);
		e = errno;
		printf("%s %d\n", s < 0 ? "-1" : "id", e);
		return 0;
	}
	if (strcmp(argv[1], "fork") == 0) {
		/*
		 * A thread waits in semop, holding the cache's reference on
		 * the set, when the process forks. The child removes the
		 * set: the thread is not there, so its reference must not
		 * keep the segment attached in the child.
		 */
		pthread_t th;
		struct timespec pause = {0, 200000000};
		int before, after, st;
		pid_t pid;

		if ((s = semget(IPC_PRIVATE, 1, 0600)) < 0) { perror("semget"); return 1; }
		pthread_create(&th, NULL, waiter, &s);
		nanosleep(&pause, NULL);
		if ((pid = fork()) == 0) {
			before = sysv_maps();
			if (semctl(s, 0, IPC_RMID) != 0) _exit(2);
			after = sysv_maps();
			printf("%d %d\n", before, after);
			fflush(stdout);
			_exit(before > after ? 0 : 1);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid) return 1;
		semctl(s, 0, IPC_RMID); /* the parent's copy of the removal */
		pthread_join(th, NULL);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (strcmp(argv[1], "get") == 0) {
		long t0 = ms();
		int e;

		errno = 0;
		q = msgget(kq, 0);
		e = errno;
		printf("%d %s %ld\n", q, q < 0 ? strerror(e) : "0", ms() - t0);
		return 0;
	}
	return 2;
}
CEOF
$CC -O2 -Wall -o "$dir/slowt" "$dir/slowt.c" -lpthread || fail "cannot compile"
chmod 0755 "$dir/slowt"

start_broker() {
	$W "$B/primd" -s "$dir/sock" --foreground 2>"$dir/primd.log" &
	bpid=$!
	i=0
	while [ ! -S "$dir/sock" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "broker did not start: $(cat "$dir/primd.log")"
		sleep 0.05
	done
	chmod 0666 "$dir/sock"
}
stop_broker() {
	kill "$bpid" 2>/dev/null || :
	wait "$bpid" 2>/dev/null || :
	bpid=
	rm -f "$dir/sock"
}

export PRIM_BROKER_SOCK="$dir/sock"
# libsysv (and a sanitizer's runtime) only in the test program, not in the
# tools around it (mktemp, sleep, setpriv: under make check-asan their own
# leaks would be reported).
SLOWT="env LD_PRELOAD=$B/libsysv.so$POST $dir/slowt"

# 1. A proxied msgsnd or semop is never sent twice.
t=
if [ "$mode" != all ]; then
	:
elif command -v setpriv >/dev/null 2>&1 && $NOBODY test -x "$dir/slowt"; then
	start_broker
	$SLOWT make || fail "cannot make the queue and the set"
	for what in msg sem; do
		PRIM_BROKER_WAIT=1000 timeout 60 $NOBODY $SLOWT writer $what \
			>"$dir/$what.out" &
		wpid=$!
		for i in 1 2 3 4 5 6 7 8 9 10; do
			sleep 0.1
			[ ! -s "$dir/$what.out" ] || break
			kill -STOP "$bpid"
			sleep 1.5
			kill -CONT "$bpid"
		done
		wait "$wpid" || fail "$what writer failed: $(cat "$dir/$what.out")"
		set -- $(cat "$dir/$what.out")
		[ "$2 $3 $4" = "Function not implemented" ] ||
			fail "$what: '$(cat "$dir/$what.out")', expected ENOSYS once the broker was stopped"
		eval "n_$what=$1"
	done
	sleep 0.3
	n=$(PRIM_BROKER_WAIT=5000 $SLOWT count) || fail "cannot count"
	set -- $n
	# What succeeded, and at most once the one that failed.
	[ "$1" -ge "$n_msg" ] && [ "$1" -le $((n_msg + 1)) ] ||
		fail "$n_msg msgsnd done, one failed, the queue has $1"
	[ "$2" -ge "$n_sem" ] && [ "$2" -le $((n_sem + 1)) ] ||
		fail "$n_sem semop done, one failed, the value is $2"
	ok "a proxied msgsnd, semop past PRIM_BROKER_WAIT: ENOSYS, done at most once ($(($1 - n_msg)), $(($2 - n_sem)))"
	stop_broker
else
	fail "part 1: cannot become uid 65534 (setpriv) or run $dir/slowt as it"
fi

# A semget whose eager mapping fails still succeeds, errno untouched.
if [ "$mode" = all ]; then
	start_broker
	if [ -n "${PRIM_TEST_PRELOAD:-}" ]; then
		# make check-asan, check-tsan: the sanitizer's runtime maps
		# memory of its own at any time, and dies when RLIMIT_AS
		# refuses it. make check runs this case.
		echo "check_slowbroker: semget with no address space left:" \
			"not under a sanitizer (make check runs it)"
	else
		out=$(PRIM_BROKER_WAIT=5000 $SLOWT errno) ||
			fail "errno: $out"
		[ "$out" = "id 0" ] ||
			fail "semget with no address space left: '$out', expected 'id 0'"
		ok "semget whose segment cannot be mapped: success, errno kept"
	fi
	out=$(PRIM_BROKER_WAIT=5000 timeout 30 $SLOWT fork) ||
		fail "fork: the child kept a removed set attached ('$out': attached before, after)"
	ok "fork while a thread waits: the child detaches the set it removes ($out)"
	stop_broker
fi

# 2. connect() to a full backlog gives up within PRIM_BROKER_WAIT: in a
# network namespace of its own (somaxconn is per network namespace, and
# the broker's listen() is bounded by it).
if [ "$mode" = all ]; then
	if unshare -n true 2>/dev/null; then
		unshare -n sh "$0" --backlog || exit 1
	else
		fail "part 2: cannot unshare a network namespace"
	fi
	echo "check_slowbroker: all passed"
	exit 0
fi
sysctl -q -w net.core.somaxconn=2 2>/dev/null ||
	fail "part 2: cannot set net.core.somaxconn in its network namespace"
start_broker
kill -STOP "$bpid"
pids=
for i in 1 2 3 4 5 6; do
	PRIM_BROKER_WAIT=500 timeout 20 $SLOWT get >"$dir/get.$i" &
	pids="$pids $!"
	sleep 0.05
done
i=0
for p in $pids; do
	i=$((i + 1))
	wait "$p" || fail "client $i: exit $? (hung in connect?): $(cat "$dir/get.$i")"
	set -- $(cat "$dir/get.$i")
	[ "$1" = -1 ] && [ "$2 $3 $4" = "Function not implemented" ] ||
		fail "client $i: '$(cat "$dir/get.$i")', expected -1 ENOSYS"
	[ "$5" -lt 3000 ] || fail "client $i waited $5 ms (PRIM_BROKER_WAIT=500)"
	t="$t $5"
done
kill -CONT "$bpid"
ok "six clients, a stopped broker, backlog 2: ENOSYS after$t ms"
stop_broker
