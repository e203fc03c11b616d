#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Prove that libprim message queues make no system call on the fast path:
# bench_msgq --nosyscall does 100000 rounds of two sends and two receives
# (untyped and typed, queue neither full nor empty at the receives) between
# two getppid() markers; under strace, nothing may appear between them.
set -u
B=${B:-build}
bin=$B/bench/bench_msgq
# make check-asan: LeakSanitizer cannot work under ptrace (it stops the
# process's threads with ptrace itself), so the traced programs run without.
NOLEAK=${ASAN_OPTIONS:+env ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0}
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

command -v strace >/dev/null 2>&1 || { echo "check_nosyscall_msgq: strace missing" >&2; exit 1; }
[ -x "$bin" ] || { echo "check_nosyscall_msgq: $bin missing" >&2; exit 1; }
$NOLEAK strace -f -qq -o "$out" "$bin" --nosyscall || {
	echo "check_nosyscall_msgq: $bin --nosyscall failed" >&2; exit 1; }
n=$(awk '/getppid\(/ { m++; next } m == 1 { c++ } END { if (m != 2) print -1; else print c + 0 }' "$out")
if [ "$n" -ne 0 ]; then
	echo "check_nosyscall_msgq: $n system calls on the fast path:" >&2
	awk '/getppid\(/ { m++; next } m == 1' "$out" | sort | uniq -c | sort -rn | head >&2
	exit 1
fi
echo "check_nosyscall_msgq: 400000 fast-path operations, 0 system calls"
