# The compile step's kernel library, libkernels.a: ternary formats (I2_S, TQ1_0, TQ2_0, Q8_0,
# Q8_K) with scalar references, one kernel set per instruction set (kernels/<isa>/*.c, each
# compiled with its own -m flags; everything else stays at the baseline target so run-time
# dispatch is safe), CPU detection, the self-test, the thread pool and the matmul drivers.
# Also the bitnet-kernels tool (--info, --self-test, --bench).

#= KERNEL_ISA: kernel instruction sets to build: auto (every set for this machine's architecture), ref (scalar only), or a list such as "avx2 avx512"
KERNEL_ISA ?= auto
KERNEL_ISAS_x86_64 := avx2 avx512 avx512vnni
KERNEL_ISAS_arm64 := neon dotprod

KERN_FLAGS_avx2 := -mavx2 -mf16c
KERN_FLAGS_avx512 := -mavx2 -mf16c -mavx512f -mavx512bw -mavx512vl
KERN_FLAGS_avx512vnni := $(KERN_FLAGS_avx512) -mavx512vnni
KERN_FLAGS_neon := -march=armv8-a
KERN_FLAGS_dotprod := -march=armv8.2-a+dotprod
KERN_DEF_avx2 := -DKERN_HAVE_AVX2
KERN_DEF_avx512 := -DKERN_HAVE_AVX512
KERN_DEF_avx512vnni := -DKERN_HAVE_AVX512VNNI
KERN_DEF_neon := -DKERN_HAVE_NEON
KERN_DEF_dotprod := -DKERN_HAVE_DOTPROD

# A C snippet per set that the compiler must accept with the set's flags (probed once per
# compiler, cached in $(KERN_PROBE)).
KERN_PROBE_avx2 := \#include <immintrin.h>\nint f(void){return _mm256_extract_epi32(_mm256_maddubs_epi16(_mm256_set1_epi8(1),_mm256_set1_epi8(2)),0)+(int)_cvtsh_ss(0);}
KERN_PROBE_avx512 := \#include <immintrin.h>\nint f(void){return _mm512_reduce_add_epi32(_mm512_maddubs_epi16(_mm512_set1_epi8(1),_mm512_set1_epi8(2)));}
KERN_PROBE_avx512vnni := \#include <immintrin.h>\nint f(void){return _mm512_reduce_add_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(),_mm512_set1_epi8(1),_mm512_set1_epi8(2)));}
KERN_PROBE_neon := \#include <arm_neon.h>\nint f(void){return vaddvq_s32(vdupq_n_s32(1));}
KERN_PROBE_dotprod := \#include <arm_neon.h>\nint f(void){return vaddvq_s32(vdotq_s32(vdupq_n_s32(0),vdupq_n_s8(1),vdupq_n_s8(2)));}

KERN_CANDIDATES := $(if $(filter auto,$(KERNEL_ISA)),$(KERNEL_ISAS_$(HOST_ARCH)),$(filter-out ref,$(KERNEL_ISA)))
# the AVX-512 sets reuse the AVX2 activation quantizer and TQ kernels
KERN_NEEDS_avx512 := avx2
KERN_NEEDS_avx512vnni := avx2
KERN_CANDIDATES := $(sort $(KERN_CANDIDATES) $(foreach i,$(KERN_CANDIDATES),$(KERN_NEEDS_$(i))))
KERN_UNKNOWN := $(filter-out $(KERNEL_ISAS_$(HOST_ARCH)),$(KERN_CANDIDATES))
ifneq ($(KERN_UNKNOWN),)
$(error KERNEL_ISA: '$(KERN_UNKNOWN)' cannot be built on $(HOST_ARCH); choose from: auto ref $(KERNEL_ISAS_$(HOST_ARCH)))
endif

KERN_PROBE := $(BUILD)/kernels/probe-$(subst /,_,$(CC)).mk
ifneq ($(KERN_CANDIDATES),)
-include $(KERN_PROBE)
endif
$(KERN_PROBE): mk/kernels.mk
	@mkdir -p $(@D)
	$(Q): > $@.tmp; \
	$(foreach i,$(KERNEL_ISAS_$(HOST_ARCH)),if printf '$(KERN_PROBE_$(i))\n' | $(CC) $(KERN_FLAGS_$(i)) -x c -c -o /dev/null - >/dev/null 2>&1; then echo 'KERN_OK_$(i) := 1' >> $@.tmp; else echo '$(CC) cannot build the $(i) kernels (flags $(KERN_FLAGS_$(i))); they are left out' >&2; fi;) \
	mv $@.tmp $@

# The sets this build contains: requested, written for this architecture, accepted by the compiler.
KERN_ISAS := $(foreach i,$(KERN_CANDIDATES),$(if $(KERN_OK_$(i)),$(if $(wildcard kernels/$(i)/*.c),$(i))))

KERNEL_REF_SRCS := kernels/i2s_ref.c kernels/tq_ref.c kernels/q8_0_ref.c
KERNEL_CORE_SRCS := kernels/cpu.c kernels/pool.c kernels/kernels.c
KERN_ISA_SRCS = $(sort $(wildcard kernels/$(1)/*.c))

# Kernels must round exactly like their references: no fused multiply-add contraction.
KERNEL_CFLAGS := -ffp-contract=off
$(foreach i,$(KERN_ISAS),$(call compile-rules,$(call KERN_ISA_SRCS,$(i)),$(KERNEL_CFLAGS) $(KERN_FLAGS_$(i))))
$(call compile-rules,kernels/kernels.c,$(KERNEL_CFLAGS) $(foreach i,$(KERN_ISAS),$(KERN_DEF_$(i))))
$(call add-lib,kernels,$(KERNEL_REF_SRCS) $(KERNEL_CORE_SRCS) $(foreach i,$(KERN_ISAS),$(call KERN_ISA_SRCS,$(i))),$(KERNEL_CFLAGS))

# ---- bitnet-kernels: --info, --self-test, --bench ----------------------------------------------
$(call add-tool,bitnet-kernels,$(sort $(wildcard tools/bitnet-kernels/*.c)),$(LIBDIR)/libkernels.a $(LIB_common),$(COMMON_LDLIBS))

COMPILE_TARGETS += $(LIBDIR)/libkernels.a $(BIN)/bitnet-kernels
TEST_ARCHIVES += $(LIBDIR)/libkernels.a
TEST_DEPS += $(BIN)/bitnet-kernels

# ---- the AArch64 checker: the NEON and dotprod sets cross-compiled (static) with the scalar
# references, run under qemu-aarch64 by tests/cli/kernels_neon_test.c ---------------------------
AARCH64_CC ?= aarch64-linux-gnu-gcc
A64 := $(BUILD)/aarch64
A64_CFLAGS := -std=c11 -O2 -g $(WARNINGS) $(KERNEL_CFLAGS) -D_GNU_SOURCE -Itools/common -Ikernels
A64_SRCS := $(KERNEL_REF_SRCS) kernels/cpu.c kernels/pool.c tools/common/bn_err.c tools/common/bn_util.c \
	tests/neon/kernels_check.c
A64_NEON_SRCS := $(sort $(wildcard kernels/neon/*.c))
A64_DOT_SRCS := $(sort $(wildcard kernels/dotprod/*.c))
a64-obj = $(patsubst %.c,$(A64)/obj/%.o,$(1))
a64-compile = $(call stamped,$(call a64-obj,$(1)),$(1),,$(AARCH64_CC) $(A64_CFLAGS) $(2) -MMD -MP -c $(1) -o $(call a64-obj,$(1)),--log $(LOG_DIR)/compile.log)
$(foreach s,$(A64_SRCS) $(A64_NEON_SRCS),$(call a64-compile,$(s),-march=armv8-a))
$(foreach s,$(A64_DOT_SRCS),$(call a64-compile,$(s),-march=armv8.2-a+dotprod))
$(call a64-compile,kernels/kernels.c,-march=armv8-a -DKERN_HAVE_NEON -DKERN_HAVE_DOTPROD)
A64_OBJS := $(call a64-obj,$(A64_SRCS) $(A64_NEON_SRCS) $(A64_DOT_SRCS) kernels/kernels.c)
$(call stamped,$(A64)/kernels-check,$(A64_OBJS),,$(AARCH64_CC) -static -o $(A64)/kernels-check.tmp $(A64_OBJS) -lm -lpthread && mv $(A64)/kernels-check.tmp $(A64)/kernels-check,--log $(LOG_DIR)/compile.log --title '  LD      $(A64)/kernels-check')
-include $(A64_OBJS:.o=.d)
TEST_DEPS += $(A64)/kernels-check

# ---- bench-kernels: read bandwidth, then I2_S GEMV hot/cold and 64-token GEMM per model shape
# and TQ GEMV, each with anchors.md's reference figure and the bandwidth floor as ratios ---------
## bench-kernels: kernel speed vs the reference kernels (anchors.md) and this machine's bandwidth floor
.PHONY: bench-kernels
bench-kernels: $(BIN)/bitnet-kernels
	@mkdir -p $(LOG_DIR)
	@echo '>>> bench kernels (about 2 minutes; output also in $(LOG_DIR)/bench-kernels.log)'
	$(Q)$(BIN)/bitnet-kernels --bench | tee $(LOG_DIR)/bench-kernels.log.tmp && mv $(LOG_DIR)/bench-kernels.log.tmp $(LOG_DIR)/bench-kernels.log
BENCH_TARGETS += bench-kernels

# A stand-in reference library for the tests of --bench --ref-lib (our scalar kernel behind the
# release's ggml_vec_dot_i2_i8_s interface).
KERN_FAKE_REF := $(BUILD)/tests/libref-vec-dot.so
$(call stamped,$(KERN_FAKE_REF),tests/shims/ref_vec_dot.c kernels/i2s_ref.c kernels/i2s.h,,$(CC) $(BASE_CFLAGS) $(BASE_LDFLAGS) -fPIC -shared -o $(KERN_FAKE_REF).tmp tests/shims/ref_vec_dot.c kernels/i2s_ref.c -lm && mv $(KERN_FAKE_REF).tmp $(KERN_FAKE_REF),--log $(LOG_DIR)/compile.log --title '  LD      $(KERN_FAKE_REF)')
TEST_DEPS += $(KERN_FAKE_REF)
