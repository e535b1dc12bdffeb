# gguf-convert: Hugging Face safetensors checkpoint -> GGUF (tools/gguf-convert/), byte-compatible
# with bitnet.cpp's converter.  The logic is a library so that the tests can call its parsers.
GGUF_CONVERT_LIB_SRCS := $(filter-out tools/gguf-convert/main.c,$(sort $(wildcard tools/gguf-convert/*.c)))
# No FMA contraction: the values must round exactly as the reference's separate operations.
$(call add-lib,gguf-convert,$(GGUF_CONVERT_LIB_SRCS),-ffp-contract=off)
$(call add-tool,gguf-convert,tools/gguf-convert/main.c,$(LIBDIR)/libgguf-convert.a $(LIB_common) $(LIBDIR)/libkernels.a,$(COMMON_LDLIBS))
TEST_ARCHIVES += $(LIBDIR)/libgguf-convert.a
TEST_DEPS += $(BIN)/gguf-convert
# The config fuzz target compiles the converter's readers in (fuzz builds link the shared core only).
$(FUZZ_DIR)/config: tools/gguf-convert/config.c tools/gguf-convert/vocab.c tools/gguf-convert/convert.h

# bench-convert: bitnet_b1_58-large shapes (mkmodel, 24 layers, bf16; generated once under
# $(BUILD)/bench/ and kept) converted to f32 and straight to i2_s, next to a sequential write of
# the same bytes measured in the same run and to anchors.md's reference figures.
CONVERT_BENCH := $(BUILD)/bench/convert-bench
CONVERT_BENCH_MODEL := $(BUILD)/bench/bitnet_b1_58-large
#= CONVERT_BENCH_RUNS: runs of each bench-convert measurement (default 3; medians are printed)
CONVERT_BENCH_RUNS ?= 3
$(call compile-rules,tools/gguf-convert/bench/convert_bench.c)
$(call stamped,$(CONVERT_BENCH),$(call obj-of,tools/gguf-convert/bench/convert_bench.c),,$(CC) $(BASE_LDFLAGS) -o $(CONVERT_BENCH).tmp $(call obj-of,tools/gguf-convert/bench/convert_bench.c) && mv $(CONVERT_BENCH).tmp $(CONVERT_BENCH),--log $(LOG_DIR)/compile.log --title '  LD      $(CONVERT_BENCH)')
$(call stamped,$(CONVERT_BENCH_MODEL)/checkpoint.manifest,$(BIN)/mkmodel,,$(BIN)/mkmodel -q --preset bitnet_b1_58-large --outdir $(CONVERT_BENCH_MODEL) && $(BMSTEP) manifest $(CONVERT_BENCH_MODEL) $(CONVERT_BENCH_MODEL)/checkpoint.manifest,--log $(LOG_DIR)/bench.log --title '  GEN     $(CONVERT_BENCH_MODEL) (1.46 GB, once)')

## bench-convert: gguf-convert f32 and direct i2_s on bitnet_b1_58-large shapes: time vs the disk's write floor, peak RSS, vs anchors.md
.PHONY: bench-convert
bench-convert: $(CONVERT_BENCH) $(BIN)/gguf-convert $(CONVERT_BENCH_MODEL)/checkpoint.manifest
	@echo '>>> bench-convert: bitnet_b1_58-large shapes (24 layers, bf16), $(CONVERT_BENCH_RUNS) runs, median [min-max]; reference = anchors.md (a)'
	$(Q)$(CONVERT_BENCH) --convert $(BIN)/gguf-convert --model $(CONVERT_BENCH_MODEL) --out $(BUILD)/bench/convert-out --runs $(CONVERT_BENCH_RUNS)
BENCH_TARGETS += bench-convert

# An LD_PRELOAD shim that makes statvfs report FAKE_FREE_BYTES free: the free-disk refusal test
# without a full disk.  Never sanitised (it is preloaded).
STATVFS_SO := $(BUILD)/tests/statvfs.so
$(call stamped,$(STATVFS_SO),tests/shims/statvfs.c,$(BUILD)/preflight-test.ok,$(CC) -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -fPIC -shared -o $(STATVFS_SO).tmp tests/shims/statvfs.c -ldl && mv $(STATVFS_SO).tmp $(STATVFS_SO),--log $(LOG_DIR)/compile.log --title '  CC      $(STATVFS_SO)')
TEST_DEPS += $(STATVFS_SO)
