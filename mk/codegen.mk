# The codegen and TL convert steps (setup_env's gen_code and its tl1/tl2 conversion): for
# QUANT=tl1/tl2, lutgen writes the model's LUT kernels and tile parameters into GEN_DIR from the
# checkpoint's config.json, write-if-changed, so regenerating identical kernels recompiles
# nothing; gguf-convert then packs the model with that kernel_config.ini (convert_to_tl.log).
# PRETUNED=1 takes tuned parameters from presets/local/MODEL.ini (make tune) or else
# presets/MODEL.ini.  ARCH= picks the target: QUANT=tl1 needs ARCH=arm64, tl2 ARCH=x86_64;
# generating and converting for the other architecture works on any host, compiling the kernels
# (the compile step's lut_kernels.o) only on a matching one.
# Also `make tune`: measures candidate parameters for the model's shapes on this CPU.
#
# The rules are macros, so that other builds of other checkpoints (bench-engine-tl2) are made
# the same way as the pipeline's:
#   $(call lut-codegen,QUANT,GEN_DIR,CHECKPOINT_DIR,PRESET,LOG,BM-STEP TITLE OPTION)
#       GEN_DIR/bitnet-lut-kernels.h and kernel_config.ini for CHECKPOINT_DIR's config.json
#       (PRESET: a preset file for lutgen --preset, or empty), and GEN_DIR/lut_kernels.o when
#       QUANT is this machine's
#   $(call lut-convert,QUANT,GEN_DIR,CHECKPOINT_DIR,GGUF,EXTRA FLAGS,LOG,BM-STEP TITLE OPTION)
#       the checkpoint packed as GGUF with GEN_DIR/kernel_config.ini

LUT_ARCH_tl1 := arm64
LUT_ARCH_tl2 := x86_64
LUT_GEN_CFLAGS_tl2 := -mavx2
lutgen-cmd = $(BIN)/lutgen --quant $(1) --config $(3)/config.json $(if $(4),--preset $(4)) --outdir $(2)

# The checkpoint manifest stands for config.json (its hash changes with it); lutgen is a
# prerequisite (new code may generate other kernels), and so is the preset when it is used.
# lutgen writes both files, each only if it changed; the ini counts as the later of the two
# (its consumers compare content, so a touch costs nothing), and a deleted one is regenerated.
# The kernels' object (kernels/lut/lut_generated.c), for an engine to link with liblut.a.
define lut-codegen-rules
$$(call stamped,$(2)/bitnet-lut-kernels.h,$(3)/checkpoint.manifest $(BIN)/lutgen $(4),,$(call lutgen-cmd,$(1),$(2),$(3),$(4)),--log $(5) $(6))
$(2)/kernel_config.ini: $(2)/bitnet-lut-kernels.h
	$$(Q)if [ -f $$@ ]; then touch $$@; else $(call lutgen-cmd,$(1),$(2),$(3),$(4)) >> $(5); fi
ifeq ($(LUT_ARCH_$(1)),$(HOST_ARCH))
$$(call stamped,$(2)/lut_kernels.o,kernels/lut/lut_generated.c $(2)/bitnet-lut-kernels.h kernels/lut/lut.h tools/common/lut_params.h tools/common/bn_err.h,,$(CC) $(BASE_CFLAGS) -ffp-contract=off $(LUT_GEN_CFLAGS_$(1)) -I$(2) -c kernels/lut/lut_generated.c -o $(2)/lut_kernels.o.tmp && mv $(2)/lut_kernels.o.tmp $(2)/lut_kernels.o,--log $(LOG_DIR)/compile.log --title '  CC      $(2)/lut_kernels.o')
endif
endef
lut-codegen = $(eval $(call lut-codegen-rules,$(1),$(2),$(3),$(4),$(5),$(6)))

# The TL model step (setup_env's convert for tl1/tl2): the checkpoint packed with the very
# kernel_config.ini the kernels were generated from, which the GGUF also records
# (bitmake.lut.kernel_config) so that the runtime refuses kernels generated otherwise.
define lut-convert-rules
$$(call stamped,$(4),$(3)/checkpoint.manifest $(BIN)/gguf-convert $(2)/kernel_config.ini,,$(BIN)/gguf-convert $(3) --outtype $(1) $(5) --kernel-config $(2)/kernel_config.ini --outfile $(4),--log $(6) $(7))
endef
lut-convert = $(eval $(call lut-convert-rules,$(1),$(2),$(3),$(4),$(5),$(6),$(7)))

# (A preset whose repo ships only a final GGUF, gguf_file, has no checkpoint to generate from.)
ifneq ($(filter tl1 tl2,$(QUANT)),)
ifeq ($(gguf_file),)
TUNED_PRESET := $(firstword $(wildcard presets/local/$(MODEL).ini) $(PRESET_FILE))
LUT_PRESET := $(if $(filter 1,$(PRETUNED)),$(TUNED_PRESET))
ifeq ($(PRETUNED)$(TUNED_PRESET),1)
$(warning PRETUNED=1: no presets/$(MODEL).ini or presets/local/$(MODEL).ini; lutgen chooses the parameters)
endif
$(call lut-codegen,$(QUANT),$(GEN_DIR),$(MODEL_DIR),$(LUT_PRESET),$(LOG_DIR)/codegen.log,$(call step-title,codegen))
CODEGEN_TARGETS += $(GEN_DIR)/bitnet-lut-kernels.h $(GEN_DIR)/kernel_config.ini
# The compile step compiles the kernels only when they are for this machine.
ifeq ($(ARCH),$(HOST_ARCH))
COMPILE_TARGETS += $(GEN_DIR)/lut_kernels.o $(LIBDIR)/liblut.a
endif
$(call lut-convert,$(QUANT),$(GEN_DIR),$(MODEL_DIR),$(GGUF_FINAL),$(if $(filter 1,$(QUANT_EMBD)),--quant-embd),$(LOG_DIR)/convert_to_tl.log,$(call step-title,convert))
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
