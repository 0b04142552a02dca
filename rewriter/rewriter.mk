# rewriter/rewriter.mk - govrewrite (the static binary rewriter), its engine
# (also linked into libgovrt, for rewriting in memory), govrt's half of the
# rewritten-module contract (runtime/rewritten.c), the tests and bench/rewrite.
# Included by the top Makefile. Debian packages: rewriter/deps.list.
GOVREWRITE      := $(B)/bin/govrewrite
GOVREWRITE_SRCS := rewriter/main.c rewriter/elfin.c rewriter/elfout.c rewriter/engine.c rewriter/insnlen.c
GOVREWRITE_OBJS := $(GOVREWRITE_SRCS:%.c=$(B)/obj/%.o)

RT_SRCS   += rewriter/engine.c rewriter/insnlen.c runtime/rewritten.c
LDLIBS_RT += -lcapstone -lgcc_s  # gcc_s: __register_frame (runtime/rewritten.c)

ALL_TARGETS += $(GOVREWRITE)

$(GOVREWRITE): $(GOVREWRITE_OBJS) $(B)/obj/runtime/syscalls.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lelf -ldw -lcapstone

# ---- tests -----------------------------------------------------------------
$(B)/tests/t_rewrite_engine.t: rewriter/engine.c rewriter/insnlen.c rewriter/engine.h
$(B)/tests/t_rewrite_engine.t: TEST_EXTRA_LIBS = rewriter/engine.c rewriter/insnlen.c -lcapstone -lelf

# ---- bench/rewrite -----------------------------------------------------------
BENCH_REWRITE      := $(B)/bench/rewrite
BENCH_REWRITE_LOOP := $(B)/bench/rewrite_loop
$(BENCH_REWRITE_LOOP): bench/rewrite/loop.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -o $@ $<
$(BENCH_REWRITE): bench/rewrite/main.c bench/common.c bench/common.h $(BENCH_REWRITE_LOOP) \
                  $(GOVREWRITE) $(LIBGOVRT_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DREWRITE_BUILD='"$(abspath $(B))"' -o $@ bench/rewrite/main.c bench/common.c
BENCHES += $(BENCH_REWRITE)

# ---- install -----------------------------------------------------------------
install-rewriter: $(GOVREWRITE)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(GOVREWRITE) $(DESTDIR)$(PREFIX)/bin/govrewrite
INSTALL_PARTS += install-rewriter
.PHONY: install-rewriter
