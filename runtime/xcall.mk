# runtime/xcall.mk - cross-resource invocation (issue 7, docs/xcall.md):
# govrt's callee side (invoke.c, libffi) and caller side (xcall.c), the
# frame I/O both share with govagent (xcall_io.c), and govagent's edges
# (agent/edge.c, agent/edge_link.c). Debian packages: python/deps.list.
RT_SRCS   += runtime/invoke.c runtime/xcall.c runtime/xcall_io.c
LDLIBS_RT += -lffi -ldl
XCALL_AGENT_OBJS := $(B)/obj/runtime/agent/edge.o $(B)/obj/runtime/agent/edge_link.o \
                    $(B)/obj/runtime/agent/edge_auth.o $(B)/obj/runtime/xcall_io.o
$(GOVAGENT): $(XCALL_AGENT_OBJS)
# tcp link authentication: HMAC-SHA256 from OpenSSL (libssl-dev)
$(GOVAGENT): STORE_LIBS += -lcrypto

# the xcall tests speak frames by hand (xcall_io.o, in the test support
# library) and export their functions from the executable (-rdynamic)
$(B)/tests/t_xcall.t: TEST_EXTRA_LIBS = -rdynamic -lm
$(B)/tests/t_xcall.t: runtime/xcall_io.h include/gov/xcall.h

# tests/t_python.sh's C peer: calls the Python service, serves C functions
XCALL_PEER := $(B)/tests/xcall_peer
$(XCALL_PEER): tests/xcall/peer.c $(LIBGOVRT_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -rdynamic -o $@ $< -L$(B)/lib -Wl,-rpath,$(abspath $(B)/lib) -lgovrt
tests: $(XCALL_PEER)

# bench/xcall: a cross-resource round trip per protocol (make bench BENCH=xcall)
BENCH_XCALL := $(B)/bench/xcall
$(BENCH_XCALL): bench/xcall/main.c bench/common.c bench/common.h bench/ipc/baselines.c \
                bench/ipc/baselines.h $(LIBGOVRT_SO) $(GOVAGENT)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -rdynamic -o $@ bench/xcall/main.c bench/ipc/baselines.c \
	  bench/common.c $(BENCH_LINK) -lrt -lpthread
BENCHES += $(BENCH_XCALL)
