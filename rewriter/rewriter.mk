# rewriter/rewriter.mk - govrewrite (the static binary rewriter), its engine
# (also linked into libgovrt, for rewriting in memory), govrt's half of the
# rewritten-module contract (runtime/rewritten.c), the tests and bench/rewrite.
# Included by the top Makefile. Debian packages: rewriter/deps.list.
GOVREWRITE      := $(B)/bin/govrewrite
GOVREWRITE_SRCS := rewriter/main.c rewriter/elfin.c rewriter/elfout.c rewriter/engine.c rewriter/insnlen.c
GOVREWRITE_OBJS := $(GOVREWRITE_SRCS:%.c=$(B)/obj/%.o)

RT_SRCS   += rewriter/engine.c rewriter/insnlen.c
LDLIBS_RT += -lcapstone

ALL_TARGETS += $(GOVREWRITE)

$(GOVREWRITE): $(GOVREWRITE_OBJS) $(B)/obj/runtime/syscalls.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lelf -ldw -lcapstone
RT_SRCS += runtime/rewritten.c

# ---- tests -----------------------------------------------------------------
$(B)/tests/t_rewrite_engine.t: rewriter/engine.c rewriter/insnlen.c rewriter/engine.h
$(B)/tests/t_rewrite_engine.t: TEST_EXTRA_LIBS = rewriter/engine.c rewriter/insnlen.c -lcapstone -lelf
