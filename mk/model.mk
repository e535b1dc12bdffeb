# The model being prepared: MODEL, its preset, where it lives, which quantization, and the file
# targets of each pipeline step.  Step fragments (mk/download.mk, mk/convert.mk, ...) append
# their file targets to <STEP>_TARGETS; the step names below are only aliases for those files.

#= MODEL: model name: a preset in presets/ (default tiny, a synthetic model made locally)
#= HF_REPO: any Hugging Face repo id; overrides the preset's
#= MODEL_DIR: the model's directory (default models/MODEL); an existing local checkpoint there is used as is, without downloading
#= LOG_DIR: where per-step logs go (default logs)
#= QUANT: i2_s (default), tl2 (x86_64), tl1 (arm64), tq1_0, tq2_0
#= QUANT_EMBD: 1 = f16 token embeddings
#= PRETUNED: 1 = tuned kernel parameters from presets/
#= DIRECT: 1 = make the final i2_s/tq GGUF straight from the checkpoint (no f32 intermediate)
#= ARCH: x86_64 or arm64 (default: this machine, from uname -m)
#= V: 0 one line per step, 1 full commands, 2 also why each target is rebuilt
#= NO_INSTALL: 1 = the preflight never installs Debian packages, it only prints the apt-get line
#= CC: C compiler (default: clang, else the newest clang-NN on PATH, else gcc)



# MODEL_DIR given without MODEL names the model after its directory, as setup_env -md does.
ifeq ($(origin MODEL),undefined)
ifneq ($(origin MODEL_DIR),undefined)
MODEL := $(notdir $(patsubst %/,%,$(MODEL_DIR)))
endif
endif
MODEL ?= tiny
MODEL_DIR ?= models/$(MODEL)
MODEL_DIR := $(patsubst %/,%,$(MODEL_DIR))

# A preset is a flat `key = value` file (valid make syntax and trivially parsed by the C tools).
PRESET_FILE := $(wildcard presets/$(MODEL).ini)
ifneq ($(PRESET_FILE),)
include $(PRESET_FILE)
endif
KNOWN_MODELS := $(sort $(basename $(notdir $(wildcard presets/*.ini))))

# Where the checkpoint comes from: generated (synthetic preset), a local directory, or the Hub.
HF_REPO ?= $(hf_repo)
ifneq ($(synthetic),)
MODEL_SOURCE := synthetic
else ifneq ($(wildcard $(MODEL_DIR)/config.json),)
ifeq ($(wildcard $(MODEL_DIR)/.cache/huggingface),)
MODEL_SOURCE := local
else
MODEL_SOURCE := hub
endif
else ifneq ($(HF_REPO),)
MODEL_SOURCE := hub
else
MODEL_SOURCE := unknown
endif

# ---- quantization types per architecture ------------------------------------------------------
QUANTS_x86_64 := i2_s tl2 tq1_0 tq2_0
QUANTS_arm64 := i2_s tl1 tq1_0 tq2_0
QUANT ?= i2_s
ifeq ($(filter $(QUANT),$(QUANTS_$(ARCH))),)
$(error QUANT=$(QUANT) is not supported on $(ARCH); choose one of: $(QUANTS_$(ARCH)))
endif
QUANT_EMBD ?= 0
PRETUNED ?= 0
DIRECT ?= 0

# ---- the file targets, named as setup_env.py names them ---------------------------------------
CHECKPOINT := $(MODEL_DIR)/checkpoint.manifest
GGUF_F32 := $(MODEL_DIR)/ggml-model-f32.gguf
GGUF_FINAL := $(MODEL_DIR)/ggml-model-$(QUANT).gguf
GEN_DIR := $(GEN)/$(MODEL)/$(QUANT)

DOWNLOAD_TARGETS :=
CODEGEN_TARGETS :=
COMPILE_TARGETS :=
CONVERT_TARGETS :=
QUANTIZE_TARGETS :=
RUN_TARGETS :=
PIPELINE_TARGETS = $(DOWNLOAD_TARGETS) $(CODEGEN_TARGETS) $(COMPILE_TARGETS) $(CONVERT_TARGETS) $(QUANTIZE_TARGETS) $(RUN_TARGETS)

# A model we know nothing about is an error only when a step needs its checkpoint.
define unknown-model-error
unknown model '$(MODEL)': no presets/$(MODEL).ini, no checkpoint in $(MODEL_DIR) and no HF_REPO. Known models: $(KNOWN_MODELS). Or set HF_REPO=owner/name, or MODEL_DIR=path/to/checkpoint
endef

## download: fetch (or generate, for synthetic models) the checkpoint into MODEL_DIR
## codegen: generate the TL1/TL2 LUT kernels for the model's shapes (QUANT=tl1/tl2)
## compile: build the kernel library and the inference engine for QUANT
## convert: checkpoint -> GGUF (f32, or the TL type for QUANT=tl1/tl2)
## quantize: f32 GGUF -> QUANT (i2_s, tq1_0, tq2_0)
.PHONY: download codegen compile convert quantize
download: $$(DOWNLOAD_TARGETS)
codegen: $$(CODEGEN_TARGETS)
compile: $$(COMPILE_TARGETS)
convert: $$(CONVERT_TARGETS)
quantize: $$(QUANTIZE_TARGETS)

## models: list the presets (real models and synthetic ones)
.PHONY: models
models:
	@for f in $(sort $(wildcard presets/*.ini)); do \
	  n=$${f#presets/}; n=$${n%.ini}; \
	  r=$$(sed -n 's/^hf_repo *= *//p;s/^synthetic *= *\(.*\)/synthetic (mkmodel --preset \1)/p' $$f | head -1); \
	  printf '  %-32s %s\n' "$$n" "$$r"; done
