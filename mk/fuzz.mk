# libFuzzer targets for the parsers of files that come from the internet.  Every
# tests/fuzz/<name>_fuzz.c defines LLVMFuzzerTestOneInput and is linked with the whole shared
# core compiled with -fsanitize=fuzzer-no-link,address,undefined.  Seeds: tests/fuzz/<name>/.
# `make fuzz FUZZ_TIME=60` runs each target for FUZZ_TIME seconds; crashes land in
# $(BUILD)/fuzz/<name>-crashes/ and fail the target.

FUZZ_CC ?= $(or $(filter clang%,$(CC)),$(call find-prog,clang),$(notdir $(lastword $(sort $(wildcard $(addsuffix /clang-[0-9][0-9],$(path-dirs)))))))
#= FUZZ_TIME: seconds each fuzz target runs in make fuzz (default 60)
FUZZ_TIME ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*_fuzz.c))
FUZZ_NAMES := $(patsubst tests/fuzz/%_fuzz.c,%,$(FUZZ_SRCS))
FUZZ_CORE_SRCS := $(COMMON_SRCS) $(wildcard kernels/*_ref.c)
FUZZ_CFLAGS = $(CSTD) -O1 -g $(WARNINGS) $(CPPFLAGS_ALL) -fsanitize=address -fsanitize=undefined -fno-sanitize-recover=undefined
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/,$(FUZZ_NAMES))

$(foreach n,$(FUZZ_NAMES),$(call stamped,$(FUZZ_DIR)/$(n),tests/fuzz/$(n)_fuzz.c $(FUZZ_CORE_SRCS),$(BUILD)/preflight.ok,$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $(FUZZ_DIR)/$(n).tmp tests/fuzz/$(n)_fuzz.c $(FUZZ_CORE_SRCS) $(COMMON_LDLIBS) && mv $(FUZZ_DIR)/$(n).tmp $(FUZZ_DIR)/$(n),--log $(LOG_DIR)/compile.log --title '  FUZZ-LD $(FUZZ_DIR)/$(n)'))

## fuzz: build the libFuzzer targets (GGUF, safetensors, JSON headers...) and run each FUZZ_TIME seconds
.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/$$n-corpus $(FUZZ_DIR)/$$n-crashes; \
	  seeds=; [ -d tests/fuzz/$$n ] && seeds=tests/fuzz/$$n; \
	  echo ">>> fuzz $$n ($(FUZZ_TIME) s)"; \
	  $(FUZZ_DIR)/$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/$$n-crashes/ $(FUZZ_DIR)/$$n-corpus $$seeds \
	    > $(LOG_DIR)/fuzz-$$n.log 2>&1 || { echo "fuzz $$n: crash, see $(LOG_DIR)/fuzz-$$n.log and $(FUZZ_DIR)/$$n-crashes/"; exit 1; }; \
	  grep -h 'stat::number_of_executed_units' $(LOG_DIR)/fuzz-$$n.log | sed "s/^/  $$n: /"; \
	done
