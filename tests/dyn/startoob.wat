;; tests/dyn/startoob.wat - fault injection while an instance is made: the
;; module's start function reads far out of its memory, so making the
;; thread's instance traps (in the host's guard, before the rule is ever
;; the running one) and the load is refused. wasm only (no eBPF twin).
(module
  (func $start
    i32.const 0
    i64.load offset=0x80000000
    drop)
  (func $gov_ctx (result i32)
    i32.const 1024)
  (func $gov_rule (result i64)
    i64.const 1) ;; GOV_DYN_NATIVE
  (memory 2)
  (start $start)
  (export "memory" (memory 0))
  (export "gov_ctx" (func $gov_ctx))
  (export "gov_rule" (func $gov_rule)))
