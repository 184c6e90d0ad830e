/* isso-cardagent: the smart-card service that runs on a citizen's PC.
 *
 *   isso-cardagent --module PATH --trust ORIGIN [--trust ORIGIN …]
 *                  [--listen 127.0.0.1] [--port 61161]
 *                  [--nhi-port 7777] [--nhi-pin 000000]
 *                  [--nhi-tls-cert FILE --nhi-tls-key FILE]
 *                  [--nhi-service-cert FILE] [--log-level info]
 *                  [--general-signer]
 *
 * Each option may also come from ISSO_CARDAGENT_<NAME> (ISSO_CARDAGENT_TRUST:
 * origins separated by spaces or commas); a flag wins over the
 * environment. The module is loaded and initialised once. SIGTERM or
 * SIGINT stops the agent (exit 0). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cardagent/agent.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define AGENT_MAX_PEM (64 * 1024)

struct options {
	const char *listen, *port, *module, *nhi_port, *nhi_pin, *nhi_tls_cert, *nhi_tls_key;
	const char *nhi_service_cert, *log_level;
	bool general_signer;
	const char *trust[AGENT_MAX_TRUST];
	size_t n_trust;
	bool trust_overflow;
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: isso-cardagent --module PATH --trust ORIGIN [--trust ORIGIN ...]\n"
	    "                      [--listen 127.0.0.1] [--port 61161] [--nhi-port 7777]\n"
	    "                      [--nhi-pin 000000] [--nhi-tls-cert FILE --nhi-tls-key FILE]\n"
	    "                      [--nhi-service-cert FILE] [--log-level debug|info|warn|error]\n"
	    "                      [--general-signer]\n"
	    "Each option may also be set as ISSO_CARDAGENT_<NAME> (e.g. ISSO_CARDAGENT_TRUST,\n"
	    "several origins separated by spaces or commas); flags win.\n");
}

static const char *
env_or(const char *flag, const char *name)
{
	const char *v;

	if (flag != NULL)
		return flag;
	v = getenv(name);
	return v != NULL && *v != '\0' ? v : NULL;
}

static bool
parse_port(const char *s, bool zero_ok, int *port_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < (zero_ok ? 0 : 1) || v > 65535)
		return false;
	*port_r = (int)v;
	return true;
}

/* Reads a PEM file (at most 64 KiB) as a string. */
static char *
read_pem(const char *path, const char **error_r)
{
	FILE *f = fopen(path, "r");
	char *s;
	size_t n;

	if (f == NULL) {
		*error_r = "cannot open the TLS certificate or key file";
		return NULL;
	}
	s = xmalloc(AGENT_MAX_PEM + 1);
	n = fread(s, 1, AGENT_MAX_PEM + 1, f);
	fclose(f);
	if (n == 0 || n > AGENT_MAX_PEM) {
		free(s);
		*error_r = "the TLS certificate or key file is empty or too large";
		return NULL;
	}
	s[n] = '\0';
	return s;
}

static bool
add_trust(struct agent *a, const char *origin)
{
	char *o = agent_origin_normalise(origin);

	if (o == NULL) {
		fprintf(stderr, "isso-cardagent: --trust %s: not an origin (https://host[:port])\n",
		        origin);
		return false;
	}
	if (a->n_trust >= AGENT_MAX_TRUST) {
		fprintf(stderr, "isso-cardagent: at most %d trusted origins\n", AGENT_MAX_TRUST);
		free(o);
		return false;
	}
	if (agent_trusted(a, o))
		free(o);
	else
		a->trust[a->n_trust++] = o;
	return true;
}

/* Fills the agent from flags and environment; false after a message. */
static bool
configure(struct agent *a, const struct options *o, enum log_level *level_r)
{
	const char *s;
	int lvl;

	a->listen = env_or(o->listen, "ISSO_CARDAGENT_LISTEN");
	if (a->listen == NULL)
		a->listen = "127.0.0.1";
	a->port = 61161;
	if ((s = env_or(o->port, "ISSO_CARDAGENT_PORT")) != NULL &&
	    !parse_port(s, true, &a->port)) {
		fprintf(stderr, "isso-cardagent: bad --port %s\n", s);
		return false;
	}
	a->nhi_port = 7777;
	if ((s = env_or(o->nhi_port, "ISSO_CARDAGENT_NHI_PORT")) != NULL &&
	    !parse_port(s, true, &a->nhi_port)) {
		fprintf(stderr, "isso-cardagent: bad --nhi-port %s\n", s);
		return false;
	}
	a->module_path = env_or(o->module, "ISSO_CARDAGENT_MODULE");
	a->nhi_pin =
	    xstrdup((s = env_or(o->nhi_pin, "ISSO_CARDAGENT_NHI_PIN")) != NULL ? s : "000000");
	a->nhi_tls_cert = env_or(o->nhi_tls_cert, "ISSO_CARDAGENT_NHI_TLS_CERT");
	a->nhi_tls_key = env_or(o->nhi_tls_key, "ISSO_CARDAGENT_NHI_TLS_KEY");
	a->nhi_service_cert = env_or(o->nhi_service_cert, "ISSO_CARDAGENT_NHI_SERVICE_CERT");
	if ((a->nhi_tls_cert == NULL) != (a->nhi_tls_key == NULL)) {
		fprintf(stderr, "isso-cardagent: --nhi-tls-cert and --nhi-tls-key go together\n");
		return false;
	}
	s = env_or(o->log_level, "ISSO_CARDAGENT_LOG_LEVEL");
	if ((lvl = log_level_parse(s != NULL ? s : "info")) < 0) {
		fprintf(stderr, "isso-cardagent: bad --log-level %s\n", s);
		return false;
	}
	*level_r = (enum log_level)lvl;
	/* Off unless asked for: in its iSSO profile the agent signs only
	 * iSSO's login challenge (docs/cardagent.md). */
	a->general_signer = o->general_signer;
	if (!a->general_signer && (s = getenv("ISSO_CARDAGENT_GENERAL_SIGNER")) != NULL &&
	    *s != '\0') {
		if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) {
			a->general_signer = true;
		} else if (strcmp(s, "0") != 0 && strcmp(s, "false") != 0 && strcmp(s, "no") != 0) {
			fprintf(stderr, "isso-cardagent: bad ISSO_CARDAGENT_GENERAL_SIGNER %s\n",
			        s);
			return false;
		}
	}
	if (o->trust_overflow) {
		fprintf(stderr, "isso-cardagent: at most %d trusted origins\n", AGENT_MAX_TRUST);
		return false;
	}
	if (o->n_trust > 0) {
		for (size_t i = 0; i < o->n_trust; i++)
			if (!add_trust(a, o->trust[i]))
				return false;
	} else if ((s = getenv("ISSO_CARDAGENT_TRUST")) != NULL) {
		/* Origins separated by blanks or commas. */
		while (*s != '\0') {
			size_t n = strcspn(s, " ,\t\n");

			if (n > 0) {
				char *one = xstrndup(s, n);
				bool ok = add_trust(a, one);

				free(one);
				if (!ok)
					return false;
			}
			s += n;
			s += strspn(s, " ,\t\n");
		}
	}
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"port", required_argument, NULL, 'p'},
	    {"module", required_argument, NULL, 'm'},
	    {"trust", required_argument, NULL, 't'},
	    {"nhi-port", required_argument, NULL, 'n'},
	    {"nhi-pin", required_argument, NULL, 'P'},
	    {"nhi-tls-cert", required_argument, NULL, 'c'},
	    {"nhi-tls-key", required_argument, NULL, 'k'},
	    {"nhi-service-cert", required_argument, NULL, 's'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"general-signer", no_argument, NULL, 'G'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {0};
	struct agent a = {0};
	struct hipki_server *hipki = NULL;
	struct nhi_server *nhi = NULL;
	enum log_level level = LOG_INFO;
	const char *error = NULL;
	char *cert_pem = NULL, *key_pem = NULL;
	sigset_t sigs;
	int c, sig, ret = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'm':
			o.module = optarg;
			break;
		case 'n':
			o.nhi_port = optarg;
			break;
		case 'P':
			o.nhi_pin = optarg;
			break;
		case 'c':
			o.nhi_tls_cert = optarg;
			break;
		case 'k':
			o.nhi_tls_key = optarg;
			break;
		case 's':
			o.nhi_service_cert = optarg;
			break;
		case 'L':
			o.log_level = optarg;
			break;
		case 'G':
			o.general_signer = true;
			break;
		case 't':
			if (o.n_trust < AGENT_MAX_TRUST)
				o.trust[o.n_trust++] = optarg;
			else
				o.trust_overflow = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	agent_json_wipe();
	if (!configure(&a, &o, &level)) {
		xfree_secret(a.nhi_pin);
		return 2;
	}
	log_init(2, level);
	if (a.n_trust == 0)
		log_warn("no_trusted_sites", "message",
		         "no --trust given: every site will be refused", NULL);

	/* Signals are taken by sigwait() in this thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (a.module_path == NULL) {
		a.module_error = "no --module given";
		log_warn("no_module", "message", a.module_error, NULL);
	} else if (p11_load(a.module_path, &a.p11, &a.module_error) != 0) {
		log_error("module_load_failed", "module", a.module_path, "message", a.module_error,
		          NULL);
	}
	if (a.nhi_tls_cert != NULL) {
		if ((cert_pem = read_pem(a.nhi_tls_cert, &error)) == NULL ||
		    (key_pem = read_pem(a.nhi_tls_key, &error)) == NULL) {
			log_error("start_failed", "message", error, NULL);
			goto out;
		}
		a.nhi_tls_cert = cert_pem;
		a.nhi_tls_key = key_pem;
	}
	if (a.nhi_service_cert != NULL && nhi_service_load(&a, a.nhi_service_cert, &error) != 0) {
		log_error("start_failed", "file", a.nhi_service_cert, "message", error, NULL);
		goto out;
	}
	if (a.nhi_port > 0 && a.nhi_service_key == NULL)
		log_warn("no_nhi_service_cert", "message",
		         "no --nhi-service-cert: EnCrypt (the registration password) answers -6",
		         NULL);
	if (hipki_start(&a, &hipki, &error) != 0) {
		log_error("start_failed", "server", "hipki", "message", error, NULL);
		goto out;
	}
	if (a.nhi_port > 0 && nhi_start(&a, &nhi, &error) != 0) {
		log_error("start_failed", "server", "nhi", "message", error, NULL);
		goto out;
	}
	log_event(LOG_INFO, "listening",
	          json_pack("{s:s, s:i, s:i, s:b, s:b, s:I, s:s}", "address", a.listen, "port",
	                    a.port, "nhi_port", nhi != NULL ? a.nhi_port : 0, "nhi_tls",
	                    cert_pem != NULL, "module", a.p11 != NULL, "trusted",
	                    (json_int_t)a.n_trust, "profile",
	                    a.general_signer ? "general-signer" : "isso"));
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("sighup_ignored", "message", "the agent reloads nothing", NULL);
			continue;
		}
		break;
	}
	log_info("stopping", NULL);
	ret = 0;
out:
	nhi_stop(nhi);
	hipki_stop(hipki);
	p11_unload(a.p11);
	nhi_service_free(&a);
	for (size_t i = 0; i < a.n_trust; i++)
		free(a.trust[i]);
	xfree_secret(a.nhi_pin);
	if (key_pem != NULL)
		explicit_bzero(key_pem, strlen(key_pem));
	free(key_pem);
	free(cert_pem);
	return ret;
}
