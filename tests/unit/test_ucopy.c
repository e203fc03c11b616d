/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of prim__ucopy and prim_fault_fixup: a copy from or to memory
 * that is PROT_NONE, unmapped, partly mapped, past the end of a file, NULL
 * or (void *)-1 returns -EFAULT (through a SIGSEGV/SIGBUS handler that
 * calls prim_fault_fixup) and writes nothing outside its destination, nor
 * past the first byte that faulted; valid copies of every size up to 300
 * bytes and of larger ones, at every alignment, are byte-exact; the fixup
 * claims only kernel-raised faults inside the copy routine.
 *
 * cmocka installs its own SIGSEGV/SIGBUS handlers around each test, so each
 * test installs the handler itself (arm()).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmocka.h>

#include "prim/fault.h"
#include "ucopy.h"

static long pagesz;

/* What the handler saw of the faults that were not prim__ucopy's. */
static volatile sig_atomic_t foreign_faults;
static void *volatile foreign_page; /* made writable by the handler */

static void
on_fault(int sig, siginfo_t *info, void *uc)
{
	if (prim_fault_fixup(sig, info, uc))
		return;
	foreign_faults++;
	if (foreign_page != NULL) {
		/* A fault of the test itself: repair and retry it. */
		mprotect(foreign_page, (size_t)pagesz, PROT_READ | PROT_WRITE);
		foreign_page = NULL;
		return;
	}
	signal(sig, SIG_DFL); /* not expected: die of it */
}

static void
arm(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
	assert_int_equal(sigaction(SIGBUS, &sa, NULL), 0);
	foreign_faults = 0;
}

/* npages pages, the ones whose bit is set in none PROT_NONE. */
static unsigned char *
pages(int npages, unsigned none)
{
	unsigned char *p =
	    mmap(NULL, (size_t)(npages * pagesz), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	memset(p, 0x5a, (size_t)(npages * pagesz));
	for (int i = 0; i < npages; i++)
		if (none & (1u << i))
			assert_int_equal(
			    mprotect(p + i * pagesz, (size_t)pagesz, PROT_NONE),
			    0);
	return p;
}

static void
unpages(unsigned char *p, int npages)
{
	munmap(p, (size_t)(npages * pagesz));
}

/* A pattern no two nearby bytes share, different for src and dst. */
static void
pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 131u + seed * 7u + (i >> 8));
}

static void
copy_exact(size_t n, size_t soff, size_t doff)
{
	size_t cap = n + 64;
	unsigned char *src = malloc(cap), *dst = malloc(cap),
		      *want = malloc(cap);

	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(want);
	pattern(src, cap, 1);
	pattern(dst, cap, 2);
	memcpy(want, dst, cap);
	memcpy(want + doff, src + soff, n);
	assert_int_equal(prim__ucopy(dst + doff, src + soff, n), 0);
	/* Exact inside, and not a byte changed around the destination. */
	assert_memory_equal(dst, want, cap);
	free(src);
	free(dst);
	free(want);
}

static void
t_exact_small(void **state)
{
	(void)state;
	arm();
	for (size_t n = 0; n <= 300; n++)
		for (size_t soff = 0; soff < 16; soff += 3)
			for (size_t doff = 0; doff < 16; doff += 5)
				copy_exact(n, soff, doff);
}

static void
t_exact_large(void **state)
{
	static const size_t sizes[] = {511,  512,  1000,  4095,	 4096,
				       4097, 8192, 12289, 65536, 300000};

	(void)state;
	arm();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t off = 0; off < 16; off += 7)
			copy_exact(sizes[i], off, 15 - off);
}

/* A copy to mapped memory right after a page boundary is exact, and one
 * that ends at the boundary too: the routine never reads past src + n. */
static void
t_edges(void **state)
{
	unsigned char *p, buf[300];

	(void)state;
	arm();
	p = pages(3, 1u << 0 | 1u << 2); /* none, rw, none */
	pattern(p + pagesz, (size_t)pagesz, 3);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		memset(buf, 0, sizeof(buf));
		assert_int_equal(prim__ucopy(buf, p + pagesz, n), 0);
		assert_memory_equal(buf, p + pagesz, n);
		assert_int_equal(prim__ucopy(buf, p + 2 * pagesz - (long)n, n),
				 0);
		assert_memory_equal(buf, p + 2 * pagesz - (long)n, n);
		/* and the same as destinations */
		assert_int_equal(prim__ucopy(p + pagesz, buf, n), 0);
		assert_int_equal(prim__ucopy(p + 2 * pagesz - (long)n, buf, n),
				 0);
	}
	assert_int_equal(foreign_faults, 0);
	unpages(p, 3);
}

#if PRIM_UCOPY_RECOVERS

static const size_t fault_sizes[] = {1,	 2,   3,   4,	5,    6,    7,	  8,
				     9,	 15,  16,  17,	24,   31,   32,	  33,
				     64, 100, 104, 120, 4096, 8192, 65536};
#define NSIZES (sizeof(fault_sizes) / sizeof(fault_sizes[0]))

/* Every size, from and to one bad address: -EFAULT, the good side intact
 * (a destination buffer keeps its bytes: nothing could be read). */
static void
bad_both_ways(void *bad)
{
	static unsigned char good[65536 + 64], before[65536 + 64];

	pattern(good, sizeof(good), 4);
	memcpy(before, good, sizeof(good));
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = fault_sizes[i];

		assert_int_equal(prim__ucopy(good, bad, n), -EFAULT);
		assert_memory_equal(good, before, sizeof(good));
		assert_int_equal(prim__ucopy(bad, good, n), -EFAULT);
	}
}

static void
t_prot_none(void **state)
{
	unsigned char *p;

	(void)state;
	arm();
	p = pages(18, 0x3ffff); /* 18 pages, all PROT_NONE */
	bad_both_ways(p);
	bad_both_ways(p + 7);
	assert_int_equal(foreign_faults, 0);
	unpages(p, 18);
}

static void
t_unmapped(void **state)
{
	unsigned char *p;

	(void)state;
	arm();
	p = pages(18, 0);
	unpages(p, 18); /* nothing maps there now (no other thread maps) */
	bad_both_ways(p);
	bad_both_ways(p + 4093);
	bad_both_ways(NULL);
	bad_both_ways((void *)-1);
	bad_both_ways((void *)(uintptr_t)0x8000000000000000ull);
	assert_int_equal(foreign_faults, 0);
}

/*
 * A range that starts in a mapped page and runs into a PROT_NONE one:
 * -EFAULT whenever it reaches the second page. As a source, dst keeps
 * every byte the copy could not have read; as a destination, what it
 * wrote is a prefix of the data that stops before the boundary, and
 * nothing before dst changed.
 */
static void
t_partly_mapped(void **state)
{
	unsigned char *p, *edge, src[300], dst[300], want[300], ones[512];

	(void)state;
	arm();
	p = pages(2, 1u << 1); /* rw, none */
	edge = p + pagesz;
	pattern(p, (size_t)pagesz, 5);
	pattern(src, sizeof(src), 6);
	memset(ones, 0x5a, sizeof(ones));
	for (size_t k = 1; k <= 64; k++) {		    /* mapped bytes */
		for (size_t n = k + 1; n <= k + 200; n++) { /* copied */
			/* From: the source runs off the edge. */
			pattern(edge - 512, 512, 5);
			pattern(dst, sizeof(dst), 7);
			memcpy(want, dst, sizeof(dst));
			assert_int_equal(prim__ucopy(dst, edge - k, n),
					 -EFAULT);
			for (size_t i = 0; i < sizeof(dst); i++)
				if (dst[i] != want[i])
					assert_true(i < k &&
						    dst[i] == edge[i - k]);

			/* To: the destination runs off the edge. */
			memset(edge - 512, 0x5a, 512);
			assert_int_equal(prim__ucopy(edge - k, src, n),
					 -EFAULT);
			assert_memory_equal(edge - 512, ones, 512 - k);
			for (size_t i = 0; i < k; i++)
				if (edge[(long)i - (long)k] != 0x5a)
					assert_int_equal(
					    edge[(long)i - (long)k], src[i]);
		}
	}
	assert_int_equal(foreign_faults, 0);
	unpages(p, 2);
}

/* Past the end of a file: SIGBUS, also -EFAULT. */
static void
t_sigbus(void **state)
{
	unsigned char buf[64];
	int fd;
	void *m;

	(void)state;
	arm();
	fd = memfd_create("test_ucopy", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16), 0);
	m = mmap(NULL, (size_t)(2 * pagesz), PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	assert_true(m != MAP_FAILED);
	/* Inside the file's page: fine; the next page is past its end. */
	assert_int_equal(prim__ucopy(buf, m, 16), 0);
	assert_int_equal(prim__ucopy(buf, (char *)m + pagesz, 8), -EFAULT);
	assert_int_equal(prim__ucopy((char *)m + pagesz, buf, 64), -EFAULT);
	assert_int_equal(foreign_faults, 0);
	munmap(m, (size_t)(2 * pagesz));
	close(fd);
}

/* The test's own faults are not claimed: the handler sees them. */
static void
t_foreign_fault(void **state)
{
	unsigned char *p;

	(void)state;
	arm();
	p = pages(1, 1);
	foreign_page = p;
	((volatile unsigned char *)p)[10] = 1; /* faults once, repaired */
	assert_int_equal(foreign_faults, 1);
	assert_int_equal(p[10], 1);
	unpages(p, 1);
}

/* A PC of a context, for the synthetic calls below. */
static uintptr_t *
pc_of(ucontext_t *uc)
{
#if defined(__linux__) && defined(__x86_64__)
	return (uintptr_t *)&uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__linux__) && defined(__aarch64__)
	return (uintptr_t *)&uc->uc_mcontext.pc;
#elif defined(__x86_64__)
	return (uintptr_t *)&uc->uc_mcontext.mc_rip;
#else
	return (uintptr_t *)&uc->uc_mcontext.mc_gpregs.gp_elr;
#endif
}

/*
 * prim_fault_fixup itself: it moves the PC only for SIGSEGV/SIGBUS raised
 * by the kernel (si_code > 0) at an instruction of the copy, never for a
 * signal sent with kill or sigqueue while a thread copies.
 */
static void
t_fixup_claims(void **state)
{
	static const int codes[] = {SI_USER, SI_QUEUE, SI_TKILL};
	siginfo_t si;
	ucontext_t uc;
	uintptr_t *pc = pc_of(&uc);
	uintptr_t start = (uintptr_t)prim__ucopy_start,
		  end = (uintptr_t)prim__ucopy_end;

	(void)state;
	memset(&si, 0, sizeof(si));
	memset(&uc, 0, sizeof(uc));
	si.si_code = SEGV_MAPERR;
	assert_true(start < end);
	for (uintptr_t a = start; a < end; a++) {
		*pc = a;
		assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 1);
		assert_true(*pc == (uintptr_t)prim__ucopy_fixup);
		*pc = a;
		assert_int_equal(prim_fault_fixup(SIGBUS, &si, &uc), 1);
	}
	*pc = start - 1;
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 0);
	assert_true(*pc == start - 1);
	*pc = end;
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 0);
	*pc = (uintptr_t)t_fixup_claims;
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 0);
	*pc = start;
	assert_int_equal(prim_fault_fixup(SIGILL, &si, &uc), 0);
	assert_int_equal(prim_fault_fixup(SIGSEGV, NULL, &uc), 0);
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, NULL), 0);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		si.si_code = codes[i];
		assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 0);
		assert_true(*pc == start);
	}
	si.si_code = SI_KERNEL; /* a general-protection fault */
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 1);
}

/* Faults in several threads at once: each gets its own -EFAULT. */
static void *
fault_loop(void *arg)
{
	unsigned char *bad = arg, buf[64];
	intptr_t bad_results = 0;

	for (int i = 0; i < 20000; i++) {
		if (prim__ucopy(buf, bad + (i % 64), 1 + (size_t)(i % 64)) !=
		    -EFAULT)
			bad_results++;
		if (prim__ucopy(buf, buf + 32, 32) != 0)
			bad_results++;
	}
	return (void *)bad_results;
}

static void
t_threads(void **state)
{
	pthread_t t[4];
	unsigned char *p;
	void *res;

	(void)state;
	arm();
	p = pages(1, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fault_loop, p), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_true(res == NULL);
	}
	assert_int_equal(foreign_faults, 0);
	unpages(p, 1);
}

#else /* !PRIM_UCOPY_RECOVERS */

/* Here prim__ucopy is memcpy and the fixup never claims a fault. */
static void
t_fixup_never(void **state)
{
	siginfo_t si;
	ucontext_t uc;

	(void)state;
	memset(&si, 0, sizeof(si));
	memset(&uc, 0, sizeof(uc));
	si.si_code = SEGV_MAPERR;
	assert_int_equal(prim_fault_fixup(SIGSEGV, &si, &uc), 0);
}

#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_exact_small),
		cmocka_unit_test(t_exact_large),
		cmocka_unit_test(t_edges),
#if PRIM_UCOPY_RECOVERS
		cmocka_unit_test(t_prot_none),
		cmocka_unit_test(t_unmapped),
		cmocka_unit_test(t_partly_mapped),
		cmocka_unit_test(t_sigbus),
		cmocka_unit_test(t_foreign_fault),
		cmocka_unit_test(t_fixup_claims),
		cmocka_unit_test(t_threads),
#else
		cmocka_unit_test(t_fixup_never),
#endif
	};

	pagesz = sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
