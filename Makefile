# Rhodes - one Makefile for the whole toolchain.
#   make            build everything that exists (into build/)
#   make test       build and run every test (TAP, run by prove)
#   make bench      run the benchmarks and write BENCHMARKS.md
#   make demo       run the demo
#   make install    PREFIX=/usr/local DESTDIR=
# Each part beyond the runtime, govctl and the rule store keeps its rules in
# its own PART/*.mk, included below; a part adds to ALL_TARGETS, TESTS,
# BENCHES (binaries run by `make bench` with --markdown BENCHMARKS.md) and
# INSTALL_PARTS (targets `make install` runs after the core install).

.DEFAULT_GOAL := all

PREFIX  ?= /usr/local
DESTDIR ?=
B       := build
CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
override CFLAGS += -std=gnu11 -D_GNU_SOURCE $(WARN) -Iinclude -Iruntime -MMD -MP
LDLIBS_RT := -lpthread

RT_SHARED  := runtime/wire.c runtime/util.c runtime/decision.c runtime/syscalls.c
RT_SRCS    := runtime/govrt.c runtime/channel.c runtime/dispatch.c $(RT_SHARED)
RULES_SRCS := rules/ruledoc.c rules/store.c rules/store_sqlite.c rules/store_etcd.c
AGENT_SRCS := runtime/agent/main.c runtime/agent/serve.c runtime/agent/log.c \
              $(RULES_SRCS) $(RT_SHARED)
GOVCTL_SRCS := $(wildcard govctl/*.c) $(RULES_SRCS) $(RT_SHARED)

# recursive (=): a part's .mk may add to RT_SRCS and LDLIBS_RT
RT_PIC_OBJS    = $(RT_SRCS:%.c=$(B)/pic/%.o)
RT_OBJS        = $(RT_SRCS:%.c=$(B)/obj/%.o)
AGENT_OBJS    := $(AGENT_SRCS:%.c=$(B)/obj/%.o)
GOVCTL_OBJS   := $(GOVCTL_SRCS:%.c=$(B)/obj/%.o)

LIBGOVRT_SO := $(B)/lib/libgovrt.so
LIBGOVRT_A  := $(B)/lib/libgovrt.a
GOVAGENT    := $(B)/bin/govagent
GOVCTL      := $(B)/bin/govctl
STORE_LIBS  := -lsqlite3 -lyaml -ljansson -lcurl -lpthread

ALL_TARGETS   :=
BENCHES       :=
INSTALL_PARTS :=
TEST_SRCS := $(wildcard tests/t_*.c)
TESTS     := $(TEST_SRCS:tests/%.c=$(B)/tests/%.t)
SCRIPT_TESTS := $(wildcard tests/t_*.sh)

include gcc-plugin/plugin.mk
-include $(filter-out gcc-plugin/plugin.mk,$(wildcard */*.mk))

# Installs missing Debian packages (nothing when all are there).
deps:
	@sh scripts/deps.sh

all: $(LIBGOVRT_SO) $(LIBGOVRT_A) $(GOVAGENT) $(GOVCTL) $(GOVINTERCEPT) $(ALL_TARGETS)

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBGOVRT_SO): $(RT_PIC_OBJS) runtime/libgovrt.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libgovrt.so.1 -Wl,--version-script=runtime/libgovrt.map \
	  -o $@.1 $(RT_PIC_OBJS) $(LDLIBS_RT)
	ln -sf libgovrt.so.1 $@
$(LIBGOVRT_A): $(RT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(GOVAGENT): $(AGENT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(STORE_LIBS)
$(GOVCTL): $(GOVCTL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(STORE_LIBS) -lelf

# ---- tests ----------------------------------------------------------------
HARNESS   := tests/harness.c
TEST_CFLAGS = $(CFLAGS) -Itests -Irules -DGOVAGENT_PATH='"$(abspath $(GOVAGENT))"' \
              -DGOVCTL_PATH='"$(abspath $(GOVCTL))"' \
              -DRULES_EXAMPLES='"$(abspath rules/examples)"'

# What every test links besides its own source: the harness, the rule store
# and the runtime's shared helpers, compiled once into one archive and
# linked whole, as their sources were.
TEST_SUPPORT := $(B)/lib/libtestsupport.a
$(B)/tests/harness.o: $(HARNESS) tests/harness.h tests/tap.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@
$(B)/tests/documents.o: tests/documents.c tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@
# the harness speaks HELLO to agents' edges by hand: xcall_io.o (frame I/O)
$(TEST_SUPPORT): $(B)/tests/harness.o $(B)/tests/documents.o $(RULES_SRCS:%.c=$(B)/obj/%.o) \
                 $(RT_SHARED:%.c=$(B)/obj/%.o) $(B)/obj/runtime/xcall_io.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/tests/%.t: tests/%.c tests/harness.h tests/tap.h $(TEST_SUPPORT) $(LIBGOVRT_SO) \
                $(GOVAGENT) $(GOVCTL)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< -Wl,--whole-archive $(TEST_SUPPORT) -Wl,--no-whole-archive \
	  -L$(B)/lib -Wl,-rpath,$(abspath $(B)/lib) -lgovrt $(STORE_LIBS) $(TEST_EXTRA_LIBS)

# the same fast-path test against the static library
$(B)/tests/t_fastpath_static.t: tests/t_fastpath.c $(HARNESS) tests/harness.h tests/tap.h $(LIBGOVRT_A)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(HARNESS) $(LIBGOVRT_A) $(LDLIBS_RT) -lpthread
TESTS += $(B)/tests/t_fastpath_static.t

# the store API on etcd: run by tests/t_etcd.sh against the etcd it starts
ETCD_STORE_API := $(B)/tests/etcd_store_api
$(ETCD_STORE_API): tests/etcd/store_api.c tests/tap.h $(RULES_SRCS) $(RT_SHARED)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(RULES_SRCS) $(RT_SHARED) $(STORE_LIBS)

tests: $(TESTS) $(ETCD_STORE_API)

# prove runs each test binary and prints the counts; slow soaks are included.
# The build uses every CPU; the tests run one at a time (several of them
# measure that a call stays bounded under load).
test: deps
	$(MAKE) -j$$(nproc) all tests
	prove --exec '' --timer $(TESTS) $(SCRIPT_TESTS)

# ---- benchmarks, demo -----------------------------------------------------
BENCH_IPC := $(B)/bench/ipc
BENCH_PUBLISH := $(B)/bench/publish
BENCH_FLAGS = $(CFLAGS) -DGOVAGENT_PATH='"$(abspath $(GOVAGENT))"'
BENCH_LINK = -L$(B)/lib -Wl,-rpath,$(abspath $(B)/lib) -lgovrt
$(BENCH_IPC): bench/ipc/main.c bench/ipc/baselines.c bench/ipc/baselines.h bench/common.c \
              $(LIBGOVRT_SO) $(GOVAGENT)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -Ibench/ipc -o $@ bench/ipc/main.c bench/ipc/baselines.c \
	  bench/common.c $(BENCH_LINK) -lrt -lpthread
$(BENCH_PUBLISH): bench/publish/main.c bench/common.c $(RULES_SRCS) $(RT_SHARED) \
                  $(LIBGOVRT_SO) $(GOVAGENT)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -o $@ bench/publish/main.c bench/common.c $(RULES_SRCS) \
	  $(RT_SHARED) $(BENCH_LINK) $(STORE_LIBS)

BENCH_SITES := $(B)/bench/sites
$(BENCH_SITES): bench/sites/main.c bench/common.c bench/common.h $(GOVINTERCEPT) $(LIBGOVRT_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSITES_TOP='"$(abspath .)"' -DSITES_BUILD='"$(abspath $(B))"' \
	  -o $@ bench/sites/main.c bench/common.c

BENCHES := $(BENCH_IPC) $(BENCH_PUBLISH) $(BENCH_SITES) $(BENCHES)
# one benchmark: make bench BENCH=sites
bench: deps
	$(MAKE) $(if $(BENCH),$(filter %/$(BENCH),$(BENCHES)),$(BENCHES))
	set -e; for b in $(if $(BENCH),$(filter %/$(BENCH),$(BENCHES)),$(BENCHES)); do \
	  $$b --markdown BENCHMARKS.md; done

demo: deps
	$(MAKE) all
	examples/hello/run.sh
	examples/paper/run.sh

# ---- install --------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/gov
	install -m 755 $(GOVAGENT) $(DESTDIR)$(PREFIX)/bin/govagent
	install -m 755 $(GOVCTL) $(DESTDIR)$(PREFIX)/bin/govctl
	install -m 755 $(LIBGOVRT_SO).1 $(DESTDIR)$(PREFIX)/lib/libgovrt.so.1
	ln -sf libgovrt.so.1 $(DESTDIR)$(PREFIX)/lib/libgovrt.so
	install -m 644 $(LIBGOVRT_A) $(DESTDIR)$(PREFIX)/lib/libgovrt.a
	install -d $(DESTDIR)$(PREFIX)/lib/gcc-plugin
	install -m 755 $(GOVINTERCEPT) $(DESTDIR)$(PREFIX)/lib/gcc-plugin/govintercept.so
	install -m 644 include/gov/*.h include/gov/*.def $(DESTDIR)$(PREFIX)/include/gov/
	sed -e 's|@PREFIX@|$(PREFIX)|g' runtime/govrt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/govrt.pc
	$(if $(INSTALL_PARTS),$(MAKE) $(INSTALL_PARTS))

clean:
	rm -rf $(B)

.PHONY: deps all test tests bench demo install clean
.DELETE_ON_ERROR:
-include $(shell find $(B) -name '*.d' 2>/dev/null)
