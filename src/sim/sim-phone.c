/* The citizen's phone, as tests see it: the SMS it received (with the
 * one-time code picked out). Later services add what a phone does with
 * their prompts. Also the `isso-sim phone …` commands that read it from a
 * running simulator.
 *
 *   GET  /phone/{number}/sms/last   the newest SMS, or 404 {"error":"no_sms"}
 *   GET  /phone/{number}/sms        all kept SMS, newest first (a JSON list)
 *   POST /phone/{number}/sms/clear  forgets them: {"cleared": n}
 *
 * The mobile certificate app's prompts (/phone/mobilecert/…, `isso-sim
 * phone mobilecert …`) live in sim-twfido.c; the TaipeiPass app
 * (/phone/tpapp/…, `isso-sim phone tpapp …`) in sim-tpapp.c.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define PHONE_NUMBER_MAX 24 /* "+886 912-345-678" and friends */
#define PHONE_LIST_MAX   1000

static void
phone_sms_last(struct http_req *req, const char *number)
{
	json_t *list = sim_sms_messages(number, 1);

	if (json_array_size(list) == 0)
		sim_send_error(req, 404, "no_sms");
	else
		http_send_json(req, 200, json_incref(json_array_get(list, 0)));
	json_decref(list);
}

static void
phone_sms_list(struct http_req *req, const char *number)
{
	http_send_json(req, 200, sim_sms_messages(number, PHONE_LIST_MAX));
}

static void
phone_sms_clear(struct http_req *req, const char *number)
{
	json_t *o = json_pack("{s:I}", "cleared", (json_int_t)sim_sms_clear(number));

	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
}

static const struct phone_action {
	const char *path; /* after /phone/{number}/ */
	unsigned methods;
	void (*run)(struct http_req *req, const char *number);
} phone_actions[] = {
    {"sms/last", HTTP_GET | HTTP_HEAD, phone_sms_last},
    {"sms", HTTP_GET | HTTP_HEAD, phone_sms_list},
    {"sms/clear", HTTP_POST, phone_sms_clear},
};

/* /phone/{number}/{action}: the number may be written any way
 * phone_normalize() accepts. */
static void
phone_handler(struct http_req *req, void *ctx)
{
	const char *rest = http_path_rest(req);
	const char *slash = strchr(rest, '/');
	char raw[PHONE_NUMBER_MAX + 1], number[11];
	size_t len;

	if (slash == NULL) {
		sim_send_error(req, 404, "not_found");
		goto out;
	}
	len = (size_t)(slash - rest);
	if (len == 0 || len > PHONE_NUMBER_MAX) {
		sim_send_error(req, 400, "invalid_number");
		goto out;
	}
	memcpy(raw, rest, len);
	raw[len] = '\0';
	if (!phone_normalize(raw, number)) {
		sim_send_error(req, 400, "invalid_number");
		goto out;
	}
	for (size_t i = 0; i < ISSO_N_ELEMENTS(phone_actions); i++) {
		if (strcmp(slash + 1, phone_actions[i].path) != 0)
			continue;
		if ((http_method(req) & phone_actions[i].methods) == 0) {
			http_set_header(req, "Allow",
			                phone_actions[i].methods & HTTP_POST ? "POST"
			                                                     : "GET, HEAD");
			sim_send_error(req, 405, "method_not_allowed");
		} else {
			phone_actions[i].run(req, number);
		}
		goto out;
	}
	sim_send_error(req, 404, "not_found");
out:
	return;
}

static void
phone_routes(struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/phone/", phone_handler, NULL);
}

const struct sim_service sim_service_phone = {
    .name = "phone",
    .routes = phone_routes,
};

/* ---- isso-sim phone … ---- */

static const struct phone_cmd {
	const char *name;
	const char *method;
	const char *suffix; /* appended to /phone/{number}/ */
	bool list;          /* found means a non-empty list */
} phone_cmds[] = {
    {"sms-last", "GET", "sms/last", false},
    {"sms-list", "GET", "sms", true},
    {"sms-clear", "POST", "sms/clear", false},
};

static int
phone_usage(void)
{
	fprintf(stderr,
	        "usage: isso-sim phone sms-last|sms-list|sms-clear NUMBER [--sim URL]\n"
	        "       isso-sim phone mobilecert approve|deny TICKET|NATIONAL_ID [--as ID]\n"
	        "       isso-sim phone mobilecert open-link APP_LINK [--deny] [--as ID]\n"
	        "       isso-sim phone mobilecert pending NATIONAL_ID\n"
	        "       isso-sim phone tpapp show QR\n"
	        "       isso-sim phone tpapp approve|deny QR --account A [--pick NN] [--org UBN]\n"
	        "       isso-sim phone tpapp open-link LINK --account A [--org UBN]\n"
	        "       isso-sim phone tpapp enrol --account A --issod URL\n"
	        "  URL defaults to $ISSO_SIM_URL or " SIM_DEFAULT_URL "\n");
	return 2;
}

/* Exit status: 0 found, 1 not found (no SMS), 2 usage or connection error. */
int
sim_phone_cmd(int argc, char **argv)
{
	const struct phone_cmd *cmd = NULL;
	const char *url = getenv("ISSO_SIM_URL");
	const char *raw = NULL, *error = NULL;
	char number[11], path[64];
	char *body = NULL;
	json_t *reply = NULL;
	int status = 0, i, ret = 2;

	if (argc >= 2 && strcmp(argv[1], "mobilecert") == 0) {
		ret = sim_twfido_phone_cmd(argc - 1, argv + 1);
		goto out;
	}
	if (argc >= 2 && strcmp(argv[1], "tpapp") == 0) {
		ret = sim_tpapp_phone_cmd(argc - 1, argv + 1);
		goto out;
	}
	if (url == NULL || *url == '\0')
		url = SIM_DEFAULT_URL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sim") == 0 && i + 1 < argc) {
			url = argv[++i];
		} else if (strncmp(argv[i], "--sim=", 6) == 0) {
			url = argv[i] + 6;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			ret = phone_usage();
			goto out;
		} else if (cmd == NULL) {
			for (size_t k = 0; k < ISSO_N_ELEMENTS(phone_cmds); k++) {
				if (strcmp(argv[i], phone_cmds[k].name) == 0)
					cmd = &phone_cmds[k];
			}
			if (cmd == NULL) {
				ret = phone_usage();
				goto out;
			}
		} else if (raw == NULL) {
			raw = argv[i];
		} else {
			ret = phone_usage();
			goto out;
		}
	}
	if (cmd == NULL || raw == NULL) {
		ret = phone_usage();
		goto out;
	}
	if (!phone_normalize(raw, number)) {
		fprintf(stderr, "isso-sim: %s is not a Taiwan mobile number (09xxxxxxxx)\n", raw);
		goto out;
	}
	snprintf(path, sizeof(path), "/phone/%s/%s", number, cmd->suffix);
	if (sim_client_request(url, cmd->method, path, 5000, &status, &body, &error) != 0) {
		fprintf(stderr, "isso-sim: %s: %s\n", url, error);
		goto out;
	}
	reply = json_loads(body, 0, NULL);
	if (reply == NULL || (status != 200 && status != 404)) {
		fprintf(stderr, "isso-sim: %s: unexpected reply (HTTP %d)\n", url, status);
		goto out;
	}
	json_dumpf(reply, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	if (status == 404 || (cmd->list && json_array_size(reply) == 0))
		ret = 1;
	else
		ret = 0;
out:
	json_decref(reply);
	free(body);
	return ret;
}
