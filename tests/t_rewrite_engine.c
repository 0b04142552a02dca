/* tests/t_rewrite_engine.c - the rewriting engine (rewriter/engine.c,
 * insnlen.c) on its own, without ELF files written: the length decoder
 * agrees with capstone on every instruction capstone decodes in libc and
 * busybox; hand-made code with syscalls next to jump targets, calls and
 * branches gets the windows and refusals the rules say; an emitted
 * trampoline, mapped and run, makes the syscall natively and jumps back. */
#include <capstone/capstone.h>
#include <gelf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "tap.h"
#include "gov/abi.h"
#include "../rewriter/engine.h"

/* Compares lengths over one file's .text; returns mismatches (-1: no file). */
static long compare_text(const char *path, long *checked, long *unknown)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	long bad = 0;
	elf_getshdrstrndx(e, &shstrndx);
	csh cs;
	cs_open(CS_ARCH_X86, CS_MODE_64, &cs);
	cs_insn *ci = cs_malloc(cs);
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		gelf_getshdr(scn, &sh);
		if (strcmp(elf_strptr(e, shstrndx, sh.sh_name), ".text") != 0)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		const uint8_t *p = d->d_buf;
		size_t left = d->d_size;
		uint64_t addr = sh.sh_addr;
		while (left) {
			const uint8_t *at = p;
			int mine = gre_insn_length(p, left);
			if (cs_disasm_iter(cs, &p, &left, &addr, ci)) {
				(*checked)++;
				if (mine != (int)ci->size && bad++ < 5)
					printf("# %s 0x%llx: %s %s: capstone %u bytes, insnlen %d\n", path,
					       (unsigned long long)(addr - ci->size), ci->mnemonic,
					       ci->op_str, ci->size, mine);
			} else {
				(*unknown)++;
				size_t n = mine > 0 ? (size_t)mine : 1;
				p = at + n, left -= n, addr += n;
			}
		}
	}
	cs_free(ci, 1);
	cs_close(&cs);
	elf_end(e);
	close(fd);
	return bad;
}

static void test_lengths(void)
{
	static const char *files[] = { "/lib/x86_64-linux-gnu/libc.so.6", "/bin/busybox",
				       "/usr/bin/sort", "/bin/bzip2" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		long checked = 0, unknown = 0;
		long bad = compare_text(files[i], &checked, &unknown);
		ok(bad == 0 && checked > 1000, "%s: insnlen agrees with capstone on %ld instructions "
		   "(%ld bytes capstone 4 cannot decode, skipped by length)", files[i], checked, unknown);
	}
}

static struct gre_result scan(const uint8_t *code, size_t len, const uint64_t *tg, size_t ntg,
			      const uint64_t *calls, size_t ncalls)
{
	struct gre_input in = { .code = code, .addr = 0x1000, .len = len, .targets = tg,
				.ntargets = ntg, .calls = calls, .ncalls = ncalls, .want_syscalls = 1 };
	struct gre_result r;
	if (gre_scan(&in, &r) < 0)
		memset(&r, 0, sizeof r);
	return r;
}

static void test_windows(void)
{
	/* mov $39,%eax; syscall; cmp $-4095,%rax; ret */
	static const uint8_t a[] = { 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff,
				     0xff, 0xc3 };
	struct gre_result r = scan(a, sizeof a, NULL, 0, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason == GRE_OK && r.sites[0].sysno == 39 &&
	   r.sites[0].win_start == 0x1005 && r.sites[0].win_len == 8,
	   "mov $39,%%eax; syscall; cmp: sysno 39, window = syscall + cmp (8 bytes)");
	gre_result_free(&r);

	/* the cmp after the syscall is a known target: the window starts at the mov */
	uint64_t t1 = 0x1007;
	r = scan(a, sizeof a, &t1, 1, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason == GRE_OK && r.sites[0].win_start == 0x1000 &&
	   r.sites[0].win_len == 7, "a target after the syscall: the window is mov + syscall");
	gre_result_free(&r);

	/* targets on both sides: no room */
	uint64_t t2[] = { 0x1005, 0x1007 };
	r = scan(a, sizeof a, t2, 2, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason == GRE_NO_ROOM && r.sites[0].sysno == -1,
	   "targets at the syscall and after it: left (%s), number unknown",
	   r.nsites ? gre_reason_word(r.sites[0].reason) : "none");
	gre_result_free(&r);

	/* syscall; ret; then another function: the window would cross the ret */
	static const uint8_t b[] = { 0x0f, 0x05, 0xc3, 0x90, 0x90, 0x90, 0x90 };
	r = scan(b, sizeof b, NULL, 0, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason != GRE_OK, "syscall; ret: nothing after a ret is moved");
	gre_result_free(&r);

	/* a call right after the syscall cannot be moved */
	static const uint8_t c[] = { 0x0f, 0x05, 0xe8, 0, 0, 0, 0, 0xc3 };
	r = scan(c, sizeof c, NULL, 0, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason == GRE_UNMOVABLE, "syscall; call: left (UNMOVABLE)");
	gre_result_free(&r);

	/* undecodable bytes, then a syscall: left until a known target */
	static const uint8_t d[] = { 0x06, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0xc3 };
	r = scan(d, sizeof d, NULL, 0, NULL, 0);
	ok(r.nundecodable == 1 && r.nsites == 1 && r.sites[0].reason == GRE_DESYNC,
	   "a byte that does not decode: the syscall after it is left (DESYNC)");
	gre_result_free(&r);
	uint64_t t3 = 0x1001;
	r = scan(d, sizeof d, &t3, 1, NULL, 0);
	ok(r.nsites == 1 && r.sites[0].reason == GRE_OK, "... and patched when a known target resyncs");
	gre_result_free(&r);

	/* sysenter and int $0x80 are found and left */
	static const uint8_t e[] = { 0x0f, 0x34, 0xcd, 0x80, 0xc3 };
	r = scan(e, sizeof e, NULL, 0, NULL, 0);
	ok(r.nsites == 2 && r.sites[0].reason == GRE_SYSENTER && r.sites[1].reason == GRE_INT80,
	   "sysenter and int $0x80: found and left");
	gre_result_free(&r);

	/* call rel32 to a chosen address: a call site; a jmp to it: a tail call */
	static const uint8_t f[] = { 0xe8, 0xfb, 0x0f, 0, 0, 0xe9, 0xf6, 0x0f, 0, 0 };
	uint64_t callee = 0x2000;
	r = scan(f, sizeof f, NULL, 0, &callee, 1);
	ok(r.nsites == 2 && r.sites[0].kind == GOV_SITE_CALL && r.sites[0].call_target == 0x2000 &&
	   !r.sites[0].tail && r.sites[1].tail && r.sites[0].win_len == 5,
	   "call and tail jmp to a chosen function: call sites, window = the instruction");
	gre_result_free(&r);
}

/* Runs a real trampoline: code that does getppid through the patch. */
static void test_run(void)
{
	uint8_t *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok(m != MAP_FAILED, "mapped a page for code");
	if (m == MAP_FAILED)
		return;
	/* f: mov $110,%eax; syscall; cmp $-4095,%rax; ret */
	static const uint8_t f[] = { 0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff,
				     0xff, 0xc3 };
	memcpy(m, f, sizeof f);
	struct gov_site *site = (struct gov_site *)(m + 8192);
	memset(site, 0, sizeof *site);
	uint64_t *slot = (uint64_t *)(m + 8192 + 128);
	*slot = 0;
	struct gre_input in = { .code = m, .addr = (uint64_t)(uintptr_t)m, .len = sizeof f,
				.want_syscalls = 1 };
	struct gre_result r;
	int rc = gre_scan(&in, &r);
	ok(rc == 0 && r.nsites == 1 && r.sites[0].reason == GRE_OK, "the syscall is patchable");
	if (rc < 0 || r.nsites != 1)
		return;
	struct gre_place at = { .tramp = (uint64_t)(uintptr_t)(m + 4096),
				.site = (uint64_t)(uintptr_t)site,
				.verdict = (uint64_t)(uintptr_t)&site->verdict,
				.entry_slot = (uint64_t)(uintptr_t)slot };
	size_t len;
	uint8_t patch[GRE_WINDOW_MAX];
	rc = gre_emit(&in, &r.sites[0], &at, m + 4096, &len, patch);
	ok(rc == 0 && len > 20 && len <= GRE_TRAMP_MAX && patch[0] == 0xe9,
	   "gre_emit: a %zu-byte trampoline and a jmp", len);
	memcpy(m + (r.sites[0].win_start - in.addr), patch, r.sites[0].win_len);
	long (*fn)(void) = (long (*)(void))(void *)m;
	ok(fn() == getppid(), "the patched code returns getppid() through the native trampoline");
	gre_result_free(&r);

	/* g: mov $110,%eax; syscall; lea 0(%rip),%rdx; mov %rdx,%rax; ret -
	 * the lea moves into the trampoline and must still see its old rip */
	static const uint8_t g[] = { 0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0x48, 0x8d, 0x15, 0, 0, 0, 0,
				     0x48, 0x89, 0xd0, 0xc3 };
	uint64_t t = (uint64_t)(uintptr_t)m;
	memcpy(m, g, sizeof g);
	in.len = sizeof g;
	in.targets = &t; /* the function's start: keeps the window after the mov */
	in.ntargets = 1;
	rc = gre_scan(&in, &r);
	ok(rc == 0 && r.nsites == 1 && r.sites[0].win_start == t + 5 && r.sites[0].win_len == 9,
	   "syscall + lea (rip-relative): one 9-byte window");
	if (rc == 0 && r.nsites == 1 && gre_emit(&in, &r.sites[0], &at, m + 4096, &len, patch) == 0) {
		memcpy(m + 5, patch, 9);
		ok(fn() == (long)(t + 14), "the moved lea still computes its original address");
	} else {
		ok(0, "gre_emit for the lea window");
	}
	gre_result_free(&r);
	munmap(m, 3 * 4096);
}

int main(void)
{
	test_lengths();
	test_windows();
	test_run();
	return done_testing();
}
