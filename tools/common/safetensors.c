/* safetensors reader (mmap, jansson header, sharded checkpoints) and header writer; see
 * safetensors.h.  Invariant: nothing is dereferenced from a file before its offsets have been
 * checked against the map with overflow-checked arithmetic. */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bn_fp16.h"
#include "bn_json.h"
#include "bn_util.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[ST_DTYPE_COUNT] = {
	[ST_F32] = { "F32", 4 }, [ST_F16] = { "F16", 2 }, [ST_BF16] = { "BF16", 2 },
	[ST_U8] = { "U8", 1 },   [ST_I8] = { "I8", 1 },
};

/* Valid safetensors dtypes we do not read (the library's enum, all versions). */
static const char *const unsupported_dtypes[] = {
	"BOOL", "F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
	"F8_E5M2FNUZ", "I16", "U16", "I32", "U32", "C64", "F64", "I64", "U64",
};

/* Rank of each dtype in the library's Dtype enum order (only the relative order matters). */
static int dtype_rank(enum st_dtype t)
{
	switch (t) {
	case ST_U8: return 0;
	case ST_I8: return 1;
	case ST_F16: return 2;
	case ST_BF16: return 3;
	case ST_F32: return 4;
	default: return -1;
	}
}

const char *st_dtype_name(enum st_dtype t)
{
	return (unsigned)t < ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t st_dtype_size(enum st_dtype t)
{
	return (unsigned)t < ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

int st_dtype_parse(const char *name, enum st_dtype *t)
{
	for (unsigned i = 0; i < ST_DTYPE_COUNT; i++)
		if (strcmp(name, dtypes[i].name) == 0) {
			*t = (enum st_dtype)i;
			return 0;
		}
	for (size_t i = 0; i < BN_ARRAY_LEN(unsupported_dtypes); i++)
		if (strcmp(name, unsupported_dtypes[i]) == 0)
			return -BN_EUNSUPPORTED;
	return -BN_EFORMAT;
}

/* ---- reading ------------------------------------------------------------------------------ */

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b)
{
	const struct st_tensor *x = a, *y = b;
	int c = cmp_u64(x->offset, y->offset);
	if (!c)
		c = cmp_u64(x->offset + x->nbytes, y->offset + y->nbytes);
	return c ? c : strcmp(x->name, y->name);
}

static int ptr_by_name(const void *a, const void *b)
{
	return strcmp((*(const struct st_tensor *const *)a)->name,
		      (*(const struct st_tensor *const *)b)->name);
}

/* Reads a JSON integer >= 0 into *v. */
static bool json_u64(const json_t *j, uint64_t *v)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

/* A shard being parsed: its tensors are appended to a growing array (names kept in the JSON
 * until the arena is built). */
struct parse {
	struct st_tensor *t;
	size_t n, cap;
	size_t names_len; /* total bytes of names incl. NULs */
	json_t **headers; /* one per shard, kept alive for the names until the arena exists */
};

static int parse_tensor(struct parse *p, const char *what, const char *key, json_t *v,
			uint64_t data_size, const uint8_t *data, unsigned shard, struct bn_err *err)
{
	if (!json_is_object(v))
		return bn_seterr(err, BN_EFORMAT, "%s: %s: not an object with dtype, shape and "
				 "data_offsets", what, key);
	if (!*key)
		return bn_seterr(err, BN_EFORMAT, "%s: a tensor has an empty name", what);
	struct st_tensor t = { .name = key, .shard = shard };
	json_t *jd = json_object_get(v, "dtype");
	if (!json_is_string(jd))
		return bn_seterr(err, BN_EFORMAT, "%s: %s: dtype: missing or not a string", what, key);
	int rc = st_dtype_parse(json_string_value(jd), &t.dtype);
	if (rc == -BN_EUNSUPPORTED)
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: dtype: %s is not supported (only F32, "
				 "F16, BF16, U8 and I8 are)", what, key, json_string_value(jd));
	if (rc)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: dtype: unknown dtype \"%.40s\"", what, key,
				 json_string_value(jd));

	json_t *js = json_object_get(v, "shape");
	if (!json_is_array(js))
		return bn_seterr(err, BN_EFORMAT, "%s: %s: shape: missing or not a list", what, key);
	size_t rank = json_array_size(js);
	if (rank > ST_MAX_DIMS)
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: shape: %zu dimensions, at most %d are "
				 "supported", what, key, rank, ST_MAX_DIMS);
	t.n_dims = (unsigned)rank;
	uint64_t ne = 1;
	for (unsigned d = 0; d < ST_MAX_DIMS; d++)
		t.shape[d] = 1;
	for (unsigned d = 0; d < rank; d++) {
		if (!json_u64(json_array_get(js, d), &t.shape[d]))
			return bn_seterr(err, BN_EFORMAT, "%s: %s: shape: dimension %u is not a "
					 "non-negative integer", what, key, d);
		if (!bn_mul_u64(ne, t.shape[d], &ne))
			return bn_seterr(err, BN_ERANGE, "%s: %s: shape: element count overflows",
					 what, key);
	}
	t.n_elements = ne;
	uint64_t nbytes;
	if (!bn_mul_u64(ne, dtypes[t.dtype].size, &nbytes) || nbytes > SIZE_MAX)
		return bn_seterr(err, BN_ERANGE, "%s: %s: shape: byte size overflows", what, key);

	json_t *jo = json_object_get(v, "data_offsets");
	uint64_t b, e;
	if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_u64(json_array_get(jo, 0), &b) ||
	    !json_u64(json_array_get(jo, 1), &e))
		return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: missing or not two "
				 "non-negative integers", what, key);
	if (b > e)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: begin %llu is after end %llu",
				 what, key, (unsigned long long)b, (unsigned long long)e);
	if (e > data_size)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: end %llu is past the end of "
				 "the data area (%llu bytes); the file is truncated or corrupt", what, key,
				 (unsigned long long)e, (unsigned long long)data_size);
	if (e - b != nbytes)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: [%llu, %llu] holds %llu "
				 "bytes but %s %s needs %llu", what, key, (unsigned long long)b,
				 (unsigned long long)e, (unsigned long long)(e - b),
				 dtypes[t.dtype].name, rank ? "of this shape" : "scalar",
				 (unsigned long long)nbytes);
	t.offset = b;
	t.nbytes = (size_t)nbytes;
	t.data = data + b;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct st_tensor *nt = realloc(p->t, cap * sizeof *nt);
		if (!nt)
			return bn_seterr(err, BN_ENOMEM, "%s: out of memory", what);
		p->t = nt;
		p->cap = cap;
	}
	p->t[p->n++] = t;
	p->names_len += strlen(key) + 1;
	return 0;
}

/* Parses one shard's header; appends its tensors (sorted per `order`) to p.  The header JSON
 * is kept in *header (the names point into it). */
static int parse_shard(struct parse *p, struct st_shard *sh, unsigned shard_ix, const uint8_t *buf,
		       size_t len, enum st_order order, json_t **header, struct bn_err *err)
{
	const char *what = sh->name;
	if (len < 8)
		return bn_seterr(err, BN_EFORMAT, "%s: %zu bytes, too short for a safetensors file "
				 "(8-byte header length + JSON header)", what, len);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | buf[i];
	if (n > ST_MAX_HEADER)
		return bn_seterr(err, BN_EFORMAT, "%s: header length %llu is over the %llu-byte limit; "
				 "not a safetensors file?", what, (unsigned long long)n, ST_MAX_HEADER);
	if (n > len - 8)
		return bn_seterr(err, BN_EFORMAT, "%s: header length %llu runs past the end of the "
				 "file (%zu bytes); the file is truncated or not a safetensors file", what,
				 (unsigned long long)n, len);
	if (n < 2)
		return bn_seterr(err, BN_EFORMAT, "%s: header length %llu is too small for a JSON "
				 "object", what, (unsigned long long)n);
	sh->header_len = n;
	struct bn_err jerr;
	json_t *h = bn_json_parse((const char *)buf + 8, (size_t)n, "header", &jerr);
	if (!h)
		return bn_seterr(err, BN_EFORMAT, "%s: %s", what, jerr.msg);
	*header = h;
	if (!json_is_object(h))
		return bn_seterr(err, BN_EFORMAT, "%s: header: not a JSON object", what);

	const uint8_t *data = buf + 8 + n;
	uint64_t data_size = len - 8 - n;
	size_t first = p->n;
	const char *key;
	json_t *v;
	json_object_foreach(h, key, v) {
		if (strcmp(key, "__metadata__") == 0) {
			if (!json_is_object(v))
				return bn_seterr(err, BN_EFORMAT, "%s: __metadata__: not an object",
						 what);
			const char *mk;
			json_t *mv;
			json_object_foreach(v, mk, mv) {
				if (!json_is_string(mv))
					return bn_seterr(err, BN_EFORMAT, "%s: __metadata__: %s: not a "
							 "string", what, mk);
			}
			sh->metadata = json_incref(v);
			continue;
		}
		if (p->n >= ST_MAX_TENSORS)
			return bn_seterr(err, BN_EFORMAT, "%s: more than %u tensors", what,
					 ST_MAX_TENSORS);
		int rc = parse_tensor(p, what, key, v, data_size, data, shard_ix, err);
		if (rc)
			return rc;
	}
	sh->first = first;
	sh->count = p->n - first;

	/* The tensors must tile the data area exactly: sorted by offset, each begins where the
	 * previous one ended, and the last ends at the end of the file. */
	struct st_tensor *t = p->t ? p->t + first : NULL;
	if (sh->count > 1)
		qsort(t, sh->count, sizeof *t, by_offset);
	uint64_t at = 0;
	for (size_t i = 0; i < sh->count; i++) {
		if (t[i].offset < at)
			return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: [%llu, %llu] overlaps "
					 "%s", what, t[i].name, (unsigned long long)t[i].offset,
					 (unsigned long long)(t[i].offset + t[i].nbytes), t[i - 1].name);
		if (t[i].offset > at)
			return bn_seterr(err, BN_EFORMAT, "%s: %s: data_offsets: begins at %llu, leaving "
					 "bytes [%llu, %llu) of the data area unused", what, t[i].name,
					 (unsigned long long)t[i].offset, (unsigned long long)at,
					 (unsigned long long)t[i].offset);
		at = t[i].offset + t[i].nbytes;
	}
	if (at != data_size)
		return bn_seterr(err, BN_EFORMAT, "%s: the tensors end at byte %llu of the data area "
				 "but it has %llu bytes", what, (unsigned long long)at,
				 (unsigned long long)data_size);
	if (order == ST_ORDER_NAME && sh->count > 1)
		qsort(t, sh->count, sizeof *t, by_name);
	return 0;
}

static int new_model(struct st_model **out, size_t n_shards, struct bn_err *err)
{
	struct st_model *m = calloc(1, sizeof *m);
	if (m)
		m->shards = calloc(n_shards ? n_shards : 1, sizeof *m->shards);
	if (!m || !m->shards) {
		free(m);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	m->n_shards = n_shards;
	*out = m;
	return 0;
}

/* Moves the names into the model's arena, builds the by-name index and rejects a name that
 * appears in two shards. */
static int finish(struct st_model *m, struct parse *p, struct bn_err *err)
{
	m->tensors = p->t;
	m->n_tensors = p->n;
	p->t = NULL;
	m->names = malloc(p->names_len ? p->names_len : 1);
	m->by_name = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *m->by_name);
	if (!m->names || !m->by_name)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	char *q = m->names;
	for (size_t i = 0; i < m->n_tensors; i++) {
		size_t l = strlen(m->tensors[i].name) + 1;
		memcpy(q, m->tensors[i].name, l);
		m->tensors[i].name = q;
		q += l;
		m->by_name[i] = &m->tensors[i];
	}
	qsort(m->by_name, m->n_tensors, sizeof *m->by_name, ptr_by_name);
	for (size_t i = 1; i < m->n_tensors; i++)
		if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0) {
			const struct st_tensor *a = m->by_name[i - 1], *b = m->by_name[i];
			return bn_seterr(err, BN_EFORMAT, "%s: %s: also in %s; a tensor may appear in "
					 "only one shard", m->shards[b->shard].name, b->name,
					 m->shards[a->shard].name);
		}
	return 0;
}

static void parse_free(struct parse *p, size_t n_headers)
{
	free(p->t);
	if (p->headers)
		for (size_t i = 0; i < n_headers; i++)
			json_decref(p->headers[i]);
	free(p->headers);
}

int st_open_buffer(struct st_model **out, const void *buf, size_t len, const char *name,
		   enum st_order order, struct bn_err *err)
{
	*out = NULL;
	struct st_model *m;
	int rc = new_model(&m, 1, err);
	if (rc)
		return rc;
	struct parse p = { 0 };
	json_t *h = NULL;
	m->shards[0].path = strdup(name);
	if (!m->shards[0].path) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	m->shards[0].name = m->shards[0].path;
	rc = parse_shard(&p, &m->shards[0], 0, buf, len, order, &h, err);
	if (!rc)
		rc = finish(m, &p, err);
out:
	free(p.t);
	json_decref(h);
	if (rc)
		st_close(m);
	else
		*out = m;
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Lists the *.safetensors regular files of dir (names only, sorted). */
static int list_shards(const char *dir, char ***names, size_t *n, struct bn_err *err)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return bn_seterrno(err, errno, "%s: cannot list the directory", dir);
	size_t cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
			continue;
		char *full = bn_path_join(dir, de->d_name);
		struct stat st;
		bool reg = full && stat(full, &st) == 0 && S_ISREG(st.st_mode);
		free(full);
		if (!reg)
			continue;
		if (*n >= ST_MAX_SHARDS) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: more than %u *.safetensors files", dir,
				       ST_MAX_SHARDS);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			char **nn = realloc(*names, cap * sizeof *nn);
			if (!nn) {
				rc = bn_seterr(err, BN_ENOMEM, "out of memory");
				break;
			}
			*names = nn;
		}
		if (!((*names)[*n] = strdup(de->d_name))) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			break;
		}
		(*n)++;
	}
	closedir(d);
	if (!rc && *n > 1)
		qsort(*names, *n, sizeof **names, cmp_str);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

/* Reads the index: the sorted, distinct shard names of weight_map.  *index is kept for the
 * cross-check after the shards are parsed. */
static int read_index(const char *path, json_t **index, char ***names, size_t *n,
		      struct bn_err *err)
{
	*names = NULL;
	*n = 0;
	struct bn_err jerr;
	json_t *j = bn_json_load(path, ST_MAX_INDEX, &jerr);
	if (!j)
		return bn_seterr(err, jerr.code, "%s", jerr.msg);
	*index = j;
	json_t *wm = json_object_get(j, "weight_map");
	if (!json_is_object(wm))
		return bn_seterr(err, BN_EFORMAT, "%s: weight_map: missing or not an object", path);
	if (json_object_size(wm) > ST_MAX_TENSORS)
		return bn_seterr(err, BN_EFORMAT, "%s: weight_map: more than %u tensors", path,
				 ST_MAX_TENSORS);
	size_t cap = json_object_size(wm), cnt = 0;
	const char **v = calloc(cap ? cap : 1, sizeof *v); /* borrowed from the JSON */
	char **own = calloc(cap ? cap : 1, sizeof *own);
	int rc = 0;
	if (!v || !own) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	const char *key;
	json_t *val;
	json_object_foreach(wm, key, val) {
		const char *s = json_string_value(val);
		if (!s) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: weight_map: %s: not a file name", path, key);
			goto out;
		}
		if (!*s || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: weight_map: %s: \"%.80s\" is not a plain "
				       "file name in the checkpoint's directory", path, key, s);
			goto out;
		}
		v[cnt++] = s;
	}
	if (cnt == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: weight_map is empty", path);
		goto out;
	}
	qsort(v, cnt, sizeof *v, cmp_str);
	for (size_t i = 0; i < cnt; i++) {
		if (*n && strcmp(own[*n - 1], v[i]) == 0)
			continue;
		if (!(own[*n] = strdup(v[i]))) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		(*n)++;
	}
out:
	free(v);
	*names = own;
	return rc;
}

/* Every tensor of the shards is in weight_map, in the shard it names, and vice versa. */
static int check_index(const struct st_model *m, json_t *index, struct bn_err *err)
{
	json_t *wm = json_object_get(index, "weight_map");
	const char *key;
	json_t *val;
	json_object_foreach(wm, key, val) {
		const struct st_tensor *t = st_find(m, key);
		const char *want = json_string_value(val);
		if (!t)
			return bn_seterr(err, BN_EFORMAT, "%s: weight_map: %s: not in %s", ST_INDEX_NAME,
					 key, want);
		if (strcmp(m->shards[t->shard].name, want) != 0)
			return bn_seterr(err, BN_EFORMAT, "%s: weight_map: %s: in %s, not in %s",
					 ST_INDEX_NAME, key, m->shards[t->shard].name, want);
	}
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!json_object_get(wm, m->tensors[i].name))
			return bn_seterr(err, BN_EFORMAT, "%s: %s: not listed in %s's weight_map",
					 m->shards[m->tensors[i].shard].name, m->tensors[i].name,
					 ST_INDEX_NAME);
	return 0;
}

int st_open(struct st_model **out, const char *path, enum st_order order, struct bn_err *err)
{
	*out = NULL;
	struct stat st;
	if (stat(path, &st) < 0)
		return bn_seterrno(err, errno, "%s: cannot open", path);
	char **names = NULL;
	size_t n_names = 0;
	json_t *index = NULL;
	char *index_path = NULL;
	struct st_model *m = NULL;
	struct parse p = { 0 };
	int rc = 0;
	const char *dir = path;
	if (!S_ISDIR(st.st_mode)) {
		dir = NULL;
		names = calloc(1, sizeof *names);
		if (!names || !(names[0] = strdup(path))) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		n_names = 1;
	} else {
		index_path = bn_path_join(path, ST_INDEX_NAME);
		if (!index_path) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		if (bn_file_exists(index_path))
			rc = read_index(index_path, &index, &names, &n_names, err);
		else
			rc = list_shards(path, &names, &n_names, err);
		if (rc)
			goto out;
		if (n_names == 0) {
			rc = bn_seterr(err, BN_ENOENT, "%s: no %s and no *.safetensors file; not a "
				       "safetensors checkpoint", path, ST_INDEX_NAME);
			goto out;
		}
	}
	rc = new_model(&m, n_names, err);
	if (rc)
		goto out;
	m->indexed = index != NULL;
	p.headers = calloc(n_names, sizeof *p.headers);
	if (!p.headers) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		struct st_shard *sh = &m->shards[i];
		sh->path = dir ? bn_path_join(dir, names[i]) : strdup(names[i]);
		if (!sh->path) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		const char *slash = strrchr(sh->path, '/');
		sh->name = slash ? slash + 1 : sh->path;
		rc = bn_map_open(&sh->map, sh->path, err);
		if (rc) {
			if (index)
				bn_err_prefix(err, "%s names shard %s", ST_INDEX_NAME, names[i]);
			goto out;
		}
		rc = parse_shard(&p, sh, (unsigned)i, sh->map.data, sh->map.size, order,
				 &p.headers[i], err);
		if (rc)
			goto out;
	}
	rc = finish(m, &p, err);
	if (!rc && index)
		rc = check_index(m, index, err);
out:
	parse_free(&p, n_names);
	free_names(names, n_names);
	json_decref(index);
	free(index_path);
	if (rc)
		st_close(m);
	else
		*out = m;
	return rc;
}

void st_close(struct st_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_shards; i++) {
		bn_map_close(&m->shards[i].map);
		json_decref(m->shards[i].metadata);
		free(m->shards[i].path);
	}
	free(m->shards);
	free(m->tensors);
	free(m->by_name);
	free(m->names);
	free(m);
}

const struct st_tensor *st_find(const struct st_model *m, const char *name)
{
	size_t lo = 0, hi = m->n_tensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, m->by_name[mid]->name);
		if (c == 0)
			return m->by_name[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *st_metadata(const struct st_model *m, size_t shard, const char *key)
{
	if (shard >= m->n_shards || !m->shards[shard].metadata)
		return NULL;
	return json_string_value(json_object_get(m->shards[shard].metadata, key));
}

float st_get_f32(const struct st_tensor *t, uint64_t i)
{
	const uint8_t *p = t->data;
	uint16_t h;
	switch (t->dtype) {
	case ST_F32: {
		float f;
		memcpy(&f, p + i * 4, 4);
		return f;
	}
	case ST_F16:
		memcpy(&h, p + i * 2, 2);
		return bn_f16_to_f32(h);
	case ST_BF16:
		memcpy(&h, p + i * 2, 2);
		return bn_bf16_to_f32(h);
	case ST_U8:
		return (float)p[i];
	case ST_I8:
		return (float)(int8_t)p[i];
	default:
		return 0.0f;
	}
}

void st_read_f32(const struct st_tensor *t, uint64_t first, size_t n, float *dst)
{
	if (t->dtype == ST_F32) {
		memcpy(dst, t->data + first * 4, n * 4);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = st_get_f32(t, first + i);
}

/* ---- writing -------------------------------------------------------------------------------- */

/* A JSON string as serde_json writes it: UTF-8 kept, ", \ and control characters escaped
 * (\b \t \n \f \r short forms, others \u00xx with lower-case hex). */
static void put_json_string(struct bn_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	bn_buf_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[7];
		switch (*c) {
		case '"': bn_buf_put(b, "\\\"", 2); break;
		case '\\': bn_buf_put(b, "\\\\", 2); break;
		case '\b': bn_buf_put(b, "\\b", 2); break;
		case '\t': bn_buf_put(b, "\\t", 2); break;
		case '\n': bn_buf_put(b, "\\n", 2); break;
		case '\f': bn_buf_put(b, "\\f", 2); break;
		case '\r': bn_buf_put(b, "\\r", 2); break;
		default:
			if (*c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*c >> 4];
				esc[5] = hex[*c & 15];
				bn_buf_put(b, esc, 6);
			} else {
				bn_buf_put(b, (const char *)c, 1);
			}
		}
	}
	bn_buf_put(b, "\"", 1);
}

static void put_u64(struct bn_buf *b, uint64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof s, "%llu", (unsigned long long)v);
	bn_buf_put(b, s, (size_t)n);
}

struct sort_key {
	size_t index;
	int rank; /* dtype_rank, or 0 when the layout ignores dtypes */
	const char *name;
};

static int cmp_key(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	if (x->rank != y->rank)
		return y->rank - x->rank; /* descending */
	return strcmp(x->name, y->name);
}

int st_header_build(struct st_entry *e, size_t n, enum st_layout layout, const char *const *meta,
		    size_t *perm, uint8_t **hdr, size_t *hdr_len, uint64_t *data_len,
		    struct bn_err *err)
{
	*hdr = NULL;
	*hdr_len = 0;
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	if (layout != ST_LAYOUT_GIVEN && n > 0) {
		struct sort_key *k = malloc(n * sizeof *k);
		if (!k)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			k[i] = (struct sort_key){ i, layout == ST_LAYOUT_LIBRARY ?
						  dtype_rank(e[i].dtype) : 0, e[i].name };
		/* qsort is not stable, but names are distinct, so the order is total. */
		qsort(k, n, sizeof *k, cmp_key);
		for (size_t i = 0; i < n; i++)
			perm[i] = k[i].index;
		free(k);
	}
	struct bn_buf b = { 0 };
	bn_buf_put(&b, "\0\0\0\0\0\0\0\0", 8);
	bn_buf_put(&b, "{", 1);
	bool first = true;
	if (meta) {
		bn_buf_puts(&b, "\"__metadata__\":{");
		for (size_t i = 0; meta[i] && meta[i + 1]; i += 2) {
			if (i)
				bn_buf_put(&b, ",", 1);
			put_json_string(&b, meta[i]);
			bn_buf_put(&b, ":", 1);
			put_json_string(&b, meta[i + 1]);
		}
		bn_buf_put(&b, "}", 1);
		first = false;
	}
	uint64_t at = 0;
	for (size_t k = 0; k < n; k++) {
		struct st_entry *t = &e[perm[k]];
		if ((unsigned)t->dtype >= ST_DTYPE_COUNT || t->n_dims > ST_MAX_DIMS) {
			free(b.p);
			return bn_seterr(err, BN_EINVAL, "%s: bad dtype or rank", t->name);
		}
		uint64_t bytes = dtypes[t->dtype].size;
		for (unsigned d = 0; d < t->n_dims; d++)
			if (!bn_mul_u64(bytes, t->shape[d], &bytes)) {
				free(b.p);
				return bn_seterr(err, BN_ERANGE, "%s: size overflows", t->name);
			}
		t->begin = at;
		if (!bn_add_u64(at, bytes, &at)) {
			free(b.p);
			return bn_seterr(err, BN_ERANGE, "%s: offset overflows", t->name);
		}
		t->end = at;
		if (!first)
			bn_buf_put(&b, ",", 1);
		first = false;
		put_json_string(&b, t->name);
		bn_buf_puts(&b, ":{\"dtype\":\"");
		bn_buf_puts(&b, dtypes[t->dtype].name);
		bn_buf_puts(&b, "\",\"shape\":[");
		for (unsigned d = 0; d < t->n_dims; d++) {
			if (d)
				bn_buf_put(&b, ",", 1);
			put_u64(&b, t->shape[d]);
		}
		bn_buf_puts(&b, "],\"data_offsets\":[");
		put_u64(&b, t->begin);
		bn_buf_put(&b, ",", 1);
		put_u64(&b, t->end);
		bn_buf_puts(&b, "]}");
	}
	bn_buf_put(&b, "}", 1);
	while ((b.len - 8) % 8)
		bn_buf_put(&b, " ", 1);
	if (b.oom) {
		free(b.p);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	uint64_t jl = b.len - 8;
	for (int i = 0; i < 8; i++)
		b.p[i] = (char)(jl >> (8 * i));
	*hdr = (uint8_t *)b.p;
	*hdr_len = b.len;
	*data_len = at;
	return 0;
}
