/* rules/deny/deny.c - the deny rule: fail a call when its syscall or
 * function and its arguments match. One source for both modes (eBPF and
 * wasm). As shipped it denies a write of more than 4096 bytes with EFBIG
 * (counter 0) and every unlink with EACCES (counter 1); copy it and change
 * the predicates. Not a general predicate language: a rule is code. */
#include "gov/dynrule.h"

#define SYS_write 1
#define EFBIG 27
#define EACCES 13

GOV_RULE(deny)
{
	if (ctx->sysno == SYS_write && ctx->args[2] > 4096) {
		gov_counter_add(0, 1);
		ctx->err = EFBIG;
		return GOV_DYN_DENY;
	}
	if (ctx->func_id == GOV_DYN_ID("unlink")) {
		gov_counter_add(1, 1);
		ctx->err = EACCES;
		return GOV_DYN_DENY;
	}
	return GOV_DYN_NATIVE;
}
