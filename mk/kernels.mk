# The kernel library: ternary formats (I2_S, TQ1_0, TQ2_0, Q8_0, Q8_K) with scalar references.
KERNEL_REF_SRCS := kernels/i2s_ref.c kernels/tq_ref.c kernels/q8_0_ref.c
KERNEL_SRCS := $(KERNEL_REF_SRCS)

# Kernels must round exactly like their references: no fused multiply-add contraction.
KERNEL_CFLAGS := -ffp-contract=off
$(call add-lib,kernels,$(KERNEL_SRCS),$(KERNEL_CFLAGS))

TEST_ARCHIVES += $(LIBDIR)/libkernels.a
