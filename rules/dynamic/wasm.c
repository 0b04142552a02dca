/* rules/dynamic/wasm.c - wasm mode, in the agent: a module built with
 * `clang --target=wasm32` is validated (wasm-validate), translated to C by
 * wabt's wasm2c and compiled with wasm-rt-impl.c and wasm_glue.c into a
 * shared object the agent loads. The object is cached by the module's hash
 * (<cache dir>/wasm-HASH-gN.so, see build.h), so a module is translated once
 * per machine: at publish by govctl (which is also how it is checked), and
 * by an agent only if the cache lacks it.
 *
 * Isolation: the rule sees only its own linear memory and its imports,
 * which are the helpers of module "gov" and nothing else (an object with
 * any other import does not link: -z defs). No access is bounds checked
 * (WASM_RT_MEMCHECK_SIGNAL_HANDLER=1): each instance's memory is a
 * reservation of 8 GiB and a wasm page (a 32-bit address plus a 32-bit
 * offset, plus the widest access), of which only the declared pages are
 * accessible; an access beyond them faults in the guard, and the SIGSEGV
 * handler (on_fault) turns a fault taken by the rule's own code in the
 * thread's instance's reservation into an out-of-bounds trap, through the
 * signal context as the budget signal does. Any other SIGSEGV goes to the
 * handler there was before, or ends the process as it would have. A trap
 * (out of bounds, division by zero, unreachable, stack exhausted: wasm2c's
 * call-depth counter is kept where it could ever trap, depth_bounded)
 * unwinds to the run, per thread.
 * Budget: a watchdog thread sends SIGGOVBUDGET to a thread whose run has
 * used budget_us of CPU time (seen at the watchdog's 1 ms tick, so to
 * within about a millisecond; a run costs the thread two stores, not a
 * clock read), again at every tick until the run ends; the handler
 * unwinds when the thread is in the rule's own code, a helper traps on its
 * way out, and anywhere else the next signal tries again.
 *
 * The cost of entering the sandbox is kept to a few stores: every thread
 * that runs a rule has its own instance of the module (its own memory and
 * globals: a rule keeps state in maps, as in eBPF), so runs take no lock;
 * the caller builds the context in that instance's memory (gov_wasm_ctx,
 * wasm.h) and reads the answer there, so nothing is copied (the memory
 * never moves: the glue refuses memory.grow); the unwind point is the
 * stack pointer and rbp, stored before a jump to the rule (gov_wasm_go,
 * below): no sigsetjmp, no frame, no callee-saved register saved (the
 * object is compiled not to use them); the thread's last run is
 * remembered, so the next one on the same context is three compares away;
 * and the run is the rule's `fast` entry, as JIT-compiled eBPF is. A
 * context built elsewhere still works: it is copied in and the answer
 * out. Not the fault policy (dynrt.c). */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "build.h"
#include "dynrt.h"
#include "wasm.h"

#ifndef GOV_WASM_GLUE_DIR
#define GOV_WASM_GLUE_DIR "/usr/local/share/rhodes"
#endif
#ifndef GOV_INCLUDE_DIR
#define GOV_INCLUDE_DIR "/usr/local/include"
#endif
#define WABT_RT "/usr/share/wabt/wasm2c"
#define SIGGOVBUDGET (SIGRTMIN + 4)
#define TRAP_BUDGET 100
#define TRAP_NOMEM 101 /* wasm_glue.c's GOV_WASM_TRAP_NOMEM */
#define WASM_TRAP_OOB 1 /* wabt's WASM_RT_TRAP_OOB */
/* An instance's memory: an access's 32-bit address plus its 32-bit offset
 * is below 8 GiB; a wasm page more holds the widest access (16 bytes)
 * from there. */
#define RESERVATION ((8ull << 30) + 65536)
#define GLUE_VERSION 9

struct gov_wasm_host {
	uint64_t (*map_lookup)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_update)(uint64_t, uint64_t, uint64_t);
	uint64_t (*map_delete)(uint64_t, uint64_t);
	uint64_t (*counter_add)(uint64_t, uint64_t);
	uint64_t (*time_ns)(void);
	uint64_t (*log)(uint64_t, uint64_t);
	uint64_t (*event)(uint64_t, uint64_t);
	void (*trap)(int code);
	void *(*reserve)(uint64_t bytes);
	void (*release)(void *data);
};

/* One thread's instance of a rule's module, and its memory's reservation
 * (lo, len: accessible pages, then the guard). */
struct wasm_inst {
	void *inst;
	uintptr_t mem_lo, mem_len;
	pthread_t thread;
	struct wasm_inst *next;
};

struct wasm_rule {
	void *so;
	void *(*make)(const struct gov_wasm_host *);
	struct gov_dyn_ctx *(*ctx_of)(void *);
	uint64_t (*run)(void *, struct gov_dyn_ctx *); /* on the context in place */
	void (*free_inst)(void *);
	uint64_t serial;           /* unique per loaded rule: the threads' cache key */
	uintptr_t text_lo, text_hi; /* the object's code (on_budget) */
	uint64_t budget_ns;
	pthread_mutex_t lock;      /* insts */
	struct wasm_inst *insts;
};

/* ---- per-thread unwinding and the budget watchdog ---- */

/* A thread's runs as the watchdog sees them: the thread stores the run's
 * budget in its `running` word when a run starts and 0 when it ends, two
 * plain stores and no clock read or read-modify-write; the watchdog marks
 * a run it sees (SEEN, a compare-and-swap once per tick) and signals the
 * thread once a run still marked at a later tick has used its budget. A
 * new run stores a word without the mark, so no two runs are taken for
 * one. */
#define SEEN (1ull << 63)
struct watch_rec {
	pthread_t thread;
	clockid_t cpu;              /* the thread's CPU-time clock */
	atomic_ullong *running;     /* the thread's tls_up.running */
	struct gov_dynrule **rule;  /* the thread's gov_dyn_cur.rule: in a run while set */
	uint64_t seen_cpu;          /* watchdog's own: CPU time when marked */
	struct watch_rec *next, **pprev;
};

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch_rec *watched;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static pthread_key_t watch_key;

/* The unwind point of the thread's run, and the registers a run must give
 * back. The rule's object is compiled with rbx and r12..r15 reserved
 * (-ffixed-*, build_so): nothing in it writes them, so while the rule's
 * own code runs they still hold its caller's values, and the entry
 * (gov_wasm_go) need not save them. It stores rbp (which the object uses
 * as a frame pointer where it needs one) and its stack pointer (sp: where
 * its return address is) and jumps to the rule: the rule returns straight
 * to the caller, no frame in between. The host's code may write the
 * registers, so every way from the object into the host (a helper, a trap)
 * enters through a stub (gov_wasm_h_*) that stores them in regs first; an
 * unwind from the host (gov_wasm_unwind) loads them from there, and rbp
 * and sp, and returns 0 to the run's caller. The budget signal unwinds
 * through the signal context instead (on_budget): only when the thread is
 * in the rule's object, where the registers are the caller's; elsewhere
 * (libc, the host) it waits for the watchdog's next signal.
 *
 * `running` is the run's word for the watchdog: its budget in ns, | SEEN
 * once the watchdog saw it, stored when a run starts. A run entered by
 * gov_wasm_go alone (wasm_fast's) leaves it, and sp, as they are when it
 * returns: the thread is in a run only while gov_dyn_cur.rule is set too
 * (dynrt.c clears it after every run), which the watchdog and on_budget
 * look at; while it runs an eBPF rule the handler ignores the word (the
 * rule is not wasm). A run entered by gov_wasm_enter (run_slow's) clears
 * both after it, and so does every unwind. Making an instance goes
 * through the host's code, so it is entered by gov_wasm_enter_saving,
 * which saves the registers itself and clears the word first (no
 * budget: a word left by the last run would stop it). No signal mask is saved: that
 * would be a system call per run; the budget signal's mask comes back
 * with its signal context. The offsets are the stubs'.
 *
 * mem_lo and mem_len are the reservation of the instance the thread runs
 * (set with inst, or by reserve while an instance is made): a fault in it
 * from the rule's code is the rule's (on_fault). */
struct unwind_point {
	void *volatile sp;          /* 0 */
	atomic_ullong running;      /* 8 */
	uint64_t regs[5];           /* 16: rbx r12 r13 r14 r15 */
	void *rbp;                  /* 56 */
	/* wasm_fast's: the thread's last run in place, of rule on ctx (the
	 * context in that rule's instance inst), while no rule was freed
	 * (gen is inst_gen then) */
	struct gov_dynrule *rule;
	void *ctx;
	uint64_t gen;
	void *inst;
	uint64_t (*run)(void *, struct gov_dyn_ctx *);
	uint64_t budget_ns;
	uintptr_t mem_lo, mem_len;
};
_Static_assert(offsetof(struct unwind_point, running) == 8 && offsetof(struct unwind_point, regs) == 16 &&
	       offsetof(struct unwind_point, rbp) == 56 && offsetof(struct unwind_point, rule) == 64 &&
	       offsetof(struct unwind_point, ctx) == 72 && offsetof(struct unwind_point, gen) == 80 &&
	       offsetof(struct unwind_point, inst) == 88 && offsetof(struct unwind_point, run) == 96 &&
	       offsetof(struct unwind_point, budget_ns) == 104 && offsetof(struct gov_dyn_running, rule) == 0,
	       "the stubs' offsets");
__thread struct unwind_point gov_wasm_up
	__attribute__((tls_model("initial-exec"), visibility("hidden")));
#define tls_up gov_wasm_up
typedef uint64_t wasm_call(void *, struct gov_dyn_ctx *);
uint64_t gov_wasm_go(void *inst, struct gov_dyn_ctx *ctx, wasm_call *call);
uint64_t gov_wasm_enter(void *inst, struct gov_dyn_ctx *ctx, wasm_call *call);
uint64_t gov_wasm_enter_saving(void *inst, struct gov_dyn_ctx *ctx, wasm_call *call);
void gov_wasm_resume(void);
void gov_wasm_unwind(void) __attribute__((noreturn));
#if !defined(__x86_64__)
#error "wasm.c's gov_wasm_go is written for x86-64"
#endif
#define UP "gov_wasm_up@gottpoff(%rip)"
__asm__(".text\n"
	".p2align 4\n"
	".type gov_wasm_go,@function\n"
	"gov_wasm_go:\n"                /* rdi inst, rsi ctx, rdx call */
	"	mov " UP ", %rcx\n"
	"	mov %rsp, %fs:(%rcx)\n"
	"	mov %rbp, %fs:56(%rcx)\n"
	"	jmp *%rdx\n"
	".size gov_wasm_go, .-gov_wasm_go\n"
	".p2align 4\n"
	".type gov_wasm_enter,@function\n"
	"gov_wasm_enter:\n"             /* the same in a frame, cleared after */
	"	sub $8, %rsp\n"             /* 16-byte alignment at the call */
	"	call gov_wasm_go\n"
	"	add $8, %rsp\n"
	"gov_wasm_resume:\n"            /* rax the result, 0 after an unwind */
	"	mov " UP ", %rcx\n"
	"	xorps %xmm0, %xmm0\n"
	"	movups %xmm0, %fs:(%rcx)\n" /* sp, running: no longer unwindable nor watched */
	"	ret\n"
	".size gov_wasm_enter, .-gov_wasm_enter\n"
	".p2align 4\n"
	".type gov_wasm_enter_saving,@function\n"
	"gov_wasm_enter_saving:\n"
	"	push %rbx\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	mov " UP ", %rax\n"
	"	movq $0, %fs:8(%rax)\n"     /* no budget (nor a word left by the last run) */
	"	call gov_wasm_enter\n"      /* 16-byte aligned after five pushes */
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbx\n"
	"	ret\n"
	".size gov_wasm_enter_saving, .-gov_wasm_enter_saving\n"
	".p2align 4\n"
	".type gov_wasm_unwind,@function\n"
	"gov_wasm_unwind:\n"
	"	mov " UP ", %rcx\n"
	"	mov %fs:16(%rcx), %rbx\n	mov %fs:24(%rcx), %r12\n	mov %fs:32(%rcx), %r13\n"
	"	mov %fs:40(%rcx), %r14\n	mov %fs:48(%rcx), %r15\n	mov %fs:56(%rcx), %rbp\n"
	"	mov %fs:(%rcx), %rsp\n"
	"	xor %eax, %eax\n"
	"	jmp gov_wasm_resume\n"
	".size gov_wasm_unwind, .-gov_wasm_unwind\n");

/* The object's ways into the host: each stores the caller's registers
 * (see struct unwind_point) and jumps to the C function. */
#define HOST_ENTRY(name)                                                       \
	".p2align 4\n"                                                         \
	".type gov_wasm_h_" #name ",@function\n"                               \
	"gov_wasm_h_" #name ":\n"                                              \
	"	mov " UP ", %r11\n"                                            \
	"	mov %rbx, %fs:16(%r11)\n	mov %r12, %fs:24(%r11)\n"      \
	"	mov %r13, %fs:32(%r11)\n	mov %r14, %fs:40(%r11)\n"      \
	"	mov %r15, %fs:48(%r11)\n"                                      \
	"	jmp gov_wasm_w_" #name "\n"                                    \
	".size gov_wasm_h_" #name ", .-gov_wasm_h_" #name "\n"
__asm__(".text\n"
	HOST_ENTRY(map_lookup) HOST_ENTRY(map_update) HOST_ENTRY(map_delete) HOST_ENTRY(counter_add)
	HOST_ENTRY(time_ns) HOST_ENTRY(log) HOST_ENTRY(event) HOST_ENTRY(trap));

static __thread volatile sig_atomic_t tls_in_helper, tls_expired, tls_trap
	__attribute__((tls_model("initial-exec")));
static __thread struct watch_rec *tls_rec __attribute__((tls_model("initial-exec")));

static const char *trap_name(int code);

/* A run ends in a trap: the fault for dynrt.c to count (the run returns
 * 0), and tls_trap for the paths that look (loading, making an instance). */
static void note_trap(int code)
{
	tls_trap = code;
	tls_in_helper = 0;
	tls_expired = 0;
	gov_dyn_cur.fault = 1;
	gov_dyn_cur.why = trap_name(code);
}

/* From the host's code, entered from the object through a gov_wasm_h_*
 * stub (which stored the registers gov_wasm_unwind gives back). */
static __attribute__((noreturn)) void unwind(int code)
{
	note_trap(code);
	gov_wasm_unwind();
}

__attribute__((visibility("hidden"))) void gov_wasm_w_trap(int code)
{
	if (!tls_up.sp)
		abort(); /* a trap before any run: no frame to go back to */
	unwind(code ? code : 99);
}

/* Whether pc is in the code of the rule the thread is running: the
 * object compiled with the callee-saved registers reserved, so they are
 * still the run's caller's there. */
static int in_rule(uintptr_t pc)
{
	const struct gov_dynrule *r = gov_dyn_cur.rule;
	const struct wasm_rule *w = r && r->ops == &gov_dyn_wasm_ops ? r->impl : NULL;
	return w && pc >= w->text_lo && pc < w->text_hi;
}

/* A run's end by the signal context of a signal taken in the rule's own
 * code: the signal's return (sigreturn) goes to gov_wasm_resume, which
 * returns 0 to the run's caller, and the mask comes back with the
 * context. */
static void end_run(ucontext_t *uc, int code)
{
	note_trap(code);
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(uintptr_t)tls_up.sp;
	uc->uc_mcontext.gregs[REG_RBP] = (greg_t)(uintptr_t)tls_up.rbp;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)gov_wasm_resume;
	uc->uc_mcontext.gregs[REG_RAX] = 0;
}

/* The budget signal: the run's end, by the signal context. Its return
 * (sigreturn) then goes to gov_wasm_resume, which returns 0 to the run's
 * caller, and the mask (with this signal unblocked) comes back with the
 * context. Only from the rule's own code: in a helper (which may hold a
 * map's lock) the helper traps on its way out; anywhere else (libc
 * called by the object, the host's code between the object and a helper,
 * the stubs) the watchdog signals again at its next tick. */
static void on_budget(int sig, siginfo_t *si, void *ucp)
{
	(void)sig, (void)si;
	ucontext_t *uc = ucp;
	/* not in a run, or in a run the watchdog has not seen yet (the one
	 * it meant ended, and this one began, since it looked) */
	if (!gov_dyn_cur.rule || !(atomic_load_explicit(&tls_up.running, memory_order_relaxed) & SEEN))
		return;
	if (tls_in_helper) {
		tls_expired = 1;
		return;
	}
	if (!in_rule((uintptr_t)uc->uc_mcontext.gregs[REG_RIP]))
		return;
	end_run(uc, TRAP_BUDGET);
}

/* The instance being made on this thread (first_inst): its start code
 * runs before the rule is the running one. */
static __thread struct wasm_rule *tls_making __attribute__((tls_model("initial-exec")));
static struct sigaction prev_segv;

/* Whether a fault at addr, taken at pc, is the rule's access out of its
 * memory: pc in the code of the rule the thread runs (or makes an
 * instance of), addr in that instance's reservation. */
static int guard_fault(uintptr_t pc, uintptr_t addr)
{
	const struct wasm_rule *w = tls_making;
	if (!w) {
		const struct gov_dynrule *r = gov_dyn_cur.rule;
		w = r && r->ops == &gov_dyn_wasm_ops ? r->impl : NULL;
	}
	return w && pc >= w->text_lo && pc < w->text_hi && tls_up.sp && addr - tls_up.mem_lo < tls_up.mem_len;
}

/* SIGSEGV: the rule's access out of bounds ends its run as a trap, the
 * way the budget signal does; anything else is not ours. It goes to the
 * handler installed before ours, or, if that was the default action (or
 * ignored, which a fault cannot be), the default is put back: the faulting
 * instruction runs again and the process ends by the signal, as it would
 * have without a rule (a signal sent by kill is sent again). */
static void on_fault(int sig, siginfo_t *si, void *ucp)
{
	ucontext_t *uc = ucp;
	if (si->si_code > 0 &&
	    guard_fault((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], (uintptr_t)si->si_addr)) {
		end_run(uc, WASM_TRAP_OOB);
		return;
	}
	if (prev_segv.sa_flags & SA_SIGINFO) {
		prev_segv.sa_sigaction(sig, si, ucp);
		return;
	}
	if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN) {
		prev_segv.sa_handler(sig);
		return;
	}
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig); /* blocked until the handler returns */
}

static void install_on_fault(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &prev_segv);
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec tick = { 0, 1000000 };
		nanosleep(&tick, NULL);
		/* CPU time, not wall time: a run whose thread was preempted on a
		 * busy machine has not used its budget */
		pthread_mutex_lock(&watch_lock);
		for (struct watch_rec *w = watched; w; w = w->next) {
			unsigned long long run = atomic_load(w->running);
			if (!run)
				continue;
			/* between runs the word is the last one's, left by
			 * gov_wasm_go: not cleared here, since a run that begins
			 * meanwhile may store the same word */
			if (!__atomic_load_n(w->rule, __ATOMIC_RELAXED))
				continue;
			uint64_t now = cpu_ns(w->cpu);
			if (!(run & SEEN)) {
				/* first sight of this run (it may have begun up to a tick
				 * before: the budget is kept to within a tick); if it
				 * ended meanwhile the mark is not set */
				if (atomic_compare_exchange_strong(w->running, &run, run | SEEN)) {
					w->seen_cpu = now;
				}
			} else if (now - w->seen_cpu >= (run & ~SEEN)) {
				/* again every tick until the run ends: the thread
				 * may be where it cannot be unwound (on_budget) */
				pthread_kill(w->thread, SIGGOVBUDGET);
			}
		}
		pthread_mutex_unlock(&watch_lock);
	}
	return NULL;
}

static void unwatch(void *p)
{
	struct watch_rec *w = p;
	pthread_mutex_lock(&watch_lock);
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	pthread_mutex_unlock(&watch_lock);
	free(w);
}

static void start_watchdog(void)
{
	struct sigaction sa = { .sa_sigaction = on_budget, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGGOVBUDGET, &sa, NULL);
	pthread_key_create(&watch_key, unwatch);
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&t, NULL, watchdog, NULL) == 0)
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static __attribute__((noinline)) struct watch_rec *watch_self(void)
{
	if (tls_rec)
		return tls_rec;
	pthread_once(&watch_once, start_watchdog);
	struct watch_rec *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->thread = pthread_self();
	w->running = &tls_up.running; /* lives until the thread's destructors ran */
	w->rule = &gov_dyn_cur.rule;
	if (pthread_getcpuclockid(w->thread, &w->cpu) != 0)
		w->cpu = CLOCK_THREAD_CPUTIME_ID; /* (not for another thread: then budgets go unchecked) */
	pthread_mutex_lock(&watch_lock);
	w->next = watched;
	w->pprev = &watched;
	if (watched)
		watched->pprev = &w->next;
	watched = w;
	pthread_mutex_unlock(&watch_lock);
	pthread_setspecific(watch_key, w);
	return tls_rec = w;
}

/* The helpers as the rule reaches them (through their gov_wasm_h_*
 * stubs): a budget that ran out while one was working traps when it
 * returns. */
#define WRAP(name, params, args)                                            \
	uint64_t gov_wasm_h_##name params;                                  \
	__attribute__((visibility("hidden"))) uint64_t gov_wasm_w_##name params \
	{                                                                   \
		tls_in_helper = 1;                                          \
		uint64_t r = gov_dynh_##name args;                          \
		tls_in_helper = 0;                                          \
		if (tls_expired)                                            \
			unwind(TRAP_BUDGET);                                \
		return r;                                                   \
	}
WRAP(map_lookup, (uint64_t m, uint64_t k, uint64_t d), (m, k, d))
WRAP(map_update, (uint64_t m, uint64_t k, uint64_t v), (m, k, v))
WRAP(map_delete, (uint64_t m, uint64_t k), (m, k))
WRAP(counter_add, (uint64_t c, uint64_t d), (c, d))
WRAP(time_ns, (void), ())
WRAP(log, (uint64_t c, uint64_t v), (c, v))
WRAP(event, (uint64_t a, uint64_t b), (a, b))
void gov_wasm_h_trap(int code);

/* An instance's memory (wasm_glue.c's gov_wasm_allocate), while it is
 * made: the reservation is the thread's from now on (on_fault), before
 * the module's start code runs. A module has one memory at most
 * (wasm-validate refuses more, an imported one does not link). Called
 * from the object without a stub: it never unwinds. */
static void *reserve(uint64_t bytes)
{
	void *p = mmap(NULL, RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (bytes && mprotect(p, bytes, PROT_READ | PROT_WRITE) < 0) {
		munmap(p, RESERVATION);
		return NULL;
	}
	tls_up.mem_lo = (uintptr_t)p;
	tls_up.mem_len = RESERVATION;
	return p;
}

static void release(void *data)
{
	if (data)
		munmap(data, RESERVATION);
}

static const struct gov_wasm_host host = {
	gov_wasm_h_map_lookup, gov_wasm_h_map_update, gov_wasm_h_map_delete, gov_wasm_h_counter_add,
	gov_wasm_h_time_ns, gov_wasm_h_log, gov_wasm_h_event, gov_wasm_h_trap, reserve, release,
};

static const char *trap_name(int code)
{
	switch (code) {
	case TRAP_BUDGET: return "over its time budget (budget_us)";
	case TRAP_NOMEM: return "out of memory for the thread's instance of the rule";
	/* wasm-rt.h's wasm_rt_trap_t (stack exhaustion apart from out of
	 * bounds, as on Linux) */
	case 1: return "wasm trap: out of bounds";
	case 2: return "wasm trap: integer overflow";
	case 3: return "wasm trap: division by zero";
	case 4: return "wasm trap: invalid conversion";
	case 5: return "wasm trap: unreachable";
	case 6: return "wasm trap: invalid call_indirect";
	case 7: return "wasm trap: uncaught exception";
	case 8: return "wasm trap: call stack exhausted (wasm2c's call-depth counter)";
	default: return "wasm trap";
	}
}

/* ---- building and loading ---- */

/* The modules the rule imports from, as wasm2c's header declares them in
 * Z_rule_instantiate's parameters: none, or "gov" alone. Tells the glue
 * which form to call (GOV_WASM_IMPORTS). */
static int check_imports(const char *hdr, char **compile, char *err, size_t errlen)
{
	void *text;
	size_t len;
	if (gov_dyn_read(hdr, &text, &len, err, errlen) < 0)
		return -1;
	char *t = realloc(text, len + 1);
	if (!t) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t[len] = 0;
	char *decl = strstr(t, "void Z_rule_instantiate(");
	char *end = decl ? strchr(decl, ')') : NULL;
	int r = 0, gov = 0;
	if (!end) {
		snprintf(err, errlen, "wasm2c's header lacks Z_rule_instantiate");
		r = -1;
	} else {
		*end = 0;
		for (char *p = decl; (p = strstr(p, "struct Z_")); p += 9) {
			char mod[64] = "";
			sscanf(p + 9, "%63[^_ ]", mod);
			if (strcmp(mod, "gov") == 0) {
				gov = 1;
				continue;
			}
			snprintf(err, errlen, "the module imports from module '%s': a rule may import only "
				 "the helpers of module 'gov' (gov/dynrule.h)", mod);
			r = -1;
			break;
		}
	}
	free(t);
	for (int i = 0; compile[i]; i++)
		if (strcmp(compile[i], "-DGOV_WASM_IMPORTS=0") == 0 && gov)
			compile[i] = "-DGOV_WASM_IMPORTS=1";
	return r;
}

/* wasm2c's call-depth counter (two stores a call) stops a run nested
 * deeper than WASM_RT_MAX_CALL_STACK_DEPTH (wasm-rt.h: 500) calls. In a
 * module with no call_indirect, no cycle among its calls and no chain of
 * calls longer than that, it never can: the object is then built without
 * it. Read from wasm2c's C, as check_imports reads its header: each of
 * the module's functions is defined as "static T w2c_NAME(Z_rule_instance_t*
 * instance...) {" up to a "}" line, and calls another as
 * "w2c_NAME(instance"; the helpers (imports) call nothing of the module. */
#define MAX_DEPTH 500

struct call_graph {
	int n, cap;
	char **name;
	int **callee; /* per function: its callees' indices, -1 ended */
	int *ncallee, *depth, *state; /* state: 0 new, 1 on the path, 2 done */
};

static int fn_index(struct call_graph *g, const char *name, size_t len)
{
	for (int i = 0; i < g->n; i++)
		if (strlen(g->name[i]) == len && memcmp(g->name[i], name, len) == 0)
			return i;
	if (g->n == g->cap) {
		int cap = g->cap ? 2 * g->cap : 64;
		char **nm = realloc(g->name, cap * sizeof *nm);
		if (nm)
			g->name = nm;
		int **cl = realloc(g->callee, cap * sizeof *cl);
		if (cl)
			g->callee = cl;
		int *nc = realloc(g->ncallee, cap * sizeof *nc);
		if (nc)
			g->ncallee = nc;
		if (!nm || !cl || !nc)
			return -1;
		g->cap = cap;
	}
	if (!(g->name[g->n] = strndup(name, len)))
		return -1;
	g->callee[g->n] = NULL;
	g->ncallee[g->n] = 0;
	return g->n++;
}

static int add_call(struct call_graph *g, int from, int to)
{
	int *c = realloc(g->callee[from], (g->ncallee[from] + 1) * sizeof *c);
	if (!c)
		return -1;
	c[g->ncallee[from]++] = to;
	g->callee[from] = c;
	return 0;
}

/* The longest chain of calls from f (f counted), or -1 on a cycle or one
 * longer than MAX_DEPTH (then no deeper look: the recursion stays short). */
static int chain(struct call_graph *g, int f)
{
	if (g->state[f] == 2)
		return g->depth[f];
	if (g->state[f] == 1)
		return -1;
	g->state[f] = 1;
	int d = 1;
	for (int i = 0; i < g->ncallee[f]; i++) {
		int c = chain(g, g->callee[f][i]);
		if (c < 0 || c + 1 > MAX_DEPTH)
			return -1;
		if (c + 1 > d)
			d = c + 1;
	}
	g->state[f] = 2;
	return g->depth[f] = d;
}

static int depth_bounded(const char *c_path)
{
	void *text;
	size_t len;
	char err[256];
	if (gov_dyn_read(c_path, &text, &len, err, sizeof err) < 0)
		return 0;
	struct call_graph g = { 0 };
	int ok = 1, cur = -1;
	char *t = text, *end = t + len;
	for (char *l = t; ok && l < end;) {
		char *nl = memchr(l, '\n', (size_t)(end - l));
		char *le = nl ? nl : end;
		static const char def[] = "static ";
		char *w = NULL;
		if (cur < 0 && (size_t)(le - l) > sizeof def && memcmp(l, def, sizeof def - 1) == 0 &&
		    le[-1] == '{' && (w = memmem(l, (size_t)(le - l), " w2c_", 5))) {
			char *p = strchr(w + 1, '(');
			if (p && p < le && strncmp(p, "(Z_rule_instance_t* instance", 28) == 0)
				ok = (cur = fn_index(&g, w + 1, (size_t)(p - w - 1))) >= 0;
		} else if (cur >= 0 && le - l == 1 && *l == '}') {
			cur = -1;
		} else if (cur >= 0) {
			if (memmem(l, (size_t)(le - l), "CALL_INDIRECT(", 14))
				ok = 0;
			for (char *c = l; ok && (c = memmem(c, (size_t)(le - c), "w2c_", 4)); c += 4) {
				char *p = c + 4;
				while (p < le && (*p == '_' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
					p++;
				if (c > l && (c[-1] == '_' || c[-1] == '>'))
					continue; /* part of a longer name, or a field */
				if ((size_t)(le - p) >= 9 && memcmp(p, "(instance", 9) == 0) {
					int f = fn_index(&g, c, (size_t)(p - c));
					ok = f >= 0 && add_call(&g, cur, f) == 0;
				}
			}
		}
		l = le + 1;
	}
	if (ok && cur >= 0)
		ok = 0; /* not the C we expect */
	g.depth = calloc((size_t)g.n + 1, sizeof *g.depth);
	g.state = calloc((size_t)g.n + 1, sizeof *g.state);
	ok = ok && g.depth && g.state;
	for (int i = 0; ok && i < g.n; i++)
		ok = chain(&g, i) >= 0;
	for (int i = 0; i < g.n; i++) {
		free(g.name[i]);
		free(g.callee[i]);
	}
	free(g.name);
	free(g.callee);
	free(g.ncallee);
	free(g.depth);
	free(g.state);
	free(text);
	return ok;
}

/* <cache>/wasm-HASH.so, built if missing (wasm-validate, wasm2c, cc). */
static int build_so(const void *obj, size_t len, char *so, size_t solen, char *err, size_t errlen)
{
	char dir[PATH_MAX - 64];
	if (gov_dyn_cache_dir(dir, sizeof dir, err, errlen) < 0)
		return -1;
	/* the object depends on the module and on wasm_glue.c: bump GLUE_VERSION
	 * when the glue changes, so that no stale object is taken */
	unsigned long long h = (unsigned long long)gov_dyn_hash(obj, len);
	snprintf(so, solen, "%s/wasm-%016llx-g%d.so", dir, h, GLUE_VERSION);
	if (access(so, R_OK) == 0)
		return 0;
	char wasm[PATH_MAX], c[PATH_MAX], hdr[PATH_MAX], tmp[PATH_MAX], inc[PATH_MAX + 2];
	char glue[PATH_MAX], trap_h[PATH_MAX];
	/* wasm_glue.c and wasm_trap.h: GOV_WASM_GLUE_DIR (an installed copy,
	 * make install puts them in PREFIX/share/rhodes), else the source tree */
	const char *gd = getenv("GOV_WASM_GLUE_DIR");
	snprintf(glue, sizeof glue, "%s/wasm_glue.c", gd && *gd ? gd : GOV_WASM_GLUE_DIR);
	snprintf(trap_h, sizeof trap_h, "%s/wasm_trap.h", gd && *gd ? gd : GOV_WASM_GLUE_DIR);
	snprintf(wasm, sizeof wasm, "%s/wasm-%016llx.%d.wasm", dir, h, (int)getpid());
	snprintf(c, sizeof c, "%s/wasm-%016llx.%d.c", dir, h, (int)getpid());
	snprintf(hdr, sizeof hdr, "%s/wasm-%016llx.%d.h", dir, h, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", so, (int)getpid());
	const char *gi = getenv("GOV_INCLUDE_DIR");
	snprintf(inc, sizeof inc, "-I%s", gi && *gi ? gi : GOV_INCLUDE_DIR);
	FILE *f = fopen(wasm, "wb");
	int ok = f && fwrite(obj, 1, len, f) == len;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok) {
		snprintf(err, errlen, "cannot write %s: %s", wasm, strerror(errno));
		unlink(wasm);
		return -1;
	}
	char *validate[] = { "wasm-validate", wasm, NULL };
	char *translate[] = { "wasm2c", "-n", "rule", wasm, "-o", c, NULL };
	char rule_c[PATH_MAX + 32];
	snprintf(rule_c, sizeof rule_c, "-DGOV_WASM_RULE_C=\"%s\"", c);
	/* the translation is included by the glue (one translation unit: the
	 * rule inlines into gov_wasm_run) */
	/* -O3: gcc then inlines the rule into gov_wasm_run and keeps wasm2c's
	 * call-depth counter (where it is kept) in a register (two stores a run,
	 * no load).
	 * -ffixed-*: the callee-saved registers the entry does not save
	 * (struct unwind_point); rbp, which it stores, is then used only as a
	 * frame pointer (wabt's functions with an array on the stack, at
	 * instantiation), not pushed by every function that would take it as
	 * one more register. The object's code is then all compiled so,
	 * but for the C start files (run at load and unload, never in a run)
	 * and libgcc's helpers (only __popcountdi2 is reachable from wasm2c's
	 * code, without -mpopcnt, and it uses scratch registers only). -z now:
	 * no lazy binding (ld.so's resolver) in a run. */
	char *compile[] = { "cc", "-O3", "-ffixed-rbx", "-ffixed-rbp", "-ffixed-r12", "-ffixed-r13",
			    "-ffixed-r14", "-ffixed-r15", "-shared", "-fPIC", "-fvisibility=hidden",
			    "-Wl,-z,defs", "-Wl,-z,now",
			    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1", "-DWASM_RT_SKIP_SIGNAL_RECOVERY=1",
			    "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",
			    "-DWASM_RT_TRAP_HANDLER=gov_wasm_trap", "-DGOV_WASM_IMPORTS=0", "-I" WABT_RT, inc,
			    "-include", trap_h, rule_c,
			    glue, WABT_RT "/wasm-rt-impl.c", "-o", tmp, "-lm", NULL };
	int r = gov_dyn_cmd(validate, err, errlen);
	if (r == 0)
		r = gov_dyn_cmd(translate, err, errlen);
	if (r == 0)
		r = check_imports(hdr, compile, err, errlen);
	for (int i = 0; r == 0 && compile[i]; i++)
		if (strcmp(compile[i], "-DWASM_RT_USE_STACK_DEPTH_COUNT=1") == 0 && depth_bounded(c))
			compile[i] = "-DWASM_RT_USE_STACK_DEPTH_COUNT=0";
	if (r == 0)
		r = gov_dyn_cmd(compile, err, errlen); /* an unknown helper: undefined reference */
	if (r == 0 && rename(tmp, so) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", so, strerror(errno));
		r = -1;
	}
	unlink(wasm);
	unlink(c);
	unlink(hdr);
	unlink(tmp);
	return r;
}

static atomic_ullong serials;

/* The calling thread's instance of w, made on its first run of w. The
 * module's start code runs inside a run (an unwind point is set). */
static __attribute__((noinline)) struct wasm_inst *thread_inst(struct wasm_rule *w)
{
	pthread_t self = pthread_self();
	pthread_mutex_lock(&w->lock);
	struct wasm_inst *i = w->insts;
	while (i && !pthread_equal(i->thread, self))
		i = i->next;
	pthread_mutex_unlock(&w->lock);
	if (i)
		return i;
	/* made with no lock held: instantiating may trap (and unwind) */
	if (!(i = calloc(1, sizeof *i)))
		return NULL;
	i->thread = self;
	tls_up.mem_lo = tls_up.mem_len = 0;
	i->inst = w->make(&host);
	if (!i->inst) {
		free(i);
		return NULL;
	}
	i->mem_lo = tls_up.mem_lo; /* reserve's, while it was made */
	i->mem_len = tls_up.mem_len;
	pthread_mutex_lock(&w->lock);
	i->next = w->insts;
	w->insts = i;
	pthread_mutex_unlock(&w->lock);
	return i;
}

/* After first_inst: if making the instance trapped (tls_making is still
 * set), the memory it had reserved is given back; the rest of the half-made
 * instance (a few allocations of wabt's) is left. */
static void made(void)
{
	if (!tls_making)
		return;
	tls_making = NULL;
	release((void *)tls_up.mem_lo);
	tls_up.mem_lo = tls_up.mem_len = 0;
}

/* A thread's last few instances, by the rule's serial (never reused, so
 * an entry of a freed rule never matches), with where each one's context
 * lives in its memory. */
#define INST_CACHE 4
struct inst_entry {
	uint64_t serial;
	void *inst;
	struct gov_dyn_ctx *ctx;
	uintptr_t mem_lo, mem_len;
};
static __thread struct inst_entry tls_inst[INST_CACHE] __attribute__((tls_model("initial-exec")));

static void wasm_destroy(void *impl);
/* Bumped when a rule is freed: an instance's memory (where the context
 * lives) or the rule's struct may then be reused at the same address, so
 * every thread's last run (struct unwind_point) is stale. */
atomic_ullong gov_wasm_gen __attribute__((visibility("hidden")));
#define inst_gen gov_wasm_gen
static uint64_t first_inst(void *p, struct gov_dyn_ctx *ctx);

/* The calling thread's cache entry for w, its instance made if it has
 * none (with an unwind point: making one runs the module's start code);
 * NULL, with the fault for dynrt.c, if that trapped or ran out of memory. */
static __attribute__((noinline)) struct inst_entry *inst_of(struct wasm_rule *w)
{
	struct inst_entry *e = &tls_inst[w->serial % INST_CACHE];
	if (e->serial != w->serial) {
		/* this thread's first run of w (or w fell out of the cache) */
		tls_trap = 0;
		gov_wasm_enter_saving(w, NULL, first_inst);
		made();
		if (tls_trap)
			return NULL;
		if (e->serial != w->serial) {
			gov_dyn_cur.fault = 1;
			gov_dyn_cur.why = trap_name(TRAP_NOMEM);
			return NULL;
		}
	}
	return e;
}

struct gov_dyn_ctx *gov_wasm_ctx(struct gov_dynrule *r)
{
	if (r->ops != &gov_dyn_wasm_ops || atomic_load_explicit(&r->disabled, memory_order_relaxed))
		return NULL;
	struct inst_entry *e = inst_of(r->impl);
	if (!e) {
		gov_dyn_cur.fault = 0; /* the run will try again and count it */
		return NULL;
	}
	return e->ctx;
}

/* A run that is not wasm_fast's: the thread's first of w, or one on a
 * context the caller built elsewhere, copied in, and the answer out (the
 * fields an action answers with, gov/dynrule.h). */
static __attribute__((noinline)) uint64_t run_slow(struct wasm_rule *w, struct gov_dyn_ctx *ctx)
{
	struct inst_entry *e = inst_of(w);
	if (!e)
		return GOV_DYN_FAULT;
	if (ctx != e->ctx)
		memcpy(e->ctx, ctx, sizeof *ctx);
	tls_trap = 0;
	atomic_store_explicit(&tls_up.running, w->budget_ns, memory_order_relaxed);
	/* the instance this run is in (on_fault), and the next run on its
	 * context in place is wasm_fast's */
	struct unwind_point *up = &tls_up;
	up->rule = gov_dyn_cur.rule;
	up->ctx = e->ctx;
	up->gen = atomic_load_explicit(&inst_gen, memory_order_relaxed);
	up->inst = e->inst;
	up->run = w->run;
	up->budget_ns = w->budget_ns;
	up->mem_lo = e->mem_lo;
	up->mem_len = e->mem_len;
	uint64_t a = gov_wasm_enter(e->inst, NULL, w->run);
	if (tls_trap || ctx == e->ctx)
		return a;
	const struct gov_dyn_ctx *in = e->ctx;
	ctx->value = in->value;
	ctx->err = in->err;
	ctx->forward_to = in->forward_to;
	if (a == GOV_DYN_NATIVE_ARGS)
		memcpy(ctx->args, in->args, sizeof ctx->args);
	if (a == GOV_DYN_SCHEDULE) { /* its answer (docs/cfs.md) */
		ctx->entity = in->entity;
		ctx->weight = in->weight;
		ctx->slots = in->slots;
	}
	if (a == GOV_DYN_DEFER) /* its answer (docs/tasklet.md) */
		ctx->tasklet = in->tasklet;
	return a;
}

/* The rule's fast entry (struct gov_dynrule.fast): dynrt.c has set
 * gov_dyn_cur for the run. Returns the rule's result, or 0 (a fault, with
 * gov_dyn_cur.fault and why set by note_trap) when it trapped or ran over
 * its budget. The common run, the same rule as the thread's last run on
 * the same context in place (gov_wasm_ctx), while no rule was freed, is
 * three compares, the watchdog's word, gov_wasm_go's two stores and a
 * jump to the rule, written out here (in C it was the same with a jump
 * more); everything else is wasm_slow's (run_slow). The thread is watched
 * since it made its instance (first_inst). */
uint64_t gov_wasm_fast(void *ctx);
__attribute__((visibility("hidden"))) uint64_t gov_wasm_slow(void *ctx)
{
	return run_slow(gov_dyn_cur.rule->impl, ctx);
}
__asm__(".text\n"
	".p2align 4\n"
	".type gov_wasm_fast,@function\n"
	"gov_wasm_fast:\n"                  /* rdi ctx */
	"	mov " UP ", %rcx\n"
	"	mov gov_dyn_cur@gottpoff(%rip), %rax\n"
	"	mov %fs:(%rax), %rax\n"         /* gov_dyn_cur.rule */
	"	cmp %fs:72(%rcx), %rdi\n"
	"	jne 1f\n"
	"	cmp %fs:64(%rcx), %rax\n"
	"	jne 1f\n"
	"	mov gov_wasm_gen(%rip), %rdx\n"
	"	cmp %fs:80(%rcx), %rdx\n"
	"	jne 1f\n"
	"	mov %fs:104(%rcx), %rdx\n"
	"	mov %rdx, %fs:8(%rcx)\n"        /* running: the budget */
	"	mov %rsp, %fs:(%rcx)\n"         /* as gov_wasm_go */
	"	mov %rbp, %fs:56(%rcx)\n"
	"	mov %fs:88(%rcx), %rdi\n"
	"	xor %esi, %esi\n"
	"	jmp *%fs:96(%rcx)\n"
	"1:	jmp gov_wasm_slow\n"
	".size gov_wasm_fast, .-gov_wasm_fast\n");
#define wasm_fast gov_wasm_fast

/* Frees every thread's instance; the object stays mapped (a thread may be
 * returning from it). The agent replaces a rule only when no run is in
 * it (its rules lock). */
static void wasm_destroy(void *impl)
{
	struct wasm_rule *w = impl;
	atomic_fetch_add(&inst_gen, 1);
	for (struct wasm_inst *i = w->insts, *next; i; i = next) {
		next = i->next;
		w->free_inst(i->inst);
		free(i);
	}
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Inside gov_wasm_enter, at load: the loading thread's instance. */
static uint64_t first_inst(void *p, struct gov_dyn_ctx *ctx)
{
	(void)ctx;
	struct wasm_rule *w = p;
	struct inst_entry *e = &tls_inst[w->serial % INST_CACHE];
	watch_self(); /* every thread that may run w is watched from here on */
	/* a fault in the making is w's (on_fault), in the reservation being
	 * made: the thread's last run (and its reservation) is then no longer
	 * the fast path's, which must set it again */
	tls_up.ctx = NULL;
	tls_making = w;
	struct wasm_inst *i = thread_inst(w);
	tls_making = NULL;
	struct gov_dyn_ctx *buf = i ? w->ctx_of(i->inst) : NULL;
	if (buf) {
		e->inst = i->inst;
		e->ctx = buf;
		e->mem_lo = i->mem_lo;
		e->mem_len = i->mem_len;
		e->serial = w->serial;
	}
	return 0;
}

/* The object's code: the executable segment that holds its run entry. */
static int find_text(struct dl_phdr_info *info, size_t size, void *p)
{
	(void)size;
	struct wasm_rule *w = p;
	uintptr_t pc = (uintptr_t)(void *)w->run;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && pc >= lo && pc - lo < ph->p_memsz) {
			w->text_lo = lo;
			w->text_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

static void text_of(struct wasm_rule *w)
{
	if (w->run)
		dl_iterate_phdr(find_text, w); /* not found: the load fails below */
}

static void *wasm_load(const void *obj, size_t len, const struct gov_dyn_spec *spec,
		       char *err, size_t errlen)
{
	char so[PATH_MAX], why[1600];
	if (len < 8 || memcmp(obj, "\0asm", 4) != 0) {
		snprintf(err, errlen, "rule %s: not a wasm module (build it with clang --target=wasm32)",
			 spec->name);
		return NULL;
	}
	if (build_so(obj, len, so, sizeof so, why, sizeof why) < 0) {
		snprintf(err, errlen, "rule %s: refused: %s", spec->name, why);
		return NULL;
	}
	static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
	pthread_once(&fault_once, install_on_fault);
	struct wasm_rule *w = calloc(1, sizeof *w);
	if (!w || !(w->so = dlopen(so, RTLD_NOW | RTLD_LOCAL))) {
		snprintf(err, errlen, "rule %s: cannot load %s: %s", spec->name, so,
			 w ? dlerror() : "out of memory");
		free(w);
		return NULL;
	}
	*(void **)&w->make = dlsym(w->so, "gov_wasm_new");
	*(void **)&w->ctx_of = dlsym(w->so, "gov_wasm_ctx");
	*(void **)&w->run = dlsym(w->so, "gov_wasm_run");
	*(void **)&w->free_inst = dlsym(w->so, "gov_wasm_free");
	pthread_mutex_init(&w->lock, NULL);
	text_of(w);
	w->serial = atomic_fetch_add(&serials, 1) + 1;
	w->budget_ns = (uint64_t)(spec->budget_us ? spec->budget_us : 1000) * 1000;
	/* the loading thread's instance, made now so that a module that cannot
	 * be instantiated (or traps doing it) is refused at load */
	void *inst = NULL;
	tls_trap = 0;
	if (w->make && w->ctx_of && w->run && w->free_inst && w->text_hi) {
		gov_wasm_enter_saving(w, NULL, first_inst);
		made();
		struct inst_entry *e = &tls_inst[w->serial % INST_CACHE];
		inst = tls_trap || e->serial != w->serial ? NULL : e->inst;
	}
	if (!inst) {
		snprintf(err, errlen, "rule %s: %s is not a rule object%s%s%s", spec->name, so,
			 tls_trap ? " (instantiating it traps: " : "", tls_trap ? trap_name(tls_trap) : "",
			 tls_trap ? ")" : "");
		tls_trap = 0;
		wasm_destroy(w);
		return NULL;
	}
	if (gov_dyn_cur.rule)
		gov_dyn_cur.rule->fast = wasm_fast;
	return w;
}

/* A run through the fallback path (struct gov_dyn_mode_ops.run) */
static uint64_t wasm_run(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	(void)r;
	return wasm_fast(ctx);
}

const struct gov_dyn_mode_ops gov_dyn_wasm_ops = {
	.name = "wasm", .load = wasm_load, .run = wasm_run, .destroy = wasm_destroy,
};
