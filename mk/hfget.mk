# hfget, the Hugging Face Hub downloader (tools/hfget/), its mock hub for the tests
# (tests/mockhub/) and its benchmark.  See ../shared/docs/hf-hub-protocol.md.

HFGET_SRCS := $(sort $(wildcard tools/hfget/*.c))
$(call add-tool,hfget,$(HFGET_SRCS),$(LIB_common),$(COMMON_LDLIBS) $(LIBS_CURL))

# The hfget modules without main.c, for the unit tests and the fuzz target.
HFGET_LIB_SRCS := $(filter-out tools/hfget/main.c,$(HFGET_SRCS))
$(call add-lib,hfget,$(HFGET_LIB_SRCS))
TEST_ARCHIVES += $(LIBDIR)/libhfget.a
TEST_LDLIBS += $(LIBS_CURL) -lutil

# The mock hub the CLI tests start on 127.0.0.1 (tests/mockhub/mockhub.c, libmicrohttpd).
MOCKHUB := $(BUILD)/tests/mockhub
MOCKHUB_SRCS := tests/mockhub/mockhub.c
$(call compile-rules,$(MOCKHUB_SRCS),,$(BUILD)/preflight-test.ok)
$(call stamped,$(MOCKHUB),$(call obj-of,$(MOCKHUB_SRCS)) $(LIB_common),$(BUILD)/preflight-test.ok,$(CC) $(BASE_LDFLAGS) -o $(MOCKHUB).tmp $(call obj-of,$(MOCKHUB_SRCS)) $(LIB_common) $(COMMON_LDLIBS) -lmicrohttpd && mv $(MOCKHUB).tmp $(MOCKHUB),--log $(LOG_DIR)/compile.log --title '  LD      $(MOCKHUB)')

# An LD_PRELOAD shim that makes writes to download temp files fail with ENOSPC after
# ENOSPC_AFTER bytes: the disk-full test without a full disk.  Never sanitised (it is preloaded).
ENOSPC_SO := $(BUILD)/tests/enospc.so
$(call stamped,$(ENOSPC_SO),tests/mockhub/enospc.c,$(BUILD)/preflight-test.ok,$(CC) -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -fPIC -shared -o $(ENOSPC_SO).tmp tests/mockhub/enospc.c -ldl && mv $(ENOSPC_SO).tmp $(ENOSPC_SO),--log $(LOG_DIR)/compile.log --title '  CC      $(ENOSPC_SO)')
TEST_DEPS += $(MOCKHUB) $(ENOSPC_SO)

# bench-hfget: a 2 GiB download over loopback next to `curl -o` from the same mock hub in the same
# run (ratio, and hfget's peak RSS).  The file lives in build/bench-hfget/ and is removed after.
HFGET_BENCH := $(BUILD)/tests/hfget-bench
$(call compile-rules,tests/mockhub/hfget_bench.c,,$(BUILD)/preflight-test.ok)
$(call stamped,$(HFGET_BENCH),$(call obj-of,tests/mockhub/hfget_bench.c),$(BUILD)/preflight-test.ok,$(CC) $(BASE_LDFLAGS) -o $(HFGET_BENCH).tmp $(call obj-of,tests/mockhub/hfget_bench.c) $(LIBS_CURL) && mv $(HFGET_BENCH).tmp $(HFGET_BENCH),--log $(LOG_DIR)/compile.log --title '  LD      $(HFGET_BENCH)')
#= HFGET_BENCH_SIZE: bytes of the bench-hfget file (default 2 GiB)
HFGET_BENCH_SIZE ?= 2147483648

## bench-hfget: hfget vs curl -o on a 2 GiB loopback download (throughput ratio, peak RSS)
.PHONY: bench-hfget
bench-hfget: $(HFGET_BENCH) $(BIN)/hfget $(MOCKHUB)
	@echo '>>> bench hfget'
	$(Q)$(HFGET_BENCH) --hfget $(BIN)/hfget --mock $(MOCKHUB) --dir $(BUILD)/bench-hfget --size $(HFGET_BENCH_SIZE)
BENCH_TARGETS += bench-hfget
