# rewriter/rewriter.mk - govrewrite (the static binary rewriter), its engine
# (also linked into libgovrt, for rewriting in memory), govrt's half of the
# rewritten-module contract (runtime/rewritten.c), the tests and bench/rewrite.
# Included by the top Makefile. Debian packages: rewriter/deps.list.
RT_SRCS   += rewriter/engine.c
LDLIBS_RT += -lcapstone
