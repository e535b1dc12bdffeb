/* Printing a GGUF (see dump.h).  Invariant: the output is valid UTF-8 whatever the file holds
 * (invalid bytes are escaped in the human form and replaced by U+FFFD in JSON), and every
 * number is printed exactly (floats in the shortest form that reads back to the same value). */
#include "dump.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"

/* ---- small helpers --------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Appends s as a double-quoted string with C escapes; at most `max` input bytes, then
 * `..." (N bytes)`. */
static void sb_quote(struct bn_buf *sb, const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	bn_buf_put(sb, "\"", 1);
	size_t i = 0;
	while (i < len && i < max) {
		unsigned char c = p[i];
		size_t u = utf8_len(p + i, len - i);
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			bn_buf_put(sb, e, 2);
		} else if (c == '\n') {
			bn_buf_put(sb, "\\n", 2);
		} else if (c == '\t') {
			bn_buf_put(sb, "\\t", 2);
		} else if (c == '\r') {
			bn_buf_put(sb, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f || u == 0) {
			bn_buf_printf(sb, "\\x%02x", c);
		} else {
			bn_buf_put(sb, s + i, u);
			i += u;
			continue;
		}
		i++;
	}
	bn_buf_put(sb, "\"", 1);
	if (i < len)
		bn_buf_printf(sb, "... (%zu bytes)", len);
}

/* Shortest "%.*g" that reads back to exactly the same value; whole numbers below 1e16 are
 * printed without an exponent (10000, not 1e+04). */
static void fmt_real(double d, int max_prec, bool is_f32, char *buf, size_t n)
{
	int min_prec = 1;
	if (isfinite(d) && fabs(d) >= 1 && fabs(d) < 1e16)
		min_prec = (int)floor(log10(fabs(d))) + 1;
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec < min_prec ? min_prec : prec, d);
		bool same;
		if (is_f32) {
			float back = strtof(buf, NULL), f = (float)d;
			same = memcmp(&back, &f, sizeof f) == 0;
		} else {
			double back = strtod(buf, NULL);
			same = memcmp(&back, &d, sizeof d) == 0;
		}
		if (same || isnan(d) || prec >= max_prec)
			return;
	}
}

static void fmt_f32(float f, char *buf, size_t n)
{
	fmt_real(f, 9, true, buf, n);
}

static void fmt_f64(double d, char *buf, size_t n)
{
	fmt_real(d, 17, false, buf, n);
}

/* general.file_type values the bitnet pipeline writes. */
static const char *ftype_name(uint32_t ft)
{
	switch (ft) {
	case GGUF_FTYPE_ALL_F32: return "ALL_F32";
	case GGUF_FTYPE_MOSTLY_F16: return "MOSTLY_F16";
	case GGUF_FTYPE_MOSTLY_Q8_0: return "MOSTLY_Q8_0";
	case GGUF_FTYPE_MOSTLY_TL1: return "MOSTLY_TL1";
	case GGUF_FTYPE_MOSTLY_TL2: return "MOSTLY_TL2";
	case GGUF_FTYPE_MOSTLY_I2_S: return "MOSTLY_I2_S";
	default: return NULL;
	}
}

static bool has_fork_types(const struct gguf_reader *r)
{
	for (size_t i = 0; i < gguf_n_tensors(r); i++)
		if (gguf_tensor(r, i)->type >= GGUF_TYPE_I2_S && gguf_tensor(r, i)->type <= GGUF_TYPE_TL2)
			return true;
	return false;
}

#define FORK_NOTE                                                                                 \
	"tensor type ids 36-39 are read as the BitNet fork defines them (I2_S, I8_S, TL1, TL2); " \
	"mainline ggml gives these ids other meanings (39 = MXFP4)"

/* ---- human form ------------------------------------------------------------------------ */

static void sb_scalar(struct bn_buf *sb, const struct gguf_value *v, size_t str_max)
{
	char num[64];
	switch (v->type) {
	case GGUF_VTYPE_UINT8: bn_buf_printf(sb, "%u", v->v.u8); break;
	case GGUF_VTYPE_INT8: bn_buf_printf(sb, "%d", v->v.i8); break;
	case GGUF_VTYPE_UINT16: bn_buf_printf(sb, "%u", v->v.u16); break;
	case GGUF_VTYPE_INT16: bn_buf_printf(sb, "%d", v->v.i16); break;
	case GGUF_VTYPE_UINT32: bn_buf_printf(sb, "%" PRIu32, v->v.u32); break;
	case GGUF_VTYPE_INT32: bn_buf_printf(sb, "%" PRId32, v->v.i32); break;
	case GGUF_VTYPE_UINT64: bn_buf_printf(sb, "%" PRIu64, v->v.u64); break;
	case GGUF_VTYPE_INT64: bn_buf_printf(sb, "%" PRId64, v->v.i64); break;
	case GGUF_VTYPE_FLOAT32: fmt_f32(v->v.f32, num, sizeof num); bn_buf_printf(sb, "%s", num); break;
	case GGUF_VTYPE_FLOAT64: fmt_f64(v->v.f64, num, sizeof num); bn_buf_printf(sb, "%s", num); break;
	case GGUF_VTYPE_BOOL: bn_buf_printf(sb, "%s", v->v.b ? "true" : "false"); break;
	case GGUF_VTYPE_STRING: sb_quote(sb, v->v.str.data, v->v.str.len, str_max); break;
	default: bn_buf_printf(sb, "?"); break;
	}
}

static int human_kvs(FILE *out, const struct gguf_reader *r, struct bn_err *err)
{
	size_t n = gguf_n_kv(r), keyw = 0;
	for (size_t i = 0; i < n; i++)
		keyw = BN_MAX(keyw, strlen(gguf_kv_key(r, (int64_t)i)));
	keyw = BN_MIN(keyw, 48);
	fprintf(out, "KVs (%zu):\n", n);
	struct bn_buf sb = { 0 };
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct gguf_value v;
		if ((rc = gguf_get_value(r, (int64_t)i, &v, err)))
			break;
		char type[48];
		if (v.type == GGUF_VTYPE_ARRAY)
			snprintf(type, sizeof type, "%s[%" PRIu64 "]", gguf_vtype_name(v.v.arr.type),
				 v.v.arr.n);
		else
			snprintf(type, sizeof type, "%s", gguf_vtype_name(v.type));
		sb.len = 0;
		bn_buf_put(&sb, "", 0);
		if (v.type == GGUF_VTYPE_ARRAY) {
			bn_buf_put(&sb, "[", 1);
			uint64_t shown = BN_MIN(v.v.arr.n, DUMP_ARR_MAX);
			for (uint64_t j = 0; j < shown && !rc; j++) {
				struct gguf_value e;
				if ((rc = gguf_get_arr_value(r, (int64_t)i, j, &e, err)))
					break;
				if (j)
					bn_buf_put(&sb, ", ", 2);
				sb_scalar(&sb, &e, DUMP_ARR_STR_MAX);
			}
			bn_buf_printf(&sb, "%s]", shown < v.v.arr.n ? ", ..." : "");
		} else {
			sb_scalar(&sb, &v, DUMP_STR_MAX);
			const char *ft;
			if (v.type == GGUF_VTYPE_UINT32 &&
			    strcmp(gguf_kv_key(r, (int64_t)i), "general.file_type") == 0 &&
			    (ft = ftype_name(v.v.u32)))
				bn_buf_printf(&sb, " (%s)", ft);
		}
		if (sb.oom) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			break;
		}
		if (!rc)
			fprintf(out, "%5zu  %-*s  %-13s %s\n", i, (int)keyw, gguf_kv_key(r, (int64_t)i),
				type, sb.p);
	}
	free(sb.p);
	return rc;
}

static void human_tensors(FILE *out, const struct gguf_reader *r)
{
	size_t n = gguf_n_tensors(r), namew = 4, shapew = 5;
	char shape[128];
	for (size_t i = 0; i < n; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		namew = BN_MAX(namew, strlen(t->name));
		int k = 0;
		for (uint32_t d = 0; d < t->n_dims; d++)
			k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%" PRIu64, d ? " x " : "",
				      t->ne[d]);
		shapew = BN_MAX(shapew, (size_t)k);
	}
	fprintf(out, "Tensors (%zu; shape in ggml order, ne[0] first; offsets from the data section):\n", n);
	fprintf(out, "%5s  %-*s  %-8s  %-*s  %12s  %12s\n", "#", (int)namew, "name", "type",
		(int)shapew, "shape", "offset", "bytes");
	for (size_t i = 0; i < n; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		int k = 0;
		for (uint32_t d = 0; d < t->n_dims; d++)
			k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%" PRIu64, d ? " x " : "",
				      t->ne[d]);
		fprintf(out, "%5zu  %-*s  %-8s  %-*s  %12" PRIu64 "  %12" PRIu64 "\n", i, (int)namew,
			t->name, gguf_type_name(t->type), (int)shapew, shape, t->offset, t->nbytes);
	}
}

int dump_human(FILE *out, const struct gguf_reader *r, const char *path,
	       const struct dump_opts *o, struct bn_err *err)
{
	fprintf(out, "%s: GGUF v%u, %" PRIu64 " bytes, %zu KVs, %zu tensors, alignment %" PRIu64
		     ", data at %" PRIu64 "\n",
		path, gguf_version(r), gguf_file_size(r), gguf_n_kv(r), gguf_n_tensors(r),
		gguf_alignment(r), gguf_data_offset(r));
	if (o->kv) {
		int rc = human_kvs(out, r, err);
		if (rc)
			return rc;
	}
	if (o->tensors)
		human_tensors(out, r);
	if (has_fork_types(r))
		fprintf(out, "note: %s\n", FORK_NOTE);
	return 0;
}

/* ---- JSON form ------------------------------------------------------------------------- */

/* A JSON string of arbitrary bytes: invalid UTF-8 becomes U+FFFD, NUL bytes stay (\u0000). */
static json_t *jstr(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t u = utf8_len(p + i, len - i);
		if (!u)
			break;
		i += u;
	}
	if (i == len)
		return json_stringn(s, len);
	struct bn_buf sb = { 0 };
	bn_buf_put(&sb, "", 0);
	for (i = 0; i < len;) {
		size_t u = utf8_len(p + i, len - i);
		if (u) {
			bn_buf_put(&sb, s + i, u);
			i += u;
		} else {
			bn_buf_put(&sb, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	json_t *j = sb.oom ? NULL : json_stringn(sb.p, sb.len);
	free(sb.p);
	return j;
}

static json_t *jfloat(double d, bool is_f32)
{
	if (isnan(d))
		return json_string("nan");
	if (isinf(d))
		return json_string(d > 0 ? "inf" : "-inf");
	if (is_f32) {
		/* Through the shortest decimal, so that the document shows 1e-05, not
		 * 9.9999997473787516e-06, and still reads back to the same float. */
		char buf[64];
		fmt_f32((float)d, buf, sizeof buf);
		d = strtod(buf, NULL);
	}
	return json_real(d);
}

static json_t *jvalue(const struct gguf_value *v)
{
	switch (v->type) {
	case GGUF_VTYPE_UINT8: return json_integer(v->v.u8);
	case GGUF_VTYPE_INT8: return json_integer(v->v.i8);
	case GGUF_VTYPE_UINT16: return json_integer(v->v.u16);
	case GGUF_VTYPE_INT16: return json_integer(v->v.i16);
	case GGUF_VTYPE_UINT32: return json_integer(v->v.u32);
	case GGUF_VTYPE_INT32: return json_integer(v->v.i32);
	case GGUF_VTYPE_INT64: return json_integer(v->v.i64);
	case GGUF_VTYPE_UINT64:
		if (v->v.u64 <= INT64_MAX)
			return json_integer((json_int_t)v->v.u64);
		char buf[32];
		snprintf(buf, sizeof buf, "%" PRIu64, v->v.u64);
		return json_string(buf);
	case GGUF_VTYPE_FLOAT32: return jfloat(v->v.f32, true);
	case GGUF_VTYPE_FLOAT64: return jfloat(v->v.f64, false);
	case GGUF_VTYPE_BOOL: return json_boolean(v->v.b);
	case GGUF_VTYPE_STRING: return jstr(v->v.str.data, v->v.str.len);
	default: return NULL;
	}
}

/* jansson prints reals with a fixed precision: 16 digits show f32 values in their shortest
 * form, but an f64 may need 17 to read back exactly. */
static bool f64_needs_17_digits(const struct gguf_reader *r)
{
	for (size_t i = 0; i < gguf_n_kv(r); i++) {
		struct gguf_value v;
		if (gguf_get_value(r, (int64_t)i, &v, NULL))
			continue;
		uint64_t n = 1;
		bool arr = v.type == GGUF_VTYPE_ARRAY;
		if (arr) {
			if (v.v.arr.type != GGUF_VTYPE_FLOAT64)
				continue;
			n = v.v.arr.n;
		} else if (v.type != GGUF_VTYPE_FLOAT64) {
			continue;
		}
		for (uint64_t j = 0; j < n; j++) {
			struct gguf_value e = v;
			if (arr && gguf_get_arr_value(r, (int64_t)i, j, &e, NULL))
				continue;
			char buf[64];
			snprintf(buf, sizeof buf, "%.16g", e.v.f64);
			if (isfinite(e.v.f64) && strtod(buf, NULL) != e.v.f64)
				return true;
		}
	}
	return false;
}

static int json_fail(json_t *root, struct bn_err *err)
{
	json_decref(root);
	return bn_seterr(err, BN_ENOMEM, "out of memory building the JSON document");
}

int dump_json(FILE *out, const struct gguf_reader *r, const char *path,
	      const struct dump_opts *o, struct bn_err *err)
{
	json_t *root = json_object();
	if (!root)
		return json_fail(root, err);
	int bad = json_object_set_new(root, "file", jstr(path, strlen(path)));
	bad |= json_object_set_new(root, "version", json_integer(gguf_version(r)));
	bad |= json_object_set_new(root, "size", json_integer((json_int_t)gguf_file_size(r)));
	bad |= json_object_set_new(root, "alignment", json_integer((json_int_t)gguf_alignment(r)));
	bad |= json_object_set_new(root, "data_offset",
				   json_integer((json_int_t)gguf_data_offset(r)));
	bad |= json_object_set_new(root, "n_kv", json_integer((json_int_t)gguf_n_kv(r)));
	bad |= json_object_set_new(root, "n_tensors", json_integer((json_int_t)gguf_n_tensors(r)));
	bad |= json_object_set_new(root, "type_ids", json_string("bitnet"));
	if (has_fork_types(r))
		bad |= json_object_set_new(root, "note", json_string(FORK_NOTE));
	if (bad)
		return json_fail(root, err);

	if (o->kv) {
		json_t *kvs = json_array();
		if (!kvs || json_object_set_new(root, "kv", kvs))
			return json_fail(root, err);
		for (size_t i = 0; i < gguf_n_kv(r); i++) {
			struct gguf_value v;
			int rc = gguf_get_value(r, (int64_t)i, &v, err);
			if (rc) {
				json_decref(root);
				return rc;
			}
			json_t *kv = json_object(), *val;
			if (!kv || json_array_append_new(kvs, kv))
				return json_fail(root, err);
			bad = json_object_set_new(kv, "key", jstr(gguf_kv_key(r, (int64_t)i),
								  strlen(gguf_kv_key(r, (int64_t)i))));
			bad |= json_object_set_new(kv, "type", json_string(gguf_vtype_name(v.type)));
			if (v.type == GGUF_VTYPE_ARRAY) {
				bad |= json_object_set_new(kv, "element_type",
							   json_string(gguf_vtype_name(v.v.arr.type)));
				bad |= json_object_set_new(kv, "count", json_integer((json_int_t)v.v.arr.n));
				val = json_array();
				for (uint64_t j = 0; val && j < v.v.arr.n; j++) {
					struct gguf_value e;
					if ((rc = gguf_get_arr_value(r, (int64_t)i, j, &e, err))) {
						json_decref(val);
						json_decref(root);
						return rc;
					}
					bad |= json_array_append_new(val, jvalue(&e));
				}
			} else {
				val = jvalue(&v);
			}
			bad |= json_object_set_new(kv, "value", val);
			if (bad)
				return json_fail(root, err);
		}
	}

	if (o->tensors) {
		json_t *ts = json_array();
		if (!ts || json_object_set_new(root, "tensors", ts))
			return json_fail(root, err);
		for (size_t i = 0; i < gguf_n_tensors(r); i++) {
			const struct gguf_tensor *t = gguf_tensor(r, i);
			json_t *jt = json_object(), *shape = json_array();
			if (!jt || json_array_append_new(ts, jt) ||
			    json_object_set_new(jt, "name", jstr(t->name, strlen(t->name))))
				return json_fail(root, err);
			bad = json_object_set_new(jt, "type", json_string(gguf_type_name(t->type)));
			bad |= json_object_set_new(jt, "type_id", json_integer(t->type));
			for (uint32_t d = 0; shape && d < t->n_dims; d++)
				bad |= json_array_append_new(shape, json_integer((json_int_t)t->ne[d]));
			bad |= json_object_set_new(jt, "shape", shape);
			bad |= json_object_set_new(jt, "offset", json_integer((json_int_t)t->offset));
			bad |= json_object_set_new(jt, "bytes", json_integer((json_int_t)t->nbytes));
			if (bad)
				return json_fail(root, err);
		}
	}

	size_t flags = JSON_INDENT(2) | JSON_REAL_PRECISION(f64_needs_17_digits(r) ? 17 : 16);
	int rc = json_dumpf(root, out, flags);
	json_decref(root);
	if (rc || fputc('\n', out) == EOF)
		return bn_seterr(err, BN_EIO, "writing the JSON document failed");
	return 0;
}
