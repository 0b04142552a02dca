;; tests/dyn/recurse.wat - fault injection: recursion as deep as args[0]
;; asks, through two functions calling each other; it emulates the depth
;; reached. Deep enough, wasm2c's call-depth counter traps (stack
;; exhausted): a module whose calls can cycle keeps it (rules/dynamic/
;; wasm.c). wasm only (no eBPF twin: the verifier refuses recursion).
(module
  (func $even (param i64) (result i64)
    local.get 0
    i64.eqz
    if (result i64)
      i64.const 0
    else
      local.get 0
      i64.const 1
      i64.sub
      call $odd
      i64.const 1
      i64.add
    end)
  (func $odd (param i64) (result i64)
    local.get 0
    i64.eqz
    if (result i64)
      i64.const 0
    else
      local.get 0
      i64.const 1
      i64.sub
      call $even
      i64.const 1
      i64.add
    end)
  (func $gov_ctx (result i32)
    i32.const 1024)
  (func $gov_rule (result i64)
    i32.const 0
    i32.const 0
    i64.load offset=1048 ;; the context's args[0]
    call $even
    i64.store offset=1120 ;; its value
    i64.const 3) ;; GOV_DYN_EMULATE
  (memory 2)
  (export "memory" (memory 0))
  (export "gov_ctx" (func $gov_ctx))
  (export "gov_rule" (func $gov_rule)))
