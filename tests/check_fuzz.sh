#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The fuzzers of issue 8, each ending in a summary line
#   FUZZ <name>: N ..., crashes=0 hangs=0 violations=0
# Short in make check (a fixed seed and count: the same inputs, as far as
# coverage that depends on timing lets libFuzzer repeat itself), for
# FUZZ_SECONDS each in make fuzz:
#   broker   tests/fuzz/fuzz_broker.c, libFuzzer over the broker's request
#            handler in process, with its own permission oracle; in a fresh
#            IPC namespace of its own, as root;
#   socket   tests/fuzz/fuzz_socket.c as uid 65534 against a real root
#            primd: random, truncated, oversized and mutated datagrams,
#            pipelined, abandoned, floods of connections; meanwhile uid
#            61003's calls are timed (tests/hostile/victim.c probe); then
#            the broker must be alive and the objects of uid 61002 (which
#            65534 may not write) intact, owner and mode included;
#   segments tests/check_hostile.sh, the corrupt-segment fuzzer with real
#            uids: make check runs it on its own (HOSTILE_SECONDS=3); make
#            fuzz runs it here for FUZZ_SECONDS, then the white-box unit
#            scribblers (PRIM_SCRIBBLE_ROUNDS) for about as long each.
# A failure prints the FUZZ line with what failed and exits 1. A hang is
# a bound (libFuzzer's -timeout, a reply within 10 s), not a threshold.
#
#   B=build IPCNS="unshare --ipc" [FUZZ_SECONDS=180] sh tests/check_fuzz.sh
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
here=$(cd "$(dirname "$0")" && pwd)
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
VIC="setpriv --reuid=61002 --regid=61002 --clear-groups"
OTH="setpriv --reuid=61003 --regid=61003 --clear-groups"
LONG=${FUZZ_SECONDS:-}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3	# not root's pyenv one

fail() {
	echo "check_fuzz: FAIL: $*" >&2
	exit 1
}

# ------------------------------------------------------------------ socket
# (the inner part, in the IPC namespace of its own broker)
if [ "${1:-}" = --socket ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_fuzz.XXXXXX")
	chmod 0755 "$dir"
	S=$dir/sock
	bpid= probe=
	cleanup() {
		for p in $probe $bpid; do
			kill -9 "$p" 2>/dev/null || :
		done
		wait 2>/dev/null || :
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	PRIM_BROKER_SOCK=$S
	export PRIM_BROKER_SOCK
	# Limits that keep 65534's own objects small (its creations are
	# part of the fuzzing), the defaults otherwise.
	"$B/primd" -s "$S" --semmsl 250 --quota-bytes 268435456 \
		>"$dir/broker.log" 2>&1 &
	bpid=$!
	i=0
	until [ -S "$S" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "the broker made no socket"
		sleep 0.05
	done
	H=$B/hostile
	# uid 61002's objects, and what 65534 may do to each.
	s1=$($VIC "$H/victim" mkset 3 600) && s2=$($VIC "$H/victim" mkset 3 644) &&
		s3=$($VIC "$H/victim" mkset 3 622) && q1=$($VIC "$H/victim" mkq 600) &&
		q2=$($VIC "$H/victim" mkq 660) && q3=$($VIC "$H/victim" mkq 644) ||
		fail "uid 61002 cannot make its objects"
	for k in 0x4b1d:600 0x4b1e:644; do
		$VIC $PY "$here/broker/client.py" "$S" req GET sem \
			key=${k%:*} flags=0o1${k#*:} nsems=2 | grep -q "^err=0" ||
			fail "uid 61002 cannot make the set of key ${k%:*}"
	done
	objs="sem:$s1 sem:$s2 sem:$s3 msg:$q1 msg:$q2 msg:$q3"
	"$B/fuzz/fuzz_socket" "$S" stat $objs >"$dir/before" ||
		fail "stat before: $(cat "$dir/before")"
	mkdir "$dir/probe"
	chown 61003:61003 "$dir/probe"
	$OTH "$H/victim" probe "$dir/stop" "$dir/probe/pause" \
		>"$dir/probe.out" 2>&1 &
	probe=$!
	if [ -n "$LONG" ]; then
		count=0 secs=$LONG seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	else
		count=${FUZZ_SOCKET_COUNT:-10000} secs=0 seed=1
	fi
	echo "check_fuzz: socket: seed $seed"
	st=0
	timeout $((${secs:-0} + 300)) $NOBODY "$B/fuzz/fuzz_socket" "$S" fuzz \
		"$seed" "$count" "$secs" "sem:$s1:-" "sem:$s2:r" "sem:$s3:w" \
		"msg:$q1:-" "msg:$q2:-" "msg:$q3:r" semkey:0x4b1d:- \
		semkey:0x4b1e:r >"$dir/fuzz.out" 2>"$dir/fuzz.err" || st=$?
	cat "$dir/fuzz.out"
	n=$(awk '/^fuzz_socket:/ { print $2 }' "$dir/fuzz.out")
	v=$(sed -n 's/.*violations \([0-9]*\)$/\1/p' "$dir/fuzz.out")
	u=$(sed -n 's/.*unanswered \([0-9]*\),.*/\1/p' "$dir/fuzz.out")
	crashes=0 hangs=${u:-0} violations=${v:-0}
	[ $st -ne 124 ] || hangs=$((hangs + 1))
	[ $st -le 1 ] || [ $st -eq 124 ] || crashes=$((crashes + 1))
	kill -0 "$bpid" 2>/dev/null || crashes=$((crashes + 1))
	# The objects 65534 may not write: values, messages, owner and mode.
	"$B/fuzz/fuzz_socket" "$S" stat $objs >"$dir/after" 2>&1 || :
	if ! cmp -s "$dir/before" "$dir/after"; then
		violations=$((violations + 1))
		diff "$dir/before" "$dir/after" >&2 || :
	fi
	for c in "check-set $s1 1 1 1" "check-set $s2 1 1 1" "check-q $q1 3" \
		"check-q $q2 3"; do
		$VIC "$H/victim" $c >>"$dir/check.out" 2>&1 || {
			violations=$((violations + 1))
			echo "check_fuzz: uid 61002's object changed: $c" >&2
		}
	done
	touch "$dir/stop"
	pst=0
	wait "$probe" || pst=$?
	probe=
	cat "$dir/probe.out"
	pf=$(awk '/failures/ { print $NF + 0 }' "$dir/probe.out")
	if [ "${pf:-0}" -gt 0 ]; then
		violations=$((violations + pf))
	elif [ $pst -ne 0 ]; then
		hangs=$((hangs + 1))
	fi
	echo "FUZZ socket: ${n:-0} datagrams, crashes=$crashes hangs=$hangs" \
		"violations=$violations"
	if [ $((crashes + hangs + violations)) -ne 0 ]; then
		tail -20 "$dir/fuzz.err" >&2
		tail -20 "$dir/broker.log" >&2
		fail "the socket fuzzer (seed $seed)"
	fi
	exit 0
fi

# ------------------------------------------------------------------ outer
[ "$(id -u)" -eq 0 ] || fail "needs root, to be several users (uid $(id -u))"
case "$IPCNS" in
"") fail "no way to unshare an IPC namespace (IPCNS is empty)" ;;
*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace: the test's" \
	"uids are not mapped there" ;;
esac
for f in fuzz/fuzz_broker fuzz/fuzz_socket fuzz/attach_probe hostile/victim \
	primd; do
	[ -x "$B/$f" ] || fail "$B/$f not built"
done
[ -d "$B/fuzz/corpus_broker" ] || fail "$B/fuzz/corpus_broker not made"
$NOBODY test -x "$B/fuzz/fuzz_socket" ||
	fail "uid 65534 cannot run $B/fuzz/fuzz_socket (directory permissions)"

# Every fuzzer runs; the ones that failed are named at the end.
failed=

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
	grep -v '^#\|^ *#[0-9]\|^INFO:\|^primd: \|^0x\|^\\' "$tmp/broker.out" |
		tail -12 >&2
	grep -m1 'VIOLATION\|MISMATCH\|ERROR: ' "$tmp/broker.out" >&2 || :
	n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$tmp/broker.out" | tail -1)
	echo "FUZZ broker: stopped after ${n:-0} inputs (status $st)," \
		"crashes=$c hangs=$h violations=$v"
	echo "check_fuzz: fuzz_broker: the input is in $B/fuzz/ (crash-*," \
		"timeout-*); FUZZ_BROKER_TRACE=1 $IPCNS $B/fuzz/fuzz_broker" \
		"FILE replays it" >&2
	failed="$failed broker"
fi

# ------------------------------------------------------------------ socket
$IPCNS sh "$0" --socket || failed="$failed socket"

if [ -z "$LONG" ]; then
	[ -z "$failed" ] || fail "the fuzzers:$failed"
	exit 0
fi

# ------------------------------------------------------------------ segments
B=$B IPCNS="$IPCNS" HOSTILE_SECONDS=$LONG sh "$here/check_hostile.sh" \
	>"$tmp/hostile.out" 2>&1 || {
	tail -30 "$tmp/hostile.out" >&2
	failed="$failed segments"
}
grep "^check_hostile: \|^FUZZ segments: " "$tmp/hostile.out" || :

# ------------------------------------------------------------------ unit
# The white-box scribblers take rounds, not seconds: 300 rounds measure
# how many make FUZZ_SECONDS.
for t in test_sem_hostile test_msgq_hostile; do
	a=$(date +%s%N)
	PRIM_SCRIBBLE_ROUNDS=300 "$B/tests/$t" >/dev/null 2>&1 || {
		failed="$failed $t"
		continue
	}
	ms=$((($(date +%s%N) - a) / 1000000 + 1))
	rounds=$((300 * LONG * 1000 / ms))
	echo "check_fuzz: $t, $rounds rounds"
	PRIM_SCRIBBLE_ROUNDS=$rounds "$B/tests/$t" >"$tmp/unit.out" 2>&1 || {
		tail -30 "$tmp/unit.out" >&2
		failed="$failed $t"
	}
	grep "ended damaged\|PASSED" "$tmp/unit.out" || :
done
[ -z "$failed" ] || fail "the fuzzers:$failed"
echo "check_fuzz: every fuzzer for $LONG s: ok"
