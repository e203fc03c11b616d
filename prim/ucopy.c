/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * prim__ucopy, a copy that fails with -EFAULT instead of crashing, and
 * prim_fault_fixup, the half of it that runs in the signal handler.
 *
 * The copy is a leaf routine in a top-level assembly block, so its
 * instruction range is exactly [prim__ucopy_start, prim__ucopy_end): no
 * compiler may move a load or store of the caller's memory out of it, or
 * spill a register to the stack inside it. The only memory it touches is
 * the two ranges it copies, so any SIGSEGV or SIGBUS the kernel raises at
 * one of its instructions is a bad pointer of the caller. Because it never
 * touches the stack, the return address is, at every instruction, where
 * the call left it (on x86-64 at the top of the stack, on AArch64 in x30),
 * so the handler only moves the saved program counter to prim__ucopy_fixup,
 * which returns -EFAULT to prim__ucopy's caller as if the copy had failed.
 * No setjmp, no system call: a copy that does not fault costs what a
 * memcpy of the same size costs.
 *
 * On other architectures prim__ucopy is memcpy and a bad pointer raises
 * SIGSEGV as before (prim_fault(3), BUGS).
 *
 * Concurrency: both functions are safe from any number of threads at once
 * and async-signal-safe; neither keeps any state.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "prim/fault.h"
#include "ucopy.h"

_Static_assert(EFAULT == 14, "the fixup paths below return -14");

#if PRIM_UCOPY_RECOVERS && defined(__x86_64__)

/* Indirect-branch tracking (CET): mark the entry when it is enforced. */
#if defined(__CET__) && (__CET__ & 1)
#define UCOPY_ENTRY "endbr64\n\t"
#else
#define UCOPY_ENTRY ""
#endif

/*
 * System V ABI: dst in rdi, src in rsi, n in rdx, result in eax; rax, rcx,
 * r8, r9 and xmm0-3 are scratch. The direction flag is clear on entry to
 * every function (the ABI requires it, and the kernel clears it on entry to
 * a signal handler), so rep movsb copies upwards without a cld.
 *
 * Up to 64 bytes (semop's operations, an mtype, a timespec) are copied with
 * possibly overlapping loads from each end and then the stores: no loop,
 * and all loads come before any store, so a source that faults leaves dst
 * untouched. Longer copies use rep movsb, which is the fastest copy on
 * CPUs with ERMS/FSRM. Every access lies inside [src, src + n) or
 * [dst, dst + n).
 */
/* clang-format off */
__asm__(".pushsection .text\n\t"
	".p2align 4\n\t"
	".globl prim__ucopy\n\t"
	".hidden prim__ucopy\n\t"
	".type prim__ucopy, @function\n\t"
	".globl prim__ucopy_start\n\t"
	".hidden prim__ucopy_start\n\t"
	".globl prim__ucopy_end\n\t"
	".hidden prim__ucopy_end\n\t"
	".globl prim__ucopy_fixup\n\t"
	".hidden prim__ucopy_fixup\n"
	"prim__ucopy:\n"
	"prim__ucopy_start:\n\t"
	".cfi_startproc\n\t" UCOPY_ENTRY
	"cmp $16, %rdx\n\t"
	"ja .Lprim_ucopy_gt16\n\t"
	"cmp $8, %rdx\n\t"
	"jb .Lprim_ucopy_lt8\n\t"
	/* 8..16 bytes */
	"mov (%rsi), %rax\n\t"
	"mov -8(%rsi,%rdx), %rcx\n\t"
	"mov %rax, (%rdi)\n\t"
	"mov %rcx, -8(%rdi,%rdx)\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	".Lprim_ucopy_lt8:\n\t"
	"cmp $4, %rdx\n\t"
	"jb .Lprim_ucopy_lt4\n\t"
	/* 4..7 bytes */
	"mov (%rsi), %eax\n\t"
	"mov -4(%rsi,%rdx), %ecx\n\t"
	"mov %eax, (%rdi)\n\t"
	"mov %ecx, -4(%rdi,%rdx)\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	".Lprim_ucopy_lt4:\n\t"
	"test %rdx, %rdx\n\t"
	"jz .Lprim_ucopy_ok\n\t"
	/* 1..3 bytes: the first, the middle and the last one */
	"mov %rdx, %r8\n\t"
	"shr $1, %r8\n\t"
	"movzbl (%rsi), %eax\n\t"
	"movzbl (%rsi,%r8), %ecx\n\t"
	"movzbl -1(%rsi,%rdx), %r9d\n\t"
	"mov %al, (%rdi)\n\t"
	"mov %cl, (%rdi,%r8)\n\t"
	"mov %r9b, -1(%rdi,%rdx)\n"
	".Lprim_ucopy_ok:\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	".Lprim_ucopy_gt16:\n\t"
	"cmp $32, %rdx\n\t"
	"ja .Lprim_ucopy_gt32\n\t"
	/* 17..32 bytes */
	"movdqu (%rsi), %xmm0\n\t"
	"movdqu -16(%rsi,%rdx), %xmm1\n\t"
	"movdqu %xmm0, (%rdi)\n\t"
	"movdqu %xmm1, -16(%rdi,%rdx)\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	".Lprim_ucopy_gt32:\n\t"
	"cmp $64, %rdx\n\t"
	"ja .Lprim_ucopy_rep\n\t"
	/* 33..64 bytes */
	"movdqu (%rsi), %xmm0\n\t"
	"movdqu 16(%rsi), %xmm1\n\t"
	"movdqu -32(%rsi,%rdx), %xmm2\n\t"
	"movdqu -16(%rsi,%rdx), %xmm3\n\t"
	"movdqu %xmm0, (%rdi)\n\t"
	"movdqu %xmm1, 16(%rdi)\n\t"
	"movdqu %xmm2, -32(%rdi,%rdx)\n\t"
	"movdqu %xmm3, -16(%rdi,%rdx)\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	".Lprim_ucopy_rep:\n\t"
	"mov %rdx, %rcx\n\t"
	"rep movsb\n\t"
	"xor %eax, %eax\n\t"
	"ret\n"
	"prim__ucopy_end:\n"
	"prim__ucopy_fixup:\n\t"
	"mov $-14, %eax\n\t"
	"ret\n\t"
	".cfi_endproc\n\t"
	".size prim__ucopy, . - prim__ucopy\n\t"
	".popsection");
/* clang-format on */

#elif PRIM_UCOPY_RECOVERS && defined(__aarch64__)

/* Branch target identification: mark the entry when it is enforced. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define UCOPY_ENTRY "hint #34\n\t" /* bti c */
#else
#define UCOPY_ENTRY ""
#endif

/*
 * AAPCS64: dst in x0, src in x1, n in x2, result in w0; x3 is scratch. A
 * plain loop, 8 bytes at a time (unaligned accesses are allowed on normal
 * memory) and then byte by byte. x30 is never written: it holds the return
 * address at every instruction.
 */
/* clang-format off */
__asm__(".pushsection .text\n\t"
	".p2align 4\n\t"
	".globl prim__ucopy\n\t"
	".hidden prim__ucopy\n\t"
	".type prim__ucopy, %function\n\t"
	".globl prim__ucopy_start\n\t"
	".hidden prim__ucopy_start\n\t"
	".globl prim__ucopy_end\n\t"
	".hidden prim__ucopy_end\n\t"
	".globl prim__ucopy_fixup\n\t"
	".hidden prim__ucopy_fixup\n"
	"prim__ucopy:\n"
	"prim__ucopy_start:\n\t"
	".cfi_startproc\n\t" UCOPY_ENTRY
	"cmp x2, #8\n\t"
	"b.lo 2f\n"
	"1:\n\t"
	"ldr x3, [x1], #8\n\t"
	"str x3, [x0], #8\n\t"
	"sub x2, x2, #8\n\t"
	"cmp x2, #8\n\t"
	"b.hs 1b\n"
	"2:\n\t"
	"cbz x2, 4f\n"
	"3:\n\t"
	"ldrb w3, [x1], #1\n\t"
	"strb w3, [x0], #1\n\t"
	"subs x2, x2, #1\n\t"
	"b.ne 3b\n"
	"4:\n\t"
	"mov w0, #0\n\t"
	"ret\n"
	"prim__ucopy_end:\n"
	"prim__ucopy_fixup:\n\t"
	"mov w0, #-14\n\t"
	"ret\n\t"
	".cfi_endproc\n\t"
	".size prim__ucopy, . - prim__ucopy\n\t"
	".popsection");
/* clang-format on */

#else

/* No recovery here: a bad pointer faults in memcpy (prim_fault(3)). */
int
prim__ucopy(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	return 0;
}

#endif

#if PRIM_UCOPY_RECOVERS
/*
 * Was the signal raised by the kernel for a fault (rather than sent)? A
 * signal sent with kill(2) or sigqueue(3) while a thread happens to be
 * copying must not make the copy fail.
 */
static int
from_fault(const siginfo_t *info)
{
#if defined(__linux__)
	/* SI_USER is 0, SI_QUEUE, SI_TKILL and the others are negative;
	 * SI_KERNEL (0x80) is a general-protection fault on x86-64, which
	 * a non-canonical address (0x8000000000000000, say) raises. */
	return info->si_code > 0;
#else
	/* FreeBSD: the fault codes are small, SI_USER is 0x10001 and up. */
	return info->si_code > 0 && info->si_code < SI_USER;
#endif
}

/* The saved program counter of a signal's context. */
static uintptr_t *
saved_pc(void *ucontext)
{
	ucontext_t *uc = ucontext;

#if defined(__linux__) && defined(__x86_64__)
	return (uintptr_t *)&uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__linux__) && defined(__aarch64__)
	return (uintptr_t *)&uc->uc_mcontext.pc;
#elif defined(__x86_64__) /* FreeBSD, DragonFly */
	return (uintptr_t *)&uc->uc_mcontext.mc_rip;
#else			  /* FreeBSD arm64 */
	return (uintptr_t *)&uc->uc_mcontext.mc_gpregs.gp_elr;
#endif
}
#endif

int
prim_fault_fixup(int sig, siginfo_t *info, void *ucontext)
{
#if PRIM_UCOPY_RECOVERS
	uintptr_t *pc;

	if ((sig != SIGSEGV && sig != SIGBUS) || info == NULL ||
	    ucontext == NULL || !from_fault(info))
		return 0;
	pc = saved_pc(ucontext);
	if (*pc < (uintptr_t)prim__ucopy_start ||
	    *pc >= (uintptr_t)prim__ucopy_end)
		return 0;
	/* The return address is untouched (see above): the fixup's ret
	 * goes back to prim__ucopy's caller with -EFAULT. */
	*pc = (uintptr_t)prim__ucopy_fixup;
	return 1;
#else
	(void)sig;
	(void)info;
	(void)ucontext;
	return 0;
#endif
}
