/* The carriers' number verification (手機電信驗證), in OUR contract's shape
 * (docs/connectors/telecom.md): a client starts a verification with the
 * holder's ID, birthdate, number and carrier; the citizen's phone opens a
 * one-time link over the carrier's mobile network; the client reads the
 * state. Decisions come from the test identities: citizens (prepaid,
 * foreign_resident, optional restricted) and organisations that carry a
 * phone (corporate numbers).
 *
 *   POST /telecom/v1/verifications           Basic auth, JSON body
 *   GET  /telecom/v1/verifications/{id}      Basic auth
 *   GET  /telecom/v1/link/{token}?network=mobile|wifi[&from=09…]   the phone
 *
 * The network a real carrier sees is simulated by the link's query:
 * network=mobile means "over a mobile network, from the SIM of `from`"
 * (default: the number being verified); anything else, or none, is what a
 * browser on Wi-Fi looks like. Also `isso-sim phone open-link URL
 * --network mobile|wifi [--from NUMBER]`. Pending verifications live in a
 * bounded in-memory table. IDs, birthdates and link tokens are never
 * logged. */
#include "sim/sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/parse.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"

#define TEL_SLOTS          4096 /* verifications held at once */
#define TEL_KEEP_S         600  /* an ended verification still answers status */
#define TEL_WINDOW_DEFAULT 37
#define TEL_WINDOW_MAX     300
#define TEL_HOST_MAX       255
#define TEL_URL_MAX        2048
#define TEL_ORGS_MAX       10000
#define TEL_LINK_PREFIX    "/telecom/v1/link/"

enum tel_state {
	TEL_PENDING,
	TEL_CONFIRMED,
	TEL_WIFI,
	TEL_OTHER_NUMBER,
	TEL_EXPIRED, /* never stored: derived from the clock */
};

static const char *const tel_state_names[] = {
    [TEL_PENDING] = "pending",           [TEL_CONFIRMED] = "confirmed", [TEL_WIFI] = "wifi",
    [TEL_OTHER_NUMBER] = "other_number", [TEL_EXPIRED] = "expired",
};

struct tel_verif {
	bool used;
	char vid[23];   /* 16 random bytes, base64url */
	char token[44]; /* 32 random bytes, base64url: the link's secret part */
	char phone[11];
	char carrier[4];
	struct timespec expires; /* CLOCK_MONOTONIC */
	enum tel_state state;
};

/* A number held by an organisation (identities file: organisations[].phone). */
struct tel_org_number {
	char phone[11];
	char carrier[4];
};

static struct {
	pthread_mutex_t lock;
	struct tel_verif *slots; /* TEL_SLOTS */
	struct tel_org_number *orgs;
	size_t norgs;
	char *client_id;
	char *secret;
} tel = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool
tel_carrier_valid(const char *id)
{
	return id != NULL &&
	       (strcmp(id, "cht") == 0 || strcmp(id, "twm") == 0 || strcmp(id, "fet") == 0);
}

static bool
tel_mobile(const char *s)
{
	char n[11];

	return s != NULL && phone_normalize(s, n) && strcmp(n, s) == 0;
}

/* Seconds from now to t (negative when past), on the monotonic clock. */
static long
tel_seconds_left(const struct timespec *t)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (ms + 999) / 1000 : ms / 1000 - (ms % 1000 != 0);
}

/* The state a client sees. Called with the lock held. */
static enum tel_state
tel_effective(const struct tel_verif *v)
{
	if (v->state != TEL_CONFIRMED && tel_seconds_left(&v->expires) <= 0)
		return TEL_EXPIRED;
	return v->state;
}

/* ---- identities: organisation numbers and restricted lines ---- */

static const struct tel_org_number *
tel_org_by_phone(const char *phone)
{
	for (size_t i = 0; i < tel.norgs; i++) {
		if (strcmp(tel.orgs[i].phone, phone) == 0)
			return &tel.orgs[i];
	}
	return NULL;
}

/* Reads what sim-ident.c does not keep: organisations' numbers, and checks
 * the optional citizens[].restricted flag. */
static int
tel_load_identities(const char *path, const char **error_r)
{
	static char error[256];
	json_t *root = NULL, *list, *o;
	size_t i;
	int ret = ISSO_ERR_INVALID;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL) {
		*error_r = "cannot read the identities file";
		ret = ISSO_ERR_IO;
		goto out;
	}
	json_array_foreach(json_object_get(root, "citizens"), i, o)
	{
		const json_t *r = json_object_get(o, "restricted");

		if (r != NULL && !json_is_boolean(r)) {
			snprintf(error, sizeof(error), "citizens[%zu].restricted: true or false",
			         i);
			*error_r = error;
			goto out;
		}
	}
	list = json_object_get(root, "organisations");
	if (json_array_size(list) > TEL_ORGS_MAX) {
		*error_r = "too many organisations";
		goto out;
	}
	tel.orgs = xcalloc(json_array_size(list) + 1, sizeof(*tel.orgs));
	json_array_foreach(list, i, o)
	{
		const char *phone = json_string_value(json_object_get(o, "phone"));
		const char *carrier =
		    json_string_value(json_object_get(json_object_get(o, "carrier"), "id"));

		if (json_object_get(o, "phone") == NULL)
			continue;
		if (!tel_mobile(phone) || !tel_carrier_valid(carrier)) {
			snprintf(
			    error, sizeof(error),
			    "organisations[%zu]: phone 09xxxxxxxx with carrier {id: cht|twm|fet}",
			    i);
			*error_r = error;
			goto out;
		}
		if (sim_ident_by_phone(phone) != NULL || tel_org_by_phone(phone) != NULL) {
			snprintf(error, sizeof(error), "organisations[%zu].phone: %s appears twice",
			         i, phone);
			*error_r = error;
			goto out;
		}
		snprintf(tel.orgs[tel.norgs].phone, sizeof(tel.orgs[0].phone), "%s", phone);
		snprintf(tel.orgs[tel.norgs].carrier, sizeof(tel.orgs[0].carrier), "%s", carrier);
		tel.norgs++;
	}
	ret = 0;
out:
	if (ret != 0) {
		free(tel.orgs);
		tel.orgs = NULL;
		tel.norgs = 0;
	}
	json_decref(root);
	return ret;
}

/* ---- the relying party's side ---- */

/* True when the request carries our client's Basic credentials; answers
 * 401 otherwise. */
static bool
tel_authorised(struct http_req *req)
{
	char *user = NULL, *pass = NULL;
	bool user_ok, pass_ok;

	if (parse_basic_auth(http_pool(req), http_header(req, "Authorization"), &user, &pass) ==
	    0) {
		/* both comparisons run: which one failed must not show in the timing */
		user_ok = secret_equal(user, tel.client_id);
		pass_ok = secret_equal(pass, tel.secret);
		if (user_ok && pass_ok)
			return true;
	}
	log_info("telecom_client_refused", "remote", http_remote_addr(req), NULL);
	http_set_header(req, "WWW-Authenticate", "Basic realm=\"isso-sim telecom\"");
	sim_send_error(req, 401, "invalid_client");
	return false;
}

static void
tel_bad_request(struct http_req *req, const char *description)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "error", "invalid_request", "error_description", description);

	if (o == NULL)
		abort();
	http_send_json(req, 400, o);
}

static void
tel_refuse(struct http_req *req, const char *reason, const char *phone, const char *carrier)
{
	char masked[32];
	json_t *o = json_pack("{s:s, s:s}", "result", "F", "reason", reason);

	if (o == NULL)
		abort();
	log_info("telecom_refused", "phone", log_mask(phone, masked), "carrier", carrier, "reason",
	         reason, NULL);
	http_send_json(req, 200, o);
}

/* The Host the client reached us by, for the link; NULL when unusable. */
static const char *
tel_host(struct http_req *req)
{
	const char *h = http_header(req, "Host");
	size_t n;

	if (h == NULL || *h == '\0')
		return NULL;
	n = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]");
	return n == strlen(h) && n <= TEL_HOST_MAX ? h : NULL;
}

/* Takes a free slot (never used, or ended TEL_KEEP_S ago), fills it and
 * copies its id and link token out. False when the table is full. */
static bool
tel_slot_new(const char *phone, const char *carrier, int window, char vid_r[23], char token_r[44])
{
	struct tel_verif *v = NULL;

	pthread_mutex_lock(&tel.lock);
	for (size_t i = 0; i < TEL_SLOTS && v == NULL; i++) {
		struct tel_verif *s = &tel.slots[i];

		if (!s->used || tel_seconds_left(&s->expires) < -TEL_KEEP_S)
			v = s;
	}
	if (v != NULL) {
		memset(v, 0, sizeof(*v));
		v->used = true;
		secret_token(16, v->vid);
		secret_token(32, v->token);
		snprintf(v->phone, sizeof(v->phone), "%s", phone);
		snprintf(v->carrier, sizeof(v->carrier), "%s", carrier);
		clock_gettime(CLOCK_MONOTONIC, &v->expires);
		v->expires.tv_sec += window;
		v->state = TEL_PENDING;
		memcpy(vid_r, v->vid, sizeof(v->vid));
		memcpy(token_r, v->token, sizeof(v->token));
	}
	pthread_mutex_unlock(&tel.lock);
	return v != NULL;
}

/* Decides a start request: NULL to accept, else the refusal reason. The
 * order matters for privacy: first what concerns the number alone (as the
 * carrier's own records show it to anyone who types the number), then
 * what the caller's own ID says, then the holder match; the holder's
 * foreign-resident status only shows to someone who already knows the
 * holder's ID and birthdate. Whether an ID exists is never looked at. */
static const char *
tel_decide(const char *id, const char *phone, const char *birthdate, const char *carrier)
{
	const json_t *c = sim_ident_by_phone(phone);
	const struct tel_org_number *org = tel_org_by_phone(phone);
	const char *held_by;
	bool id_ok, birth_ok;

	if (c == NULL && org == NULL)
		return "unknown_number";
	held_by = org != NULL
	              ? org->carrier
	              : json_string_value(json_object_get(json_object_get(c, "carrier"), "id"));
	if (held_by == NULL || strcmp(held_by, carrier) != 0)
		return "wrong_carrier";
	if (org != NULL)
		return "corporate";
	if (json_is_true(json_object_get(c, "prepaid")))
		return "prepaid";
	if (json_is_true(json_object_get(c, "restricted")))
		return "restricted";
	if (idnum_is_resident_id(id))
		return "foreign";
	/* both compared: one answer for every disagreement */
	id_ok = strcmp(id, json_string_value(json_object_get(c, "national_id"))) == 0;
	birth_ok = strcmp(birthdate, json_string_value(json_object_get(c, "birthdate"))) == 0;
	if (!id_ok || !birth_ok)
		return "mismatch";
	if (json_is_true(json_object_get(c, "foreign_resident")))
		return "foreign";
	return NULL;
}

static void
tel_start_handler(struct http_req *req, void *ctx)
{
	const char *body, *id, *phone, *birthdate, *carrier, *host, *reason, *link;
	const json_t *jw;
	json_t *in = NULL, *o;
	size_t len;
	char masked[32], vid[23], token[44];
	int window = TEL_WINDOW_DEFAULT;

	if (!tel_authorised(req))
		goto out;
	body = http_body(req, &len);
	if (body != NULL)
		in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(in)) {
		tel_bad_request(req, "the body must be a JSON object");
		goto out;
	}
	id = json_string_value(json_object_get(in, "id_num"));
	phone = json_string_value(json_object_get(in, "phone"));
	birthdate = json_string_value(json_object_get(in, "birthdate"));
	carrier = json_string_value(json_object_get(in, "carrier"));
	jw = json_object_get(in, "window");
	if (id == NULL || !idnum_is_valid(id)) {
		tel_bad_request(req, "id_num: a national ID or resident certificate number");
		goto out;
	}
	if (!tel_mobile(phone)) {
		tel_bad_request(req, "phone: 09 followed by 8 digits");
		goto out;
	}
	if (birthdate == NULL || !date_is_valid(birthdate)) {
		tel_bad_request(req, "birthdate: YYYY-MM-DD");
		goto out;
	}
	if (!tel_carrier_valid(carrier)) {
		tel_bad_request(req, "carrier: cht, twm or fet");
		goto out;
	}
	if (jw != NULL) {
		if (!json_is_integer(jw) || json_integer_value(jw) < 1 ||
		    json_integer_value(jw) > TEL_WINDOW_MAX) {
			tel_bad_request(req, "window: 1 to 300 seconds");
			goto out;
		}
		window = (int)json_integer_value(jw);
	}
	host = tel_host(req);
	if (host == NULL) {
		tel_bad_request(req, "a Host header is required");
		goto out;
	}
	reason = tel_decide(id, phone, birthdate, carrier);
	if (reason != NULL) {
		tel_refuse(req, reason, phone, carrier);
		goto out;
	}
	if (!tel_slot_new(phone, carrier, window, vid, token)) {
		log_warn("telecom_table_full", NULL);
		sim_send_error(req, 503, "busy");
		goto out;
	}
	link = pool_printf(http_pool(req), "http://%s" TEL_LINK_PREFIX "%s", host, token);
	explicit_bzero(token, sizeof(token));
	o = json_pack("{s:s, s:s, s:s, s:i}", "result", "S", "verification_id", vid, "link", link,
	              "expires_in", window);
	if (o == NULL)
		abort();
	log_info("telecom_started", "phone", log_mask(phone, masked), "carrier", carrier, NULL);
	http_send_json(req, 200, o);
out:
	json_decref(in);
}

static void
tel_status_handler(struct http_req *req, void *ctx)
{
	const char *vid = http_path_rest(req);
	enum tel_state state = TEL_PENDING;
	long left = 0;
	bool found = false;
	json_t *o;

	if (!tel_authorised(req))
		goto out;
	pthread_mutex_lock(&tel.lock);
	for (size_t i = 0; i < TEL_SLOTS && !found; i++) {
		struct tel_verif *v = &tel.slots[i];

		if (v->used && strcmp(v->vid, vid) == 0 &&
		    tel_seconds_left(&v->expires) >= -TEL_KEEP_S) {
			found = true;
			state = tel_effective(v);
			left = tel_seconds_left(&v->expires);
		}
	}
	pthread_mutex_unlock(&tel.lock);
	if (!found) {
		sim_send_error(req, 404, "not_found");
		goto out;
	}
	o = json_pack(
	    "{s:s, s:s, s:I}", "result", "S", "state", tel_state_names[state], "expires_in",
	    (json_int_t)(state == TEL_PENDING || state == TEL_WIFI || state == TEL_OTHER_NUMBER
	                     ? left
	                     : 0));
	if (o == NULL)
		abort();
	http_send_json(req, 200, o);
out:
	return;
}

/* ---- the phone's side ---- */

static void
tel_link_handler(struct http_req *req, void *ctx)
{
	const char *token = http_path_rest(req);
	const char *network = http_query(req, "network");
	const char *from = http_query(req, "from");
	const char *error = NULL;
	struct tel_verif *v = NULL;
	enum tel_state state = TEL_PENDING;
	char masked[32];
	int status = 200;
	bool mobile;
	json_t *o;

	if (http_method(req) != HTTP_GET) {
		/* a HEAD from a link previewer must not count as opening it */
		http_set_header(req, "Allow", "GET");
		sim_send_error(req, 405, "method_not_allowed");
		goto out;
	}
	if (network != NULL && strcmp(network, "mobile") != 0 && strcmp(network, "wifi") != 0) {
		tel_bad_request(req, "network: mobile or wifi");
		goto out;
	}
	if (from != NULL && !tel_mobile(from)) {
		tel_bad_request(req, "from: 09 followed by 8 digits");
		goto out;
	}
	mobile = network != NULL && strcmp(network, "mobile") == 0;

	pthread_mutex_lock(&tel.lock);
	for (size_t i = 0; i < TEL_SLOTS && v == NULL && *token != '\0'; i++) {
		if (tel.slots[i].used && strcmp(tel.slots[i].token, token) == 0)
			v = &tel.slots[i];
	}
	if (v == NULL) {
		status = 404;
		error = "unknown_link";
	} else if (v->state == TEL_CONFIRMED) {
		status = 410;
		error = "link_used";
	} else if (tel_effective(v) == TEL_EXPIRED) {
		status = 410;
		error = "link_expired";
	} else if (!mobile) {
		/* not consumed: the citizen may turn Wi-Fi off and retry in time */
		v->state = TEL_WIFI;
		status = 403;
		error = "not_mobile_network";
	} else if (from != NULL && strcmp(from, v->phone) != 0) {
		/* not consumed either: a dual-SIM phone may switch its data SIM */
		v->state = TEL_OTHER_NUMBER;
		status = 403;
		error = "other_number";
	} else {
		v->state = TEL_CONFIRMED;
	}
	if (v != NULL) {
		state = tel_effective(v);
		log_mask(v->phone, masked);
	}
	pthread_mutex_unlock(&tel.lock);

	log_info("telecom_link_opened", "phone", v != NULL ? masked : "-", "network",
	         mobile ? "mobile" : "wifi", "outcome", error != NULL ? error : "confirmed", NULL);
	if (error != NULL)
		o = json_pack("{s:s, s:s}", "error", error, "state", tel_state_names[state]);
	else
		o = json_pack("{s:s}", "state", tel_state_names[state]);
	if (o == NULL)
		abort();
	http_send_json(req, status, o);
out:
	return;
}

static int
tel_init(const struct sim_settings *settings, const char **error_r)
{
	const char *id = getenv("ISSO_SIM_TELECOM_CLIENT_ID");
	const char *secret = getenv("ISSO_SIM_TELECOM_SECRET");
	int ret;

	ret = tel_load_identities(settings->identities_path, error_r);
	if (ret != 0)
		goto out;
	tel.client_id = xstrdup(id != NULL && *id != '\0' ? id : "isso");
	tel.secret = xstrdup(secret != NULL && *secret != '\0' ? secret : "isso-sim");
	tel.slots = xcalloc(TEL_SLOTS, sizeof(*tel.slots));
out:
	return ret;
}

static void
tel_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/telecom/v1/verifications", tel_start_handler, NULL);
	http_route(srv, HTTP_GET, "/telecom/v1/verifications/", tel_status_handler, NULL);
	http_route(srv, HTTP_GET, TEL_LINK_PREFIX, tel_link_handler, NULL);
}

static void
tel_deinit(void)
{
	pthread_mutex_lock(&tel.lock);
	if (tel.slots != NULL)
		explicit_bzero(tel.slots, TEL_SLOTS * sizeof(*tel.slots));
	free(tel.slots);
	free(tel.orgs);
	free(tel.client_id);
	xfree_secret(tel.secret);
	tel.slots = NULL;
	tel.orgs = NULL;
	tel.norgs = 0;
	tel.client_id = tel.secret = NULL;
	pthread_mutex_unlock(&tel.lock);
}

const struct sim_service sim_service_telecom = {
    .name = "telecom",
    .init = tel_init,
    .routes = tel_routes,
    .deinit = tel_deinit,
};

/* ---- isso-sim phone open-link ---- */

static int
tel_open_link_usage(void)
{
	fprintf(stderr,
	        "usage: isso-sim phone open-link URL --network mobile|wifi [--from NUMBER]\n"
	        "  opens a telecom verification link as the citizen's phone would;\n"
	        "  exit 0 confirmed, 1 refused (Wi-Fi, other number, used, expired),\n"
	        "  2 usage or connection error\n");
	return 2;
}

static int
tel_open_link(int argc, char **argv)
{
	const char *url = NULL, *network = NULL, *from_raw = NULL, *error = NULL, *slash;
	char base[TEL_URL_MAX + 1], from[11];
	char *path = NULL, *body = NULL;
	json_t *reply = NULL;
	size_t blen;
	bool bad = false;
	int status = 0, ret = 2;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--network") == 0 && i + 1 < argc)
			network = argv[++i];
		else if (strncmp(argv[i], "--network=", 10) == 0)
			network = argv[i] + 10;
		else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from_raw = argv[++i];
		else if (strncmp(argv[i], "--from=", 7) == 0)
			from_raw = argv[i] + 7;
		else if (argv[i][0] != '-' && url == NULL)
			url = argv[i];
		else
			bad = true;
	}
	if (bad || url == NULL || network == NULL ||
	    (strcmp(network, "mobile") != 0 && strcmp(network, "wifi") != 0)) {
		ret = tel_open_link_usage();
		goto out;
	}
	if (from_raw != NULL && !phone_normalize(from_raw, from)) {
		fprintf(stderr, "isso-sim: %s is not a Taiwan mobile number (09xxxxxxxx)\n",
		        from_raw);
		goto out;
	}
	slash = strncmp(url, "http://", 7) == 0 ? strchr(url + 7, '/') : NULL;
	if (slash == NULL || strlen(url) > TEL_URL_MAX || strchr(url, '#') != NULL) {
		fprintf(stderr, "isso-sim: %s is not an http:// link of the simulator\n", url);
		goto out;
	}
	blen = (size_t)(slash - url);
	memcpy(base, url, blen);
	base[blen] = '\0';
	path = xasprintf("%s%cnetwork=%s%s%s", slash, strchr(slash, '?') != NULL ? '&' : '?',
	                 network, from_raw != NULL ? "&from=" : "", from_raw != NULL ? from : "");
	if (sim_client_request(base, "GET", path, 5000, &status, &body, &error) != 0) {
		fprintf(stderr, "isso-sim: %s: %s\n", base, error);
		goto out;
	}
	reply = json_loads(body, 0, NULL);
	if (reply == NULL || (status != 200 && status != 403 && status != 404 && status != 410)) {
		fprintf(stderr, "isso-sim: %s: unexpected reply (HTTP %d)\n", base, status);
		goto out;
	}
	json_dumpf(reply, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	ret = status == 200 ? 0 : 1;
out:
	json_decref(reply);
	free(body);
	free(path);
	return ret;
}

int
sim_telecom_phone_cmd(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "open-link") == 0)
		return tel_open_link(argc, argv);
	return sim_phone_cmd(argc, argv);
}
