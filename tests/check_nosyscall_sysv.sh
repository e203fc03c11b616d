#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Through the drop-in, a non-blocking semop or semtimedop and a
# msgsnd/msgrcv on a queue that is neither full nor empty make no system
# call (their arguments are copied without one, see libsysv(7)): the same
# program doing 1000 and 100000 of them (P+V, timed P+V, send+receive)
# must make exactly as many system calls in all (its start-up). In a
# private IPC namespace with a private broker.
set -eu
B=${B:-build}
if [ "${PRIM_NS_INNER:-}" != 1 ]; then
	[ -n "${IPCNS:-}" ] || { echo "check_nosyscall_sysv: no IPC namespace" >&2; exit 1; }
	PRIM_NS_INNER=1 exec $IPCNS sh "$0" "$@"
fi
dir=$(mktemp -d)
# make check-asan: LeakSanitizer cannot work under ptrace (it stops the
# process's threads with ptrace itself), so the traced programs run without.
NOLEAK=${ASAN_OPTIONS:+env ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0}
bpid=
cleanup() { [ -z "$bpid" ] || kill "$bpid" 2>/dev/null || :; rm -rf "$dir"; }
trap cleanup EXIT
cat > "$dir/loop.c" <<'C'
#define _GNU_SOURCE /* semtimedop */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/msg.h>
#include <sys/sem.h>
int
main(int argc, char **argv)
{
	long n = atol(argv[1]);
	int s = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct sembuf p = { 0, -1, 0 }, v = { 0, 1, 0 };
	struct timespec ts = { 5, 0 };
	struct { long t; char x[64]; } m = { 1, "x" };

	if (s < 0 || q < 0 || semop(s, &v, 1) != 0 ||
	    msgsnd(q, &m, sizeof(m.x), 0) != 0)
		return 1;
	for (long i = 0; i < n; i++)
		if (semop(s, &p, 1) != 0 || semop(s, &v, 1) != 0 ||
		    semtimedop(s, &p, 1, &ts) != 0 ||
		    semtimedop(s, &v, 1, &ts) != 0 ||
		    msgsnd(q, &m, sizeof(m.x), 0) != 0 ||
		    msgrcv(q, &m, sizeof(m.x), 0, 0) < 0)
			return 1;
	return semctl(s, 0, IPC_RMID) != 0 || msgctl(q, IPC_RMID, NULL) != 0;
}
C
${CC:-cc} -O2 ${CFLAGS:-} -o "$dir/loop" "$dir/loop.c" -L"$B" -lsysv -Wl,-rpath,"$PWD/$B"
${PRIMD_WRAPPER:-} "$B/primd" -s "$dir/sock" 2>/dev/null &
bpid=$!
for i in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.05; done
export PRIM_BROKER_SOCK="$dir/sock"
# make check-tsan (scripts/sanitize.sh) names in PRIM_SAN_SYSCALLS, an
# extended regular expression, the sanitizer's own system calls: counted
# apart, and shown, not as the loop's.
count() {
	if [ -n "${PRIM_SAN_SYSCALLS:-}" ]; then
		strace -f -qq -o "$dir/t$1" "$dir/loop" "$1" ||
			{ echo "check_nosyscall_sysv: FAIL: the loop failed" >&2; exit 1; }
		grep -E "$PRIM_SAN_SYSCALLS" "$dir/t$1" >"$dir/san$1" || :
		echo "check_nosyscall_sysv: $1 rounds: $(grep -c . "$dir/san$1")" \
			"system calls of the sanitizer's own not counted:" \
			"$(sed 's/^[0-9]* *//; s/ = .*//' "$dir/san$1" | sort | uniq -c |
				tr -s ' ' | tr '\n' ';')" >&2
		grep -vE "$PRIM_SAN_SYSCALLS" "$dir/t$1" | grep -cv '^[0-9]* *[-+][-+][-+] '
		return
	fi
	$NOLEAK strace -f -qq -c -o "$dir/c$1" "$dir/loop" "$1" ||
		{ echo "check_nosyscall_sysv: FAIL: the loop failed" >&2; exit 1; }
	awk '$NF == "total" { print $4 }' "$dir/c$1"
}
small=$(count 1000)
big=$(count 100000)
[ -n "$small" ] && [ -n "$big" ] || { echo "check_nosyscall_sysv: FAIL: no strace count" >&2; exit 1; }
# Under make check-asan and check-tsan the sanitizer's own start-up varies
# by a call or two between runs; a system call per operation would add
# 99000 (one per thousand, 99): a few calls of slack there, none here.
slack=0
[ -z "${PRIM_TEST_PRELOAD:-}" ] || slack=8
if [ "$big" -gt $((small + slack)) ] || [ "$small" -gt $((big + slack)) ]; then
	echo "check_nosyscall_sysv: FAIL: $small system calls for 1000 rounds, $big for 100000" >&2
	cat "$dir/c100000" "$dir/t100000" 2>/dev/null >&2
	exit 1
fi
echo "check_nosyscall_sysv: $small and $big system calls for 1000 and for 100000 rounds of semop P+V, semtimedop P+V and msgsnd+msgrcv through libsysv: none per call"
