# lutgen: TL1/TL2 lookup-table kernels generated from a model's real weight shapes, the TL
# packing (tools/common/lut_pack.c, in libcommon) and the TL runtime (kernels/lut/, liblut.a).
# The templates of the generated header are compiled into lutgen (tools/lutgen/emit.c .incbin's
# them), so they are prerequisites of that object.

LUTGEN_SRCS := $(sort $(wildcard tools/lutgen/*.c))
LUTGEN_TMPLS := $(sort $(wildcard tools/lutgen/tmpl/*.h.in))
$(call add-tool,lutgen,$(LUTGEN_SRCS),$(LIB_common),$(COMMON_LDLIBS))
$(call obj-of,tools/lutgen/emit.c): $(LUTGEN_TMPLS)

# The TL runtime: model-independent driver around the generated kernels, and the scalar oracle.
LUT_RT_SRCS := kernels/lut/lut_runtime.c kernels/lut/lut_ref.c
$(call add-lib,lut,$(LUT_RT_SRCS))

# ---- kernel tests ----------------------------------------------------------------------------
# Each case generates one header with lutgen and builds its harnesses once (rebuilt only when
# lutgen, the templates or the harness sources change); tests/unit/lut_kernels_test.c runs them,
# TL1 under qemu-aarch64.  Harnesses: tests/lut/harness.c (bitmake's mode: lut_gemm vs the scalar
# reference) and tests/lut/ggml_harness.c (the bitnet.cpp drop-in mode, driven as ggml.c does).
LUT_TEST_DIR := $(BUILD)/tests/lut
LUT_HARNESS_SRCS := tools/common/lut_params.c tools/common/lut_pack.c tools/common/bn_err.c \
	tools/common/bn_util.c tools/common/gguf.c tools/common/bn_file.c $(LUT_RT_SRCS)
LUT_HARNESS_DEPS := $(LUT_HARNESS_SRCS) tests/lut/harness_util.h tests/lut/mock/ggml-bitnet.h \
	kernels/lut/lut.h tools/common/lut_params.h tools/common/lut_pack.h tools/common/bn_err.h \
	tools/common/bn_util.h tools/common/gguf.h tools/common/bn_file.h
LUT_INC := -D_GNU_SOURCE -Itools/common -Ikernels -Itests/lut
# gcc's -Wformat-truncation flags a shared helper (bn_err.c) at -O2; clang does not know the flag.
LUT_GCC_QUIET := -Wno-format-truncation
LUT_CC_tl2 = $(CC) $(CSTD) -O2 -mavx2 $(WARNINGS) $(if $(findstring gcc,$(CC)),$(LUT_GCC_QUIET))
LUT_CC_tl1 := aarch64-linux-gnu-gcc $(CSTD) -O2 -static $(WARNINGS) $(LUT_GCC_QUIET)
LUT_CXX := $(or $(call find-prog,clang++),$(call find-prog,g++))
LUT_CASES :=
# The support code every harness links: natively the project's own objects (built for libcommon
# and liblut anyway; linked with SAN_FLAGS as they were compiled), for aarch64 one archive
# compiled once; only harness.c / ggml_harness.c and the generated header are per case.
LUT_SUPPORT_tl2 := $(call obj-of,$(LUT_HARNESS_SRCS))
LUT_LINK_tl2 = $(SAN_FLAGS)
LUT_A64 := $(LUT_TEST_DIR)/aarch64
LUT_SUPPORT_tl1 := $(LUT_A64)/libsupport.a
$(call stamped,$(LUT_SUPPORT_tl1),$(LUT_HARNESS_DEPS),$(BUILD)/preflight-test.ok,mkdir -p $(LUT_A64)/o && $(foreach f,$(LUT_HARNESS_SRCS),$(LUT_CC_tl1) $(LUT_INC) -c $(f) -o $(LUT_A64)/o/$(notdir $(f:.c=.o)) &&) rm -f $(LUT_SUPPORT_tl1).tmp && aarch64-linux-gnu-ar rcs $(LUT_SUPPORT_tl1).tmp $(foreach f,$(LUT_HARNESS_SRCS),$(LUT_A64)/o/$(notdir $(f:.c=.o))) && mv $(LUT_SUPPORT_tl1).tmp $(LUT_SUPPORT_tl1),--log $(LOG_DIR)/compile.log --title '  AR      $(LUT_SUPPORT_tl1)')

# $(call lut-case,NAME,QUANT,EXTRA PREREQS,DROP-IN HARNESS: c | c+cxx | empty); lutgen's arguments
# are in lutcase.NAME (they contain commas).
lut-dir = $(LUT_TEST_DIR)/$(1)
define lut-case-rules
LUT_CASES += $(1)
$$(call stamped,$(lut-dir)/bitnet-lut-kernels.h,$(BIN)/lutgen $(4),,$(BIN)/lutgen -q --quant $(2) $$(lutcase.$(1)) --outdir $(lut-dir) >/dev/null,--log $(LOG_DIR)/compile.log --title '  GEN     $(lut-dir)/bitnet-lut-kernels.h')
$$(call stamped,$(lut-dir)/harness,$(lut-dir)/bitnet-lut-kernels.h tests/lut/harness.c $(LUT_HARNESS_DEPS) $(LUT_SUPPORT_$(2)),$(BUILD)/preflight-test.ok,$(LUT_CC_$(2)) $(LUT_INC) -I$(lut-dir) -o $(lut-dir)/harness.tmp tests/lut/harness.c $(LUT_SUPPORT_$(2)) $$(LUT_LINK_$(2)) -lm && mv $(lut-dir)/harness.tmp $(lut-dir)/harness,--log $(LOG_DIR)/compile.log --title '  CC      $(lut-dir)/harness')
TEST_DEPS += $(lut-dir)/harness
ifneq ($(5),)
$$(call stamped,$(lut-dir)/ggml_harness,$(lut-dir)/bitnet-lut-kernels.h tests/lut/ggml_harness.c $(LUT_HARNESS_DEPS) $(LUT_SUPPORT_$(2)),$(BUILD)/preflight-test.ok,$(LUT_CC_$(2)) $(LUT_INC) -DGGML_BITNET_$(if $(filter tl1,$(2)),ARM_TL1,X86_TL2) -Itests/lut/mock -I$(lut-dir) -o $(lut-dir)/ggml_harness.tmp tests/lut/ggml_harness.c $(LUT_SUPPORT_$(2)) $$(LUT_LINK_$(2)) -lm && mv $(lut-dir)/ggml_harness.tmp $(lut-dir)/ggml_harness,--log $(LOG_DIR)/compile.log --title '  CC      $(lut-dir)/ggml_harness')
TEST_DEPS += $(lut-dir)/ggml_harness
endif
ifneq ($(and $(filter c+cxx,$(5)),$(LUT_CXX)),)
$$(call stamped,$(lut-dir)/ggml_harness_cxx,$(lut-dir)/bitnet-lut-kernels.h tests/lut/ggml_harness.c $(LUT_HARNESS_DEPS) $(call obj-of,$(LUT_HARNESS_SRCS)),$(BUILD)/preflight-test.ok,$(LUT_CXX) -x c++ -std=c++17 -O2 -mavx2 $(WARNINGS) $$(SAN_FLAGS) $(LUT_INC) -DGGML_BITNET_X86_TL2 -DLUT_TEST_LARGE_TL2 -Itests/lut/mock -I$(lut-dir) -c tests/lut/ggml_harness.c -o $(lut-dir)/ggml_harness_cxx.o && $(LUT_CXX) $$(SAN_FLAGS) -o $(lut-dir)/ggml_harness_cxx.tmp $(lut-dir)/ggml_harness_cxx.o $(call obj-of,$(LUT_HARNESS_SRCS)) -lm && mv $(lut-dir)/ggml_harness_cxx.tmp $(lut-dir)/ggml_harness_cxx,--log $(LOG_DIR)/compile.log --title '  CXX     $(lut-dir)/ggml_harness_cxx')
TEST_DEPS += $(lut-dir)/ggml_harness_cxx
endif
endef
lut-case = $(eval $(call lut-case-rules,$(1),$(2),,$(3),$(4)))

LUT_LARGE := --shapes 1536x4096,1536x1536,4096x1536
LUT_TV := --shapes 256x256,128x256,512x256,256x512 --BM 128,128,256,128
LUT_2B4T := tests/data/lut/BitNet-b1.58-2B-4T.config.json
LUT_FALCON := tests/data/lut/Falcon3-1B-Instruct-1.58bit.config.json
# bitnet_b1_58-large with setup_env's parameters (anchors.md measured these), real models' shapes
# from their config.json with automatic parameters, convert-quantize.md §13.1's tile configs, odd
# valid shapes and parameters (a single 32-row tile, BK = 24 and 240, 7 micro-tiles, two_k 96,
# TL1 BK = 16 and 256), and the lut-kernels.md §8.3 vector shapes.
lutcase.tl2-large := $(LUT_LARGE) --BM 256,128,256 --BK 96,192,96
lutcase.tl2-2b4t := --config $(LUT_2B4T)
lutcase.tl2-falcon3 := --config $(LUT_FALCON)
lutcase.tl2-tv := $(LUT_TV) --BK 96,96,96,192
lutcase.tl2-odd := --shapes 32x1056,96x264,64x1056,160x600,224x2080,64x512 --BM 32,96,64,160,224,32 --BK 240,24,240,120,168,240
lutcase.tl2-vec := --shapes 256x608,256x512 --BM 128,64 --BK 96
lutcase.tl1-large := $(LUT_LARGE) --BM 256,128,256 --BK 128,64,128 --bm 32,64,32
lutcase.tl1-tv := $(LUT_TV) --BK 64,128,64,128 --bm 32,64,32,32
lutcase.tl1-odd := --shapes 64x1024,256x1024,96x48,192x272 --BM 64,256,32,192 --BK 256,256,16,136 --bm 64,32,32,64
lutcase.tl1-falcon3 := --config $(LUT_FALCON)
lutcase.tl1-vec32 := --shapes 256x512 --BM 128 --BK 64 --bm 32
lutcase.tl1-vec64 := --shapes 256x512 --BM 128 --BK 128 --bm 64
$(call lut-case,tl2-large,tl2,,c+cxx)
$(call lut-case,tl2-2b4t,tl2,$(LUT_2B4T),c)
$(call lut-case,tl2-falcon3,tl2,$(LUT_FALCON))
$(call lut-case,tl2-tv,tl2,,c)
$(call lut-case,tl2-odd,tl2,,c)
$(call lut-case,tl2-vec,tl2)
$(call lut-case,tl1-large,tl1,,c)
$(call lut-case,tl1-tv,tl1,,c)
$(call lut-case,tl1-odd,tl1,,c)
$(call lut-case,tl1-falcon3,tl1,$(LUT_FALCON))
$(call lut-case,tl1-vec32,tl1)
$(call lut-case,tl1-vec64,tl1)
TEST_DEPS += $(BIN)/lutgen
TEST_ARCHIVES += $(LIB_lut)

# ---- make bench: bench-lutgen -----------------------------------------------------------------
# GEMV (1 thread, 1 token) of our generated kernels for bitnet_b1_58-large's shapes, hot and
# cold, next to the read-bandwidth floor measured in the same run and anchors.md's figures for
# the reference generator's TL2 kernels (setup_env's parameters).  Two parameter sets: setup_env's
# (what anchors.md measured) and lutgen's automatic ones.  TL2 on x86_64, TL1 on arm64 hosts.
LUT_BENCH_DIR := $(BUILD)/bench/lut
LUT_BENCH_QUANT := $(if $(filter arm64,$(HOST_ARCH)),tl1,tl2)
LUT_BENCH_CFLAGS_tl2 := -mavx2
#= LUT_BENCH_COLD: bytes of weight copies bench-lutgen rotates through for cold GEMV (default 1G)
LUT_BENCH_COLD ?= 1G
LUT_BENCH_SRCS := tools/common/lut_params.c tools/common/lut_pack.c tools/common/bn_err.c tools/common/bn_membw.c \
	tools/common/bn_util.c kernels/lut/lut_runtime.c
lutbench.setup_env.tl2 := $(LUT_LARGE) --BM 256,128,256 --BK 96,192,96
lutbench.setup_env.tl1 := $(LUT_LARGE) --BM 256,128,256 --BK 128,64,128 --bm 32,64,32
lutbench.auto.tl2 := $(LUT_LARGE)
lutbench.auto.tl1 := $(LUT_LARGE)
# anchors.md (c): reference TL2 GEMV, 1 thread, median microseconds hot/cold
LUT_BENCH_ANCHORS := --anchor 1536x4096=137.3/193.4 --anchor 1536x1536=48.3/58.7 --anchor 4096x1536=130.9/172.8

define lut-bench-rules
$$(call stamped,$(LUT_BENCH_DIR)/$(1)/bitnet-lut-kernels.h,$(BIN)/lutgen,,$(BIN)/lutgen -q --quant $(LUT_BENCH_QUANT) $$(lutbench.$(1).$(LUT_BENCH_QUANT)) --outdir $(LUT_BENCH_DIR)/$(1) >/dev/null,--log $(LOG_DIR)/compile.log --title '  GEN     $(LUT_BENCH_DIR)/$(1)/bitnet-lut-kernels.h')
$$(call stamped,$(LUT_BENCH_DIR)/$(1)/lut_bench,$(LUT_BENCH_DIR)/$(1)/bitnet-lut-kernels.h tools/lutgen/bench/lut_bench.c $(LUT_BENCH_SRCS) $(LUT_HARNESS_DEPS),,$(CC) $(CSTD) -O2 $(WARNINGS) $(LUT_BENCH_CFLAGS_$(LUT_BENCH_QUANT)) $(LUT_INC) -I$(LUT_BENCH_DIR)/$(1) -o $(LUT_BENCH_DIR)/$(1)/lut_bench.tmp tools/lutgen/bench/lut_bench.c $(LUT_BENCH_SRCS) -lm -pthread && mv $(LUT_BENCH_DIR)/$(1)/lut_bench.tmp $(LUT_BENCH_DIR)/$(1)/lut_bench,--log $(LOG_DIR)/compile.log --title '  CC      $(LUT_BENCH_DIR)/$(1)/lut_bench')
endef
$(foreach c,setup_env auto,$(eval $(call lut-bench-rules,$(c))))

## bench-lutgen: GEMV time of the generated TL kernels per shape, hot and cold, vs the bandwidth floor and anchors.md
.PHONY: bench-lutgen
bench-lutgen: $(LUT_BENCH_DIR)/setup_env/lut_bench $(LUT_BENCH_DIR)/auto/lut_bench
	@echo '>>> bench-lutgen: $(LUT_BENCH_QUANT) GEMV, 1 thread, 1 token; hot = weights in cache, kernel = without building the activation LUT, cold = $(LUT_BENCH_COLD) of weight copies, floor = packed bytes / read bandwidth; anchors.md = the reference generator (setup_env parameters), median us'
	@echo '  parameters of setup_env.py (as anchors.md measured):'
	$(Q)$(LUT_BENCH_DIR)/setup_env/lut_bench --cold $(LUT_BENCH_COLD) --bandwidth $(LUT_BENCH_COLD) $(LUT_BENCH_ANCHORS)
	@echo '  parameters chosen by lutgen (automatic):'
	$(Q)$(LUT_BENCH_DIR)/auto/lut_bench --cold $(LUT_BENCH_COLD) --bandwidth $(LUT_BENCH_COLD) $(LUT_BENCH_ANCHORS)
BENCH_TARGETS += bench-lutgen
