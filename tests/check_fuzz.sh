#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The fuzzers of issue 8, each ending in a summary line
#   FUZZ <name>: N ..., crashes=0 hangs=0 violations=0
# Short in make check (deterministic: a fixed seed and count), for
# FUZZ_SECONDS each when that is set:
#   broker   tests/fuzz/fuzz_broker.c, libFuzzer over the broker's request
#            handler in process, with its own permission oracle; in a fresh
#            IPC namespace of its own, as root.
# A failure prints the FUZZ line with what failed and exits 1. A hang is
# a bound (libFuzzer's -timeout), not a threshold.
#
#   B=build IPCNS="unshare --ipc" [FUZZ_SECONDS=180] sh tests/check_fuzz.sh
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
LONG=${FUZZ_SECONDS:-}

fail() {
	echo "check_fuzz: FAIL: $*" >&2
	exit 1
}

# ------------------------------------------------------------------ outer
[ "$(id -u)" -eq 0 ] || fail "needs root, to make segments as other uids (uid $(id -u))"
case "$IPCNS" in
"") fail "no way to unshare an IPC namespace (IPCNS is empty)" ;;
*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace: the test's" \
	"uids are not mapped there" ;;
esac
[ -x "$B/fuzz/fuzz_broker" ] || fail "$B/fuzz/fuzz_broker not built"
[ -d "$B/fuzz/corpus_broker" ] || fail "$B/fuzz/corpus_broker not made"

# ------------------------------------------------------------------ broker
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_fuzzb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/corpus"
if [ -n "$LONG" ]; then
	# The corpus grows from run to run; the seeds come along each time.
	mkdir -p "$B/fuzz/work_broker"
	set -- -max_total_time="$LONG" "$B/fuzz/work_broker"
else
	set -- -runs="${FUZZ_BROKER_RUNS:-30000}" -seed=1 "$tmp/corpus"
fi
echo "check_fuzz: broker: $B/fuzz/fuzz_broker $*"
st=0
# Its own temporary files in ours; its inputs that fail in $B/fuzz/.
TMPDIR=$tmp $IPCNS "$B/fuzz/fuzz_broker" -timeout=10 \
	-artifact_prefix="$B/fuzz/" "$@" "$B/fuzz/corpus_broker" \
	>"$tmp/broker.out" 2>&1 || st=$?
if [ $st -eq 0 ] && grep -q "^FUZZ broker: " "$tmp/broker.out"; then
	grep "^fuzz_broker: \|^FUZZ broker: " "$tmp/broker.out"
else
	c=0 h=0 v=0
	if grep -q "VIOLATION\|MISMATCH" "$tmp/broker.out"; then
		v=1
	elif grep -q "ERROR: libFuzzer: timeout" "$tmp/broker.out"; then
		h=1
	else
		c=1
	fi
	grep -v '^#\|^INFO:\|^primd: ' "$tmp/broker.out" | tail -30 >&2
	n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$tmp/broker.out" | tail -1)
	echo "FUZZ broker: stopped after ${n:-0} inputs (status $st)," \
		"crashes=$c hangs=$h violations=$v"
	fail "fuzz_broker: the input is in $B/fuzz/ (crash-*, timeout-*);" \
		"FUZZ_BROKER_TRACE=1 $IPCNS $B/fuzz/fuzz_broker FILE replays it"
fi
