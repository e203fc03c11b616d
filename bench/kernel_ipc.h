/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kernel_syscall(SYS_semop, ...): a system call that reaches the kernel
 * even in a program linked with -lsysv or under LD_PRELOAD, for the
 * benchmarks that compare libsysv with the kernel's own System V IPC.
 * libsysv interposes syscall() and sends the SysV numbers to itself
 * (sysv/syscall.c), so syscall(SYS_semop, ...) would measure libsysv
 * twice; and dlsym(RTLD_NEXT, "syscall") from the program would still
 * find libsysv's when it is preloaded. This makes the system call
 * instruction itself on x86-64 and aarch64 (and falls back to the C
 * library's syscall() elsewhere, where the comparison is then not
 * meaningful: kernel_syscall_is_raw says so).
 *
 * Returns as syscall() does: the result, or -1 with errno set.
 * Async-signal-safe.
 */
#ifndef KERNEL_IPC_H
#define KERNEL_IPC_H

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__aarch64__)
#define kernel_syscall_is_raw 1
#else
#define kernel_syscall_is_raw 0
#endif

static inline long
kernel_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	r = x0;
#else
	return syscall(n, a1, a2, a3, a4, a5, a6);
#endif
	if ((unsigned long)r > -4096UL) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/*
 * kernel_syscall(number, args...): as syscall(), straight to the kernel.
 * Six words are read, as glibc's long syscall(long, ...) reads them; pass
 * each argument as the kernel's type or a long, as to syscall().
 */
static inline long
kernel_syscall(long n, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	return kernel_syscall6(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

#endif
