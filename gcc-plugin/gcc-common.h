/* gcc-plugin/gcc-common.h - the GCC headers govintercept needs, in the order
 * GCC wants them, and nothing else.
 *
 * Like the kernel's scripts/gcc-plugins/gcc-common.h, this is the one place
 * that knows which GCC we build against: the plugin is written for GCC 12
 * (Debian 12's gcc-12-plugin-dev); govintercept.cc refuses to build against
 * another major version and to load into another GCC
 * (plugin_default_version_check). Standard C++ and C
 * headers come first because GCC's system.h poisons some names they use.
 */
#ifndef GOV_GCC_COMMON_H
#define GOV_GCC_COMMON_H

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>
#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>
#include <sys/wait.h>

#include "gcc-plugin.h"
#include "tree.h"
#include "tree-pass.h"
#include "context.h"
#include "function.h"
#include "basic-block.h"
#include "cfghooks.h"
#include "cfgloop.h"
#include "gimple.h"
#include "gimple-iterator.h"
#include "gimple-pretty-print.h"
#include "tree-cfg.h"
#include "tree-eh.h"
#include "cgraph.h"
#include "varasm.h"
#include "stringpool.h"
#include "attribs.h"
#include "stor-layout.h"
#include "langhooks.h"
#include "diagnostic-core.h"
#include "builtins.h"
#include "file-prefix-map.h"
#include "ggc.h"
#include "fold-const.h"
#include "gimple-expr.h"
#include "print-tree.h"
#include "gimplify.h"
#include "tree-iterator.h"
#include "c-family/c-pragma.h"

#endif
