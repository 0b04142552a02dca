/* runtime/lazypatch.c - patching syscall sites in memory, so the steady
 * state takes no signals: lazily, at a site's first Syscall User Dispatch
 * trap (GOV_SYSCALLS=exhaustive), and at load time for whole libraries
 * (GOV_REWRITE=libc or all).
 *
 * Both use the rewriting engine (rewriter/engine.h) over a module's
 * executable segment, scanned once and cached: the engine picks the site's
 * window and writes its trampoline; we place the trampoline in a chunk
 * mapped within +-2 GiB of the code and write the window's jmp through
 * /proc/self/mem (no mprotect of live code).
 *
 * A patched site's trampoline tests a byte that is always 1 and calls
 * sud_entry, which counts the syscall, governs it and makes it (with the
 * selector open): the syscall instruction copied into the trampoline never
 * runs, because it is outside the gate and would trap.
 *
 * When patching is safe (runtime/README.md, "Exhaustive syscalls"):
 *   - only syscalls whose number the engine read from a `mov $N,%eax`,
 *     never the special ones (clone, fork, vfork, rt_sigreturn, ...);
 *   - only while every other thread is blocked in the kernel with a
 *     return address outside the window (/proc/self/task/N/syscall): a
 *     running thread could be inside the window, a blocked one could
 *     return into it. Else the site is tried again at its next trap;
 *   - lazily, never from a syscall malloc makes (the engine and capstone
 *     allocate): brk, mmap, munmap, mremap, mprotect, madvise stay trapped
 *     unless they were rewritten at load time.
 *
 * Not here: the trap itself (sud.c), rewritten-on-disk modules (rewritten.c). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "gov/rewrite.h"
#include "../rewriter/engine.h"
#include "govrt_private.h"

#define MAX_SCANS 64
#define CHUNK_SIZE (256 * 1024)
#define CHUNK_HDR 64          /* entry slot at 0, the always-1 byte at 8 */
#define NEAR_LIMIT (768ULL << 20)
/* The engine sees a segment at BIAS_BASE, not where it runs: its emitter
 * writes a placeholder jump to address 0 before fixing it, which only fits
 * in 32 bits when addresses are low. Displacements do not change when code
 * and trampolines move together, so bias both; tramps stay below 2 GiB. */
#define BIAS_BASE (1ULL << 30)

/* One executable segment, scanned once, with its trampoline chunk. */
struct scan {
	uintptr_t start, end;
	uint64_t bias;           /* run-time address - engine address */
	const char *path;
	struct gre_input in;     /* in.targets: function starts, malloc'ed */
	struct gre_result res;
	uint8_t *chunk_rx, *chunk_rw;
	size_t chunk_used;
	int failed;
};

static struct scan scans[MAX_SCANS];
static int nscans;
static int mem_fd = -1;

static int entry(struct gov_site *cell, struct gov_rewrite_frame *f);

/* ---- finding and scanning segments ---- */

struct seg_query {
	uintptr_t addr;
	uintptr_t start, end;
	const char *path;
	const uint8_t *eh_frame_hdr;
};

static int find_seg(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct seg_query *q = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		if (q->addr >= s && q->addr < e) {
			q->start = s;
			q->end = e;
			q->path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "(main)";
			for (int k = 0; k < info->dlpi_phnum; k++)
				if (info->dlpi_phdr[k].p_type == PT_GNU_EH_FRAME)
					q->eh_frame_hdr = (const uint8_t *)(info->dlpi_addr +
									   info->dlpi_phdr[k].p_vaddr);
			return 1;
		}
	}
	return 0;
}

/* Function starts, the jump targets the engine needs to find instruction
 * boundaries again after bytes capstone cannot decode: the binary-search
 * table of .eh_frame_hdr, which the loader maps and every function with
 * unwind information has an entry in. Only its usual encoding is read
 * (version 1, table of datarel sdata4 pairs); else no targets. */
static uint64_t *function_starts(const uint8_t *hdr, uint64_t bias, size_t *n)
{
	*n = 0;
	if (!hdr || hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b)
		return NULL;
	size_t skip = (hdr[1] & 0x0f) == 0x0b || (hdr[1] & 0x0f) == 0x03 ? 4 : 8;
	if (hdr[1] == 0xff)
		skip = 0;
	uint32_t count;
	memcpy(&count, hdr + 4 + skip, 4);
	const uint8_t *table = hdr + 8 + skip;
	uint64_t *v = malloc((count ? count : 1) * sizeof *v);
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < count; i++) {
		int32_t loc;
		memcpy(&loc, table + 8 * (size_t)i, 4);
		v[i] = (uint64_t)(uintptr_t)hdr + (uint64_t)(int64_t)loc - bias;
	}
	*n = count;
	return v;
}

static struct scan *scan_of(uintptr_t addr)
{
	for (int i = 0; i < nscans; i++)
		if (addr >= scans[i].start && addr < scans[i].end)
			return scans[i].failed ? NULL : &scans[i];
	struct seg_query q = { .addr = addr };
	if (!dl_iterate_phdr(find_seg, &q) || nscans == MAX_SCANS)
		return NULL;
	struct scan *m = &scans[nscans++];
	memset(m, 0, sizeof *m);
	m->start = q.start;
	m->end = q.end;
	m->path = q.path;
	m->bias = q.start - BIAS_BASE;
	m->in.code = (const uint8_t *)q.start;
	m->in.addr = BIAS_BASE;
	m->in.len = q.end - q.start;
	m->in.want_syscalls = 1;
	m->in.targets = function_starts(q.eh_frame_hdr, m->bias, &m->in.ntargets);
	if (gre_scan(&m->in, &m->res) < 0) {
		m->failed = 1;
		return NULL;
	}
	return m;
}

static struct gre_site *site_in_scan(struct scan *m, uintptr_t at)
{
	at -= m->bias;
	size_t lo = 0, hi = m->res.nsites;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->res.sites[mid].addr < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->res.nsites && m->res.sites[lo].addr == at ? &m->res.sites[lo] : NULL;
}

/* ---- trampoline chunks near the code ---- */

static int near(uintptr_t a, uintptr_t b)
{
	uintptr_t d = a > b ? a - b : b - a;
	return d < NEAR_LIMIT - CHUNK_SIZE;
}

/* A chunk mapped twice (RX near the segment, RW for us), tried just above
 * the segment, then just below it. */
static int chunk_map(struct scan *m)
{
	int fd = memfd_create("govrt-tramp", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, CHUNK_SIZE) < 0)
		goto fail;
	uintptr_t page = 4096;
	for (int k = 0; k < 256 && !m->chunk_rx; k++) {
		uintptr_t step = (uintptr_t)(k / 2 + 1) * 16 * 1024 * 1024;
		uintptr_t hint = k % 2 == 0 ? ((m->end + page - 1) & ~(page - 1)) + step - 16 * 1024 * 1024
					 : (m->start & ~(page - 1)) - step;
		void *p = mmap((void *)hint, CHUNK_SIZE, PROT_READ | PROT_EXEC,
			       MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
		if (p == MAP_FAILED)
			continue;
		if (!near((uintptr_t)p, m->start) || !near((uintptr_t)p + CHUNK_SIZE, m->end)) {
			munmap(p, CHUNK_SIZE);
			continue;
		}
		m->chunk_rx = p;
	}
	if (!m->chunk_rx)
		goto fail;
	m->chunk_rw = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m->chunk_rw == MAP_FAILED) {
		munmap(m->chunk_rx, CHUNK_SIZE);
		m->chunk_rx = NULL;
		goto fail;
	}
	close(fd);
	gov_rewrite_entry_fn fn = entry;
	memcpy(m->chunk_rw, &fn, sizeof fn);
	m->chunk_rw[8] = 1; /* the verdict every trampoline here reads */
	m->chunk_used = CHUNK_HDR;
	return 0;
fail:
	close(fd);
	return -1;
}

/* ---- patching one site ---- */

static int write_code(uintptr_t at, const uint8_t *bytes, size_t len)
{
	if (mem_fd < 0)
		mem_fd = (int)gov_raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/mem",
					      O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (mem_fd < 0)
		return -1;
	return gov_raw_syscall(SYS_pwrite64, mem_fd, (long)bytes, (long)len, (long)at, 0, 0) ==
	       (long)len ? 0 : -1;
}

/* Patches site g of scan m for run-time site ss; path says which way
 * (GOVRT_SYS_LAZY or GOVRT_SYS_LOAD). Returns 0 or -1 (left as it is). */
static int patch(struct scan *m, const struct gre_site *g, struct govrt_sud_site *ss, int path)
{
	if (!m->chunk_rx && chunk_map(m) < 0) {
		govrt_debug("no room for trampolines within 2 GiB of %s", m->path);
		return -1;
	}
	size_t off = (m->chunk_used + 15) & ~(size_t)15;
	if (off + 16 + GRE_TRAMP_MAX > CHUNK_SIZE)
		return -1;
	/* an 8-byte cell holding ss, then the trampoline */
	uint64_t rx = (uint64_t)m->chunk_rx - m->bias;
	struct gre_place at = {
		.tramp = rx + off + 16,
		.site = rx + off,
		.verdict = rx + 8,
		.entry_slot = rx,
	};
	uint8_t tramp[GRE_TRAMP_MAX], bytes[GRE_WINDOW_MAX];
	size_t len = 0;
	if (gre_emit(&m->in, g, &at, tramp, &len, bytes) < 0) {
		govrt_debug("the engine could not emit the trampoline of %#lx",
			    (unsigned long)(g->addr + m->bias));
		return -1;
	}
	memcpy(m->chunk_rw + off, &ss, sizeof ss);
	memcpy(m->chunk_rw + off + 16, tramp, len);
	m->chunk_used = off + 16 + len;
	ss->patched = path == GOVRT_SYS_LOAD ? 2 : 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (write_code(g->win_start + m->bias, bytes, g->win_len) < 0) {
		ss->patched = -1;
		return -1;
	}
	return 0;
}

/* Syscalls that lazy patching must not start from: malloc makes them,
 * maybe holding its lock, and the engine allocates. */
static int malloc_syscall(long nr)
{
	return nr == SYS_brk || nr == SYS_mmap || nr == SYS_munmap || nr == SYS_mremap ||
	       nr == SYS_mprotect || nr == SYS_madvise;
}

static int patchable(const struct gre_site *g, long nr)
{
	return g && g->reason == GRE_OK && g->kind == GOV_SITE_SYSCALL && g->sysno >= 0 && g->sysno == nr &&
	       !govrt_sys_is_special(nr) && g->win_len >= GRE_JMP_LEN;
}

/* Whether every other thread of the process is blocked in the kernel with
 * a return address outside (lo, hi): then none is inside the window, none
 * can return into it, and we may write it. A running thread could be
 * anywhere: then not now. /proc/PID/task/TID/syscall says "running", or
 * "NR ARGS... SP PC" for a blocked thread. Read with raw syscalls: no
 * malloc from the SIGSYS handler. */
static int others_outside(uintptr_t lo, uintptr_t hi)
{
	long self = gov_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
	int dir = (int)gov_raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/task",
				       O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	if (dir < 0)
		return 0;
	char ents[4096];
	int safe = 1;
	long n;
	while (safe && (n = gov_raw_syscall(SYS_getdents64, dir, (long)ents, sizeof ents, 0, 0, 0)) > 0) {
		for (long off = 0; safe && off < n;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type;
				 char name[]; } *d = (void *)(ents + off);
			off += d->reclen;
			if (d->name[0] < '0' || d->name[0] > '9' || atol(d->name) == self)
				continue;
			char path[64], buf[256];
			snprintf(path, sizeof path, "/proc/self/task/%s/syscall", d->name);
			int fd = (int)gov_raw_syscall(SYS_openat, AT_FDCWD, (long)path,
						      O_RDONLY | O_CLOEXEC, 0, 0, 0);
			if (fd < 0)
				continue; /* it ended */
			long r = gov_raw_syscall(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
			gov_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
			if (r <= 0) {
				safe = 0;
				break;
			}
			buf[r] = 0;
			char *pc = strrchr(buf, ' ');
			uintptr_t at = pc ? (uintptr_t)strtoull(pc + 1, NULL, 16) : 0;
			if (strncmp(buf, "running", 7) == 0 || !pc || (at > lo && at < hi))
				safe = 0;
		}
	}
	gov_raw_syscall(SYS_close, dir, 0, 0, 0, 0, 0);
	return safe;
}

static int one_thread(void)
{
	char buf[512];
	int fd = (int)gov_raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/stat",
				      O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return 0;
	long n = gov_raw_syscall(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
	gov_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* field 20, num_threads, counted after the ")" that closes comm */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++)
		p = strchr(p + 1, ' ');
	return p && atoi(p + 1) == 1;
}

static uintptr_t self_base(void)
{
	Dl_info info;
	return dladdr((void *)entry, &info) ? (uintptr_t)info.dli_fbase : 0;
}

/* From the SIGSYS handler, for the site of syscall nr at `at`, selector
 * open; *restart is set when the trapped thread must go back to `at` (the
 * patch starts there) rather than have its syscall made by the handler.
 * Returns 1 if patched. */
int govrt_lazy_patch(uintptr_t at, long nr, struct govrt_sud_site *ss, int *restart)
{
	*restart = 0;
	if (ss->patched || malloc_syscall(nr))
		return 0;
	struct scan *m = scan_of(at);
	struct gre_site *g = m ? site_in_scan(m, at) : NULL;
	const char *why = NULL;
	if (!g)
		why = m ? "the engine found no syscall there" : "its code could not be scanned";
	else if (!patchable(g, nr))
		why = g->reason != GRE_OK ? gre_reason_text(g->reason) :
		      "its syscall number is not a constant before it";
	else if (g->win_start + m->bias != at && g->win_start + m->bias + g->win_len != at + 2)
		why = "its window goes on after the syscall and starts before it";
	if (why) {
		ss->patched = -1;
		govrt_debug("lazy patch: %s+%#x (%s) stays on Syscall User Dispatch: %s",
			    ss->site.file, ss->site.line, ss->site.callee, why);
		return 0;
	}
	uintptr_t lo = g->win_start + m->bias, hi = lo + g->win_len;
	if (!others_outside(lo, hi))
		return 0;     /* maybe at its next trap */
	if (patch(m, g, ss, GOVRT_SYS_LAZY) < 0) {
		govrt_debug("lazy patch: %s+%#x (%s): no trampoline space within 2 GiB",
			    ss->site.file, ss->site.line, ss->site.callee);
		return 0;
	}
	__atomic_fetch_add(&govrt_sud.sites_patched, 1, __ATOMIC_RELAXED);
	*restart = g->win_start + m->bias == at;
	return 1;
}

/* ---- load time ---- */

struct load_query {
	const char *which;
	uintptr_t self;
	uintptr_t addrs[MAX_SCANS];
	int n;
};

static int pick_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct load_query *q = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	if (strstr(name, "linux-vdso") || info->dlpi_addr == q->self)
		return 0;
	if (strcmp(q->which, "libc") == 0 && !strstr(name, "/libc.so"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && q->n < MAX_SCANS; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz)
			q->addrs[q->n++] = info->dlpi_addr + ph->p_vaddr;
	}
	return 0;
}

static void rewrite_segment(uintptr_t addr, int alone)
{
	struct scan *m = scan_of(addr);
	if (!m) {
		govrt_warn("GOV_REWRITE: cannot scan the code at %#lx; its syscalls stay on "
			   "Syscall User Dispatch", (unsigned long)addr);
		return;
	}
	for (size_t i = 0; i < m->res.nsites; i++) {
		const struct gre_site *g = &m->res.sites[i];
		if (g->kind != GOV_SITE_SYSCALL)
			continue;
		struct govrt_sud_site *ss = NULL;
		uintptr_t lo = g->win_start + m->bias;
		if (patchable(g, g->sysno) && (alone || others_outside(lo, lo + g->win_len)))
			ss = govrt_sud_site_get(g->addr + m->bias, g->sysno);
		if (ss && !ss->patched && patch(m, g, ss, GOVRT_SYS_LOAD) == 0)
			govrt_sud.sites_load++;
		else
			govrt_sud.sites_load_left++;
	}
	govrt_debug("GOV_REWRITE: %s: %zu syscall sites, %llu rewritten so far", m->path,
		    m->res.nsites, (unsigned long long)govrt_sud.sites_load);
}

/* From sud.c's constructor, before any thread of govrt's starts. */
void govrt_load_rewrite(const char *which)
{
	if (strcmp(which, "libc") != 0 && strcmp(which, "all") != 0) {
		govrt_warn("GOV_REWRITE=%s is not off, libc or all; nothing rewritten", which);
		return;
	}
	int alone = one_thread(); /* else each window is checked against the others */
	struct load_query q = { .which = which, .self = self_base() };
	dl_iterate_phdr(pick_module, &q);
	for (int i = 0; i < q.n; i++)
		rewrite_segment(q.addrs[i], alone);
}

/* ---- the entry of every trampoline made here ---- */

static int entry(struct gov_site *cell, struct gov_rewrite_frame *f)
{
	uint8_t sel = govrt_sud_hold();
	struct govrt_sud_site *ss;
	memcpy(&ss, cell, sizeof ss);
	long nr = (long)f->rax;
	const long a[6] = { (long)f->rdi, (long)f->rsi, (long)f->rdx, (long)f->a3,
			    (long)f->r8, (long)f->r9 };
	if (sel != GOVRT_SUD_BLOCK) {
		/* govrt's own call through libc, or a thread that is not the
		 * program's (govrt's watcher): not counted, not governed */
		f->rax = (uint64_t)gov_raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		return 1;
	}
	govrt_sys_count(ss->patched == 2 ? GOVRT_SYS_LOAD : GOVRT_SYS_LAZY, nr);
	f->rax = (uint64_t)govrt_sys_govern(&ss->site, nr, a);
	govrt_sud_release(sel);
	return 1;
}
