#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# libsysv end to end: C programs linked with -lsysv and the same programs
# unmodified under LD_PRELOAD, against a private broker in a private IPC
# namespace; then perl (IPC::SysV), python3 (sysv_ipc) and php (sysvsem,
# sysvmsg: loaded with RTLD_DEEPBIND) when they are installed.
#
#   B=build IPCNS="unshare --ipc" sh tests/check_sysv.sh
#
# PRIMD=path tests against another broker binary (default $B/primd).
#
# Exits non-zero on the first failure. Removes nothing it did not create:
# everything lives in the namespace, which dies with the script.
set -eu

B=${B:-build}
if [ -z "${PRIM_SYSV_CHECK_INNER:-}" ]; then
	if [ -z "${IPCNS:-}" ]; then
		echo "check_sysv: SKIP: cannot unshare an IPC namespace"
		exit 0
	fi
	PRIM_SYSV_CHECK_INNER=1 exec $IPCNS sh "$0" "$@"
fi

B=$(cd "$B" && pwd)
LIB=$B/libsysv.so
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}
PRIMD=${PRIMD:-$B/primd}	# the broker to test against
for f in "$LIB" "$PRIMD"; do
	[ -e "$f" ] || { echo "check_sysv: missing $f (make all)" >&2; exit 1; }
done
CC=${CC:-cc}
dir=$(mktemp -d "${TMPDIR:-/tmp}/check_sysv.XXXXXX")
bpid=
cleanup() {
	if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "check_sysv: FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

cat > "$dir/sysvt.c" <<'EOF'
/* One program, one test per argument; exit 0 when it passes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *__buf; };
struct mbuf { long t; char x[64]; };
static int fails;
#define CHECK(c) do { if (!(c)) { printf("  FAIL %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #c, errno, strerror(errno)); fails++; } } while (0)
#define ERR(x, e) do { errno = 0; long r_ = (long)(x); CHECK(r_ == -1 && errno == (e)); } while (0)

static int basic(void) {
	int s = semget(IPC_PRIVATE, 3, 0600), q, k, key = 0x5157, st;
	struct sembuf op = {0, 2, 0}, dec = {0, -1, IPC_NOWAIT}, w = {1, -5, 0}, big = {5, 1, 0};
	unsigned short vals[3] = {1, 2, 3}, got[3];
	struct timespec bt = {0, -1}, t10 = {0, 10000000};
	struct semid_ds ds; struct seminfo si; struct msqid_ds md; struct msginfo mi;
	struct mbuf m = {3, "hello"}, r;
	union semun a;
	pid_t p;

	CHECK(s >= 0);
	CHECK(semop(s, &op, 1) == 0);
	CHECK(semctl(s, 0, GETVAL) == 2);
	CHECK(semop(s, &dec, 1) == 0);
	CHECK(semop(s, &dec, 1) == 0);
	ERR(semop(s, &dec, 1), EAGAIN);
	a.array = vals; CHECK(semctl(s, 0, SETALL, a) == 0);
	a.array = got; CHECK(semctl(s, 0, GETALL, a) == 0 && got[0] == 1 && got[2] == 3);
	CHECK(semctl(s, 1, GETPID) == getpid());
	a.val = 7; CHECK(semctl(s, 2, SETVAL, a) == 0 && semctl(s, 2, GETVAL) == 7);
	a.val = 40000; ERR(semctl(s, 2, SETVAL, a), ERANGE);
	a.val = 1; ERR(semctl(s, 9, SETVAL, a), EINVAL);
	ERR(semctl(s, 9, GETVAL), EINVAL);
	ERR(semctl(s, 0, 4242), EINVAL);
	a.buf = &ds;
	CHECK(semctl(s, 0, IPC_STAT, a) == 0 && ds.sem_nsems == 3 &&
	      ds.sem_perm.mode == 0600 && ds.sem_perm.uid == geteuid() && ds.sem_otime > 0);
	ds.sem_perm.mode = 0640; CHECK(semctl(s, 0, IPC_SET, a) == 0);
	CHECK(semctl(s, 0, IPC_STAT, a) == 0 && ds.sem_perm.mode == 0640);
	ERR(semop(s, &big, 1), EFBIG);
	ERR(semop(s, &op, 0), EINVAL);
	ERR(semop(s, &op, 501), E2BIG);
	ERR(semop(s, NULL, 1), EFAULT);
	ERR(semtimedop(s, &op, 1, &bt), EINVAL);
	ERR(semtimedop(s, &w, 1, &t10), EAGAIN);
	ERR(semop(s + 32768, &op, 1), EINVAL);
	ERR(semop(-1, &op, 1), EINVAL);
	a.__buf = &si;
	CHECK(semctl(0, 0, SEM_INFO, a) >= 0 && si.semusz >= 1 && si.semaem >= 3);
	CHECK(semctl(0, 0, IPC_INFO, a) >= 0 && si.semmsl == 32000 && si.semvmx == 32767);
	a.buf = &ds; CHECK(semctl(s % 32768, 0, SEM_STAT, a) == s);
	k = semget(key, 2, IPC_CREAT | 0600); CHECK(k >= 0);
	CHECK(semget(key, 2, 0) == k);
	ERR(semget(key, 2, IPC_CREAT | IPC_EXCL), EEXIST);
	ERR(semget(key, 5, 0), EINVAL);
	ERR(semget(0x7777, 1, 0), ENOENT);
	ERR(semget(IPC_PRIVATE, 0, 0600), EINVAL);
	/* fork: the child uses the ids it inherited */
	p = fork();
	if (p == 0) { struct sembuf up = {0, 5, SEM_UNDO}; _exit(semop(k, &up, 1) == 0 ? 0 : 1); }
	waitpid(p, &st, 0); CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(semctl(k, 0, GETPID) == p);
	/* the child registered with the broker, which undoes its +5 */
	for (int i = 0; i < 500 && semctl(k, 0, GETVAL) != 0; i++) usleep(10000);
	CHECK(semctl(k, 0, GETVAL) == 0);
	CHECK(semctl(k, 0, IPC_RMID) == 0);
	ERR(semctl(k, 0, GETVAL), EINVAL);
	ERR(semop(k, &op, 1), EINVAL);
	q = msgget(IPC_PRIVATE, 0600); CHECK(q >= 0);
	CHECK(msgsnd(q, &m, 6, 0) == 0);
	m.t = 1; strcpy(m.x, "one"); CHECK(msgsnd(q, &m, 4, 0) == 0);
	CHECK(msgrcv(q, &r, sizeof(r.x), -2, 0) == 4 && r.t == 1 && strcmp(r.x, "one") == 0);
	CHECK(msgctl(q, IPC_STAT, &md) == 0 && md.msg_qnum == 1 && md.__msg_cbytes == 6 &&
	      md.msg_lspid == getpid() && md.msg_lrpid == getpid() && md.msg_qbytes == 16384);
	ERR(msgrcv(q, &r, 2, 0, IPC_NOWAIT), E2BIG);
	CHECK(msgrcv(q, &r, sizeof(r.x), 0, 0) == 6 && r.t == 3);
	ERR(msgrcv(q, &r, sizeof(r.x), 0, IPC_NOWAIT), ENOMSG);
	m.t = 0; ERR(msgsnd(q, &m, 4, 0), EINVAL);
	/* Over MSGMAX: EINVAL before the text is read (the buffer is whole
	 * all the same: a sanitizer's msgsnd checks it first). */
	{ static struct { long t; char x[9000]; } big = {1, ""};
	  ERR(msgsnd(q, &big, 9000, 0), EINVAL); }
	ERR(msgsnd(q, NULL, 4, 0), EFAULT);
	ERR(msgrcv(q, &r, 4, 0, MSG_COPY), EINVAL);
	ERR(msgctl(q, 4242, &md), EINVAL);
	md.msg_qbytes = 100; CHECK(msgctl(q, IPC_SET, &md) == 0);
	CHECK(msgctl(q, IPC_STAT, &md) == 0 && md.msg_qbytes == 100);
	CHECK(msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) >= 0 && mi.msgpool >= 1);
	CHECK(msgctl(q % 32768, MSG_STAT, &md) == q);
	CHECK(msgctl(q, IPC_RMID, NULL) == 0);
	ERR(msgsnd(q, &m, 4, 0), EINVAL);
	ERR(msgctl(q, IPC_STAT, &md), EINVAL);
	CHECK(semctl(s, 0, IPC_RMID) == 0);
	/* shm passes through to the kernel */
	int sh = shmget(IPC_PRIVATE, 4096, 0600); char *pa;
	CHECK(sh >= 0 && (pa = shmat(sh, NULL, 0)) != (void *)-1);
	CHECK(shmdt(pa) == 0 && shmctl(sh, IPC_RMID, NULL) == 0);
	return fails;
}

static int tsem, tmsq;
static long counter;
static void *worker(void *arg) {
	struct sembuf p = {0, -1, 0}, v = {0, 1, 0};
	int s = semget(0x7100, 1, 0), q = msgget(0x7101, 0);	/* race the cache */
	struct mbuf m;
	for (int i = 0; i < 20000; i++) {
		if (semop(s, &p, 1) != 0) { fails++; break; }
		counter++;
		if (semop(s, &v, 1) != 0) { fails++; break; }
	}
	if (arg) {
		for (long i = 1; i <= 5000; i++) { m.t = i; if (msgsnd(q, &m, sizeof(long), 0)) fails++; }
	} else {
		for (int i = 0; i < 5000; i++) if (msgrcv(q, &m, sizeof(m.x), 0, 0) != sizeof(long)) fails++;
	}
	return NULL;
}
static int threads(void) {
	pthread_t t[4];
	union semun a = { .val = 1 };
	tsem = semget(0x7100, 1, IPC_CREAT | 0600);
	tmsq = msgget(0x7101, IPC_CREAT | 0600);
	CHECK(tsem >= 0 && tmsq >= 0 && semctl(tsem, 0, SETVAL, a) == 0);
	for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, i & 1 ? (void *)1 : NULL);
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	CHECK(counter == 80000);
	CHECK(semctl(tsem, 0, GETVAL) == 1);
	struct msqid_ds md; CHECK(msgctl(tmsq, IPC_STAT, &md) == 0 && md.msg_qnum == 0);
	semctl(tsem, 0, IPC_RMID); msgctl(tmsq, IPC_RMID, NULL);
	return fails;
}

static void on_alarm(int sig) { (void)sig; }
static int eintr(void) {
	struct sigaction sa; struct itimerval it = {{0, 0}, {0, 100000}};
	int s = semget(IPC_PRIVATE, 1, 0600), q = msgget(IPC_PRIVATE, 0600);
	struct sembuf p = {0, -1, 0}; struct timespec ts = {5, 0}; struct mbuf m;
	memset(&sa, 0, sizeof(sa)); sa.sa_handler = on_alarm; sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL); ERR(semop(s, &p, 1), EINTR);
	setitimer(ITIMER_REAL, &it, NULL); ERR(semtimedop(s, &p, 1, &ts), EINTR);
	setitimer(ITIMER_REAL, &it, NULL); ERR(msgrcv(q, &m, 8, 0, 0), EINTR);
	semctl(s, 0, IPC_RMID); msgctl(q, IPC_RMID, NULL);
	return fails;
}

static int eidrm(void) {
	int s = semget(IPC_PRIVATE, 1, 0600), q = msgget(IPC_PRIVATE, 0600), st;
	struct sembuf p = {0, -1, 0}; struct mbuf m;
	pid_t c1 = fork();
	if (c1 == 0) _exit(semop(s, &p, 1) == -1 && errno == EIDRM ? 0 : 1);
	pid_t c2 = fork();
	if (c2 == 0) _exit(msgrcv(q, &m, 8, 0, 0) == -1 && errno == EIDRM ? 0 : 1);
	for (int i = 0; i < 500 && semctl(s, 0, GETNCNT) != 1; i++) usleep(10000);
	CHECK(semctl(s, 0, GETNCNT) == 1);
	usleep(100000);
	CHECK(semctl(s, 0, IPC_RMID) == 0 && msgctl(q, IPC_RMID, NULL) == 0);
	waitpid(c1, &st, 0); CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	waitpid(c2, &st, 0); CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* this process mapped both: a later call is a stale id */
	ERR(semop(s, &p, 1), EINVAL); ERR(msgrcv(q, &m, 8, 0, IPC_NOWAIT), EINVAL);
	return fails;
}

/* exec a child that must see only fds 0 1 2 and can use our id */
static int exec_parent(const char *self) {
	int s, st; char arg[32];
	struct sembuf up = {0, 3, 0};
	/* Start clean: whatever the shell left open is not ours to judge. */
	for (int fd = 3; fd < 1024; fd++) close(fd);
	s = semget(IPC_PRIVATE, 1, 0600);
	CHECK(semop(s, &up, 1) == 0);
	snprintf(arg, sizeof(arg), "%d", s);
	pid_t c = fork();
	if (c == 0) { execl(self, self, "exec-child", arg, (char *)NULL); _exit(99); }
	waitpid(c, &st, 0); CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(semctl(s, 0, GETVAL) == 2);
	semctl(s, 0, IPC_RMID);
	return fails;
}
static int exec_child(int s) {
	DIR *d = opendir("/proc/self/fd"); struct dirent *e; int dfd = dirfd(d);
	struct sembuf down = {0, -1, 0};
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dfd) continue;
		if (fd > 2) { printf("  FAIL: fd %d leaked across exec\n", fd); fails++; }
	}
	closedir(d);
	CHECK(semop(s, &down, 1) == 0);
	return fails;
}

int main(int argc, char **argv) {
	const char *t = argc > 1 ? argv[1] : "";
	if (!strcmp(t, "basic")) return basic();
	if (!strcmp(t, "threads")) return threads();
	if (!strcmp(t, "eintr")) return eintr();
	if (!strcmp(t, "eidrm")) return eidrm();
	if (!strcmp(t, "exec")) return exec_parent(argv[0]);
	if (!strcmp(t, "exec-child")) return exec_child(atoi(argv[2]));
	if (!strcmp(t, "nobroker")) { ERR(semget(IPC_PRIVATE, 1, 0600), ENOSYS); ERR(msgget(1, 0), ENOSYS); return fails; }
	if (!strcmp(t, "semkey")) {	/* semkey KEY [VAL]: the set exists here (with sem 0 == VAL) */
		int s = semget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		CHECK(s >= 0 && (argc < 4 || semctl(s, 0, GETVAL) == atoi(argv[3])));
		return fails;
	}
	if (!strcmp(t, "msgkey")) {	/* msgkey KEY: the queue exists here */
		CHECK(msgget((key_t)strtol(argv[2], NULL, 0), 0) >= 0); return fails;
	}
	fprintf(stderr, "unknown test %s\n", t);
	return 2;
}
EOF

echo "check_sysv: compiling test programs in $dir"
$CC -O2 -Wall ${CFLAGS:-} -o "$dir/plain" "$dir/sysvt.c" -lpthread
$CC -O2 -Wall ${CFLAGS:-} -o "$dir/linked" "$dir/sysvt.c" -lpthread -L"$B" -lsysv -Wl,-rpath,"$B"

export PRIM_BROKER_SOCK="$dir/sock"
export PRIM_BROKER_WAIT=5000
$W "$PRIMD" -s "$PRIM_BROKER_SOCK" --foreground 2>"$dir/primd.log" &
bpid=$!
i=0
while [ ! -S "$PRIM_BROKER_SOCK" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "broker did not start: $(cat "$dir/primd.log")"
	sleep 0.05
done
ok "broker $PRIMD listening on $PRIM_BROKER_SOCK"

# Nothing below may create a kernel semaphore or queue.
kernel_objs() { awk 'FNR > 1' /proc/sysvipc/sem /proc/sysvipc/msg | wc -l; }

for t in basic threads eintr eidrm exec; do
	"$dir/linked" $t || fail "$t (linked with -lsysv)"
	ok "$t: linked with -lsysv"
	LD_PRELOAD=$LIB$POST "$dir/plain" $t || fail "$t (LD_PRELOAD)"
	ok "$t: unmodified program, LD_PRELOAD"
done
[ "$(kernel_objs)" -eq 0 ] || fail "kernel semaphores or queues were created"
ok "no kernel semaphore or queue was created"

if PRIM_BROKER_SOCK="$dir/nobody" PRIM_BROKER_WAIT=100 LD_PRELOAD=$LIB$POST "$dir/plain" nobroker; then
	ok "no broker: ENOSYS after PRIM_BROKER_WAIT"
else
	fail "no broker: expected ENOSYS"
fi

if perl -MIPC::SysV -e 1 2>/dev/null; then
	out=$(LD_PRELOAD=$LIB$POST perl -MIPC::SysV=IPC_CREAT -e '
		my $s = semget(0x5e01, 1, IPC_CREAT | 0600) // die "semget: $!";
		semop($s, pack("s!3", 0, 4, 0)) or die "semop: $!";
		my $q = msgget(0x5e02, IPC_CREAT | 0600) // die "msgget: $!";
		msgsnd($q, pack("l! a*", 7, "perl"), 0) or die "msgsnd: $!";
		my $b; msgrcv($q, $b, 64, 0, 0) or die "msgrcv: $!";
		my ($t, $x) = unpack("l! a*", $b); print "$t $x\n";') || fail "perl IPC::SysV"
	[ "$out" = "7 perl" ] || fail "perl IPC::SysV printed '$out'"
	LD_PRELOAD=$LIB$POST "$dir/plain" semkey 0x5e01 4 || fail "perl's set not seen by libsysv"
	ok "perl IPC::SysV semget/semop/msgsnd/msgrcv through libsysv"
else
	fail "missing: perl IPC::SysV (not installed) (make deps installs it)"
fi

PY=
for p in /usr/bin/python3 python3; do
	if $p -c 'import sysv_ipc' 2>/dev/null; then PY=$p; break; fi
done
if [ -n "$PY" ]; then
	out=$(LD_PRELOAD=$LIB$POST $PY -c '
import sysv_ipc
s = sysv_ipc.Semaphore(0x5e03, sysv_ipc.IPC_CREAT, 0o600, 0)
s.release(); s.release(); s.acquire()
q = sysv_ipc.MessageQueue(0x5e04, sysv_ipc.IPC_CREAT, 0o600)
q.send(b"python", type=5)
m, t = q.receive()
print(t, m.decode(), s.value)') || fail "python3 sysv_ipc"
	[ "$out" = "5 python 1" ] || fail "python3 sysv_ipc printed '$out'"
	LD_PRELOAD=$LIB$POST "$dir/plain" semkey 0x5e03 1 || fail "python's set not seen by libsysv"
	ok "python3 sysv_ipc through libsysv"
else
	fail "missing: python3 sysv_ipc (not installed) (make deps installs it)"
fi

if command -v php >/dev/null 2>&1 && php -r 'exit(function_exists("sem_get") && function_exists("msg_send") ? 0 : 1);'; then
	out=$(LD_PRELOAD=$LIB$POST php -r '
		$s = sem_get(0x5e05, 1, 0600, false) or exit(1);
		sem_acquire($s) or exit(2);
		$q = msg_get_queue(0x5e06, 0600) or exit(3);
		msg_send($q, 9, "php", false) or exit(4);
		msg_receive($q, 0, $t, 64, $m, false) or exit(5);
		echo "$t $m\n";') || fail "php sysvsem/sysvmsg (exit $?)"
	[ "$out" = "9 php" ] || fail "php printed '$out'"
	# sem_get made a set (sem_acquire used SEM_UNDO, so its value is
	# being restored by the broker now). Seen here, php's calls went
	# through libsysv despite RTLD_DEEPBIND.
	LD_PRELOAD=$LIB$POST "$dir/plain" semkey 0x5e05 || fail "php's set not seen by libsysv"
	LD_PRELOAD=$LIB$POST "$dir/plain" msgkey 0x5e06 || fail "php's queue not seen by libsysv"
	ok "php sysvsem/sysvmsg (RTLD_DEEPBIND) through libsysv"
else
	fail "missing: php (php-cli with sysvsem/sysvmsg not installed) (make deps installs it)"
fi

[ "$(kernel_objs)" -eq 0 ] || fail "kernel semaphores or queues were created"
ok "still no kernel semaphore or queue"
echo "check_sysv: all passed"
