#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The limits follow the namespace's sysctls (issue 10, item 3):
# $B/conform/limits writes /proc/sys/kernel/{msgmax,msgmnb,msgmni,sem,
# msg_next_id,sem_next_id} and prints what the calls then return. It runs
# in a fresh IPC namespace on the kernel, with libsysv preloaded and a
# private broker, and under `primctl run`; the outputs must be identical,
# "known:" lines (documented differences, libsysv(7) BUGS) aside.
# Needs to be root in the namespace (the sysctls are written): skipped
# otherwise.
#
# Usage: B=build IPCNS="unshare --ipc" sh tests/check_limits.sh
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
TIMEOUT=${CONFORM_TIMEOUT:-60}
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_limits: FAIL: $*" >&2
	exit 1
}

if [ "${1:-}" = --inner ]; then
	mode=$2
	out=$3
	prog=$B/conform/limits
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_limits_ns.XXXXXX")
	bpid=
	cleanup() {
		if [ -n "$bpid" ]; then
			kill "$bpid" 2>/dev/null || :
			wait "$bpid" 2>/dev/null || :
		fi
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	case "$mode" in
	kernel)
		timeout "$TIMEOUT" "$prog" >"$out" 2>&1
		;;
	preload)
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		i=0
		while [ ! -S "$dir/sock" ]; do
			i=$((i + 1))
			[ "$i" -le 100 ] || { echo "no broker socket" >&2; exit 1; }
			sleep 0.1
		done
		PRIM_BROKER_SOCK=$dir/sock LD_PRELOAD=$B/libsysv.so$POST \
			timeout "$TIMEOUT" "$prog" >"$out" 2>&1
		;;
	primctl)
		PRIM_IDLE_EXIT=2 PRIM_BROKER_SOCK=$dir/sock \
			timeout "$TIMEOUT" $RUNPRE "$B/primctl" run -- "$prog" >"$out" 2>&1
		;;
	esac
	exit 0
fi

[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
[ -x "$B/conform/limits" ] || fail "$B/conform/limits not built"
$IPCNS sh -c 'echo 8192 >/proc/sys/kernel/msgmax' 2>/dev/null ||
	fail "the namespace's sysctls are not writable (IPCNS='$IPCNS')"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_limits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

status=0
for mode in kernel preload primctl; do
	st=0
	$IPCNS sh "$0" --inner "$mode" "$tmp/$mode.out" || st=$?
	if [ "$st" -ne 0 ] || ! grep -q '^limits: done$' "$tmp/$mode.out"; then
		echo "check_limits: $mode run did not finish (exit $st):" >&2
		tail -n 5 "$tmp/$mode.out" | sed 's/^/  /' >&2
		status=1
	fi
	grep -v '^known:' "$tmp/$mode.out" >"$tmp/$mode.cmp" || :
done
grep -q '^limits: done$' "$tmp/kernel.out" ||
	fail "the kernel run itself did not finish: the test is broken"
for mode in preload primctl; do
	if diff -u "$tmp/kernel.cmp" "$tmp/$mode.cmp" >"$tmp/$mode.diff"; then
		echo "check_limits: $mode: identical to the kernel"
	else
		echo "check_limits: $mode differs from the kernel (- kernel, + $mode):" >&2
		cat "$tmp/$mode.diff" >&2
		status=1
	fi
	grep '^known:' "$tmp/$mode.out" | sed "s/^/  $mode /" || :
done
[ "$status" -eq 0 ] || fail "the limits do not follow the sysctls as the kernel's do"
echo "check_limits: ok ($(grep -c . "$tmp/kernel.cmp") lines identical to the kernel, twice)"
