/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * EFAULT instead of SIGSEGV for libprim's copies of caller memory. libprim
 * copies memory that may not be mapped (a pointer handed to a System V
 * call, which the kernel would answer with EFAULT) with one small routine
 * whose instructions are known. A program that wants those copies to fail
 * with -EFAULT rather than crash calls prim_fault_fixup first in its
 * SIGSEGV and SIGBUS handlers (installed with SA_SIGINFO). libsysv does
 * this itself (libsysv(7)). Without such a handler a bad pointer raises
 * SIGSEGV, as it would in memcpy.
 *
 * prim_fault_fixup is async-signal-safe and safe from any number of
 * threads at once; it is not a cancellation point.
 */
#ifndef PRIM_FAULT_H
#define PRIM_FAULT_H

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libprim is built with hidden visibility: its public API is default. */
#pragma GCC visibility push(default)

/*
 * Call from a SIGSEGV or SIGBUS handler with the handler's three arguments.
 * If the fault was raised by the kernel (not sent with kill(2) or
 * sigqueue(3)) at an instruction of libprim's copy routine, redirect the
 * saved context so that returning from the handler makes the copy return
 * -EFAULT to its caller, and return 1: the handler must then return at
 * once. Otherwise change nothing and return 0: the fault is the program's.
 * Always 0 on architectures where libprim does not recover faults
 * (prim_fault(3)).
 */
int prim_fault_fixup(int sig, siginfo_t *info, void *ucontext);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
