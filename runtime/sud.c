/* runtime/sud.c - exhaustive syscall coverage: Syscall User Dispatch.
 *
 * With GOV_SYSCALLS=sud or =exhaustive, every syscall instruction the
 * program executes outside govrt traps into govrt's SIGSYS handler, which
 * turns it into a governed syscall of a run-time site (one struct gov_site
 * per instruction address and syscall number, created on first sight) and
 * dispatches it like any compiled site. =exhaustive also patches a trapping
 * site in memory so its next calls take no signal (lazypatch.c).
 *
 *   the "gate": a small memfd mapped twice (RX inside the program, RW for
 *   govrt). The kernel never traps a syscall made from the gate, whatever
 *   the selector says; it holds the sigreturn of govrt's own handler and
 *   the per-site stubs that re-issue clone/fork/vfork.
 *
 *   the selector: one byte per thread (initial-exec TLS). BLOCK while the
 *   program runs; ALLOW while govrt runs (the handler, __govrt_dispatch,
 *   registration), so govrt's own syscalls are never trapped or counted.
 *
 * Not here: patching sites (lazypatch.c), rewriting libraries at load time
 * (loadrewrite.c), the entry of rewritten code (rewritten.c). What is not
 * covered and why is in runtime/README.md ("Exhaustive syscalls"). */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>
#include "gov/rewrite.h"
#include "govrt_private.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif

#define SUD_MAX_SITES 8192
#define SUD_HASH_SIZE 16384 /* power of two, > 1.5 x SUD_MAX_SITES */
#define GATE_SIZE (64 * 1024)
#define GATE_STUB0 256       /* first clone stub; below: the restorer */
#define GATE_STUB_SIZE 256 /* two per clone site: arming, plain */

__thread uint8_t govrt_sud_selector __attribute__((tls_model("initial-exec")));
struct govrt_sud govrt_sud;

/* ---- the clone stub, copied into the gate once per clone site ----------
 * It re-issues the trapped clone/fork/vfork from the gate. In the child
 * (rax == 0) it arms Syscall User Dispatch for the new task, which the
 * kernel does not inherit: selector = BLOCK, prctl with the gate as the
 * allowed range. It saves what prctl clobbers below a 128-byte red zone,
 * then jumps back behind the original syscall instruction. rcx and r11 are
 * clobbered, as after any syscall. */
extern const char gov_sud_tpl[], gov_sud_tpl_ret[], gov_sud_tpl_tpoff[],
	gov_sud_tpl_gate[], gov_sud_tpl_len[], gov_sud_tpl_end[];
__asm__(".pushsection .rodata\n"
	".hidden gov_sud_tpl, gov_sud_tpl_ret, gov_sud_tpl_tpoff\n"
	".hidden gov_sud_tpl_gate, gov_sud_tpl_len, gov_sud_tpl_end\n"
	".globl gov_sud_tpl, gov_sud_tpl_ret, gov_sud_tpl_tpoff\n"
	".globl gov_sud_tpl_gate, gov_sud_tpl_len, gov_sud_tpl_end\n"
	"gov_sud_tpl:\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	lea -128(%rsp), %rsp\n"
	"	push %rdi\n push %rsi\n push %rdx\n push %r10\n push %r8\n push %r9\n"
	"	mov %fs:0, %r8\n"
	"	add gov_sud_tpl_tpoff(%rip), %r8\n"
	"	movb $1, (%r8)\n"
	"	mov $157, %eax\n"
	"	mov $59, %edi\n"
	"	mov $1, %esi\n"
	"	mov gov_sud_tpl_gate(%rip), %rdx\n"
	"	mov gov_sud_tpl_len(%rip), %r10\n"
	"	syscall\n"
	"	pop %r9\n pop %r8\n pop %r10\n pop %rdx\n pop %rsi\n pop %rdi\n"
	"	lea 128(%rsp), %rsp\n"
	"	xor %eax, %eax\n"
	"1:	jmp *gov_sud_tpl_ret(%rip)\n"
	"	.balign 8\n"
	"gov_sud_tpl_ret: .quad 0\n"
	"gov_sud_tpl_tpoff: .quad 0\n"
	"gov_sud_tpl_gate: .quad 0\n"
	"gov_sud_tpl_len: .quad 0\n"
	"gov_sud_tpl_end:\n"
	".popsection\n");

/* mov $15, %rax; syscall: rt_sigreturn, from inside the gate. These very
 * bytes (not the shorter mov to %eax): libgcc's unwinder recognises a
 * signal frame by them, so an unwind (pthread_cancel) that starts in a
 * program syscall made from the SIGSYS handler goes on through the
 * handler's frame into the trapped code. */
static const uint8_t restorer_code[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };

#define SA_RESTORER_FLAG 0x04000000

/* long gate_syscall(nr, a, b, c, d, e, f) in the gate: the kernel lets a
 * syscall made from the allowed range through before it reads the
 * selector byte from user memory, so govrt's own syscalls cost less there
 *   mov %rdi,%rax; mov %rsi,%rdi; mov %rdx,%rsi; mov %rcx,%rdx;
 *   mov %r8,%r10; mov %r9,%r8; mov 8(%rsp),%r9; syscall; ret */
static const uint8_t gate_syscall_code[] = {
	0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca,
	0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3,
};
#define GATE_SYSCALL_OFF 64
static long (*gate_syscall)(long, long, long, long, long, long, long);

/* A syscall made from govrt itself (selector ALLOW, or the thread unarmed). */
static long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
	if (gate_syscall)
		return gate_syscall(nr, a, b, c, d, e, f);
	return gov_raw_syscall(nr, a, b, c, d, e, f);
}

long govrt_sys_raw(long nr, const long a[6])
{
	return raw6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- locking: a spinlock, because the handler may interrupt any code,
 * including a fork that holds govrt.lock (pthread_atfork) ---- */
static void sud_lock(void)
{
	while (__atomic_exchange_n(&govrt_sud.lock, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}

static void sud_unlock(void)
{
	__atomic_store_n(&govrt_sud.lock, 0, __ATOMIC_RELEASE);
}

/* ---- counting ---- */

void govrt_sys_count(enum govrt_sys_path path, long nr)
{
	if (nr < 0 || nr >= GOVRT_SYS_NR_MAX)
		nr = GOVRT_SYS_NR_MAX - 1;
	__atomic_fetch_add(&govrt_sud.counts[path][nr], 1, __ATOMIC_RELAXED);
}

void govrt_sud_fill_stats(struct govrt_stats *o)
{
	uint64_t sum[GOVRT_SYS_NPATHS] = { 0 };
	for (int p = 0; p < GOVRT_SYS_NPATHS; p++)
		for (int nr = 0; nr < GOVRT_SYS_NR_MAX; nr++)
			sum[p] += __atomic_load_n(&govrt_sud.counts[p][nr], __ATOMIC_RELAXED);
	o->sys_disk = sum[GOVRT_SYS_DISK];
	o->sys_load = sum[GOVRT_SYS_LOAD];
	o->sys_lazy = sum[GOVRT_SYS_LAZY];
	o->sys_sud = sum[GOVRT_SYS_SUD];
	o->sites_sud = __atomic_load_n(&govrt_sud.sites_trapped, __ATOMIC_RELAXED);
	o->sites_lazy = __atomic_load_n(&govrt_sud.sites_patched, __ATOMIC_RELAXED);
	o->sites_load = __atomic_load_n(&govrt_sud.sites_load, __ATOMIC_RELAXED);
	o->sites_load_left = __atomic_load_n(&govrt_sud.sites_load_left, __ATOMIC_RELAXED);
}

/* ---- decisions for run-time sites ----
 * govrt_apply_table hands us every new table (govrt.lock held, decisions
 * interned); a site created later takes its decision from that copy under
 * our own lock, never govrt.lock. */

static uint32_t decide(const struct gov_site *s)
{
	if (!govrt_sud.have_rows)
		return govrt_sud.all_agent ? GOVRT_DECISION_AGENT : GOVRT_DECISION_NATIVE;
	for (uint32_t r = 0; r < govrt_sud.nrows; r++)
		if (gov_decision_matches(&govrt_sud.rows[r].d, s->kind, s->callee, s->sysno))
			return govrt_sud.rows[r].decision;
	return GOVRT_DECISION_NATIVE;
}

static void set_verdict(struct gov_site *s, uint32_t decision)
{
	__atomic_store_n(&s->decision, decision, __ATOMIC_RELEASE);
	__atomic_store_n(&s->verdict, decision == GOVRT_DECISION_NATIVE ?
			 GOV_VERDICT_NATIVE : GOV_VERDICT_DISPATCH, __ATOMIC_RELEASE);
}

static void redecide_all(void)
{
	uint32_t n = __atomic_load_n(&govrt_sud.nsites, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < n; i++)
		set_verdict(&govrt_sud.sites[i].site, decide(&govrt_sud.sites[i].site));
}

void govrt_sud_table(const struct gov_decision *rows, uint32_t n)
{
	if (!govrt_sud.on)
		return;
	size_t bytes = (n ? n : 1) * sizeof *govrt_sud.rows;
	struct govrt_sud_row *copy = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED) {
		govrt_warn("out of memory copying the decision table for run-time sites");
		return;
	}
	for (uint32_t r = 0; r < n; r++) {
		copy[r].d = rows[r];
		copy[r].decision = rows[r].action == GOV_ACT_NATIVE ? GOVRT_DECISION_NATIVE
								     : govrt_intern_decision(&rows[r]);
	}
	sud_lock();
	struct govrt_sud_row *old = govrt_sud.rows;
	size_t old_bytes = govrt_sud.rows_bytes;
	govrt_sud.rows = copy;
	govrt_sud.rows_bytes = bytes;
	govrt_sud.nrows = n;
	govrt_sud.have_rows = 1;
	redecide_all();
	sud_unlock();
	if (old)
		munmap(old, old_bytes);
}

void govrt_sud_mark_all_agent(void)
{
	if (!govrt_sud.on)
		return;
	sud_lock();
	govrt_sud.all_agent = 1;
	redecide_all();
	sud_unlock();
}

/* ---- code rewritten on disk ----
 * A trampoline of a module govrewrite rewrote makes its syscall outside the
 * gate, after rewritten.c's entry (or the native fast path) has decided it:
 * that trap is counted as the disk path and the call runs as decided. */

struct tramp_query {
	uintptr_t addr;
	int found;
};

static int find_tramp(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct tramp_query *q = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_GOV_REWRITE || p->p_memsz < sizeof(struct gov_rewrite_hdr))
			continue;
		const struct gov_rewrite_hdr *h = (const void *)(info->dlpi_addr + p->p_vaddr);
		uintptr_t bias = h->flags & GOV_REWRITE_LINK_ADDRESSES ? info->dlpi_addr : 0;
		if (h->magic == GOV_REWRITE_MAGIC && q->addr >= h->tramp_start + bias &&
		    q->addr < h->tramp_end + bias) {
			q->found = 1;
			return 1;
		}
	}
	return 0;
}

int govrt_in_rewritten_tramp(uintptr_t addr)
{
	struct tramp_query q = { addr, 0 };
	dl_iterate_phdr(find_tramp, &q);
	return q.found;
}

/* ---- run-time sites ---- */

static uint32_t site_hash(uintptr_t addr, long nr)
{
	uint64_t h = ((uint64_t)addr ^ ((uint64_t)nr << 48)) * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 40) & (SUD_HASH_SIZE - 1);
}

static struct govrt_sud_site *site_lookup(uintptr_t addr, long nr)
{
	for (uint32_t h = site_hash(addr, nr), n = 0; n < SUD_HASH_SIZE;
	     h = (h + 1) & (SUD_HASH_SIZE - 1), n++) {
		uint32_t i = __atomic_load_n(&govrt_sud.hash[h], __ATOMIC_ACQUIRE);
		if (!i)
			return NULL;
		struct govrt_sud_site *s = &govrt_sud.sites[i - 1];
		if (s->addr == addr && s->site.sysno == nr)
			return s;
	}
	return NULL;
}

/* The site of the syscall instruction at addr making syscall nr, created
 * on first sight: caller from dladdr, callee the syscall's name, file the
 * module's path and line the instruction's offset in it, so its id is
 * stable from run to run. NULL when the table is full (counted; the call
 * still runs, ungoverned). */
struct govrt_sud_site *govrt_sud_site_get(uintptr_t addr, long nr)
{
	struct govrt_sud_site *s = site_lookup(addr, nr);
	if (s)
		return s;
	Dl_info info;
	memset(&info, 0, sizeof info);
	int found = dladdr((void *)addr, &info);
	sud_lock();
	if ((s = site_lookup(addr, nr)))
		goto out;
	uint32_t i = govrt_sud.nsites;
	if (i == SUD_MAX_SITES) {
		govrt_sud.overflow++;
		goto out;
	}
	s = &govrt_sud.sites[i];
	s->addr = addr;
	struct gov_site *g = &s->site;
	g->kind = GOV_SITE_SYSCALL;
	g->ret_conv = GOV_RET_RAW;
	g->nparams = 6;
	g->sysno = (int32_t)nr;
	g->types = "lllllll";
	g->callee = gov_syscall_name((int)nr);
	g->caller = found && info.dli_sname ? info.dli_sname : "?";
	g->file = found && info.dli_fname ? info.dli_fname : "?";
	g->line = (uint32_t)(addr - (found ? (uintptr_t)info.dli_fbase : 0));
	g->id = gov_site_id(g->file, g->line, g->caller, g->callee ? g->callee : "?");
	s->disk = govrt_in_rewritten_tramp(addr);
	set_verdict(g, decide(g));
	__atomic_store_n(&govrt_sud.nsites, i + 1, __ATOMIC_RELEASE);
	for (uint32_t h = site_hash(addr, nr);; h = (h + 1) & (SUD_HASH_SIZE - 1)) {
		if (!govrt_sud.hash[h]) {
			__atomic_store_n(&govrt_sud.hash[h], i + 1, __ATOMIC_RELEASE);
			break;
		}
	}
out:
	sud_unlock();
	return s;
}

static int read_mem(void *dst, const void *src, size_t n);

/* ---- the gate ---- */

static int gate_init(void)
{
	int fd = memfd_create("govrt-sud-gate", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, GATE_SIZE) < 0)
		goto fail;
	govrt_sud.gate_rw = mmap(NULL, GATE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	govrt_sud.gate_rx = mmap(NULL, GATE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	close(fd);
	if (govrt_sud.gate_rw == MAP_FAILED || govrt_sud.gate_rx == MAP_FAILED)
		return -1;
	memcpy(govrt_sud.gate_rw, restorer_code, sizeof restorer_code);
	memcpy((char *)govrt_sud.gate_rw + GATE_SYSCALL_OFF, gate_syscall_code,
	       sizeof gate_syscall_code);
	gate_syscall = (long (*)(long, long, long, long, long, long, long))(
		(char *)govrt_sud.gate_rx + GATE_SYSCALL_OFF);
	/* the program's blocking syscalls wait here: unwinding goes through */
	govrt_register_leaf_cfi((uintptr_t)gate_syscall, sizeof gate_syscall_code);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static uintptr_t gate_restorer(void)
{
	return (uintptr_t)govrt_sud.gate_rx;
}

/* The clone stubs of a site, made on first use: [0] arms the child, [1]
 * only jumps back (ff 25 = jmp *0(%rip), then the address). 0 if the gate
 * is full. */
static uintptr_t clone_stub(struct govrt_sud_site *s, uintptr_t ret, int arm)
{
	if (s->clone_stub[!arm])
		return s->clone_stub[!arm];
	size_t len = (size_t)(gov_sud_tpl_end - gov_sud_tpl);
	sud_lock();
	uint32_t k = govrt_sud.nstubs;
	if (!s->clone_stub[0] && GATE_STUB0 + (k + 2) * GATE_STUB_SIZE <= GATE_SIZE) {
		char *w = (char *)govrt_sud.gate_rw + GATE_STUB0 + k * GATE_STUB_SIZE;
		uint64_t fields[4] = { ret, (uint64_t)govrt_sud.tpoff,
				       (uint64_t)govrt_sud.gate_rx, GATE_SIZE };
		memcpy(w, gov_sud_tpl, len);
		memcpy(w + (gov_sud_tpl_ret - gov_sud_tpl), fields, sizeof fields);
		static const uint8_t plain[] = { 0x0f, 0x05, 0xff, 0x25, 0, 0, 0, 0 };
		memcpy(w + GATE_STUB_SIZE, plain, sizeof plain);
		memcpy(w + GATE_STUB_SIZE + sizeof plain, &ret, sizeof ret);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		uintptr_t x = (uintptr_t)govrt_sud.gate_rx + GATE_STUB0 + k * GATE_STUB_SIZE;
		s->clone_stub[1] = x + GATE_STUB_SIZE;
		s->clone_stub[0] = x;
		govrt_sud.nstubs = k + 2;
	}
	sud_unlock();
	return s->clone_stub[!arm];
}

/* Whether the child of this clone gets Syscall User Dispatch from the
 * stub: a child with its own memory (fork) or its own TLS (a thread) does;
 * a vfork child, or a CLONE_VM child sharing our TLS, would share our
 * selector byte, and the handler it runs would leave it open for us when
 * it execs; it runs unarmed until its exec (runtime/README.md). */
static int arm_child(long nr, const long a[6])
{
	uint64_t flags;
	switch (nr) {
	case SYS_fork:
		return 1;
	case SYS_vfork:
		return 0;
	case SYS_clone:
		flags = (uint64_t)a[0];
		break;
	default: /* clone3: struct clone_args starts with flags */
		if (read_mem(&flags, (void *)a[0], sizeof flags) < 0)
			return 0;
	}
	if (flags & CLONE_VFORK)
		return 0;
	return !(flags & CLONE_VM) || (flags & CLONE_SETTLS);
}

/* ---- the program's own view of SIGSYS ----
 * SIGSYS must never be blocked in an armed thread (a trap with SIGSYS
 * blocked kills the process), and its handler is govrt's. A program that
 * blocks SIGSYS or masks it in a handler gets it quietly left out; a
 * program that installs a SIGSYS handler gets it recorded and called for
 * every SIGSYS that is not a dispatch (seccomp, kill). */

static int read_mem(void *dst, const void *src, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

static int write_mem(void *dst, const void *src, size_t n)
{
	struct iovec local = { (void *)src, n }, remote = { dst, n };
	return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

#define SIGSYS_BIT (1ULL << (SIGSYS - 1))

/* rt_sigprocmask, trapped: the handler's sigreturn restores the mask saved
 * in its signal frame, so the change is made there, in uc_sigmask (the
 * kernel's 8-byte set), and takes effect as the handler returns; the mask
 * the program asks for never blocks SIGSYS. Errors as the kernel's. */
static long sys_sigprocmask(ucontext_t *uc, long how, const void *set, void *oset, long size)
{
	uint64_t cur, want;
	if (size != 8)
		return -EINVAL;
	memcpy(&cur, &uc->uc_sigmask, sizeof cur);
	want = cur;
	if (set) {
		uint64_t s;
		if (read_mem(&s, set, sizeof s) < 0)
			return -EFAULT;
		switch (how) {
		case SIG_BLOCK: want |= s; break;
		case SIG_UNBLOCK: want &= ~s; break;
		case SIG_SETMASK: want = s; break;
		default: return -EINVAL;
		}
		want &= ~(SIGSYS_BIT | 1ULL << (SIGKILL - 1) | 1ULL << (SIGSTOP - 1));
	}
	memcpy(&uc->uc_sigmask, &want, sizeof want);
	if (oset && write_mem(oset, &cur, sizeof cur) < 0)
		return -EFAULT;
	return 0;
}

static long sys_sigaction(long sig, const void *act, void *oact, long size)
{
	struct govrt_ksigaction k;
	if (size != 8)
		return -EINVAL;
	if (act && read_mem(&k, act, sizeof k) < 0)
		return -EFAULT;
	if (sig == SIGSYS) {
		sud_lock();
		struct govrt_ksigaction old = govrt_sud.program_sigsys;
		if (act)
			govrt_sud.program_sigsys = k;
		sud_unlock();
		if (oact && write_mem(oact, &old, sizeof old) < 0)
			return -EFAULT;
		return 0;
	}
	if (!act)
		return raw6(SYS_rt_sigaction, sig, 0, (long)oact, size, 0, 0);
	k.mask &= ~SIGSYS_BIT;
	return raw6(SYS_rt_sigaction, sig, (long)&k, (long)oact, size, 0, 0);
}

/* A SIGSYS that is not a dispatch goes to the program's handler, if any. */
static void forward_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct govrt_ksigaction k = govrt_sud.program_sigsys;
	if (k.handler == SIG_IGN)
		return;
	if (k.handler == SIG_DFL || !k.handler) {
		/* the default action: die of SIGSYS */
		struct govrt_ksigaction dfl = { SIG_DFL, 0, NULL, 0 };
		raw6(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0, 0);
		raw6(SYS_tgkill, getpid(), raw6(SYS_gettid, 0, 0, 0, 0, 0, 0), SIGSYS, 0, 0, 0);
		return;
	}
	govrt_sud_selector = GOVRT_SUD_BLOCK;
	if (k.flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))k.handler)(sig, si, uc);
	else
		((void (*)(int))k.handler)(sig);
	govrt_sud_selector = GOVRT_SUD_ALLOW;
}

/* ---- the report ---- */

static void report_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_line(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0)
		raw6(SYS_write, fd, (long)line, n < (int)sizeof line ? n : (int)sizeof line - 1, 0, 0, 0);
}

/* One line with the totals per path, then one line per syscall seen:
 *   govrt-report pid=P disk=N load=N lazy=N sud=N sites_sud=N ...
 *   govrt-report pid=P syscall=NAME total=N disk=N load=N lazy=N sud=N */
void govrt_sud_report(void)
{
	if (!govrt_sud.report || __atomic_exchange_n(&govrt_sud.reported, 1, __ATOMIC_ACQ_REL))
		return;
	int fd = STDERR_FILENO;
	if (strcmp(govrt_sud.report, "1") == 0) {
		/* the program may have closed its stderr (coreutils do at exit) */
		if (govrt_sud.report_fd > 0 &&
		    raw6(SYS_fcntl, govrt_sud.report_fd, F_GETFD, 0, 0, 0, 0) >= 0)
			fd = govrt_sud.report_fd;
	} else {
		fd = (int)raw6(SYS_openat, AT_FDCWD, (long)govrt_sud.report,
			       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, 0, 0);
		if (fd < 0)
			return;
	}
	struct govrt_stats st;
	memset(&st, 0, sizeof st);
	govrt_sud_fill_stats(&st);
	int pid = (int)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
	report_line(fd, "govrt-report pid=%d disk=%llu load=%llu lazy=%llu sud=%llu "
		    "sites_sud=%llu sites_lazy=%llu sites_load=%llu sites_load_left=%llu\n", pid,
		    (unsigned long long)st.sys_disk, (unsigned long long)st.sys_load,
		    (unsigned long long)st.sys_lazy, (unsigned long long)st.sys_sud,
		    (unsigned long long)st.sites_sud, (unsigned long long)st.sites_lazy,
		    (unsigned long long)st.sites_load, (unsigned long long)st.sites_load_left);
	for (int nr = 0; nr < GOVRT_SYS_NR_MAX; nr++) {
		uint64_t c[GOVRT_SYS_NPATHS], total = 0;
		for (int p = 0; p < GOVRT_SYS_NPATHS; p++)
			total += c[p] = __atomic_load_n(&govrt_sud.counts[p][nr], __ATOMIC_RELAXED);
		if (!total)
			continue;
		const char *name = gov_syscall_name(nr);
		report_line(fd, "govrt-report pid=%d syscall=%s total=%llu disk=%llu load=%llu "
			    "lazy=%llu sud=%llu\n", pid, name ? name : "?",
			    (unsigned long long)total, (unsigned long long)c[GOVRT_SYS_DISK],
			    (unsigned long long)c[GOVRT_SYS_LOAD], (unsigned long long)c[GOVRT_SYS_LAZY],
			    (unsigned long long)c[GOVRT_SYS_SUD]);
	}
	if (strcmp(govrt_sud.report, "1") != 0)
		raw6(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* ---- the program's syscall, made by govrt ----
 * govrt makes a trapped (or lazily patched) syscall on the program's
 * behalf from the gate, where the kernel never traps, with the selector
 * at BLOCK: a handler of the program that a signal runs while the call
 * blocks (ppoll, sigsuspend, read, ...) is the program's code, and its
 * syscalls trap and are governed like any other. For that, SIGSYS must not
 * be blocked while the call waits: the syscalls that wait with a temporary
 * mask of the program's get a copy of it without SIGSYS (the program's
 * memory is never written). rt_sigtimedwait needs nothing: its set is
 * unblocked while it waits, never blocked. */

struct mask_copy {
	uint64_t mask;
	struct { uint64_t ss, len; } pair; /* pselect6's and io_pgetevents' */
};

/* Points a[i] at a copy of the sigset it points to, SIGSYS removed, when
 * the set blocks SIGSYS; a size other than 8 is left for the kernel to
 * refuse. 0, or -EFAULT when the set cannot be read. */
static long clean_set(long a[6], int i, uint64_t size, struct mask_copy *c)
{
	if (!a[i] || size != sizeof c->mask)
		return 0;
	if (read_mem(&c->mask, (const void *)a[i], sizeof c->mask) < 0)
		return -EFAULT;
	if (c->mask & SIGSYS_BIT) {
		c->mask &= ~SIGSYS_BIT;
		a[i] = (long)&c->mask;
	}
	return 0;
}

/* The same for a mask passed as a pointer to {sigset pointer, size}. */
static long clean_pair(long a[6], int i, struct mask_copy *c)
{
	if (!a[i])
		return 0;
	if (read_mem(&c->pair, (const void *)a[i], sizeof c->pair) < 0)
		return -EFAULT;
	long p[6] = { (long)c->pair.ss };
	long r = clean_set(p, 0, c->pair.len, c);
	if (r == 0 && p[0] != (long)c->pair.ss) {
		c->pair.ss = (uint64_t)p[0];
		a[i] = (long)&c->pair;
	}
	return r;
}

/* a[] made safe to wait with (a copy of the program's arguments). */
static long clean_masks(long nr, long a[6], struct mask_copy *c)
{
	switch (nr) {
	case SYS_rt_sigsuspend:
		return clean_set(a, 0, (uint64_t)a[1], c);
	case SYS_ppoll:
		return clean_set(a, 3, (uint64_t)a[4], c);
	case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return clean_set(a, 4, (uint64_t)a[5], c);
	case SYS_pselect6:
	case SYS_io_pgetevents:
		return clean_pair(a, 5, c);
	}
	return 0;
}

static long program_syscall(long nr, const long args[6])
{
	long a[6];
	struct mask_copy c;
	memcpy(a, args, sizeof a);
	long r = clean_masks(nr, a, &c);
	if (r < 0)
		return r;
	if (!gate_syscall) /* not armed: nothing traps, nothing to open */
		return gov_raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	uint8_t sel = govrt_sud_selector;
	govrt_sud_selector = GOVRT_SUD_BLOCK;
	r = gate_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	govrt_sud_selector = sel;
	return r;
}

/* ---- one trapped syscall ---- */

/* The syscall under the site's verdict; returns what rax gets. */
long govrt_sys_govern(struct gov_site *s, long nr, const long a[6])
{
	if (__builtin_expect(!s || !s->verdict, 1))
		return program_syscall(nr, a);
	struct gov_call c = { { (uint64_t)a[0], (uint64_t)a[1], (uint64_t)a[2],
				(uint64_t)a[3], (uint64_t)a[4], (uint64_t)a[5] }, 0 };
	if (__govrt_dispatch(s, &c) != GOV_RUN_NATIVE)
		return (long)c.ret;
	const long b[6] = { (long)c.arg[0], (long)c.arg[1], (long)c.arg[2], (long)c.arg[3],
			    (long)c.arg[4], (long)c.arg[5] };
	return program_syscall(nr, b);
}

/* Syscalls the handler cannot simply make on the program's behalf. */
static int special(long nr)
{
	switch (nr) {
	case SYS_rt_sigreturn:
	case SYS_clone:
	case SYS_clone3:
	case SYS_fork:
	case SYS_vfork:
	case SYS_rt_sigaction:
	case SYS_rt_sigprocmask:
	case SYS_exit_group:
		return 1;
	}
	return 0;
}

int govrt_sys_is_special(long nr)
{
	return special(nr);
}

/* The site's verdict for a special syscall: 1 with *ret when the call is
 * answered without running it, else 0 with a[] as the rule left them. */
static int answered(struct gov_site *s, long a[6], long *ret)
{
	if (!s || !s->verdict)
		return 0;
	struct gov_call c = { { (uint64_t)a[0], (uint64_t)a[1], (uint64_t)a[2],
				(uint64_t)a[3], (uint64_t)a[4], (uint64_t)a[5] }, 0 };
	if (__govrt_dispatch(s, &c) != GOV_RUN_NATIVE) {
		*ret = (long)c.ret;
		return 1;
	}
	for (int i = 0; i < 6; i++)
		a[i] = (long)c.arg[i];
	return 0;
}

/* Runs a special syscall for the trapped context; returns 1 if rax must be
 * set to *ret, 0 if the context was redirected instead. */
static int run_special(struct govrt_sud_site *ss, long nr, ucontext_t *uc, long a[6], long *ret)
{
	greg_t *r = uc->uc_mcontext.gregs;
	struct gov_site *s = ss ? &ss->site : NULL;
	switch (nr) {
	case SYS_rt_sigreturn:
		/* traced like any syscall, but never refused: the program's
		 * restorer is finished from the gate, with rsp still on the
		 * program's signal frame */
		answered(s, a, ret);
		r[REG_RIP] = (greg_t)gate_restorer();
		return 0;
	case SYS_clone:
	case SYS_clone3:
	case SYS_fork:
	case SYS_vfork: {
		if (answered(s, a, ret))
			return 1;
		for (int i = 0; i < 6; i++) /* a rule may have changed them */
			r[(int[]){ REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9 }[i]] = (greg_t)a[i];
		uintptr_t stub = ss ? clone_stub(ss, (uintptr_t)r[REG_RIP], arm_child(nr, a)) : 0;
		if (!stub) {
			*ret = -EAGAIN;
			return 1;
		}
		r[REG_RIP] = (greg_t)stub; /* rax still holds nr: the kernel rolled it back */
		return 0;
	}
	case SYS_rt_sigaction:
		if (!answered(s, a, ret))
			*ret = sys_sigaction(a[0], (void *)a[1], (void *)a[2], a[3]);
		return 1;
	case SYS_rt_sigprocmask:
		if (!answered(s, a, ret))
			*ret = sys_sigprocmask(uc, a[0], (void *)a[1], (void *)a[2], a[3]);
		return 1;
	case SYS_exit_group:
		govrt_sud_report();
		*ret = govrt_sys_govern(s, nr, a);
		return 1;
	}
	return 0;
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	govrt_sud_selector = GOVRT_SUD_ALLOW;
	int saved_errno = errno;
	ucontext_t *uc = ucv;
	if (si->si_code != SYS_USER_DISPATCH) {
		forward_sigsys(sig, si, ucv);
		goto out;
	}
	greg_t *r = uc->uc_mcontext.gregs;
	long nr = (long)r[REG_RAX];
	uintptr_t at = (uintptr_t)r[REG_RIP] - 2; /* syscall is 0f 05 */
	long a[6] = { (long)r[REG_RDI], (long)r[REG_RSI], (long)r[REG_RDX],
		      (long)r[REG_R10], (long)r[REG_R8], (long)r[REG_R9] };
	struct govrt_sud_site *ss = govrt_sud_site_get(at, nr);
	if (ss && !ss->trapped) {
		ss->trapped = 1;
		__atomic_fetch_add(&govrt_sud.sites_trapped, 1, __ATOMIC_RELAXED);
	}
	if (ss && ss->disk && !special(nr)) {
		/* decided by rewritten.c's entry already */
		govrt_sys_count(GOVRT_SYS_DISK, nr);
		r[REG_RAX] = (greg_t)program_syscall(nr, a);
		goto out;
	}
	int restart = 0;
	if (ss && !ss->disk && !special(nr) && govrt_sud.lazy && !ss->patched && govrt_lazy_patch &&
	    govrt_lazy_patch(at, nr, ss, &restart) && restart) {
		/* the patch starts at the syscall: run it through the trampoline */
		r[REG_RIP] = (greg_t)at;
		goto out;
	}
	govrt_sys_count(GOVRT_SYS_SUD, nr);
	long ret;
	if (special(nr)) {
		if (run_special(ss, nr, uc, a, &ret))
			r[REG_RAX] = (greg_t)ret;
	} else {
		r[REG_RAX] = (greg_t)govrt_sys_govern(ss ? &ss->site : NULL, nr, a);
	}
out:
	errno = saved_errno;
	govrt_sud_selector = GOVRT_SUD_BLOCK;
}

/* ---- switching it on ---- */

/* Arms the calling thread. */
static int arm_thread(void)
{
	govrt_sud_selector = GOVRT_SUD_ALLOW;
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
		  (unsigned long)govrt_sud.gate_rx, (unsigned long)GATE_SIZE,
		  &govrt_sud_selector) < 0)
		return -errno;
	return 0;
}

static int install_handler(void)
{
	struct govrt_ksigaction k = {
		.handler = (void *)on_sigsys,
		.flags = SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_RESTORER_FLAG,
		.restorer = (void *)gate_restorer(),
		.mask = 0,
	};
	struct govrt_ksigaction old;
	long r = raw6(SYS_rt_sigaction, SIGSYS, (long)&k, (long)&old, 8, 0, 0);
	if (r < 0)
		return (int)r;
	govrt_sud.program_sigsys = old;
	uint64_t unblock = SIGSYS_BIT;
	raw6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, 0, 8, 0, 0);
	return 0;
}

static void read_sud_config(void)
{
	const char *v = getenv("GOV_SYSCALLS");
	if (!v || !*v || strcmp(v, "off") == 0)
		return;
	if (strcmp(v, "sud") == 0) {
		govrt_sud.on = 1;
	} else if (strcmp(v, "exhaustive") == 0) {
		govrt_sud.on = 1;
		govrt_sud.lazy = govrt_lazy_patch != NULL;
	} else {
		govrt_warn("GOV_SYSCALLS=%s is not off, sud or exhaustive; using off", v);
	}
	if (!govrt_sud.on)
		return;
	const char *rep = getenv("GOV_REPORT");
	if (rep && *rep && strcmp(rep, "0") != 0)
		govrt_sud.report = rep;
	if (govrt_sud.report && strcmp(rep, "1") == 0)
		govrt_sud.report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 900);
}

static void *map_zeroed(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* From a constructor, before the program's own: with GOV_SYSCALLS unset
 * this reads one variable and returns. */
__attribute__((constructor(101))) static void sud_start(void)
{
	read_sud_config();
	const char *rw = getenv("GOV_REWRITE");
	if (!govrt_sud.on) {
		if (rw && *rw && strcmp(rw, "off") != 0)
			govrt_warn("GOV_REWRITE=%s needs GOV_SYSCALLS=sud or exhaustive; ignored", rw);
		return;
	}
	govrt_init();
	govrt_sud.tpoff = (intptr_t)((char *)&govrt_sud_selector -
				     (char *)__builtin_thread_pointer());
	govrt_sud.sites = map_zeroed(SUD_MAX_SITES * sizeof *govrt_sud.sites);
	govrt_sud.hash = map_zeroed(SUD_HASH_SIZE * sizeof *govrt_sud.hash);
	int err = 0;
	_Static_assert(GATE_SYSCALL_OFF >= sizeof restorer_code &&
		       GATE_STUB0 >= GATE_SYSCALL_OFF + sizeof gate_syscall_code,
		       "the restorer and gate_syscall fit below the stubs");
	if (gov_sud_tpl_end - gov_sud_tpl > GATE_STUB_SIZE)
		err = -E2BIG; /* the clone stub outgrew its slot */
	else if (!govrt_sud.sites || !govrt_sud.hash || gate_init() < 0)
		err = -ENOMEM;
	if (!err)
		err = install_handler();
	if (err) {
		govrt_warn("GOV_SYSCALLS=%s: cannot set up Syscall User Dispatch: %s; syscalls "
			   "stay native", getenv("GOV_SYSCALLS"), strerror(-err));
		govrt_sud.on = 0;
		return;
	}
	if (rw && (!*rw || strcmp(rw, "off") == 0))
		rw = NULL;
	if (govrt_patch_prepare)
		govrt_patch_prepare(govrt_sud.lazy, rw);
	else if (rw)
		govrt_warn("GOV_REWRITE=%s: this program's govrt has no rewriting engine "
			   "(static libgovrt.a without lazypatch.o); nothing rewritten", rw);
	/* the agent's table (if the process is governed) before any trap; it
	 * starts govrt's watcher thread, so after rewriting, which is simpler
	 * with one thread. Nothing else here allocates from the program's
	 * heap, so a program that is not governed finds it as without govrt. */
	if (govrt.cfg.resource[0])
		govrt_channel_start();
	err = arm_thread();
	if (err) {
		govrt_warn("GOV_SYSCALLS=%s: prctl(PR_SET_SYSCALL_USER_DISPATCH) failed: %s "
			   "(Linux >= 5.11 needed); syscalls stay native", getenv("GOV_SYSCALLS"),
			   strerror(-err));
		govrt_sud.on = 0;
		return;
	}
	govrt_debug("Syscall User Dispatch on (%s), gate at %p", getenv("GOV_SYSCALLS"),
		    govrt_sud.gate_rx);
	govrt_sud_selector = GOVRT_SUD_BLOCK;
}

int govrt_sud_enabled(void)
{
	return govrt_sud.on;
}
