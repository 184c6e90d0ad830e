/* issoctl: the operator's command line. Every command answers one JSON
 * document on stdout and exits 0, or prints {"error": …} and exits 1
 * (2 for usage errors). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/anchor.h"
#include "auth/app.h"
#include "auth/claims.h"
#include "auth/person.h"
#include "conn/outbound.h"
#include "jose/jose.h"
#include "lib/config.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "oidc/oidc.h"
#include "portal/agency-app.h"
#include "store/store.h"

#define MAX_URIS 16

/* Prints {"error": what + arg} and returns code. what may end in "%s",
 * which stands for arg. */

/* An operator's action: appended to the hash-chained audit log and said as
 * a security event ("admin_action") on the log, so that monitoring sees
 * it as it happens. data (stolen, may be NULL) never holds a secret. */
static void
admin_audit(struct isso_app *app, int64_t now, const char *action, json_t *data)
{
	json_t *fields = json_object();

	json_object_set_new(fields, "action", json_string(action));
	if (data != NULL)
		json_object_update(fields, data);
	log_event(LOG_WARN, "admin_action", fields);
	store_audit_append(app->store, now, action, data);
}

static int
fail(int code, const char *what, const char *arg)
{
	const char *mark = strstr(what, "%s");
	char msg[512];
	json_t *o;
	char *text;

	if (mark != NULL)
		snprintf(msg, sizeof(msg), "%.*s%s%s", (int)(mark - what), what,
		         arg != NULL ? arg : "", mark + 2);
	else
		snprintf(msg, sizeof(msg), "%s", what);
	o = json_pack("{s:s}", "error", msg);
	text = json_dumps(o, JSON_COMPACT);
	puts(text);
	free(text);
	json_decref(o);
	return code;
}

static int
emit(json_t *o)
{
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	puts(text);
	free(text);
	json_decref(o);
	return 0;
}

/* A space-separated list as a JSON array of its words. */
static json_t *
words_json(const char *list)
{
	json_t *a = json_array();

	for (const char *p = list != NULL ? list : ""; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0)
			json_array_append_new(a, json_stringn(p, n));
		p += n;
		while (*p == ' ')
			p++;
	}
	return a;
}

static json_t *
client_json(const struct store_client *c)
{
	static const char *const status[] = {"pending", "approved", "suspended"};
	json_t *o;

	o = json_pack("{s:s, s:s, s:s?, s:O, s:O, s:s?, s:s, s:b, s:s, s:s, s:s?, s:s, s:I}",
	              "client_id", c->client_id, "name", c->name, "purpose", c->purpose,
	              "redirect_uris", c->redirect_uris, "post_logout_redirect_uris",
	              c->post_logout_redirect_uris, "backchannel_logout_uri",
	              c->backchannel_logout_uri, "scope", c->scope, "public", c->public_client,
	              "id_token_alg", c->id_token_alg, "token_endpoint_auth_method", c->auth_method,
	              "jwks_uri", c->jwks_uri, "status",
	              c->status >= 0 && c->status <= 2 ? status[c->status] : "unknown",
	              "created_at", (json_int_t)c->created_at);
	json_object_set_new(
	    o, "grant_types",
	    words_json(c->grant_types != NULL ? c->grant_types : STORE_CLIENT_DEFAULT_GRANTS));
	if (c->settings != NULL)
		json_object_set(o, "settings", c->settings);
	return o;
}

/* Adds a --grant-type to the space-separated list in grants (size n);
 * false when it is unknown or repeated. */
static bool
grant_type_add(char *grants, size_t n, const char *g)
{
	static const char *const known[] = {"authorization_code", "refresh_token",
	                                    "client_credentials", OIDC_CIBA_GRANT, NULL};
	bool ok = false;

	for (const char *const *k = known; *k != NULL; k++)
		ok |= strcmp(*k, g) == 0;
	if (!ok || scope_has(grants, g))
		return false;
	if (grants[0] != '\0')
		strncat(grants, " ", n - strlen(grants) - 1);
	strncat(grants, g, n - strlen(grants) - 1);
	return true;
}

/* Redirect URIs: absolute, no fragment; https, or http on a loopback host
 * (development and native apps, RFC 8252 §7.3). */
static bool
uri_ok(const char *u)
{
	static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]", NULL};
	const char *host, *end;

	if (strlen(u) > 2000 || strchr(u, '#') != NULL)
		return false;
	for (const char *p = u; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	}
	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return false;
	end = host + strcspn(host, "/?");
	/* No user-info: "https://good@evil" names the host evil. */
	if (end == host || memchr(host, '@', (size_t)(end - host)) != NULL)
		return false;
	if (host == u + 8)
		return true;
	/* Plain http only to this machine (RFC 8252 §7.3): the host must be
	 * exactly a loopback name, optionally with a port. */
	for (const char *const *l = loopback; *l != NULL; l++) {
		size_t n = strlen(*l);
		if (strncmp(host, *l, n) == 0 &&
		    (host + n == end ||
		     (host[n] == ':' && host + n + 1 + strspn(host + n + 1, "0123456789") == end)))
			return true;
	}
	return false;
}

static int
client_add(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"purpose", required_argument, NULL, 'p'},
	    {"redirect-uri", required_argument, NULL, 'r'},
	    {"post-logout-redirect-uri", required_argument, NULL, 'l'},
	    {"backchannel-logout-uri", required_argument, NULL, 'b'},
	    {"scope", required_argument, NULL, 's'},
	    {"public", no_argument, NULL, 'P'},
	    {"id-token-alg", required_argument, NULL, 'a'},
	    {"auth-method", required_argument, NULL, 'm'},
	    {"jwks-uri", required_argument, NULL, 'j'},
	    {"jwks", required_argument, NULL, 'J'},
	    {"grant-type", required_argument, NULL, 'g'},
	    {"legacy-api", no_argument, NULL, 'L'},
	    {"require-par", no_argument, NULL, 'R'},
	    {"require-dpop", no_argument, NULL, 'D'},
	    {"optional-scope", required_argument, NULL, 'o'},
	    {"access-token-format", required_argument, NULL, 'F'},
	    {"access-token-audience", required_argument, NULL, 'A'},
	    {"events-uri", required_argument, NULL, 'E'},
	    {NULL, 0, NULL, 0},
	};
	struct store_client c;
	json_t *settings = json_object();
	bool legacy = false;
	char grants[160] = "";
	json_t *redirects = json_array(), *logouts = json_array(), *optional = json_array(), *out;
	char id[44], secret[44], hash[65];
	const char *why = NULL;
	int opt, ret = 2;

	memset(&c, 0, sizeof(c));
	c.id_token_alg = "ES256";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			c.name = optarg;
			break;
		case 'p':
			c.purpose = optarg;
			break;
		case 'r':
			if (!uri_ok(optarg)) {
				ret = fail(2, "bad redirect URI: %s", optarg);
				goto out;
			}
			json_array_append_new(redirects, json_string(optarg));
			break;
		case 'l':
			if (!uri_ok(optarg)) {
				ret = fail(2, "bad post-logout redirect URI: %s", optarg);
				goto out;
			}
			json_array_append_new(logouts, json_string(optarg));
			break;
		case 'b':
			if (!uri_ok(optarg)) {
				ret = fail(2, "bad back-channel logout URI: %s", optarg);
				goto out;
			}
			c.backchannel_logout_uri = optarg;
			break;
		case 's':
			c.scope = optarg;
			break;
		case 'P':
			c.public_client = true;
			break;
		case 'a':
			c.id_token_alg = optarg;
			break;
		case 'm':
			c.auth_method = optarg;
			break;
		case 'j':
			c.jwks_uri = optarg;
			break;
		case 'J':
			json_decref(c.jwks);
			c.jwks = json_loads(optarg, 0, NULL);
			if (jose_jwks_check(c.jwks, &why) < 0) {
				ret = fail(2, "--jwks refused: %s", why);
				goto out;
			}
			break;
		case 'R':
			json_object_set_new(settings, "require_par", json_true());
			break;
		case 'D':
			json_object_set_new(settings, "require_dpop", json_true());
			break;
		case 'g':
			if (!grant_type_add(grants, sizeof(grants), optarg)) {
				ret = fail(2,
				           "--grant-type is authorization_code, refresh_token, "
				           "client_credentials or " OIDC_CIBA_GRANT
				           ", each at most once: %s",
				           optarg);
				goto out;
			}
			break;
		case 'L':
			legacy = true;
			break;
		case 'o':
			json_array_append_new(optional, json_string(optarg));
			break;
		case 'F':
			json_object_set_new(settings, "access_token_format", json_string(optarg));
			break;
		case 'A':
			json_object_set_new(settings, "access_token_audience", json_string(optarg));
			break;
		case 'E':
			if (!uri_ok(optarg)) {
				ret = fail(2, "bad events URI: %s", optarg);
				goto out;
			}
			json_object_set_new(settings, "events_uri", json_string(optarg));
			break;
		default:
			ret = fail(2, "unknown option", NULL);
			goto out;
		}
	}
	if (oidc_client_settings_check(settings, &why) < 0) {
		ret = fail(2, "%s", why);
		goto out;
	}
	if (c.name == NULL || c.name[0] == '\0' || strlen(c.name) > 200) {
		ret = fail(2, "--name is required", NULL);
		goto out;
	}
	if (json_array_size(redirects) == 0 || json_array_size(redirects) > MAX_URIS) {
		ret = fail(2, "one to 16 --redirect-uri are required", NULL);
		goto out;
	}
	if (c.scope == NULL || !scope_has(c.scope, "openid") || strlen(c.scope) > 1000) {
		ret = fail(2, "--scope must include openid", NULL);
		goto out;
	}
	for (const char *p = c.scope; *p != '\0';) {
		size_t n = strcspn(p, " ");
		char w[64];
		if (n >= sizeof(w))
			n = sizeof(w) - 1;
		memcpy(w, p, n);
		w[n] = '\0';
		if (n > 0 && !scope_known(w)) {
			ret = fail(2, "unknown scope: %s", w);
			goto out;
		}
		p += strcspn(p, " ");
		while (*p == ' ')
			p++;
	}
	if (strcmp(c.id_token_alg, "ES256") != 0 && strcmp(c.id_token_alg, "RS256") != 0) {
		ret = fail(2, "--id-token-alg must be ES256 or RS256", NULL);
		goto out;
	}
	if (c.auth_method == NULL)
		c.auth_method = c.public_client ? "none" : "client_secret_basic";
	if (c.public_client && strcmp(c.auth_method, "none") != 0) {
		ret = fail(2, "public clients authenticate with none", NULL);
		goto out;
	}
	if (!c.public_client && strcmp(c.auth_method, "client_secret_basic") != 0 &&
	    strcmp(c.auth_method, "client_secret_post") != 0 &&
	    strcmp(c.auth_method, "private_key_jwt") != 0) {
		ret = fail(2, "unknown --auth-method %s", c.auth_method);
		goto out;
	}
	if (strcmp(c.auth_method, "private_key_jwt") == 0 && c.jwks == NULL &&
	    (c.jwks_uri == NULL || !uri_ok(c.jwks_uri))) {
		ret = fail(2, "private_key_jwt needs --jwks-uri URL or --jwks (inline JWK set)",
		           NULL);
		goto out;
	}
	c.grant_types = grants[0] != '\0' ? grants : STORE_CLIENT_DEFAULT_GRANTS;
	if (scope_has(c.grant_types, "refresh_token") &&
	    !scope_has(c.grant_types, "authorization_code")) {
		ret = fail(2, "--grant-type refresh_token needs authorization_code", NULL);
		goto out;
	}
	if (c.public_client && scope_has(c.grant_types, "client_credentials")) {
		ret = fail(2, "public clients cannot use client_credentials", NULL);
		goto out;
	}
	/* A counter authenticates itself: CIBA is for confidential clients. */
	if (c.public_client && scope_has(c.grant_types, OIDC_CIBA_GRANT)) {
		ret = fail(2, "public clients cannot use " OIDC_CIBA_GRANT, NULL);
		goto out;
	}
	if (scope_has(c.grant_types, OIDC_CIBA_GRANT))
		json_object_set_new(settings, "backchannel_token_delivery_mode",
		                    json_string("poll"));
	/* issod will fetch and post to these: the outbound policy must let
	 * them through (no loopback, private or metadata addresses unless
	 * [outbound] allow lists them; https unless the issuer is on
	 * loopback). */
	if (c.jwks_uri != NULL && outbound_check_url(c.jwks_uri, &why) < 0) {
		ret = fail(2, "--jwks-uri refused: %s", why);
		goto out;
	}
	if (c.backchannel_logout_uri != NULL &&
	    outbound_check_url(c.backchannel_logout_uri, &why) < 0) {
		ret = fail(2, "--backchannel-logout-uri refused: %s", why);
		goto out;
	}
	if (json_is_string(json_object_get(settings, "events_uri")) &&
	    outbound_check_url(json_string_value(json_object_get(settings, "events_uri")), &why) <
	        0) {
		ret = fail(2, "--events-uri refused: %s", why);
		goto out;
	}
	/* The legacy token call checks no redirect_uri and no PKCE: only a
	 * confidential client with a secret may be registered for it. */
	if (legacy && (c.public_client || (strcmp(c.auth_method, "client_secret_basic") != 0 &&
	                                   strcmp(c.auth_method, "client_secret_post") != 0))) {
		ret = fail(2, "--legacy-api needs a client secret (client_secret_basic or post)",
		           NULL);
		goto out;
	}
	if (legacy)
		json_object_set_new(settings, "legacy_api", json_true());
	/* Fields the citizen may untick on the consent page. */
	if (json_array_size(optional) > 0) {
		json_object_set(settings, "optional_scopes", optional);
		if (oidc_optional_scopes_check(settings, c.scope, &why) < 0) {
			ret = fail(2, "--optional-scope refused: %s", why);
			goto out;
		}
	}
	secret_token(16, id);
	c.client_id = id;
	c.redirect_uris = redirects;
	c.post_logout_redirect_uris = logouts;
	c.status = CLIENT_PENDING;
	c.created_at = app_now();
	c.settings = settings;
	if (strcmp(c.auth_method, "client_secret_basic") == 0 ||
	    strcmp(c.auth_method, "client_secret_post") == 0) {
		secret_token(32, secret);
		c.secret_hash = secret_sha256_hex(secret, strlen(secret), hash);
	}
	if (store_client_add(app->store, &c) < 0) {
		ret = fail(1, "cannot store the client", NULL);
		goto out;
	}
	admin_audit(app, app_now(), "client_added",
	            json_pack("{s:s, s:s}", "client_id", id, "name", c.name));
	out = client_json(&c);
	if (c.secret_hash != NULL)
		json_object_set_new(out, "client_secret", json_string(secret));
	ret = emit(out);
out:
	json_decref(redirects);
	json_decref(logouts);
	json_decref(optional);
	json_decref(c.jwks);
	json_decref(settings);
	return ret;
}

/* A yes/no option value; false when it is neither. */
static bool
yes_no(const char *v, bool *on_r)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
		*on_r = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
		*on_r = false;
	else
		return false;
	return true;
}

/* Stores settings (not stolen) as client id's, audits action with data
 * (stolen) and prints the client as it now is. */
static int
client_settings_save(struct isso_app *app, const char *id, json_t *settings, const char *action,
                     json_t *data)
{
	struct store_client *c = NULL;
	int ret;

	if (store_client_set_settings(app->store, id, settings) < 0) {
		json_decref(data);
		return fail(1, "cannot update the client", NULL);
	}
	admin_audit(app, app_now(), action, data);
	if (store_client_get(app->store, id, &c) < 0 || c == NULL)
		return fail(1, "no such client: %s", id);
	ret = emit(client_json(c));
	store_client_free(c);
	return ret;
}

/* issoctl client update ID [--require-par yes|no] [--require-dpop yes|no]
 * [--access-token-format opaque|jwt] [--access-token-audience AUD]
 * [--events-uri URL]: changes registered settings, keeping the others.
 * An empty audience or events URI removes it. */
static int
client_update(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"require-par", required_argument, NULL, 'R'},
	    {"require-dpop", required_argument, NULL, 'D'},
	    {"access-token-format", required_argument, NULL, 'F'},
	    {"access-token-audience", required_argument, NULL, 'A'},
	    {"events-uri", required_argument, NULL, 'E'},
	    {NULL, 0, NULL, 0},
	};
	static const char usage[] = "usage: issoctl client update ID [--require-par yes|no] "
	                            "[--require-dpop yes|no] [--access-token-format opaque|jwt] "
	                            "[--access-token-audience AUD] [--events-uri URL]";
	static const char *const removable[] = {"access_token_audience", "events_uri"};
	struct store_client *c = NULL;
	json_t *settings = NULL, *changed = json_object();
	/* A client id may begin with '-' (base64url): it is the first
	 * argument, whatever it looks like. */
	const char *id = argc > 1 ? argv[1] : NULL, *why = NULL;
	bool on;
	int opt, ret = 2;

	optind = 1;
	while (id != NULL && (opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'R':
		case 'D':
			if (!yes_no(optarg, &on)) {
				ret = fail(2, "--require-par and --require-dpop take yes or no",
				           NULL);
				goto out;
			}
			json_object_set_new(changed, opt == 'R' ? "require_par" : "require_dpop",
			                    json_boolean(on));
			break;
		case 'F':
			json_object_set_new(changed, "access_token_format", json_string(optarg));
			break;
		case 'A':
			json_object_set_new(changed, "access_token_audience", json_string(optarg));
			break;
		case 'E':
			json_object_set_new(changed, "events_uri", json_string(optarg));
			break;
		default:
			ret = fail(2, usage, NULL);
			goto out;
		}
	}
	if (id == NULL || optind != argc - 1 || json_object_size(changed) == 0) {
		ret = fail(2, usage, NULL);
		goto out;
	}
	if (store_client_get(app->store, id, &c) < 0 || c == NULL) {
		ret = fail(1, "no such client: %s", id);
		goto out;
	}
	settings = json_is_object(c->settings) ? json_deep_copy(c->settings) : json_object();
	json_object_update(settings, changed);
	/* Empty removes: the audience is the issuer again, no events sent. */
	for (size_t i = 0; i < ISSO_N_ELEMENTS(removable); i++) {
		json_t *v = json_object_get(settings, removable[i]);
		if (json_is_string(v) && json_string_value(v)[0] == '\0')
			json_object_del(settings, removable[i]);
	}
	if (oidc_client_settings_check(settings, &why) < 0) {
		ret = fail(2, "%s", why);
		goto out;
	}
	/* where the events go is checked as at client add */
	if (json_is_string(json_object_get(settings, "events_uri")) &&
	    outbound_check_url(json_string_value(json_object_get(settings, "events_uri")), &why) <
	        0) {
		ret = fail(2, "--events-uri refused: %s", why);
		goto out;
	}
	ret = client_settings_save(app, id, settings, "client_updated",
	                           json_pack("{s:s, s:O}", "client_id", id, "settings", changed));
out:
	store_client_free(c);
	json_decref(settings);
	json_decref(changed);
	return ret;
}

/* client approve ID: approves a client (one registered with client add);
 * a suspended one that was approved is resumed (the city lifts any
 * suspension, recorded in its application's history); one suspended
 * before it was ever approved is refused: it needs a review (issoctl
 * application approve). client suspend ID [--reason TEXT]: the city
 * suspends it, or takes over a suspension the agency made; the agency
 * then cannot resume it from its page. Exit 1 when the client changed
 * meanwhile (nothing changed). */
static int
client_status(struct isso_app *app, int argc, char **argv, int status)
{
	static const struct option opts[] = {
	    {"reason", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	const char *id = argc > 1 ? argv[1] : NULL, *reason = NULL, *why = NULL;
	const char *event = status == CLIENT_APPROVED ? "client_approved" : "client_suspended";
	struct store_client *c = NULL;
	bool found = false;
	int opt, ret;

	/* A client id may begin with '-' (base64url): it is the first
	 * argument, whatever it looks like. */
	if (id == NULL)
		return fail(2, "a client id is required", NULL);
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (opt != 'r' || status != CLIENT_SUSPENDED)
			return fail(2, "unknown option", NULL);
		reason = optarg;
	}
	if (optind != argc - 1)
		return fail(2, "one client id, then the options", NULL);
	if (store_client_get(app->store, id, &c) < 0 || c == NULL)
		return fail(1, "no such client: %s", id);
	if (c->status == status && (status != CLIENT_SUSPENDED || !agency_app_resumable(c) ||
	                            strcmp(agency_app_suspended_by(c), AGENCY_BY_CITY) == 0)) {
		/* Nothing to do, and nothing audited; a reason would be lost. */
		if (reason != NULL) {
			store_client_free(c);
			return fail(1, "already suspended by the city: %s", id);
		}
		ret = emit(client_json(c));
		store_client_free(c);
		return ret;
	}
	if (status == CLIENT_SUSPENDED && c->status != CLIENT_PENDING) {
		ret = agency_app_suspend(app, id, AGENCY_BY_CITY, reason, "issoctl", &why);
		if (ret < 0)
			goto failed;
		log_warn("admin_action", "action", event, "client_id", id, NULL);
	} else if (status == CLIENT_APPROVED && c->status == CLIENT_SUSPENDED) {
		ret = agency_app_resume(app, id, AGENCY_BY_CITY, "issoctl", &why);
		if (ret < 0)
			goto failed;
		log_warn("admin_action", "action", "client_resumed", "client_id", id, NULL);
	} else {
		/* Pending: approved as registered, or suspended before any
		 * approval (which names no one, reads as the city's, and is
		 * lifted only by a review). Only while it is as read. */
		if (reason != NULL) {
			store_client_free(c);
			return fail(2, "--reason is for an approved client", NULL);
		}
		if (status == CLIENT_APPROVED && json_is_object(agency_app_of(c)) &&
		    !agency_app_decidable(c)) {
			store_client_free(c);
			return fail(1, "the application was refused: the agency edits it first",
			            NULL);
		}
		if (store_client_set_state(app->store, c, status, NULL, NULL, c->settings, &found) <
		    0) {
			store_client_free(c);
			return fail(1, "cannot update the client", NULL);
		}
		if (!found) {
			store_client_free(c);
			return fail(1, "the client changed meanwhile: nothing changed", NULL);
		}
		admin_audit(app, app_now(), event, json_pack("{s:s}", "client_id", id));
	}
	store_client_free(c);
	c = NULL;
	store_client_get(app->store, id, &c);
	ret = emit(client_json(c));
	store_client_free(c);
	return ret;
failed:
	store_client_free(c);
	return fail(ret == ISSO_ERR_INVALID ? 2 : 1,
	            status == CLIENT_SUSPENDED ? "cannot suspend: %s" : "cannot resume: %s",
	            why != NULL ? why : "the store failed");
}

/* Registers an existing client for the legacy API (docs/legacy-api.md)
 * or withdraws it: the "legacy_api" member of its settings. */
static int
client_legacy_api(struct isso_app *app, const char *id, const char *onoff)
{
	struct store_client *c = NULL;
	json_t *settings = NULL;
	bool on;
	int ret;

	if (strcmp(onoff, "on") != 0 && strcmp(onoff, "off") != 0)
		return fail(2, "legacy-api takes on or off", NULL);
	on = strcmp(onoff, "on") == 0;
	if (store_client_get(app->store, id, &c) < 0 || c == NULL)
		return fail(1, "no such client: %s", id);
	if (on && (c->public_client || c->secret_hash == NULL)) {
		store_client_free(c);
		return fail(2, "--legacy-api needs a client secret (client_secret_basic or post)",
		            NULL);
	}
	settings = json_deep_copy(c->settings);
	store_client_free(c);
	c = NULL;
	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	if (on)
		json_object_set_new(settings, "legacy_api", json_true());
	else
		json_object_del(settings, "legacy_api");
	ret = client_settings_save(app, id, settings,
	                           on ? "client_legacy_api_on" : "client_legacy_api_off",
	                           json_pack("{s:s}", "client_id", id));
	json_decref(settings);
	return ret;
}

static int
list_one(const struct store_client *c, void *ctx)
{
	json_array_append_new(ctx, client_json(c));
	return 0;
}

/* client set-optional-scopes ID [SCOPE ...]: replaces the fields the
 * citizen may untick (none given: every field is required again). */
static int
client_set_optional(struct isso_app *app, const char *id, int n, char **scopes)
{
	struct store_client *c = NULL;
	json_t *settings = NULL, *list = json_array();
	const char *why = NULL;
	int ret;

	if (store_client_get(app->store, id, &c) < 0 || c == NULL) {
		ret = fail(1, "no such client: %s", id);
		goto out;
	}
	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_string(scopes[i]));
	settings = json_deep_copy(c->settings);
	if (settings == NULL)
		settings = json_object();
	json_object_set(settings, "optional_scopes", list);
	if (oidc_optional_scopes_check(settings, c->scope, &why) < 0) {
		ret = fail(2, "optional scopes refused: %s", why);
		goto out;
	}
	ret =
	    client_settings_save(app, id, settings, "client_optional_scopes",
	                         json_pack("{s:s, s:O}", "client_id", id, "optional_scopes", list));
out:
	store_client_free(c);
	json_decref(settings);
	json_decref(list);
	return ret;
}

static int
client_cmd(struct isso_app *app, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	struct store_client *c = NULL;
	int ret;

	if (strcmp(sub, "add") == 0)
		return client_add(app, argc - 1, argv + 1);
	if (strcmp(sub, "update") == 0)
		return client_update(app, argc - 1, argv + 1);
	if (strcmp(sub, "approve") == 0)
		return client_status(app, argc - 1, argv + 1, CLIENT_APPROVED);
	if (strcmp(sub, "suspend") == 0)
		return client_status(app, argc - 1, argv + 1, CLIENT_SUSPENDED);
	if (strcmp(sub, "list") == 0) {
		json_t *a = json_array();
		if (store_client_list(app->store, list_one, a) < 0) {
			json_decref(a);
			return fail(1, "cannot list clients", NULL);
		}
		return emit(a);
	}
	if (strcmp(sub, "show") == 0 && argc > 2) {
		if (store_client_get(app->store, argv[2], &c) < 0 || c == NULL)
			return fail(1, "no such client: %s", argv[2]);
		ret = emit(client_json(c));
		store_client_free(c);
		return ret;
	}
	if (strcmp(sub, "set-optional-scopes") == 0 && argc > 2)
		return client_set_optional(app, argv[2], argc - 3, argv + 3);
	if (strcmp(sub, "rotate-secret") == 0 && argc > 2) {
		char secret[44], hash[65];
		if (store_client_get(app->store, argv[2], &c) < 0 || c == NULL)
			return fail(1, "no such client: %s", argv[2]);
		if (c->secret_hash == NULL) {
			store_client_free(c);
			return fail(1, "this client has no secret", NULL);
		}
		store_client_free(c);
		secret_token(32, secret);
		if (store_client_set_secret(app->store, argv[2],
		                            secret_sha256_hex(secret, strlen(secret), hash)) < 0)
			return fail(1, "cannot update the client", NULL);
		admin_audit(app, app_now(), "client_secret_rotated",
		            json_pack("{s:s}", "client_id", argv[2]));
		return emit(json_pack("{s:s, s:s}", "client_id", argv[2], "client_secret", secret));
	}
	if (strcmp(sub, "legacy-api") == 0 && argc > 3)
		return client_legacy_api(app, argv[2], argv[3]);
	if (strcmp(sub, "delete") == 0 && argc > 2) {
		bool found = false;
		if (agency_app_delete(app, argv[2], "issoctl", &found) < 0)
			return fail(1, "cannot delete the client", NULL);
		if (!found)
			return fail(1, "no such client: %s", argv[2]);
		log_warn("admin_action", "action", "client_deleted", "client_id", argv[2], NULL);
		return emit(json_pack("{s:s, s:b}", "client_id", argv[2], "deleted", 1));
	}
	return fail(2,
	            "usage: issoctl client add|update|list|show|approve|suspend|rotate-secret|"
	            "set-optional-scopes|delete|legacy-api ID on|off",
	            NULL);
}

static int
user_add(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"account", required_argument, NULL, 'a'},
	    {"password", required_argument, NULL, 'p'},
	    {"phone", required_argument, NULL, 'P'},
	    {"email", required_argument, NULL, 'e'},
	    {"name", required_argument, NULL, 'n'},
	    {"id-number", required_argument, NULL, 'i'},
	    {"birthdate", required_argument, NULL, 'b'},
	    {"address", required_argument, NULL, 'A'},
	    {"gold", no_argument, NULL, 'g'},
	    {"phone-verified", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct member_new m;
	const char *error_key = NULL;
	char uuid[37];
	int opt, ret;

	memset(&m, 0, sizeof(m));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			m.account = optarg;
			break;
		case 'p':
			m.password = optarg;
			break;
		case 'P':
			m.phone = optarg;
			break;
		case 'e':
			m.email = optarg;
			break;
		case 'n':
			m.name = optarg;
			break;
		case 'i':
			m.id_number = optarg;
			break;
		case 'b':
			m.birthdate = optarg;
			break;
		case 'A':
			m.address = optarg;
			break;
		case 'g':
			m.gold = true;
			break;
		case 'V':
			m.phone_verified = true;
			break;
		default:
			return fail(2, "unknown option", NULL);
		}
	}
	ret = member_create(app, &m, uuid, &error_key);
	if (ret < 0)
		return fail(1, "cannot add the member: %s",
		            error_key != NULL ? error_key : "store");
	admin_audit(app, app_now(), "member_added", json_pack("{s:s}", "uuid", uuid));
	return emit(json_pack("{s:s, s:s}", "uuid", uuid, "account", m.account));
}

static json_t *
org_json(const struct store_org *o)
{
	return json_pack("{s:s, s:s, s:I}", "ubn", o->ubn, "name", o->name, "created_at",
	                 (json_int_t)o->created_at);
}

/* issoctl org add --ubn U --name N */
static int
org_add(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ubn", required_argument, NULL, 'u'},
	    {"name", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	struct store_org org = {0};
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			org.ubn = optarg;
			break;
		case 'n':
			org.name = optarg;
			break;
		default:
			return fail(2, "unknown option", NULL);
		}
	}
	if (org.ubn == NULL || org.name == NULL || org.name[0] == '\0')
		return fail(2, "usage: issoctl org add --ubn UBN --name NAME", NULL);
	if (!idnum_is_ubn(org.ubn))
		return fail(1, "not a valid 統一編號 (UBN): %s", org.ubn);
	if (strlen(org.name) > 200)
		return fail(1, "the name is too long", NULL);
	org.created_at = app_now();
	ret = store_org_add(app->store, &org);
	if (ret == ISSO_ERR_CONFLICT)
		return fail(1, "organisation already registered: %s", org.ubn);
	if (ret < 0)
		return fail(1, "cannot add the organisation", NULL);
	admin_audit(app, org.created_at, "org_added", json_pack("{s:s}", "ubn", org.ubn));
	return emit(org_json(&org));
}

/* issoctl org member add --ubn U --account A [--role R] */
static int
org_member_add(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ubn", required_argument, NULL, 'u'},
	    {"account", required_argument, NULL, 'a'},
	    {"role", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	const char *ubn = NULL, *account = NULL, *role = NULL;
	struct store_org *org = NULL;
	struct store_member *m = NULL;
	char lower[64];
	json_t *out = NULL;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			ubn = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		default:
			return fail(2, "unknown option", NULL);
		}
	}
	if (ubn == NULL || account == NULL)
		return fail(
		    2, "usage: issoctl org member add --ubn UBN --account ACCOUNT [--role ROLE]",
		    NULL);
	if (strlen(account) >= sizeof(lower))
		return fail(1, "no such member: %s", account);
	if (role != NULL && strlen(role) > 100)
		return fail(1, "the role is too long", NULL);
	for (size_t i = 0; i <= strlen(account); i++)
		lower[i] = (account[i] >= 'A' && account[i] <= 'Z') ? (char)(account[i] - 'A' + 'a')
		                                                    : account[i];
	if (store_org_get(app->store, ubn, &org) < 0 || org == NULL) {
		ret = fail(1, "no such organisation: %s", ubn);
		goto out;
	}
	if (store_member_find(app->store, lower, NULL, NULL, &m) < 0 || m == NULL) {
		ret = fail(1, "no such member: %s", account);
		goto out;
	}
	ret = store_org_member_add(app->store, ubn, m->uuid, role, app_now());
	if (ret == ISSO_ERR_CONFLICT) {
		ret = fail(1, "already a member of the organisation: %s", account);
		goto out;
	}
	if (ret < 0) {
		ret = fail(1, "cannot add the member", NULL);
		goto out;
	}
	admin_audit(app, app_now(), "org_member_added",
	            json_pack("{s:s, s:s}", "ubn", ubn, "uuid", m->uuid));
	out = json_pack("{s:s, s:s, s:s, s:s}", "ubn", ubn, "uuid", m->uuid, "account", m->account,
	                "role", role != NULL ? role : "");
	ret = emit(out);
out:
	store_org_free(org);
	store_member_free(m);
	return ret;
}

/* ---- applications (申請介接): pending clients and the decisions ---- */

static json_t *
application_json(const struct store_client *c)
{
	json_t *o = client_json(c);

	json_object_set_new(o, "application_state", json_string(agency_app_state(c)));
	return o;
}

static int
pending_one(const struct store_client *c, void *ctx)
{
	if (c->status == CLIENT_PENDING)
		json_array_append_new(ctx, application_json(c));
	return 0;
}

/* issoctl application list|show ID|approve ID [--drop SCOPE]…|refuse ID --reason R */
static int
application_cmd(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"drop", required_argument, NULL, 'd'},
	    {"reason", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	const char *sub = argc > 1 ? argv[1] : "", *id = argc > 2 ? argv[2] : NULL;
	const char *reason = NULL, *why = NULL;
	struct store_client *c = NULL;
	char drop[512] = "";
	int opt, ret;

	if (strcmp(sub, "list") == 0) {
		json_t *a = json_array();
		if (store_client_list(app->store, pending_one, a) < 0) {
			json_decref(a);
			return fail(1, "cannot list applications", NULL);
		}
		return emit(a);
	}
	if (id == NULL ||
	    (strcmp(sub, "show") != 0 && strcmp(sub, "approve") != 0 && strcmp(sub, "refuse") != 0))
		return fail(2,
		            "usage: issoctl application list|show ID|approve ID [--drop SCOPE]…|"
		            "refuse ID --reason TEXT",
		            NULL);
	optind = 1;
	while ((opt = getopt_long(argc - 2, argv + 2, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!scope_known(optarg) || strcmp(optarg, "openid") == 0 ||
			    strlen(drop) + strlen(optarg) + 2 > sizeof(drop))
				return fail(2, "--drop takes a field's scope: %s", optarg);
			if (drop[0] != '\0')
				strncat(drop, " ", sizeof(drop) - strlen(drop) - 1);
			strncat(drop, optarg, sizeof(drop) - strlen(drop) - 1);
			break;
		case 'r':
			reason = optarg;
			break;
		default:
			return fail(2, "unknown option", NULL);
		}
	}
	if (strcmp(sub, "approve") == 0) {
		ret = agency_app_approve(app, id, drop, "issoctl", &why);
		if (ret < 0)
			return fail(1, "cannot approve: %s",
			            why != NULL ? why : "the store failed");
		log_warn("admin_action", "action", "client_approved", "client_id", id, NULL);
	} else if (strcmp(sub, "refuse") == 0) {
		ret = agency_app_refuse(app, id, reason, "issoctl", &why);
		if (ret < 0)
			return fail(ret == ISSO_ERR_INVALID ? 2 : 1, "cannot refuse: %s",
			            why != NULL ? why : "the store failed");
		log_warn("admin_action", "action", "client_refused", "client_id", id, NULL);
	}
	if (store_client_get(app->store, id, &c) < 0 || c == NULL)
		return fail(1, "no such application: %s", id);
	/* The secret is never printed here: the agency takes it once from
	 * its own page. */
	ret = emit(application_json(c));
	store_client_free(c);
	return ret;
}

/* The member by account name (any case), NULL when unknown. */
static struct store_member *
member_by_account(struct isso_app *app, const char *account)
{
	struct store_member *m = NULL;
	char lower[64];

	if (account == NULL || strlen(account) >= sizeof(lower))
		return NULL;
	for (size_t i = 0; i <= strlen(account); i++)
		lower[i] = (account[i] >= 'A' && account[i] <= 'Z') ? (char)(account[i] - 'A' + 'a')
		                                                    : account[i];
	if (store_member_find(app->store, lower, NULL, NULL, &m) < 0)
		return NULL;
	return m;
}

/* issoctl admin grant|revoke --account A: the city administrator role. */
static int
admin_cmd(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"account", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char *sub = argc > 1 ? argv[1] : "", *account = NULL;
	struct store_member *m = NULL;
	bool grant = strcmp(sub, "grant") == 0, found = false;
	int opt, ret;

	if (!grant && strcmp(sub, "revoke") != 0)
		return fail(2, "usage: issoctl admin grant|revoke --account ACCOUNT", NULL);
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (opt != 'a')
			return fail(2, "unknown option", NULL);
		account = optarg;
	}
	if (account == NULL)
		return fail(2, "usage: issoctl admin grant|revoke --account ACCOUNT", NULL);
	m = member_by_account(app, account);
	if (m == NULL)
		return fail(1, "no such member: %s", account);
	if (grant) {
		ret = store_role_grant(app->store, m->uuid, STORE_ROLE_CITY_ADMIN, app_now());
		found = ret == 0;
		if (ret == ISSO_ERR_CONFLICT)
			ret = 0;
	} else {
		ret = store_role_revoke(app->store, m->uuid, STORE_ROLE_CITY_ADMIN, &found);
	}
	if (ret < 0) {
		store_member_free(m);
		return fail(1, "cannot change the role", NULL);
	}
	if (found)
		admin_audit(
		    app, app_now(), grant ? "admin_granted" : "admin_revoked",
		    json_pack("{s:s, s:s}", "uuid", m->uuid, "role", STORE_ROLE_CITY_ADMIN));
	ret = emit(json_pack("{s:s, s:s, s:s, s:b}", "account", m->account, "uuid", m->uuid, "role",
	                     STORE_ROLE_CITY_ADMIN, "held", grant));
	store_member_free(m);
	return ret;
}

struct owned_ctx {
	const char *ubn;
	int n;
};

static int
owned_one(const struct store_client *c, void *ctx)
{
	struct owned_ctx *x = ctx;

	if (agency_app_owned_by(c, x->ubn))
		x->n++;
	return 0;
}

/* issoctl org remove UBN: refused while it owns services. */
static int
org_remove(struct isso_app *app, const char *ubn)
{
	struct owned_ctx x = {ubn, 0};
	bool found = false;

	if (store_client_list(app->store, owned_one, &x) < 0)
		return fail(1, "cannot list clients", NULL);
	if (x.n > 0)
		return fail(1, "the organisation still has services; delete them first: %s", ubn);
	if (store_org_remove(app->store, ubn, &found) < 0)
		return fail(1, "cannot remove the organisation", NULL);
	if (!found)
		return fail(1, "no such organisation: %s", ubn);
	admin_audit(app, app_now(), "org_removed", json_pack("{s:s}", "ubn", ubn));
	return emit(json_pack("{s:s, s:b}", "ubn", ubn, "removed", 1));
}

/* issoctl org member remove UBN --account A */
static int
org_member_remove(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"account", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char *ubn = argc > 1 ? argv[1] : NULL, *account = NULL;
	struct store_member *m;
	bool found = false;
	int opt, ret;

	optind = 1;
	while (ubn != NULL && (opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (opt != 'a')
			return fail(2, "unknown option", NULL);
		account = optarg;
	}
	if (ubn == NULL || account == NULL)
		return fail(2, "usage: issoctl org member remove UBN --account ACCOUNT", NULL);
	m = member_by_account(app, account);
	if (m == NULL)
		return fail(1, "no such member: %s", account);
	ret = store_org_member_remove(app->store, ubn, m->uuid, &found);
	if (ret < 0) {
		store_member_free(m);
		return fail(1, "cannot remove the member", NULL);
	}
	if (!found) {
		store_member_free(m);
		return fail(1, "not a member of the organisation: %s", account);
	}
	admin_audit(app, app_now(), "org_member_removed",
	            json_pack("{s:s, s:s}", "ubn", ubn, "uuid", m->uuid));
	ret = emit(json_pack("{s:s, s:s, s:b}", "ubn", ubn, "account", m->account, "removed", 1));
	store_member_free(m);
	return ret;
}

static int
org_cmd(struct isso_app *app, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	struct store_org *org = NULL;
	int ret;

	if (strcmp(sub, "add") == 0)
		return org_add(app, argc - 1, argv + 1);
	if (strcmp(sub, "member") == 0 && argc > 2 && strcmp(argv[2], "add") == 0)
		return org_member_add(app, argc - 2, argv + 2);
	if (strcmp(sub, "member") == 0 && argc > 2 && strcmp(argv[2], "remove") == 0)
		return org_member_remove(app, argc - 2, argv + 2);
	if (strcmp(sub, "remove") == 0 && argc > 2)
		return org_remove(app, argv[2]);
	if (strcmp(sub, "list") == 0) {
		struct store_org *list = NULL;
		size_t n = 0;
		json_t *a;
		if (store_org_list(app->store, STORE_ORG_LIST_MAX, &list, &n) < 0)
			return fail(1, "cannot list organisations", NULL);
		a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, org_json(&list[i]));
		store_org_list_free(list, n);
		return emit(a);
	}
	if (strcmp(sub, "show") == 0 && argc > 2) {
		if (store_org_get(app->store, argv[2], &org) < 0 || org == NULL)
			return fail(1, "no such organisation: %s", argv[2]);
		ret = emit(org_json(org));
		store_org_free(org);
		return ret;
	}
	return fail(2, "usage: issoctl org add|list|show UBN|remove UBN|member add|member remove",
	            NULL);
}

static int
key_one(const struct store_key *k, void *ctx)
{
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:b, s:I}", "kid", k->kid, "alg", k->alg,
	                                     "active", k->active, "created_at",
	                                     (json_int_t)k->created_at));
	return 0;
}

static int
audit_one(int64_t seq, int64_t ts, const char *event, const char *data, const char *hash, void *ctx)
{
	json_t *o = json_pack("{s:I, s:I, s:s, s:s}", "seq", (json_int_t)seq, "ts", (json_int_t)ts,
	                      "event", event, "hash", hash);
	json_t *d = json_loads(data != NULL ? data : "null", JSON_DECODE_ANY, NULL);

	json_object_set_new(o, "data", d != NULL ? d : json_null());
	json_array_append_new(ctx, o);
	return 0;
}

#define CHECKPOINTS_FILE_MAX (64 * 1024 * 1024)

/* A checkpoints file as `audit checkpoints export` wrote it, or NULL with
 * the reason in *why_r. */
static json_t *
checkpoints_load(const char *path, const char **why_r)
{
	FILE *f = fopen(path, "rb");
	json_t *list = NULL;
	json_error_t jerr;
	long size;

	*why_r = "cannot read the checkpoints file";
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= CHECKPOINTS_FILE_MAX &&
	    fseek(f, 0, SEEK_SET) == 0) {
		list = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
		*why_r = "the checkpoints file is not a JSON array";
		if (list != NULL && !json_is_array(list)) {
			json_decref(list);
			list = NULL;
		}
	}
	fclose(f);
	return list;
}

/* audit verify [--checkpoints FILE] | export | checkpoint | checkpoints export */
static int
audit_cmd(struct isso_app *app, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	json_t *list = NULL, *report = NULL;
	const char *why = NULL;
	bool ok = false;
	int ret;

	if (strcmp(sub, "verify") == 0 &&
	    (argc == 2 || (argc == 4 && strcmp(argv[2], "--checkpoints") == 0))) {
		if (argc == 4 && (list = checkpoints_load(argv[3], &why)) == NULL)
			return fail(2, "%s", why);
		ret = anchor_verify(app, list, &report, &ok);
		json_decref(list);
		if (ret < 0)
			return fail(1, "cannot read the audit log", NULL);
		emit(report);
		return ok ? 0 : 1;
	}
	if (strcmp(sub, "export") == 0 && argc == 2) {
		list = json_array();
		if (store_audit_list(app->store, 0, audit_one, list) < 0) {
			json_decref(list);
			return fail(1, "cannot read the audit log", NULL);
		}
		return emit(list);
	}
	if (strcmp(sub, "checkpoint") == 0 && argc == 2) {
		if (anchor_checkpoint(app, app_now(), NULL, &ok) < 0)
			return fail(1, "cannot write a checkpoint", NULL);
		return emit(json_pack("{s:b}", "written", ok));
	}
	if (strcmp(sub, "checkpoints") == 0 && argc == 3 && strcmp(argv[2], "export") == 0) {
		if (anchor_export(app, &list) < 0)
			return fail(1, "cannot read the audit log", NULL);
		return emit(list);
	}
	return fail(2,
	            "usage: issoctl audit verify [--checkpoints FILE] | export | checkpoint | "
	            "checkpoints export",
	            NULL);
}

/* ---- issoctl member device list|revoke: the TaipeiPass app's keys ---- */

static json_t *
device_json(const struct store_device *d)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:b, s:I}", "device", d->id, "name",
	                 d->name != NULL ? d->name : "", "created_at", (json_int_t)d->created_at,
	                 "last_used_at", (json_int_t)d->last_used_at, "revoked", d->revoked_at != 0,
	                 "revoked_at", (json_int_t)d->revoked_at);
}

/* issoctl member device list --account A
 * issoctl member device revoke --account A (--device ID | --all) */
static int
member_device_cmd(struct isso_app *app, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"account", required_argument, NULL, 'a'},
	    {"device", required_argument, NULL, 'd'},
	    {"all", no_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	static const char usage[] = "usage: issoctl member device list --account ACCOUNT | "
	                            "revoke --account ACCOUNT (--device ID | --all)";
	const char *sub = argc > 1 ? argv[1] : "", *account = NULL, *device = NULL;
	struct store_member *m = NULL;
	struct store_device *list = NULL;
	size_t n = 0;
	bool all = false, list_cmd;
	char lower[64];
	json_t *out;
	int opt, ret, count = 0;

	list_cmd = strcmp(sub, "list") == 0;
	if (!list_cmd && strcmp(sub, "revoke") != 0)
		return fail(2, usage, NULL);
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			account = optarg;
			break;
		case 'd':
			device = optarg;
			break;
		case 'A':
			all = true;
			break;
		default:
			return fail(2, "unknown option", NULL);
		}
	}
	if (account == NULL || (list_cmd && (device != NULL || all)) ||
	    (!list_cmd && (device != NULL) == all))
		return fail(2, usage, NULL);
	if (strlen(account) >= sizeof(lower))
		return fail(1, "no such member: %s", account);
	for (size_t i = 0; i <= strlen(account); i++)
		lower[i] = (account[i] >= 'A' && account[i] <= 'Z') ? (char)(account[i] - 'A' + 'a')
		                                                    : account[i];
	if (store_member_find(app->store, lower, NULL, NULL, &m) < 0 || m == NULL)
		return fail(1, "no such member: %s", account);
	if (list_cmd) {
		if (store_device_list(app->store, m->uuid, 1000, &list, &n) < 0) {
			ret = fail(1, "cannot read the devices", NULL);
			goto out;
		}
		out = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(out, device_json(&list[i]));
		ret = emit(out);
		goto out;
	}
	if (store_device_revoke(app->store, m->uuid, device, app_now(), &count) < 0) {
		ret = fail(1, "cannot revoke", NULL);
		goto out;
	}
	if (device != NULL && count == 0) {
		ret = fail(1, "no such device in use for %s", account);
		goto out;
	}
	admin_audit(app, app_now(), "tpapp_device_revoked",
	            json_pack("{s:s, s:s, s:i}", "uuid", m->uuid, "device",
	                      device != NULL ? device : "*", "count", count));
	ret = emit(json_pack("{s:s, s:i}", "account", m->account, "revoked", count));
out:
	store_device_list_free(list, n);
	store_member_free(m);
	return ret;
}

int
main(int argc, char **argv)
{
	struct isso_config cfg;
	struct isso_app app;
	const char *error = NULL, *cmd;
	int ret = 1;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fputs("usage: issoctl init | client … | application list|show|approve|refuse … | "
		      "admin grant|revoke --account A | user add … | "
		      "org add|list|show|remove|member add|member remove … | "
		      "member device list|revoke … | keys list|rotate | audit "
		      "verify [--checkpoints FILE]|export|checkpoint|checkpoints export\n"
		      "Configuration from ISSO_<SECTION>_<KEY> or --config FILE as the first "
		      "arguments.\n",
		      argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *config_path = NULL;
	if (strcmp(argv[1], "--config") == 0 && argc > 3) {
		config_path = argv[2];
		argc -= 2;
		argv += 2;
	}
	cmd = argv[1];
	if (config_load(config_path, &cfg, &error) < 0)
		return fail(2, "configuration: %s", error);
	if (app_check_config(&cfg, &error) < 0) {
		ret = fail(2, "configuration: %s", error);
		config_free(&cfg);
		return ret;
	}
	log_init(2, LOG_WARN);
	if (app_init_admin(&app, &cfg, &error) < 0) {
		ret = fail(1, "start-up: %s", error);
		goto out;
	}
	if (strcmp(cmd, "init") == 0) {
		int version = 0;
		store_schema_version(app.store, &version);
		json_t *keys = json_array();
		store_key_list(app.store, key_one, keys);
		ret = emit(json_pack("{s:s, s:i, s:o}", "status", "ok", "schema_version", version,
		                     "keys", keys));
	} else if (strcmp(cmd, "client") == 0) {
		ret = client_cmd(&app, argc - 1, argv + 1);
	} else if (strcmp(cmd, "application") == 0) {
		ret = application_cmd(&app, argc - 1, argv + 1);
	} else if (strcmp(cmd, "admin") == 0) {
		ret = admin_cmd(&app, argc - 1, argv + 1);
	} else if (strcmp(cmd, "org") == 0) {
		ret = org_cmd(&app, argc - 1, argv + 1);
	} else if (strcmp(cmd, "member") == 0 && argc > 2 && strcmp(argv[2], "device") == 0) {
		ret = member_device_cmd(&app, argc - 2, argv + 2);
	} else if (strcmp(cmd, "user") == 0 && argc > 2 && strcmp(argv[2], "add") == 0) {
		ret = user_add(&app, argc - 2, argv + 2);
	} else if (strcmp(cmd, "keys") == 0 && argc > 2 && strcmp(argv[2], "list") == 0) {
		json_t *keys = json_array();
		store_key_list(app.store, key_one, keys);
		ret = emit(keys);
	} else if (strcmp(cmd, "keys") == 0 && argc > 2 && strcmp(argv[2], "rotate") == 0) {
		json_t *keys = json_array();
		if (app_rotate_keys(&app, &error) < 0) {
			json_decref(keys);
			ret = fail(1, "cannot rotate keys: %s", error);
		} else {
			log_warn("admin_action", "action", "keys_rotated", NULL);
			store_key_list(app.store, key_one, keys);
			ret = emit(keys);
		}
	} else if (strcmp(cmd, "audit") == 0) {
		ret = audit_cmd(&app, argc - 1, argv + 1);
	} else {
		ret = fail(2, "unknown command: %s", cmd);
	}
out:
	app_free(&app);
	config_free(&cfg);
	return ret;
}
