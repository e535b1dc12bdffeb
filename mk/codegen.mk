# The codegen and TL convert steps (setup_env's gen_code and its tl1/tl2 conversion): for
# QUANT=tl1/tl2, lutgen writes the model's LUT kernels and tile parameters into GEN_DIR from the
# checkpoint's config.json, write-if-changed, so regenerating identical kernels recompiles
# nothing; gguf-convert then packs the model with that kernel_config.ini (convert_to_tl.log).
# PRETUNED=1 takes tuned parameters from presets/local/MODEL.ini (make tune) or else
# presets/MODEL.ini.  ARCH= picks the target: QUANT=tl1 needs ARCH=arm64, tl2 ARCH=x86_64;
# generating and converting for the other architecture works on any host, compiling the kernels
# (the compile step's lut_kernels.o) only on a matching one.
# Also `make tune`: measures candidate parameters for the model's shapes on this CPU.

# (A preset whose repo ships only a final GGUF, gguf_file, has no checkpoint to generate from.)
ifneq ($(filter tl1 tl2,$(QUANT)),)
ifeq ($(gguf_file),)
LUT_HEADER := $(GEN_DIR)/bitnet-lut-kernels.h
LUT_KERNEL_CONFIG := $(GEN_DIR)/kernel_config.ini
LUT_CONFIG_JSON := $(MODEL_DIR)/config.json
TUNED_PRESET := $(firstword $(wildcard presets/local/$(MODEL).ini) $(PRESET_FILE))
LUT_PRESET := $(if $(filter 1,$(PRETUNED)),$(TUNED_PRESET))
ifeq ($(PRETUNED)$(TUNED_PRESET),1)
$(warning PRETUNED=1: no presets/$(MODEL).ini or presets/local/$(MODEL).ini; lutgen chooses the parameters)
endif
LUTGEN_CMD = $(BIN)/lutgen --quant $(QUANT) --config $(LUT_CONFIG_JSON) $(if $(LUT_PRESET),--preset $(LUT_PRESET)) --outdir $(GEN_DIR)

# The checkpoint manifest stands for config.json (its hash changes with it); lutgen is a
# prerequisite (new code may generate other kernels), and so is the preset when it is used.
$(call stamped,$(LUT_HEADER),$(CHECKPOINT) $(BIN)/lutgen $(LUT_PRESET),,$(LUTGEN_CMD),--log $(LOG_DIR)/codegen.log $(call step-title,codegen))
# lutgen writes both files, each only if it changed; the ini counts as the later of the two
# (its consumers compare content, so a touch costs nothing), and a deleted one is regenerated.
$(LUT_KERNEL_CONFIG): $(LUT_HEADER)
	$(Q)if [ -f $@ ]; then touch $@; else $(LUTGEN_CMD) >> $(LOG_DIR)/codegen.log; fi
CODEGEN_TARGETS += $(LUT_HEADER) $(LUT_KERNEL_CONFIG)

# The compile step: the generated kernels as one object (kernels/lut/lut_generated.c), for the
# engine to link with $(LIBDIR)/liblut.a; only when the kernels are for this machine.
LUT_KERNELS_OBJ := $(GEN_DIR)/lut_kernels.o
LUT_GEN_CFLAGS_tl2 := -mavx2
ifeq ($(ARCH),$(HOST_ARCH))
$(call stamped,$(LUT_KERNELS_OBJ),kernels/lut/lut_generated.c $(LUT_HEADER) kernels/lut/lut.h tools/common/lut_params.h tools/common/bn_err.h,,$(CC) $(BASE_CFLAGS) -ffp-contract=off $(LUT_GEN_CFLAGS_$(QUANT)) -I$(GEN_DIR) -c kernels/lut/lut_generated.c -o $(LUT_KERNELS_OBJ).tmp && mv $(LUT_KERNELS_OBJ).tmp $(LUT_KERNELS_OBJ),--log $(LOG_DIR)/compile.log --title '  CC      $(LUT_KERNELS_OBJ)')
COMPILE_TARGETS += $(LUT_KERNELS_OBJ) $(LIBDIR)/liblut.a
endif

# The TL model step (setup_env's convert for tl1/tl2): the checkpoint packed with the very
# kernel_config.ini the kernels were generated from, which the GGUF also records
# (bitmake.lut.kernel_config) so that the runtime refuses kernels generated otherwise.
$(call stamped,$(GGUF_FINAL),$(CHECKPOINT) $(BIN)/gguf-convert $(LUT_KERNEL_CONFIG),,$(BIN)/gguf-convert $(MODEL_DIR) --outtype $(QUANT) $(if $(filter 1,$(QUANT_EMBD)),--quant-embd) --kernel-config $(LUT_KERNEL_CONFIG) --outfile $(GGUF_FINAL),--log $(LOG_DIR)/convert_to_tl.log $(call step-title,convert))
CONVERT_TARGETS += $(GGUF_FINAL)
endif
endif

# ---- make tune ------------------------------------------------------------------------------
# TL2 on x86_64, TL1 on arm64 (or QUANT's when it is a TL type); needs the checkpoint's
# config.json like codegen, and this machine's CPU to run the candidates.
TUNE_QUANT := $(if $(filter tl1 tl2,$(QUANT)),$(QUANT),$(if $(filter arm64,$(ARCH)),tl1,tl2))
TUNE_PRESET := presets/local/$(MODEL).ini

## tune: time candidate TL kernel parameters for MODEL's shapes on this CPU; writes presets/local/MODEL.ini (used by PRETUNED=1)
.PHONY: tune
tune: $(BIN)/lutgen $(CHECKPOINT)
	@echo '>>> $(MODEL) tune ($(TUNE_QUANT))'
	@mkdir -p presets/local $(LOG_DIR)
	$(Q)$(BIN)/lutgen --tune --quant $(TUNE_QUANT) --config $(MODEL_DIR)/config.json --cc '$(CC)' --workdir $(BUILD)/tune/$(MODEL)/$(TUNE_QUANT) --preset-out $(TUNE_PRESET) 2> $(LOG_DIR)/tune.log || { tail -5 $(LOG_DIR)/tune.log; echo 'tune failed; full log: $(LOG_DIR)/tune.log'; exit 1; }
