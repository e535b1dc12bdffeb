/* config.json -> the converter class, the GGUF architecture and the hyper-parameter KVs
 * (convert-quantize.md §3).  Invariant: a value is written with the GGUF type gguf-py gives it
 * (counts u32, epsilons and rope values f32) and only when the reference would write it; a value
 * the reference would choke on (a float block count, a null head count) is an error here. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_json.h"
#include "convert.h"

const char cv_supported_archs[] =
	"BitnetForCausalLM / BitNetForCausalLM (BitNet b1.58: 1bitLLM, BitNet-b1.58-2B-4T), "
	"LlamaForCausalLM / LLaMAForCausalLM (Llama3-8B-1.58, Falcon3-*-1.58bit, Falcon-E), "
	"MistralForCausalLM";

static const struct {
	const char *name;
	enum cv_class cls;
} archs[] = {
	{ "BitnetForCausalLM", CV_BITNET }, /* also BitNetForCausalLM: matched case-insensitively */
	{ "LlamaForCausalLM", CV_LLAMA },   /* also LLaMAForCausalLM */
	{ "MistralForCausalLM", CV_LLAMA },
};

/* 1 and *out if key holds a number usable as u32, 0 if absent (or null when null_ok), else an
 * error naming the key. */
static int get_u32(const json_t *root, const char *key, bool null_ok, uint32_t *out,
		   const char *what, struct bn_err *err)
{
	const json_t *v = json_object_get(root, key);
	if (!v || (null_ok && json_is_null(v)))
		return 0;
	if (!json_is_integer(v))
		return bn_seterr(err, BN_EFORMAT, "%s: \"%s\" must be an integer (it is %s)", what,
				 key, json_is_real(v) ? "a real number" : json_is_null(v) ? "null" :
				 json_is_string(v) ? "a string" : "not a number");
	json_int_t i = json_integer_value(v);
	if (i < 0 || i > (json_int_t)UINT32_MAX)
		return bn_seterr(err, BN_EFORMAT, "%s: \"%s\" = %lld is out of range for a u32", what,
				 key, (long long)i);
	*out = (uint32_t)i;
	return 1;
}

static int get_f32(const json_t *root, const char *key, bool null_ok, float *out,
		   const char *what, struct bn_err *err)
{
	const json_t *v = json_object_get(root, key);
	if (!v || (null_ok && json_is_null(v)))
		return 0;
	if (!json_is_number(v))
		return bn_seterr(err, BN_EFORMAT, "%s: \"%s\" must be a number", what, key);
	/* Python: float -> struct.pack('<f'), i.e. double rounded to f32. */
	*out = (float)json_number_value(v);
	return 1;
}

/* find_hparam: the first key of the list present in config.json; a present key must hold a
 * valid value (gguf-py would crash on a null). */
static int find_u32(const json_t *root, const char *const *keys, struct cv_u32 *out,
		    const char *what, struct bn_err *err)
{
	for (; *keys; keys++) {
		if (!json_object_get(root, *keys))
			continue;
		int rc = get_u32(root, *keys, false, &out->v, what, err);
		if (rc < 0)
			return rc;
		out->set = true;
		return 0;
	}
	out->set = false;
	return 0;
}

static int find_f32(const json_t *root, const char *const *keys, struct cv_f32 *out,
		    const char *what, struct bn_err *err)
{
	for (; *keys; keys++) {
		if (!json_object_get(root, *keys))
			continue;
		int rc = get_f32(root, *keys, false, &out->v, what, err);
		if (rc < 0)
			return rc;
		out->set = true;
		return 0;
	}
	out->set = false;
	return 0;
}

static int require(const struct cv_u32 *v, const char *keys, const char *what,
		   struct bn_err *err)
{
	if (!v->set)
		return bn_seterr(err, BN_EFORMAT, "%s: none of %s is given; the model's shape is "
				 "unknown", what, keys);
	if (v->v == 0)
		return bn_seterr(err, BN_EFORMAT, "%s: %s is 0", what, keys);
	return 0;
}

int cv_config_parse(struct cv_config *c, const char *text, size_t len, const char *what,
		    const struct cv_config_opts *o, struct bn_err *err)
{
	memset(c, 0, sizeof *c);
	c->root = bn_json_parse(text, len, what, err);
	if (!c->root)
		return -BN_EFORMAT;
	const json_t *r = c->root;
	int rc = 0;
	if (!json_is_object(r)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: not a JSON object", what);
		goto out;
	}
	const json_t *a = json_object_get(r, "architectures");
	const json_t *a0 = json_is_array(a) ? json_array_get(a, 0) : NULL;
	if (!json_is_string(a0)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: \"architectures\" must be a list whose first "
			       "entry names the model class; supported: %s", what, cv_supported_archs);
		goto out;
	}
	const char *an = json_string_value(a0);
	snprintf(c->arch_hf, sizeof c->arch_hf, "%s", an);
	size_t k;
	for (k = 0; k < sizeof archs / sizeof *archs; k++)
		if (strcasecmp(an, archs[k].name) == 0)
			break;
	if (k == sizeof archs / sizeof *archs) {
		rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: architecture '%s' is not supported; "
			       "supported: %s", what, c->arch_hf, cv_supported_archs);
		goto out;
	}
	c->cls = archs[k].cls;

	static const char *const k_layer[] = { "n_layers", "num_hidden_layers", "n_layer", NULL };
	static const char *const k_ctx[] = { "max_position_embeddings", "n_ctx", NULL };
	static const char *const k_embd[] = { "hidden_size", "n_embd", NULL };
	static const char *const k_ff[] = { "intermediate_size", "n_inner", NULL };
	static const char *const k_head[] = { "num_attention_heads", "n_head", NULL };
	static const char *const k_neps[] = { "layer_norm_eps", "layer_norm_epsilon",
					      "norm_epsilon", NULL };
	struct cv_u32 layer, embd, head;
	if ((rc = find_u32(r, k_layer, &layer, what, err)) ||
	    (rc = find_u32(r, k_ctx, &c->n_ctx, what, err)) ||
	    (rc = find_u32(r, k_embd, &embd, what, err)) ||
	    (rc = find_u32(r, k_ff, &c->n_ff, what, err)) ||
	    (rc = find_u32(r, k_head, &head, what, err)) ||
	    (rc = find_f32(r, k_neps, &c->norm_eps, what, err)))
		goto out;
	if ((rc = require(&layer, "num_hidden_layers/n_layers/n_layer", what, err)) ||
	    (rc = require(&embd, "hidden_size/n_embd", what, err)) ||
	    (rc = require(&head, "num_attention_heads/n_head", what, err)))
		goto out;
	c->n_layer = layer.v;
	c->n_embd = embd.v;
	c->n_head = head.v;
	if (!c->n_ff.set || c->n_ff.v == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: intermediate_size is missing or 0; llama.cpp "
			       "needs feed_forward_length", what);
		goto out;
	}
	/* hparams.get(): absent and null are the same */
	int got = get_u32(r, "num_key_value_heads", true, &c->n_head_kv.v, what, err);
	if (got < 0) {
		rc = got;
		goto out;
	}
	c->n_head_kv.set = got;
	if ((got = get_f32(r, "rope_theta", true, &c->rope_theta.v, what, err)) < 0) {
		rc = got;
		goto out;
	}
	c->rope_theta.set = got;
	if ((got = get_f32(r, "rms_norm_eps", true, &c->rms_eps.v, what, err)) < 0) {
		rc = got;
		goto out;
	}
	c->rms_eps.set = got;
	if (!c->rms_eps.set) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: rms_norm_eps is missing; llama.cpp needs "
			       "layer_norm_rms_epsilon for %s", what, c->arch_hf);
		goto out;
	}
	const json_t *ne = json_object_get(r, "num_local_experts");
	if (ne && !json_is_null(ne) && !(json_is_integer(ne) && json_integer_value(ne) == 0)) {
		rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: mixture-of-experts models "
			       "(num_local_experts) are not supported", what);
		goto out;
	}
	if (c->n_head_kv.set && (c->n_head_kv.v == 0 || c->n_head % c->n_head_kv.v)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: num_key_value_heads %u does not divide "
			       "num_attention_heads %u", what, c->n_head_kv.v, c->n_head);
		goto out;
	}
	uint32_t v;
	if ((got = get_u32(r, "vocab_size", false, &v, what, err)) < 0) {
		rc = got;
		goto out;
	}
	if (!got || v == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: vocab_size is missing or 0", what);
		goto out;
	}
	c->vocab_size = v;
	if ((got = get_u32(r, "head_dim", true, &v, what, err)) < 0) {
		rc = got;
		goto out;
	}
	if (got) {
		c->head_dim = v;
	} else {
		if (c->n_embd % c->n_head) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: hidden_size %u is not a multiple of "
				       "num_attention_heads %u and no head_dim is given", what,
				       c->n_embd, c->n_head);
			goto out;
		}
		c->head_dim = c->n_embd / c->n_head;
	}
	if (c->head_dim == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: head_dim is 0", what);
		goto out;
	}
	const json_t *rs = json_object_get(r, "rope_scaling");
	if (json_is_object(rs) && json_object_get(rs, "factor")) {
		const json_t *ty = json_object_get(rs, "type");
		if (json_is_string(ty) && strcmp(json_string_value(ty), "linear") == 0) {
			if ((got = get_f32(rs, "factor", false, &c->rope_factor, what, err)) < 0) {
				rc = got;
				goto out;
			}
			c->rope_linear = true;
		}
	}
	const json_t *ha = json_object_get(r, "hidden_act");
	c->hidden_act = json_is_string(ha) ? json_string_value(ha) : NULL;
	const json_t *qc = json_object_get(r, "quantization_config");
	const json_t *lc = json_is_object(qc) ? json_object_get(qc, "linear_class") : NULL;
	c->scale_mul = json_is_string(lc) && strcasecmp(json_string_value(lc), "autobitlinear") == 0;

	/* The GGUF architecture.  BitNet models: bitnet.cpp runs "bitnet" with a SiLU FFN and
	 * "bitnet-b1.58" with ReLU^2 (BitNet-b1.58-2B-4T), so the activation decides; --arch bitnet
	 * targets mainline llama.cpp, whose "bitnet" reads {arch}.hidden_activation. */
	bool relu2 = c->hidden_act && strcasecmp(c->hidden_act, "relu2") == 0;
	if (c->cls == CV_LLAMA) {
		c->arch = "llama";
		if (o && o->arch && strcmp(o->arch, "llama") != 0) {
			rc = bn_seterr(err, BN_EINVAL, "--arch %s: %s models are written as 'llama'",
				       o->arch, c->arch_hf);
			goto out;
		}
	} else if (o && o->arch) {
		if (strcmp(o->arch, "bitnet") == 0) {
			c->arch = "bitnet";
		} else if (strcmp(o->arch, "bitnet-b1.58") == 0) {
			if (!relu2) {
				rc = bn_seterr(err, BN_EINVAL, "--arch bitnet-b1.58: that architecture "
					       "runs a ReLU^2 FFN but config.json says hidden_act %s; "
					       "use --arch bitnet", c->hidden_act ? c->hidden_act :
					       "(none, i.e. SiLU)");
				goto out;
			}
			c->arch = "bitnet-b1.58";
		} else {
			rc = bn_seterr(err, BN_EINVAL, "--arch %s: BitNet models are written as "
				       "'bitnet' or 'bitnet-b1.58'", o->arch);
			goto out;
		}
	} else {
		c->arch = relu2 ? "bitnet-b1.58" : "bitnet";
	}
	c->b158 = strcmp(c->arch, "bitnet-b1.58") == 0;
	if (c->cls == CV_BITNET && !relu2 && c->hidden_act &&
	    strcasecmp(c->hidden_act, "silu") != 0) {
		rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: hidden_act '%s': BitNet runtimes implement "
			       "silu and relu2 only", what, c->hidden_act);
		goto out;
	}
out:
	if (rc) {
		json_decref(c->root);
		c->root = NULL;
	}
	return rc;
}

void cv_config_free(struct cv_config *c)
{
	if (!c)
		return;
	json_decref(c->root);
	c->root = NULL;
}

static int kv_u32(struct gguf_writer *w, const char *arch, const char *suffix, uint32_t v,
		  struct bn_err *err)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	return gguf_writer_add_u32(w, key, v, err);
}

static int kv_f32(struct gguf_writer *w, const char *arch, const char *suffix, float v,
		  struct bn_err *err)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	return gguf_writer_add_f32(w, key, v, err);
}

int cv_config_kvs(const struct cv_config *c, struct gguf_writer *w, const char *name,
		  uint32_t file_type, int add_space_prefix, struct bn_err *err)
{
	const char *a = c->arch;
	int rc;
	if ((rc = gguf_writer_add_str(w, "general.architecture", a, err)))
		return rc;
	if (name && *name && (rc = gguf_writer_add_str(w, "general.name", name, err)))
		return rc;
	if ((rc = kv_u32(w, a, "block_count", c->n_layer, err)) ||
	    (c->n_ctx.set && (rc = kv_u32(w, a, "context_length", c->n_ctx.v, err))) ||
	    (rc = kv_u32(w, a, "embedding_length", c->n_embd, err)) ||
	    (rc = kv_u32(w, a, "feed_forward_length", c->n_ff.v, err)) ||
	    (rc = kv_u32(w, a, "attention.head_count", c->n_head, err)) ||
	    (c->n_head_kv.set && (rc = kv_u32(w, a, "attention.head_count_kv", c->n_head_kv.v, err))) ||
	    (c->rope_theta.set && (rc = kv_f32(w, a, "rope.freq_base", c->rope_theta.v, err))) ||
	    (rc = kv_f32(w, a, "attention.layer_norm_rms_epsilon", c->rms_eps.v, err)) ||
	    (c->norm_eps.set && (rc = kv_f32(w, a, "attention.layer_norm_epsilon", c->norm_eps.v, err))) ||
	    (rc = gguf_writer_add_u32(w, "general.file_type", file_type, err)))
		return rc;
	if ((rc = kv_u32(w, a, "vocab_size", c->vocab_size, err)))
		return rc;
	char key[128];
	if (c->cls == CV_BITNET && !c->b158) {
		/* release BitnetModel (§3.3) */
		snprintf(key, sizeof key, "%s.rope.scaling.type", a);
		if ((rc = gguf_writer_add_str(w, key, "linear", err)) ||
		    (rc = kv_f32(w, a, "rope.scaling.factor", 1.0f, err)))
			return rc;
		/* mainline's "bitnet" picks the FFN activation from this key (2B-4T with --arch
		 * bitnet); the 1bitLLM models keep the release bytes. */
		if (c->hidden_act && strcasecmp(c->hidden_act, "relu2") == 0) {
			snprintf(key, sizeof key, "%s.hidden_activation", a);
			if ((rc = gguf_writer_add_str(w, key, "relu2", err)))
				return rc;
		}
		return 0;
	}
	/* HEAD BitnetModel (bitnet-b1.58) and LlamaModel: rope dimension count */
	if ((rc = kv_u32(w, a, "rope.dimension_count", c->head_dim, err)))
		return rc;
	if (c->cls == CV_BITNET)
		return 0;
	if (c->rope_linear) {
		snprintf(key, sizeof key, "%s.rope.scaling.type", a);
		if ((rc = gguf_writer_add_str(w, key, "linear", err)) ||
		    (rc = kv_f32(w, a, "rope.scaling.factor", c->rope_factor, err)))
			return rc;
	}
	if (add_space_prefix >= 0 &&
	    (rc = gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", add_space_prefix,
				       err)))
		return rc;
	if (c->vocab_size == 49152 &&
	    (rc = gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", false, err)))
		return rc;
	return 0;
}
