# bitmake: a 1.58-bit model from the Hugging Face Hub to fast CPU inference, driven by GNU Make.
# `make` runs the whole pipeline for MODEL (default: the built-in synthetic model `tiny`);
# `make help` lists every target and variable.  One make process reads every fragment in mk/.

MAKEFLAGS += -rR --no-print-directory
.DEFAULT_GOAL := all

include mk/config.mk
include mk/rules.mk
include mk/model.mk
include mk/common.mk
include $(filter-out mk/config.mk mk/rules.mk mk/model.mk mk/common.mk mk/tests.mk,$(sort $(wildcard mk/*.mk)))
include mk/tests.mk

## all: the whole pipeline for MODEL and QUANT (default target)
.PHONY: all
all: $(PIPELINE_TARGETS)

## help: list every target and variable, one line each
.PHONY: help
help:
	@echo 'Targets:'
	@sed -n 's/^## \([a-z-]*\): /  \1\t/p' $(MAKEFILE_LIST) | expand -t 18
	@echo 'Variables (make VAR=value):'
	@sed -n 's/^#= \([A-Z_]*\): /  \1\t/p' $(MAKEFILE_LIST) | expand -t 18

## clean: remove build/ (tools, objects, generated kernels); models/ and logs/ stay
.PHONY: clean
clean:
	rm -rf $(BUILD)

## distclean: remove build/, logs/ and every model under models/ (downloads included)
.PHONY: distclean
distclean: clean
	rm -rf $(LOG_DIR)/* models/*/ models/.[!.]*

# Saved commands of stamped targets (Kbuild's .cmd files) and header dependencies.
-include $(wildcard $(foreach t,$(STAMPED),$(call stamp-of,$(t))) $(ALL_OBJS:.o=.d) $(BIN)/.bm-step.d)
