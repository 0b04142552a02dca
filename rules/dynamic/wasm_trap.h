/* rules/dynamic/wasm_trap.h - given to every file of a wasm rule's shared
 * object with -include: wasm-rt-impl.c calls this on a trap
 * (WASM_RT_TRAP_HANDLER) and wasm_glue.c defines it. */
void gov_wasm_trap(int code) __attribute__((noreturn));
