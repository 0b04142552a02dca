/* rewriter/static_blob.S - govrt-static (build/lib/govrt-static.so, see
 * runtime/static.mk) carried inside govrewrite, so a static output gets the
 * runtime of the govrewrite that wrote it and no file has to be found at
 * rewrite time. Not here: reading it (static.c). */
	.section .rodata
	.globl	govrt_static_blob
	.globl	govrt_static_blob_end
	.balign	4096
govrt_static_blob:
	.incbin	GOVRT_STATIC_BLOB
govrt_static_blob_end:
	.section .note.GNU-stack, "", @progbits
