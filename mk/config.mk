# Toolchain, architecture, flags and verbosity.  Everything here is computed once per make run
# with as few $(shell) calls as possible: a no-op `make` must stay well under half a second.

BUILD ?= build
O ?=
ifneq ($(O),)
BUILD := $(O)
endif
BIN := $(BUILD)/bin
OBJ := $(BUILD)/obj
LIBDIR := $(BUILD)/lib
GEN := $(BUILD)/gen
LOG_DIR ?= logs

# ---- verbosity: V=0 one line per step, V=1 full commands, V=2 also why a target is rebuilt ----
V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

# ---- architecture (setup_env.py's alias table) ----------------------------------------------
UNAME_M := $(shell uname -m)
ARCH_ALIASES_x86_64 := x86_64 AMD64 amd64 x86 x64 i686 i386
ARCH_ALIASES_arm64 := aarch64 arm64 ARM64
ifneq ($(filter $(UNAME_M),$(ARCH_ALIASES_x86_64)),)
HOST_ARCH := x86_64
else ifneq ($(filter $(UNAME_M),$(ARCH_ALIASES_arm64)),)
HOST_ARCH := arm64
else
HOST_ARCH := unsupported
endif
# ARCH= selects the target of code generation and TL packing (e.g. ARCH=arm64 on an x86 host).
ARCH ?= $(HOST_ARCH)
ifeq ($(ARCH),unsupported)
$(error unsupported architecture '$(UNAME_M)' (from uname -m); bitmake supports x86_64 (x86_64, AMD64, x86) and arm64 (aarch64, arm64, ARM64); set ARCH=x86_64 or ARCH=arm64 to generate for one of them)
endif
ifeq ($(filter x86_64 arm64,$(ARCH)),)
$(error unknown ARCH '$(ARCH)'; use ARCH=x86_64 or ARCH=arm64)
endif

# ---- compiler: clang by default (any version >= 14, versioned names found on PATH), gcc works --
path-dirs := $(subst :, ,$(PATH))
find-prog = $(firstword $(wildcard $(addsuffix /$(1),$(path-dirs))))
ifeq ($(origin CC),default)
CC := $(or $(call find-prog,clang),$(notdir $(lastword $(sort $(wildcard $(addsuffix /clang-[0-9][0-9],$(path-dirs)))))),$(call find-prog,gcc),cc)
CC := $(notdir $(CC))
endif
AR := $(or $(call find-prog,llvm-ar),$(call find-prog,ar),ar)
PKG_CONFIG ?= pkg-config

# Flags every C file gets.  -MMD -MP give automatic header dependencies.
OPT ?= -O2
CSTD := -std=c11
WARNINGS := -Wall -Wextra -Wshadow -Wvla -Wno-unused-parameter
CPPFLAGS_ALL := -D_GNU_SOURCE -Itools/common -Ikernels -I$(GEN)
CFLAGS ?= $(OPT) -g
LDFLAGS ?=
ifeq ($(SAN),1)
# Separate -fsanitize flags: a comma would split the arguments of the $(call stamped,...) macros.
SAN_FLAGS := -fsanitize=address -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
BASE_CFLAGS = $(CSTD) $(CFLAGS) $(WARNINGS) $(SAN_FLAGS) $(CPPFLAGS_ALL)
BASE_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)

# Library link flags; pkg-config is asked only for what is not the plain -l name on Debian, so
# a no-op make does not fork pkg-config five times.
LIBS_JSON := -ljansson
LIBS_XXHASH := -lxxhash
LIBS_CRYPTO := -lcrypto
LIBS_CURL := -lcurl
LIBS_CRITERION := -lcriterion
LIBS_MATH := -lm
LIBS_THREADS := -pthread

NPROC := $(words $(wildcard /sys/devices/system/cpu/cpu[0-9]*))

#= O: build directory (default build)
#= SAN: 1 = build with AddressSanitizer and UBSan (make test SAN=1)
#= OPT: optimisation flags (default -O2)
