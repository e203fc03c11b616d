#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# A non-blocking semop makes no system call: run $B/bench/nosys_sem under
# strace and assert that nothing is traced between its two markers (writes
# to fd -1 of PRIM_NOSYS_BEGIN and PRIM_NOSYS_END). Between them it does
# 100000 single-op P/V pairs, 100000 two-op calls, 10000 SEM_UNDO pairs,
# 10000 wait-for-zero and 10000 failing IPC_NOWAIT operations.
#
# The test can fail, and proves it each run:
#   - "nosys_sem leak" makes one getppid(2) between the markers: the count
#     must see it;
#   - a trace without both markers is an error, never a pass.
set -u

B=${B:-build}
prog=$B/bench/nosys_sem
# make check-asan: LeakSanitizer cannot work under ptrace (it stops the
# process's threads with ptrace itself), so the traced programs run without.
NOLEAK=${ASAN_OPTIONS:+env ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_nosys.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
	echo "check_nosyscall_sem: FAIL: $*" >&2
	exit 1
}

command -v strace >/dev/null 2>&1 ||
	fail "strace is missing (make deps, or apt-get install -y strace)"
[ -x "$prog" ] || fail "$prog not built (make $prog)"

# between FILE: print the number of system calls strictly between the
# markers, or fail unless each marker is there exactly once, in order.
between() {
	awk '
	/write\(-1, "PRIM_NOSYS_BEGIN"/ { nb++; inside = 1; next }
	/write\(-1, "PRIM_NOSYS_END"/   { ne++; if (!inside) bad = 1; inside = 0; next }
	inside { n++; print "  " $0 > "/dev/stderr" }
	END {
		if (nb != 1 || ne != 1 || bad) { print "markers"; exit 1 }
		print n + 0
	}' "$1"
}

# trace MODE: run nosys_sem MODE under strace, trace in $tmp/MODE.
trace() {
	$NOLEAK strace -f -qq -o "$tmp/$1" "$prog" "$1" >"$tmp/$1.out" 2>&1
	st=$?
	cat "$tmp/$1.out"
	[ "$st" -eq 0 ] || fail "nosys_sem $1 exited with status $st"
	[ -s "$tmp/$1" ] || fail "strace wrote no trace (is ptrace allowed?)"
}

# 1. The real claim: no system call at all between the markers.
trace run
n=$(between "$tmp/run") || fail "markers missing from the trace of 'run'"
[ "$n" -eq 0 ] || fail "$n system call(s) between the markers (listed above)"
echo "check_nosyscall_sem: 0 system calls in 340000 non-blocking semop calls"

# 2. Sanity: the one deliberate system call of 'leak' is seen.
trace leak
n=$(between "$tmp/leak" 2>/dev/null) ||
	fail "markers missing from the trace of 'leak'"
[ "$n" -ge 1 ] || fail "sanity: the getppid between the markers went unseen"
grep -q 'getppid()' "$tmp/leak" || fail "sanity: no getppid in the trace"

# 3. Sanity: a trace without markers is an error, not a pass.
$NOLEAK strace -f -qq -o "$tmp/none" "$prog" >/dev/null 2>&1 ||
	fail "nosys_sem without arguments failed"
if between "$tmp/none" >/dev/null 2>&1; then
	fail "sanity: a trace without markers was accepted"
fi
echo "check_nosyscall_sem: sanity: a stray system call and missing markers are caught"
echo "check_nosyscall_sem: ok"
