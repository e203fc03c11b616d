#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Randomized differential test: $B/conform/difftest (plain libc; a seeded
# program of semget/semop/semtimedop/semctl/msgget/msgsnd/msgrcv/msgctl
# calls, one line per call) runs the same seeds twice, each in a fresh IPC
# namespace:
#   kernel  plainly, against the kernel's System V IPC (the oracle);
#   prim    with LD_PRELOAD=$B/libsysv.so and a private broker
#           ($B/primd -s DIR/sock, PRIM_BROKER_SOCK=DIR/sock), its socket
#           open to every uid for mode c's children.
# The outputs must be identical: any difference fails, and the first
# differing line is printed with its seed. A run that does not finish
# fails too, and so does a missing precondition (no skip).
#
# Usage (make check runs it from the top of the tree, with no arguments):
#   B=build IPCNS="unshare --ipc" sh tests/check_difftest.sh
#       the short runs of DIFFTEST_RUNS (MODE:SEED:COUNT ...), with the
#       generator's -x DIFFTEST_EXCL (the known divergences, see below)
#   sh tests/check_difftest.sh --long [COUNT]
#       COUNT seeds (default 2000) of each mode, batches of 50; prints
#       "N seeds, M divergent" and each divergent seed's first differing
#       line (re-run alone to confirm); exits 1 if any diverged
#   sh tests/check_difftest.sh --pair DIR DIFFTEST-ARGS...
#       one pair of runs: DIR/kernel.out, DIR/prim.out; exit 0 if they are
#       identical (the shrinker's oracle)
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
TIMEOUT=${DIFFTEST_TIMEOUT:-300}
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
W=${PRIMD_WRAPPER:-}
PROG=${DIFFTEST_PROG:-$B/conform/difftest}
# The known divergences (issue 10 items 4, 5, 8; libsysv(7) BUGS) that the
# short run leaves out; README of tests/check_difftest.sh below. otime,
# ncnt and nowaitbg match the kernel since the semaphore retry fixes, and
# msgcopy since MSG_COPY is done, and are tested.
EXCL_KNOWN=${DIFFTEST_EXCL-lspid,multiwait,sigstop,proxy}
RUNS=${DIFFTEST_RUNS:-a:1:100 b:1:90 c:1:70}
# What the short run must have made at least once (else it fails: a test
# that no longer exercises a call cannot fail on it).
COVER="semget semop~ semtimedop msgget msgsnd msgrcv
semctl*~IPC_STAT semctl*~IPC_SET semctl*~IPC_RMID semctl*~GETVAL
semctl*~SETVAL semctl*~GETALL semctl*~SETALL semctl*~GETPID semctl*~GETNCNT
semctl*~GETZCNT semctl*~IPC_INFO semctl*~SEM_INFO semctl*~SEM_STAT~
semctl*~SEM_STAT_ANY msgctl*~IPC_STAT msgctl*~IPC_SET msgctl*~IPC_RMID
msgctl*~IPC_INFO msgctl*~MSG_INFO msgctl*~MSG_STAT~ msgctl*~MSG_STAT_ANY
CREAT EXCL NOWAIT UNDO NOERROR EXCEPT COPY typ=- ptr=NULL ptr=1 tmo=badptr
tmo=nsec-1 nsops=0 nsops=SEMOPM~ nsops=SEMOPM+1 nsems=32001 nsems=0 val=32767
val=32768 +32767 -32768 sz=0 sz=8193 badid semop~-1 msgsnd~-1 idx=-1
-1~EFAULT -1~EINTR -1~EIDRM -1~EACCES -1~EPERM -1~E2BIG -1~ERANGE -1~EFBIG
-1~EINVAL -1~EEXIST -1~ENOENT -1~ENOMSG -1~EAGAIN
bg:~blocks woke: signalled: reap~C*~kill reap~C*~exit (was~waiting)
spawn~C*~uid=65534 spawn~C*~uid=1000 sig~C"
STEPS=${DIFFTEST_STEPS:-40}

fail() {
	echo "check_difftest: FAIL: $*" >&2
	exit 1
}

wait_sock() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || return 1
		sleep 0.1
	done
}

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
	side=$2
	out=$3
	shift 3
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_difftest_ns.XXXXXX")
	bpid=
	cleanup() {
		if [ -n "$bpid" ]; then
			kill "$bpid" 2>/dev/null || :
			wait "$bpid" 2>/dev/null || :
		fi
		for p in $(brokers_on "$dir/sock"); do
			kill "$p" 2>/dev/null || :
		done
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	case "$side" in
	kernel)
		timeout "$TIMEOUT" "$PROG" "$@" >"$out" 2>&1
		;;
	prim)
		chmod 0755 "$dir"
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		wait_sock "$dir/sock" || {
			echo "check_difftest: the broker made no socket" >&2
			exit 1
		}
		chmod 0666 "$dir/sock"
		PRIM_BROKER_SOCK=$dir/sock LD_PRELOAD=$B/libsysv.so$POST \
			timeout "$TIMEOUT" "$PROG" "$@" >"$out" 2>&1
		;;
	esac
	exit 0
fi

[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
[ "$(id -u)" -eq 0 ] || fail "needs root (mode c's children change uid)"
[ -x "$PROG" ] || fail "$PROG not built"
for f in "$B/libsysv.so" "$B/primd"; do
	[ -e "$f" ] || fail "$f not built"
done
$IPCNS true || fail "cannot run $IPCNS"

# pair DIR ARGS...: both sides of one run; 0 if identical and finished.
pair() {
	d=$1
	shift
	st=0
	$IPCNS sh "$0" --inner kernel "$d/kernel.out" "$@" || st=1
	$IPCNS sh "$0" --inner prim "$d/prim.out" "$@" || st=1
	grep -q '^difftest: done$' "$d/kernel.out" || {
		echo "check_difftest: the kernel run did not finish:" \
			"the test is broken ($*)" >&2
		tail -n 3 "$d/kernel.out" | sed 's/^/  /' >&2
		return 2
	}
	if grep -q 'TIMEOUT\|DIED\|NO ANSWER\|FAILED' "$d/kernel.out"; then
		echo "check_difftest: the kernel run lost a child:" \
			"the test is broken ($*)" >&2
		grep 'TIMEOUT\|DIED\|NO ANSWER\|FAILED' "$d/kernel.out" |
			head -n 3 | sed 's/^/  /' >&2
		return 2
	fi
	cmp -s "$d/kernel.out" "$d/prim.out" && [ "$st" -eq 0 ]
}

# first_diff DIR: "seed S: - kernel line / + prim line" of the first
# differing line.
first_diff() {
	awk '
	FNR == NR { k[FNR] = $0; nk = FNR; next }
	{ p[FNR] = $0; np = FNR }
	END {
		n = nk > np ? nk : np
		seed = "?"
		for (i = 1; i <= n; i++) {
			if (k[i] ~ /^(seed|script) /)
				seed = k[i]
			if (k[i] != p[i]) {
				printf "%s, line %d:\n  - %s\n  + %s\n", seed, i,
				    (i in k) ? k[i] : "(end of output)",
				    (i in p) ? p[i] : "(end of output)"
				exit
			}
		}
	}' "$1/kernel.out" "$1/prim.out"
}

if [ "${1:-}" = --pair ]; then
	d=$2
	shift 2
	pair "$d" "$@"
	exit $?
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_difftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

xopt() {
	if [ -n "$EXCL_KNOWN" ]; then
		echo "-x $EXCL_KNOWN"
	fi
}

if [ "${1:-}" = --long ]; then
	count=${2:-2000}
	batch=${DIFFTEST_BATCH:-50}
	total=0
	bad=0
	for m in ${DIFFTEST_MODES:-a b c}; do
		s=1
		while [ "$s" -le "$count" ]; do
			n=$batch
			[ $((s + n - 1)) -le "$count" ] || n=$((count - s + 1))
			st=0
			# shellcheck disable=SC2046
			pair "$tmp" -m "$m" -s "$s" -c "$n" -n "$STEPS" $(xopt) || st=$?
			[ "$st" -ne 2 ] || fail "kernel run broken at mode $m seed $s"
			if [ "$st" -eq 0 ]; then
				total=$((total + n))
				s=$((s + n))
				continue
			fi
			# The first divergent seed of the batch: confirm alone.
			ds=$(first_diff "$tmp" | sed -n 's/^seed \([0-9]*\) .*/\1/p')
			[ -n "$ds" ] || ds=$s
			total=$((total + ds - s + 1))
			st=0
			# shellcheck disable=SC2046
			pair "$tmp" -m "$m" -s "$ds" -n "$STEPS" $(xopt) || st=$?
			if [ "$st" -ne 0 ]; then
				bad=$((bad + 1))
				echo "DIVERGENT mode $m seed $ds:"
				first_diff "$tmp" | sed 's/^/  /'
			else
				echo "check_difftest: mode $m seed $ds diverged" \
					"only in its batch (state from an earlier seed)"
				bad=$((bad + 1))
				echo "DIVERGENT mode $m seed $ds (in batch from $s only)"
			fi
			s=$((ds + 1))
		done
	done
	echo "$total seeds, $bad divergent"
	[ "$bad" -eq 0 ]
	exit $?
fi

# ---- the short run of make check -----------------------------------------
status=0
: >"$tmp/all.out"
for r in $RUNS; do
	m=${r%%:*}
	rest=${r#*:}
	s=${rest%%:*}
	n=${rest#*:}
	st=0
	# shellcheck disable=SC2046
	pair "$tmp" -m "$m" -s "$s" -c "$n" -n "$STEPS" $(xopt) || st=$?
	lines=$(grep -c . "$tmp/kernel.out" || :)
	cat "$tmp/kernel.out" >>"$tmp/all.out"
	if [ "$st" -eq 0 ]; then
		echo "check_difftest: mode $m seeds $s..$((s + n - 1)):" \
			"$lines lines identical to the kernel"
		continue
	fi
	[ "$st" -ne 2 ] || fail "mode $m: the kernel run is broken"
	echo "check_difftest: mode $m seeds $s..$((s + n - 1)) differ" \
		"from the kernel (- kernel, + prim), first at" >&2
	first_diff "$tmp" | sed 's/^/  /' >&2
	status=1
done
missing=
set -f
for c in $COVER; do
	# ~ stands for a blank, * for any run of characters.
	pat=$(printf '%s' "$c" | sed 's/~/ /g; s/\*/.*/g')
	grep -q -- "$pat" "$tmp/all.out" || missing="$missing $c"
done
[ -z "$missing" ] || {
	echo "check_difftest: the short run never made:$missing" >&2
	status=1
}
[ "$status" -eq 0 ] || fail "libsysv differs from the kernel, or the run" \
	"does not cover every call (see above)"
echo "check_difftest: ok ($(grep -c . "$tmp/all.out") lines, every call" \
	"and flag of the list made)"
