#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Hostile writers, with real uids, against a root broker (issue 8). In a
# private IPC namespace with a private socket:
#   uid 61001 (the attacker) rewrites, one by one, every protocol word of
#     semaphore sets and queues it may write: its own (mode 0644, so that
#     the victim may read them: the broker then works on them for the
#     victim, and reaps the attacker's SEM_UNDO process on them), and the
#     victim's 0666 ones; then a live writer churns words and scribbles;
#   uid 61002 (the victim) uses those objects meanwhile: every IPC_NOWAIT
#     call must return, semtimedop by its timeout; its private objects must
#     keep their values;
#   uid 61003 makes and removes objects of its own the whole time: every
#     call must be answered (the latencies are printed: p50, p99, max).
# Then the broker is killed and restarted over the hostile segments: it
# must come up and answer. Any crash, hang or late call fails the test;
# "late" is a hang bound (a second beyond the call's own bound), and the
# figures are printed, not judged.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
ATT="setpriv --reuid=61001 --regid=61001 --clear-groups"
VIC="setpriv --reuid=61002 --regid=61002 --clear-groups"
OTH="setpriv --reuid=61003 --regid=61003 --clear-groups"
H=$B/hostile
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_hostile: FAIL: $*" >&2
	[ -n "${dir:-}" ] && [ -s "$dir/broker.log" ] &&
		tail -20 "$dir/broker.log" >&2
	exit 1
}

if [ "${1:-}" != --inner ]; then
	[ "$(id -u)" -eq 0 ] ||
		fail "needs root, to be three users (uid $(id -u))"
	case "$IPCNS" in
	"") fail "no way to unshare an IPC namespace (IPCNS is empty)" ;;
	*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace: uids" \
		"61001..61003 are not mapped there" ;;
	esac
	for f in attack_sem attack_msg victim; do
		[ -x "$H/$f" ] || fail "$H/$f not built"
	done
	$ATT test -x "$H/victim" ||
		fail "uid 61001 cannot run $H/victim (directory permissions)"
	exec $IPCNS sh "$0" --inner
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_hostile.XXXXXX")
chmod 0755 "$dir"
S=$dir/sock
bpid=
probe=
undo=
cleanup() {
	for p in $probe $undo $bpid; do
		kill -9 "$p" 2>/dev/null || :
	done
	wait 2>/dev/null || :
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start_broker() {
	rm -f "$S"
	$W "$B/primd" -s "$S" >>"$dir/broker.log" 2>&1 &
	bpid=$!
	i=0
	while ! [ -S "$S" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "the broker made no socket"
		sleep 0.05
	done
	chmod 0666 "$S"
}

broker_alive() {
	kill -0 "$bpid" 2>/dev/null || fail "the broker died ($1)"
}

PRIM_BROKER_SOCK=$S
export PRIM_BROKER_SOCK
start_broker

# The third user's probe runs through everything (in a directory it may
# write, for its acknowledgement of a pause).
mkdir "$dir/probe"
chown 61003:61003 "$dir/probe"
$OTH "$H/victim" probe "$dir/stop" "$dir/probe/pause" >"$dir/probe.out" 2>&1 &
probe=$!

# The victim's private objects, which nothing may touch.
sv=$($VIC "$H/victim" mkset 3 600) || fail "victim mkset"
qv=$($VIC "$H/victim" mkq 600) || fail "victim mkq"

attacks=0
for w in held tag removed sleepers active active-range astate idents \
	undo-idents count frozen-req pidv; do
	# The victim's shared set, written by the attacker.
	s=$($VIC "$H/victim" mkset 3 666)
	$ATT "$H/attack_sem" "$S" "$s" "$w" >/dev/null ||
		fail "attack_sem $w on the victim's set"
	timeout 120 $VIC "$H/victim" sem "$s" >>"$dir/victim.out" 2>&1 ||
		fail "victim on a set with $w: $(tail -3 "$dir/victim.out")"
	# The attacker's own set, that the victim may read: the broker does
	# the victim's wait-for-zero, and reaps the attacker's dead process.
	a=$($ATT "$H/victim" mkset 3 644)
	: >"$dir/undo.out"
	$ATT "$H/victim" undo "$a" >"$dir/undo.out" 2>&1 &
	undo=$!
	i=0
	until grep -q ready "$dir/undo.out"; do
		i=$((i + 1))
		[ $i -le 200 ] || fail "the attacker's undo process did not start"
		sleep 0.01
	done
	$ATT "$H/attack_sem" "$S" "$a" "$w" >/dev/null ||
		fail "attack_sem $w on the attacker's set"
	kill -9 "$undo"
	wait "$undo" 2>/dev/null || :
	undo=
	timeout 120 $VIC "$H/victim" sem "$a" >>"$dir/victim.out" 2>&1 ||
		fail "victim on the attacker's set with $w"
	broker_alive "set word $w"
	attacks=$((attacks + 2))
done

for w in pend count head tail qbytes writing claimed length tags; do
	q=$($VIC "$H/victim" mkq 666)
	$ATT "$H/attack_msg" "$S" "$q" "$w" >/dev/null ||
		fail "attack_msg $w on the victim's queue"
	timeout 120 $VIC "$H/victim" msg "$q" >>"$dir/victim.out" 2>&1 ||
		fail "victim on a queue with $w: $(tail -3 "$dir/victim.out")"
	a=$($ATT "$H/victim" mkq 644)
	$ATT "$H/attack_msg" "$S" "$a" "$w" >/dev/null ||
		fail "attack_msg $w on the attacker's queue"
	timeout 120 $VIC "$H/victim" msg "$a" >>"$dir/victim.out" 2>&1 ||
		fail "victim on the attacker's queue with $w"
	broker_alive "queue word $w"
	attacks=$((attacks + 2))
done

# Live writers, while the victim uses the objects.
for w in churn scribble; do
	s=$($VIC "$H/victim" mkset 3 666)
	q=$($VIC "$H/victim" mkq 666)
	$ATT "$H/attack_sem" "$S" "$s" "$w" 3 >/dev/null &
	as=$!
	$ATT "$H/attack_msg" "$S" "$q" "$w" 3 >/dev/null &
	aq=$!
	timeout 120 $VIC "$H/victim" sem "$s" >>"$dir/victim.out" 2>&1 ||
		fail "victim on a set under $w"
	timeout 120 $VIC "$H/victim" msg "$q" >>"$dir/victim.out" 2>&1 ||
		fail "victim on a queue under $w"
	wait "$as" || fail "attack_sem $w"
	wait "$aq" || fail "attack_msg $w"
	broker_alive "$w"
	attacks=$((attacks + 2))
done
$ATT "$H/attack_msg" "$S" "$($VIC "$H/victim" mkq 666)" futex 2 >/dev/null ||
	fail "attack_msg futex"
attacks=$((attacks + 1))

# Nothing reached the victim's private objects.
$VIC "$H/victim" check-set "$sv" 1 1 1 || fail "the victim's set changed"
$VIC "$H/victim" check-q "$qv" 3 || fail "the victim's queue changed"

# A broker restarted over every hostile segment comes up and answers.
# (The probe pauses: a creation in flight when the broker dies is not
# retried, by design, and fails with ENOSYS.)
touch "$dir/probe/pause"
i=0
until [ -e "$dir/probe/pause.ack" ]; do
	i=$((i + 1))
	[ $i -le 500 ] || fail "the probe did not pause"
	sleep 0.01
done
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || :
start_broker
timeout 60 $VIC "$H/victim" check-set "$sv" 1 1 1 ||
	fail "the restarted broker does not answer"
$VIC "$H/victim" check-q "$qv" 3 || fail "the victim's queue after restart"
broker_alive "after the restart"
rm -f "$dir/probe/pause"
sleep 0.5

touch "$dir/stop"
wait "$probe" || fail "the other user's calls: $(cat "$dir/probe.out")"
probe=
damaged=$(grep -c 'is damaged' "$dir/broker.log" || :)
calls=$(awk '/calls returned/ { n += $4 } END { print n + 0 }' "$dir/victim.out")
slow=$(awk '/calls returned/ { if ($8 + 0 > m) m = $8 + 0 } END { print m + 0 }' \
	"$dir/victim.out")
cat "$dir/probe.out"
echo "check_hostile: $attacks attacks, $calls victim calls returned" \
	"(slowest $slow ms), $damaged objects marked damaged, broker" \
	"answered throughout, no crash: ok"
