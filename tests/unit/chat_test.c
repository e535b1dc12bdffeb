/* Chat templates: the template texts the supported models carry are recognised, each turn is
 * written in the model's format, and an unknown template is a clear error. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

static enum chat_tmpl detect(const char *t)
{
	enum chat_tmpl out;
	struct bn_err err = { 0 };
	cr_assert(eq(int, chat_detect(t, strlen(t), &out, &err), 0), "%s", err.msg);
	return out;
}

Test(chat, recognises_the_templates_of_the_supported_models)
{
	/* the test vectors and the synthetic models (mkmodel) */
	cr_assert(eq(int, detect("{{ messages[0]['content'] }}"), CHAT_CONTENT));
	cr_assert(eq(int, detect("{% for m in messages %}{{ m['content'] }}{% endfor %}"), CHAT_CONTENT));
	/* Llama 3 (Llama3-8B-1.58's tokenizer_config.json) */
	cr_assert(eq(int, detect("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
				 "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
				 "trim + '<|eot_id|>' %}{{ content }}{% endfor %}"),
		  CHAT_LLAMA3));
	/* Falcon3-*-Instruct-1.58bit */
	cr_assert(eq(int, detect("{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\\n' + "
				 "message['content'] + '\\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + "
				 "message['content'] + '\\n' }}{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' "
				 "+ message['content'] + eos_token }}{% endif %}{% endfor %}"),
		  CHAT_FALCON3));
	/* BitNet-b1.58-2B-4T, and convert-ms-to-gguf-bitnet.py's hard-coded one */
	cr_assert(eq(int, detect("{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if "
				 "message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}{% elif "
				 "message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}"
				 "{% endif %}{% endfor %}"),
		  CHAT_BITNET));
	cr_assert(eq(int, detect("{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if "
				 "message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + "
				 "eos_token }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
				 "{% endif %}{% endfor %}"),
		  CHAT_BITNET));
	/* names, as --chat-template takes them */
	cr_assert(eq(int, detect("llama3"), CHAT_LLAMA3));
	cr_assert(eq(int, detect("falcon3"), CHAT_FALCON3));
	cr_assert(eq(int, detect("bitnet"), CHAT_BITNET));
	cr_assert(eq(int, detect("content"), CHAT_CONTENT));
}

Test(chat, an_unknown_template_is_an_error_quoting_it)
{
	enum chat_tmpl out;
	struct bn_err err = { 0 };
	const char *t = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>{% endfor %}";
	cr_assert(eq(int, chat_detect(t, strlen(t), &out, &err), -BN_EUNSUPPORTED));
	cr_assert(strstr(err.msg, "chat template '{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['con...' "
				  "is not one bitnet-run knows (content, llama3, falcon3, bitnet)") != NULL,
		  "%s", err.msg);
}

static void expect_format(enum chat_tmpl t, const char *role, const char *content, bool add, const char *want)
{
	char *s = chat_format(t, role, content, add);
	cr_assert(s != NULL);
	cr_assert(eq(str, s, (char *)want));
	free(s);
}

Test(chat, writes_each_turn_in_the_model_format)
{
	expect_format(CHAT_CONTENT, "user", "Hello", true, "Hello");
	expect_format(CHAT_LLAMA3, "system", " Be brief. ", false,
		      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>");
	expect_format(CHAT_LLAMA3, "user", "Hi", true,
		      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
	expect_format(CHAT_FALCON3, "user", "Hi", true, "<|user|>\nHi\n<|assistant|>\n");
	expect_format(CHAT_FALCON3, "system", "Be brief.", false, "<|system|>\nBe brief.\n");
	expect_format(CHAT_BITNET, "system", "Be brief.", false, "System: Be brief.<|eot_id|>");
	expect_format(CHAT_BITNET, "user", "Hi", true, "User: Hi<|eot_id|>Assistant: ");
}
