/* libcurl requests for hfget: URL helpers, header capture, where the token may go, retries and
 * the Hub's error answers as one-line messages.  The token is attached only when a request's
 * scheme://host:port equals HF_ENDPOINT's (so never to a CDN, even on a redirect), TLS
 * verification is never turned off, and no message ever contains the token. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bn_log.h"
#include "bn_util.h"
#include "hf_net.h"

/* ---- URLs ---------------------------------------------------------------------------------------- */

char *hf_url_quote(const char *s, bool keep_slash)
{
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			out[o++] = (char)*p;
		} else {
			snprintf(out + o, 4, "%%%02X", *p);
			o += 3;
		}
	}
	out[o] = '\0';
	return out;
}

/* Length of "scheme://authority" at the start of url, 0 if url is not absolute http(s). */
static size_t origin_len(const char *url, bool *https)
{
	size_t sl;
	if (strncasecmp(url, "http://", 7) == 0) {
		sl = 7;
		*https = false;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		sl = 8;
		*https = true;
	} else {
		return 0;
	}
	size_t a = strcspn(url + sl, "/?#");
	return a ? sl + a : 0;
}

bool hf_url_origin(const char *url, char *out, size_t outsz)
{
	bool https;
	size_t ol = origin_len(url, &https);
	if (!ol)
		return false;
	const char *auth = url + (https ? 8 : 7);
	size_t alen = ol - (size_t)(auth - url);
	/* drop userinfo */
	const char *at = memchr(auth, '@', alen);
	if (at) {
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	char host[300];
	long port = https ? 443 : 80;
	size_t hl;
	if (alen && auth[0] == '[') {
		const char *rb = memchr(auth, ']', alen);
		if (!rb)
			return false;
		hl = (size_t)(rb - auth + 1);
	} else {
		const char *colon = memchr(auth, ':', alen);
		hl = colon ? (size_t)(colon - auth) : alen;
	}
	if (hl == 0 || hl >= sizeof host)
		return false;
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)tolower((unsigned char)auth[i]);
	host[hl] = '\0';
	if (hl < alen) {
		if (auth[hl] != ':')
			return false;
		char pbuf[8];
		size_t pl = alen - hl - 1;
		if (pl == 0 || pl >= sizeof pbuf)
			return false;
		memcpy(pbuf, auth + hl + 1, pl);
		pbuf[pl] = '\0';
		unsigned p;
		if (bn_parse_uint(pbuf, 1, 65535, &p))
			return false;
		port = (long)p;
	}
	int n = snprintf(out, outsz, "%s://%s:%ld", https ? "https" : "http", host, port);
	return n > 0 && (size_t)n < outsz;
}

char *hf_url_resolve(const char *base, const char *loc)
{
	bool https;
	size_t bl = origin_len(base, &https);
	if (!bl || !loc || !*loc)
		return NULL;
	char *out;
	if (strncasecmp(loc, "http://", 7) == 0 || strncasecmp(loc, "https://", 8) == 0)
		return strdup(loc);
	if (strchr(loc, ':') && strcspn(loc, ":") < strcspn(loc, "/?#"))
		return NULL; /* another scheme (file:, ftp:...): never followed */
	if (loc[0] == '/' && loc[1] == '/') {
		size_t n = strlen(loc) + 8;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s:%s", https ? "https" : "http", loc);
		return out;
	}
	size_t keep;
	if (loc[0] == '/') {
		keep = bl;
	} else {
		/* a relative path: replace the last segment of base's path */
		size_t pathend = bl + strcspn(base + bl, "?#");
		keep = pathend;
		while (keep > bl && base[keep - 1] != '/')
			keep--;
		if (keep == bl) {
			size_t n = bl + 2 + strlen(loc);
			out = malloc(n);
			if (out)
				snprintf(out, n, "%.*s/%s", (int)bl, base, loc);
			return out;
		}
	}
	size_t n = keep + strlen(loc) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%.*s%s", (int)keep, base, loc);
	return out;
}

/* ---- headers --------------------------------------------------------------------------------- */

static void hdrs_reset(struct hf_hdrs *h)
{
	free(h->location);
	free(h->link);
	memset(h, 0, sizeof *h);
	h->linked_size = h->content_length = -1;
	h->retry_after = h->ratelimit_reset = -1;
}

static void copy_value(char *dst, size_t dstsz, const char *v, size_t n)
{
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool parse_u64n(const char *v, size_t n, uint64_t *out)
{
	char buf[32];
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)buf[i]))
			return false;
	return bn_parse_u64(buf, out) == 0;
}

/* Content-Range: bytes a-b/total | bytes a-b/'*' | bytes '*'/total */
static void parse_content_range(struct hf_hdrs *h, const char *v, size_t n)
{
	if (n < 6 || strncasecmp(v, "bytes", 5) != 0)
		return;
	const char *p = v + 5, *end = v + n;
	while (p < end && *p == ' ')
		p++;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	if (!slash)
		return;
	const char *tot = slash + 1;
	if (tot < end && *tot == '*') {
		h->cr_total_known = false;
	} else if (parse_u64n(tot, (size_t)(end - tot), &h->cr_total)) {
		h->cr_total_known = true;
	} else {
		return;
	}
	if (*p == '*') {
		h->cr_unsatisfied = true;
		h->cr_present = true;
		return;
	}
	const char *dash = memchr(p, '-', (size_t)(slash - p));
	if (!dash || !parse_u64n(p, (size_t)(dash - p), &h->cr_start) ||
	    !parse_u64n(dash + 1, (size_t)(slash - dash - 1), &h->cr_end) || h->cr_end < h->cr_start)
		return;
	h->cr_present = true;
}

/* RateLimit: "api";r=0;t=55 -> when r=0, wait t. */
static void parse_ratelimit(struct hf_hdrs *h, const char *v, size_t n)
{
	char buf[200];
	copy_value(buf, sizeof buf, v, n);
	const char *r = strstr(buf, ";r="), *t = strstr(buf, ";t=");
	if (r && t && atoll(r + 3) == 0)
		h->ratelimit_reset = (double)atoll(t + 3);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
	struct hf_req *r = userdata;
	size_t len = size * nitems, n = len;
	r->last_rx = bn_now();
	while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		hdrs_reset(&r->h);
		const char *sp = memchr(data, ' ', n);
		if (sp)
			r->h.status = strtol(sp + 1, NULL, 10);
		return len;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon)
		return len;
	size_t nl = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	size_t vl = (size_t)(end - v);
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(data, name, nl) == 0)
	struct hf_hdrs *h = &r->h;
	uint64_t u;
	if (IS("x-repo-commit"))
		copy_value(h->commit, sizeof h->commit, v, vl);
	else if (IS("etag"))
		copy_value(h->etag, sizeof h->etag, v, vl);
	else if (IS("x-linked-etag"))
		copy_value(h->linked_etag, sizeof h->linked_etag, v, vl);
	else if (IS("x-linked-size"))
		h->linked_size = parse_u64n(v, vl, &u) && u <= HF_MAX_FILE_SIZE ? (int64_t)u : -1;
	else if (IS("content-length"))
		h->content_length = parse_u64n(v, vl, &u) && u <= HF_MAX_FILE_SIZE ? (int64_t)u : -1;
	else if (IS("content-range"))
		parse_content_range(h, v, vl);
	else if (IS("retry-after"))
		h->retry_after = parse_u64n(v, vl, &u) && u < 86400 ? (double)u : -1;
	else if (IS("ratelimit"))
		parse_ratelimit(h, v, vl);
	else if (IS("x-error-code"))
		copy_value(h->error_code, sizeof h->error_code, v, vl);
	else if (IS("x-error-message"))
		copy_value(h->error_message, sizeof h->error_message, v, vl);
	else if (IS("x-request-id") || (IS("x-amzn-trace-id") && !h->request_id[0]))
		copy_value(h->request_id, sizeof h->request_id, v, vl);
	else if (IS("content-encoding"))
		copy_value(h->content_encoding, sizeof h->content_encoding, v, vl);
	else if (IS("location") || IS("link")) {
		char **dst = IS("location") ? &h->location : &h->link;
		free(*dst);
		*dst = strndup(v, vl);
	}
#undef IS
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct hf_req *r = userdata;
	size_t n = size * nmemb;
	if (r->head)
		return n;
	if (r->sink && r->h.status >= 200 && r->h.status < 300)
		return r->sink(r, data, n);
	if (r->body_len + n > r->body_max) {
		if (r->h.status >= 300) /* an error page: keep its start only */
			n = r->body_len < r->body_max ? r->body_max - r->body_len : 0;
		else {
			r->body_too_big = true;
			return 0;
		}
		if (n == 0)
			return size * nmemb;
	}
	if (r->body_len + n + 1 > r->body_cap) {
		size_t cap = BN_MAX(r->body_cap * 2, r->body_len + n + 1);
		char *b = realloc(r->body, cap);
		if (!b)
			return 0;
		r->body = b;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return size * nmemb;
}

/* httpx's read timeout: no byte for r->timeout seconds (counted from the start of the attempt,
 * so connecting and waiting for the headers share it).  libcurl's low-speed check averages over
 * several seconds and misses a stall right after a burst.  libcurl calls this at least once a
 * second, also while idle. */
static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct hf_req *r = p;
	if (bn_interrupted)
		return 1;
	double now = bn_now();
	if (dlnow != r->last_dl) {
		r->last_dl = dlnow;
		r->last_rx = now;
		return 0;
	}
	if (now - r->last_rx > r->timeout) {
		r->timed_out = true;
		return 1;
	}
	return 0;
}

CURLcode hf_req_outcome(struct hf_req *r, CURLcode res)
{
	if (res == CURLE_ABORTED_BY_CALLBACK && r->timed_out) {
		snprintf(r->errbuf, sizeof r->errbuf, "no data for %g s (read timeout)", r->timeout);
		return CURLE_OPERATION_TIMEDOUT;
	}
	return res;
}

void hf_etag_normalise(const char *raw, char *out, size_t outsz)
{
	const char *s = raw;
	if (strncmp(s, "W/", 2) == 0)
		s += 2;
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (n >= outsz)
		n = outsz - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
}

/* ---- requests ------------------------------------------------------------------------------- */

int hf_net_init(struct hf_net *n, const struct hf_config *c, struct bn_err *err)
{
	memset(n, 0, sizeof *n);
	n->cfg = c;
	if (!hf_url_origin(c->endpoint, n->origin, sizeof n->origin))
		return bn_seterr(err, BN_EINVAL, "HF_ENDPOINT=%s: not an http:// or https:// URL", c->endpoint);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return bn_seterr(err, BN_ENET, "cannot initialise libcurl");
	n->multi = curl_multi_init();
	if (!n->multi)
		return bn_seterr(err, BN_ENOMEM, "cannot initialise libcurl");
	curl_multi_setopt(n->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->jobs + 2);
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	snprintf(n->ua, sizeof n->ua, "hfget/%s; bitmake; libcurl/%s", HF_VERSION, v ? v->version : "?");
	return 0;
}

void hf_net_free(struct hf_net *n)
{
	if (!n->cfg)
		return;
	if (n->multi)
		curl_multi_cleanup(n->multi);
	n->multi = NULL;
	n->cfg = NULL;
	curl_global_cleanup();
}

int hf_req_init(struct hf_req *r, struct hf_net *n, const char *url, bool head, const char *range,
		double timeout, struct bn_err *err)
{
	memset(r, 0, sizeof *r);
	hdrs_reset(&r->h);
	r->head = head;
	r->body_max = 4096;
	r->url = strdup(url);
	r->easy = curl_easy_init();
	if (!r->url || !r->easy) {
		hf_req_free(r);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	const struct hf_config *c = n->cfg;
	char origin[512];
	r->auth = c->token && hf_url_origin(url, origin, sizeof origin) && strcmp(origin, n->origin) == 0;
	r->hdrlist = curl_slist_append(NULL, "Accept-Encoding: identity");
	if (r->auth) {
		size_t len = strlen(c->token) + 32;
		char *h = malloc(len);
		if (h) {
			snprintf(h, len, "Authorization: Bearer %s", c->token);
			struct curl_slist *l = curl_slist_append(r->hdrlist, h);
			memset(h, 0, len);
			free(h);
			if (l)
				r->hdrlist = l;
			else
				r->auth = false;
		}
	}
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, n->ua);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrlist);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->cainfo)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cainfo);
	if (c->capath)
		curl_easy_setopt(e, CURLOPT_CAPATH, c->capath);
	/* requests/httpx timeouts are per connect and per read, never a total deadline (§10.6) */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 1000));
	r->timeout = timeout;
	r->last_rx = bn_now();
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!head)
		curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (range)
		curl_easy_setopt(e, CURLOPT_RANGE, range);
	return 0;
}

void hf_req_free(struct hf_req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrlist); /* holds the token: libcurl copies nothing we must wipe */
	hdrs_reset(&r->h);
	free(r->h.location);
	free(r->url);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* ---- retries -------------------------------------------------------------------------------- */

bool hf_retryable(const struct hf_req *r, CURLcode result, int attempt, double *delay)
{
	static const double backoff[] = { 1, 2, 4, 8, 8 };
	double d = backoff[BN_MIN(attempt > 0 ? attempt - 1 : 0, 4)];
	bool retry = false;
	if (result != CURLE_OK) {
		switch (result) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
			/* no network, or no TLS there: two quick retries, not a minute of waiting */
			retry = attempt <= 2;
			break;
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_WEIRD_SERVER_REPLY:
			retry = attempt <= HF_MAX_RETRIES;
			break;
		default:
			break;
		}
	} else {
		long s = r->h.status;
		if (s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504) {
			retry = attempt <= HF_MAX_RETRIES;
			if (s == 429 && r->h.ratelimit_reset >= 0)
				d = r->h.ratelimit_reset + 1;
			else if (r->h.retry_after >= 0)
				d = r->h.retry_after + 1;
		}
	}
	*delay = d;
	return retry;
}

void hf_sleep(const struct hf_config *c, double seconds)
{
	double until = bn_now() + seconds * c->time_scale;
	while (!bn_interrupted) {
		double left = until - bn_now();
		if (left <= 0)
			break;
		struct timespec ts = { (time_t)BN_MIN(left, 0.2), 0 };
		double frac = BN_MIN(left, 0.2) - (double)ts.tv_sec;
		ts.tv_nsec = (long)(frac * 1e9);
		nanosleep(&ts, NULL);
	}
}

static int run_one(struct hf_net *n, struct hf_req *r)
{
	curl_multi_add_handle(n->multi, r->easy);
	int running = 1;
	r->result = CURLE_OK;
	while (running) {
		if (bn_interrupted) {
			curl_multi_remove_handle(n->multi, r->easy);
			return -BN_EINTR;
		}
		curl_multi_perform(n->multi, &running);
		CURLMsg *m;
		int q;
		while ((m = curl_multi_info_read(n->multi, &q)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == r->easy)
				r->result = hf_req_outcome(r, m->data.result);
		if (running)
			curl_multi_poll(n->multi, NULL, 0, 200, NULL);
	}
	curl_multi_remove_handle(n->multi, r->easy);
	return 0;
}

int hf_net_call(struct hf_net *n, struct hf_req *r, const char *url, bool head, double timeout,
		const char *object, struct bn_err *err)
{
	for (int attempt = 1;; attempt++) {
		int rc = hf_req_init(r, n, url, head, NULL, timeout, err);
		if (rc)
			return rc;
		r->body_max = HF_MAX_JSON;
		if (strstr(url, "/api/"))
			n->api_calls++;
		bn_verbose("%s %s", head ? "HEAD" : "GET", url);
		if ((rc = run_one(n, r)))
			return bn_seterr(err, BN_EINTR, "interrupted");
		if (r->body_too_big)
			return bn_seterr(err, BN_EFORMAT, "%s: the answer from %s is larger than %u MB",
					 object, n->origin, HF_MAX_JSON >> 20);
		double delay;
		if (!hf_retryable(r, r->result, attempt, &delay)) {
			if (r->result != CURLE_OK)
				return hf_net_error(n, r, r->result, object, attempt, err);
			return 0;
		}
		if (r->result == CURLE_OK)
			bn_warn("%s: HTTP %ld from %s; retrying in %.0f s (attempt %d of %d)", object,
				r->h.status, n->origin, delay, attempt + 1, HF_MAX_RETRIES + 1);
		else
			bn_warn("%s: %s; retrying in %.0f s", object,
				r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result), delay);
		hf_req_free(r);
		hf_sleep(n->cfg, delay);
		if (bn_interrupted)
			return bn_seterr(err, BN_EINTR, "interrupted");
	}
}

/* ---- error messages ------------------------------------------------------------------------- */

/* The server's own words: X-Error-Message, else the JSON body's "error". */
static void server_message(const struct hf_req *r, char *out, size_t outsz)
{
	out[0] = '\0';
	if (r->h.error_message[0]) {
		snprintf(out, outsz, "%s", r->h.error_message);
		return;
	}
	const char *e = r->body ? strstr(r->body, "\"error\"") : NULL;
	if (!e)
		return;
	e = strchr(e + 7, '"');
	if (!e)
		return;
	e++;
	size_t n = 0;
	while (e[n] && e[n] != '"' && n + 1 < outsz && n < 300)
		n++;
	snprintf(out, outsz, "%.*s", (int)n, e);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

static void url_no_query(const char *url, char *out, size_t outsz)
{
	snprintf(out, outsz, "%.*s", (int)strcspn(url, "?#"), url);
}

int hf_http_error(const struct hf_net *n, const struct hf_req *r, const char *file, struct bn_err *err)
{
	const struct hf_config *c = n->cfg;
	long s = r->h.status;
	const char *code = r->h.error_code;
	char msg[420], where[600];
	server_message(r, msg, sizeof msg);
	url_no_query(r->url, where, sizeof where);
	char obj[600];
	if (file)
		snprintf(obj, sizeof obj, "%s: %s", c->repo_id, file);
	else
		snprintf(obj, sizeof obj, "%s", c->repo_id);
	bool token_sent = r->auth;
	bool invalid_token = strstr(msg, "Invalid credentials") || strstr(msg, "invalid credentials") ||
			     strstr(msg, "Invalid token");

	if (strcmp(code, "GatedRepo") == 0) {
		if (s == 403)
			return bn_seterr(err, BN_EAUTH,
					 "%s: gated repository: your token is not in its authorized list yet "
					 "(HTTP 403 GatedRepo); request access at %s/%s and wait for approval",
					 c->repo_id, c->endpoint, c->repo_id);
		return bn_seterr(err, BN_EAUTH,
				 "%s: gated repository: downloads need an account that accepted its conditions "
				 "(HTTP %ld GatedRepo); accept them at %s/%s and set HF_TOKEN (or save the "
				 "token in $HF_HOME/token)", c->repo_id, s, c->endpoint, c->repo_id);
	}
	if (strcmp(code, "RepoNotFound") == 0 || (s == 401 && !token_sent && !code[0]))
		return bn_seterr(err, BN_ENOENT,
				 "%s: repository not found (HTTP %ld%s): it does not exist or it is private; "
				 "check the repo id%s", c->repo_id, s, code[0] ? " RepoNotFound" : "",
				 token_sent ? ", and that your token can read it"
					    : ", or set HF_TOKEN to a token that can read it");
	if (strcmp(code, "RevisionNotFound") == 0)
		return bn_seterr(err, BN_ENOENT,
				 "%s: revision '%s' not found (HTTP %ld RevisionNotFound); check --revision "
				 "(a branch, tag or commit of this repo)", c->repo_id, c->revision, s);
	if (strcmp(code, "EntryNotFound") == 0)
		return bn_seterr(err, BN_ENOENT, "%s: not found at revision '%s' (HTTP %ld EntryNotFound)",
				 obj, c->revision, s);
	if (s == 401 && (invalid_token || token_sent))
		return bn_seterr(err, BN_EAUTH,
				 "%s: the Hub rejected the token from %s (HTTP 401%s%s); check it, or create "
				 "a new one at https://huggingface.co/settings/tokens", c->repo_id,
				 c->token_source ? c->token_source : "the environment", msg[0] ? ": " : "", msg);
	if (s == 403 && strstr(msg, "disabled"))
		return bn_seterr(err, BN_EAUTH, "%s: access to this repository is disabled (HTTP 403)", c->repo_id);
	if (s == 403)
		return bn_seterr(err, BN_EAUTH,
				 "%s: access denied (HTTP 403%s%s) at %s; make sure your token has the right "
				 "permissions", obj, msg[0] ? ": " : "", msg, where);
	if (s == 429)
		return bn_seterr(err, BN_ENET,
				 "%s: still rate-limited after %d retries (HTTP 429%s%s); wait a few minutes and "
				 "run again%s", obj, HF_MAX_RETRIES, msg[0] ? ": " : "", msg,
				 c->token ? "" : ", or set HF_TOKEN (authenticated requests get higher limits)");
	if (s >= 500)
		return bn_seterr(err, BN_ENET,
				 "%s: the server answered HTTP %ld%s%s after %d retries%s%s; try again later",
				 obj, s, msg[0] ? ": " : "", msg, HF_MAX_RETRIES,
				 r->h.request_id[0] ? "; request id " : "", r->h.request_id);
	return bn_seterr(err, s == 404 ? BN_ENOENT : BN_ENET, "%s: HTTP %ld%s%s from %s", obj, s,
			 msg[0] ? ": " : "", msg, where);
}

int hf_net_error(const struct hf_net *n, const struct hf_req *r, CURLcode result, const char *object,
		 int attempts, struct bn_err *err)
{
	const char *why = r && r->errbuf[0] ? r->errbuf : curl_easy_strerror(result);
	char origin[512] = "";
	if (r && r->url)
		hf_url_origin(r->url, origin, sizeof origin);
	switch (result) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return bn_seterr(err, BN_ENET,
				 "%s: cannot reach %s (%s); check the network, the proxy variables "
				 "(https_proxy, no_proxy) and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the "
				 "files already in %s", object, origin[0] ? origin : n->origin, why,
				 n->cfg->local_dir);
	case CURLE_OPERATION_TIMEDOUT:
		return bn_seterr(err, BN_ENET,
				 "%s: %s stopped answering (%s, %d attempts); check the network, or raise "
				 "HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT (now %g s / %g s)", object,
				 origin[0] ? origin : n->origin, why, attempts, n->cfg->etag_timeout,
				 n->cfg->download_timeout);
	case CURLE_SSL_CONNECT_ERROR:
		return bn_seterr(err, BN_ENET,
				 "%s: TLS handshake with %s failed (%s); check HF_ENDPOINT (https:// or http://?) "
				 "and the proxy variables", object, origin[0] ? origin : n->origin, why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return bn_seterr(err, BN_ENET,
				 "%s: TLS certificate check failed for %s (%s); set CURL_CA_BUNDLE or "
				 "SSL_CERT_FILE to your proxy's CA bundle (verification is never disabled)",
				 object, origin[0] ? origin : n->origin, why);
	default:
		return bn_seterr(err, BN_ENET, "%s: transfer from %s failed after %d attempts (%s); check "
				 "the network and run again", object, origin[0] ? origin : n->origin,
				 attempts, why);
	}
}
