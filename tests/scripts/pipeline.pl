#!/usr/bin/perl
# SPDX-License-Identifier: BSD-2-Clause
# A producer/consumer pipeline over System V IPC, written against Perl's own
# IPC::SysV and builtins (msgget, msgsnd, msgrcv, semget, semop, semctl), as
# an unmodified program would be. 2 producers send N messages (payloads 1..N,
# type 1) to one queue; 2 consumers receive with msgtyp -2 (data, type 1,
# before the stop messages, type 2), add the payloads and, under a mutex
# semaphore (SEM_UNDO), increment a counter kept in a second semaphore.
# Results go back as type 3 messages. Prints one result line (compared by
# tests/check_scripts.sh) and one timing line.
#   perl pipeline.pl [N]
use strict;
use warnings;
use IPC::SysV qw(IPC_PRIVATE IPC_CREAT IPC_RMID IPC_NOWAIT SEM_UNDO
		 GETVAL SETVAL S_IRUSR S_IWUSR);
use Time::HiRes qw(time);
use POSIX qw(_exit);

my $N = shift // 10000;
my $NPROD = 2;
my $NCONS = 2;

sub backend {
	# The kernel lists its own queues; under libsysv it has none of ours.
	# Another spelling of the path: libsysv answers /proc/sysvipc/msg
	# itself with its own queues (libsysv(7)), this one is the kernel's.
	my ($id) = @_;
	open(my $f, '<', '/proc/self/root/proc/sysvipc/msg') or return 'unknown';
	while (<$f>) {
		my @c = split;
		return 'kernel' if @c > 1 && $c[1] eq $id;
	}
	return 'prim';
}

my $q = msgget(IPC_PRIVATE, IPC_CREAT | S_IRUSR | S_IWUSR);
defined $q or die "msgget: $!";
my $s = semget(IPC_PRIVATE, 2, IPC_CREAT | S_IRUSR | S_IWUSR);
defined $s or die "semget: $!";
semctl($s, 0, SETVAL, 1) or die "SETVAL: $!";	# mutex
semctl($s, 1, SETVAL, 0) or die "SETVAL: $!";	# counter
my $be = backend($q);

sub P { semop($s, pack('s!3', 0, -1, SEM_UNDO)) or die "P: $!"; }
sub V { semop($s, pack('s!3', 0, 1, SEM_UNDO)) or die "V: $!"; }

my $t0 = time;
my @kids;
for my $p (0 .. $NPROD - 1) {
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		for (my $i = $p + 1; $i <= $N; $i += $NPROD) {
			msgsnd($q, pack('l! a*', 1, $i), 0) or die "msgsnd: $!";
		}
		_exit(0);
	}
	push @kids, $pid;
}
my @cons;
for my $c (0 .. $NCONS - 1) {
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		my ($sum, $n, $buf) = (0, 0, '');
		while (1) {
			msgrcv($q, $buf, 64, -2, 0) or die "msgrcv: $!";
			my ($type, $text) = unpack('l! a*', $buf);
			last if $type == 2;
			$sum += $text;
			$n++;
			P();
			my $v = semctl($s, 1, GETVAL, 0);
			semctl($s, 1, SETVAL, $v + 1) or die "SETVAL: $!";
			V();
		}
		msgsnd($q, pack('l! a*', 3, "$sum $n"), 0) or die "msgsnd: $!";
		_exit(0);
	}
	push @cons, $pid;
}
for (@kids) { waitpid($_, 0); die "producer failed\n" if $?; }
msgsnd($q, pack('l! a*', 2, 'stop'), 0) or die "msgsnd: $!" for 1 .. $NCONS;
for (@cons) { waitpid($_, 0); die "consumer failed\n" if $?; }
my ($sum, $n) = (0, 0);
for (1 .. $NCONS) {
	my $buf;
	msgrcv($q, $buf, 64, 3, IPC_NOWAIT) or die "msgrcv result: $!";
	my (undef, $text) = unpack('l! a*', $buf);
	my ($s1, $n1) = split ' ', $text;
	$sum += $s1;
	$n += $n1;
}
my $dt = time - $t0;
my $counter = semctl($s, 1, GETVAL, 0);
my $mutex = semctl($s, 0, GETVAL, 0);
msgctl($q, IPC_RMID, 0) or die "IPC_RMID: $!";
semctl($s, 0, IPC_RMID, 0) or die "IPC_RMID: $!";
my $ok = $n == $N && $sum == $N * ($N + 1) / 2 && $counter == $N && $mutex == 1;
printf "perl pipeline: N=%d count=%d sum=%d counter=%d mutex=%d %s\n",
	$N, $n, $sum, $counter, $mutex, $ok ? 'ok' : 'WRONG';
printf "perl timing: backend=%s %.3f s, %.0f msgs/s\n", $be, $dt, $N / $dt;
exit($ok ? 0 : 1);
