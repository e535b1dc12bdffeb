# Tests: every tests/unit/*.c and tests/cli/*.c goes into one Criterion binary, so `make test`
# ends with a single synthesis line.  Fragments add what the tests link or need built:
#   TEST_ARCHIVES += $(LIB_x)   TEST_LDLIBS += -lfoo   TEST_DEPS += $(BIN)/helper-binary
# Tests find the tree through the environment: BITMAKE_ROOT (this directory), BITMAKE_BIN
# (build/bin), BITMAKE_SHARED (../shared), BITMAKE_TMP (a scratch directory under build/).

TEST_SOURCES := $(sort $(wildcard tests/unit/*.c tests/cli/*.c tests/lib/*.c))
TEST_BIN := $(BUILD)/tests/bitmake-tests
TEST_ARCHIVES += $(LIB_common)
TEST_LDLIBS += $(COMMON_LDLIBS) $(LIBS_CRITERION)
SHARED_DIR ?= $(abspath ../shared)

$(call compile-rules,$(TEST_SOURCES),-Itests,$(BUILD)/preflight-test.ok)
$(call stamped,$(TEST_BIN),$(call obj-of,$(TEST_SOURCES)) $(TEST_ARCHIVES),$(BUILD)/preflight-test.ok,$(CC) $(BASE_LDFLAGS) -o $(TEST_BIN).tmp $(call obj-of,$(TEST_SOURCES)) $(TEST_ARCHIVES) $(TEST_LDLIBS) && mv $(TEST_BIN).tmp $(TEST_BIN),--log $(LOG_DIR)/compile.log --title '  LD      $(TEST_BIN)')

TEST_ENV = BITMAKE_ROOT=$(CURDIR) BITMAKE_BIN=$(abspath $(BIN)) BITMAKE_SHARED=$(SHARED_DIR) \
	BITMAKE_TMP=$(abspath $(BUILD)/tests/tmp) CC=$(CC)

#= T: extra Criterion options for make test, e.g. T="--filter gguf_read/*"
T ?=

## test: build everything and run all tests (unit + CLI); reports go to LOG_DIR/tests/
.PHONY: test
test: $(TEST_BIN) $(BMSTEP) $$(ALL_TOOLS) $$(TEST_DEPS)
	@rm -rf $(BUILD)/tests/tmp && mkdir -p $(LOG_DIR)/tests $(BUILD)/tests/tmp
	$(Q)$(TEST_ENV) $(TEST_BIN) --jobs $(NPROC) --tap=$(LOG_DIR)/tests/unit.tap $(T)
