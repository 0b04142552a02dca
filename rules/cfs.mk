# rules/cfs.mk - the cfs rule (docs/cfs.md): the scheduler on the callee's
# agent (runtime/agent/cfs.c), its test and bench/cfs. The weights come from
# rule documents' cfs: section (rules/ruledoc.c). libbsd-dev gives the
# red-black tree macros (rules/deps.list).
CFS_AGENT_OBJS := $(B)/obj/runtime/agent/cfs.o
$(GOVAGENT): $(CFS_AGENT_OBJS)

# the callee's exports live in the test executable
$(B)/tests/t_cfs.t: TEST_EXTRA_LIBS = -rdynamic

# bench/cfs: N threads' task latency under cfs vs. direct (make bench BENCH=cfs)
BENCH_CFS := $(B)/bench/cfs
$(BENCH_CFS): bench/cfs/main.c bench/common.c bench/common.h bench/ipc/baselines.c \
              bench/ipc/baselines.h $(LIBGOVRT_SO) $(GOVAGENT)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -rdynamic -o $@ bench/cfs/main.c bench/ipc/baselines.c \
	  bench/common.c $(BENCH_LINK) -lrt -lpthread
BENCHES += $(BENCH_CFS)
