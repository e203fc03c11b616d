#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Finding the broker is safe (libsysv(7), "The broker's socket"): sockets
# planted where a victim looks are refused by libsysv (ENOSYS, and the
# planted broker receives nothing) and by primctl, which says why. In a
# private IPC and mount namespace whose /tmp and /run are fresh tmpfs, so
# that nothing planted here is seen outside:
#   - uid 65534 makes /tmp/prim-4244 and a fake broker in it, where uid
#     4244 (no XDG_RUNTIME_DIR) looks by default;
#   - root, with PRIM_BROKER_SOCK in a directory of uid 65534;
#   - a directory of the victim's that its group or others may write
#     (0775, 1777), a symbolic link to a good one, a good directory inside
#     one of another user's;
#   - a good directory, but the broker in it runs as uid 65534 (the fake
#     sees a connection, never a byte);
# then, as a control, uid 4244's own `primctl run` on its default path
# works and makes /tmp/prim-4244 0700.
#
# Needs root (to be three users); when not root, or under a user
# namespace IPCNS, it says so and skips (make check runs as root).
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NB="setpriv --reuid=65534 --regid=65534 --clear-groups"
V="setpriv --reuid=4244 --regid=4244 --clear-groups"
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv, here and by primctl run.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}

fail() {
	echo "check_discovery: FAIL: $*" >&2
	exit 1
}

if [ "${1:-}" = --inner ]; then
	pids=
	cleanup() {
		for p in $pids; do
			kill "$p" 2>/dev/null || :
		done
		wait 2>/dev/null || :
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	# Copies of the programs where every uid may run them, then a /tmp
	# of our own (the programs may have been built under /tmp).
	mount -n -t tmpfs -o mode=0755 tmpfs /run || fail "cannot mount /run"
	mkdir /run/b
	cp "$B/primctl" "$B/primd" "$B/libsysv.so" "$B/conform/creds" /run/b/
	mount -n -t tmpfs -o mode=1777 tmpfs /tmp || fail "cannot mount /tmp"
	B=/run/b
	mkdir -m 1777 /tmp/logs
	ns=$(stat -L -c %i /proc/self/ns/ipc)
	unset PRIM_BROKER_SOCK XDG_RUNTIME_DIR
	export PRIM_BROKER_WAIT=200

	# fake WHO SOCK NAME: a listener on SOCK, as WHO, that logs every
	# connection and every byte it receives to /tmp/logs/NAME.
	fake() {
		$1 "$PY" -c '
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
os.chmod(path, 0o666)
s.listen(8)
open(log + ".ready", "w").close()
while True:
    c, _ = s.accept()
    open(log, "a").write("connection\n")
    while True:
        d = c.recv(65536)
        if not d:
            break
        open(log, "a").write("data %d\n" % len(d))
    c.close()
' "$2" "/tmp/logs/$3" &
		pids="$pids $!"
		i=0
		while [ ! -e "/tmp/logs/$3.ready" ]; do
			i=$((i + 1))
			[ $i -lt 200 ] || fail "the fake broker $3 did not start"
			sleep 0.05
		done
	}
	# refused NAME WHY [AS...]: the victim AS (default root) gets ENOSYS
	# from libsysv, primctl status says WHY, primctl run refuses; the
	# fake NAME received nothing (no connection; "data" never).
	refused() {
		name=$1 why=$2
		shift 2
		st=0
		out=$(timeout 30 "$@" env LD_PRELOAD="$B/libsysv.so$POST" \
			"$B/creds" try 2>&1) || st=$?
		[ $st -eq 0 ] || fail "$name: creds try exited $st" \
			"(124: it hung on the planted broker): $out"
		[ "$out" = "try: semget=-1 ENOSYS msgget=-1 ENOSYS" ] ||
			fail "$name: libsysv used the socket: $out"
		out=$(timeout 30 "$@" "$B/primctl" status 2>&1) &&
			fail "$name: primctl status succeeded: $out"
		case $out in
		*"broker: refused: "*"$why"*) ;;
		*) fail "$name: primctl status: $out (expected: $why)" ;;
		esac
		out=$(timeout 30 "$@" $RUNPRE "$B/primctl" run -- true 2>&1) &&
			fail "$name: primctl run succeeded: $out"
		case $out in
		*"refusing the broker socket"*"$why"*) ;;
		*) fail "$name: primctl run: $out (expected: $why)" ;;
		esac
		if grep -q data "/tmp/logs/$name" 2>/dev/null; then
			fail "$name: the planted broker received a request"
		fi
		echo "check_discovery: $name: refused ($why): ok"
	}

	# 1. The victim's default path, planted by nobody.
	$NB mkdir -m 0755 /tmp/prim-4244
	fake "$NB" "/tmp/prim-4244/primd-ipc-$ns.sock" planted
	refused planted "/tmp/prim-4244 belongs to uid 65534, neither root nor you (uid 4244)" $V
	[ ! -e /tmp/logs/planted ] || fail "planted: the victim connected"

	# 2. Root, with PRIM_BROKER_SOCK in nobody's directory.
	$NB mkdir -m 0700 /tmp/evil
	fake "$NB" /tmp/evil/sock evil
	PRIM_BROKER_SOCK=/tmp/evil/sock
	export PRIM_BROKER_SOCK
	refused evil "/tmp/evil belongs to uid 65534, neither root nor you (uid 0)"
	[ ! -e /tmp/logs/evil ] || fail "evil: root connected"

	# 3. The victim's own directory, writable by its group, or by all
	#    (sticky or not, as /tmp itself).
	for m in 0775 1777 0757; do
		d=/tmp/gw$m
		$V mkdir -m 0700 $d
		fake "$V" $d/sock gw$m
		chmod $m $d
		PRIM_BROKER_SOCK=$d/sock
		refused gw$m "$d is writable by its group or others (mode $m)" $V
		[ ! -e /tmp/logs/gw$m ] || fail "gw$m: the victim connected"
	done

	# 4. A symbolic link to a good directory; a good directory inside
	#    another user's.
	$V mkdir -m 0700 /tmp/good
	fake "$V" /tmp/good/sock good
	ln -s /tmp/good /tmp/link
	PRIM_BROKER_SOCK=/tmp/link/sock
	refused link "/tmp/link is a symbolic link, not a directory" $V
	$NB mkdir -m 0755 /tmp/nobodys
	mkdir -m 0700 /tmp/nobodys/v
	chown 4244:4244 /tmp/nobodys/v
	fake "$V" /tmp/nobodys/v/sock inside
	PRIM_BROKER_SOCK=/tmp/nobodys/v/sock
	refused inside "/tmp/nobodys/v is inside /tmp/nobodys, which another user could replace" $V
	[ ! -e /tmp/logs/link ] && [ ! -e /tmp/logs/good ] &&
		[ ! -e /tmp/logs/inside ] || fail "link/inside: the victim connected"

	# 5. A good directory of the victim's, but nobody's broker in it:
	#    refused after connecting (SO_PEERCRED), before a byte is sent.
	mkdir -m 0755 /tmp/peer
	chown 65534 /tmp/peer
	fake "$NB" /tmp/peer/sock peer
	chown 4244 /tmp/peer
	PRIM_BROKER_SOCK=/tmp/peer/sock
	refused peer "the broker on /tmp/peer/sock runs as uid 65534, neither root nor you (uid 4244)" $V
	grep -q connection /tmp/logs/peer ||
		fail "peer: the victim never connected: the test is broken"

	# 6. The control: the victim's own default path, made by its run.
	unset PRIM_BROKER_SOCK
	rm -rf /tmp/prim-4244
	#    Its broker is looked at while the run holds it.
	out=$(PRIM_IDLE_EXIT=1 timeout 60 $V $RUNPRE "$B/primctl" run -- sh -c \
		"$B/creds try && $B/primctl status" 2>&1) ||
		fail "the victim's own run failed: $out"
	bp=$(echo "$out" | sed -n 's/^broker: running (pid \([0-9]*\), uid 4244).*/\1/p')
	[ -n "$bp" ] || fail "the victim's run has no broker of its own: $out"
	pids="$pids $bp"
	[ "$(echo "$out" | head -n 1)" = "try: semget=id msgget=id" ] ||
		fail "the victim's own run: $out"
	[ "$(stat -c '%a %u' /tmp/prim-4244)" = "700 4244" ] ||
		fail "/tmp/prim-4244 is $(stat -c '%a %u' /tmp/prim-4244)"
	echo "check_discovery: the victim's own default path: ok"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "check_discovery: SKIP: needs root to be three users (uid $(id -u))"
	exit 0
fi
case "$IPCNS" in
*-U* | *--user*)
	echo "check_discovery: SKIP: IPCNS='$IPCNS' is a user namespace"
	exit 0
	;;
esac
for f in "$B/libsysv.so" "$B/primd" "$B/primctl" "$B/conform/creds"; do
	[ -e "$f" ] || fail "$f not built"
done
MNTNS="$IPCNS --mount --propagation private"
$MNTNS sh "$0" --inner || fail "see above"
echo "check_discovery: ok"
