/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * make check-tsan only (scripts/sanitize.sh puts -include of this file in
 * its CFLAGS): ck's atomics in a form ThreadSanitizer sees.
 *
 * On x86-64 ck_pr is inline assembly, and TSan sees nothing of an asm
 * statement, neither the access nor the ordering: a message or a request
 * published with ck_pr_store and read after ck_pr_load would look
 * unsynchronised, every plain access they order would be reported as a
 * race, and a plain access racing with a ck_pr one would not be.
 * ck's builtins port (CK_USE_CC_BUILTINS) makes its read-modify-write
 * operations and fences __sync builtins, which TSan instruments, but its
 * loads and stores stay volatile accesses, which TSan takes for plain ones:
 * every protocol word would be reported.
 *
 * So this build uses the builtins port with the loads made acquire loads
 * and the stores release stores (__atomic), which TSan sees as atomic.
 * That is what ck's own loads and stores are on x86-64 (TSO: every load
 * acquires, every store releases, every lock-prefixed read-modify-write is
 * a full barrier, as __sync is), so TSan judges the program as it runs
 * here. On a weaker machine (AArch64, where ck's loads are plain) the
 * tagged fences do that work, and TSan, which does not model stand-alone
 * fences, would not judge it the same way: this checks the x86-64 build.
 */
#ifndef PRIM_CK_PR_TSAN_H
#define PRIM_CK_PR_TSAN_H

/* Included before anything else: the feature macro every file of the
 * project is built with (-D_GNU_SOURCE), for the test programs the
 * checks compile themselves too, which define it in their first line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#define CK_USE_CC_BUILTINS 1
#include <ck_pr.h>

#undef ck_pr_load_char
#undef ck_pr_load_int
#undef ck_pr_load_uint
#undef ck_pr_load_8
#undef ck_pr_load_16
#undef ck_pr_load_32
#undef ck_pr_load_64
#undef ck_pr_store_char
#undef ck_pr_store_int
#undef ck_pr_store_uint
#undef ck_pr_store_8
#undef ck_pr_store_16
#undef ck_pr_store_32
#undef ck_pr_store_64

#define PRIM_TSAN_LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PRIM_TSAN_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define ck_pr_load_char(p)      PRIM_TSAN_LOAD(p)
#define ck_pr_load_int(p)       PRIM_TSAN_LOAD(p)
#define ck_pr_load_uint(p)      PRIM_TSAN_LOAD(p)
#define ck_pr_load_8(p)	        PRIM_TSAN_LOAD(p)
#define ck_pr_load_16(p)        PRIM_TSAN_LOAD(p)
#define ck_pr_load_32(p)        PRIM_TSAN_LOAD(p)
#define ck_pr_load_64(p)        PRIM_TSAN_LOAD(p)
#define ck_pr_store_char(p, v)  PRIM_TSAN_STORE(p, v)
#define ck_pr_store_int(p, v)   PRIM_TSAN_STORE(p, v)
#define ck_pr_store_uint(p, v)  PRIM_TSAN_STORE(p, v)
#define ck_pr_store_8(p, v)     PRIM_TSAN_STORE(p, v)
#define ck_pr_store_16(p, v)    PRIM_TSAN_STORE(p, v)
#define ck_pr_store_32(p, v)    PRIM_TSAN_STORE(p, v)
#define ck_pr_store_64(p, v)    PRIM_TSAN_STORE(p, v)

#endif
