#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Credentials are the current ones, differential against the kernel:
# $B/conform/creds runs as root, makes objects with several modes, uses
# them (libsysv caches them, judged as root), then forks children that
# change credentials in every way libsysv interposes (setuid, seteuid and
# back, setreuid, setresuid, setgid with setgroups, setgroups alone,
# setegid, initgroups, capset, exec after a drop) and try every operation
# on every object. Three runs, each in a fresh IPC namespace:
#   kernel   plainly;
#   preload  LD_PRELOAD, with a private root broker in a 0755 directory
#            (a root broker makes its socket 0666), so that a child that
#            dropped to nobody still reaches it;
#   primctl  `primctl run` with no socket named, in a private mount
#            namespace whose /run is a fresh tmpfs: root's run must use
#            the system socket /run/prim/primd-ipc-<ns>.sock, make
#            /run/prim 0755, and the children that drop to nobody must
#            reach it.
# The three outputs must be identical.
#
# Needs root; under a user namespace IPCNS, or when not root, it says so
# and skips (make check runs as root).
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
KEY=0x43520000
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv, here and by primctl run.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_creds: FAIL: $*" >&2
	exit 1
}

wait_sock() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ "$i" -le 200 ] || return 1
		sleep 0.05
	done
}

if [ "${1:-}" = --inner ]; then
	mode=$2
	out=$3
	prog=$B/conform/creds
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_creds_ns.XXXXXX")
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
	unset PRIM_BROKER_SOCK XDG_RUNTIME_DIR
	case "$mode" in
	kernel)
		timeout 120 "$prog" "$KEY" >"$out" 2>&1
		;;
	preload)
		chmod 0755 "$dir"
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		wait_sock "$dir/sock" || fail "the broker made no socket"
		PRIM_BROKER_SOCK=$dir/sock LD_PRELOAD=$B/libsysv.so$POST \
			timeout 120 "$prog" "$KEY" >"$out" 2>&1
		;;
	primctl)
		# Only this namespace sees this /run.
		mount -n -t tmpfs -o mode=0755 tmpfs /run ||
			fail "cannot mount a private /run"
		# Its socket and broker are looked at while the run holds
		# them (after it, the broker may be gone idle).
		ns=$(stat -L -c %i /proc/self/ns/ipc)
		s=/run/prim/primd-ipc-$ns.sock
		PRIM_IDLE_EXIT=2 timeout 120 $RUNPRE "$B/primctl" run -- sh -c \
			"\"$prog\" $KEY; stat -c %a /run/prim $s >$dir/modes;
			\"$B/primctl\" status >$dir/status" >"$out" 2>&1
		bpid=$(sed -n 's/^broker: running (pid \([0-9]*\).*/\1/p' "$dir/status")
		[ -n "$bpid" ] || fail "no broker answered on $s during the run"
		[ "$(head -n 1 "$dir/status")" = "socket: $s" ] ||
			fail "root's run did not use $s: $(cat "$dir/status")"
		[ "$(tr '\n' ' ' <"$dir/modes")" = "755 666 " ] ||
			fail "/run/prim and $s are $(cat "$dir/modes"), not 755 666"
		;;
	esac
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "check_creds: SKIP: needs root to change credentials (uid $(id -u))"
	exit 0
fi
case "$IPCNS" in
*-U* | *--user*)
	echo "check_creds: SKIP: IPCNS='$IPCNS' is a user namespace where" \
		"uid 65534 is not mapped"
	exit 0
	;;
esac
[ -x "$B/conform/creds" ] || fail "$B/conform/creds not built"
for f in "$B/libsysv.so" "$B/primd" "$B/primctl"; do
	[ -e "$f" ] || fail "$f not built"
done
setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$B/conform/creds" ||
	fail "uid 65534 cannot run $B/conform/creds (directory permissions)"
MNTNS="$IPCNS --mount --propagation private"
$MNTNS true || fail "cannot unshare a mount namespace ($MNTNS)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_creds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

for mode in kernel preload primctl; do
	ns=$IPCNS
	[ "$mode" = primctl ] && ns=$MNTNS
	$ns sh "$0" --inner "$mode" "$tmp/$mode.out" || {
		tail -n 5 "$tmp/$mode.out" >&2 2>/dev/null || :
		fail "$mode run failed"
	}
	echo "check_creds: $mode: $(grep -c . "$tmp/$mode.out") lines"
done
grep -q '^creds: done$' "$tmp/kernel.out" || {
	tail -n 5 "$tmp/kernel.out" >&2
	fail "the kernel run did not finish: the test is broken"
}
if grep -q 'SETUP FAILED\|child status' "$tmp/kernel.out"; then
	grep 'SETUP FAILED\|child status' "$tmp/kernel.out" >&2
	fail "the kernel run hit a setup failure: the test is broken"
fi
grep -q '^setuid obj0 0600 msg: snd=-1 EACCES' "$tmp/kernel.out" &&
	grep -q '^setuid obj5 0666 msg: snd=0 rcv=4' "$tmp/kernel.out" ||
	fail "the kernel run did not refuse 0600 and allow 0666 to nobody"
status=0
for mode in preload primctl; do
	if diff -u "$tmp/kernel.out" "$tmp/$mode.out" >"$tmp/$mode.diff"; then
		echo "check_creds: $mode: identical to the kernel"
	else
		echo "check_creds: $mode differs from the kernel" \
			"(- kernel, + $mode):" >&2
		cat "$tmp/$mode.diff" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] || fail "credential changes differ from the kernel"
echo "check_creds: ok ($(grep -c . "$tmp/kernel.out") lines identical" \
	"to the kernel, twice)"
