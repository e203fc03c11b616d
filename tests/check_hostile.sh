#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Hostile writers, with real uids, against a root broker (issue 8). In a
# private IPC namespace with a private socket:
#   uid 61001 (the attacker) rewrites, one by one, every protocol word of
#     semaphore sets and queues it may write: its own (mode 0644, so that
#     the victim may read them: the broker then works on them for the
#     victim, and reaps the attacker's SEM_UNDO process on them), and the
#     victim's 0666 ones; then live writers churn words and scribble, in
#     rounds for HOSTILE_SECONDS (the corrupt-segment fuzzer: 3 s in make
#     check, FUZZ_SECONDS in make fuzz, fresh objects and a random choice
#     of words each round after the first two), and after every round
#     probes with raw shmat, IPC_SET and IPC_RMID the segments of the
#     victim's private objects (tests/fuzz/attach_probe.c);
#   uid 61002 (the victim) uses those objects meanwhile: every IPC_NOWAIT
#     call must return, semtimedop by its timeout; its private objects must
#     keep their values;
#   uid 61003 makes and removes objects of its own the whole time: every
#     call must be answered (the latencies are printed: p50, p99, max).
# Then the broker is killed and restarted over the hostile segments: it
# must come up and answer. Any crash, hang or late call fails the test;
# "late" is a hang bound (a second beyond the call's own bound), and the
# figures are printed, not judged. The fuzzer's rounds end in
#   FUZZ segments: R rounds, V victim calls, crashes=0 hangs=0 violations=0
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
	for f in $H/attack_sem $H/attack_msg $H/victim $B/fuzz/attach_probe; do
		[ -x "$f" ] || fail "$f not built"
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
# And two the attacker may only write (its class gets no attach at all),
# or only read (a read-only attach), for the attach probe.
sw=$($VIC "$H/victim" mkset 3 622) || fail "victim mkset 622"
qr=$($VIC "$H/victim" mkq 644) || fail "victim mkq 644"

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

# The corrupt-segment fuzzer: rounds of live writers while the victim
# uses the objects, for HOSTILE_SECONDS (at least the two fixed rounds,
# churn then scribble, 3 s each; then fresh objects each round and a
# random choice of words, a seeded choice: HOSTILE_SEED). A round counts,
# instead of failing at once: a crash (the broker, the victim or an
# attacker killed by a signal), a hang (a victim call late or not
# returning, or timeout), a violation (the victim's private objects
# changed, the attacker able to attach, IPC_SET or IPC_RMID a segment it
# has no access to, the third user's calls failing).
HOSTILE_SECONDS=${HOSTILE_SECONDS:-3}
seed=${HOSTILE_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
SEM_WORDS="held tag removed sleepers active active-range astate idents undo-idents count frozen-req pidv"
MSG_WORDS="pend count head tail qbytes writing claimed length tags"
rounds=0 vcalls=0 crashes=0 hangs=0 violations=0

# rnd N: r = a pseudo-random number below N (an LCG: sh has no RANDOM).
rnd() {
	seed=$(((seed * 1103515245 + 12345) % 2147483648))
	r=$((seed / 65536 % $1))
}
# nth N WORDS...: w = the Nth word.
nth() {
	n=$1
	shift
	shift "$n"
	w=$1
}
# status CODE WHAT: count a program's exit (1: late or unanswered).
status() {
	case $1 in
	0) ;;
	1 | 124) hangs=$((hangs + 1))
		echo "check_hostile: hang: $2 (status $1)" >&2 ;;
	*) crashes=$((crashes + 1))
		echo "check_hostile: crash: $2 (status $1)" >&2 ;;
	esac
}
# attacker STATUS WHAT: 0, or 2 (it could not open an object an earlier
# word damaged) are what an attacker may get.
attacker() {
	case $1 in
	0 | 2) ;;
	*) status "$1" "$2" ;;
	esac
}
# victim_on KIND ID: the victim's battery, its calls counted.
victim_on() {
	st=0
	timeout 120 $VIC "$H/victim" "$1" "$2" >"$dir/round.out" 2>&1 || st=$?
	cat "$dir/round.out" >>"$dir/victim.out"
	n=$(awk '/calls returned/ { n += $4 } END { print n + 0 }' "$dir/round.out")
	vcalls=$((vcalls + n))
	status $st "victim on $1 $2: $(tail -2 "$dir/round.out")"
}
# probe_attach TYPE ID EXPECT: the attacker's raw shmat, IPC_SET, IPC_RMID.
probe_attach() {
	st=0
	$ATT "$B/fuzz/attach_probe" "$S" "$@" >>"$dir/attach.out" 2>&1 || st=$?
	case $st in
	0) ;;
	3) violations=$((violations + 1))
		echo "check_hostile: violation: $(tail -1 "$dir/attach.out")" >&2 ;;
	*) fail "attach_probe $*: $(tail -1 "$dir/attach.out")" ;;
	esac
}

echo "check_hostile: live writers for ${HOSTILE_SECONDS} s (seed $seed)"
t0=$(date +%s)
while :; do
	d=3
	case $rounds in
	0) mode=live ws=churn wq=churn own=victim ;;
	1) mode=live ws=scribble wq=scribble own=victim ;;
	*)
		[ $(($(date +%s) - t0)) -lt "$HOSTILE_SECONDS" ] || break
		rnd 5
		own=victim
		[ "$r" -ne 0 ] || own=attacker
		rnd 2
		if [ "$r" -eq 0 ]; then
			mode=live
			rnd 2
			nth "$r" churn scribble
			ws=$w
			rnd 3
			nth "$r" churn scribble futex
			wq=$w
			rnd 3
			d=$((r + 1))
		else
			mode=words
			ws= wq=
			rnd 3
			for k in $(seq 0 "$r"); do
				rnd 12
				nth "$r" $SEM_WORDS
				ws="$ws $w"
				rnd 9
				nth "$r" $MSG_WORDS
				wq="$wq $w"
			done
		fi
		;;
	esac
	# Fresh objects: the victim's, that the attacker may write, or the
	# attacker's own, that the victim may read (the broker then does the
	# victim's wait-for-zero and msgrcv).
	if [ $own = victim ]; then
		s=$($VIC "$H/victim" mkset 3 666) || fail "victim mkset"
		q=$($VIC "$H/victim" mkq 666) || fail "victim mkq"
	else
		s=$($ATT "$H/victim" mkset 3 644) || fail "attacker mkset"
		q=$($ATT "$H/victim" mkq 644) || fail "attacker mkq"
	fi
	if [ $mode = live ]; then
		$ATT "$H/attack_sem" "$S" "$s" "$ws" $d >/dev/null 2>&1 &
		as=$!
		$ATT "$H/attack_msg" "$S" "$q" "$wq" $d >/dev/null 2>&1 &
		aq=$!
		victim_on sem "$s"
		victim_on msg "$q"
		st=0
		wait "$as" || st=$?
		attacker $st "attack_sem $ws"
		st=0
		wait "$aq" || st=$?
		attacker $st "attack_msg $wq"
		attacks=$((attacks + 2))
	else
		for w in $ws; do
			st=0
			$ATT "$H/attack_sem" "$S" "$s" "$w" >/dev/null 2>&1 || st=$?
			attacker $st "attack_sem $w"
			attacks=$((attacks + 1))
		done
		for w in $wq; do
			st=0
			$ATT "$H/attack_msg" "$S" "$q" "$w" >/dev/null 2>&1 || st=$?
			attacker $st "attack_msg $w"
			attacks=$((attacks + 1))
		done
		victim_on sem "$s"
		victim_on msg "$q"
	fi
	if ! kill -0 "$bpid" 2>/dev/null; then
		crashes=$((crashes + 1))
		echo "check_hostile: crash: the broker died in round $rounds" \
			"($mode $ws / $wq)" >&2
		wait "$bpid" 2>/dev/null || :
		start_broker
	fi
	# Nothing reached the victim's private objects, and the kernel
	# refuses the attacker their segments (and lets it read the
	# registry, and only read it).
	$VIC "$H/victim" check-set "$sv" 1 1 1 >>"$dir/victim.out" 2>&1 || {
		violations=$((violations + 1))
		echo "check_hostile: violation: the victim's set changed" >&2
	}
	$VIC "$H/victim" check-q "$qv" 3 >>"$dir/victim.out" 2>&1 || {
		violations=$((violations + 1))
		echo "check_hostile: violation: the victim's queue changed" >&2
	}
	probe_attach sem "$sv" none
	probe_attach msg "$qv" none
	probe_attach sem "$sw" none
	probe_attach msg "$qr" ro
	probe_attach registry ro
	if [ $own = victim ]; then
		probe_attach sem "$s" rw
		probe_attach msg "$q" rw
	fi
	# The round's objects go (a damaged one too).
	if [ $own = victim ]; then
		$VIC "$B/primctl" ipcrm --sock "$S" -s "$s" -q "$q" >/dev/null 2>&1 || :
	else
		$ATT "$B/primctl" ipcrm --sock "$S" -s "$s" -q "$q" >/dev/null 2>&1 || :
	fi
	rounds=$((rounds + 1))
done

$ATT "$H/attack_msg" "$S" "$($VIC "$H/victim" mkq 666)" futex 2 >/dev/null ||
	fail "attack_msg futex"
attacks=$((attacks + 1))

# No corruption at all: every slot a sleeper may take holds one (256
# threads), then a process with SEM_UNDO on the set dies: its reap finishes.
s=$($VIC "$H/victim" mkset 2 600)
timeout 120 $VIC "$H/victim" crowd "$s" 256 >>"$dir/victim.out" 2>&1 ||
	fail "the reap behind 256 sleepers: $(tail -3 "$dir/victim.out")"
grep 'victim crowd' "$dir/victim.out"
broker_alive "the crowd"

# Nothing reached the victim's private objects.
$VIC "$H/victim" check-set "$sv" 1 1 1 || fail "the victim's set changed"
$VIC "$H/victim" check-q "$qv" 3 || fail "the victim's queue changed"

# Forged pids: 40 of the attacker's own sets whose every slot and undo
# record names a dead pid (or one above pid_max). The owner sweep (every
# 2 s) reaps them a bounded share at a time, each in the set that lists
# it: the victim's calls meanwhile are answered at once (a hang bound of a
# second, generous; the sweep's share is 5 ms).
dsets=
for k in $(seq 1 40); do
	d=$($ATT "$H/victim" mkset 3 600) || fail "attacker mkset $k"
	$ATT "$H/attack_sem" "$S" "$d" dead-pids "$((k - 1))" >/dev/null ||
		fail "attack_sem dead-pids"
	dsets="$dsets -s $d"
done
slowest=0
t0=$(date +%s)
while [ $(($(date +%s) - t0)) -lt 6 ]; do
	c0=$(date +%s%N)
	$VIC "$H/victim" check-set "$sv" 1 1 1 >>"$dir/victim.out" 2>&1 ||
		fail "the victim's set under the forged pids' sweep: $(tail -3 "$dir/victim.out")"
	ms=$((($(date +%s%N) - c0) / 1000000))
	[ "$ms" -le "$slowest" ] || slowest=$ms
done
[ "$slowest" -lt 1000 ] ||
	fail "a victim call took $slowest ms under the forged pids' sweep"
echo "check_hostile: 40 sets of forged pids: slowest victim call $slowest ms"
broker_alive "the forged pids' sweep"
$ATT "$B/primctl" ipcrm --sock "$S" $dsets >/dev/null 2>&1 || :

# A set its writer rewrote into another consistent geometry (as many
# semaphores as fit its segment, where the registry says 1): the broker
# that made it keeps its own copy; one that adopts it must refuse it, or
# a SETALL sized from the registry is read as the memory's nsems.
geo=$($ATT "$H/victim" mkset 1 600) || fail "attacker mkset 1"
$ATT "$H/attack_sem" "$S" "$geo" geometry >/dev/null ||
	fail "attack_sem geometry"

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
out=$($ATT "$H/attack_sem" "$S" "$geo" setall 1) || fail "attack_sem setall"
[ "$out" = "setall: err=43" ] || # EIDRM
	fail "SETALL on a set of another geometry after the restart: $out"
grep -q "semaphore set $geo .*is damaged" "$dir/broker.log" ||
	fail "the set of another geometry was not adopted as damaged"
broker_alive "SETALL on a set of another geometry"
rm -f "$dir/probe/pause"
sleep 0.5

touch "$dir/stop"
st=0
wait "$probe" || st=$?
probe=
cat "$dir/probe.out"
pf=$(awk '/failures/ { print $NF + 0 }' "$dir/probe.out")
if [ "${pf:-0}" -gt 0 ]; then
	violations=$((violations + pf))
	echo "check_hostile: violation: $pf of the other user's calls failed" >&2
elif [ $st -ne 0 ]; then
	hangs=$((hangs + 1))
	echo "check_hostile: hang: the other user's calls: $(tail -3 "$dir/probe.out")" >&2
fi
damaged=$(grep -c 'is damaged' "$dir/broker.log" || :)
calls=$(awk '/calls returned/ { n += $4 } END { print n + 0 }' "$dir/victim.out")
slow=$(awk '/calls returned/ { if ($8 + 0 > m) m = $8 + 0 } END { print m + 0 }' \
	"$dir/victim.out")
echo "FUZZ segments: $rounds rounds, $vcalls victim calls," \
	"crashes=$crashes hangs=$hangs violations=$violations"
[ $((crashes + hangs + violations)) -eq 0 ] ||
	fail "the corrupt-segment fuzzer (seed $seed): see above"
echo "check_hostile: $attacks attacks, $calls victim calls returned" \
	"(slowest $slow ms), $damaged objects marked damaged, broker" \
	"answered throughout, no crash: ok"
