# The quantize step: $(GGUF_FINAL) for QUANT = i2_s, tq1_0, tq2_0 from $(GGUF_F32) with
# i2s-quantize, as setup_env.py runs `llama-quantize f32 i2_s I2_S 1` (QUANT_EMBD=1 adds
# --token-embedding-type f16; log quantize_to_i2s.log), appended to QUANTIZE_TARGETS.
#
# Contract with mk/convert.mk about $(GGUF_FINAL): with DIRECT=0 (default) the converter makes
# $(GGUF_F32) and this fragment defines the rule for $(GGUF_FINAL); with DIRECT=1 the converter
# makes $(GGUF_FINAL) straight from the checkpoint and this fragment defines nothing.  A repo
# that ships the final GGUF (preset gguf_file, mk/download.mk) needs no quantize step either.
# The rule exists only when the convert step provides $(GGUF_F32).  i2s-quantize is a normal
# prerequisite: a rebuilt quantizer re-runs, and bm-step keeps the output if the bytes agree.

QUANTIZE_OPTS = $(call step-title,quantize) --log $(LOG_DIR)/quantize_to_i2s.log

ifneq ($(filter $(QUANT),i2_s tq1_0 tq2_0),)
ifneq ($(DIRECT),1)
ifeq ($(gguf_file),)
ifneq ($(filter $(GGUF_F32),$(CONVERT_TARGETS)),)
$(call stamped,$(GGUF_FINAL),$(GGUF_F32) $(BIN)/i2s-quantize,,$(BIN)/i2s-quantize $(if $(filter 1,$(QUANT_EMBD)),--token-embedding-type f16) --type $(QUANT) $(GGUF_F32) $(GGUF_FINAL),$(QUANTIZE_OPTS))
QUANTIZE_TARGETS += $(GGUF_FINAL)
endif
endif
endif
endif
