/* rewriter/engine.h - the rewriting engine: finds the syscall instructions
 * and chosen direct calls in a range of x86-64 code, decides which can be
 * patched safely (and why not), and produces, for one site, the trampoline
 * bytes and the 5-byte jump that replaces the site in place.
 *
 * It has two users: govrewrite (files on disk, rewriter/main.c) and govrt
 * (code already loaded, in memory). So it knows nothing of ELF, files or
 * processes: it works on bytes and the virtual addresses they run at. It
 * keeps no global state; its only library calls are capstone's decoder and
 * malloc/realloc/free (for the site list and the jump-target set). It does
 * not write to the code it scans: applying the patch is the caller's job.
 *
 * Not here: control-flow recovery. Like e9patch, the engine only moves
 * instructions it can move without knowing the control flow: a patch covers
 * the site and its neighbours ("the window"), no instruction in the window
 * except the first may be a known jump target, and the window never goes
 * past an unconditional jump or return. Known targets are the caller's
 * (symbols, DWARF, relocations) plus every direct branch target the engine
 * sees in the range. See rewriter/README.md for the trampoline's layout. */
#ifndef GOV_REWRITER_ENGINE_H
#define GOV_REWRITER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRE_JMP_LEN 5        /* jmp rel32: the bytes a patch needs */
#define GRE_WINDOW_MAX 32    /* a window never exceeds this */
#define GRE_TRAMP_MAX 512    /* one site's trampoline never exceeds this */

/* Why a site cannot be patched (gre_site.reason). */
#define GRE_REASONS(X)                                                          \
	X(OK, "patchable")                                                      \
	X(NO_ROOM, "fewer than 5 bytes between known jump targets or the range's end") \
	X(UNMOVABLE, "a neighbouring instruction cannot be moved (call, or a branch into the window)") \
	X(OVERLAP, "its window overlaps the window of the site before it")      \
	X(DESYNC, "follows undecodable bytes: instruction boundaries unknown")  \
	X(SYSENTER, "sysenter has no 64-bit Linux meaning")                     \
	X(INT80, "int $0x80 is the 32-bit system call ABI")                     \
	X(SIGRETURN, "rt_sigreturn stays byte for byte: debuggers and unwinders recognise it") \
	X(NOT_CODE, "outside every function of the symbol table: data or padding") \
	X(NOT_WANTED, "not selected")

enum gre_reason {
#define GRE_REASON_ENUM(name, text) GRE_##name,
	GRE_REASONS(GRE_REASON_ENUM)
#undef GRE_REASON_ENUM
	GRE_NREASONS
};

/* The range to scan. `code` holds the bytes that run at `addr`. */
struct gre_input {
	const uint8_t *code;
	uint64_t addr;
	size_t len;
	/* Known jump targets (any order; may lie outside the range): function
	 * starts, landing pads, addresses taken by relocations, ... */
	const uint64_t *targets;
	size_t ntargets;
	/* Direct calls to these addresses become GOV_SITE_CALL sites (e.g. a
	 * PLT entry of malloc), and so do `call *slot(%rip)` / `jmp
	 * *slot(%rip)` through a slot at one of them (the GOT slot of a
	 * -fno-plt call). Any order. */
	const uint64_t *calls;
	size_t ncalls;
	int want_syscalls;   /* 0: report syscall instructions as NOT_WANTED */
};

struct gre_site {
	uint64_t addr;        /* the syscall or call instruction */
	uint64_t win_start;   /* the patch covers [win_start, win_start + win_len) */
	uint64_t call_target; /* GOV_SITE_CALL: the callee's address (or its slot) */
	uint32_t win_len;     /* 0 when reason != GRE_OK */
	uint8_t kind;         /* GOV_SITE_SYSCALL or GOV_SITE_CALL (gov/abi.h) */
	uint8_t insn_len;     /* length of the instruction at addr */
	uint8_t reason;       /* enum gre_reason */
	uint8_t tail;         /* GOV_SITE_CALL: a jmp (tail call), not a call */
	uint8_t indirect;     /* GOV_SITE_CALL: through the slot at call_target
			       * (`call *slot(%rip)`), not to it */
	int32_t sysno;        /* from a `mov $N,%eax` before it, else -1 */
};

struct gre_result {
	struct gre_site *sites;  /* in address order; free with gre_result_free */
	size_t nsites;
	size_t ninsns;           /* instructions decoded */
	size_t nundecodable;     /* bytes skipped because they did not decode */
	uint64_t first_undecodable; /* address of the first such byte, or 0 */
};

/* Scans the range. Returns 0, or -1 when out of memory or capstone cannot
 * be opened (res is then empty). */
int gre_scan(const struct gre_input *in, struct gre_result *res);
void gre_result_free(struct gre_result *res);

/* Where one site's trampoline lives and what it refers to, all as run-time
 * (or link-time, consistently) virtual addresses. */
struct gre_place {
	uint64_t tramp;       /* the trampoline's first byte */
	uint64_t site;        /* its struct gov_site, passed to govrt's entry */
	uint64_t verdict;     /* the byte the fast path tests (0 = native): the
			       * site's verdict, or a shared one (gov/rewrite.h) */
	uint64_t entry_slot;  /* an 8-byte slot holding govrt's entry (gov/rewrite.h) */
};

/* The first bytes of every trampoline: how to unwind through it (the
 * patch jumps past it, to tramp + code_off). A syscall site's trampoline,
 * up to fde_len bytes of code, only moves instructions and tests a byte,
 * so wherever it is, its frame is the original code's at some offset of
 * the window, with the same registers and stack pointer: row i says that
 * from code offset row[i].code on, that offset is row[i].orig. The slow
 * path's call of govrt's entry, [slow, slow + slow_len), has its frame at
 * rbx + 200 (rbx saved there), standing for the site's instruction at
 * window offset slow_orig. govrt turns this into FDEs whose return address
 * is the original address + 1, so an unwinder (pthread_cancel, a C++
 * exception) steps from the trampoline into the original function as if
 * the code were still there (docs/rewrite.md). nrows is 0 for a call
 * site (its callee returns to the original code) and for a window of more
 * than GRE_CFI_ROWS instructions. Found by its magic at 16-byte aligned
 * addresses. */
#define GRE_CFI_MAGIC 0x46435247u /* "GRCF" */
#define GRE_CFI_ROWS 7
#define GRE_CFI_SLOW_CFA 200      /* red zone + 9 pushes (engine.c, slow_call) */
struct gre_cfi {
	uint32_t magic;
	int32_t win;          /* the window's address - this header's address */
	uint16_t fde_len;     /* code bytes the rows describe */
	uint16_t slow, slow_len;
	uint8_t nrows;
	uint8_t code_off;     /* sizeof (struct gre_cfi): where the code starts */
	uint8_t slow_orig;
	struct { uint8_t code, orig; } row[GRE_CFI_ROWS];
	uint8_t pad;
};

/* Writes site s's trampoline into tramp (at most GRE_TRAMP_MAX bytes; its
 * length into *tramp_len; it starts with a struct gre_cfi, tramp must be
 * 16-byte aligned) and the s->win_len bytes that replace the window
 * into patch. `in` must be the input s was found in. Returns 0, or -1 when
 * s is not patchable or a displacement does not fit in 32 bits (the
 * trampoline is more than 2 GiB away). */
int gre_emit(const struct gre_input *in, const struct gre_site *s,
	     const struct gre_place *at, uint8_t *tramp, size_t *tramp_len,
	     uint8_t *patch);

/* The length of the x86-64 instruction at p (at most max bytes readable),
 * or -1 when it is not a valid instruction or does not fit. Lengths only:
 * what the sweep needs, at many times capstone's speed. */
int gre_insn_length(const uint8_t *p, size_t max);
/* The same, and *modrm_at = the offset of the ModRM byte, or -1 when the
 * instruction has none. ModRM mod 00, r/m 101 means rip-relative: the
 * 32-bit displacement follows it. */
int gre_insn_decode(const uint8_t *p, size_t max, int *modrm_at);

/* "patchable", "fewer than 5 bytes ...": why a site has its reason. */
const char *gre_reason_text(int reason);
/* "OK", "NO_ROOM", ...: a short word for reports. */
const char *gre_reason_word(int reason);

#ifdef __cplusplus
}
#endif
#endif
