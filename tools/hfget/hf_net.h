/* HTTP for hfget on libcurl's multi interface: one request (struct hf_req) per transfer with the
 * Hub headers it answered, the decision of where the token may go, retry classification and the
 * mapping of Hub errors to one-line messages (hf-hub-protocol.md §3, §6.2, §8, §10.6). */
#ifndef HF_NET_H
#define HF_NET_H

#include <curl/curl.h>

#include "hf.h"

/* The headers of the last response of a request (reset at each status line). */
struct hf_hdrs {
	long status;
	char commit[48];        /* X-Repo-Commit */
	char etag[160];         /* ETag as sent */
	char linked_etag[160];  /* X-Linked-Etag as sent */
	int64_t linked_size;    /* X-Linked-Size, -1 if absent */
	int64_t content_length; /* -1 if absent */
	char *location;         /* Location (malloc'd) */
	char *link;             /* Link (malloc'd) */
	bool cr_present;        /* Content-Range parsed: */
	bool cr_unsatisfied;    /* "bytes *\/total" */
	bool cr_total_known;
	uint64_t cr_start, cr_end, cr_total;
	double retry_after;     /* Retry-After seconds, -1 if absent */
	double ratelimit_reset; /* RateLimit t= when r=0, -1 otherwise */
	char error_code[64];    /* X-Error-Code */
	char error_message[400]; /* X-Error-Message */
	char request_id[100];   /* X-Request-Id, else X-Amzn-Trace-Id */
	char content_encoding[32];
};

struct hf_net {
	CURLM *multi;
	const struct hf_config *cfg;
	char origin[512]; /* scheme://host:port of the endpoint: the only place the token goes */
	char ua[160];
	unsigned api_calls; /* requests to the API (info, tree pages), for --verbose */
};

struct hf_req;
/* Receives body bytes of a 2xx answer; returns n, or 0 to abort the transfer. */
typedef size_t (*hf_sink_fn)(struct hf_req *r, const char *data, size_t n);

struct hf_req {
	CURL *easy;
	char *url;
	bool head;
	bool auth; /* the Authorization header was attached */
	struct curl_slist *hdrlist;
	char errbuf[CURL_ERROR_SIZE];
	struct hf_hdrs h;
	char *body; /* non-2xx bodies, and 2xx bodies when no sink is set (API answers) */
	size_t body_len, body_cap, body_max;
	bool body_too_big;
	hf_sink_fn sink;
	void *owner; /* the transfer engine's job and segment */
	void *seg;
	bool sink_started; /* the sink saw this response's first bytes */
	bool progress;     /* body bytes were stored during this attempt */
	CURLcode result;
	double timeout;    /* read timeout: no byte for this long ends the attempt */
	double last_rx;    /* when a byte (header or body) last arrived */
	curl_off_t last_dl;
	bool timed_out;
};

int hf_net_init(struct hf_net *n, const struct hf_config *c, struct bn_err *err);
void hf_net_free(struct hf_net *n);

/* Prepares (does not start) a GET or HEAD of url.  range is NULL or "a-" / "a-b".  The token is
 * attached only when url has the endpoint's origin.  timeout is the connect and per-read
 * (no-progress) timeout in seconds. */
int hf_req_init(struct hf_req *r, struct hf_net *n, const char *url, bool head, const char *range,
		double timeout, struct bn_err *err);
void hf_req_free(struct hf_req *r);

/* Runs one request to completion on the multi handle, with retries on network errors and
 * 408/429/5xx (back-off 1, 2, 4, 8, 8 s, Retry-After honoured).  Redirects are not followed.
 * Returns 0 when an answer arrived (any status: look at r->h.status), or -BN_ENET / -BN_EINTR
 * with err set.  r is re-initialised for each attempt with the same parameters. */
int hf_net_call(struct hf_net *n, struct hf_req *r, const char *url, bool head, double timeout,
		const char *object, struct bn_err *err);

/* The outcome of a finished transfer: a read timeout detected by the progress callback becomes
 * CURLE_OPERATION_TIMEDOUT with a message in errbuf. */
CURLcode hf_req_outcome(struct hf_req *r, CURLcode res);

/* Whether an outcome is worth retrying, and after how long (seconds, before time_scale) for the
 * given 1-based attempt number. */
bool hf_retryable(const struct hf_req *r, CURLcode result, int attempt, double *delay);
/* Sleeps seconds * time_scale, waking early on an interrupt. */
void hf_sleep(const struct hf_config *c, double seconds);

/* The one-line message for a failed answer (status >= 400) about object (a repo, or repo/file),
 * in err; returns the negative code.  file may be NULL. */
int hf_http_error(const struct hf_net *n, const struct hf_req *r, const char *file, struct bn_err *err);
/* The message for a transport failure (no answer). */
int hf_net_error(const struct hf_net *n, const struct hf_req *r, CURLcode result, const char *object,
		 int attempts, struct bn_err *err);

/* Normalises an ETag: strips W/ and the quotes; lowercase. */
void hf_etag_normalise(const char *raw, char *out, size_t outsz);

#endif
