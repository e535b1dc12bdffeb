# gguf-convert: Hugging Face safetensors checkpoint -> GGUF (tools/gguf-convert/), byte-compatible
# with bitnet.cpp's converter.  The logic is a library so that the tests can call its parsers.
GGUF_CONVERT_LIB_SRCS := $(filter-out tools/gguf-convert/main.c,$(sort $(wildcard tools/gguf-convert/*.c)))
$(call add-lib,gguf-convert,$(GGUF_CONVERT_LIB_SRCS))
$(call add-tool,gguf-convert,tools/gguf-convert/main.c,$(LIBDIR)/libgguf-convert.a $(LIB_common) $(LIBDIR)/libkernels.a,$(COMMON_LDLIBS))
TEST_ARCHIVES += $(LIBDIR)/libgguf-convert.a
TEST_DEPS += $(BIN)/gguf-convert
# The config fuzz target compiles the converter's readers in (fuzz builds link the shared core only).
$(FUZZ_DIR)/config: tools/gguf-convert/config.c tools/gguf-convert/vocab.c tools/gguf-convert/convert.h
