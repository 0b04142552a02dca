# runtime/static.mk - govrt-static (runtime/static/): the freestanding,
# position-independent govrt a static executable rewritten by govrewrite
# carries inside, built as one blob (build/lib/govrt-static.so, linked at 0)
# and embedded in govrewrite (rewriter/static_blob.S). The shared runtime
# sources it speaks the protocol with are compiled here again, freestanding.
# Included by the top Makefile. Test: tests/t_rewrite_static.sh.
GOVRT_STATIC      := $(B)/lib/govrt-static.so
GOVRT_STATIC_SRCS := runtime/static/govrt_static.c runtime/static/shim.c runtime/hello.c $(RT_SHARED)
GOVRT_STATIC_OBJS := $(GOVRT_STATIC_SRCS:%.c=$(B)/static/%.o) $(B)/static/runtime/static/start.o
# No libc, no TLS (%fs is the program's), no stack protector (it reads
# %fs), no SSE (the trampolines save xmm0-15 only). govrewrite writes
# .bss out as zeros (rewriter/static.c).
GOVRT_STATIC_CFLAGS := $(CFLAGS) -ffreestanding -fno-builtin -fPIC -fvisibility=hidden \
	-fno-stack-protector -mgeneral-regs-only \
	-fno-asynchronous-unwind-tables -fcf-protection=none -U_FORTIFY_SOURCE \
	-fno-tree-loop-distribute-patterns -Iruntime/static

$(B)/static/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GOVRT_STATIC_CFLAGS) -c $< -o $@
$(B)/static/runtime/static/start.o: runtime/static/start.S
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

# Every symbol local, bound at link time: the only relocations left are
# R_X86_64_RELATIVE, which govrt-static applies to itself at start.
$(B)/static/local.map:
	@mkdir -p $(dir $@)
	printf '{ local: *; };\n' >$@
$(GOVRT_STATIC): $(GOVRT_STATIC_OBJS) $(B)/static/local.map
	@mkdir -p $(dir $@)
	$(CC) -nostdlib -shared -Wl,-Bsymbolic -Wl,-z,noseparate-code -Wl,-z,norelro \
	  -Wl,-z,noexecstack -Wl,--hash-style=gnu -Wl,-e,govrt_static_start \
	  -Wl,--version-script=$(B)/static/local.map -o $@.tmp $(GOVRT_STATIC_OBJS)
	@if readelf -rW $@.tmp | grep -E '^[0-9a-f]+ +[0-9a-f]+ R_X86_64_' | grep -v R_X86_64_RELATIVE; then \
	  echo "$@: relocations other than R_X86_64_RELATIVE (above): govrt-static must bind everything itself" >&2; \
	  rm -f $@.tmp; exit 1; fi
	@if [ "$$(readelf -lW $@.tmp | grep -c '^ *LOAD')" -gt 4 ] || readelf -lW $@.tmp | grep -q '^ *INTERP'; then \
	  echo "$@: more than 4 PT_LOADs or an interpreter: not a blob govrewrite can place" >&2; \
	  rm -f $@.tmp; exit 1; fi
	mv $@.tmp $@

# govrewrite carries the blob (rewriter/static.c reads it)
$(B)/obj/rewriter/static_blob.o: rewriter/static_blob.S $(GOVRT_STATIC)
	@mkdir -p $(dir $@)
	$(CC) -c -DGOVRT_STATIC_BLOB='"$(GOVRT_STATIC)"' $< -o $@
$(GOVREWRITE): $(B)/obj/rewriter/static.o $(B)/obj/rewriter/static_blob.o

ALL_TARGETS += $(GOVRT_STATIC)
# the handshake, shared with libgovrt's channel.c
RT_SRCS += runtime/hello.c

# bench/rewrite's getppid loop linked statically: its rewritten copy
# carries govrt-static (one more row in the hook table)
BENCH_REWRITE_LOOP_STATIC := $(B)/bench/rewrite_loop_static
$(BENCH_REWRITE_LOOP_STATIC): bench/rewrite/loop.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -o $@ $<
$(BENCH_REWRITE): $(BENCH_REWRITE_LOOP_STATIC)
