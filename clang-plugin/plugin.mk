# clang-plugin/plugin.mk - builds $(B)/lib/govintercept-llvm.so (the clang/LLVM
# plugin) and $(B)/bin/govexports (a header's functions as an export list).
# Included by the top Makefile; needs Debian's llvm-dev, libclang-dev and
# clang (clang-plugin/deps.list).
LLVM_CONFIG        ?= llvm-config
GOVLLVM            := $(B)/lib/govintercept-llvm.so
GOVEXPORTS         := $(B)/bin/govexports
GOVLLVM_SRCS       := $(wildcard clang-plugin/*.cc plugin-common/*.cc)
GOVLLVM_OBJS       := $(GOVLLVM_SRCS:%.cc=$(B)/clang-plugin/%.o)
GOVLLVM_CXXFLAGS   := $(shell $(LLVM_CONFIG) --cxxflags 2>/dev/null) -std=gnu++17 -O2 -g -fPIC \
  -fno-rtti -Wall -Wno-unused-parameter -Iinclude -Iplugin-common -MMD -MP
LIBCLANG_DIR       := $(shell $(LLVM_CONFIG) --libdir 2>/dev/null)

ALL_TARGETS += $(GOVLLVM) $(GOVEXPORTS)
INSTALL_PARTS += install-clang-plugin

$(B)/clang-plugin/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(GOVLLVM_CXXFLAGS) -c $< -o $@
# no clang or LLVM library linked in: cc1 provides them when it loads us
$(GOVLLVM): $(GOVLLVM_OBJS)
	@mkdir -p $(dir $@)
	$(CXX) -shared -o $@ $^

$(GOVEXPORTS): clang-plugin/govexports.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -I$(shell $(LLVM_CONFIG) --includedir 2>/dev/null) $< -o $@ \
	  -L$(LIBCLANG_DIR) -Wl,-rpath,$(LIBCLANG_DIR) -lclang

-include $(GOVLLVM_OBJS:.o=.d)

# bench/sites measures both plugins; t_clang_bzip2.sh prepares its builds
$(B)/bench/sites: $(GOVLLVM)

# make install: the plugin next to the GCC one, govexports with the tools
install-clang-plugin: $(GOVLLVM) $(GOVEXPORTS)
	install -d $(DESTDIR)$(PREFIX)/lib/clang-plugin $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(GOVLLVM) $(DESTDIR)$(PREFIX)/lib/clang-plugin/govintercept-llvm.so
	install -m 755 $(GOVEXPORTS) $(DESTDIR)$(PREFIX)/bin/govexports
.PHONY: install-clang-plugin
