# i2s-quantize: f32/f16/bf16 GGUF -> I2_S (bitnet.cpp) or TQ1_0/TQ2_0 (mainline llama.cpp), and
# I2_S -> TQ1_0/TQ2_0.  The rules it shares with gguf-convert's direct outputs live in
# tools/common/quant_plan.{c,h}, which calls the kernels' references: whoever links libcommon
# for quant_plan links libkernels after it.
TEST_LDLIBS += $(LIBDIR)/libkernels.a
