/* gov/rewrite.h - the contract between a module rewritten by govrewrite and
 * govrt: how govrt finds the rewritten module's site table, and how the
 * module's trampolines call into govrt.
 *
 * govrewrite appends two loadable segments to the file: RX trampolines and
 * RW data. A program header of type PT_GOV_REWRITE points at a
 * struct gov_rewrite_hdr in the RW data. At start-up (and again after
 * dlopen) govrt walks dl_iterate_phdr, finds these headers, adds the load
 * bias to the table's pointers when GOV_REWRITE_LINK_ADDRESSES is set,
 * registers the sites like any plugin-built module's and writes its entry
 * into entry_slot. Before that every verdict byte is 0 (native), so no
 * trampoline calls the empty slot. A static output has no loader to run
 * govrt: it carries govrt-static, found through struct gov_static_link.
 *
 * Not here: the trampoline's machine code (rewriter/engine.c writes it;
 * rewriter/README.md draws it). Documented in docs/rewrite.md. */
#ifndef GOV_REWRITE_H
#define GOV_REWRITE_H

#include <stdint.h>
#include "gov/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PT_LOOS + "GOV": a program header type no linker emits. */
#define PT_GOV_REWRITE 0x6f474f56u
#define GOV_REWRITE_MAGIC 0x57524f47u /* "GORW" */
#define GOV_REWRITE_VERSION 1

enum gov_rewrite_flags {
	/* Every pointer in the header and the site table is a link-time
	 * address: govrt adds the module's load bias once, at registration. */
	GOV_REWRITE_LINK_ADDRESSES = 1,
};

/* The registers a trampoline saves before it calls govrt (lowest address
 * first). a3 is r10 at a syscall site and rcx at a call site (the fourth
 * argument); rax is the syscall number at a syscall site. */
struct gov_rewrite_frame {
	uint64_t rbx;
	uint64_t r9, r8, a3, rdx, rsi, rdi;
	uint64_t rax;
	uint64_t rflags;          /* syscall sites only; unused at call sites */
};

/* govrt's entry, stored in gov_rewrite_hdr.entry_slot. It decides the call
 * at `site` with the arguments in `frame`. Returns 0: run the original with
 * the frame's (maybe changed) arguments; 1: do not run it and return
 * frame->rax (a syscall site: -errno). */
typedef int (*gov_rewrite_entry_fn)(struct gov_site *site, struct gov_rewrite_frame *frame);

struct gov_rewrite_hdr {
	uint32_t magic;           /* GOV_REWRITE_MAGIC */
	uint16_t version;         /* GOV_REWRITE_VERSION */
	uint16_t flags;           /* enum gov_rewrite_flags */
	uint32_t nsites;
	uint32_t relocated;       /* set by govrt once the load bias is added */
	uint64_t sites;           /* struct gov_site[nsites] (8-aligned) */
	uint64_t resource;        /* char *: resource named at rewrite time, or 0 */
	uint64_t entry_slot;      /* gov_rewrite_entry_fn, written by govrt */
	/* The verdict byte read by syscall sites whose number is not known
	 * statically (sysno -1): govrt sets it when any syscall is governed;
	 * their trampolines then pass rax and govrt decides by the number. */
	uint8_t any_syscall_verdict;
	uint8_t pad[7];
	uint64_t text_start, text_end; /* the rewritten code (link-time addresses) */
	uint64_t tramp_start, tramp_end;
};

/* Turns a table written with link-time addresses (GOV_REWRITE_LINK_ADDRESSES)
 * into run-time ones by adding the load bias, once: the one reading of the
 * flag, for libgovrt (runtime/rewritten.c) and govrt-static alike. */
static inline void gov_rewrite_relocate(struct gov_rewrite_hdr *h, uint64_t bias)
{
	if (h->relocated || !(h->flags & GOV_REWRITE_LINK_ADDRESSES)) {
		h->relocated = 1;
		return;
	}
	h->sites += bias;
	if (h->resource)
		h->resource += bias;
	struct gov_site *s = (struct gov_site *)(uintptr_t)h->sites;
	for (uint32_t i = 0; i < h->nsites; i++) {
		const char **name[] = { &s[i].caller, &s[i].callee, &s[i].types, &s[i].file };
		for (unsigned k = 0; k < sizeof name / sizeof name[0]; k++)
			if (*name[k])
				*name[k] = (const char *)((uintptr_t)*name[k] + bias);
	}
	h->relocated = 1;
}


/* A static output (no PT_INTERP, no PT_DYNAMIC) carries govrt-static
 * (runtime/static/) after its trampolines, and e_entry points at it.
 * govrewrite fills this record, the blob's symbol govrt_static_link, with
 * link-time addresses of OUT; at run time govrt-static adds the load bias
 * (its own address minus `base`) to each. docs/rewrite.md, "Static
 * outputs". */
#define GOV_STATIC_LINK_MAGIC 0x4b4e4c53u /* "SLNK" */
struct gov_static_link {
	uint32_t magic;           /* GOV_STATIC_LINK_MAGIC */
	uint32_t version;         /* GOV_REWRITE_VERSION */
	uint64_t base;            /* where the blob starts */
	uint64_t hdr;             /* the output's struct gov_rewrite_hdr */
	uint64_t entry;           /* the program's own entry (the old e_entry) */
};

#ifdef __cplusplus
}
#endif
#endif
