# gguf-dump: prints a GGUF's KVs and tensor table for humans or as JSON (tools/gguf-dump/),
# reading the BitNet fork's I2_S/TL1/TL2 files through the shared reader (tools/common/gguf.c).
$(call add-tool,gguf-dump,$(sort $(wildcard tools/gguf-dump/*.c)),$(LIB_common),$(COMMON_LDLIBS))
TEST_DEPS += $(BIN)/gguf-dump
