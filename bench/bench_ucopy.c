/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench_ucopy: the cost of prim__ucopy, the copy that gives EFAULT instead
 * of SIGSEGV (prim/ucopy.c), against the C library's memcpy, for the sizes
 * libsysv copies: 6 bytes (one semop operation), 64 bytes (a few
 * operations, a small structure) and 8 KiB (a large copy). Both are called
 * through a function pointer, as a copy of a size known only at run time
 * calls memcpy, so the comparison is of the routines, not of inlining.
 *
 * Unlike the other benchmarks this one has no kernel side: it prints its
 * table and one line per size, "UCOPY <bytes> <ucopy ns> <memcpy ns>"
 * (medians of BENCH_REPS interleaved reps), and no SPEEDUP line. It never
 * fails because of a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "ucopy.h"

typedef int (*ucopy_fn)(void *, const void *, size_t);
typedef void *(*memcpy_fn)(void *, const void *, size_t);

/* volatile: an indirect call every time, never inlined or hoisted. */
static ucopy_fn volatile ucopy_p = prim__ucopy;
static memcpy_fn volatile memcpy_p = memcpy;

static _Alignas(64) unsigned char src[8192 + 64], dst[8192 + 64];

static double
run_ucopy(size_t n, long iters)
{
	uint64_t t0 = bench_now_ns();

	for (long i = 0; i < iters; i++)
		if (ucopy_p(dst, src, n) != 0) {
			fprintf(stderr, "bench_ucopy: a valid copy failed\n");
			exit(1);
		}
	return (double)(bench_now_ns() - t0) / (double)iters;
}

static double
run_memcpy(size_t n, long iters)
{
	uint64_t t0 = bench_now_ns();

	for (long i = 0; i < iters; i++)
		memcpy_p(dst, src, n);
	return (double)(bench_now_ns() - t0) / (double)iters;
}

int
main(void)
{
	static const size_t sizes[] = {6, 64, 8192};
	static const long iters[] = {20000000, 20000000, 400000};

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(src, 0x5a, sizeof(src));
	printf("bench_ucopy: prim__ucopy against memcpy, both through a "
	       "function pointer, median of %d reps\n",
	       BENCH_REPS);
	printf("\n%-16s %14s %14s %9s\n", "row", "prim__ucopy", "memcpy",
	       "ucopy/memcpy");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double u[BENCH_REPS], m[BENCH_REPS], mu, mm;
		char row[32];

		run_ucopy(sizes[s], iters[s] / 10); /* warm up */
		run_memcpy(sizes[s], iters[s] / 10);
		for (int r = 0; r < BENCH_REPS; r++) {
			u[r] = run_ucopy(sizes[s], iters[s]);
			m[r] = run_memcpy(sizes[s], iters[s]);
		}
		mu = bench_median(u, BENCH_REPS);
		mm = bench_median(m, BENCH_REPS);
		snprintf(row, sizeof(row), "ucopy_%zu", sizes[s]);
		printf("%-16s %11.2f ns %11.2f ns %11.2f\n", row, mu, mm,
		       mu / mm);
		printf("UCOPY %zu %.2f %.2f\n", sizes[s], mu, mm);
	}
	return 0;
}
