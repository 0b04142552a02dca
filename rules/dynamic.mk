# rules/dynamic.mk - dynamic rules (issue 8): the host runtime in govrt,
# govagent and govctl; rule objects built from rules/*/*.c and tests/dyn/*.c
# in both modes; their tests and benchmarks.

DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
# librte_bpf is dlopen'ed: only its headers are needed to build
DYN_RT_SRCS := rules/dynamic/dynrt.c rules/dynamic/bpf.c
RT_SRCS += $(DYN_RT_SRCS) runtime/dynrule.c
LDLIBS_RT += -ldl
$(B)/pic/rules/dynamic/bpf.o $(B)/obj/rules/dynamic/bpf.o: override CFLAGS += $(DPDK_CFLAGS) -Wno-pedantic

DYN_HOST_SRCS := $(DYN_RT_SRCS) rules/dynamic/wasm.c rules/dynamic/build.c
DYN_HOST_OBJS := $(DYN_HOST_SRCS:%.c=$(B)/obj/%.o)
$(GOVAGENT): $(DYN_HOST_OBJS)
$(GOVCTL): $(DYN_HOST_OBJS)
$(B)/obj/rules/dynamic/wasm.o $(B)/obj/rules/dynamic/build.o: override CFLAGS += \
	-DGOV_WASM_GLUE_DIR='"$(abspath rules/dynamic)"' -DGOV_INCLUDE_DIR='"$(abspath include)"' \
	-Wno-format-truncation

# Rule objects: NAME.bpf.o (eBPF) and NAME.wasm (wasm) for every rule source.
BPF_CC  := clang -O2 -g0 -ffreestanding -target bpf -Iinclude -Wall -Werror -c
WASM_CC := clang -O2 -ffreestanding --target=wasm32 -nostdlib -Wl,--no-entry -Iinclude -Wall -Werror
DYN_RULE_SRCS := $(filter-out rules/dynamic/%,$(wildcard rules/*/*.c)) $(wildcard tests/dyn/*.c)
DYN_OBJS := $(DYN_RULE_SRCS:%.c=$(B)/dyn/%.bpf.o) $(DYN_RULE_SRCS:%.c=$(B)/dyn/%.wasm)
# clang writes what each object includes (tests/dyn/deny_full.c includes
# rules/deny/deny.c) to NAME.d, which the Makefile includes
$(B)/dyn/%.bpf.o: %.c include/gov/dynrule.h
	@mkdir -p $(dir $@)
	$(BPF_CC) -MMD -MP -MF $@.d -MT $@ $< -o $@
$(B)/dyn/%.wasm: %.c include/gov/dynrule.h
	@mkdir -p $(dir $@)
	$(WASM_CC) -MMD -MP -MF $@.d -MT $@ $< -o $@
# wasm test modules written in the text format (what C cannot express)
DYN_WAT_SRCS := $(wildcard tests/dyn/*.wat)
DYN_OBJS += $(DYN_WAT_SRCS:%.wat=$(B)/dyn/%.wasm)
$(B)/dyn/%.wasm: %.wat
	@mkdir -p $(dir $@)
	wat2wasm $< -o $@
ALL_TARGETS += $(DYN_OBJS)

DYN_TEST_FLAGS := -DDYN_OBJS='"$(abspath $(B))/dyn"' -DDYN_TOP='"$(abspath .)"'
$(filter $(B)/tests/t_dyn_%,$(TESTS)): $(DYN_HOST_OBJS) $(DYN_OBJS)
$(B)/tests/t_dyn_%.t: TEST_EXTRA_LIBS = $(DYN_HOST_OBJS) -ldl $(DYN_TEST_FLAGS)
$(GOVAGENT): $(B)/obj/runtime/agent/dyn.o

BENCH_RULES := $(B)/bench/rules
$(BENCH_RULES): bench/rules/main.c bench/common.c bench/common.h rules/deny/deny.c $(DYN_HOST_OBJS) \
                $(DYN_OBJS) $(LIBGOVRT_SO) $(GOVAGENT) $(GOVCTL)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_FLAGS) -DGOVCTL_PATH='"$(abspath $(GOVCTL))"' $(DYN_TEST_FLAGS) -o $@ bench/rules/main.c \
	  bench/common.c $(DYN_HOST_OBJS) $(RT_SHARED) $(BENCH_LINK) -ldl -lpthread
BENCHES += $(BENCH_RULES)
# tests/t_bench_rules.sh runs it (its options, a short run)
tests: $(BENCH_RULES)

# wasm rules are compiled with these two files (GOV_WASM_GLUE_DIR points an
# installed govagent or govctl at them) and the headers rules include
install-dynrules:
	install -d $(DESTDIR)$(PREFIX)/share/rhodes
	install -m 644 rules/dynamic/wasm_glue.c rules/dynamic/wasm_trap.h $(DESTDIR)$(PREFIX)/share/rhodes/
INSTALL_PARTS += install-dynrules
.PHONY: install-dynrules
