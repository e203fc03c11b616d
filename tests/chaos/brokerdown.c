/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker dies: what goes on and what waits (DESIGN.md, "broker/").
 *   - data-path calls on mapped ids (semop, msgsnd, msgrcv, GETVAL,
 *     IPC_STAT) go on working, in a fork child made while the broker is
 *     down too, whose first call finds no broker to register with;
 *   - a control call that needs the broker waits PRIM_BROKER_WAIT ms, then
 *     fails with ENOSYS;
 *   - the next broker re-adopts everything and reaps the child that died
 *     while it was down (its SEM_UNDO is applied), although that child
 *     never registered;
 *   - a broker that is stopped (SIGSTOP) still accepts connections in
 *     the kernel but answers nothing: a control call fails with ENOSYS
 *     after its deadline instead of hanging, data-path calls go on, and
 *     once it is continued everything works again.
 * Usage: brokerdown PRIMD SOCKET (run in a private IPC namespace).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *primd, *sock;

#define CHECK(c, ...)                                                   \
	do {                                                            \
		if (!(c)) {                                             \
			fprintf(stderr, "brokerdown: FAIL: " __VA_ARGS__); \
			fprintf(stderr, " (%s)\n", strerror(errno));    \
			exit(1);                                        \
		}                                                       \
	} while (0)

static void
msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static pid_t
broker_start(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(primd, primd, "-s", sock, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), ok;

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
		ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(s);
		if (ok)
			return pid;
		msleep(10);
	}
	fprintf(stderr, "brokerdown: the broker does not answer\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	struct { long mtype; char text[8]; } m = { 3, "hello" };
	struct sembuf take = { 0, -2, SEM_UNDO };
	struct msqid_ds ds;
	pid_t broker, child;
	int semid, msqid, st, v = -1;

	if (argc != 3)
		return 2;
	primd = argv[1];
	sock = argv[2];
	setenv("PRIM_BROKER_SOCK", sock, 1);
	setenv("PRIM_BROKER_WAIT", "300", 1);
	broker = broker_start();
	semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	CHECK(semid >= 0 && msqid >= 0, "create");
	CHECK(semctl(semid, 0, SETVAL, 5) == 0, "SETVAL");

	kill(broker, SIGKILL);
	waitpid(broker, NULL, 0);

	child = fork();
	if (child == 0) {
		/* First call of a new process, no broker anywhere. */
		if (semop(semid, &take, 1) != 0 ||
		    msgsnd(msqid, &m, sizeof(m.text), 0) != 0 ||
		    msgrcv(msqid, &m, sizeof(m.text), 3, IPC_NOWAIT) < 0 ||
		    strcmp(m.text, "hello") != 0)
			_exit(1);
		_exit(0); /* dies holding 2 with SEM_UNDO */
	}
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "data path without a broker");
	printf("brokerdown: semop, msgsnd, msgrcv without a broker: ok\n");
	CHECK(semctl(semid, 0, GETVAL) == 3, "GETVAL without a broker");
	CHECK(msgctl(msqid, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0,
	      "IPC_STAT without a broker");
	errno = 0;
	CHECK(semctl(semid, 0, IPC_RMID) == -1 && errno == ENOSYS,
	      "IPC_RMID without a broker must fail with ENOSYS");
	printf("brokerdown: control call without a broker: ENOSYS: ok\n");

	broker = broker_start();
	for (int i = 0; i < 500 && (v = semctl(semid, 0, GETVAL)) != 5; i++)
		msleep(10);
	CHECK(v == 5, "the new broker did not reap the child (value %d)", v);
	printf("brokerdown: the next broker reaps a child that died "
	       "unregistered: ok\n");
	{
		struct timespec t0, t1;
		struct sembuf up = { 0, 1, IPC_NOWAIT };
		double s;

		kill(broker, SIGSTOP);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		errno = 0;
		CHECK(semget(IPC_PRIVATE, 1, 0600) == -1 && errno == ENOSYS,
		      "a control call to a stopped broker must fail with ENOSYS");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (double)(t1.tv_sec - t0.tv_sec) +
		    (t1.tv_nsec - t0.tv_nsec) / 1e9;
		/* A hang bound, not a timing threshold: the deadline is a
		 * second or two. */
		CHECK(s < 60, "the control call waited %.0f s", s);
		CHECK(semop(semid, &up, 1) == 0 && semctl(semid, 0, GETVAL) == 6,
		      "data path with the broker stopped");
		/*
		 * A fork child is not registered yet: its data-path calls
		 * try to register, but never wait for the stopped broker
		 * (its backlog accepts the connection; the HELLO would wait
		 * the exchanges' whole second). Not a speed bound: the
		 * slowest call must stay far below that second.
		 */
		child = fork();
		if (child == 0) {
			struct sembuf dn = { 0, -1, IPC_NOWAIT };
			double worst = 0;

			for (int i = 0; i < 3000; i++) {
				struct timespec a, b;
				double d;

				clock_gettime(CLOCK_MONOTONIC, &a);
				if (semop(semid, &dn, 1) != 0 ||
				    semop(semid, &up, 1) != 0)
					_exit(1);
				clock_gettime(CLOCK_MONOTONIC, &b);
				d = (double)(b.tv_sec - a.tv_sec) +
				    (b.tv_nsec - a.tv_nsec) / 1e9;
				if (d > worst)
					worst = d;
			}
			printf("brokerdown: a fork child's data path with the "
			       "broker stopped: slowest P+V %.3f s\n",
			       worst);
			fflush(stdout);
			_exit(worst < 0.5 ? 0 : 2);
		}
		CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st),
		      "fork child with the broker stopped");
		CHECK(WEXITSTATUS(st) != 1, "fork child: semop failed");
		CHECK(WEXITSTATUS(st) == 0,
		      "a fork child's data path waited for the stopped broker");
		kill(broker, SIGCONT);
		CHECK(semctl(semid, 0, SETVAL, 5) == 0,
		      "a control call once the broker is continued");
		printf("brokerdown: a stopped broker: ENOSYS after %.1f s, "
		       "the data path goes on, then all works again: ok\n",
		       s);
	}
	CHECK(semctl(semid, 0, IPC_RMID) == 0 &&
		      msgctl(msqid, IPC_RMID, NULL) == 0,
	      "remove after restart");
	kill(broker, SIGTERM);
	waitpid(broker, NULL, 0);
	printf("brokerdown: ok\n");
	return 0;
}
