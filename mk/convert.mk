# The convert step: the downloaded (or generated, or local) checkpoint -> GGUF with gguf-convert.
#
# Contract with mk/quantize.mk (the quantize step) about $(GGUF_FINAL), for QUANT = i2_s, tq1_0,
# tq2_0:
#   DIRECT=0 (default): this fragment makes $(GGUF_F32) (ggml-model-f32.gguf, a target of its
#            own so that `make quantize` is one step) and appends it to CONVERT_TARGETS;
#            mk/quantize.mk defines the rule for $(GGUF_FINAL) from $(GGUF_F32).
#   DIRECT=1: this fragment defines the rule for $(GGUF_FINAL) straight from the checkpoint
#            (gguf-convert --outtype $(QUANT), byte-identical to the two-step result) and appends
#            it to CONVERT_TARGETS; $(GGUF_F32) is then not part of the pipeline, and
#            mk/quantize.mk must define nothing for $(GGUF_FINAL).
# The converter binary is a normal prerequisite: a rebuilt converter may write other bytes
# (bm-step reconverts only if its content changed).  QUANT = tl1/tl2 are converted by the TL
# step (mk/codegen.mk), which needs the generated kernel configuration.

CONVERT_OPTS = --log $(LOG_DIR)/convert_to_f32_gguf.log $(call step-title,convert)

ifneq ($(filter $(QUANT),i2_s tq1_0 tq2_0),)
ifeq ($(DIRECT),1)
$(call stamped,$(GGUF_FINAL),$(CHECKPOINT) $(BIN)/gguf-convert,,$(BIN)/gguf-convert $(MODEL_DIR) --outtype $(QUANT) $(if $(filter 1,$(QUANT_EMBD)),--quant-embd) --outfile $(GGUF_FINAL),$(CONVERT_OPTS))
CONVERT_TARGETS += $(GGUF_FINAL)
else
$(call stamped,$(GGUF_F32),$(CHECKPOINT) $(BIN)/gguf-convert,,$(BIN)/gguf-convert $(MODEL_DIR) --outtype f32 --outfile $(GGUF_F32),$(CONVERT_OPTS))
CONVERT_TARGETS += $(GGUF_F32)
endif
endif
