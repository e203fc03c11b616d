#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Differential conformance: $B/conform/conform (plain libc, the SEMANTICS.md
# checklist, one line per check) runs three times, each in a fresh IPC
# namespace:
#   kernel  plainly, against the kernel's own System V IPC (the oracle);
#   preload with LD_PRELOAD=$B/libsysv.so and a private broker
#           ($B/primd -s DIR/sock, PRIM_BROKER_SOCK=DIR/sock);
#   primctl through `$B/primctl run --`, which starts its own broker on a
#           fresh socket path.
# The outputs must be identical, "optional:" lines (MSG_COPY) aside, which
# are shown but not compared. Any difference fails, and is printed.
# PRIM_CONFORM_NOT_COMPARED (an extended regular expression; only make
# check-tsan sets it) names more lines to show and not compare.
#
# Usage (make check runs it from the top of the tree):
#   B=build IPCNS="unshare --ipc" sh tests/check_conform.sh
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
TIMEOUT=${CONFORM_TIMEOUT:-120}
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv, here and by primctl run.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_conform: FAIL: $*" >&2
	exit 1
}

# wait_sock PATH: up to 10 s for a broker to create its socket.
wait_sock() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || return 1
		sleep 0.1
	done
}

# brokers_on PATH: pids of processes whose command line names PATH.
brokers_on() {
	for d in /proc/[0-9]*; do
		c=$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null) || continue
		case "$c" in
		*primd*" $1"*) echo "${d#/proc/}" ;;
		esac
	done
}

# ---- inside a fresh IPC namespace -------------------------------------
if [ "${1:-}" = --inner ]; then
	mode=$2
	out=$3
	prog=$B/conform/conform
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_conform_ns.XXXXXX")
	bpid=
	cleanup() {
		if [ -n "$bpid" ]; then
			kill "$bpid" 2>/dev/null || :
			wait "$bpid" 2>/dev/null || :
		fi
		for p in $(brokers_on "$dir/sock"); do
			kill "$p" 2>/dev/null || :
		done
		if [ -s "$dir/broker.log" ] || [ -s "$dir/sock.log" ]; then
			echo "check_conform: $mode broker log:" >&2
			cat "$dir/broker.log" "$dir/sock.log" 2>/dev/null | sed 's/^/  /' >&2
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
		wait_sock "$dir/sock" || {
			echo "check_conform: the broker made no socket" >&2
			exit 1
		}
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

# ---- outside ------------------------------------------------------------
[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
[ -x "$B/conform/conform" ] || fail "$B/conform/conform not built"
for f in "$B/libsysv.so" "$B/primd" "$B/primctl"; do
	[ -e "$f" ] || fail "$f not built"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_conform.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

status=0
for mode in kernel preload primctl; do
	st=0
	$IPCNS sh "$0" --inner "$mode" "$tmp/$mode.out" || st=$?
	n=$(grep -c . "$tmp/$mode.out" 2>/dev/null || :)
	echo "check_conform: $mode: ${n:-0} lines, exit $st"
	if [ "$st" -ne 0 ] || ! grep -q '^conform: done$' "$tmp/$mode.out"; then
		echo "check_conform: $mode run did not finish (exit $st):" >&2
		tail -n 5 "$tmp/$mode.out" | sed 's/^/  /' >&2
		status=1
	fi
	grep -v '^optional:' "$tmp/$mode.out" >"$tmp/$mode.cmp" || :
	if [ -n "${PRIM_CONFORM_NOT_COMPARED:-}" ]; then
		grep -E "$PRIM_CONFORM_NOT_COMPARED" "$tmp/$mode.cmp" \
			>"$tmp/$mode.nc" || :
		grep -vE "$PRIM_CONFORM_NOT_COMPARED" "$tmp/$mode.cmp" \
			>"$tmp/$mode.c2" || :
		mv "$tmp/$mode.c2" "$tmp/$mode.cmp"
	fi
done

grep -q '^conform: done$' "$tmp/kernel.out" ||
	fail "the kernel run itself did not finish: the test is broken"
if grep -q '^SETUP FAILED\|^TIMEOUT' "$tmp/kernel.out"; then
	grep '^SETUP FAILED\|^TIMEOUT' "$tmp/kernel.out" >&2
	fail "the kernel run hit a setup failure or timeout: the test is broken"
fi

for mode in preload primctl; do
	if diff -u "$tmp/kernel.cmp" "$tmp/$mode.cmp" >"$tmp/$mode.diff"; then
		echo "check_conform: $mode: identical to the kernel"
	else
		echo "check_conform: $mode differs from the kernel" \
			"(- kernel, + $mode):" >&2
		cat "$tmp/$mode.diff" >&2
		status=1
	fi
	if ! diff -q "$tmp/kernel.out" "$tmp/$mode.out" >/dev/null 2>&1; then
		echo "check_conform: $mode optional lines (not compared):"
		grep '^optional:' "$tmp/$mode.out" | sed 's/^/  /' || :
	fi
done

if [ -n "${PRIM_CONFORM_NOT_COMPARED:-}" ]; then
	# make check-tsan (scripts/sanitize.sh says why): shown, not compared.
	for mode in preload primctl; do
		echo "check_conform: $mode: $(grep -c . "$tmp/$mode.nc")" \
			"lines matching '$PRIM_CONFORM_NOT_COMPARED' not compared" \
			"(- kernel, + $mode):"
		diff -u "$tmp/kernel.nc" "$tmp/$mode.nc" | sed -n 's/^[-+][^-+]/  &/p' || :
	done
fi
[ "$status" -eq 0 ] || fail "libsysv differs from the kernel (see above)"
echo "check_conform: ok ($(grep -c . "$tmp/kernel.cmp") checks identical" \
	"to the kernel, twice)"
