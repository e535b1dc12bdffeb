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

ifneq ($(and $(filter tl1 tl2,$(QUANT)),$(filter $(ARCH),$(HOST_ARCH))),)
ENGINE_BIN := $(GEN_DIR)/bitnet-run
ENGINE_TL_INPUTS := $(call obj-of,$(ENGINE_DIR)/main.c) $(GEN_DIR)/lut_kernels.o $(ENGINE_ARCHIVES)
# (a macro, so that the SAN=1 flags' comma reaches the stamped call unexpanded, as in add-tool)
define engine-tl-rules
$$(call stamped,$(ENGINE_BIN),$(ENGINE_TL_INPUTS),,$(CC) $$(BASE_LDFLAGS) -o $(ENGINE_BIN).tmp $(ENGINE_TL_INPUTS) $(COMMON_LDLIBS) && mv $(ENGINE_BIN).tmp $(ENGINE_BIN),--log $(LOG_DIR)/compile.log --title '  LD      $(ENGINE_BIN)')
endef
$(eval $(engine-tl-rules))
COMPILE_TARGETS += $(ENGINE_BIN)
endif

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

# The Unicode category table of the BPE pre-tokenizers, regenerated from ICU (libicu-dev) on
# demand only; the result is committed.
## unicode-table: regenerate tools/bitnet-run/unicode_table.h from ICU (needs libicu-dev)
.PHONY: unicode-table
unicode-table:
	@mkdir -p $(BUILD)/gen
	$(Q)$(CC) $(CSTD) -O2 -o $(BUILD)/gen/unicode_gen $(ENGINE_DIR)/gen/unicode_gen.c -licuuc -licudata
	$(Q)$(BUILD)/gen/unicode_gen > $(ENGINE_DIR)/unicode_table.h.tmp && mv $(ENGINE_DIR)/unicode_table.h.tmp $(ENGINE_DIR)/unicode_table.h
