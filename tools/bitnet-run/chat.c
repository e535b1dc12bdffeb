/* Chat template detection and formatting (chat.h).  Detection looks for markers in the template
 * text as llama.cpp's llm_chat_detect_template does. */
#include "chat.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

static bool equals(const char *s, size_t len, const char *t)
{
	return strlen(t) == len && memcmp(s, t, len) == 0;
}

int chat_detect(const char *s, size_t len, enum chat_tmpl *out, struct bn_err *err)
{
	if (equals(s, len, "content") || equals(s, len, "{{ messages[0]['content'] }}") ||
	    equals(s, len, "{% for m in messages %}{{ m['content'] }}{% endfor %}")) {
		*out = CHAT_CONTENT;
	} else if (equals(s, len, "llama3") ||
		   (has(s, len, "<|start_header_id|>") && has(s, len, "<|end_header_id|>"))) {
		*out = CHAT_LLAMA3;
	} else if (equals(s, len, "falcon3") ||
		   (has(s, len, "<|assistant|>") && has(s, len, "<|user|>") && !has(s, len, "<|end|>"))) {
		*out = CHAT_FALCON3;
	} else if (equals(s, len, "bitnet") || has(s, len, "BITNETAssistant") ||
		   (has(s, len, "Assistant: ") && has(s, len, "<|eot_id|>") &&
		    (has(s, len, "User: ") || has(s, len, "Human: ")))) {
		*out = CHAT_BITNET;
	} else {
		size_t show = len < 60 ? len : 60;
		char quoted[64];
		for (size_t i = 0; i < show; i++)
			quoted[i] = isprint((unsigned char)s[i]) ? s[i] : ' ';
		quoted[show] = 0;
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "chat template '%s%s' is not one bitnet-run knows (content, llama3, falcon3, bitnet)",
				 quoted, len > show ? "..." : "");
	}
	return 0;
}

const char *chat_name(enum chat_tmpl t)
{
	switch (t) {
	case CHAT_CONTENT: return "content";
	case CHAT_LLAMA3: return "llama3";
	case CHAT_FALCON3: return "falcon3";
	case CHAT_BITNET: return "bitnet";
	}
	return "?";
}

char *chat_format(enum chat_tmpl t, const char *role, const char *content, bool add_assistant)
{
	size_t cl = strlen(content), rl = strlen(role);
	size_t cap = cl + rl + 96;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	int n = 0;
	switch (t) {
	case CHAT_CONTENT:
		n = snprintf(out, cap, "%s", content);
		break;
	case CHAT_LLAMA3: {
		/* llama.cpp trims the content (ASCII whitespace) */
		const char *b = content, *e = content + cl;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		n = snprintf(out, cap, "<|start_header_id|>%s<|end_header_id|>\n\n%.*s<|eot_id|>%s", role, (int)(e - b), b,
			     add_assistant ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "");
		break;
	}
	case CHAT_FALCON3:
		n = snprintf(out, cap, "<|%s|>\n%s\n%s", role, content, add_assistant ? "<|assistant|>\n" : "");
		break;
	case CHAT_BITNET: {
		const char *label = strcmp(role, "system") == 0 ? "System" : strcmp(role, "user") == 0 ? "User" : "Assistant";
		n = snprintf(out, cap, "%s: %s<|eot_id|>%s", label, content, add_assistant ? "Assistant: " : "");
		break;
	}
	}
	if (n < 0) {
		free(out);
		return NULL;
	}
	return out;
}
