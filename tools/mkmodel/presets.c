/* mkmodel presets: the §13.1 test vectors, the pipeline's tiny models and the shapes of the real
 * models bitmake supports.  Invariant: every dimension of the non-test presets is the real
 * model's (sources in each `about` line and in mkmodel --help); only the weights are synthetic. */
#include <string.h>

#include "mkmodel.h"

#define TV(n, dt, fam, pk, sc, theta, a)                                                      \
	{ .name = n, .about = a, .family = fam, .tv = fam == MK_LLAMA ? 2 : 1, .dtype = dt,     \
	  .packed = pk, .scale = sc, .hidden = 256, .intermediate = 512, .layers = 2,           \
	  .heads = 4, .kv_heads = 2, .vocab = 300, .max_pos = 2048, .rope_theta = theta,        \
	  .rms_eps = 1e-5 }

static const struct mk_preset presets[] = {
	TV("tv-f32", ST_F32, MK_BITNET, false, MK_SCALE_NONE, 10000.0,
	   "test vector tv-bitnet, F32 (convert-quantize.md 13.1)"),
	TV("tv-bf16", ST_BF16, MK_BITNET, false, MK_SCALE_NONE, 10000.0,
	   "test vector tv-bitnet, BF16 (convert-quantize.md 13.1)"),
	TV("tv-llama", ST_BF16, MK_LLAMA, true, MK_SCALE_DIV, 500000.0,
	   "test vector tv-llama: BF16 + packed U8 with weight_scale 42.5 (convert-quantize.md 13.1)"),
	{ .name = "tiny", .about = "pipeline default: BitnetForCausalLM, 4 layers, 3.3M params (~7 MB)",
	  .family = MK_BITNET, .dtype = ST_BF16, .hidden = 256, .intermediate = 768, .layers = 4,
	  .heads = 4, .kv_heads = 2, .vocab = 512, .max_pos = 2048, .rope_theta = 10000.0,
	  .rms_eps = 1e-5, .hidden_act = "silu" },
	{ .name = "tiny-llama",
	  .about = "LlamaForCausalLM, packed U8 + weight_scale like Llama3-8B-1.58, 4 layers (~1.3 MB)",
	  .family = MK_LLAMA, .dtype = ST_BF16, .packed = true, .scale = MK_SCALE_DIV, .hidden = 256,
	  .intermediate = 768, .layers = 4, .heads = 4, .kv_heads = 2, .vocab = 512, .max_pos = 2048,
	  .rope_theta = 500000.0, .rms_eps = 1e-5, .hidden_act = "silu" },
	/* 1bitLLM's reproductions: shapes from BitNet's codegen tables (lut-kernels.md §1.2);
	 * vocab 32002, 16 heads, 24 layers from anchors.md; 3B: 26 layers, 32 heads (its config). */
	{ .name = "bitnet_b1_58-large",
	  .about = "1bitLLM/bitnet_b1_58-large shapes: 24 x (1536, 4096), 16 heads, vocab 32002",
	  .family = MK_BITNET, .dtype = ST_BF16, .hidden = 1536, .intermediate = 4096, .layers = 24,
	  .heads = 16, .kv_heads = 16, .vocab = 32002, .max_pos = 2048, .rope_theta = 10000.0,
	  .rms_eps = 1e-5, .hidden_act = "silu" },
	{ .name = "bitnet_b1_58-3B",
	  .about = "1bitLLM/bitnet_b1_58-3B shapes: 26 x (3200, 8640), 32 heads, vocab 32002",
	  .family = MK_BITNET, .dtype = ST_BF16, .hidden = 3200, .intermediate = 8640, .layers = 26,
	  .heads = 32, .kv_heads = 32, .vocab = 32002, .max_pos = 2048, .rope_theta = 10000.0,
	  .rms_eps = 1e-5, .hidden_act = "silu" },
	/* convert-quantize.md §10 (model card values). */
	{ .name = "BitNet-b1.58-2B-4T",
	  .about = "microsoft/BitNet-b1.58-2B-4T shapes: 30 x (2560, 6912), 20/5 heads, vocab 128256, "
		   "packed U8",
	  .family = MK_BITNET2B, .dtype = ST_BF16, .packed = true, .scale = MK_SCALE_MUL,
	  .hidden = 2560, .intermediate = 6912, .layers = 30, .heads = 20, .kv_heads = 5,
	  .vocab = 128256, .max_pos = 4096, .rope_theta = 500000.0, .rms_eps = 1e-5,
	  .hidden_act = "relu2", .bpe = true },
	/* Llama-3-8B dimensions (lut-kernels.md §1.2 shapes: 14336/4096, 8 KV heads x 128). */
	{ .name = "Llama3-8B-1.58-100B-tokens",
	  .about = "HF1BitLLM/Llama3-8B-1.58-100B-tokens shapes: 32 x (4096, 14336), 32/8 heads, "
		   "vocab 128256, packed U8",
	  .family = MK_LLAMA, .dtype = ST_BF16, .packed = true, .scale = MK_SCALE_DIV,
	  .hidden = 4096, .intermediate = 14336, .layers = 32, .heads = 32, .kv_heads = 8,
	  .vocab = 128256, .max_pos = 8192, .rope_theta = 500000.0, .rms_eps = 1e-5,
	  .hidden_act = "silu", .bpe = true },
	/* Falcon3 (tiiuae model cards: head_dim 256, rope 1000042, 8/4 heads for 1B, 12/4 above;
	 * hidden/intermediate/layers as published for the base models, which the 1.58bit ones keep). */
#define FALCON3(n, h, i, l, q, ctx, sz)                                                       \
	{ .name = n, .about = "tiiuae/" n " shapes: " sz ", head_dim 256, vocab 131072, packed U8",  \
	  .family = MK_LLAMA, .dtype = ST_BF16, .packed = true, .scale = MK_SCALE_DIV, .hidden = h,  \
	  .intermediate = i, .layers = l, .heads = q, .kv_heads = 4, .head_dim = 256,               \
	  .vocab = 131072, .max_pos = ctx, .rope_theta = 1000042.0, .rms_eps = 1e-6,              \
	  .hidden_act = "silu", .bpe = true }
	FALCON3("Falcon3-1B-1.58bit", 2048, 8192, 18, 8, 8192, "18 x (2048, 8192), 8/4 heads"),
	FALCON3("Falcon3-1B-Instruct-1.58bit", 2048, 8192, 18, 8, 8192, "18 x (2048, 8192), 8/4 heads"),
	FALCON3("Falcon3-3B-1.58bit", 3072, 9216, 22, 12, 32768, "22 x (3072, 9216), 12/4 heads"),
	FALCON3("Falcon3-3B-Instruct-1.58bit", 3072, 9216, 22, 12, 32768,
		"22 x (3072, 9216), 12/4 heads"),
	FALCON3("Falcon3-7B-1.58bit", 3072, 23040, 28, 12, 32768, "28 x (3072, 23040), 12/4 heads"),
	FALCON3("Falcon3-7B-Instruct-1.58bit", 3072, 23040, 28, 12, 32768,
		"28 x (3072, 23040), 12/4 heads"),
	FALCON3("Falcon3-10B-1.58bit", 3072, 23040, 40, 12, 32768, "40 x (3072, 23040), 12/4 heads"),
	FALCON3("Falcon3-10B-Instruct-1.58bit", 3072, 23040, 40, 12, 32768,
		"40 x (3072, 23040), 12/4 heads"),
};

const struct mk_preset *mk_preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
		if (strcmp(presets[i].name, name) == 0)
			return &presets[i];
	return NULL;
}

const struct mk_preset *mk_preset_at(unsigned i)
{
	return i < sizeof presets / sizeof *presets ? &presets[i] : NULL;
}
