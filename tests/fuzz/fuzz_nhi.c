/* Fuzzes isso-cardagent's NHI command reader (src/cardagent/nhi.c), which
 * reads the WebSocket messages of any page a trusted site serves: the
 * input is one command message ("SecureGetBasicWithParam?Pwd=…"), run
 * through nhi_command() with no card module loaded (so every command
 * that passes the parameter checks answers "no reader"), through
 * nhi_parse_params() for its query, and its first 50 bytes through the
 * card data reader nhi_basic_json(). Checks each one's promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cardagent/agent.h"
#include "cardagent/parse.h"
#include "lib/log.h"
#include "lib/utf8.h"

/* The libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const char *msg, size_t len, const char *reply)
{
	json_t *j = json_loads(reply, JSON_REJECT_DUPLICATES, NULL);
	json_int_t ret;

	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "ret")))
		abort();
	ret = json_integer_value(json_object_get(j, "ret"));
	switch (ret) {
	case 0:
		/* only GetVersion answers without a card */
		if (len < 10 || memcmp(msg, "GetVersion", 10) != 0 ||
		    (len > 10 && msg[10] != '?') || !json_is_string(json_object_get(j, "version")))
			abort();
		break;
	case NHI_ERR_COMMAND:
	case NHI_ERR_PARAM:
	case NHI_ERR_NO_READER: /* a well-formed card command */
	case NHI_ERR_CARD:      /* EnCrypt with no service key */
		if (json_object_size(j) != 1)
			abort();
		break;
	default:
		abort();
	}
	json_decref(j);
}

static bool
all_of(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

static void
check_params(const char *q, size_t n)
{
	struct nhi_params p;
	size_t rl, pl;
	int r;

	memset(&p, 0, sizeof(p));
	r = nhi_parse_params(q, n, &p);
	if (r != 0 && r != NHI_ERR_COMMAND && r != NHI_ERR_PARAM)
		abort();
	if (r != 0)
		return;
	rl = strnlen(p.random, sizeof(p.random));
	pl = strnlen(p.pwd, sizeof(p.pwd));
	if (rl == sizeof(p.random) || pl == sizeof(p.pwd))
		abort(); /* not terminated */
	if (p.has_random != (rl > 0) || p.has_pwd != (pl > 0))
		abort();
	if (p.has_random &&
	    (rl > NHI_MAX_RANDOM ||
	     !all_of(p.random, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")))
		abort();
	if (p.has_pwd && (pl < NHI_MIN_PWD || pl > NHI_MAX_PWD))
		abort();
	for (size_t i = 0; i < pl; i++)
		if (p.pwd[i] < 0x20 || p.pwd[i] > 0x7e)
			abort();
}

static void
check_basic(const unsigned char *b)
{
	json_t *j = nhi_basic_json(b);
	const char *keys[] = {"card_no", "name", "national_id", "birth", "sex"};
	const size_t max[] = {12, 127, 10, 7, 1};

	if (j == NULL)
		return;
	for (size_t i = 0; i < 5; i++) {
		const char *v = json_string_value(json_object_get(j, keys[i]));

		if (v == NULL || v[0] == '\0' || strlen(v) > max[i] ||
		    !utf8_printable(v, strlen(v), false))
			abort();
	}
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	struct agent a;
	const char *msg = (const char *)data, *q;
	char *reply;

	if (!started) {
		log_init(2, LOG_ERROR);
		started = true;
	}
	if (size > 8192) /* WS_MAX_MESSAGE */
		return 0;
	memset(&a, 0, sizeof(a));
	reply = nhi_command(&a, msg, size);
	if (reply == NULL)
		abort();
	check_reply(msg, size, reply);
	free(reply);
	q = memchr(msg, '?', size);
	check_params(q != NULL ? q + 1 : msg, q != NULL ? size - (size_t)(q + 1 - msg) : size);
	if (size >= 50)
		check_basic(data);
	return 0;
}
