<?php
// SPDX-License-Identifier: BSD-2-Clause
// A producer/consumer pipeline over System V IPC with PHP's sysvmsg and
// sysvsem extensions (msg_get_queue, msg_send, msg_receive, sem_get,
// sem_acquire, sem_release), as an unmodified PHP program would be; the
// extensions are loaded with RTLD_DEEPBIND, the hard case for a preloaded
// library. 2 producers (pcntl_fork) send N messages (payloads 1..N, type 1);
// 2 consumers receive with type -2 (data before the type-2 stop messages),
// add the payloads and, under sem_acquire/sem_release, increment a counter
// in a System V shared memory variable (shm passes through to the kernel).
// Prints one result line (compared by tests/check_scripts.sh) and a timing.
//   php pipeline.php [N]
foreach (['sysvmsg', 'sysvsem', 'sysvshm', 'pcntl'] as $ext) {
	if (!extension_loaded($ext)) {
		fwrite(STDERR, "pipeline.php: PHP extension $ext is missing " .
		       "(apt-get install php-cli)\n");
		exit(3);
	}
}
$N = $argc > 1 ? (int)$argv[1] : 10000;
$NPROD = 2;
$NCONS = 2;
$KEY = 0x50485000;

function backend($key)
{
	// The kernel lists its own queues; under libsysv it has none of ours.
	// Read by cat without libsysv: a preloaded process gets libsysv's
	// own queues at /proc/sysvipc/msg (libsysv(7)), and PHP resolves
	// every other spelling of the path back to that one.
	$out = @shell_exec('env -u LD_PRELOAD cat /proc/sysvipc/msg 2>/dev/null');
	if ($out === null || $out === false || $out === '')
		return 'unknown';
	foreach (explode("\n", $out) as $l) {
		$c = preg_split('/\s+/', trim($l));
		if (count($c) > 1 && $c[0] === (string)$key)
			return 'kernel';
	}
	return 'prim';
}

function die_($what)
{
	fwrite(STDERR, "pipeline.php: $what failed\n");
	exit(1);
}

$q = msg_get_queue($KEY, 0600) or die_('msg_get_queue');
$sem = sem_get($KEY + 1, 1, 0600, true) or die_('sem_get');
$shm = shm_attach($KEY + 2, 4096, 0600) or die_('shm_attach');
shm_put_var($shm, 1, 0) or die_('shm_put_var');
$be = backend($KEY);

$t0 = microtime(true);
$prods = [];
for ($p = 0; $p < $NPROD; $p++) {
	$pid = pcntl_fork();
	if ($pid < 0)
		die_('fork');
	if ($pid == 0) {
		for ($i = $p + 1; $i <= $N; $i += $NPROD)
			if (!msg_send($q, 1, $i, false, true, $err))
				exit(1);
		exit(0);
	}
	$prods[] = $pid;
}
$cons = [];
for ($c = 0; $c < $NCONS; $c++) {
	$pid = pcntl_fork();
	if ($pid < 0)
		die_('fork');
	if ($pid == 0) {
		$sum = 0;
		$n = 0;
		for (;;) {
			if (!msg_receive($q, -2, $type, 64, $msg, false, 0, $err))
				exit(1);
			if ($type == 2)
				break;
			$sum += (int)$msg;
			$n++;
			sem_acquire($sem) or exit(1);
			shm_put_var($shm, 1, shm_get_var($shm, 1) + 1);
			sem_release($sem) or exit(1);
		}
		exit(msg_send($q, 3, "$sum $n", false, true, $err) ? 0 : 1);
	}
	$cons[] = $pid;
}
foreach ($prods as $pid) {
	pcntl_waitpid($pid, $st);
	if ($st != 0)
		die_('producer');
}
for ($c = 0; $c < $NCONS; $c++)
	msg_send($q, 2, 'stop', false, true, $err) or die_('msg_send stop');
foreach ($cons as $pid) {
	pcntl_waitpid($pid, $st);
	if ($st != 0)
		die_('consumer');
}
$sum = 0;
$n = 0;
for ($c = 0; $c < $NCONS; $c++) {
	if (!msg_receive($q, 3, $type, 64, $msg, false, MSG_IPC_NOWAIT, $err))
		die_('msg_receive result');
	[$s1, $n1] = explode(' ', $msg);
	$sum += (int)$s1;
	$n += (int)$n1;
}
$dt = microtime(true) - $t0;
$counter = shm_get_var($shm, 1);
msg_remove_queue($q);
sem_remove($sem);
shm_remove($shm);
$ok = $n == $N && $sum == $N * ($N + 1) / 2 && $counter == $N;
printf("php pipeline: N=%d count=%d sum=%d counter=%d %s\n", $N, $n, $sum,
       $counter, $ok ? 'ok' : 'WRONG');
printf("php timing: backend=%s %.3f s, %.0f msgs/s\n", $be, $dt, $N / $dt);
exit($ok ? 0 : 1);
