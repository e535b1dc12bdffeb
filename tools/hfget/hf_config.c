/* Configuration from the environment, with the official client's names and precedence
 * (hf-hub-protocol.md §2, §3): endpoint, token (flag > HF_TOKEN > token file), timeouts,
 * offline mode, CA bundle.  The token is kept in memory only and is never printed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_file.h"
#include "bn_util.h"
#include "hf.h"

bool hf_env_true(const char *name)
{
	const char *v = getenv(name);
	if (!v)
		return false;
	return strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
	       strcasecmp(v, "true") == 0;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Trims surrounding whitespace in place; returns s. */
static char *trim(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	size_t i = 0;
	while (isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
	return s;
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (malloc'd or NULL). */
static char *hf_home(void)
{
	const char *h = env_nonempty("HF_HOME");
	if (h)
		return strdup(h);
	const char *xdg = env_nonempty("XDG_CACHE_HOME");
	if (xdg)
		return bn_path_join(xdg, "huggingface");
	const char *home = env_nonempty("HOME");
	return home ? bn_path_join(home, ".cache/huggingface") : NULL;
}

static int parse_timeout(const char *name, double def, double *out, struct bn_err *err)
{
	const char *v = env_nonempty(name);
	*out = def;
	if (!v)
		return 0;
	double d;
	if (bn_parse_double(v, &d) || d <= 0 || d > 86400)
		return bn_seterr(err, BN_EINVAL, "%s=%s: not a number of seconds between 0 and 86400", name, v);
	*out = d;
	return 0;
}

/* A token must be a single printable header-safe word: anything else would let a token file
 * inject headers. */
static bool token_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (*t <= ' ' || *t == 0x7f)
			return false;
	return true;
}

int hf_config_from_env(struct hf_config *c, const char *cli_token, struct bn_err *err)
{
	const char *ep = env_nonempty("HF_ENDPOINT");
	if (!ep)
		ep = hf_env_true("HUGGINGFACE_CO_STAGING") ? "https://hub-ci.huggingface.co" : "https://huggingface.co";
	c->endpoint = strdup(ep);
	if (!c->endpoint)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	size_t n = strlen(c->endpoint);
	while (n && c->endpoint[n - 1] == '/')
		c->endpoint[--n] = '\0';
	char origin[512];
	if (!hf_url_origin(c->endpoint, origin, sizeof origin))
		return bn_seterr(err, BN_EINVAL, "HF_ENDPOINT=%s: not an http:// or https:// URL", ep);

	if (parse_timeout("HF_HUB_ETAG_TIMEOUT", 10, &c->etag_timeout, err) ||
	    parse_timeout("HF_HUB_DOWNLOAD_TIMEOUT", 10, &c->download_timeout, err))
		return -BN_EINVAL;
	c->time_scale = 1.0;
	const char *ts = env_nonempty("HFGET_TEST_TIME_SCALE");
	if (ts && (bn_parse_double(ts, &c->time_scale) || c->time_scale < 0 || c->time_scale > 10))
		return bn_seterr(err, BN_EINVAL, "HFGET_TEST_TIME_SCALE=%s: not a number between 0 and 10", ts);
	c->offline = hf_env_true("HF_HUB_OFFLINE") || hf_env_true("TRANSFORMERS_OFFLINE");

	/* CA bundle: libcurl's built-in default unless the usual variables name another. */
	const char *ca = env_nonempty("CURL_CA_BUNDLE");
	if (!ca)
		ca = env_nonempty("REQUESTS_CA_BUNDLE");
	if (!ca)
		ca = env_nonempty("SSL_CERT_FILE");
	if (ca && !(c->cainfo = strdup(ca)))
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	const char *capath = env_nonempty("SSL_CERT_DIR");
	if (capath && !(c->capath = strdup(capath)))
		return bn_seterr(err, BN_ENOMEM, "out of memory");

	/* Token: --token, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file (unless
	 * HF_HUB_DISABLE_IMPLICIT_TOKEN). */
	const char *t = cli_token, *src = "--token";
	if (!t && (t = env_nonempty("HF_TOKEN")))
		src = "HF_TOKEN";
	if (!t && (t = env_nonempty("HUGGING_FACE_HUB_TOKEN")))
		src = "HUGGING_FACE_HUB_TOKEN";
	if (t) {
		if (!(c->token = strdup(t)))
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		trim(c->token);
		c->token_source = src;
	} else if (!hf_env_true("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		const char *tp = env_nonempty("HF_TOKEN_PATH");
		char *home = NULL, *path = NULL;
		if (tp) {
			path = strdup(tp);
		} else if ((home = hf_home())) {
			path = bn_path_join(home, "token");
		}
		free(home);
		char *buf = NULL;
		size_t len;
		if (path && bn_file_exists(path) && bn_read_file(path, 64 << 10, &buf, &len, NULL) == 0) {
			trim(buf);
			if (*buf) {
				c->token = buf;
				buf = NULL;
				c->token_source = tp ? "the token file in HF_TOKEN_PATH" : "the token file in HF_HOME";
			}
		}
		free(buf);
		free(path);
	}
	if (c->token && !token_ok(c->token))
		return bn_seterr(err, BN_EINVAL,
				 "the token from %s contains spaces or control characters; check it",
				 c->token_source);
	if (c->token && !*c->token) {
		free(c->token);
		c->token = NULL;
	}
	return 0;
}

void hf_config_free(struct hf_config *c)
{
	if (!c)
		return;
	free(c->endpoint);
	if (c->token) {
		/* Do not leave the secret in freed memory. */
		volatile char *p = c->token;
		while (*p)
			*p++ = 0;
		free(c->token);
	}
	free(c->cainfo);
	free(c->capath);
	c->endpoint = c->token = c->cainfo = c->capath = NULL;
}
