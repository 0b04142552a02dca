/* rules/dynamic/wasm_trap.h - given to every file of a wasm rule's shared
 * object with -include, before wasm2c's headers: wasm-rt-impl.c calls
 * gov_wasm_trap on a trap (WASM_RT_TRAP_HANDLER) and wasm_glue.c defines
 * it; and wasm2c's call-depth counter, a plain global in wabt, is made a
 * per-thread one here, because threads run their own instances of one
 * module at the same time (wasm.c). Not the glue itself (wasm_glue.c). */
#include <stdint.h>
void gov_wasm_trap(int code) __attribute__((noreturn));

/* wasm-rt.h declares `extern uint32_t wasm_rt_call_stack_depth;` and
 * wasm-rt-impl.c defines it; through this macro both become declarations
 * of the (internal) function below, and every use reaches the thread's own
 * counter. initial-exec: no __tls_get_addr on every wasm call (a dlopen'ed
 * object takes 4 bytes of the static TLS surplus for it). */
extern __thread uint32_t gov_wasm_depth_ __attribute__((tls_model("initial-exec"), visibility("hidden")));
static inline __attribute__((always_inline)) uint32_t *gov_wasm_depth_p(void)
{
	return &gov_wasm_depth_;
}
#if WASM_RT_USE_STACK_DEPTH_COUNT /* wasm.c leaves it out where it cannot trap */
#define wasm_rt_call_stack_depth (*gov_wasm_depth_p())
#endif
