/* rules/dynamic/build.h - turning a rule's C source into the object its
 * mode loads (clang), and running the toolchain's commands. Used by govctl
 * at publish, by govagent for rules read from a file, and by wasm.c to
 * translate a module (wasm2c, cc). Not the loading itself (bpf.c, wasm.c). */
#ifndef GOV_RULES_DYN_BUILD_H
#define GOV_RULES_DYN_BUILD_H

#include <stddef.h>

/* Runs argv (no shell), its stderr captured. Returns 0 if it exited 0;
 * else -1 with "argv[0]: first lines of its stderr" in err. */
int gov_dyn_cmd(char *const argv[], char *err, size_t errlen);

/* Compiles the C file src for mode (GOV_DYN_EBPF or _WASM) into a malloc'ed
 * object (*obj, *len). Returns 0, or -1 with the compiler's reason. */
int gov_dyn_compile(int mode, const char *src, void **obj, size_t *len,
		    char *err, size_t errlen);

/* Reads a whole file into a malloc'ed buffer. */
int gov_dyn_read(const char *path, void **buf, size_t *len, char *err, size_t errlen);

/* A private directory for caches and scratch files: GOV_CACHE_DIR, else
 * $XDG_CACHE_HOME/rhodes, else ~/.cache/rhodes; created if missing. */
int gov_dyn_cache_dir(char *buf, size_t len, char *err, size_t errlen);

#endif
