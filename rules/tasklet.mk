# rules/tasklet.mk - govrt_tasklet_schedule (docs/tasklet.md): the library
# call in govrt (runtime/tasklet.c) and its test. The agent's side, the
# queues, is runtime/agent/tasklet.c (built by rules/cfs.mk).
RT_SRCS += runtime/tasklet.c

# the scheduled functions live in the test executable
$(B)/tests/t_tasklet_schedule.t: TEST_EXTRA_LIBS = -rdynamic

# the tasklet rule as a dynamic rule, in both modes, built from
# rules/tasklet/tasklet.c at run time; tr_work lives in the test executable
$(B)/tests/t_tasklet_rule.t: TEST_EXTRA_LIBS = -rdynamic $(DYN_TEST_FLAGS)

# a DEFER of another resource's function, forwarded to its agent on every
# protocol; DEFER frames spoken by hand use the xcall frame codec
# (xcall_io.o, in the test support library)
$(B)/tests/t_tasklet_forward.t: TEST_EXTRA_LIBS = -rdynamic $(DYN_TEST_FLAGS) -lm
$(B)/tests/t_tasklet_forward.t: runtime/xcall_io.h include/gov/xcall.h

# a forwarded CALL of a function the callee's tasklets: list, queued by
# the callee's agent; tk_work lives in the test executable
$(B)/tests/t_tasklet_callee.t: TEST_EXTRA_LIBS = -rdynamic

# govctl tasklet list|flush|disable|enable and bad tasklet settings;
# tc_slow lives in the test executable
$(B)/tests/t_tasklet_control.t: TEST_EXTRA_LIBS = -rdynamic

# a dynamic rule's FORWARD and NATIVE_ARGS answered by the agent
# (tests/dyn/fwd.c, built at run time); df_work lives in the test executable
$(B)/tests/t_forward_rule.t: TEST_EXTRA_LIBS = -rdynamic $(DYN_TEST_FLAGS)
