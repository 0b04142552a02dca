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
#include <sys/wait.h>
#include <unistd.h>
#include "gov/rewrite.h"
#include "../rewriter/engine.h"
#include "govrt_private.h"

#define MAX_SCANS 64
#define CHUNK_SIZE (256 * 1024)
#define CHUNK_HDR 64          /* entry slot at 0, the always-1 byte at 8 */
#define NEAR_LIMIT (768ULL << 20)
/* The engine sees a segment at BIAS_BASE, not where it runs (the first
 * engine emitted a placeholder jump to address 0, which only fit in 32 bits
 * at low addresses; fixed since, kept because it costs nothing):
 * displacements do not change when code and trampolines move together. */
#define BIAS_BASE (1ULL << 30)

/* One executable segment, scanned once, with its trampoline chunk. */
struct scan {
	uintptr_t start, end;
	uint64_t bias;           /* run-time address - engine address */
	const char *path;
	struct gre_input in;     /* in.targets: function starts, malloc'ed */
	struct gre_result res;
	const uint8_t *eh_frame_hdr;
	uint8_t *chunk_rx, *chunk_rw;
	size_t chunk_used;
	int failed;
	int prepared;            /* its sites were prepared at start (prep) */
	int rewrite;             /* GOV_REWRITE chose it: applied at start */
	uint32_t prep_first, prep_count; /* its records in prep->rec */
};

static int do_scan(struct scan *m);

static struct scan scans[MAX_SCANS];
static int nscans;
static int mem_fd = -1;

static int entry(struct gov_site *cell, struct gov_rewrite_frame *f);

/* What the scanning child hands back, in shared memory. */
struct load_rec {
	uint64_t addr, win;   /* run-time addresses */
	int32_t sysno;
	uint32_t win_len, off, scan;
	uint8_t bytes[GRE_WINDOW_MAX];
};
struct load_out {
	uint32_t nrec, cap;
	uint64_t chunk_used[MAX_SCANS];  /* 0: the segment was not scanned */
	uint32_t first_of[MAX_SCANS], count_of[MAX_SCANS], left_of[MAX_SCANS];
	struct load_rec rec[];
};
#define LOAD_OUT_SIZE (4u << 20)
static struct load_out *prep; /* kept: the records of prepared segments */

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

/* The segment holding addr, scanned (scan != 0) on first use. A segment
 * rewritten at load time keeps no scan: its sites were all decided then. */
static struct scan *segment_of(uintptr_t addr, int scan)
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
	m->eh_frame_hdr = q.eh_frame_hdr;
	if (scan && do_scan(m) < 0)
		return NULL;
	return m;
}

static int do_scan(struct scan *m)
{
	m->in.targets = function_starts(m->eh_frame_hdr, m->bias, &m->in.ntargets);
	if (gre_scan(&m->in, &m->res) < 0) {
		m->failed = 1;
		return -1;
	}
	return 0;
}

static struct scan *scan_of(uintptr_t addr)
{
	return segment_of(addr, 1);
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

/* Writes site g's trampoline into m's chunk; its window's new bytes into
 * bytes and the trampoline's offset into *off. Returns 0 or -1. */
static int emit(struct scan *m, const struct gre_site *g, size_t *off, uint8_t *bytes)
{
	if (!m->chunk_rx && chunk_map(m) < 0) {
		govrt_debug("no room for trampolines within 2 GiB of %s", m->path);
		return -1;
	}
	size_t o = (m->chunk_used + 15) & ~(size_t)15;
	if (o + 16 + GRE_TRAMP_MAX > CHUNK_SIZE)
		return -1;
	/* an 8-byte cell for the run-time site, then the trampoline */
	uint64_t rx = (uint64_t)m->chunk_rx - m->bias;
	struct gre_place at = {
		.tramp = rx + o + 16,
		.site = rx + o,
		.verdict = rx + 8,
		.entry_slot = rx,
	};
	uint8_t tramp[GRE_TRAMP_MAX];
	size_t len = 0;
	if (gre_emit(&m->in, g, &at, tramp, &len, bytes) < 0) {
		govrt_debug("the engine could not emit the trampoline of %#lx",
			    (unsigned long)(g->addr + m->bias));
		return -1;
	}
	memcpy(m->chunk_rw + o + 16, tramp, len);
	m->chunk_used = o + 16 + len;
	*off = o;
	return 0;
}

/* Points the trampoline at off to run-time site ss and writes the window
 * [win, win + len) (run-time addresses). Returns 0 or -1. */
static int apply(struct scan *m, size_t off, struct govrt_sud_site *ss, int path,
		 uintptr_t win, const uint8_t *bytes, size_t len)
{
	memcpy(m->chunk_rw + off, &ss, sizeof ss);
	ss->patched = path == GOVRT_SYS_LOAD ? 2 : 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (write_code(win, bytes, len) < 0) {
		ss->patched = -1;
		return -1;
	}
	return 0;
}

static int patch(struct scan *m, const struct gre_site *g, struct govrt_sud_site *ss, int path)
{
	uint8_t bytes[GRE_WINDOW_MAX];
	size_t off;
	if (emit(m, g, &off, bytes) < 0)
		return -1;
	return apply(m, off, ss, path, g->win_start + m->bias, bytes, g->win_len);
}

/* Syscalls that a scan in the SIGSYS handler must not start from: malloc
 * makes them (growing, trimming, its first call's tcache key, waiting for
 * an arena), maybe in the middle of its own work, and the engine and
 * capstone allocate. */
static int malloc_syscall(long nr)
{
	return nr == SYS_brk || nr == SYS_mmap || nr == SYS_munmap || nr == SYS_mremap ||
	       nr == SYS_mprotect || nr == SYS_madvise || nr == SYS_getrandom ||
	       nr == SYS_futex;
}

/* A site worth patching for syscall nr: a safe window, and a number that
 * is either nr and not special, or unknown until it runs (the entry then
 * sends the special ones back to the trampoline's own syscall, which traps
 * into the SIGSYS handler). */
static int patchable(const struct gre_site *g, long nr)
{
	if (!g || g->reason != GRE_OK || g->kind != GOV_SITE_SYSCALL || g->win_len < GRE_JMP_LEN)
		return 0;
	return g->sysno < 0 || (g->sysno == nr && !govrt_sys_is_special(nr));
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
			if (strncmp(buf, "running", 7) == 0 || !pc || (at > lo && at < hi)) {
				safe = 0;
				govrt_debug("lazy patch of %#lx waits: thread %s is %.*s", (unsigned long)lo,
					    d->name, (int)strcspn(buf, "\n"), buf);
			}
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
static const struct load_rec *prepared_rec(const struct scan *m, uintptr_t at);

/* From the SIGSYS handler, for the site of syscall nr at `at`, selector
 * open; *restart is set when the trapped thread must go back to `at` (the
 * patch starts there) rather than have its syscall made by the handler.
 * Returns 1 if patched. A site of a segment prepared at start needs no
 * allocation here; a segment loaded later is scanned now, unless the
 * trapped syscall may come from inside malloc. */
int govrt_lazy_patch(uintptr_t at, long nr, struct govrt_sud_site *ss, int *restart)
{
	*restart = 0;
	if (ss->patched)
		return 0;
	if (ss->disk)
		return 0;
	struct scan *m = segment_of(at, 0);
	const char *why = NULL;
	uintptr_t win = 0;
	uint32_t len = 0;
	const struct load_rec *r = NULL;
	struct gre_site *g = NULL;
	if (m && m->prepared) {
		r = prepared_rec(m, at);
		if (!r || (r->sysno >= 0 && r->sysno != nr))
			why = "the engine found no safe window for it";
		else
			win = r->win, len = r->win_len;
	} else {
		if (malloc_syscall(nr))
			return 0; /* maybe at a later trap, from elsewhere */
		if (m && !m->res.sites && !m->failed && do_scan(m) < 0)
			m = NULL;
		if (!m)
			m = scan_of(at);
		g = m ? site_in_scan(m, at) : NULL;
		if (!g)
			why = m ? "the engine found no syscall there" : "its code could not be scanned";
		else if (!patchable(g, nr))
			why = g->reason != GRE_OK ? gre_reason_text(g->reason) : "it is special";
		else
			win = g->win_start + m->bias, len = g->win_len;
	}
	if (!why && win != at && win + len != at + 2)
		why = "its window goes on after the syscall and starts before it";
	if (why) {
		ss->patched = -1;
		govrt_debug("lazy patch: %s+%#x (%s) stays on Syscall User Dispatch: %s",
			    ss->site.file, ss->site.line, ss->site.callee, why);
		return 0;
	}
	if (!others_outside(win, win + len))
		return 0;     /* maybe at its next trap */
	int rc = r ? apply(m, r->off, ss, GOVRT_SYS_LAZY, win, r->bytes, len)
		   : patch(m, g, ss, GOVRT_SYS_LAZY);
	if (rc < 0) {
		govrt_debug("lazy patch: %s+%#x (%s): no trampoline written",
			    ss->site.file, ss->site.line, ss->site.callee);
		return 0;
	}
	__atomic_fetch_add(&govrt_sud.sites_patched, 1, __ATOMIC_RELAXED);
	*restart = win == at;
	return 1;
}

/* ---- load time ---- */

struct load_query {
	const char *which;         /* "libc", "all", or NULL: none */
	int lazy;                  /* prepare every module */
	uintptr_t self;
	uintptr_t addrs[MAX_SCANS];
	int rewrite[MAX_SCANS];
	int n;
};

static int pick_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct load_query *q = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	if (strstr(name, "linux-vdso") || info->dlpi_addr == q->self)
		return 0;
	int rewrite = q->which && (strcmp(q->which, "all") == 0 || strstr(name, "/libc.so"));
	if (!rewrite && !q->lazy)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && q->n < MAX_SCANS; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		/* never govrewrite's trampolines: their syscalls were decided */
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz &&
		    !govrt_in_rewritten_tramp(info->dlpi_addr + ph->p_vaddr)) {
			q->rewrite[q->n] = rewrite;
			q->addrs[q->n++] = info->dlpi_addr + ph->p_vaddr;
		}
	}
	return 0;
}


/* In the child: scan each chosen segment, emit the trampolines of the
 * sites that can be patched into the (shared) chunks, and list them in
 * address order. */
static void scan_child(struct load_out *out, int first, int last)
{
	for (int i = first; i < last; i++) {
		struct scan *m = &scans[i];
		if (m->failed || do_scan(m) < 0)
			continue;
		out->first_of[i] = out->nrec;
		for (size_t k = 0; k < m->res.nsites; k++) {
			const struct gre_site *g = &m->res.sites[k];
			if (g->kind != GOV_SITE_SYSCALL)
				continue;
			struct load_rec *r = &out->rec[out->nrec];
			size_t off = 0;
			if (out->nrec == out->cap || !patchable(g, g->sysno) ||
			    emit(m, g, &off, r->bytes) < 0) {
				out->left_of[i]++;
				continue;
			}
			r->off = (uint32_t)off;
			r->addr = g->addr + m->bias;
			r->win = g->win_start + m->bias;
			r->win_len = g->win_len;
			r->sysno = g->sysno;
			r->scan = (uint32_t)i;
			out->nrec++;
		}
		out->count_of[i] = out->nrec - out->first_of[i];
		out->chunk_used[i] = m->chunk_used;
	}
}

static const struct load_rec *prepared_rec(const struct scan *m, uintptr_t at)
{
	uint32_t lo = m->prep_first, hi = m->prep_first + m->prep_count;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (prep->rec[mid].addr < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->prep_first + m->prep_count && prep->rec[lo].addr == at ? &prep->rec[lo] : NULL;
}

/* Applies the prepared sites of segment i now (GOV_REWRITE). */
static void rewrite_now(int i, int alone, uint64_t *done, uint64_t *left)
{
	struct scan *m = &scans[i];
	for (uint32_t k = m->prep_first; k < m->prep_first + m->prep_count; k++) {
		const struct load_rec *r = &prep->rec[k];
		struct govrt_sud_site *ss = NULL;
		if (alone || others_outside(r->win, r->win + r->win_len))
			ss = govrt_sud_site_get(r->addr, r->sysno);
		if (ss && !ss->patched && apply(m, r->off, ss, GOVRT_SYS_LOAD, r->win, r->bytes,
						r->win_len) == 0)
			(*done)++;
		else
			(*left)++;
	}
	*left += prep->left_of[i];
	govrt_debug("GOV_REWRITE: %s rewritten in memory", m->path);
}

/* From sud.c's constructor: prepares the segments of the modules loaded
 * now (every one when lazy; those GOV_REWRITE names else) and applies the
 * ones GOV_REWRITE names. The scanning and emitting (capstone and the
 * engine allocate megabytes) run in a forked child, so the program's heap
 * is as it would be without govrt and no SIGSYS handler ever allocates for
 * these segments; the child writes the trampolines into chunks shared with
 * us and lists each site's window, which we write now or at its trap. */
void govrt_patch_prepare(int lazy, const char *which)
{
	if (which && strcmp(which, "libc") != 0 && strcmp(which, "all") != 0) {
		govrt_warn("GOV_REWRITE=%s is not off, libc or all; nothing rewritten", which);
		which = NULL;
	}
	if (!lazy && !which)
		return;
	int alone = one_thread(); /* else each window is checked against the others */
	struct load_query q = { .which = which, .lazy = lazy, .self = self_base() };
	dl_iterate_phdr(pick_module, &q);
	int first = nscans;
	for (int i = 0; i < q.n; i++) {
		struct scan *m = segment_of(q.addrs[i], 0);
		if (!m)
			continue;
		m->rewrite = q.rewrite[i];
		if (!m->chunk_rx && chunk_map(m) < 0)
			m->failed = 1;
	}
	int last = nscans;
	prep = mmap(NULL, LOAD_OUT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (prep == MAP_FAILED) {
		prep = NULL;
		govrt_warn("exhaustive syscalls: out of memory; nothing patched in memory");
		return;
	}
	prep->cap = (LOAD_OUT_SIZE - sizeof *prep) / sizeof prep->rec[0];
	pid_t pid = fork();
	if (pid == 0) {
		scan_child(prep, first, last);
		_exit(0);
	}
	int status = -1;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		govrt_warn("exhaustive syscalls: the scan of the loaded code failed (status %#x); "
			   "nothing patched in memory", status);
		munmap(prep, LOAD_OUT_SIZE);
		prep = NULL;
		return;
	}
	uint64_t done = 0, left = 0;
	for (int i = first; i < last; i++) {
		struct scan *m = &scans[i];
		if (!prep->chunk_used[i])
			continue; /* the child could not scan it */
		m->chunk_used = prep->chunk_used[i];
		m->prep_first = prep->first_of[i];
		m->prep_count = prep->count_of[i];
		m->prepared = 1;
		/* the trampolines the child wrote: unwinding goes through them
		 * (registered now: a SIGSYS handler must not allocate) */
		govrt_register_tramp_cfi((uintptr_t)m->chunk_rx + CHUNK_HDR,
					 (uintptr_t)m->chunk_rx + m->chunk_used);
		if (m->rewrite)
			rewrite_now(i, alone, &done, &left);
	}
	govrt_sud.sites_load += done;
	govrt_sud.sites_load_left += left;
	if (which)
		govrt_debug("GOV_REWRITE: %llu syscall sites rewritten, %llu left to Syscall User "
			    "Dispatch", (unsigned long long)done, (unsigned long long)left);
}

/* ---- the entry of every trampoline made here ---- */

static int entry(struct gov_site *cell, struct gov_rewrite_frame *f)
{
	struct govrt_sud_site *ss;
	memcpy(&ss, cell, sizeof ss);
	long nr = (long)f->rax;
	if (govrt_sys_is_special(nr))
		return 0; /* a site of unknown number: its own syscall traps */
	uint8_t sel = govrt_sud_hold();
	int path = ss->patched == 2 ? GOVRT_SYS_LOAD : GOVRT_SYS_LAZY;
	const long a[6] = { (long)f->rdi, (long)f->rsi, (long)f->rdx, (long)f->a3,
			    (long)f->r8, (long)f->r9 };
	if (sel != GOVRT_SUD_BLOCK) {
		/* govrt's own call through libc, or a thread that is not the
		 * program's (govrt's watcher): not counted, not governed */
		f->rax = (uint64_t)govrt_sys_raw(nr, a);
		govrt_sud_release(sel);
		return 1;
	}
	govrt_sys_count(path, nr);
	if (ss->site.sysno != nr) {
		/* a site of unknown number: the run-time site of this one */
		struct govrt_sud_site *by_nr = govrt_sud_site_get(ss->addr, nr);
		if (by_nr)
			ss = by_nr;
	}
	f->rax = (uint64_t)govrt_sys_govern(&ss->site, nr, a);
	govrt_sud_release(sel);
	return 1;
}
