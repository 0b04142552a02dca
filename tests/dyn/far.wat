;; tests/dyn/far.wat - fault injection at the far end of a wasm rule's guard
;; (rules/dynamic/wasm.c): a 64-bit load from the address args[0] (as a
;; 32-bit address) plus the offset 0xffffffff, so up to 8 GiB and 6 bytes
;; into the memory, the furthest a wasm32 load of 8 bytes reaches; it
;; emulates what it read. Written in the text format: C for wasm32 cannot
;; put such an offset into an access. wasm only (no eBPF twin).
(module
  (func $gov_ctx (result i32)
    i32.const 1024)
  (func $gov_rule (result i64)
    i32.const 0
    i32.const 0
    i64.load offset=1048 ;; the context's args[0]
    i32.wrap_i64
    i64.load offset=4294967295
    i64.store offset=1120 ;; its value
    i64.const 3) ;; GOV_DYN_EMULATE
  (memory 2)
  (export "memory" (memory 0))
  (export "gov_ctx" (func $gov_ctx))
  (export "gov_rule" (func $gov_rule)))
