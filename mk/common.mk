# The shared C core (tools/common/): errors, logging, files, hashes, JSON, progress, and the
# format readers/writers every tool links.
COMMON_SRCS := $(sort $(wildcard tools/common/*.c))
$(call add-lib,common,$(COMMON_SRCS))
COMMON_LDLIBS := $(LIBS_JSON) $(LIBS_XXHASH) $(LIBS_CRYPTO) $(LIBS_MATH) $(LIBS_THREADS)
