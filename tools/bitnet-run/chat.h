/* Chat templates: recognising the tokenizer.chat_template a GGUF carries (a Jinja text we do not
 * interpret) and writing turns in that format, as llama.cpp's llama-chat.cpp does for the models
 * bitnet.cpp runs.  Known:
 *   content  "{{ messages[0]['content'] }}" (the test vectors) and
 *            "{% for m in messages %}{{ m['content'] }}{% endfor %}" (the synthetic models):
 *            each message's text as is, no assistant prefix
 *   llama3   <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> (content trimmed);
 *            generation prompt <|start_header_id|>assistant<|end_header_id|>\n\n
 *   falcon3  <|ROLE|>\nCONTENT\n; generation prompt <|assistant|>\n
 *   bitnet   BitNet-b1.58-2B-4T: "System: C<|eot_id|>", "User: C<|eot_id|>", generation prompt
 *            "Assistant: " (also recognised: convert-ms-to-gguf-bitnet.py's "BITNETAssistant")
 * An assistant turn ends with the end-of-turn token the model generated, which the chat loop keeps
 * in the context, so a turn is formatted on its own (no history re-rendering). */
#ifndef BR_CHAT_H
#define BR_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "bn_err.h"

enum chat_tmpl { CHAT_CONTENT, CHAT_LLAMA3, CHAT_FALCON3, CHAT_BITNET };

/* Recognises a template text (or one of the names "content", "llama3", "falcon3", "bitnet").
 * -BN_EUNSUPPORTED with a message quoting the template's start if it is none of them. */
int chat_detect(const char *tmpl, size_t len, enum chat_tmpl *out, struct bn_err *err);
const char *chat_name(enum chat_tmpl t);

/* One message (role "system", "user" or "assistant") in the template's format, followed by the
 * assistant prefix when add_assistant.  Returns a malloc'd NUL-terminated string (NULL when out
 * of memory). */
char *chat_format(enum chat_tmpl t, const char *role, const char *content, bool add_assistant);

#endif
