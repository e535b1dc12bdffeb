# The inference engine, bitnet-run (tools/bitnet-run/): everything but main.c is libbitnetrun.a,
# which the tests link too.  ops_avx2.c alone is compiled with AVX2/FMA/F16C flags (chosen at run
# time, like the kernel sets).  $(BIN)/bitnet-run runs every quant type but TL1/TL2; for
# QUANT=tl1/tl2 the compile step also links $(GEN_DIR)/bitnet-run with the model's generated TL
# kernels ($(GEN_DIR)/lut_kernels.o from mk/codegen.mk), so changing QUANT or the kernel
# parameters relinks only that binary and recompiles only that object.  ENGINE_BIN is the one
# that runs the current MODEL and QUANT.

ENGINE_DIR := tools/bitnet-run
ENGINE_LIB_SRCS := $(filter-out $(ENGINE_DIR)/main.c $(ENGINE_DIR)/ops_avx2.c,$(sort $(wildcard $(ENGINE_DIR)/*.c)))
ifeq ($(HOST_ARCH),x86_64)
$(call compile-rules,$(ENGINE_DIR)/ops_avx2.c,-mavx2 -mfma -mf16c)
$(call compile-rules,$(ENGINE_DIR)/ops.c,-DBR_HAVE_AVX2)
ENGINE_LIB_SRCS += $(ENGINE_DIR)/ops_avx2.c
endif
$(call add-lib,bitnetrun,$(ENGINE_LIB_SRCS))

ENGINE_ARCHIVES := $(LIBDIR)/libbitnetrun.a $(LIBDIR)/libkernels.a $(LIBDIR)/liblut.a $(LIB_common)
$(call add-tool,bitnet-run,$(ENGINE_DIR)/main.c,$(ENGINE_ARCHIVES),$(COMMON_LDLIBS))
COMPILE_TARGETS += $(BIN)/bitnet-run
ENGINE_BIN := $(BIN)/bitnet-run

# $(call engine-tl,GEN_DIR): GEN_DIR/bitnet-run, the engine linked with GEN_DIR/lut_kernels.o
# (mk/codegen.mk's lut-codegen); a macro, so that the SAN=1 flags' comma reaches the stamped call
# unexpanded, as in add-tool.
engine-tl-inputs = $(call obj-of,$(ENGINE_DIR)/main.c) $(1)/lut_kernels.o $(ENGINE_ARCHIVES)
define engine-tl-rules
$$(call stamped,$(1)/bitnet-run,$(engine-tl-inputs),,$(CC) $$(BASE_LDFLAGS) -o $(1)/bitnet-run.tmp $(engine-tl-inputs) $(COMMON_LDLIBS) && mv $(1)/bitnet-run.tmp $(1)/bitnet-run,--log $(LOG_DIR)/compile.log --title '  LD      $(1)/bitnet-run')
endef
engine-tl = $(eval $(call engine-tl-rules,$(1)))

ifneq ($(and $(filter tl1 tl2,$(QUANT)),$(filter $(ARCH),$(HOST_ARCH))),)
ENGINE_BIN := $(GEN_DIR)/bitnet-run
$(call engine-tl,$(GEN_DIR))
COMPILE_TARGETS += $(ENGINE_BIN)
endif

# ---- the run step -----------------------------------------------------------------------------
# The pipeline ends with a short greedy generation by the final model (a file target, so a second
# make does nothing); `make run PROMPT=...` runs any prompt (RUN_ARGS adds bitnet-run options,
# e.g. RUN_ARGS="-cnv" for a chat).
#= PROMPT: the prompt of make run
#= RUN_ARGS: extra bitnet-run options for make run (default: -n 128)
RUN_ARGS ?= -n 128
GENERATION := $(MODEL_DIR)/generation-$(QUANT).txt
GENERATION_PROMPT := Once upon a time
$(call stamped,$(GENERATION),$(GGUF_FINAL) $(ENGINE_BIN),,$(ENGINE_BIN) -m $(GGUF_FINAL) -p '$(GENERATION_PROMPT)' -n 24 --temp 0 -c 256 > $(GENERATION).tmp && mv $(GENERATION).tmp $(GENERATION),--log $(LOG_DIR)/run_inference.log $(call step-title,run))
RUN_TARGETS += $(GENERATION)

## run: run the final model on PROMPT (make run PROMPT="..." [RUN_ARGS="-n 64 -t 2"])
.PHONY: run
run: $(GGUF_FINAL) $(ENGINE_BIN)
	$(if $(PROMPT)$(filter -cnv --conversation,$(RUN_ARGS)),,$(error make run needs PROMPT="..." (or RUN_ARGS="-cnv" for a chat)))
	$(Q)$(ENGINE_BIN) -m $(GGUF_FINAL) $(if $(PROMPT),-p '$(call escsq,$(PROMPT))') $(RUN_ARGS)

TEST_ARCHIVES += $(LIBDIR)/libbitnetrun.a
TEST_DEPS += $(BIN)/bitnet-run
# On x86_64 the test binary carries the TL2 kernels lutgen's tests generate for the test vector's
# tile configuration (convert-quantize.md §13.1, mk/lutgen.mk case tl2-tv), so the engine tests
# can run the reference converter's TL2 file.
ifeq ($(HOST_ARCH),x86_64)
ENGINE_TEST_LUT := $(BUILD)/tests/engine/lut_tl2_tv.o
$(call stamped,$(ENGINE_TEST_LUT),kernels/lut/lut_generated.c $(BUILD)/tests/lut/tl2-tv/bitnet-lut-kernels.h kernels/lut/lut.h,$(BUILD)/preflight-test.ok,mkdir -p $(BUILD)/tests/engine && $(CC) $(BASE_CFLAGS) -ffp-contract=off -mavx2 -I$(BUILD)/tests/lut/tl2-tv -c kernels/lut/lut_generated.c -o $(ENGINE_TEST_LUT).tmp && mv $(ENGINE_TEST_LUT).tmp $(ENGINE_TEST_LUT),--log $(LOG_DIR)/compile.log --title '  CC      $(ENGINE_TEST_LUT)')
TEST_ARCHIVES += $(ENGINE_TEST_LUT)
endif
# The engine's tests include its headers: their objects get -I$(ENGINE_DIR) here, before
# mk/tests.mk (included last) registers the other test objects.
ENGINE_TEST_SRCS := $(sort $(wildcard tests/unit/engine_*_test.c tests/unit/tokenizer_test.c \
	tests/unit/chat_test.c tests/cli/bitnet_run_test.c tests/lib/engine_*.c))
$(call compile-rules,$(ENGINE_TEST_SRCS),-Itests -I$(ENGINE_DIR),$(BUILD)/preflight-test.ok)

# ---- bench-engine -----------------------------------------------------------------------------
# bitnet-run on bitnet_b1_58-large's shapes (24 layers): the synthetic checkpoint bench-convert
# generates once under $(BUILD)/bench/ (mk/gguf-convert.mk), converted once to I2_S as setup_env
# would (token_embd F16 as the output head), then a 64-token prompt and 64 generated tokens with 1
# and 2 threads, next to anchors.md's llama-cli figures, the bandwidth limit and the peak RSS.
ENGINE_BENCH := $(BUILD)/bench/engine-bench
ENGINE_BENCH_GGUF := $(BUILD)/bench/engine/bitnet_b1_58-large.i2_s.gguf
#= ENGINE_BENCH_RUNS: runs of each bench-engine measurement (default 3; medians are printed)
ENGINE_BENCH_RUNS ?= 3
$(call compile-rules,$(ENGINE_DIR)/bench/engine_bench.c,-I$(ENGINE_DIR))
define engine-bench-rules
$$(call stamped,$(ENGINE_BENCH),$(call obj-of,$(ENGINE_DIR)/bench/engine_bench.c) $(ENGINE_ARCHIVES),,$(CC) $$(BASE_LDFLAGS) -o $(ENGINE_BENCH).tmp $(call obj-of,$(ENGINE_DIR)/bench/engine_bench.c) $(ENGINE_ARCHIVES) $(COMMON_LDLIBS) && mv $(ENGINE_BENCH).tmp $(ENGINE_BENCH),--log $(LOG_DIR)/compile.log --title '  LD      $(ENGINE_BENCH)')
endef
$(eval $(engine-bench-rules))
$(call stamped,$(ENGINE_BENCH_GGUF),$(BUILD)/bench/bitnet_b1_58-large/checkpoint.manifest $(BIN)/gguf-convert,,mkdir -p $(dir $(ENGINE_BENCH_GGUF)) && $(BIN)/gguf-convert -q $(BUILD)/bench/bitnet_b1_58-large --outtype i2_s --outfile $(ENGINE_BENCH_GGUF),--log $(LOG_DIR)/bench.log --title '  CONVERT $(ENGINE_BENCH_GGUF) (once)')

## bench-engine: bitnet-run prompt/generation tokens/s on bitnet_b1_58-large shapes (1, 2 threads) vs llama-cli, bandwidth limit, peak RSS
.PHONY: bench-engine
bench-engine: $(ENGINE_BENCH) $(BIN)/bitnet-run $(ENGINE_BENCH_GGUF)
	@echo '>>> bench-engine: bitnet-run on bitnet_b1_58-large shapes (24 layers, I2_S); reference = anchors.md (d)'
	$(Q)$(ENGINE_BENCH) --run $(BIN)/bitnet-run --model $(ENGINE_BENCH_GGUF) --label i2_s --runs $(ENGINE_BENCH_RUNS)
BENCH_TARGETS += bench-engine

# ---- bench-engine-tl2 -------------------------------------------------------------------------
# The same checkpoint as TL2 (x86_64), built as the pipeline builds QUANT=tl2 (mk/codegen.mk's
# macros) once per kernel parameter set: lutgen's automatic parameters, and the preset's
# (setup_env's, which anchors.md's TL2 kernels used).  The token embeddings are F16 (--quant-embd,
# as setup_env converts TL models), like the I2_S file's, which serve as the output head in both.
# engine-bench runs the I2_S file and both TL2 builds in the same run, interleaved, and prints
# TL2 / I2_S ratios; the bandwidth limits use each file's own bytes per token.
ifeq ($(HOST_ARCH),x86_64)
ENGINE_BENCH_TL2 := $(BUILD)/bench/engine/tl2
enginebench.tl2.auto :=
enginebench.tl2.preset := presets/bitnet_b1_58-large.ini
define engine-bench-tl2-rules
$$(call lut-codegen,tl2,$(ENGINE_BENCH_TL2)-$(1),$(BUILD)/bench/bitnet_b1_58-large,$(enginebench.tl2.$(1)),$(LOG_DIR)/bench.log,--title '  GEN     $(ENGINE_BENCH_TL2)-$(1)/bitnet-lut-kernels.h')
$$(call lut-convert,tl2,$(ENGINE_BENCH_TL2)-$(1),$(BUILD)/bench/bitnet_b1_58-large,$(ENGINE_BENCH_TL2)-$(1)/bitnet_b1_58-large.tl2.gguf,--quant-embd -q,$(LOG_DIR)/bench.log,--title '  CONVERT $(ENGINE_BENCH_TL2)-$(1)/bitnet_b1_58-large.tl2.gguf (once)')
$$(call engine-tl,$(ENGINE_BENCH_TL2)-$(1))
endef
$(foreach p,auto preset,$(eval $(call engine-bench-tl2-rules,$(p))))
ENGINE_BENCH_TL2_ARGS := $(foreach p,auto preset,--run $(ENGINE_BENCH_TL2)-$(p)/bitnet-run --model $(ENGINE_BENCH_TL2)-$(p)/bitnet_b1_58-large.tl2.gguf --label tl2-$(p))

## bench-engine-tl2: bench-engine's I2_S rows next to TL2 builds of the same model (lutgen's and setup_env's kernel parameters), TL2/I2_S ratios
.PHONY: bench-engine-tl2
bench-engine-tl2: $(ENGINE_BENCH) $(BIN)/bitnet-run $(ENGINE_BENCH_GGUF) $(foreach p,auto preset,$(ENGINE_BENCH_TL2)-$(p)/bitnet-run $(ENGINE_BENCH_TL2)-$(p)/bitnet_b1_58-large.tl2.gguf)
	@echo '>>> bench-engine-tl2: bitnet-run on bitnet_b1_58-large shapes (24 layers), TL2 (auto = lutgen parameters, preset = setup_env parameters) vs I2_S in the same run; anchors.md (d) has I2_S only'
	$(Q)$(ENGINE_BENCH) --run $(BIN)/bitnet-run --model $(ENGINE_BENCH_GGUF) --label i2_s $(ENGINE_BENCH_TL2_ARGS) --runs $(ENGINE_BENCH_RUNS)
BENCH_TARGETS += bench-engine-tl2
endif

# The Unicode category table of the BPE pre-tokenizers, regenerated from ICU (libicu-dev) on
# demand only; the result is committed.
## unicode-table: regenerate tools/bitnet-run/unicode_table.h from ICU (needs libicu-dev)
.PHONY: unicode-table
unicode-table:
	@mkdir -p $(BUILD)/gen
	$(Q)$(CC) $(CSTD) -O2 -o $(BUILD)/gen/unicode_gen $(ENGINE_DIR)/gen/unicode_gen.c -licuuc -licudata
	$(Q)$(BUILD)/gen/unicode_gen > $(ENGINE_DIR)/unicode_table.h.tmp && mv $(ENGINE_DIR)/unicode_table.h.tmp $(ENGINE_DIR)/unicode_table.h

# ---- TL1 on AArch64 ---------------------------------------------------------------------------
# The engine, the kernel sets (scalar, NEON, dotprod) and the TL1 kernels lutgen's tests generate
# for the test vector's tiles (mk/lutgen.mk case tl1-tv), cross-compiled statically into one
# checker that tests/unit/engine_forward_test.c runs under qemu-aarch64.
ENGINE_A64_CHECK := $(BUILD)/aarch64/engine-tl1-check
ENGINE_A64_SRCS := tests/engine/tl1_check.c $(ENGINE_DIR)/engine.c $(ENGINE_DIR)/model.c $(ENGINE_DIR)/ops.c \
	kernels/kernels.c kernels/cpu.c kernels/pool.c kernels/i2s_ref.c kernels/tq_ref.c kernels/q8_0_ref.c \
	$(sort $(wildcard kernels/neon/*.c kernels/dotprod/*.c)) kernels/lut/lut_runtime.c kernels/lut/lut_ref.c \
	kernels/lut/lut_generated.c tools/common/lut_params.c tools/common/bn_err.c tools/common/bn_util.c \
	tools/common/bn_file.c tools/common/bn_log.c tools/common/gguf.c
$(call stamped,$(ENGINE_A64_CHECK),$(ENGINE_A64_SRCS) $(BUILD)/tests/lut/tl1-tv/bitnet-lut-kernels.h,$(BUILD)/preflight-test.ok,mkdir -p $(BUILD)/aarch64 && aarch64-linux-gnu-gcc $(CSTD) -O2 -static -march=armv8.2-a+dotprod -ffp-contract=off $(WARNINGS) -Wno-format-truncation -D_GNU_SOURCE -DKERN_HAVE_NEON -DKERN_HAVE_DOTPROD -Itools/common -Ikernels -I$(ENGINE_DIR) -I$(BUILD)/tests/lut/tl1-tv -o $(ENGINE_A64_CHECK).tmp $(ENGINE_A64_SRCS) -lm -lpthread && mv $(ENGINE_A64_CHECK).tmp $(ENGINE_A64_CHECK),--log $(LOG_DIR)/compile.log --title '  CC      $(ENGINE_A64_CHECK)')
TEST_DEPS += $(ENGINE_A64_CHECK)
