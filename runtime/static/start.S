/* runtime/static/start.S - govrt-static's two pieces of machine code: the
 * entry govrewrite makes a static output's e_entry, and the bare thread
 * start of its watcher. Not here: anything that can be C
 * (govrt_static.c). */
	.text

/* The kernel starts us with rsp at argc (16-aligned) and rdx = 0 (no
 * rtld fini for a static program). govrt_static_init(sp) returns the
 * program's entry; we go there with rsp and rdx exactly as they were. */
	.globl	govrt_static_start
	.hidden	govrt_static_start
	.type	govrt_static_start, @function
govrt_static_start:
	mov	%rsp, %rdi
	push	%rdx
	push	%rdx
	call	govrt_static_init
	pop	%rdx
	pop	%rdx
	xor	%ecx, %ecx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	jmp	*%rax
	.size	govrt_static_start, . - govrt_static_start

/* long govrt_static_clone(flags, stack_top, fn, arg): a thread of the
 * process without TLS that runs fn(arg) on stack_top and then exits
 * (the thread only: SYS_exit). Returns the tid or -errno. */
	.globl	govrt_static_clone
	.hidden	govrt_static_clone
	.type	govrt_static_clone, @function
govrt_static_clone:
	sub	$16, %rsi
	mov	%rdx, (%rsi)
	mov	%rcx, 8(%rsi)
	mov	$56, %eax		/* SYS_clone */
	xor	%edx, %edx
	xor	%r10d, %r10d
	xor	%r8d, %r8d
	syscall
	test	%rax, %rax
	jnz	1f
	pop	%rax
	pop	%rdi
	call	*%rax
	mov	$60, %eax		/* SYS_exit */
	xor	%edi, %edi
	syscall
	hlt
1:	ret
	.size	govrt_static_clone, . - govrt_static_clone

	.section .note.GNU-stack, "", @progbits
