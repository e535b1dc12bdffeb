/* Unit tests of hfget's pure modules: fnmatch semantics (table checked against CPython's
 * fnmatch.fnmatchcase), unsafe names, the Hub's JSON answers, Link headers, URLs, ETags, the
 * metadata files and the tree cache. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bn_file.h"
#include "../tools/hfget/hf.h"
#include "../tools/hfget/hf_net.h"
#include "test_util.h"

static inline int truth(bool x)
{
	return x;
}

struct glob_case {
	const char *pat, *name;
	bool match;
};

/* Expected values from CPython 3's fnmatch.fnmatchcase. */
static const struct glob_case globs[] = {
	{ "*.json", "config.json", true },
	{ "*.json", "data/x/y.json", true },
	{ "data/*.json", "data/a/b.json", true },
	{ "*", "a/b/c", true },
	{ "?", "/", true },
	{ "a?c", "abc", true },
	{ "a?c", "ac", false },
	{ "[abc]x", "bx", true },
	{ "[!abc]x", "bx", false },
	{ "[!abc]x", "dx", true },
	{ "[a-c]", "b", true },
	{ "[a-c]", "d", false },
	{ "[z-a]", "z", false },
	{ "[!z-a]", "q", true },
	{ "[]]", "]", true },
	{ "[!]]", "]", false },
	{ "[!]]", "a", true },
	{ "[a-]", "-", true },
	{ "[-a]", "-", true },
	{ "[a-c-e]", "-", true },
	{ "[a-c-e]", "d", false },
	{ "[a-c-e]", "e", true },
	{ "[", "[", true },
	{ "[abc", "[abc", true },
	{ "a[", "a[", true },
	{ "*.bin", "model.bin", true },
	{ "model-*-of-*.safetensors", "model-00001-of-00002.safetensors", true },
	{ "*.safetensors", "model.bin", false },
	{ "\xc3\xa9?", "\xc3\xa9" "a", true },
	{ "?", "\xc3\xa9", true },
	{ "[\xc3\xa0-\xc3\xbc]", "\xc3\xa9", true },
	{ "**/x", "a/x", true },
	{ "**/x", "x", false },
	{ "*a*b*c", "xaybzc", true },
	{ "*a*b*c", "xaybzcd", false },
	{ "[^a]", "^", true },
	{ "[^a]", "b", false },
	{ "", "", true },
	{ "", "a", false },
	{ "a*", "a", true },
	{ "[x-z-a]", "-", true },
	{ "[x-z-a]", "y", true },
	{ "[!-a]", "-", false },
	{ "[!-a]", "b", true },
	{ "sub/", "sub/tok.model", true },  /* a directory means everything below it */
	{ "sub/", "subx/tok.model", false },
	{ "a\\b", "a/b", true },            /* backslashes count as '/' (1.x) */
};

Test(hf_glob, matches_like_pythons_fnmatchcase)
{
	for (size_t i = 0; i < sizeof globs / sizeof *globs; i++)
		cr_expect(eq(int, hf_fnmatch(globs[i].pat, globs[i].name), globs[i].match), "pattern '%s' name '%s'",
			  globs[i].pat, globs[i].name);
}

Test(hf_glob, keeps_included_files_that_no_exclude_matches)
{
	char *inc[] = { "*.json", "sub/", NULL }, *exc[] = { "data/*", NULL };
	struct hf_config c = { .include = inc, .n_include = 2, .exclude = exc, .n_exclude = 1 };
	cr_assert(truth(hf_filter_keep(&c, "config.json")));
	cr_assert(truth(hf_filter_keep(&c, "sub/a/b.bin")));
	cr_assert(truth(!hf_filter_keep(&c, "data/x.json")));
	cr_assert(truth(!hf_filter_keep(&c, "model.bin")));
	struct hf_config none = { 0 };
	cr_assert(truth(hf_filter_keep(&none, "anything")));
}

Test(hf_local, accepts_ordinary_repo_paths)
{
	const char *ok[] = { "config.json", "a/b/c.bin", ".gitattributes", "a..b", "dir/.hidden", "x y/z#1.txt",
			     ".cache/other", "onnx/model.onnx_data" };
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		cr_expect(eq(int, hf_path_check(ok[i], NULL), 0), "%s", ok[i]);
}

Test(hf_local, rejects_paths_that_could_escape_the_directory)
{
	const char *bad[] = { "", "../x", "a/../b", "a/..", "/etc/passwd", "C:\\x", "c:x", "a/C:x", "\\\\host\\share\\x",
			      "a\\..\\b", "a//b", "a/", "./a", "a/./b", "a\nb", "a\tb", ".cache/huggingface/download/x.metadata",
			      ".cache\\huggingface\\x" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct bn_err e = { 0 };
		cr_expect(ne(int, hf_path_check(bad[i], &e), 0), "'%s' accepted", bad[i]);
		cr_expect(truth(strstr(e.msg, "is unsafe: ") != NULL && strchr(e.msg, '\n') == NULL), "%s", e.msg);
	}
}

Test(hf_local, names_temp_files_as_the_official_client)
{
	char h[32];
	hf_short_hash("model.bin.metadata", h);
	cr_assert(eq(str, h, "mBG94Lz8EYH5gU8b5axgj2RF9Tk="));
	hf_short_hash("config.json.metadata", h);
	cr_assert(eq(str, h, "8_PA_wEVGiVa2goH2H4KQOQpvVY="));
	struct hf_paths p;
	cr_assert(eq(int, hf_paths_init(&p, "/d", "sub/tok.model", "abc", NULL), 0));
	cr_assert(eq(str, p.file, "/d/sub/tok.model"));
	cr_assert(eq(str, p.meta, "/d/.cache/huggingface/download/sub/tok.model.metadata"));
	cr_assert(eq(str, p.lock, "/d/.cache/huggingface/download/sub/tok.model.lock"));
	cr_assert(eq(str, p.incomplete, "/d/.cache/huggingface/download/sub/MW4GT9nNI9pnjtZ9dX5BTEGo1Ls=.abc.incomplete"));
	hf_paths_free(&p);
}

Test(hf_local, reads_valid_metadata_and_drops_corrupt_or_outdated_ones)
{
	char *dir = tu_mkdtemp("hf-meta");
	char *file = bn_path_join(dir, "f.bin"), *meta = bn_path_join(dir, "f.bin.metadata");
	tu_write_file(file, "x", 1);
	struct hf_meta m;
	cr_assert(eq(int, hf_meta_write(meta, "c0ffee", "abc123", NULL), 0));
	cr_assert(eq(int, hf_meta_read(meta, file, &m), 1));
	cr_assert(eq(str, m.commit, "c0ffee"));
	cr_assert(eq(str, m.etag, "abc123"));
	/* written by Python: shortest float repr, trailing spaces stripped */
	char text[128];
	snprintf(text, sizeof text, "c1\n e2 \n%ld.5\n", (long)time(NULL) + 10);
	tu_write_file(meta, text, strlen(text));
	cr_assert(eq(int, hf_meta_read(meta, file, &m), 1));
	cr_assert(eq(str, m.etag, "e2"));
	/* the file changed after the metadata was written: not valid, but kept */
	tu_write_file(meta, "c1\ne2\n1000.0\n", 13);
	cr_assert(eq(int, hf_meta_read(meta, file, &m), 0));
	cr_assert(truth(bn_file_exists(meta)));
	/* corrupt: removed */
	tu_write_file(meta, "c1\ne2\nnot-a-number\n", 19);
	cr_assert(eq(int, hf_meta_read(meta, file, &m), 0));
	cr_assert(truth(!bn_file_exists(meta)));
	free(file);
	free(meta);
	free(dir);
}

static const char info_json[] =
	"{\"id\":\"a/b\",\"sha\":\"ABCDEF0123456789abcdef0123456789abcdef01\",\"private\":false,\"gated\":\"manual\","
	"\"siblings\":[{\"rfilename\":\"config.json\",\"size\":44,\"blobId\":\"0123456789abcdef0123456789abcdef01234567\"},"
	"{\"rfilename\":\"m.bin\",\"size\":300000,\"blobId\":\"1123456789abcdef0123456789abcdef01234567\","
	"\"lfs\":{\"sha256\":\"aa00000000000000000000000000000000000000000000000000000000000000\",\"size\":300000,\"pointerSize\":134}}]}";

Test(hf_listing, reads_the_commit_gating_and_siblings_of_an_info_answer)
{
	struct hf_listing l = { 0 };
	bool usable;
	cr_assert(eq(int, hf_listing_parse_info(&l, info_json, strlen(info_json), &usable, NULL), 0));
	cr_assert(eq(str, l.commit, "abcdef0123456789abcdef0123456789abcdef01"));
	cr_assert(eq(str, l.gated, "manual"));
	cr_assert(truth(usable));
	cr_assert(eq(sz, l.n, 2));
	cr_assert(eq(str, l.files[1].path, "m.bin"));
	cr_assert(eq(u64, l.files[1].size, 300000));
	cr_assert(eq(str, (char *)hf_file_etag(&l.files[1]), "aa00000000000000000000000000000000000000000000000000000000000000"));
	cr_assert(eq(str, (char *)hf_file_etag(&l.files[0]), "0123456789abcdef0123456789abcdef01234567"));
	hf_listing_free(&l);
	/* without blobs=true (a mirror): not usable, the caller lists the tree */
	const char *bare = "{\"sha\":\"abcdef0123456789abcdef0123456789abcdef01\",\"siblings\":[{\"rfilename\":\"a\"}]}";
	cr_assert(eq(int, hf_listing_parse_info(&l, bare, strlen(bare), &usable, NULL), 0));
	cr_assert(truth(!usable));
	cr_assert(eq(sz, l.n, 0));
	hf_listing_free(&l);
}

Test(hf_listing, rejects_malformed_answers_with_a_message)
{
	const char *bad[] = {
		"not json",
		"{\"sha\":\"short\"}",
		"[1,2]",
		"{\"sha\":\"abcdef0123456789abcdef0123456789abcdef01\",\"siblings\":[{\"size\":1}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct hf_listing l = { 0 };
		struct bn_err e = { 0 };
		bool usable;
		cr_expect(ne(int, hf_listing_parse_info(&l, bad[i], strlen(bad[i]), &usable, &e), 0), "%s", bad[i]);
		cr_expect(truth(e.msg[0] != 0));
		hf_listing_free(&l);
	}
	const char *bad_tree[] = {
		"{}",
		"[{\"type\":\"file\",\"path\":\"a\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":-1}]",
		"[{\"type\":\"file\",\"path\":\"a\\u0000b\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":1}]",
		"[{\"type\":\"file\",\"path\":\"a\",\"oid\":\"xyz\",\"size\":1}]",
		"[{\"type\":\"file\",\"path\":\"a\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":1,\"lfs\":{\"oid\":\"12\",\"size\":1}}]",
		"[{\"type\":\"file\",\"path\":\"a\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":99999999999999999}]",
	};
	for (size_t i = 0; i < sizeof bad_tree / sizeof *bad_tree; i++) {
		struct hf_listing l = { 0 };
		struct bn_err e = { 0 };
		cr_expect(ne(int, hf_listing_parse_tree(&l, bad_tree[i], strlen(bad_tree[i]), &e), 0), "%s", bad_tree[i]);
		hf_listing_free(&l);
	}
}

Test(hf_listing, reads_tree_pages_and_rejects_duplicates_and_unsafe_names)
{
	const char *page = "[{\"type\":\"directory\",\"oid\":\"0000000000000000000000000000000000000000\",\"size\":0,\"path\":\"sub\"},"
			   "{\"type\":\"file\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":9,\"path\":\"sub/z\","
			   "\"lfs\":{\"oid\":\"bb00000000000000000000000000000000000000000000000000000000000000\",\"size\":123,\"pointerSize\":134}},"
			   "{\"type\":\"file\",\"oid\":\"1123456789abcdef0123456789abcdef01234567\",\"size\":5,\"path\":\"a\"}]";
	struct hf_listing l = { 0 };
	cr_assert(eq(int, hf_listing_parse_tree(&l, page, strlen(page), NULL), 0));
	cr_assert(eq(sz, l.n, 2));
	cr_assert(eq(u64, l.files[0].size, 123), "LFS size wins");
	cr_assert(eq(int, hf_listing_finish(&l, NULL), 0));
	cr_assert(eq(str, l.files[0].path, "a"), "sorted");
	cr_assert(truth(hf_listing_find(&l, "sub/z") == &l.files[1]));
	cr_assert(eq(int, hf_listing_parse_tree(&l, page, strlen(page), NULL), 0));
	struct bn_err e = { 0 };
	cr_assert(ne(int, hf_listing_finish(&l, &e), 0));
	cr_assert(truth(strstr(e.msg, "appears twice") != NULL), "%s", e.msg);
	hf_listing_free(&l);
	const char *evil = "[{\"type\":\"file\",\"oid\":\"0123456789abcdef0123456789abcdef01234567\",\"size\":9,\"path\":\"../x\"}]";
	cr_assert(eq(int, hf_listing_parse_tree(&l, evil, strlen(evil), NULL), 0));
	cr_assert(ne(int, hf_listing_finish(&l, &e), 0));
	hf_listing_free(&l);
}

Test(hf_listing, finds_the_next_page_in_a_link_header)
{
	char *u = hf_link_next("<https://h/api/models/a/b/tree/c?cursor=2>; rel=\"next\"");
	cr_assert(eq(str, u, "https://h/api/models/a/b/tree/c?cursor=2"));
	free(u);
	u = hf_link_next("<https://h/p1>; rel=\"prev\", <https://h/p3>; rel=next");
	cr_assert(eq(str, u, "https://h/p3"));
	free(u);
	cr_assert(truth(hf_link_next("<https://h/p1>; rel=\"prev\"") == NULL));
	cr_assert(truth(hf_link_next("garbage") == NULL));
	cr_assert(truth(hf_link_next("<https://h/p1>; rel=\"nextish\"") == NULL));
}

Test(hf_listing, round_trips_the_official_tree_cache)
{
	struct hf_listing l = { 0 }, back = { 0 };
	bool usable;
	cr_assert(eq(int, hf_listing_parse_info(&l, info_json, strlen(info_json), &usable, NULL), 0));
	char *dir = tu_mkdtemp("hf-treecache");
	char *path = bn_path_join(dir, "t.json");
	cr_assert(eq(int, hf_tree_cache_write(path, &l, NULL), 0));
	cr_assert(eq(int, hf_tree_cache_read(path, &back, NULL), 0));
	cr_assert(eq(int, hf_listing_finish(&back, NULL), 0));
	cr_assert(eq(sz, back.n, 2));
	cr_assert(eq(str, back.files[1].sha256, l.files[1].sha256));
	cr_assert(eq(str, back.files[0].blob_id, l.files[0].blob_id));
	char *text = tu_read_file(path, NULL);
	cr_assert(truth(strstr(text, "\"format_version\": 1") && strstr(text, "\"lfs_size\": 300000")), "%s", text);
	free(text);
	free(path);
	free(dir);
	hf_listing_free(&l);
	hf_listing_free(&back);
}

Test(hf_http, builds_urls_and_compares_origins)
{
	char o[128];
	cr_assert(truth(hf_url_origin("https://HuggingFace.co/api/x", o, sizeof o)));
	cr_assert(eq(str, o, "https://huggingface.co:443"));
	cr_assert(truth(hf_url_origin("http://user:pw@127.0.0.1:8080?q", o, sizeof o)));
	cr_assert(eq(str, o, "http://127.0.0.1:8080"));
	cr_assert(truth(hf_url_origin("http://[::1]:9/x", o, sizeof o)));
	cr_assert(eq(str, o, "http://[::1]:9"));
	cr_assert(truth(!hf_url_origin("ftp://h/x", o, sizeof o)));
	cr_assert(truth(!hf_url_origin("http://h:99999/x", o, sizeof o)));
	char *q = hf_url_quote("refs/pr/1", false);
	cr_assert(eq(str, q, "refs%2Fpr%2F1"));
	free(q);
	q = hf_url_quote("a b/c#d~e.f", true);
	cr_assert(eq(str, q, "a%20b/c%23d~e.f"));
	free(q);
	char *r = hf_url_resolve("http://h:1/a/b?x=1", "/api/resolve-cache/c?d");
	cr_assert(eq(str, r, "http://h:1/api/resolve-cache/c?d"));
	free(r);
	r = hf_url_resolve("https://h/a/b", "https://cdn/x");
	cr_assert(eq(str, r, "https://cdn/x"));
	free(r);
	r = hf_url_resolve("https://h/a/b", "//cdn/x");
	cr_assert(eq(str, r, "https://cdn/x"));
	free(r);
	r = hf_url_resolve("https://h/a/b", "c");
	cr_assert(eq(str, r, "https://h/a/c"));
	free(r);
	cr_assert(truth(hf_url_resolve("https://h/a", "file:///etc/passwd") == NULL));
	char e[80];
	hf_etag_normalise("W/\"ABCdef\"", e, sizeof e);
	cr_assert(eq(str, e, "abcdef"));
	hf_etag_normalise("\"x\"", e, sizeof e);
	cr_assert(eq(str, e, "x"));
}
