#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# primctl run stays the parent of the program (primctl(1)): in a private
# IPC namespace, with a private socket and brokers that exit after one
# idle second (PRIM_IDLE_EXIT=1):
#   - a program that makes its first call after the broker would have
#     gone idle (sh -c 'sleep 3; prog') is served;
#   - the broker killed with SIGKILL while the program runs is started
#     again, and the program's later calls see the objects it made before;
#   - a daemon that forks twice and calls setsid keeps primctl waiting
#     until it exits, and is served after the program exited;
#   - the program's exit status and the signal that killed it are
#     primctl's; signals sent to primctl reach the program.
# No timing is asserted: every wait is for an event, bounded.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
# make check-asan, check-tsan (scripts/sanitize.sh): primctl run preloads
# the sanitizer's runtime after libsysv.
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}

fail() {
	echo "check_run: FAIL: $*" >&2
	[ -z "${S:-}" ] || [ ! -s "$S.log" ] || sed 's/^/  log: /' "$S.log" >&2
	exit 1
}

if [ "${1:-}" != --inner ]; then
	[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
	for f in "$B/libsysv.so" "$B/primd" "$B/primctl" "$B/conform/creds"; do
		[ -e "$f" ] || fail "$f not built"
	done
	exec $IPCNS sh "$0" --inner
fi

d=$(mktemp -d "${TMPDIR:-/tmp}/prim_run.XXXXXX")
S=$d/sock
PRIMCTL=$B/primctl
CREDS=$B/conform/creds
pids=
cleanup() {
	for p in $pids $(broker_pid); do
		kill "$p" 2>/dev/null || :
	done
	wait 2>/dev/null || :
	rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export PRIM_IDLE_EXIT=1 PRIM_BROKER_WAIT=30000
unset PRIM_BROKER_SOCK

# broker_pid: the pid of the broker answering on $S, or nothing.
broker_pid() {
	"$PRIMCTL" status -s "$S" 2>/dev/null |
		sed -n 's/^broker: running (pid \([0-9]*\).*/\1/p'
}

# until_file FILE: wait (bounded) for FILE to exist.
until_file() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ $i -lt 1200 ] || fail "waited too long for $1"
		sleep 0.05
	done
}

# 1. The first call comes after the idle time: primctl's own connection
#    kept the broker.
out=$($RUNPRE "$PRIMCTL" run -s "$S" -- sh -c "sleep 3; $CREDS try" 2>&1) ||
	fail "sleep 3; prog: $out"
[ "$out" = "try: semget=id msgget=id" ] || fail "sleep 3; prog: $out"
echo "check_run: a call after the idle time is served: ok"

# 2. SIGKILL of the broker while the program runs.
#    The brokers are looked at while the run holds them (after it, they
#    may be gone idle).
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c "$CREDS keep 0x52554e00 7 &&
	touch $d/kept && while [ ! -e $d/go ]; do sleep 0.05; done &&
	$CREDS check 0x52554e00 && touch $d/checked &&
	while [ ! -e $d/done ]; do sleep 0.05; done" >"$d/restart.out" 2>&1 &
run=$!
pids="$pids $run"
until_file "$d/kept"
old=$(broker_pid)
[ -n "$old" ] || fail "no broker during the run"
kill -9 "$old"
touch "$d/go"
until_file "$d/checked"
new=$(broker_pid)
touch "$d/done"
wait "$run" || fail "the run after kill -9 of the broker exited $?: $(cat "$d/restart.out")"
grep -qx 'check: semget=id GETVAL=7 msgget=id msg=kept semrm=0 msgrm=0' \
	"$d/restart.out" || fail "after kill -9 of the broker: $(cat "$d/restart.out")"
[ -n "$new" ] && [ "$new" != "$old" ] ||
	fail "the broker was not started again (pid $old, now '$new')"
echo "check_run: a broker killed during the run is started again: ok"

# 3. A daemon: forks twice, setsid, outlives the program, uses IPC.
st=0
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c "( setsid sh -c 'sleep 2;
	$CREDS try >$d/daemon.out 2>&1' & ); exit 3" || st=$?
[ $st -eq 3 ] || fail "the daemon's parent's status 3 became $st"
[ -s "$d/daemon.out" ] || fail "primctl did not wait for the daemon"
[ "$(cat "$d/daemon.out")" = "try: semget=id msgget=id" ] ||
	fail "the daemon was not served: $(cat "$d/daemon.out")"
echo "check_run: a daemon keeps primctl waiting, and is served: ok"

# 4. Exit status and signal death.
st=0
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c 'exit 7' || st=$?
[ $st -eq 7 ] || fail "exit 7 became $st"
st=0
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c 'kill -KILL $$' || st=$?
[ $st -eq 137 ] || fail "death by SIGKILL became $st, not 137"
st=0
$RUNPRE "$PRIMCTL" run -s "$S" -- /nonexistent/program 2>/dev/null || st=$?
[ $st -eq 127 ] || fail "a missing program gave $st, not 127"
echo "check_run: exit status and signal death pass through: ok"

# 5. Signals to primctl reach the program: USR1 (handled), then TERM.
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c "trap 'exit 42' USR1; touch $d/usr1;
	while :; do sleep 0.05; done" &
run=$!
pids="$pids $run"
until_file "$d/usr1"
kill -USR1 "$run"
st=0
wait "$run" || st=$?
[ $st -eq 42 ] || fail "SIGUSR1 to primctl: the program exited $st, not 42"
$RUNPRE "$PRIMCTL" run -s "$S" -- sh -c "touch $d/term; while :; do sleep 0.05; done" &
run=$!
pids="$pids $run"
until_file "$d/term"
kill -TERM "$run"
st=0
wait "$run" || st=$?
[ $st -eq 143 ] || fail "SIGTERM to primctl: exit $st, not 143 (death by TERM)"
echo "check_run: signals to primctl reach the program: ok"
echo "check_run: ok"
