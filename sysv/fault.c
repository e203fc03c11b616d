/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * EFAULT, not SIGSEGV: libsysv copies every structure the caller hands in
 * or out with prim__ucopy, and this file installs the SIGSEGV and SIGBUS
 * handler that turns a fault inside that copy into -EFAULT
 * (prim_fault_fixup), as the kernel's copy_from_user/copy_to_user would.
 * The handler is installed when libsysv loads (init.c) and stays installed:
 * sigaction, __sigaction, signal, bsd_signal, ssignal, sysv_signal,
 * __sysv_signal, sigset, sigignore and siginterrupt are interposed for
 * SIGSEGV and SIGBUS (glibc's own signal() and friends call its internal
 * sigaction, which no interposition of sigaction sees). For those two
 * signals they record the application's disposition and report it back,
 * as the kernel would have stored it; for every other signal they are the
 * C library's functions. A fault that is not ours gets what the
 * application's disposition would have given it: its handler is called as
 * the kernel would call it; SIG_DFL (and SIG_IGN, for a real fault) kills
 * the process with the default action.
 *
 * Our handler's flags: SA_SIGINFO, for the context the fixup rewrites;
 * SA_NODEFER and an empty sa_mask, so that the kernel blocks nothing on
 * delivery and the application's sa_mask and SA_NODEFER are applied
 * exactly, by us, around its own handler only (an application handler set
 * with SA_NODEFER must be entered again by a fault inside it; the fixup
 * needs no mask at all); SA_ONSTACK and SA_RESTART as the application's
 * handler has them, so that it runs on the stack it asked for (an
 * alternate stack is what lets a stack overflow be handled at all; a
 * small one must not be used by a handler that did not ask for it) and
 * a sent signal restarts system calls as it asked; both when it has no
 * handler (the process is about to die, or ignores a sent signal, which
 * a restart disturbs least). The fixup itself makes no system call; the
 * rest, which only runs for faults that are not ours, may.
 *
 * Every other signal's handler is wrapped too, for a different reason: a
 * blocked semop, msgsnd or msgrcv returns EINTR after a handler, even one
 * that ran while libprim spun before its futex sleep, or just before the
 * system call, when no system call was interrupted (include/prim/intr.h;
 * doc/design.md, "Signals during a blocking call"). So a handler the
 * program installs (SIG_DFL and SIG_IGN are not wrapped) is installed in
 * the kernel as on_signal, with the program's flags, mask and SA_SIGINFO
 * added; app_fn[] holds the program's handler, which on_signal calls after
 * counting the handler in this thread's struct prim_intr. The kernel's
 * record is otherwise the program's own (SA_RESETHAND leaves SIG_DFL there
 * after the first delivery, SA_RESTART, SA_NODEFER, SA_ONSTACK and the mask
 * act as asked), and the old action reported is the kernel's with the
 * program's handler and SA_SIGINFO bit put back. signal() and friends build
 * the action as the C library's do and take the same path, for every
 * signal.
 *
 * Concurrency: every function is thread-safe and, as the functions it
 * replaces, async-signal-safe once libsysv is initialised. The recorded
 * dispositions are guarded by a spin lock that is only ever taken with
 * every signal blocked, so neither a handler nor a nested wrapper can
 * interrupt its holder on the same thread. The handlers themselves take
 * no lock (on_signal reads app_fn[] with one atomic load).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prim/fault.h"
#include "prim/intr.h"
#include "sysv_int.h"

/* The C library declares these only under some feature macros. */
int __sigaction(int sig, const struct sigaction *act, struct sigaction *oact);
sighandler_t bsd_signal(int sig, sighandler_t h);

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
typedef int (*sigint_fn)(int, int);
typedef int (*sigignore_fn)(int);

/* The names we replace; the C library's functions of the same names. */
enum {
	R_SIGACTION,
	R___SIGACTION,
	R_SIGNAL,
	R_BSD_SIGNAL,
	R_SSIGNAL,
	R_SYSV_SIGNAL,
	R___SYSV_SIGNAL,
	R_SIGSET,
	R_SIGIGNORE,
	R_SIGINTERRUPT,
	R_N
};
static const char *const real_names[R_N] = {
    "sigaction",   "__sigaction",   "signal", "bsd_signal", "ssignal",
    "sysv_signal", "__sysv_signal", "sigset", "sigignore",  "siginterrupt",
};
static void *real[R_N];

#define REAL_SIGACTION ((sigaction_fn)real[R_SIGACTION])

/* The kernel's flag bits (asm-generic/signal-defs.h). */
#define K_SA_UNSUPPORTED    0x00000400 /* never supported: a probe */
#define K_SA_EXPOSE_TAGBITS 0x00000800
#define K_SA_RESTORER	    0x04000000
#define K_SA_ABI_BITS	    0x03000000 /* x86: SA_IA32_ABI, SA_X32_ABI */
#define K_UAPI_FLAGS                                                           \
	(SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | SA_RESTART |  \
	 SA_NODEFER | SA_RESETHAND | K_SA_EXPOSE_TAGBITS | K_SA_RESTORER)

_Atomic int sysv__fault_state; /* SYSV_FAULT_* */

/* Guarded by lock: the application's SIGSEGV [0] and SIGBUS [1]. */
static struct sigaction app[2];
static _Atomic int intr[2];    /* siginterrupt(sig, 1) was asked */
static unsigned long added;    /* flag bits the C library adds (SA_RESTORER) */
static void (*restorer)(void); /* and the restorer it passes */
static int clears_unknown;     /* the kernel drops unknown flag bits */
static atomic_flag lock = ATOMIC_FLAG_INIT;
static __thread int resolving; /* dlsym is running on this thread */

/*
 * Every other signal. app_fn: the program's handler (or SIG_DFL, SIG_IGN)
 * as last set through us; set under the lock, read by on_signal without
 * it. app_info: 0 if never set through us, else 1 + the program's
 * SA_SIGINFO bit (the kernel's record has ours). sig_intr: siginterrupt(sig,
 * 1) was asked, for signal()'s SA_RESTART.
 */
static _Atomic(uintptr_t) app_fn[_NSIG];
static _Atomic unsigned char app_info[_NSIG];
static _Atomic unsigned char sig_intr[_NSIG];

/* This thread's handler count for libprim (initial-exec: no allocation on
 * first use, which a handler could not afford). */
static __thread struct prim_intr thread_intr
    __attribute__((tls_model("initial-exec")));

static struct prim_intr *
intr_self(void)
{
	return &thread_intr;
}

static int
slot(int sig)
{
	return sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : -1;
}

static void on_fault(int sig, siginfo_t *info, void *uc);

/* Was the signal sent (kill, sigqueue, raise), not raised by a fault? */
static int
sent_signal(const siginfo_t *info)
{
#ifdef __linux__
	return info == NULL || info->si_code <= 0;
#else
	return info == NULL || info->si_code <= 0 || info->si_code >= SI_USER;
#endif
}

static int
is_handler(const struct sigaction *a)
{
	return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/*
 * Block every signal (the C library's internal ones too) with the raw
 * system call, saving the mask in *old; set_mask puts it back.
 */
static void
block_all(sigset_t *old)
{
	sigset_t all;

	memset(&all, 0xff, sizeof(all));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, _NSIG / 8);
}

static void
set_mask(const sigset_t *m)
{
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, m, NULL, _NSIG / 8);
}

/* Only ever with every signal blocked (see the file comment). */
static void
take(void)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		sched_yield(); /* the holder is another thread */
}

static void
drop(void)
{
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

/*
 * Install our handler for app[i]'s signal, with the flags the file
 * comment explains. Called with the lock held (or before anyone else
 * can see the records).
 */
static int
install(int i, struct sigaction *back)
{
	struct sigaction k;
	int sig = i == 0 ? SIGSEGV : SIGBUS;

	memset(&k, 0, sizeof(k));
	k.sa_sigaction = on_fault;
	sigemptyset(&k.sa_mask);
	k.sa_flags =
	    SA_SIGINFO | SA_NODEFER |
	    (is_handler(&app[i]) ? app[i].sa_flags & (SA_ONSTACK | SA_RESTART)
				 : SA_ONSTACK | SA_RESTART);
	if (back != NULL)
		k.sa_flags |= K_SA_UNSUPPORTED; /* see resolve() */
	if (REAL_SIGACTION(sig, &k, NULL) != 0)
		return -1;
	if (back != NULL && REAL_SIGACTION(sig, NULL, back) == 0) {
		/* What the C library and the kernel made of our flags. */
		clears_unknown = !(back->sa_flags & K_SA_UNSUPPORTED);
		added =
		    (unsigned long)back->sa_flags & ~(unsigned long)k.sa_flags;
#ifdef __linux__
		restorer = back->sa_restorer;
#endif
	}
	return 0;
}

/* Record act as the kernel would store it for the application. */
static void
normalize(struct sigaction *rec, const struct sigaction *act)
{
	*rec = *act;
	/* The kernel keeps _NSIG - 1 bits of the mask, never KILL or STOP. */
	memset((char *)&rec->sa_mask + _NSIG / 8, 0,
	       sizeof(rec->sa_mask) - _NSIG / 8);
	sigdelset(&rec->sa_mask, SIGKILL);
	sigdelset(&rec->sa_mask, SIGSTOP);
	rec->sa_flags |= (int)added;
	if (clears_unknown)
		rec->sa_flags &= (int)(K_UAPI_FLAGS | added);
#ifdef __x86_64__
	/* Set by a 64-bit caller, the kernel clears the ABI bits (they
	 * say which ABI installed the action). */
	rec->sa_flags &= ~K_SA_ABI_BITS;
#endif
#ifdef __linux__
	if (added & K_SA_RESTORER)
		rec->sa_restorer = restorer;
#endif
}

/* Fill *oact as the C library's sigaction would from the kernel's record
 * (it writes only the kernel's part of the mask). */
static void
report(struct sigaction *oact, const struct sigaction *rec)
{
	oact->sa_sigaction = rec->sa_sigaction;
	oact->sa_flags = rec->sa_flags;
#ifdef __linux__
	oact->sa_restorer = rec->sa_restorer;
#endif
	memcpy(&oact->sa_mask, &rec->sa_mask, _NSIG / 8);
}

/*
 * Resolve the C library's functions and install the handler, recording
 * the disposition this process had (inherited across exec, or set before
 * libsysv was loaded). Called with every signal blocked, once.
 */
static void
resolve(void)
{
	struct sigaction back;

	resolving = 1; /* dlsym may call back into us */
	for (int i = 0; i < R_N; i++)
		real[i] = dlsym(RTLD_NEXT, real_names[i]);
	resolving = 0;
	if (REAL_SIGACTION == NULL)
		return; /* no handler: bad pointers crash as before */
	prim_intr_register(intr_self);
	for (int i = 0; i < 2; i++) {
		int sig = i == 0 ? SIGSEGV : SIGBUS;

		if (REAL_SIGACTION(sig, NULL, &app[i]) != 0)
			continue;
		if (app[i].sa_sigaction == on_fault) /* never: libsysv is */
			app[i].sa_handler = SIG_DFL; /* loaded once */
		/*
		 * The first install also learns what the C library adds to
		 * every action (SA_RESTORER) and whether the kernel drops
		 * flag bits it does not know (Linux 5.11 and later), so that
		 * oldact reports what the kernel would have stored; then the
		 * handler is installed again without the probe bit.
		 */
		if (i == 0)
			install(i, &back);
		install(i, NULL);
	}
}

/*
 * fork: no thread may be inside a critical section when the child is
 * made, or the child would find the lock held for ever.
 */
static sigset_t fork_mask; /* the forking thread's, under the lock */

static void
fork_prepare(void)
{
	sigset_t old;

	block_all(&old);
	take();
	fork_mask = old;
}

static void
fork_done(void)
{
	sigset_t old = fork_mask;

	drop();
	set_mask(&old);
}

void
sysv__fault_init(void)
{
	sigset_t old;
	int expect = SYSV_FAULT_NONE;

	if (atomic_load_explicit(&sysv__fault_state, memory_order_acquire) ==
	    SYSV_FAULT_READY)
		return;
	if (resolving)
		return; /* dlsym called us: the caller copes with real[] NULL */
	block_all(&old);
	if (atomic_compare_exchange_strong(&sysv__fault_state, &expect,
					   SYSV_FAULT_BUSY)) {
		resolve();
		pthread_atfork(fork_prepare, fork_done, fork_done);
		atomic_store_explicit(&sysv__fault_state, SYSV_FAULT_READY,
				      memory_order_release);
	} else {
		while (atomic_load_explicit(&sysv__fault_state,
					    memory_order_acquire) !=
		       SYSV_FAULT_READY)
			sched_yield(); /* another thread resolves */
	}
	set_mask(&old);
}

/*
 * Is sig one whose disposition we record (SIGSEGV or SIGBUS, with our
 * handler installed)? Its slot, or -1: then the C library's real[r] does
 * the work, unless there is none (NULL, errno ENOSYS).
 */
static int
ours(int sig)
{
	sysv__fault_init();
	return REAL_SIGACTION != NULL ? slot(sig) : -1;
}

static void *
real_fn(int r)
{
	if (real[r] == NULL)
		errno = ENOSYS;
	return real[r];
}

/*
 * The application's new disposition of app[i]'s signal (act, NULL: none)
 * and its previous one in *prev. Our handler stays the kernel's.
 */
static int
swap(int i, const struct sigaction *act, struct sigaction *prev)
{
	struct sigaction rec, was;
	sigset_t old;
	int r = 0;

	if (act != NULL)
		normalize(&rec, act);
	block_all(&old);
	take();
	*prev = app[i];
	if (act != NULL && act->sa_sigaction != on_fault) {
		was = app[i];
		app[i] = rec;
		if ((r = install(i, NULL)) != 0)
			app[i] = was;
	}
	drop();
	set_mask(&old);
	return r;
}

/*
 * Every other signal's handler (see the file comment): count it for
 * libprim, then call the program's, with the arguments the kernel gave us
 * (SA_SIGINFO is always ours: info is real; a handler without it ignores
 * the last two, as on_fault's does).
 */
static void
on_signal(int sig, siginfo_t *info, void *uc)
{
	uintptr_t h;

	prim_intr_note(&thread_intr);
	h = atomic_load_explicit(&app_fn[sig], memory_order_acquire);
	if (h == (uintptr_t)SIG_IGN)
		return; /* set meanwhile (the kernel has it now) */
	if (h == (uintptr_t)SIG_DFL) {
		/* Set meanwhile, and in the kernel already (installed before
		 * recorded): what the program asked for, once we return. */
		int e = errno;

		syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
		errno = e;
		return;
	}
	((void (*)(int, siginfo_t *, void *))h)(sig, info, uc);
}

/* Is sig one whose handlers on_signal wraps? */
static int
wrapped(int sig)
{
	return sig > 0 && sig < _NSIG && slot(sig) < 0 &&
	       REAL_SIGACTION != NULL;
}

/*
 * The new disposition of another signal (act, NULL: none) and the previous
 * one, as the program set it, in *prev (NULL: not wanted). The C library's
 * sigaction does the checks (EINVAL) and sets errno.
 */
static int
swap_other(int sig, const struct sigaction *act, struct sigaction *prev)
{
	struct sigaction k, was;
	uintptr_t ofn;
	unsigned char oinfo;
	sigset_t old;
	int r;

	block_all(&old);
	take();
	ofn = atomic_load_explicit(&app_fn[sig], memory_order_relaxed);
	oinfo = atomic_load_explicit(&app_info[sig], memory_order_relaxed);
	if (act != NULL && is_handler(act)) {
		/* Recorded first: a delivery from now on calls the new one. */
		k = *act;
		k.sa_sigaction = on_signal;
		k.sa_flags |= SA_SIGINFO;
		atomic_store_explicit(&app_fn[sig], (uintptr_t)act->sa_handler,
				      memory_order_release);
		r = REAL_SIGACTION(sig, &k, &was);
		if (r != 0)
			atomic_store_explicit(&app_fn[sig], ofn,
					      memory_order_release);
	} else {
		/* Installed first: see on_signal. */
		r = REAL_SIGACTION(sig, act, &was);
		if (r == 0 && act != NULL)
			atomic_store_explicit(&app_fn[sig],
					      (uintptr_t)act->sa_handler,
					      memory_order_release);
	}
	if (r == 0 && act != NULL)
		atomic_store_explicit(
		    &app_info[sig],
		    (unsigned char)(1 + !!(act->sa_flags & SA_SIGINFO)),
		    memory_order_relaxed);
	drop();
	set_mask(&old);
	if (r != 0 || prev == NULL)
		return r;
	*prev = was;
	if (was.sa_sigaction == on_signal)
		prev->sa_handler = (sighandler_t)ofn;
	if (oinfo != 0) {
		prev->sa_flags &= ~SA_SIGINFO;
		if (oinfo == 2)
			prev->sa_flags |= SA_SIGINFO;
	}
	return 0;
}

/* swap or swap_other, by signal. */
static int
swap_any(int sig, const struct sigaction *act, struct sigaction *prev)
{
	int i = slot(sig);

	return i >= 0 ? swap(i, act, prev) : swap_other(sig, act, prev);
}

/*
 * The handler. A fault inside prim__ucopy returns to its fixup. Any other
 * SIGSEGV or SIGBUS gets what the application's disposition gives it.
 */
static void
on_fault(int sig, siginfo_t *info, void *uc)
{
	void (*fn)(int, siginfo_t *, void *);
	struct sigaction a;
	sigset_t old;
	int i, e = errno, sent = sent_signal(info);

	if (prim_fault_fixup(sig, info, uc))
		return;
	if ((i = slot(sig)) < 0)
		return;
	block_all(&old);
	take();
	a = app[i];
	if (is_handler(&a) && (a.sa_flags & SA_RESETHAND)) {
		/* The kernel resets the action as it delivers the signal. */
		app[i].sa_handler = SIG_DFL;
		install(i, NULL);
	}
	if (a.sa_handler == SIG_DFL || (a.sa_handler == SIG_IGN && !sent)) {
		/*
		 * The default action (a real fault the application ignores is
		 * given it too, as the kernel forces it). Put SIG_DFL in the
		 * kernel and return: the faulting instruction faults again
		 * and the process dies of it, with a core dump of the real
		 * fault. A sent signal does not come back by itself: send it
		 * again, to be delivered once our return unblocks it.
		 */
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		REAL_SIGACTION(sig, &dfl, NULL);
		if (sent)
			syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
		drop();
		errno = e;
		return; /* our return restores the interrupted mask */
	}
	drop();
	if (a.sa_handler == SIG_IGN) {
		errno = e; /* a sent signal the application ignores */
		return;
	}
	/* As the kernel delivers it: block sa_mask, and the signal itself
	 * unless SA_NODEFER, over the mask of the interrupted code. */
	for (size_t b = 0; b < _NSIG / 8; b++)
		((unsigned char *)&old)[b] |= ((unsigned char *)&a.sa_mask)[b];
	if (!(a.sa_flags & SA_NODEFER))
		sigaddset(&old, sig);
	set_mask(&old);
	errno = e;
	prim_intr_note(&thread_intr); /* a handler runs: EINTR for libprim */
	/* The kernel passes the three arguments to every handler on
	 * x86-64; one without SA_SIGINFO just ignores the last two. */
	fn = (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction
				       : (void (*)(int, siginfo_t *, void *))(
					     void (*)(void))a.sa_handler;
	fn(sig, info, uc);
}

/* ---- the interposed functions ------------------------------------------ */

static int
do_sigaction(int r, int sig, const struct sigaction *act,
	     struct sigaction *oact)
{
	struct sigaction a, prev;
	int i = ours(sig);
	sigaction_fn f;

	if (i < 0 && !wrapped(sig))
		return (f = (sigaction_fn)real_fn(r)) ? f(sig, act, oact) : -1;
	if (act != NULL)
		a = *act; /* a bad act faults here, as in the C library */
	if (i < 0) {
		if (swap_other(sig, act != NULL ? &a : NULL,
			       oact != NULL ? &prev : NULL) != 0)
			return -1;
		if (oact != NULL)
			*oact = prev;
		return 0;
	}
	if (swap(i, act != NULL ? &a : NULL, &prev) != 0)
		return -1;
	if (oact != NULL)
		report(oact, &prev);
	return 0;
}

SYSV_EXPORT int
sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	return do_sigaction(R_SIGACTION, sig, act, oact);
}

SYSV_EXPORT int
__sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	return do_sigaction(R___SIGACTION, sig, act, oact);
}

/*
 * Record handler h for app[i] with these flags and mask, as the C library's
 * signal() and friends build the action, and return the previous one.
 */
static sighandler_t
set_handler(int sig, sighandler_t h, int flags, int mask_self)
{
	struct sigaction a, prev;

	if (h == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	memset(&a, 0, sizeof(a));
	a.sa_handler = h;
	sigemptyset(&a.sa_mask);
	if (mask_self)
		sigaddset(&a.sa_mask, sig);
	a.sa_flags = flags;
	if (swap_any(sig, &a, &prev) != 0)
		return SIG_ERR;
	return prev.sa_handler;
}

/*
 * signal() in one of its forms: the C library's for other signals; for
 * ours, BSD semantics (glibc's signal, bsd_signal and ssignal are one
 * function: the signal blocked in its handler, SA_RESTART unless
 * siginterrupt said otherwise) or System V's (reset on delivery, not
 * blocked, not restarted).
 */
static sighandler_t
any_signal(int r, int sig, sighandler_t h, int sysv)
{
	int i = ours(sig), flags;
	signal_fn f;

	if (i < 0 && !wrapped(sig))
		return (f = (signal_fn)real_fn(r)) ? f(sig, h) : SIG_ERR;
	if (sysv)
		return set_handler(
		    sig, h, (int)(SA_RESETHAND | SA_NODEFER | SA_INTERRUPT), 0);
	flags = (i >= 0 ? atomic_load_explicit(&intr[i], memory_order_relaxed)
			: atomic_load_explicit(&sig_intr[sig],
					       memory_order_relaxed))
		    ? 0
		    : SA_RESTART;
	return set_handler(sig, h, flags, 1);
}

SYSV_EXPORT sighandler_t
signal(int sig, sighandler_t h)
{
	return any_signal(R_SIGNAL, sig, h, 0);
}

SYSV_EXPORT sighandler_t
bsd_signal(int sig, sighandler_t h)
{
	return any_signal(R_BSD_SIGNAL, sig, h, 0);
}

SYSV_EXPORT sighandler_t
ssignal(int sig, sighandler_t h)
{
	return any_signal(R_SSIGNAL, sig, h, 0);
}

SYSV_EXPORT sighandler_t
sysv_signal(int sig, sighandler_t h)
{
	return any_signal(R_SYSV_SIGNAL, sig, h, 1);
}

SYSV_EXPORT sighandler_t
__sysv_signal(int sig, sighandler_t h)
{
	return any_signal(R___SYSV_SIGNAL, sig, h, 1);
}

/* The System V sigset: as the C library's, on the record. */
SYSV_EXPORT sighandler_t
sigset(int sig, sighandler_t disp)
{
	struct sigaction prev;
	sigset_t set, oset;
	int i = ours(sig);
	signal_fn f;
	sighandler_t h;

	if (i < 0 && !wrapped(sig))
		return (f = (signal_fn)real_fn(R_SIGSET)) ? f(sig, disp)
							  : SIG_ERR;
	if (disp == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (disp == SIG_HOLD) {
		/* Block it; the previous disposition, or SIG_HOLD if it
		 * was blocked already. */
		if (sigprocmask(SIG_BLOCK, &set, &oset) != 0)
			return SIG_ERR;
		if (sigismember(&oset, sig))
			return SIG_HOLD;
		if (swap_any(sig, NULL, &prev) != 0)
			return SIG_ERR;
		return prev.sa_handler;
	}
	if ((h = set_handler(sig, disp, 0, 0)) == SIG_ERR)
		return SIG_ERR;
	if (sigprocmask(SIG_UNBLOCK, &set, &oset) != 0)
		return SIG_ERR;
	return sigismember(&oset, sig) ? SIG_HOLD : h;
}

SYSV_EXPORT int
sigignore(int sig)
{
	int i = ours(sig);
	sigignore_fn f;

	if (i < 0 && !wrapped(sig))
		return (f = (sigignore_fn)real_fn(R_SIGIGNORE)) ? f(sig) : -1;
	return set_handler(sig, SIG_IGN, 0, 0) == SIG_ERR ? -1 : 0;
}

SYSV_EXPORT int
siginterrupt(int sig, int interrupt)
{
	struct sigaction was;
	sigset_t old;
	int i = ours(sig), r;
	sigint_fn f;

	if (i < 0 && !wrapped(sig))
		return (f = (sigint_fn)real_fn(R_SIGINTERRUPT))
			   ? f(sig, interrupt)
			   : -1;
	if (i < 0) {
		/* The C library's read-modify-write, on the kernel's record
		 * (our handler stays), and the flag signal() reads. */
		struct sigaction k;

		block_all(&old);
		take();
		r = REAL_SIGACTION(sig, NULL, &k);
		if (r == 0) {
			if (interrupt)
				k.sa_flags &= ~SA_RESTART;
			else
				k.sa_flags |= SA_RESTART;
			r = REAL_SIGACTION(sig, &k, NULL);
		}
		if (r == 0)
			atomic_store_explicit(&sig_intr[sig], interrupt != 0,
					      memory_order_relaxed);
		drop();
		set_mask(&old);
		return r;
	}
	/* The C library's read-modify-write of SA_RESTART, on the record
	 * (in one critical section), and the flag later signal() calls
	 * read. */
	block_all(&old);
	take();
	was = app[i];
	if (interrupt)
		app[i].sa_flags &= ~SA_RESTART;
	else
		app[i].sa_flags |= SA_RESTART;
	if ((r = install(i, NULL)) != 0)
		app[i] = was;
	else
		atomic_store_explicit(&intr[i], interrupt != 0,
				      memory_order_relaxed);
	drop();
	set_mask(&old);
	return r;
}
