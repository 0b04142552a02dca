# gcc-plugin/plugin.mk - builds $(B)/lib/govintercept.so, the GCC plugin.
# Included by the top Makefile, which provides B and CC; needs Debian's
# gcc-12-plugin-dev (GCC's plugin headers under `$(CC) -print-file-name=plugin`).
GCC_PLUGIN_INC    := $(shell $(CC) -print-file-name=plugin)/include
GOVINTERCEPT      := $(B)/lib/govintercept.so
GOVINTERCEPT_SRCS := $(wildcard gcc-plugin/*.cc plugin-common/*.cc)
GOVINTERCEPT_OBJS := $(GOVINTERCEPT_SRCS:%.cc=$(B)/plugin/%.o)
# -Wno-format-diag: GCC's checker of its own diagnostic style
GOVINTERCEPT_CXXFLAGS := -std=gnu++17 -O2 -g -fPIC -fno-rtti -Wall -Wno-unused-parameter \
  -Wno-format-diag -I$(GCC_PLUGIN_INC) -Iinclude -Iplugin-common -MMD -MP

$(B)/plugin/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(GOVINTERCEPT_CXXFLAGS) -c $< -o $@
$(GOVINTERCEPT): $(GOVINTERCEPT_OBJS)
	@mkdir -p $(dir $@)
	$(CXX) -shared -o $@ $^
