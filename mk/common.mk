# The shared C core (tools/common/): errors, logging, files, hashes, JSON, progress, and the
# format readers/writers every tool links.
COMMON_SRCS := $(sort $(wildcard tools/common/*.c))
# -ffp-contract=off: quant_plan's AVX-512 clones must round as the reference does (no FMA).
$(call add-lib,common,$(COMMON_SRCS),-ffp-contract=off)
COMMON_LDLIBS := $(LIBS_JSON) $(LIBS_XXHASH) $(LIBS_CRYPTO) $(LIBS_MATH) $(LIBS_THREADS)
