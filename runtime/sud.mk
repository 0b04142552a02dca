# runtime/sud.mk - exhaustive syscalls in govrt: Syscall User Dispatch
# (runtime/sud.c), lazy and load-time patching in memory with the rewriting
# engine (runtime/lazypatch.c; the engine and capstone come from
# rewriter/rewriter.mk), the tests tests/t_sud* and bench/sud.
# Included by the top Makefile. Debian packages: runtime/deps.list.
RT_SRCS += runtime/sud.c runtime/lazypatch.c

BENCH_SUD := $(B)/bench/sud
$(BENCH_SUD): bench/sud/main.c bench/common.c bench/common.h $(LIBGOVRT_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/sud/main.c \
	  bench/common.c $(BENCH_LINK) -lpthread
BENCHES += $(BENCH_SUD)

# LD_PRELOAD=libgovrt-preload.so: an empty library that needs libgovrt, so
# that libgovrt is loaded after the program's own libraries and therefore
# initialised before them: Syscall User Dispatch is on before any other
# library's constructor runs (preloading libgovrt.so itself initialises it
# after them).
GOVRT_PRELOAD := $(B)/lib/libgovrt-preload.so
$(GOVRT_PRELOAD): $(LIBGOVRT_SO)
	@mkdir -p $(dir $@)
	printf '/* empty: see runtime/sud.mk */\n' | $(CC) -shared -fPIC -x c -o $@ - \
	  -L$(B)/lib -Wl,--no-as-needed -lgovrt -Wl,-rpath,'$$ORIGIN'
ALL_TARGETS += $(GOVRT_PRELOAD)
