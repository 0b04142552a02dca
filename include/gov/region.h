/* gov/region.h - the shared region between one process and its agent.
 *
 * The agent creates the region (a memfd) when a process connects and passes
 * the descriptor over the unix socket; both map it MAP_SHARED. Layout:
 *
 *   offset 0            struct gov_region_hdr
 *   hdr.table_off       struct gov_decision[hdr.table_cap]   (agent writes)
 *   hdr.dyn_off         struct gov_region_dyn + objects       (agent writes)
 *   hdr.stats_off       struct gov_region_dynstat[GOV_REGION_DYN_MAX] (process writes)
 *   hdr.slots_off       hdr.nslots slots of hdr.slot_size bytes each
 *
 * Each slot is a struct gov_slot followed by its payload: one wire frame
 * (gov/wire.h), a request from the process, then the agent's reply in place.
 * A thread owns a slot for the length of one call (owner_tid, taken by CAS),
 * and keeps using the same one call after call, so no lock is shared between
 * threads on the data path. All futex words are process-shared futexes.
 * Documented in docs/region.md.
 */
#ifndef GOV_REGION_H
#define GOV_REGION_H

#include <stdint.h>
#include "gov/abi.h"
#include "gov/wire.h"
#include "gov/dynrule.h"

#define GOV_REGION_MAGIC 0x474f5652u /* "GOVR" */
#define GOV_REGION_VERSION 3 /* 2: the dynamic rule area; 3: its figures */
#define GOV_CACHELINE 64

/* Slot states (gov_slot.state), the futex word a waiting thread sleeps on. */
enum gov_slot_state {
	GOV_SLOT_IDLE = 0,      /* no call in flight (a slot whose last call was
				 * answered stays REPLY: that is idle too) */
	GOV_SLOT_REQUEST = 1,   /* process wrote a request; the agent answers it */
	GOV_SLOT_REPLY = 3,     /* agent wrote the reply; process may read it */
	GOV_SLOT_ABANDONED = 4, /* process gave up (timeout); agent frees it */
};
/* The agent moves REQUEST -> REPLY and the process REQUEST -> ABANDONED,
 * each with one compare-and-swap: whichever lands first decides, so a late
 * answer is never read and an abandoned slot is never reused too early.
 * (There is no "being served" state: it would cost the line the caller
 * spins on one more trip between the CPUs. One worker serves a region.) */

struct gov_region_hdr {
	uint32_t magic;        /* GOV_REGION_MAGIC */
	uint16_t version;      /* GOV_REGION_VERSION */
	uint16_t hdr_size;     /* sizeof(struct gov_region_hdr) */
	uint64_t size;         /* bytes of the whole region */
	uint64_t agent_epoch;  /* changes every time an agent starts */
	uint32_t nslots;
	uint32_t slot_size;    /* bytes per slot, struct gov_slot included */
	uint32_t slots_off;
	uint32_t table_off;
	uint32_t table_cap;    /* entries the decision table can hold */
	uint32_t dyn_off;      /* the dynamic rule area (struct gov_region_dyn) */
	uint32_t dyn_cap;      /* its bytes, directory included */
	uint32_t stats_off;    /* the process rules' figures (struct gov_region_dynstat), 0 = none */

	/* The decision table, under a sequence lock: odd while the agent
	 * rewrites it. A reader copies it and retries if table_seq moved. */
	_Alignas(GOV_CACHELINE) volatile uint32_t table_seq;
	uint32_t table_count;
	uint64_t table_rev;    /* rule revision the table reflects */

	/* 1 while the agent's worker sleeps on this word; a process that posts
	 * a request and finds it 1 clears it and wakes the agent. While the
	 * agent is busy nobody makes a system call. */
	_Alignas(GOV_CACHELINE) volatile uint32_t agent_sleeping;
	/* highest slot index + 1 ever taken: the agent scans below it */
	_Alignas(GOV_CACHELINE) volatile uint32_t slots_used;
};

/* One row of the decision table: what to do with the sites it matches.
 * A row matches a call site by callee name, or any site by syscall number. */
struct gov_decision {
	uint8_t match;       /* GOV_MATCH_FUNCTION or GOV_MATCH_SYSCALL */
	uint8_t action;      /* enum gov_action */
	uint16_t reserved;
	int32_t sysno;       /* for GOV_MATCH_SYSCALL */
	int32_t err;         /* errno for DENY */
	int32_t reserved2;
	int64_t value;       /* return value for EMULATE */
	char name[GOV_NAME_MAX]; /* function name for GOV_MATCH_FUNCTION */
};

enum gov_match { GOV_MATCH_FUNCTION = 1, GOV_MATCH_SYSCALL = 2 };

/* The dynamic rules of the decision table: a GOV_ACT_RULE row's value is
 * an index into ent. An entry with an object (len > 0) is one the process
 * runs itself (placement process, eBPF); the others it asks the agent
 * about. Written with the table, under the same sequence lock. */
#define GOV_REGION_DYN_MAX 32
struct gov_region_dyn_entry {
	struct gov_dyn_spec spec;
	uint64_t hash;         /* of the object: unchanged = keep the loaded one */
	uint32_t off;          /* of the object, from the start of the area */
	uint32_t len;          /* 0 = the agent runs this rule */
};
struct gov_region_dyn {
	uint32_t count;
	uint32_t reserved;
	struct gov_region_dyn_entry ent[GOV_REGION_DYN_MAX];
	/* the objects follow */
};

/* What the process's runs of its rule i (an entry it runs itself) did, for
 * the agent's statistics (govctl trace): govrt copies its rule's counters,
 * faults and event ring here from its watcher thread (every 200 ms) and
 * when the process exits; hash is the rule object's, written last (0 while
 * the ring is rewritten), so the agent adds up only the figures of the
 * rule it has now. The process writes it, the agent only reads, trusting
 * none of it; a torn figure is a figure late. docs/region.md. */
struct gov_region_dynevent {
	uint64_t time_ns, site_id, a, b; /* gov_event's */
};
#define GOV_REGION_DYN_EVENTS 256
struct gov_region_dynstat {
	uint64_t hash;         /* of the rule's object; 0 = nothing yet */
	uint64_t faults;
	uint64_t event_head;   /* events written so far; the newest at (head - 1) % EVENTS */
	uint32_t disabled;
	uint32_t reserved;
	uint64_t counters[GOV_DYN_COUNTERS];
	struct gov_region_dynevent events[GOV_REGION_DYN_EVENTS];
};
#define GOV_REGION_STATS_SIZE (GOV_REGION_DYN_MAX * sizeof(struct gov_region_dynstat))

/* Two cache lines of control, then the payload. The first is the one that
 * travels between the caller's and the agent's CPUs: the state word, the
 * request's length and sequence number, and the reply header, so that a
 * call moves it there and back exactly once. The second, owner_tid, is
 * touched by callers only (taking and giving back the slot). */
struct gov_slot {
	_Alignas(GOV_CACHELINE) volatile uint32_t state; /* enum gov_slot_state */
	volatile uint32_t client_sleeping; /* 1 while the caller sleeps on state */
	uint32_t len;                      /* bytes of the request frame in payload */
	uint32_t reserved;
	uint64_t seq;                      /* sequence number of the call */
	struct gov_wire_rep rep;           /* the reply; its text, if any, in payload */
	uint8_t pad[GOV_CACHELINE - 24 - sizeof(struct gov_wire_rep)];
	_Alignas(GOV_CACHELINE) volatile uint32_t owner_tid; /* 0 = free */
	uint8_t pad2[GOV_CACHELINE - 4];
	unsigned char payload[];           /* slot_size - sizeof(struct gov_slot) */
};
_Static_assert(sizeof(struct gov_slot) == 2 * GOV_CACHELINE, "a slot's control is two cache lines");

static inline struct gov_slot *gov_region_slot(struct gov_region_hdr *h,
					       uint32_t i)
{
	return (struct gov_slot *)((char *)h + h->slots_off +
				   (uint64_t)i * h->slot_size);
}

static inline struct gov_decision *gov_region_table(struct gov_region_hdr *h)
{
	return (struct gov_decision *)((char *)h + h->table_off);
}

/* Checks a region header a process has just mapped. Returns NULL if it is
 * usable, otherwise the name of the first field that is wrong. */
static inline const char *gov_region_check(const struct gov_region_hdr *h,
					   uint64_t mapped_size)
{
	if (mapped_size < sizeof *h) return "size";
	if (h->magic != GOV_REGION_MAGIC) return "magic";
	if (h->version != GOV_REGION_VERSION) return "version";
	if (h->hdr_size != sizeof *h) return "hdr_size";
	if (h->size != mapped_size) return "size";
	if (h->slot_size < sizeof(struct gov_slot) + 512 || h->slot_size % GOV_CACHELINE) return "slot_size";
	if (h->nslots == 0) return "nslots";
	if (h->table_off < sizeof *h ||
	    h->table_off + (uint64_t)h->table_cap * sizeof(struct gov_decision) > h->slots_off)
		return "table_off";
	if (h->dyn_off < h->table_off + (uint64_t)h->table_cap * sizeof(struct gov_decision) ||
	    h->dyn_cap < sizeof(struct gov_region_dyn) || h->dyn_off + (uint64_t)h->dyn_cap > h->slots_off)
		return "dyn_off";
	if (h->stats_off && (h->stats_off % 8 || h->stats_off < h->dyn_off + (uint64_t)h->dyn_cap ||
			     h->stats_off + (uint64_t)GOV_REGION_STATS_SIZE > h->slots_off))
		return "stats_off";
	if (h->slots_off % GOV_CACHELINE ||
	    h->slots_off + (uint64_t)h->nslots * h->slot_size > h->size)
		return "slots_off";
	return 0;
}

#endif
