/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Copies of memory a caller handed in that may not be mapped: the kernel's
 * copy_from_user/copy_to_user, in userspace. prim__ucopy is a leaf routine
 * written in assembly (ucopy.c) whose instruction range is known, so that
 * a SIGSEGV or SIGBUS raised inside it can be turned by the signal handler
 * (prim_fault_fixup, <prim/fault.h>) into a return of -EFAULT, with no
 * system call and no setjmp on the path of a copy that does not fault.
 *
 * Concurrency: prim__ucopy is safe from any number of threads at once and
 * async-signal-safe, as memcpy is. Never installed.
 */
#ifndef PRIM_UCOPY_H
#define PRIM_UCOPY_H

#include <stddef.h>

#include "wait.h" /* PRIM_HIDDEN */

/*
 * 1 where a fault inside prim__ucopy is recovered: x86-64 and AArch64 on
 * Linux (tested) and FreeBSD (x86-64 also DragonFly; not yet tested).
 * Elsewhere prim__ucopy is memcpy and a bad pointer still faults.
 */
#if (defined(__x86_64__) && (defined(__linux__) || defined(__FreeBSD__) ||     \
			     defined(__DragonFly__))) ||                       \
    (defined(__aarch64__) && (defined(__linux__) || defined(__FreeBSD__)))
#define PRIM_UCOPY_RECOVERS 1
#else
#define PRIM_UCOPY_RECOVERS 0
#endif

/*
 * Copy n bytes from src to dst (which must not overlap), as memcpy.
 * Returns 0, or -EFAULT when a byte of either range could not be accessed
 * and a handler called prim_fault_fixup for the fault. dst then holds an
 * unspecified prefix of the copy (at most the bytes before the first one
 * that faulted); nothing outside [dst, dst + n) is ever written. Without
 * such a handler a bad pointer raises SIGSEGV or SIGBUS, as memcpy does.
 */
PRIM_HIDDEN int prim__ucopy(void *dst, const void *src, size_t n);

/*
 * The instructions of prim__ucopy that may fault are those in
 * [prim__ucopy_start, prim__ucopy_end); prim__ucopy_fixup returns -EFAULT
 * to prim__ucopy's caller. The routine never touches its stack, so at
 * every one of those instructions the return address is where the entry
 * left it (on the stack on x86-64, in x30 on AArch64).
 */
#if PRIM_UCOPY_RECOVERS
extern const char prim__ucopy_start[] PRIM_HIDDEN;
extern const char prim__ucopy_end[] PRIM_HIDDEN;
extern const char prim__ucopy_fixup[] PRIM_HIDDEN;
#endif

#endif
