/* isso-sim: the stand-in for every national service (see sim.h).
 *
 *   isso-sim [serve] [--listen ADDR] [--port N] [--identities FILE]
 *            [--sms-user U] [--sms-password P] [--log-level L]
 *            [--twfido-sp-id ID] [--twfido-key KEY] [--twfido-min-time-limit S]
 *            [--pki DIR] [--nhi-suspend-seconds S] [--state DIR]
 *   isso-sim phone sms-last|sms-list|sms-clear NUMBER [--sim URL]
 *   isso-sim phone mobilecert approve|deny TICKET [--as ID] [--sim URL]
 *   isso-sim phone mobilecert pending NATIONAL_ID [--sim URL]
 *   isso-sim phone tpapp show QR [--issod URL]
 *   isso-sim phone tpapp approve|deny QR --account A [--password P] [--org UBN]
 *            [--pick NN] [--issod URL]
 *   isso-sim phone tpapp open-link LINK --account A [--password P] [--org UBN]
 *   isso-sim phone tpapp enrol --account A --issod URL [--password P] [--name N]
 */
#include "sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"

#define SIM_DEFAULT_IDENTITIES ISSO_DATADIR "/sim/identities.json"
#define SIM_MAX_BODY           (64 * 1024)
/* TW FidO: a public test SP id and key, matching issod's defaults; never
 * a real deployment's. */
#define SIM_TWFIDO_SP_ID "TPE-ISSO-SIM"
#define SIM_TWFIDO_KEY   "6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4"

/* The registry of simulated services, in start-up order (identities
 * first: other services look citizens up). */
const struct sim_service *const sim_services[] = {
    &sim_service_ident,  &sim_service_sms,     &sim_service_phone,
    &sim_service_twfido, &sim_service_telecom, &sim_service_tpapp,
    &sim_service_moica,  &sim_service_nhi,     NULL,
};

void
sim_send_error(struct http_req *req, int status, const char *code)
{
	json_t *o = json_pack("{s:s}", "error", code);

	if (o == NULL)
		abort();
	http_send_json(req, status, o);
}

static void
sim_health(struct http_req *req, void *ctx)
{
	json_t *names = json_array();
	json_t *o;

	if (names == NULL)
		abort();
	for (size_t i = 0; sim_services[i] != NULL; i++)
		json_array_append_new(names, json_string(sim_services[i]->name));
	o = json_pack("{s:s, s:o}", "status", "ok", "services", names);
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
}

/* Errors the router produces (unknown path, wrong method, bad form) as
 * JSON, like the rest of the API. */
static void
sim_error_page(struct http_req *req, int status, void *ctx)
{
	const char *code;

	switch (status) {
	case 400:
		code = "bad_request";
		break;
	case 404:
		code = "not_found";
		break;
	case 405:
		code = "method_not_allowed";
		break;
	case 413:
		code = "too_large";
		break;
	default:
		code = "server_error";
		break;
	}
	sim_send_error(req, status, code);
}

static int
sim_serve_usage(FILE *out, int status)
{
	fprintf(out,
	        "usage: isso-sim [serve] [--listen ADDR] [--port N] [--identities FILE]\n"
	        "                [--sms-user U] [--sms-password P] [--log-level LEVEL]\n"
	        "                [--twfido-sp-id ID] [--twfido-key KEY]\n"
	        "                [--twfido-min-time-limit SECONDS]\n"
	        "                [--pki DIR] [--nhi-suspend-seconds SECONDS] [--state DIR]\n"
	        "  defaults: --listen 127.0.0.1 --port 8090 --identities %s\n"
	        "            --sms-user isso --sms-password isso-sim --log-level info\n"
	        "            --twfido-sp-id " SIM_TWFIDO_SP_ID " --twfido-key (the test key)\n"
	        "            --twfido-min-time-limit 30\n"
	        "            --pki $ISSO_SIM_PKI (none: the card services answer 503)\n"
	        "            --nhi-suspend-seconds 600\n"
	        "            --state $ISSO_SIM_STATE (none: a temporary folder, removed at exit;\n"
	        "            the TaipeiPass app keeps its device keys there)\n",
	        SIM_DEFAULT_IDENTITIES);
	return status;
}

static int
sim_parse_port(const char *s, int *port_r)
{
	char *end;
	long v;
	int ret = ISSO_ERR_INVALID;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == 0 && end != s && *end == '\0' && v >= 0 && v <= 65535) {
		*port_r = (int)v;
		ret = 0;
	}
	return ret;
}

static int
sim_parse_int(const char *s, long min, long max, int *value_r)
{
	char *end;
	long v;
	int ret = ISSO_ERR_INVALID;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == 0 && end != s && *end == '\0' && v >= min && v <= max) {
		*value_r = (int)v;
		ret = 0;
	}
	return ret;
}

/* Stops and releases the services that were initialised, in reverse. */
static void
sim_deinit(size_t n)
{
	while (n-- > 0) {
		if (sim_services[n]->deinit != NULL)
			sim_services[n]->deinit();
	}
}

static int
sim_serve(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"port", required_argument, NULL, 'p'},
	    {"identities", required_argument, NULL, 'i'},
	    {"sms-user", required_argument, NULL, 'u'},
	    {"sms-password", required_argument, NULL, 'w'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"twfido-sp-id", required_argument, NULL, 'S'},
	    {"twfido-key", required_argument, NULL, 'K'},
	    {"twfido-min-time-limit", required_argument, NULL, 'T'},
	    {"pki", required_argument, NULL, 'P'},
	    {"nhi-suspend-seconds", required_argument, NULL, 'N'},
	    {"state", required_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sim_settings set = {
	    .listen = "127.0.0.1",
	    .port = 8090,
	    .identities_path = SIM_DEFAULT_IDENTITIES,
	    .sms_user = "isso",
	    .sms_password = "isso-sim",
	    .twfido_sp_id = SIM_TWFIDO_SP_ID,
	    .twfido_key = SIM_TWFIDO_KEY,
	    .twfido_min_time_limit = 30,
	    .pki_dir = getenv("ISSO_SIM_PKI"),
	    .nhi_suspend_seconds = 600,
	    .state_dir = getenv("ISSO_SIM_STATE"),
	};
	struct http_server_settings hs = {
	    .max_body = SIM_MAX_BODY,
	    .error_page = sim_error_page,
	};
	struct http_server *srv = NULL;
	const char *error = NULL;
	char port[8];
	sigset_t sigs;
	size_t ready = 0;
	int level = LOG_INFO, c, sig, ret = 2;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			set.listen = optarg;
			break;
		case 'p':
			if (sim_parse_port(optarg, &set.port) != 0) {
				fprintf(stderr, "isso-sim: --port: 0 to 65535\n");
				goto out;
			}
			break;
		case 'i':
			set.identities_path = optarg;
			break;
		case 'u':
			set.sms_user = optarg;
			break;
		case 'w':
			set.sms_password = optarg;
			break;
		case 'S':
			set.twfido_sp_id = optarg;
			break;
		case 'K':
			set.twfido_key = optarg;
			break;
		case 'T':
			if (sim_parse_port(optarg, &set.twfido_min_time_limit) != 0 ||
			    set.twfido_min_time_limit < 1 || set.twfido_min_time_limit > 30) {
				fprintf(stderr, "isso-sim: --twfido-min-time-limit: 1 to 30\n");
				goto out;
			}
			break;
		case 'P':
			set.pki_dir = optarg;
			break;
		case 'D':
			set.state_dir = optarg;
			break;
		case 'N':
			if (sim_parse_int(optarg, 1, 86400, &set.nhi_suspend_seconds) != 0) {
				fprintf(stderr, "isso-sim: --nhi-suspend-seconds: 1 to 86400\n");
				goto out;
			}
			break;
		case 'L':
			level = log_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr,
				        "isso-sim: --log-level: debug, info, warn or error\n");
				goto out;
			}
			break;
		case 'h':
			ret = sim_serve_usage(stdout, 0);
			goto out;
		default:
			ret = sim_serve_usage(stderr, 2);
			goto out;
		}
	}
	if (optind < argc) {
		ret = sim_serve_usage(stderr, 2);
		goto out;
	}
	if (set.pki_dir != NULL && *set.pki_dir == '\0')
		set.pki_dir = NULL;
	if (set.state_dir != NULL && *set.state_dir == '\0')
		set.state_dir = NULL;
	log_init(2, (enum log_level)level);
	ret = 1;
	if (secret_init() != 0) {
		log_error("sim_init_failed", "error", "libsodium initialisation failed", NULL);
		goto out;
	}
	for (; sim_services[ready] != NULL; ready++) {
		const struct sim_service *svc = sim_services[ready];

		if (svc->init != NULL && svc->init(&set, &error) != 0) {
			log_error("sim_init_failed", "service", svc->name, "error", error, NULL);
			goto out;
		}
	}

	/* Worker threads inherit this mask: only sigwait() below sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	hs.listen = set.listen;
	hs.port = set.port;
	srv = http_server_new(&hs);
	http_route(srv, HTTP_GET, "/health", sim_health, NULL);
	for (size_t i = 0; sim_services[i] != NULL; i++)
		sim_services[i]->routes(srv);
	if (http_server_start(srv, &error) != 0) {
		log_error("sim_listen_failed", "listen", set.listen, "error", error, NULL);
		goto out;
	}
	snprintf(port, sizeof(port), "%d", http_server_port(srv));
	log_info("sim_listening", "listen", set.listen, "port", port, NULL);
	do {
		if (sigwait(&sigs, &sig) != 0)
			sig = SIGTERM;
	} while (sig == SIGHUP);
	log_info("sim_stopping", NULL);
	ret = 0;
out:
	http_server_free(srv);
	sim_deinit(ready);
	return ret;
}

static const struct sim_cmd sim_cmds[] = {
    {"serve", "serve [--port N] [--listen ADDR] [--identities FILE] …", sim_serve},
    {"phone", "phone open-link URL --network mobile|wifi [--from NUMBER]", sim_telecom_phone_cmd},
    {"phone", "phone sms-last|sms-list|sms-clear NUMBER [--sim URL]", sim_phone_cmd},
    {"phone", "phone mobilecert approve|deny TICKET [--as ID] | pending ID [--sim URL]",
     sim_phone_cmd},
    {"phone", "phone tpapp show QR | approve|deny QR --account A [--pick NN] [--org UBN]",
     sim_phone_cmd},
    {"phone", "phone tpapp open-link LINK --account A [--org UBN] [--password P]", sim_phone_cmd},
    {"phone", "phone tpapp enrol --account A --issod URL [--password P] [--name N]", sim_phone_cmd},
};

static int
sim_usage(void)
{
	fprintf(stderr, "usage:\n");
	for (size_t i = 0; i < ISSO_N_ELEMENTS(sim_cmds); i++)
		fprintf(stderr, "  isso-sim %s\n", sim_cmds[i].usage);
	return 2;
}

int
main(int argc, char **argv)
{
	int ret;

	if (argc < 2 || argv[1][0] == '-') {
		/* no subcommand: serve */
		ret = sim_serve(argc, argv);
		goto out;
	}
	for (size_t i = 0; i < ISSO_N_ELEMENTS(sim_cmds); i++) {
		if (strcmp(argv[1], sim_cmds[i].name) == 0) {
			ret = sim_cmds[i].run(argc - 1, argv + 1);
			goto out;
		}
	}
	ret = sim_usage();
out:
	return ret;
}
