/* rules/ratelimit/ratelimit.c - a token bucket per caller (the calling
 * process): RATE calls a second, bursts of up to BURST; a call that finds
 * the bucket empty is denied with EAGAIN and counted in counter 0 (admitted
 * calls in counter 1). One source for eBPF and wasm. Map 0 holds each
 * caller's tokens in millionths, map 1 the time of its last refill. Change
 * RATE and BURST (or key by ctx->tid, ctx->caller_id) to taste. */
#include "gov/dynrule.h"

#ifndef RATE
#define RATE 100 /* calls per second */
#endif
#ifndef BURST
#define BURST 10
#endif
#define UNIT 1000000ull  /* one token */
#define EAGAIN 11

GOV_RULE(ratelimit)
{
	uint64_t who = ctx->pid, now = gov_time_ns();
	uint64_t last = gov_map_lookup(1, who, 0);
	uint64_t tokens = gov_map_lookup(0, who, BURST * UNIT);
	if (last && now > last) {
		uint64_t gap = now - last;
		if (gap > 1000000000000ull)
			gap = 1000000000000ull; /* a long silence refills it, no more */
		tokens += gap * RATE / 1000; /* ns * calls/s = 1e-9 calls: in millionths, / 1000 */
		if (tokens > BURST * UNIT)
			tokens = BURST * UNIT;
	}
	gov_map_update(1, who, now);
	if (tokens < UNIT) {
		gov_map_update(0, who, tokens);
		gov_counter_add(0, 1);
		ctx->err = EAGAIN;
		return GOV_DYN_DENY;
	}
	gov_map_update(0, who, tokens - UNIT);
	gov_counter_add(1, 1);
	return GOV_DYN_NATIVE;
}
