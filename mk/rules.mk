# Rule library: command-change detection (Kbuild's if_changed), content stamps (bm-step),
# compile/archive/link macros.  Fragments in mk/ use only the macros documented here:
#
#   $(call stamped,TARGET,PREREQS,ORDER-ONLY,COMMAND[,BM-STEP OPTIONS])
#       TARGET is rebuilt by COMMAND when a prerequisite is newer *and* differs in content, when
#       COMMAND differs from the one that built it, or when it is missing.  COMMAND must write
#       TARGET atomically (temp file + rename) and must not use $@ (it is compared as text).
#   $(call add-lib,NAME,SOURCES[,EXTRA_CFLAGS])          -> $(LIBDIR)/libNAME.a, in $(LIB_NAME)
#   $(call add-tool,NAME,SOURCES,ARCHIVES[,LDLIBS[,EXTRA_CFLAGS]]) -> $(BIN)/NAME, in $(TOOL_NAME)
#   $(call compile-rules,SOURCES[,EXTRA_CFLAGS[,ORDER-ONLY]])  objects only; $(call obj-of,SOURCES)
#   $(call step-title,STEP)   the '>>> MODEL STEP' line pipeline steps print
#
# Every stamped target keeps ".<name>.cmd" next to it (see tools/bm-step/main.c).

.SECONDEXPANSION:
.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: FORCE
FORCE:

empty :=
space := $(empty) $(empty)
comma := ,
escsq = $(subst ','\'',$(1))
stamp-of = $(dir $(1)).$(notdir $(1)).cmd
# FORCE when the command that last built $(1) (savedcmd_, read from its stamp) is not today's.
cmd-changed = $(if $(subst x$(strip $(cmd@$(1)))x,,x$(strip $(savedcmd_$(1)))x),FORCE)

BMSTEP := $(BIN)/bm-step
BMSTEP_FLAGS := $(if $(filter 1 2,$(V)),--verbose) $(if $(filter 2,$(V)),--why)

STAMPED :=
define stamped-rule
cmd@$(1) = $(4)
$(1): $(2) $$$$(call cmd-changed,$(1)) | $(BMSTEP) $(3)
	@$$(BMSTEP) $$(BMSTEP_FLAGS) $(5) --target '$$@' --cmd '$$(call escsq,$$(cmd@$$@))' $$(filter-out FORCE,$$^)
STAMPED += $(1)
endef
stamped = $(eval $(call stamped-rule,$(1),$(2),$(3),$(4),$(5)))

step-title = --title '>>> $(MODEL) $(1)'

# ---- C builds -------------------------------------------------------------------------------
obj-of = $(patsubst %.c,$(OBJ)/%.o,$(1))
ALL_OBJS :=
compile-one = $(call stamped,$(call obj-of,$(1)),$(1),$(3),$(CC) $(BASE_CFLAGS) $(2) -MMD -MP -c $(1) -o $(call obj-of,$(1)),--log $(LOG_DIR)/compile.log)
compile-rules = $(foreach s,$(1),$(if $(filter $(call obj-of,$(s)),$(ALL_OBJS)),,$(eval ALL_OBJS += $(call obj-of,$(s)))$(call compile-one,$(s),$(2),$(3))))

define add-lib-rules
LIB_$(1) := $(LIBDIR)/lib$(1).a
$$(call compile-rules,$(2),$(3))
$$(call stamped,$(LIBDIR)/lib$(1).a,$(call obj-of,$(2)),,rm -f $(LIBDIR)/lib$(1).a.tmp && $(AR) rcs $(LIBDIR)/lib$(1).a.tmp $(call obj-of,$(2)) && mv $(LIBDIR)/lib$(1).a.tmp $(LIBDIR)/lib$(1).a,--log $(LOG_DIR)/compile.log)
endef
add-lib = $(eval $(call add-lib-rules,$(1),$(2),$(3)))

ALL_TOOLS :=
define add-tool-rules
TOOL_$(subst -,_,$(1)) := $(BIN)/$(1)
ALL_TOOLS += $(BIN)/$(1)
$$(call compile-rules,$(2),$(5))
$$(call stamped,$(BIN)/$(1),$(call obj-of,$(2)) $(3),,$(CC) $$(BASE_LDFLAGS) -o $(BIN)/$(1).tmp $(call obj-of,$(2)) $(3) $(4) && mv $(BIN)/$(1).tmp $(BIN)/$(1),--log $(LOG_DIR)/compile.log --title '  LD      $(BIN)/$(1)')
endef
add-tool = $(eval $(call add-tool-rules,$(1),$(2),$(3),$(4),$(5)))

# ---- bm-step itself: one compiler call from sources, so that it needs no stamps of its own.
# Build infrastructure, not product code: never built with SAN flags, so SAN=1 does not touch it.
BMSTEP_SRCS := tools/bm-step/main.c tools/bm-step/manifest.c $(addprefix tools/common/,bn_err.c bn_file.c bn_hash.c bn_log.c bn_util.c)
$(BMSTEP): $(BMSTEP_SRCS) | $(BUILD)/preflight.ok
	@mkdir -p $(BIN)
	$(Q)$(CC) $(CSTD) $(CFLAGS) $(WARNINGS) $(CPPFLAGS_ALL) $(LDFLAGS) -MMD -MP -MF $(BIN)/.bm-step.d -o $@.tmp $(BMSTEP_SRCS) $(LIBS_XXHASH) $(LIBS_CRYPTO) && mv $@.tmp $@
