#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# One user's flood never shuts another out (doc/design.md, "Quotas and
# fairness"). uid 65534 floods the broker while root keeps being served:
#   conns    5000 connections held open: nobody gets its quota (256), root's
#            HELLO, GET and RMID are all answered;
#   table    the same with no per-uid bound: nobody fills the table but the
#            64 slots kept for root;
#   shmmni   kernel.shmmni = 64: nobody creates queues until ENOSPC (half of
#            prim's share), root still creates through the broker until
#            prim's share is used, and the kernel's own shmget still gets
#            the whole reserve;
#   requests nobody floods requests over 200 connections while root sends
#            its own: every one answered within the hang bound; root's
#            latency is printed, idle and under the flood (a measurement);
#   objects  --quota-objects 10 and --quota-bytes: nobody's next creation is
#            ENOSPC, root's is not; a restarted broker charges what it
#            adopts;
#   limits   --quota-conns and --quota-procs at their limits: the connection
#            over quota is closed, the process over quota is not watched
#            but its SEM_UNDO is still reaped by the owner sweep.
#   nofile   a broker started with RLIMIT_NOFILE 40 sizes its tables to
#            it: nobody's 60 connections are refused by the quotas, not by
#            accept's EMFILE, the broker does not spin (CPU time over 2 s)
#            nor flood its log, and root is still served.
# Each part runs in its own IPC namespace with its own broker and socket,
# and removes only what it made. Needs root (to become nobody), as in CI.
#
#   B=build IPCNS="unshare --ipc" sh tests/check_flood.sh
set -u

B=${B:-build}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd -P)
case $B in /*) ;; *) B=$(pwd -P)/$B ;; esac
PRIMD=$B/primd
PRIMCTL=$B/primctl
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_flood: FAIL: ${PART:+$PART: }$*" >&2
	if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
		echo "--- primd log:" >&2
		tail -20 "$LOG" >&2
	fi
	exit 1
}

# ---------------------------------------------------------------- outer
if [ -z "${PRIM_FLOOD_PART:-}" ]; then
	[ -n "${IPCNS:-}" ] || fail "cannot unshare an IPC namespace"
	[ "$(id -u)" = 0 ] && $NOBODY true 2>/dev/null ||
		fail "must run as root, able to become uid 65534 (setpriv)"
	for f in "$PRIMD" "$PRIMCTL" "$B/libprim.a"; do
		[ -e "$f" ] || fail "$f not built"
	done
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_flood.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' INT TERM
	chmod 755 "$tmp"
	${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -I"$top/include" \
		-I"$top/broker" ${CFLAGS:-} -o "$tmp/flood" "$here/broker/flood.c" ||
		fail "cannot build flood"
	${CC:-cc} -std=gnu11 -D_GNU_SOURCE -I"$top/include" -I"$top/prim" \
		-I"$top/broker" ${CFLAGS:-} -o "$tmp/prim_helper" \
		"$here/broker/prim_helper.c" "$B/libprim.a" -lck -lpthread ||
		fail "cannot build prim_helper"
	chmod 755 "$tmp/flood" "$tmp/prim_helper"
	# PRIM_FLOOD_PARTS: some of the parts only (a quicker run).
	parts="conns table shmmni requests objects limits nofile"
	for part in ${PRIM_FLOOD_PARTS:-$parts}; do
		mkdir "$tmp/$part" && chmod 755 "$tmp/$part" || exit 1
		PRIM_FLOOD_PART=$part PRIM_FLOOD_TMP=$tmp $IPCNS sh "$0" ||
			exit 1
	done
	echo "check_flood: ok"
	exit 0
fi

# ---------------------------------------------------------------- inner
PART=$PRIM_FLOOD_PART
T=$PRIM_FLOOD_TMP
D=$T/$PART
FLOOD=$T/flood
LOG=$D/primd.log
BPID=
PIDS=

cleanup() {
	for p in $PIDS $BPID; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS $BPID; do
		wait "$p" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_broker SOCK ARGS...: start primd, wait until it answers.
start_broker() {
	sock=$1
	shift
	$W "$PRIMD" -s "$sock" "$@" >>"$LOG" 2>&1 &
	BPID=$!
	i=0
	while ! "$PRIMCTL" status -s "$sock" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 250 ] || fail "primd did not answer on $sock"
		kill -0 "$BPID" 2>/dev/null || fail "primd exited at start"
		sleep 0.02
	done
}

stop_broker() {
	kill "$BPID"
	wait "$BPID" || fail "primd exited $? on SIGTERM"
	BPID=
}

alive() {
	kill -0 "$BPID" 2>/dev/null || fail "primd died ($*)"
}

# bg OUT CMD...: start CMD in the background, its output in OUT; wait
# for its first line (the hang bound: 60 s). Sets BG to its pid.
bg() {
	out=$1
	shift
	"$@" >"$out" 2>&1 &
	BG=$!
	PIDS="$PIDS $BG"
	i=0
	until [ -s "$out" ]; do
		i=$((i + 1))
		[ $i -lt 1200 ] || fail "no output from $*"
		kill -0 "$BG" 2>/dev/null || [ -s "$out" ] ||
			fail "$* exited: $(cat "$out")"
		sleep 0.05
	done
}

# finish PID: stop a process this test started, wait for it.
finish() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

# expect DESC WANT GOT: GOT must contain WANT.
expect() {
	case $3 in
	*"$2"*) ;;
	*) fail "$1: expected '$2', got: $3" ;;
	esac
}

# watched PID...: how many of these pids the broker watches (pidfds).
watched() {
	n=0
	for f in /proc/"$BPID"/fdinfo/*; do
		p=$(sed -n 's/^Pid:[[:space:]]*//p' "$f" 2>/dev/null)
		[ -n "$p" ] || continue
		for w in "$@"; do
			[ "$p" = "$w" ] && n=$((n + 1))
		done
	done
	echo $n
}

# until_watched N PID...: wait until the broker watches N of the pids.
until_watched() {
	want=$1
	shift
	i=0
	while [ "$(watched "$@")" != "$want" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "watched $(watched "$@") of $*, not $want"
		sleep 0.05
	done
}

# counts N: make both floods (spam, rspam) print their count, wait until
# each has printed N of them.
counts() {
	kill -USR1 "$spam" "$rspam" || fail "a flood is gone"
	for f in "$D/spam" "$D/rspam"; do
		i=0
		while [ "$(grep -c requests= "$f")" -lt "$1" ]; do
			i=$((i + 1))
			[ $i -lt 600 ] || fail "no count from $f"
			sleep 0.01
		done
	done
}

# count FILE N: the Nth count a flood printed.
count() {
	grep requests= "$1" | sed -n "$2s/.*requests=\([0-9]*\).*/\1/p"
}

# semval: semaphore 0 of the first set (primctl ipcs --json).
semval() {
	"$PRIMCTL" ipcs --sock "$S" --json >"$D/ipcs.json" || fail "ipcs"
	$PY -c 'import json, sys
print(json.load(open(sys.argv[1]))["semaphores"][0]["values"][0])' \
		"$D/ipcs.json"
}

S=$D/primd.sock
export PRIM_BROKER_SOCK=$S

case $PART in
conns)
	start_broker "$S"
	bg "$D/hold" $NOBODY "$FLOOD" "$S" hold 5000
	expect "nobody's 5000 connections" "open=256 closed=4744" \
		"$(cat "$D/hold")"
	out=$("$FLOOD" "$S" lat 100) ||
		fail "root's requests under 5000 connections: $out"
	echo "check_flood: conns: root under 5000 held connections:"
	echo "$out" | sed 's/^/    /'
	alive "5000 connections"
	stop_broker
	echo "check_flood: conns: nobody holds 256 of 5000, root served: ok"
	;;
table)
	# No per-uid bound: only the 64 slots kept for root are left.
	start_broker "$S" --quota-conns 100000
	bg "$D/hold" $NOBODY "$FLOOD" "$S" hold 5000
	expect "nobody's 5000 connections" "open=4032 closed=968" \
		"$(cat "$D/hold")"
	bg "$D/root" "$FLOOD" "$S" hold 63
	expect "root's 63 connections" "open=63 closed=0" "$(cat "$D/root")"
	out=$("$FLOOD" "$S" lat 100) ||
		fail "root's 64th connection, table full: $out"
	alive "a full table"
	stop_broker
	echo "check_flood: table: nobody fills 4032 slots, root its 64: ok"
	;;
shmmni)
	# Root may change its own IPC namespace's limits.
	echo 64 >/proc/sys/kernel/shmmni || fail "cannot set kernel.shmmni"
	[ "$(cat /proc/sys/kernel/shmmni)" = 64 ] || fail "shmmni not 64"
	# prim's share: 64 less a reserve of max(16, 64 / 8) = 48 ids; the
	# registry takes one, nobody at most half of 48. Small queues: this
	# part counts ids, not bytes.
	start_broker "$S" --msg-qbytes-max 16384 --msg-nslots 64
	out=$($NOBODY "$FLOOD" "$S" create msg) || fail "nobody: $out"
	expect "nobody's queues" "created=24 err=ENOSPC" "$out"
	out=$("$FLOOD" "$S" create msg 1) || fail "root: $out"
	expect "root's queue after nobody's ENOSPC" "created=1 err=0" "$out"
	out=$("$FLOOD" - shmget 16) || fail "kernel shmget: $out"
	expect "the kernel's shmget" "shmget=16" "$out"
	out=$("$FLOOD" "$S" create msg) || fail "root: $out"
	expect "root's queues to prim's share" "created=22 err=ENOSPC" "$out"
	n=$(awk 'NR > 1' /proc/sysvipc/shm | wc -l)
	[ "$n" = 48 ] || fail "$n segments in the namespace, not 48"
	out=$("$FLOOD" - shmget 16) || fail "kernel shmget, prim full: $out"
	expect "the kernel's shmget, prim's share used" "shmget=16" "$out"
	"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm"
	out=$($NOBODY "$FLOOD" "$S" create msg 1) || fail "nobody: $out"
	expect "nobody after the removal" "created=1 err=0" "$out"
	"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm"
	stop_broker
	echo "check_flood: shmmni: nobody 24 of 48, root the rest, the kernel its 16: ok"
	;;
requests)
	start_broker "$S"
	idle=$("$FLOOD" "$S" lat 300) || fail "root, idle: $idle"
	bg "$D/spam" $NOBODY "$FLOOD" "$S" spam 200
	expect "nobody's connections" "spam connections=200" \
		"$(cat "$D/spam")"
	spam=$BG
	busy=$("$FLOOD" "$S" lat 300) || fail "root under the flood: $busy"
	# The service each uid gets, over one second (a measurement): root
	# floods too, over one connection, as nobody does over 200.
	bg "$D/rspam" "$FLOOD" "$S" spam 1
	rspam=$BG
	counts 1
	sleep 1
	counts 2
	kill -0 "$spam" 2>/dev/null || fail "the flood stopped early"
	finish "$spam"
	finish "$rspam"
	# Every flooder read its replies: none was dropped.
	expect "nobody's connections at the end" "connections=200" \
		"$(tail -1 "$D/spam")"
	echo "check_flood: requests: root's latency, idle:"
	echo "$idle" | sed 's/^/    /'
	echo "check_flood: requests: root's latency under nobody's flood" \
		"over 200 connections:"
	echo "$busy" | sed 's/^/    /'
	n=$(($(count "$D/spam" 2) - $(count "$D/spam" 1)))
	r=$(($(count "$D/rspam" 2) - $(count "$D/rspam" 1)))
	echo "check_flood: requests: answered in 1 s, both flooding:" \
		"nobody (200 connections) $n, root (1 connection) $r"
	alive "the request flood"
	stop_broker
	echo "check_flood: requests: every root request answered: ok"
	;;
objects)
	start_broker "$S" --quota-objects 10
	out=$($NOBODY "$FLOOD" "$S" create sem) || fail "nobody: $out"
	expect "nobody's sets" "created=10 err=ENOSPC" "$out"
	seg=$(echo "$out" | sed -n 's/.*seg=//p')
	out=$($NOBODY "$FLOOD" "$S" create msg) || fail "nobody: $out"
	expect "nobody's queue (sets and queues together)" \
		"created=0 err=ENOSPC" "$out"
	out=$("$FLOOD" "$S" create sem 11) || fail "root: $out"
	expect "root's sets" "created=11 err=0" "$out"
	# A restarted broker charges what it adopts to the creator.
	kill -9 "$BPID"
	wait "$BPID" 2>/dev/null
	start_broker "$S" --quota-objects 10
	grep -q "adopted registry" "$LOG" || fail "registry not adopted"
	out=$($NOBODY "$FLOOD" "$S" create sem) || fail "nobody: $out"
	expect "nobody after a restart" "created=0 err=ENOSPC" "$out"
	"$PRIMCTL" ipcs --sock "$S" --json >"$D/ipcs.json" || fail "ipcs"
	id=$($PY -c 'import json, sys
print([o["id"] for o in json.load(open(sys.argv[1]))["semaphores"]
       if o["cuid"] == 65534][0])' "$D/ipcs.json") || fail "no set of nobody's"
	"$PRIMCTL" ipcrm --sock "$S" -s "$id" || fail "ipcrm -s $id"
	out=$($NOBODY "$FLOOD" "$S" create sem) || fail "nobody: $out"
	expect "nobody after a removal" "created=1 err=ENOSPC" "$out"
	"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm"
	stop_broker
	# Bytes: room for three and a half of nobody's sets.
	start_broker "$S" --quota-bytes $((seg * 7 / 2))
	out=$($NOBODY "$FLOOD" "$S" create sem) || fail "nobody: $out"
	expect "nobody's bytes" "created=3 err=ENOSPC" "$out"
	out=$("$FLOOD" "$S" create sem 5) || fail "root: $out"
	expect "root's sets over nobody's bytes" "created=5 err=0" "$out"
	"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm"
	stop_broker
	echo "check_flood: objects: --quota-objects, --quota-bytes, adoption: ok"
	;;
limits)
	# This part counts the broker's pidfds: under make check-valgrind,
	# whose valgrind (3.19) has no pidfd_open (PRIMD_WRAPPER_PIDFD=0), its
	# broker runs natively.
	[ "${PRIMD_WRAPPER_PIDFD:-1}" != 0 ] || W=
	start_broker "$S" --quota-conns 5 --quota-procs 3
	bg "$D/hold" $NOBODY "$FLOOD" "$S" hold 8
	expect "nobody's connections" "open=5 closed=3" "$(cat "$D/hold")"
	h=$BG
	bg "$D/root" "$FLOOD" "$S" hold 8
	expect "root's connections" "open=8 closed=0" "$(cat "$D/root")"
	r=$BG
	finish "$h"
	finish "$r"
	# Processes: each holds one connection (within the quota of 5, once
	# the broker has seen the holders above go).
	i=0
	until out=$($NOBODY "$FLOOD" "$S" create sem 1) &&
		[ "$out" != "${out#created=1 }" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "nobody's connections not released: $out"
		sleep 0.05
	done
	procs=
	for k in 1 2 3 4; do
		bg "$D/p$k" $NOBODY "$FLOOD" "$S" hold 1
		expect "nobody's process $k" "open=1 closed=0" \
			"$(cat "$D/p$k")"
		procs="$procs $BG"
	done
	until_watched 3 $procs
	fourth=$BG
	[ "$(watched "$fourth")" = 0 ] || fail "the 4th process is watched"
	bg "$D/rp" "$FLOOD" "$S" hold 1
	until_watched 1 "$BG"
	# Over its quota, a process is not watched, but its SEM_UNDO is
	# reaped by the owner sweep once it is dead.
	"$PRIMCTL" ipcs --sock "$S" --json >"$D/ipcs.json" || fail "ipcs"
	id=$($PY -c 'import json, sys
print(json.load(open(sys.argv[1]))["semaphores"][0]["id"])' "$D/ipcs.json")
	bg "$D/undo" $NOBODY "$T/prim_helper" "$S" undo "$id" 0 2 1
	expect "semop SEM_UNDO as nobody" "ready" "$(cat "$D/undo")"
	undo=$BG
	[ "$(semval)" = 2 ] || fail "semop SEM_UNDO: value $(semval), not 2"
	[ "$(watched "$undo")" = 0 ] || fail "a 5th process is watched"
	wait "$undo" || fail "prim_helper undo: $(cat "$D/undo")"
	i=0
	while [ "$(semval)" != 0 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "an unwatched process's SEM_UNDO was not reaped"
		sleep 0.05
	done
	# A death frees its entry for the next process.
	first=${procs# }
	first=${first%% *}
	finish "$first"
	procs=$(echo "$procs" | tr ' ' '\n' | grep -vx "$first" | tr '\n' ' ')
	until_watched 2 $procs
	bg "$D/p5" $NOBODY "$FLOOD" "$S" hold 1
	until_watched 3 $procs "$BG"
	alive "quotas at their limits"
	"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm"
	stop_broker
	echo "check_flood: limits: connections and processes at their quota: ok"
	;;
nofile)
	# This part counts the broker's descriptors: valgrind keeps some of
	# the 40 for itself, so under make check-valgrind its broker runs
	# natively.
	w=$W
	W="prlimit --nofile=40:40"
	start_broker "$S"
	W=$w
	grep -q "40 descriptors: at most 4 connections" "$LOG" ||
		fail "the tables are not sized to RLIMIT_NOFILE"
	bg "$D/hold" $NOBODY "$FLOOD" "$S" hold 60
	expect "nobody's 60 connections" "open=0 closed=60" "$(cat "$D/hold")"
	# A liveness bound, generous: a loop spinning on a readable
	# listener burns the whole 2 s.
	cpu() { awk '{ print $14 + $15 }' "/proc/$BPID/stat"; }
	c0=$(cpu)
	sleep 2
	c1=$(cpu)
	hz=$(getconf CLK_TCK)
	[ $((c1 - c0)) -lt $((hz / 2)) ] ||
		fail "the broker used $((c1 - c0)) ticks of CPU in 2 s (HZ $hz)"
	n=$(wc -l <"$LOG")
	[ "$n" -lt 50 ] || fail "$n lines in the broker's log"
	out=$("$FLOOD" "$S" lat 10) ||
		fail "root's requests at RLIMIT_NOFILE 40: $out"
	alive "RLIMIT_NOFILE 40"
	finish "$BG"
	stop_broker
	echo "check_flood: nofile: tables sized to 40 descriptors," \
		"$((c1 - c0)) ticks of CPU in 2 s, $n log lines: ok"
	;;
*)
	fail "unknown part"
	;;
esac
exit 0
