# rules/cfs.mk - the cfs and tasklet rules (docs/cfs.md, docs/tasklet.md):
# the scheduler on the callee's agent (runtime/agent/cfs.c), the tasklet
# queues (runtime/agent/tasklet.c), their tests and bench/cfs. Both are
# configured by rule documents' cfs: and tasklets: sections
# (rules/ruledoc.c). libbsd-dev gives the red-black tree macros
# (rules/deps.list).
# the native mode (placement process) is in govrt: runtime/cfs.c
RT_SRCS += runtime/cfs.c

CFS_AGENT_OBJS := $(B)/obj/runtime/agent/cfs.o $(B)/obj/runtime/agent/tasklet.o
$(GOVAGENT): $(CFS_AGENT_OBJS)

# the callee's exports live in the test executable
$(B)/tests/t_cfs.t: TEST_EXTRA_LIBS = -rdynamic

# bench/cfs: N threads' task latency under cfs vs. direct (make bench BENCH=cfs)
BENCH_CFS := $(B)/bench/cfs
$(BENCH_CFS): bench/cfs/main.c bench/common.c bench/common.h bench/ipc/baselines.c \
              bench/ipc/baselines.h $(LIBGOVRT_SO) $(GOVAGENT)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -rdynamic -DDYN_OBJS='"$(abspath $(B))/dyn"' -o $@ bench/cfs/main.c bench/ipc/baselines.c \
	  bench/common.c $(BENCH_LINK) -lrt -lpthread
$(BENCH_CFS): $(B)/dyn/rules/cfs/cfs.bpf.o $(B)/dyn/bench/cfs/per_thread.bpf.o
BENCHES += $(BENCH_CFS)
# tests/t_bench_cfs.sh runs it (its options, a short run)
tests: $(BENCH_CFS)
$(B)/tests/t_tasklet.t: TEST_EXTRA_LIBS = -rdynamic

# the cfs rule as a dynamic rule, in both modes (rules/cfs/cfs.c,
# tests/dyn/cfs_arg.c, built by rules/dynamic.mk, read at run time); the
# scheduled function lives in the test executable
$(B)/tests/t_cfs_rule.t: TEST_EXTRA_LIBS = -rdynamic $(DYN_TEST_FLAGS)
