# Dependencies and preflight.  `make` runs the preflight once (a file target), `make doctor`
# prints the full report; both install missing Debian packages when run as root.

DOCTOR = sh mk/doctor.sh --cc $(CC) --make-version $(MAKE_VERSION) --quant $(QUANT) --arch $(ARCH)

$(BUILD)/preflight.ok: mk/doctor.sh
	@mkdir -p $(@D)
	$(Q)$(DOCTOR) --quiet --for build
	@touch $@

$(BUILD)/preflight-test.ok: mk/doctor.sh
	@mkdir -p $(@D)
	$(Q)$(DOCTOR) --quiet --for test
	@touch $@

## doctor: check compiler, make, libraries, test tools, disk and CPU; install what is missing (as root)
.PHONY: doctor
doctor:
	$(Q)$(DOCTOR) --for test --model-dir $(MODEL_DIR)
	@mkdir -p $(BUILD) && touch $(BUILD)/preflight.ok $(BUILD)/preflight-test.ok
