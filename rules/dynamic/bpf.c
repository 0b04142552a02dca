/* rules/dynamic/bpf.c - eBPF mode: a rule object built with
 * `clang -O2 -target bpf -c` is loaded, verified and JIT-compiled by DPDK's
 * librte_bpf. librte_bpf is opened with dlopen on the first eBPF rule, so a
 * program that never receives one does not carry DPDK (nor pay for its
 * constructors). No EAL initialisation is needed.
 *
 * What librte_bpf's verifier refuses at load (so at publish): any loop
 * (back edge), a memory access outside the context or the stack, an
 * unknown helper, an uninitialised register. What is left for run time: a
 * division by zero (the program stops and returns 0, which dynrt.c counts
 * as a fault) and helpers given bad arguments (dynrt.c). With no loops a run
 * executes at most as many instructions as the program has, so the budget
 * is checked at load: spec.max_insns. Not the fault policy (dynrt.c). */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <rte_bpf.h>
#include "dynrt.h"

static struct {
	pthread_once_t once;
	void *lib;
	char why[256];
	struct rte_bpf *(*elf_load)(const struct rte_bpf_prm *, const char *, const char *);
	void (*destroy)(struct rte_bpf *);
	int (*get_jit)(const struct rte_bpf *, struct rte_bpf_jit *);
	uint64_t (*exec)(const struct rte_bpf *, void *);
	int (*openlog_stream)(FILE *);
	pthread_mutex_t lock; /* the log stream is process-wide */
} lib = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

static void open_lib(void)
{
	static const char *const names[] = { "librte_bpf.so.23", "librte_bpf.so" };
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib.lib; i++)
		lib.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib.lib) {
		snprintf(lib.why, sizeof lib.why, "cannot load librte_bpf (Debian: libdpdk-dev): %s",
			 dlerror());
		return;
	}
	*(void **)&lib.elf_load = dlsym(lib.lib, "rte_bpf_elf_load");
	*(void **)&lib.destroy = dlsym(lib.lib, "rte_bpf_destroy");
	*(void **)&lib.get_jit = dlsym(lib.lib, "rte_bpf_get_jit");
	*(void **)&lib.exec = dlsym(lib.lib, "rte_bpf_exec");
	*(void **)&lib.openlog_stream = dlsym(lib.lib, "rte_openlog_stream");
	if (!lib.elf_load || !lib.destroy || !lib.get_jit || !lib.exec) {
		snprintf(lib.why, sizeof lib.why, "librte_bpf lacks rte_bpf_elf_load and friends");
		dlclose(lib.lib);
		lib.lib = NULL;
	}
}

#define RAW8 { .type = RTE_BPF_ARG_RAW, .size = sizeof(uint64_t) }
#define HELPER(n, fn, na)                                                            \
	{ .name = "gov_" #n, .type = RTE_BPF_XTYPE_FUNC,                               \
	  .func = { .val = (uint64_t(*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t))(void *)fn, \
		    .nb_args = na, .args = { RAW8, RAW8, RAW8 }, .ret = RAW8 } }

static const struct rte_bpf_xsym helpers[] = {
	HELPER(map_lookup, gov_dynh_map_lookup, 3),
	HELPER(map_update, gov_dynh_map_update, 3),
	HELPER(map_delete, gov_dynh_map_delete, 2),
	HELPER(counter_add, gov_dynh_counter_add, 2),
	HELPER(time_ns, gov_dynh_time_ns, 0),
	HELPER(log, gov_dynh_log, 2),
	HELPER(event, gov_dynh_event, 2),
};

/* The verifier's lines, without librte_bpf's chatter about success. */
static void keep_reasons(const char *log, char *err, size_t errlen)
{
	size_t o = strlen(err);
	char *copy = strdup(log ? log : ""), *save = NULL;
	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		if (strstr(l, "resolve_xsym") || strstr(l, "successfully") || !*l)
			continue;
		if (o + 3 < errlen)
			o += (size_t)snprintf(err + o, errlen - o, "; %s", l);
	}
	free(copy);
}

/* Instructions in the gov_rule section of a 64-bit ELF, or -1. librte_bpf
 * checks the rest of the file itself. */
static long rule_insns(const void *obj, size_t len)
{
	const Elf64_Ehdr *eh = obj;
	if (len < sizeof *eh || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff > len || (len - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum ||
	    eh->e_shstrndx >= eh->e_shnum)
		return -1;
	const Elf64_Shdr *sh = (const void *)((const char *)obj + eh->e_shoff);
	const Elf64_Shdr *names = &sh[eh->e_shstrndx];
	if (names->sh_offset > len || names->sh_size > len - names->sh_offset)
		return -1;
	const char *strtab = (const char *)obj + names->sh_offset;
	for (unsigned i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_name + sizeof "gov_rule" <= names->sh_size &&
		    memcmp(strtab + sh[i].sh_name, "gov_rule", sizeof "gov_rule") == 0)
			return (long)(sh[i].sh_size / 8);
	return -1;
}

static void *bpf_load(const void *obj, size_t len, const struct gov_dyn_spec *spec,
		      char *err, size_t errlen)
{
	pthread_once(&lib.once, open_lib);
	if (!lib.lib) {
		snprintf(err, errlen, "rule %s: %s", spec->name, lib.why);
		return NULL;
	}
	if (len < 64 || memcmp(obj, "\177ELF", 4) != 0) {
		snprintf(err, errlen, "rule %s: not an ELF object (build it with clang -O2 -target bpf -c)",
			 spec->name);
		return NULL;
	}
	long n = rule_insns(obj, len);
	if (n < 0) {
		snprintf(err, errlen, "rule %s: the object has no gov_rule section (use GOV_RULE from gov/dynrule.h)",
			 spec->name);
		return NULL;
	}
	if (spec->max_insns && n > (long)spec->max_insns) {
		snprintf(err, errlen, "rule %s: %ld instructions, over its budget of %u (max_insns)",
			 spec->name, n, spec->max_insns);
		return NULL;
	}
	/* rte_bpf_elf_load reads a file: hand it the bytes through a memfd */
	int fd = memfd_create("gov-bpf-rule", MFD_CLOEXEC);
	if (fd < 0 || write(fd, obj, len) != (ssize_t)len) {
		snprintf(err, errlen, "rule %s: cannot stage the object: %m", spec->name);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct rte_bpf_prm prm = {
		.xsym = helpers, .nb_xsym = sizeof helpers / sizeof helpers[0],
		.prog_arg = { .type = RTE_BPF_ARG_PTR, .size = sizeof(struct gov_dyn_ctx) },
	};
	char *log = NULL;
	size_t loglen = 0;
	pthread_mutex_lock(&lib.lock);
	FILE *ls = lib.openlog_stream ? open_memstream(&log, &loglen) : NULL;
	if (ls)
		lib.openlog_stream(ls);
	struct rte_bpf *b = lib.elf_load(&prm, path, "gov_rule");
	if (ls) {
		lib.openlog_stream(NULL);
		fclose(ls);
	}
	pthread_mutex_unlock(&lib.lock);
	close(fd);
	struct rte_bpf_jit jit = { 0 };
	if (!b) {
		snprintf(err, errlen, "rule %s: refused by the eBPF verifier", spec->name);
		keep_reasons(log, err, errlen);
	} else if (lib.get_jit(b, &jit) != 0 || !jit.func) {
		snprintf(err, errlen, "rule %s: librte_bpf could not JIT-compile it", spec->name);
		lib.destroy(b);
		b = NULL;
	}
	free(log);
	if (b && gov_dyn_cur.rule)
		gov_dyn_cur.rule->fast = jit.func;
	return b;
}

static uint64_t bpf_run(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	return lib.exec(r->impl, ctx);
}

static void bpf_destroy(void *impl)
{
	lib.destroy(impl);
}

const struct gov_dyn_mode_ops gov_dyn_ebpf_ops = {
	.name = "ebpf", .load = bpf_load, .run = bpf_run, .destroy = bpf_destroy,
};
