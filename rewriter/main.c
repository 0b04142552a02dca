/* rewriter/main.c - the govrewrite command: options, IN and OUT checks,
 * one engine scan per executable range, naming the sites, the report.
 * Reading IN is elfin.c, writing OUT elfout.c, finding and patching sites
 * engine.c. See rewriter/README.md. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "gov/abi.h"
#include "govrewrite.h"

const char *gov_syscall_name(int nr);        /* runtime/syscalls.c */
int gov_syscall_number(const char *name);

static const char usage_text[] =
"usage: govrewrite [options] IN OUT\n"
"       govrewrite --dry-run --report - [options] IN\n"
"\n"
"Rewrites an x86-64 ELF executable or shared object (PIE or not, dynamic\n"
"or static) so that its syscall instructions, and direct calls to chosen\n"
"functions, go through govrt: each site jumps to a trampoline in a new\n"
"segment that runs it natively while govrt's verdict is native, and asks\n"
"govrt otherwise. OUT carries the same site table as plugin-built code; a\n"
"dynamic OUT needs libgovrt.so.1; a static one carries govrt-static inside\n"
"(entered from e_entry). IN is never modified; OUT is written whole or not\n"
"at all.\n"
"\n"
"options:\n"
"  --syscalls all|none|NAME,...   syscall instructions to redirect (default all;\n"
"                                 a list keeps those whose number is unknown)\n"
"  --calls NAME,...               direct and PLT calls to these functions become\n"
"                                 call sites (e.g. --calls malloc,free)\n"
"  --report FILE|-                every site: patched or left, and why\n"
"  --dry-run                      find and report; write nothing (OUT optional)\n"
"  --resource NAME                the resource the module belongs to\n"
"  --no-needed                    do not add DT_NEEDED libgovrt.so.1 (nor, to\n"
"                                 libc.so.6, the self-start)\n"
"  --no-self-start                libc.so.6: do not dlopen libgovrt.so.1 from its\n"
"                                 init array when GOV_RESOURCE is set (the default\n"
"                                 does; then preload libgovrt.so.1 instead)\n"
"  -q, --quiet                    no summary on stderr\n"
"  -h, --help                     this text\n"
"\n"
"examples:\n"
"  govrewrite /bin/cat ./cat                      # every syscall of cat's own code\n"
"  govrewrite --calls malloc,free --syscalls none /usr/bin/sort ./sort\n"
"  govrewrite --dry-run --report - /lib/x86_64-linux-gnu/libc.so.6\n"
"  LD_LIBRARY_PATH=build/lib GOV_RESOURCE=billing ./cat file\n"
"\n"
"exit: 0 written, 1 bad usage, 2 IN refused (nothing written), 3 OUT could not be written\n";

static const char *prog_in = NULL;
static int quiet;

void rw_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("govrewrite: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

void rw_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("govrewrite: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static char **split_list(char *s, size_t *n)
{
	char **v = NULL;
	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (!*tok)
			continue;
		v = realloc(v, (*n + 1) * sizeof *v);
		if (!v)
			rw_die(RW_IO, "out of memory");
		v[(*n)++] = tok;
	}
	return v;
}

static void parse_syscalls(struct rw_opts *o, char *arg)
{
	if (strcmp(arg, "all") == 0) {
		o->syscalls = 1;
		return;
	}
	if (strcmp(arg, "none") == 0) {
		o->syscalls = 0;
		return;
	}
	size_t n;
	char **names = split_list(arg, &n);
	if (!n)
		rw_die(RW_USAGE, "--syscalls: empty list (all, none or NAME,...)");
	o->syscalls = 2;
	for (size_t i = 0; i < n; i++) {
		int nr = gov_syscall_number(names[i]);
		if (nr < 0 || nr >= (int)sizeof o->sysnos)
			rw_die(RW_USAGE, "--syscalls: unknown syscall '%s' (x86-64 names, as in "
			       "include/gov/syscalls.def)", names[i]);
		o->sysnos[nr] = 1;
	}
	free(names);
}

static void parse_args(int argc, char **argv, struct rw_opts *o)
{
	static const struct option longs[] = {
		{ "syscalls", required_argument, 0, 's' },
		{ "calls", required_argument, 0, 'c' },
		{ "report", required_argument, 0, 'r' },
		{ "dry-run", no_argument, 0, 'n' },
		{ "resource", required_argument, 0, 'R' },
		{ "no-needed", no_argument, 0, 'N' },
		{ "no-self-start", no_argument, 0, 'S' },
		{ "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	o->syscalls = 1;
	o->add_needed = 1;
	o->self_start = 1;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qh", longs, NULL)) != -1) {
		switch (c) {
		case 's': parse_syscalls(o, optarg); break;
		case 'c': o->calls = split_list(optarg, &o->ncalls); break;
		case 'r': o->report = optarg; break;
		case 'n': o->dry_run = 1; break;
		case 'R': o->resource = optarg; break;
		case 'N': o->add_needed = 0; break;
		case 'S': o->self_start = 0; break;
		case 'q': quiet = 1; break;
		case 'h': fputs(usage_text, stdout); exit(RW_OK);
		default:
			rw_die(RW_USAGE, "unknown option or missing argument: %s (see govrewrite --help)",
			       argv[optind - 1]);
		}
	}
	int nargs = argc - optind;
	if (nargs < 1 || nargs > 2 || (nargs == 1 && !o->dry_run))
		rw_die(RW_USAGE, "expected IN and OUT (see govrewrite --help)");
	o->in = argv[optind];
	o->out = nargs == 2 ? argv[optind + 1] : NULL;
	if (o->resource && (!*o->resource || strlen(o->resource) >= GOV_NAME_MAX ||
			    strspn(o->resource, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789._-") != strlen(o->resource) || o->resource[0] == '.'))
		rw_die(RW_USAGE, "--resource %s: not a resource name (1-63 of A-Z a-z 0-9 . _ -)",
		       o->resource);
}

/* IN and OUT must be different files, also through links. */
static void check_paths(const struct rw_opts *o)
{
	struct stat si, so;
	if (stat(o->in, &si) != 0)
		rw_die(RW_REFUSED, "%s: %s", o->in, strerror(errno));
	if (o->out && stat(o->out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
		rw_die(RW_REFUSED, "%s and %s are the same file: IN is never modified; write "
		       "OUT elsewhere", o->in, o->out);
}

static int wanted(const struct rw_opts *o, const struct gre_site *g)
{
	if (g->kind != GOV_SITE_SYSCALL || o->syscalls == 1)
		return 1;
	if (o->syscalls == 0)
		return 0;
	return g->sysno < 0 || (g->sysno < (int)sizeof o->sysnos && o->sysnos[g->sysno]);
}

static const char *callee_of(const struct rw_input *in, const struct gre_site *g)
{
	if (g->kind == GOV_SITE_CALL) {
		for (size_t i = 0; i < in->ncallees; i++)
			if (in->callees[i].addr == g->call_target)
				return in->callees[i].name;
		return "?";
	}
	const char *n = g->sysno >= 0 ? gov_syscall_name(g->sysno) : NULL;
	return n ? n : "syscall";
}

/* Ids as the plugins make them where DWARF names the source: the n-th site
 * with the same file, line, caller and callee hashes "callee#n"
 * (docs/abi.md). Without a source position the address is the site's
 * identity: "callee@0xADDR", the same for every rewrite of the same file. */
static void assign_ids(struct rw_site *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[GOV_NAME_MAX + 32];
		if (strcmp(v[i].file, "?") == 0) {
			snprintf(name, sizeof name, "%s@0x%llx", v[i].callee,
				 (unsigned long long)v[i].g.addr);
			v[i].id = gov_site_id(v[i].file, v[i].line, v[i].caller, name);
			continue;
		}
		unsigned dup = 1;
		for (size_t j = i; j-- > 0 && strcmp(v[j].caller, v[i].caller) == 0;)
			dup += v[j].line == v[i].line && strcmp(v[j].callee, v[i].callee) == 0 &&
			       strcmp(v[j].file, v[i].file) == 0;
		if (dup == 1) {
			v[i].id = gov_site_id(v[i].file, v[i].line, v[i].caller, v[i].callee);
		} else {
			snprintf(name, sizeof name, "%s#%u", v[i].callee, dup);
			v[i].id = gov_site_id(v[i].file, v[i].line, v[i].caller, name);
		}
	}
}

struct totals {
	size_t syscalls, calls, patched_sys, patched_calls;
	size_t reasons[GRE_NREASONS];
};

static struct rw_site *scan_all(struct rw_input *in, const struct rw_opts *o, size_t *nout)
{
	struct rw_site *v = NULL;
	size_t n = 0;
	uint64_t *calls = malloc((in->ncallees + 1) * sizeof *calls);
	if (!calls)
		rw_die(RW_IO, "out of memory");
	for (size_t i = 0; i < in->ncallees; i++)
		calls[i] = in->callees[i].addr;
	for (size_t r = 0; r < in->nranges; r++) {
		const struct rw_range *rg = &in->ranges[r];
		struct gre_input gi = { .code = in->img + rg->off, .addr = rg->addr, .len = rg->len,
					.targets = in->targets, .ntargets = in->ntargets,
					.calls = calls, .ncalls = in->ncallees,
					.want_syscalls = o->syscalls != 0 };
		struct gre_result res;
		if (gre_scan(&gi, &res) < 0)
			rw_die(RW_IO, "%s: cannot scan %s: out of memory or capstone failed",
			       in->path, rg->name);
		if (res.nundecodable)
			rw_warn("%s: %s: %zu bytes do not decode as x86-64 (the first at 0x%llx, in %s);"
				" syscalls after them up to the next known function start are left",
				in->path, rg->name, res.nundecodable,
				(unsigned long long)res.first_undecodable,
				rw_caller_of(in, res.first_undecodable));
		v = realloc(v, (n + res.nsites + 1) * sizeof *v);
		if (!v)
			rw_die(RW_IO, "out of memory");
		for (size_t i = 0; i < res.nsites; i++) {
			struct rw_site *x = &v[n++];
			memset(x, 0, sizeof *x);
			x->g = res.sites[i];
			x->range = r;
			if (x->g.reason == GRE_OK && in->have_symtab && !rw_in_function(in, x->g.addr))
				x->g.reason = GRE_NOT_CODE, x->g.win_len = 0;
			if (x->g.reason == GRE_OK && !wanted(o, &x->g))
				x->g.reason = GRE_NOT_WANTED, x->g.win_len = 0;
			x->caller = rw_caller_of(in, x->g.addr);
			x->callee = callee_of(in, &x->g);
			rw_source_of(in, x->g.addr, &x->file, &x->line);
		}
		gre_result_free(&res);
	}
	free(calls);
	assign_ids(v, n);
	*nout = n;
	return v;
}

/* The report file is opened before OUT is written, so that a report that
 * cannot be written leaves OUT untouched. */
static FILE *open_report(const struct rw_opts *o)
{
	if (!o->report)
		return NULL;
	FILE *f = strcmp(o->report, "-") == 0 ? stdout : fopen(o->report, "w");
	if (!f)
		rw_die(RW_IO, "--report %s: %s (nothing written)", o->report, strerror(errno));
	return f;
}

static void report(FILE *f, const struct rw_site *v, size_t n, struct totals *t)
{
	if (f && rw_embedded.file_end)
		fprintf(f, "# govrt-static embedded: %llu bytes at 0x%llx, entry 0x%llx "
			"(a static executable carries its runtime)\n",
			(unsigned long long)rw_embedded.file_end, (unsigned long long)rw_embedded.vaddr,
			(unsigned long long)(rw_embedded.vaddr + rw_embedded.start));
	if (f)
		fprintf(f, "# address\tkind\tcallee\tsysno\tresult\treason\tcaller\tsource\ttrampoline\tid\n");
	for (size_t i = 0; i < n; i++) {
		const struct rw_site *x = &v[i];
		int ok = x->g.reason == GRE_OK;
		if (x->g.kind == GOV_SITE_SYSCALL)
			t->syscalls++, t->patched_sys += ok;
		else
			t->calls++, t->patched_calls += ok;
		t->reasons[x->g.reason]++;
		if (!f)
			continue;
		fprintf(f, "0x%llx\t%s\t%s\t%d\t%s\t%s\t%s\t%s:%u\t", (unsigned long long)x->g.addr,
			x->g.kind == GOV_SITE_SYSCALL ? "syscall" : "call", x->callee, x->g.sysno,
			ok ? "patched" : "left", ok ? "-" : gre_reason_text(x->g.reason),
			x->caller, x->file, x->line);
		if (ok && x->tramp)
			fprintf(f, "0x%llx\t", (unsigned long long)x->tramp);
		else
			fputs("-\t", f);
		fprintf(f, "%016llx\n", (unsigned long long)x->id);
	}
	if (f && (f == stdout ? fflush(f) : fclose(f)) != 0)
		rw_die(RW_IO, "the report could not be written: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct rw_opts o = { 0 };
	parse_args(argc, argv, &o);
	prog_in = o.in;
	check_paths(&o);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct rw_input in = { 0 };
	rw_read_input(&in, &o);
	for (size_t i = 0; i < o.ncalls; i++) {
		int found = 0;
		for (size_t k = 0; k < in.ncallees; k++)
			found |= strcmp(in.callees[k].name, o.calls[i]) == 0;
		if (!found)
			rw_warn("%s: --calls %s: no such function or PLT entry; no call site for it",
				o.in, o.calls[i]);
	}
	size_t n;
	struct rw_site *v = scan_all(&in, &o, &n);
	FILE *rep = open_report(&o);
	rw_write_output(&in, &o, v, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct totals t = { 0 };
	report(rep, v, n, &t);
	if (!quiet) {
		double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		fprintf(stderr, "govrewrite: %s: %zu syscall instructions, %zu patched (%.1f%%), "
			"%zu left; %zu call sites, %zu patched; %zu bytes of code in %.3f s%s\n",
			o.in, t.syscalls, t.patched_sys,
			t.syscalls ? 100.0 * (double)t.patched_sys / (double)t.syscalls : 100.0,
			t.syscalls - t.patched_sys, t.calls, t.patched_calls, in.exec_bytes, s,
			o.dry_run ? " (dry run: nothing written)" : "");
		if (rw_embedded.file_end)
			fprintf(stderr, "govrewrite:   static executable: govrt-static embedded "
				"(%llu bytes), e_entry starts it\n",
				(unsigned long long)rw_embedded.file_end);
		if (rw_self_started)
			fprintf(stderr, "govrewrite:   libc.so.6: its init array dlopens %s when "
				"%s (unless secure-execution)\n", "libgovrt.so.1",
				o.resource ? "a process starts" : "GOV_RESOURCE is set");
		for (int r = 1; r < GRE_NREASONS; r++)
			if (t.reasons[r])
				fprintf(stderr, "govrewrite:   %zu left: %s\n", t.reasons[r],
					gre_reason_text(r));
	}
	return RW_OK;
}
