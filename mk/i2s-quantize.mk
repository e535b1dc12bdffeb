# i2s-quantize: f32/f16/bf16 GGUF -> I2_S (bitnet.cpp) or TQ1_0/TQ2_0 (mainline llama.cpp), and
# I2_S -> TQ1_0/TQ2_0 (tools/i2s-quantize/).  The rules it shares with gguf-convert's direct
# outputs live in tools/common/quant_plan.{c,h}, which calls the kernels' references: whoever
# links libcommon for quant_plan links libkernels after it.
IQ_LIB_SRCS := $(filter-out tools/i2s-quantize/main.c,$(sort $(wildcard tools/i2s-quantize/*.c)))
$(call add-lib,i2squant,$(IQ_LIB_SRCS))
$(call add-tool,i2s-quantize,tools/i2s-quantize/main.c,$(LIBDIR)/libi2squant.a $(LIB_common) $(LIBDIR)/libkernels.a $(LIB_common),$(COMMON_LDLIBS))

TEST_ARCHIVES += $(LIBDIR)/libi2squant.a
TEST_LDLIBS += $(LIBDIR)/libkernels.a
TEST_DEPS += $(BIN)/i2s-quantize

# A disk that flips a bit, for the read-back test (LD_PRELOAD).
CORRUPT_WRITE_SO := $(BUILD)/tests/corrupt_write.so
$(call stamped,$(CORRUPT_WRITE_SO),tests/shims/corrupt_write.c,$(BUILD)/preflight-test.ok,$(CC) -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -fPIC -shared -o $(CORRUPT_WRITE_SO).tmp tests/shims/corrupt_write.c -ldl && mv $(CORRUPT_WRITE_SO).tmp $(CORRUPT_WRITE_SO),--log $(LOG_DIR)/compile.log --title '  CC      $(CORRUPT_WRITE_SO)')
TEST_DEPS += $(CORRUPT_WRITE_SO)

# ---- bench-quantize ----------------------------------------------------------------------------
# Time and peak RSS of i2s-quantize on the f32 GGUF of bitnet_b1_58-large (24 layers: mkmodel's
# checkpoint through gguf-convert, made once under $(QB_DIR) and kept), 1 and 2 threads, next
# to llama-quantize's anchors.md figures and a page-cache read of the input.
$(call add-tool,quantize-bench,$(sort $(wildcard tools/quantize-bench/*.c)),$(LIB_common),$(COMMON_LDLIBS))

QB_DIR := $(BUILD)/bench/quantize
QB_CKPT := $(QB_DIR)/bitnet_b1_58-large
QB_F32 := $(QB_DIR)/bitnet_b1_58-large.f32.gguf
# The bench input is made once: rebuilt tools do not remake it (order-only).
$(QB_CKPT)/config.json: | $(BIN)/mkmodel
	$(Q)$(BIN)/mkmodel --preset bitnet_b1_58-large --outdir $(QB_CKPT)
$(QB_F32): | $(QB_CKPT)/config.json $(BIN)/gguf-convert
	$(Q)$(BIN)/gguf-convert $(QB_CKPT) --outtype f32 --outfile $(QB_F32)

## bench-quantize: i2s-quantize time and peak RSS on bitnet_b1_58-large (1 and 2 threads) vs llama-quantize
.PHONY: bench-quantize
bench-quantize: $(BIN)/quantize-bench $(BIN)/i2s-quantize | $(QB_F32)
	$(Q)$(BIN)/quantize-bench --quantizer $(BIN)/i2s-quantize --f32 $(QB_F32) --threads 1,2
BENCH_TARGETS += bench-quantize
