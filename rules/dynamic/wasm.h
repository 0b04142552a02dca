/* rules/dynamic/wasm.h - what wasm.c offers a host besides its mode
 * (gov_dyn_wasm_ops): the context buffer of a wasm rule, so that a caller
 * builds a call's context straight in the rule's linear memory and the run
 * copies nothing. Linked into govagent and govctl only (govrt runs eBPF
 * alone). Not the mode's loading or running (wasm.c). */
#ifndef GOV_RULES_WASM_H
#define GOV_RULES_WASM_H

#include "dynrt.h"

extern const struct gov_dyn_mode_ops gov_dyn_wasm_ops;

/* The calling thread's context for a run of r, inside its instance's
 * memory (made now if the thread has none), or NULL: r is not a wasm rule,
 * is disabled, or the instance cannot be made (the run then says why).
 * Fill every field (a rule may have changed any of them in the run
 * before), run r with gov_dynrule_run(r, that pointer) on the same thread,
 * and read the answer there. The buffer lasts as long as r; a run on any
 * other context copies it in and the answer out. */
struct gov_dyn_ctx *gov_wasm_ctx(struct gov_dynrule *r);

#endif
