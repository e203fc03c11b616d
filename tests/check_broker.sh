#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The broker and primctl, end to end, in a private IPC namespace with a
# private socket: start-up and the one-broker rule, the error rules of
# every request (as root and as nobody), malformed and random datagrams,
# re-adoption of every object (values and messages) by a new broker after
# kill -9, reaping of a dead client's SEM_UNDO, --idle-exit, and primctl
# run/ipcs/ipcrm/status. Exits non-zero on the first failure.
#
#   B=build IPCNS="unshare --ipc" sh tests/check_broker.sh
set -u

B=${B:-build}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd -P)

if [ -z "${PRIM_CHECK_BROKER_INSIDE:-}" ]; then
	if [ -z "${IPCNS:-}" ]; then
		echo "check_broker: SKIP: cannot unshare an IPC namespace"
		exit 0
	fi
	PRIM_CHECK_BROKER_INSIDE=1 exec $IPCNS sh "$0" "$@"
fi

case $B in /*) ;; *) B=$(pwd -P)/$B ;; esac
PRIMD=$B/primd
PRIMCTL=$B/primctl
# make check-asan, check-tsan (scripts/sanitize.sh): primctl run preloads
# the sanitizer's runtime after libsysv.
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3	# nobody cannot use ~root's

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_broker.XXXXXX") || exit 1
chmod 755 "$tmp"
S=$tmp/primd.sock
PRIM_BROKER_SOCK=$S
export PRIM_BROKER_SOCK
BPID=
EXTRA_PIDS=

cleanup() {
	for p in $BPID $EXTRA_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "check_broker: FAIL: $*" >&2
	if [ -s "$tmp/primd.log" ]; then
		echo "--- primd log:" >&2
		tail -20 "$tmp/primd.log" >&2
	fi
	exit 1
}

for f in "$PRIMD" "$PRIMCTL"; do
	[ -x "$f" ] || fail "$f not built (make $f)"
done
cp "$here/broker/client.py" "$tmp/client.py" && chmod 644 "$tmp/client.py"
${CC:-cc} -std=gnu11 -D_GNU_SOURCE -I"$top/include" -I"$top/prim" \
	-I"$top/broker" ${CFLAGS:-} -o "$tmp/prim_helper" \
	"$here/broker/prim_helper.c" "$B/libprim.a" -lck -lpthread || fail "cannot build prim_helper"
chmod 755 "$tmp/prim_helper"

CL="$PY $tmp/client.py"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
HELPER=$tmp/prim_helper
can_nobody=0
if [ "$(id -u)" = 0 ] && $NOBODY true 2>/dev/null; then
	can_nobody=1
fi

# check DESC PATTERN CMD...: run CMD, its output must contain PATTERN.
check() {
	desc=$1 pat=$2
	shift 2
	out=$("$@" 2>&1)
	case $out in
	*"$pat"*) ;;
	*) fail "$desc: expected '$pat', got: $out" ;;
	esac
}

# req ARGS...: one request; prints "err=... id=... shmid=... ...".
req() {
	$CL "$S" req "$@"
}

# field NAME LINE: value of NAME=... in LINE.
field() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

# start_broker SOCK ARGS...: start primd, wait until it answers.
start_broker() {
	sock=$1
	shift
	$W "$PRIMD" -s "$sock" "$@" >>"$tmp/primd.log" 2>&1 &
	BPID=$!
	i=0
	while ! "$PRIMCTL" status -s "$sock" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 250 ] || fail "primd did not answer on $sock"
		kill -0 "$BPID" 2>/dev/null || fail "primd exited at start"
		sleep 0.02
	done
}

alive() {
	kill -0 "$BPID" 2>/dev/null || fail "primd died ($*)"
}

# json EXPR: evaluate a Python expression over `primctl ipcs --json` (j).
json() {
	"$PRIMCTL" ipcs --sock "$S" --json >"$tmp/ipcs.json" ||
		fail "primctl ipcs --json failed"
	$PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" \
		"$tmp/ipcs.json"
}

# ---------------------------------------------------------------- start
start_broker "$S" --semmni 4 --semmsl 250 --msgmni 4 \
	--msg-qbytes-max 32768 --msg-nslots 64
check "status" "broker: running" "$PRIMCTL" status -s "$S"
mode=$(stat -c %a "$S")
[ "$mode" = 666 ] || [ "$(id -u)" != 0 ] || fail "socket mode $mode, not 666"
$W "$PRIMD" -s "$S" >"$tmp/second.out" 2>&1
st=$?
[ $st -eq 3 ] || fail "a second primd on the same socket exited $st, not 3"
grep -q "another broker" "$tmp/second.out" || fail "second primd: no message"
alive "second primd"
echo "check_broker: start, one broker per socket: ok"

# ---------------------------------------------------------------- GET
check "HELLO" "limits=[250, " req HELLO 0
r=$(req GET sem key=0x100 flags=0o1600 nsems=2)
case $r in err=0*) ;; *) fail "create sem 0x100: $r" ;; esac
SEM=$(field id "$r")
check "EEXIST precedes the nsems check" "err=EEXIST" \
	req GET sem key=0x100 flags=0o3600 nsems=3
check "nsems > existing" "err=EINVAL" req GET sem key=0x100 nsems=3
check "nsems 0 for an existing set" "err=0 id=$SEM" req GET sem key=0x100
check "nsems < 0 first" "err=EINVAL" req GET sem key=0x100 nsems=-1 \
	flags=0o3000
check "nsems > SEMMSL" "err=EINVAL" req GET sem key=0x101 nsems=251 \
	flags=0o1000
check "create with nsems 0" "err=EINVAL" req GET sem key=0x101 flags=0o1000
check "missing key" "err=ENOENT" req GET sem key=0x101 nsems=1
p1=$(field id "$(req GET sem key=0 flags=0o3600 nsems=1)")
p2=$(field id "$(req GET sem key=0 flags=0o600 nsems=1)")
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ] && [ "$p1" -ge 0 ] ||
	fail "IPC_PRIVATE must create each time ($p1, $p2)"
check "4th set" "err=0" req GET sem key=0x102 flags=0o1644 nsems=1
check "SEMMNI" "err=ENOSPC" req GET sem key=0x103 flags=0o1600 nsems=1
check "remove private 1" "err=0" req RMID sem id="$p1"
check "remove private 2" "err=0" req RMID sem id="$p2"
check "stale id" "err=EINVAL" req OPEN sem id="$p1"
check "stale id RMID" "err=EINVAL" req RMID sem id="$p1"
r=$(req GET sem key=0x104 flags=0o1600 nsems=1)
n=$(field id "$r")
[ "$n" != "$p1" ] && [ "$n" != "$p2" ] || fail "index reused with the same id"
# Cyclic, as the kernel's ipc_idr_alloc: past the last index given (the
# 4th set's), not the lowest free one (p1's or p2's).
[ $((n % 32768)) -ne $((p1 % 32768)) ] && [ $((n % 32768)) -ne $((p2 % 32768)) ] &&
	[ $((n % 32768)) -gt $((p2 % 32768)) ] && [ $((n % 32768)) -gt $((SEM % 32768)) ] ||
	fail "a freed index is reused at once ($n)"
check "remove 0x104" "err=0" req RMID sem id="$n"
r=$(req GET msg key=0x100 flags=0o1600)
case $r in err=0*) ;; *) fail "create msg 0x100: $r" ;; esac
MSG=$(field id "$r")
check "msg EEXIST" "err=EEXIST" req GET msg key=0x100 flags=0o3600
check "msg missing" "err=ENOENT" req GET msg key=0x999
echo "check_broker: GET error rules: ok"

# ------------------------------------------------- OPEN SET RMID INFO STAT
check "OPEN" "access=6" req OPEN sem id="$SEM"
check "OPEN wrong type" "err=EINVAL" req OPEN msg id=$((SEM + 7))
check "OPEN negative" "err=EINVAL" req OPEN sem id=-1
check "SET bad uid" "err=EINVAL" req SET sem id="$SEM" uid=0xffffffff \
	mode=0o600
check "SET bad gid" "err=EINVAL" req SET sem id="$SEM" gid=0xffffffff \
	mode=0o600
check "SET" "err=0" req SET sem id="$SEM" uid=0 gid=0 mode=0o640
[ "$(json "j['semaphores'][0]['perms']")" = 640 ] || fail "SET: mode not 640"
check "SET mode back" "err=0" req SET sem id="$SEM" mode=0o600
# Raising qbytes above msgmnb needs CAP_SYS_RESOURCE in the initial user
# namespace (root may lack it, in a container): EPERM then, as the kernel.
if [ $(( 0x$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status) >> 24 & 1 )) = 1 ] &&
   [ "$(readlink /proc/self/ns/user)" = "user:[4026531837]" ]; then
	over=EINVAL
else
	over=EPERM
fi
check "SET qbytes over the pool" "err=$over" req SET msg id="$MSG" \
	mode=0o600 qbytes=40000
check "SET qbytes" "err=0" req SET msg id="$MSG" mode=0o600 qbytes=12000
[ "$(json "j['queues'][0]['qbytes']")" = 12000 ] || fail "qbytes not 12000"
check "INFO sem" "max=3" req INFO sem flags=19
check "INFO msg" "usage=[2, 3, 1]" req INFO msg flags=12
check "IPC_INFO" "err=0" req INFO msg flags=3
check "INFO bad cmd" "err=EINVAL" req INFO sem flags=12
check "STAT_INDEX" "err=0 id=$SEM" req STAT_INDEX sem id=$((SEM % 32768))
check "STAT_INDEX free" "err=EINVAL" req STAT_INDEX sem id=3000
check "STAT_INDEX low 15 bits" "err=0 id=$SEM" req STAT_INDEX sem \
	id=$((SEM % 32768 + 32768))
check "STAT_INDEX negative" "err=EINVAL" req STAT_INDEX sem id=-1
check "STAT_INDEX flags" "err=EINVAL" req STAT_INDEX sem id=0 flags=2
check "LIST" "err=0 id=$SEM" req LIST sem id=0
check "LIST end" "err=ENOENT" req LIST sem id=32767
check "LIST negative" "err=EINVAL" req LIST sem id=-5
echo "check_broker: OPEN SET RMID INFO STAT_INDEX LIST: ok"

# ------------------------------------------------------- as nobody
if [ $can_nobody = 1 ]; then
	NB="$NOBODY $CL $S req"
	check "nobody GET flg 0" "err=0 id=$SEM shmid" $NB GET sem key=0x100
	check "nobody GET 0400" "err=EACCES" $NB GET sem key=0x100 flags=0o400
	check "nobody OPEN 0600" "err=EACCES" $NB OPEN sem id="$SEM"
	check "nobody SET" "err=EPERM" $NB SET sem id="$SEM" mode=0o666
	check "nobody RMID" "err=EPERM" $NB RMID sem id="$SEM"
	check "nobody STAT" "err=EACCES" $NB STAT_INDEX sem id=$((SEM % 32768))
	check "nobody STAT_ANY" "err=0" $NB STAT_INDEX sem \
		id=$((SEM % 32768)) flags=1
	r=$($NB GET msg key=0x200 flags=0o1600)
	NQ=$(field id "$r")
	case $r in err=0*access=6*) ;; *) fail "nobody create: $r" ;; esac
	check "nobody qbytes > msgmnb" "err=EPERM" $NB SET msg id="$NQ" \
		uid=65534 gid=65534 mode=0o600 qbytes=16385
	check "nobody qbytes" "err=0" $NB SET msg id="$NQ" uid=65534 \
		gid=65534 mode=0o640 qbytes=100
	check "nobody give away" "err=0" $NB SET msg id="$NQ" uid=0 \
		gid=65534 mode=0o640 qbytes=100
	check "creator is still owner" "err=0" $NB SET msg id="$NQ" \
		uid=65534 gid=65534 mode=0o644 qbytes=100
	check "0644 readable by root" "access=6" req OPEN msg id="$NQ"
	check "0644: other reads" "access=4" $NB OPEN sem id=$(field id \
		"$(req GET sem key=0x102)")
	check "root RMID of nobody's" "err=0" req RMID msg id="$NQ"
	# Root of a user namespace of its own holds every capability there,
	# none over this IPC namespace's objects (the kernel's ns_capable on
	# the namespace's owner): still nobody's access.
	UNS="$NOBODY unshare -U -r $CL $S req"
	$NOBODY unshare -U -r true ||
		fail "nobody cannot make a user namespace (unshare -U -r)"
	check "userns root OPEN 0600" "err=EACCES" $UNS OPEN sem id="$SEM"
	check "userns root SET" "err=EPERM" $UNS SET sem id="$SEM" \
		uid=65534 gid=65534 mode=0o666
	check "userns root RMID" "err=EPERM" $UNS RMID sem id="$SEM"
	echo "check_broker: permissions as nobody: ok"
else
	echo "check_broker: permissions as nobody: SKIP (not root)"
fi

# ------------------------------------------------------- malformed input
check "bad magic" "err=EPROTO" req HELLO 0 magic=0x12345678
check "bad version" "err=EPROTO" req HELLO 0 version=3
check "op 0" "err=EPROTO" req 0 sem
check "op 99" "err=EPROTO" req 99 sem
check "pad" "err=EINVAL" req GET sem key=0x100 pad=1
check "pad2" "err=EINVAL" req GET sem key=0x100 pad2=1
check "type 3" "err=EINVAL" req GET 3 key=0x100
check "type 0" "err=EINVAL" req OPEN 0 id=0
check "fuzz" "fuzz " $CL "$S" fuzz 600
alive "fuzzing"
check "still serving" "err=0 id=$SEM" req GET sem key=0x100
echo "check_broker: malformed and random datagrams: ok"

# ------------------------------------------------------- re-adoption
$HELPER "$S" setval "$SEM" 1 7 || fail "setval through libprim"
$HELPER "$S" msgsnd "$MSG" 5 hello || fail "msgsnd through libprim"
$HELPER "$S" msgsnd "$MSG" 6 world || fail "msgsnd through libprim"
[ "$(json "j['semaphores'][0]['values']")" = "[0, 7]" ] ||
	fail "values before restart: $(cat "$tmp/ipcs.json")"
before=$(json "sorted((o['key'], o['id']) for o in j['semaphores'] + j['queues'])")
kill -9 "$BPID"
wait "$BPID" 2>/dev/null
start_broker "$S" --semmni 4 --semmsl 250 --msgmni 4 \
	--msg-qbytes-max 32768 --msg-nslots 64
grep -q "adopted registry" "$tmp/primd.log" || fail "registry not adopted"
after=$(json "sorted((o['key'], o['id']) for o in j['semaphores'] + j['queues'])")
[ "$before" = "$after" ] || fail "objects after restart: $after, not $before"
[ "$(json "j['semaphores'][0]['values']")" = "[0, 7]" ] ||
	fail "values after restart: $(cat "$tmp/ipcs.json")"
[ "$(json "j['queues'][0]['messages']")" = 2 ] || fail "messages lost"
check "msgrcv after restart" "5 hello" $HELPER "$S" msgrcv "$MSG"
check "stale id after restart" "err=EINVAL" req OPEN sem id="$p1"
check "key after restart" "err=0 id=$SEM" req GET sem key=0x100
echo "check_broker: kill -9 and re-adoption: ok"

# A half-done removal (REMOVING) is finished and a half-done creation
# (CREATING) rolled back by the next broker; a client that dies while no
# broker runs is reaped by the next one (the pid table is in the registry).
r1=$(req GET sem key=0x500 flags=0o1600 nsems=1)
r2=$(req GET sem key=0x501 flags=0o1600 nsems=1)
i1=$(($(field id "$r1") % 32768)) m1=$(field shmid "$r1")
i2=$(($(field id "$r2") % 32768)) m2=$(field shmid "$r2")
$HELPER "$S" undo "$SEM" 1 2 2 >"$tmp/undo.out" &
undo=$!
EXTRA_PIDS=$undo
i=0
until grep -q ready "$tmp/undo.out"; do
	i=$((i + 1))
	[ $i -lt 250 ] || fail "undo helper did not start"
	sleep 0.02
done
[ "$(json "j['semaphores'][0]['values']")" = "[0, 9]" ] ||
	fail "undo helper: $(cat "$tmp/ipcs.json")"
kill -9 "$BPID"
wait "$BPID" 2>/dev/null
$PY -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
base = libc.shmat(int(open(sys.argv[1]).read()), None, 0)
assert base not in (None, ctypes.c_void_p(-1).value)
for a in sys.argv[2:]:
    idx, state = map(int, a.split(":"))   # struct primd_ent_shm, type sem
    ctypes.c_uint32.from_address(base + 4096 + idx * 64 + 4).value = state
' "$S.state" "$i1:3" "$i2:1" || fail "cannot edit the registry"
wait "$undo" || fail "undo helper failed"
EXTRA_PIDS=
start_broker "$S" --semmni 4 --semmsl 250 --msgmni 4 \
	--msg-qbytes-max 32768 --msg-nslots 64
[ "$(json "sorted(o['key'] for o in j['semaphores'])")" = "[256, 258]" ] ||
	fail "REMOVING/CREATING slots after adoption: $(cat "$tmp/ipcs.json")"
for m in $m1 $m2; do
	awk -v m="$m" '$2 == m { found = 1 } END { exit !found }' \
		/proc/sysvipc/shm && fail "segment $m not removed on adoption"
done
[ "$(json "j['semaphores'][0]['values']")" = "[0, 7]" ] ||
	fail "SEM_UNDO of a client that died while no broker ran: $(cat "$tmp/ipcs.json")"
echo "check_broker: adoption finishes RMID, rolls back creation, reaps: ok"

# ------------------------------------------------------- reaping
$HELPER "$S" undo "$SEM" 0 3 || fail "semop SEM_UNDO"
i=0
while [ "$(json "j['semaphores'][0]['values'][0]")" != 0 ]; do
	i=$((i + 1))
	[ $i -lt 250 ] || fail "SEM_UNDO of a dead client was not applied"
	sleep 0.02
done
alive "reaping"
echo "check_broker: a dead client's SEM_UNDO is reaped: ok"

# ------------------------------------------------------- primctl
"$PRIMCTL" ipcs --sock "$S" >"$tmp/ipcs.txt" || fail "primctl ipcs"
grep -q "^------ Semaphore Arrays --------" "$tmp/ipcs.txt" &&
	grep -q "^key        semid      owner      perms      nsems" \
		"$tmp/ipcs.txt" &&
	grep -q "^key        msqid      owner      perms      used-bytes   messages" \
		"$tmp/ipcs.txt" &&
	grep -q "^0x00000100 $SEM " "$tmp/ipcs.txt" ||
	fail "primctl ipcs output: $(cat "$tmp/ipcs.txt")"
"$PRIMCTL" ipcrm --sock "$S" >/dev/null 2>&1
[ $? -eq 2 ] || fail "ipcrm without a flag must fail with status 2"
"$PRIMCTL" ipcrm --sock "$S" -s 12345 2>/dev/null && fail "ipcrm bad id"
"$PRIMCTL" ipcrm --sock "$S" -S 0x7777 2>/dev/null && fail "ipcrm bad key"
"$PRIMCTL" ipcrm --sock "$S" -s "$SEM" || fail "ipcrm -s"
"$PRIMCTL" ipcrm --sock "$S" -Q 0x100 || fail "ipcrm -Q"
[ "$(json "len(j['semaphores']), len(j['queues'])")" = "1 0" ] ||
	fail "after ipcrm: $(cat "$tmp/ipcs.json")"
req GET msg key=0x300 flags=0o1600 >/dev/null
# primctl's --all, on this test's own broker in its own namespace: it
# removes only objects that broker holds (never the kernel's).
"$PRIMCTL" ipcrm --sock "$S" --all || fail "primctl ipcrm, all objects"
[ "$(json "len(j['semaphores']) + len(j['queues'])")" = 0 ] ||
	fail "after primctl ipcrm of all objects: $(cat "$tmp/ipcs.json")"
check "INFO when empty" "max=-1" req INFO sem flags=3
echo "check_broker: primctl ipcs, ipcs --json, ipcrm: ok"

kill "$BPID"
wait "$BPID"
st=$?
[ $st -eq 0 ] || fail "primd exited $st on SIGTERM"
[ ! -e "$S" ] || fail "socket left behind after SIGTERM"
BPID=

# ------------------------------------------------------- idle exit
S2=$tmp/idle.sock
start_broker "$S2" --idle-exit 1
$CL "$S2" hold 2 >/dev/null 2>&1 &
holder=$!
EXTRA_PIDS=$holder
sleep 1.5
kill -0 "$BPID" 2>/dev/null || fail "--idle-exit: exited with a live client"
wait "$holder" || fail "the holding client failed"
i=0
while kill -0 "$BPID" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "--idle-exit 1: still running after 5 s idle"
	sleep 0.05
done
wait "$BPID"
st=$?
[ $st -eq 0 ] || fail "--idle-exit: status $st"
BPID=
echo "check_broker: --idle-exit: ok"

# ------------------------------------------------------- primctl run
S3=$tmp/run.sock
if [ -e "$B/libsysv.so" ]; then
	out=$(PRIM_IDLE_EXIT=2 $RUNPRE "$PRIMCTL" run -s "$S3" -- \
		sh -c 'echo "sock=$PRIM_BROKER_SOCK pre=$LD_PRELOAD"')
	case $out in
	"sock=$S3 pre=$B/libsysv.so"*) ;;
	*) fail "primctl run: $out" ;;
	esac
	check "run started a broker" "broker: running" "$PRIMCTL" status -s "$S3"
	PRIM_IDLE_EXIT=2 $RUNPRE "$PRIMCTL" run -s "$S3" -- /nonexistent/cmd 2>/dev/null
	[ $? -eq 127 ] || fail "primctl run of a missing command: not 127"
	echo "check_broker: primctl run: ok"
else
	echo "check_broker: primctl run: SKIP ($B/libsysv.so not built)"
fi

echo "check_broker: ok"
