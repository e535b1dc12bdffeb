# mkmodel: deterministic synthetic checkpoints (the default model `tiny`, the test vectors of
# convert-quantize.md §13.1 and the real models' shapes for benchmarks).  mk/download.mk calls it
# for presets with `synthetic = NAME`.  The generator is a library so the tests can call it.
MKMODEL_LIB_SRCS := $(filter-out tools/mkmodel/main.c,$(sort $(wildcard tools/mkmodel/*.c)))
$(call add-lib,mkmodel,$(MKMODEL_LIB_SRCS))
$(call add-tool,mkmodel,tools/mkmodel/main.c,$(LIBDIR)/libmkmodel.a $(LIB_common),$(COMMON_LDLIBS))
TEST_ARCHIVES += $(LIBDIR)/libmkmodel.a
TEST_DEPS += $(BIN)/mkmodel
