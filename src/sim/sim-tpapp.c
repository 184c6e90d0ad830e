/* The TaipeiPass app (台北通APP) on the citizen's phone. It scans the QR
 * code of issod's TaipeiPass login (`isso-tpapp:<issod>/app/v1/qr/<c>`),
 * or is opened by the app link on the same phone
 * (`isso-tpapp:<issod>/app/v1/link/<c>`), asks issod what the login is
 * for (POST /app/v1/qr/details: the agency service's name and three
 * two-digit numbers, and a nonce) and answers at POST /app/v1/qr/approve
 * with an ES256 signature of its device key (docs/taipeipass-app.md).
 *
 * The device key: like the real app at its first start, the app enrols a
 * fresh P-256 key for the account (POST /app/v1/device/enrol with the
 * account's password) the first time it answers for it, and keeps it in
 * the state folder (one file per issod address and account, mode 0600:
 * {issod, account, device, jwk}); `enrol` does it on demand (and replaces
 * the kept key). An answer never carries the password.
 *
 *   POST /phone/tpapp/enrol      JSON {issod, account, password?, name?}
 *   POST /phone/tpapp/show       JSON {qr, issod?}: issod's details
 *   POST /phone/tpapp/approve    JSON {qr, account, password?, issod?, org?,
 *                                pick?}: a scanned code; pick (the number the
 *                                citizen chose, one of the three) is needed
 *                                to approve
 *   POST /phone/tpapp/deny       the same, no pick
 *   POST /phone/tpapp/ciba-list  JSON {issod, account, password?}: the
 *                                counter requests (CIBA) waiting for the app
 *   POST /phone/tpapp/ciba-approve|ciba-deny  JSON {issod, account,
 *                                password?, request?, decline?}: answers
 *                                request, or the only one waiting; decline
 *                                (approve only) lists the fields the
 *                                citizen leaves out, sent as they are
 *   POST /phone/tpapp/open-link  JSON {link, account, password?, issod?, org?}:
 *                                approve through the app link (no number:
 *                                the page is on this very phone); issod's
 *                                reply carries the return_url the app opens
 *                                in the phone's browser
 *
 * answer with issod's HTTP status and JSON reply ({"result":"approved"},
 * {"error":"wrong_number"} …), 400 {"error":"pick_required","choices":[…]}
 * or {"error":"not_a_choice"}, or 502 {"error":"issod_unreachable"}.
 * Without a password the app uses the one the test identities give the
 * account (sim/identities.json: citizens' and organisations' taipeipass).
 * issod defaults to the address in the QR code or link. org (統一編號)
 * answers an organisation login (組織 / 公司企業) for that organisation.
 *
 * The state folder: `serve --state DIR` (else $ISSO_SIM_STATE, else a
 * temporary folder removed at exit); the command line: --state DIR, else
 * $ISSO_SIM_STATE, else $HOME/.local/state/isso-sim.
 *
 *   isso-sim phone tpapp show QR [--issod URL]
 *   isso-sim phone tpapp approve QR --account A [--password P] [--org UBN]
 *            [--pick NN] [--issod URL] [--identities FILE]
 *   isso-sim phone tpapp deny QR --account A [--password P] [--org UBN] …
 *   isso-sim phone tpapp open-link LINK --account A [--password P] [--org UBN] …
 *   isso-sim phone tpapp enrol --account A --issod URL [--password P] [--name N]
 *   isso-sim phone tpapp ciba-list --account A --issod URL
 *   isso-sim phone tpapp ciba-approve [REQUEST] --account A --issod URL
 *            [--decline FIELD]…
 *   isso-sim phone tpapp ciba-deny [REQUEST] --account A --issod URL
 * do the same from the command line (no running simulator needed). approve
 * without --pick shows the service and the choices and asks which number
 * the page shows (on a terminal; otherwise it is a usage error).
 * Exit status: 0 issod took the answer, 1 issod refused it, 2 usage or
 * connection error. */
#include "sim/sim.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jose/jose.h"
#include "lib/isso.h"
#include "lib/xmalloc.h"

#define TPAPP_PREFIX             "isso-tpapp:"
#define TPAPP_QR_PATH            "/app/v1/qr/"
#define TPAPP_LINK_PATH          "/app/v1/link/"
#define TPAPP_DEFAULT_IDENTITIES ISSO_DATADIR "/sim/identities.json"
#define TPAPP_REPLY_MAX          (64 * 1024)

static json_t *tpapp_identities; /* loaded by the service's init */
static char *tpapp_state;        /* the running simulator's state folder */
static bool tpapp_state_temp;    /* made by init, removed by deinit */

/* The password the test identities give account (borrowed from ids), or
 * NULL. */
static const char *
tpapp_password_of(const json_t *ids, const char *account)
{
	static const char *const lists[] = {"citizens", "organisations"};

	for (size_t l = 0; l < ISSO_N_ELEMENTS(lists); l++) {
		const json_t *list = json_object_get(ids, lists[l]), *p;
		size_t i;

		json_array_foreach(list, i, p)
		{
			const json_t *tp = json_object_get(p, "taipeipass");
			const char *a = json_string_value(json_object_get(tp, "account"));
			if (a != NULL && strcmp(a, account) == 0)
				return json_string_value(json_object_get(tp, "password"));
		}
	}
	return NULL;
}

struct tpapp_buf {
	char *data;
	size_t len;
};

static size_t
tpapp_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct tpapp_buf *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n > TPAPP_REPLY_MAX)
		return 0;
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* What the app read: the challenge and issod's base URL (malloc'd), and
 * whether it came by the app link. */
struct tpapp_code {
	char *base;
	char *challenge;
	bool link;
};

static void
tpapp_code_free(struct tpapp_code *c)
{
	free(c->base);
	free(c->challenge);
	c->base = c->challenge = NULL;
}

/* Parses text (a QR code or, when link, an app link) into *c; issod
 * (may be NULL) overrides the address in it. Returns 0 or
 * ISSO_ERR_INVALID with *error_r static. */
static int
tpapp_code_parse(const char *text, bool link, const char *issod, struct tpapp_code *c,
                 const char **error_r)
{
	const char *path = link ? TPAPP_LINK_PATH : TPAPP_QR_PATH;
	const char *at;

	memset(c, 0, sizeof(*c));
	if (strncmp(text, TPAPP_PREFIX, strlen(TPAPP_PREFIX)) != 0 ||
	    (at = strstr(text, path)) == NULL || strlen(at + strlen(path)) != 43) {
		*error_r = link ? "not a TaipeiPass app link (isso-tpapp:…/app/v1/link/…)"
		                : "not a TaipeiPass login QR code (isso-tpapp:…/app/v1/qr/…)";
		return ISSO_ERR_INVALID;
	}
	c->challenge = xstrdup(at + strlen(path));
	c->link = link;
	if (issod == NULL)
		c->base = xstrndup(text + strlen(TPAPP_PREFIX),
		                   (size_t)(at - text) - strlen(TPAPP_PREFIX));
	else
		c->base = xstrdup(issod);
	if (strncmp(c->base, "http://", 7) != 0 && strncmp(c->base, "https://", 8) != 0) {
		*error_r = "issod's address is not an http(s) URL";
		tpapp_code_free(c);
		return ISSO_ERR_INVALID;
	}
	return 0;
}

/* POSTs req (JSON) to base + path. Returns 0 with *status_r and *reply_r
 * (a new JSON object), or ISSO_ERR_IO with *error_r static. */
static int
tpapp_post(const char *base, const char *path, json_t *req, int *status_r, json_t **reply_r,
           const char **error_r)
{
	char *url = xasprintf("%s%s", base, path), *body = json_dumps(req, JSON_COMPACT);
	struct tpapp_buf reply = {NULL, 0};
	struct curl_slist *headers = NULL;
	CURL *curl = NULL;
	long status = 0;
	int ret = ISSO_ERR_IO;

	*reply_r = NULL;
	curl = curl_easy_init();
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (curl == NULL || headers == NULL || body == NULL) {
		*error_r = "cannot build the request";
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "isso-sim-tpapp/1");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, tpapp_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
	if (curl_easy_perform(curl) != CURLE_OK) {
		*error_r = "issod unreachable";
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	*reply_r = reply.data != NULL ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
	if (!json_is_object(*reply_r)) {
		json_decref(*reply_r);
		*reply_r = NULL;
		*error_r = "issod's reply is not a JSON object";
		goto out;
	}
	*status_r = (int)status;
	ret = 0;
out:
	curl_slist_free_all(headers);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(body);
	free(reply.data);
	free(url);
	return ret;
}

/* Asks issod what the code is for: {service, organisation, choices}. */
static int
tpapp_details(const struct tpapp_code *c, int *status_r, json_t **reply_r, const char **error_r)
{
	json_t *req = json_pack("{s:s}", "challenge", c->challenge);
	int ret = tpapp_post(c->base, "/app/v1/qr/details", req, status_r, reply_r, error_r);

	json_decref(req);
	return ret;
}

/* Is pick one of the choices issod offered (details)? */
static bool
tpapp_is_choice(const json_t *details, int pick)
{
	const json_t *v;
	size_t i;

	json_array_foreach(json_object_get(details, "choices"), i, v)
	{
		if (json_integer_value(v) == pick)
			return true;
	}
	return false;
}

/* ---- the device key, kept in the state folder ---- */

/* The file keeping account's key for issod base: malloc'd. */
static char *
tpapp_key_path(const char *dir, const char *base, const char *account)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *in = xasprintf("%s\n%s", base, account), hex[33];

	SHA256((const unsigned char *)in, strlen(in), md);
	for (size_t i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	free(in);
	return xasprintf("%s/tpapp-%s.json", dir, hex);
}

/* account's kept key for base: {issod, account, device, jwk} (a new
 * reference), or NULL when there is none. */
static json_t *
tpapp_key_load(const char *dir, const char *base, const char *account)
{
	char *path = tpapp_key_path(dir, base, account);
	json_t *k = json_load_file(path, 0, NULL);

	free(path);
	if (!json_is_string(json_object_get(k, "device")) ||
	    !json_is_string(json_object_get(k, "jwk")) ||
	    strcmp(json_string_value(json_object_get(k, "account")) ?: "", account) != 0) {
		json_decref(k);
		return NULL;
	}
	return k;
}

/* Keeps the key (written whole, then renamed into place). */
static int
tpapp_key_save(const char *dir, const char *base, const char *account, const char *device,
               const char *jwk, const char **error_r)
{
	char *path = tpapp_key_path(dir, base, account), *tmp = xasprintf("%s.tmp", path);
	json_t *k = json_pack("{s:s, s:s, s:s, s:s}", "issod", base, "account", account, "device",
	                      device, "jwk", jwk);
	char *text = k != NULL ? json_dumps(k, JSON_INDENT(2)) : NULL;
	int fd = -1, ret = ISSO_ERR_IO;
	size_t len;

	if (text == NULL)
		goto out;
	(void)mkdir(dir, 0700);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0) {
		if (fd >= 0)
			(void)close(fd);
		(void)unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		(void)unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		*error_r = "cannot write the device key to the state folder";
	if (text != NULL)
		explicit_bzero(text, strlen(text));
	free(text);
	json_decref(k);
	free(tmp);
	free(path);
	return ret;
}

/* Enrols a new device key for account at issod base with password:
 * issod's status and reply (201 {device}); the key is kept on 201. */
static int
tpapp_enrol(const char *dir, const char *base, const char *account, const char *password,
            const char *name, int *status_r, json_t **reply_r, const char **error_r)
{
	char *priv = NULL, *kid = NULL;
	json_t *pub = NULL, *req = NULL;
	int ret;

	*reply_r = NULL;
	ret = jose_key_generate("ES256", &priv, &kid);
	if (ret < 0) {
		*error_r = "cannot make a key";
		goto out;
	}
	pub = json_loads(priv, 0, NULL);
	json_object_del(pub, "d");
	json_object_del(pub, "kid");
	json_object_del(pub, "use");
	json_object_del(pub, "alg");
	req = json_pack("{s:s, s:s, s:O, s:s}", "account", account, "password", password,
	                "public_key", pub, "name", name != NULL ? name : "isso-sim");
	ret = tpapp_post(base, "/app/v1/device/enrol", req, status_r, reply_r, error_r);
	if (ret == 0 && *status_r == 201) {
		const char *device = json_string_value(json_object_get(*reply_r, "device"));
		if (device == NULL) {
			*error_r = "issod's enrolment reply has no device";
			ret = ISSO_ERR_IO;
		} else {
			ret = tpapp_key_save(dir, base, account, device, priv, error_r);
		}
	}
out:
	json_decref(req);
	json_decref(pub);
	if (priv != NULL)
		explicit_bzero(priv, strlen(priv));
	free(priv);
	free(kid);
	return ret;
}

/* The app's answer: decision for the code, with pick (the chosen number,
 * -1 for none) and org (UBN, may be NULL), signed with account's device
 * key (enrolled first with password when the app has none: *status_r and
 * *reply_r are then the enrolment's when it failed). details carries
 * issod's nonce. */
static int
tpapp_answer(const struct tpapp_code *c, const char *dir, const char *account, const char *password,
             const char *org, const char *decision, int pick, const json_t *details, int *status_r,
             json_t **reply_r, const char **error_r)
{
	const char *via = c->link ? "link" : "scan";
	struct jose_keyset *ks = NULL;
	json_t *key = NULL, *claims = NULL, *req = NULL;
	char *jws = NULL;
	int ret = ISSO_ERR_IO;

	*reply_r = NULL;
	key = tpapp_key_load(dir, c->base, account);
	if (key == NULL) {
		if (password == NULL) {
			*error_r = "no device key for the account and no password to enrol one";
			ret = ISSO_ERR_INVALID;
			goto out;
		}
		ret =
		    tpapp_enrol(dir, c->base, account, password, NULL, status_r, reply_r, error_r);
		if (ret < 0 || *status_r != 201)
			goto out;
		json_decref(*reply_r);
		*reply_r = NULL;
		key = tpapp_key_load(dir, c->base, account);
		if (key == NULL) {
			*error_r = "cannot read the device key back";
			ret = ISSO_ERR_IO;
			goto out;
		}
	}
	claims =
	    json_pack("{s:s, s:O, s:s, s:s, s:O, s:I}", "challenge", c->challenge, "device",
	              json_object_get(key, "device"), "decision", decision, "via", via, "nonce",
	              json_object_get(details, "nonce"), "iat", (json_int_t)time(NULL));
	if (claims == NULL) {
		*error_r = "issod's details have no nonce";
		ret = ISSO_ERR_IO;
		goto out;
	}
	if (org != NULL)
		json_object_set_new(claims, "organisation", json_string(org));
	if (pick >= 0)
		json_object_set_new(claims, "number", json_integer(pick));
	ks = jose_keyset_new();
	if (jose_keyset_add(ks, json_string_value(json_object_get(key, "jwk")), true, error_r) <
	        0 ||
	    jose_sign(ks, "ES256", NULL, claims, &jws) < 0) {
		*error_r = "cannot sign with the kept device key";
		ret = ISSO_ERR_IO;
		goto out;
	}
	req = json_pack("{s:s, s:O, s:s, s:s, s:s}", "challenge", c->challenge, "device",
	                json_object_get(key, "device"), "decision", decision, "via", via,
	                "signature", jws);
	if (org != NULL)
		json_object_set_new(req, "organisation", json_string(org));
	if (pick >= 0)
		json_object_set_new(req, "number", json_integer(pick));
	ret = tpapp_post(c->base, "/app/v1/qr/approve", req, status_r, reply_r, error_r);
out:
	jose_keyset_free(ks);
	free(jws);
	json_decref(req);
	json_decref(claims);
	json_decref(key);
	return ret;
}

/* "47" → 47; -1 unless exactly two digits. */
static int
tpapp_parse_pick(const char *s)
{
	if (s == NULL || strlen(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* ---- the HTTP API ---- */

static int
tpapp_init(const struct sim_settings *settings, const char **error_r)
{
	json_error_t jerr;

	tpapp_identities = json_load_file(settings->identities_path, 0, &jerr);
	if (tpapp_identities == NULL) {
		*error_r = "tpapp: cannot read the identities file";
		return ISSO_ERR_IO;
	}
	if (settings->state_dir != NULL) {
		tpapp_state = xstrdup(settings->state_dir);
		if (mkdir(tpapp_state, 0700) != 0 && errno != EEXIST) {
			*error_r = "tpapp: cannot make the state folder";
			return ISSO_ERR_IO;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		tpapp_state =
		    xasprintf("%s/isso-sim-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
		if (mkdtemp(tpapp_state) == NULL) {
			*error_r = "tpapp: cannot make a temporary state folder";
			return ISSO_ERR_IO;
		}
		tpapp_state_temp = true;
	}
	return 0;
}

static void
tpapp_deinit(void)
{
	json_decref(tpapp_identities);
	tpapp_identities = NULL;
	if (tpapp_state_temp) {
		DIR *d = opendir(tpapp_state);
		struct dirent *e;

		while (d != NULL && (e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "tpapp-", 6) == 0)
				(void)unlinkat(dirfd(d), e->d_name, 0);
		}
		if (d != NULL)
			closedir(d);
		(void)rmdir(tpapp_state);
	}
	free(tpapp_state);
	tpapp_state = NULL;
	tpapp_state_temp = false;
}

enum tpapp_action { TPAPP_SHOW, TPAPP_APPROVE, TPAPP_DENY, TPAPP_OPEN_LINK };

/* issod's address without a trailing slash (malloc'd), or NULL when it
 * is no http(s) URL. */
static char *
tpapp_base(const char *issod)
{
	size_t n;

	if (issod == NULL ||
	    (strncmp(issod, "http://", 7) != 0 && strncmp(issod, "https://", 8) != 0))
		return NULL;
	n = strlen(issod);
	while (n > 0 && issod[n - 1] == '/')
		n--;
	return xstrndup(issod, n);
}

/* POST /phone/tpapp/enrol {issod, account, password?, name?}: issod's
 * reply to the enrolment (201 {device}). */
static void
tpapp_enrol_handler(struct http_req *req, void *ctx)
{
	size_t len = 0;
	const char *raw = http_body(req, &len), *account, *password, *name, *error = NULL;
	json_t *in = raw != NULL ? json_loadb(raw, len, 0, NULL) : NULL, *reply = NULL;
	char *base = NULL;
	int status = 0;

	(void)ctx;
	account = json_string_value(json_object_get(in, "account"));
	password = json_string_value(json_object_get(in, "password"));
	name = json_string_value(json_object_get(in, "name"));
	base = tpapp_base(json_string_value(json_object_get(in, "issod")));
	if (account == NULL || base == NULL) {
		sim_send_error(req, 400, "issod_and_account_required");
		goto out;
	}
	if (password == NULL)
		password = tpapp_password_of(tpapp_identities, account);
	if (password == NULL) {
		sim_send_error(req, 404, "unknown_account");
		goto out;
	}
	if (tpapp_enrol(tpapp_state, base, account, password, name, &status, &reply, &error) != 0) {
		sim_send_error(req, 502, reply == NULL ? "issod_unreachable" : "state_unwritable");
		goto out;
	}
	http_send_json(req, status, reply);
	reply = NULL;
out:
	free(base);
	json_decref(reply);
	json_decref(in);
}

static void
tpapp_handle(struct http_req *req, enum tpapp_action action)
{
	size_t len = 0;
	const char *raw = http_body(req, &len), *text, *account, *password, *issod, *org;
	const char *error = NULL;
	json_t *in = raw != NULL ? json_loadb(raw, len, 0, NULL) : NULL, *reply = NULL;
	json_t *details = NULL, *pick_v;
	struct tpapp_code c = {0};
	int status = 0, pick = -1;
	bool link = action == TPAPP_OPEN_LINK;

	text = json_string_value(json_object_get(in, link ? "link" : "qr"));
	account = json_string_value(json_object_get(in, "account"));
	password = json_string_value(json_object_get(in, "password"));
	issod = json_string_value(json_object_get(in, "issod"));
	org = json_string_value(json_object_get(in, "org"));
	pick_v = json_object_get(in, "pick");
	if (text == NULL || (action != TPAPP_SHOW && account == NULL)) {
		sim_send_error(req, 400,
		               link ? "link_and_account_required" : "qr_and_account_required");
		goto out;
	}
	if (tpapp_code_parse(text, link, issod, &c, &error) != 0) {
		sim_send_error(req, 400, link ? "not_a_tpapp_link" : "not_a_tpapp_qr");
		goto out;
	}
	if (action != TPAPP_SHOW) {
		json_t *kept = tpapp_key_load(tpapp_state, c.base, account);
		if (password == NULL)
			password = tpapp_password_of(tpapp_identities, account);
		if (password == NULL && kept == NULL) {
			sim_send_error(req, 404, "unknown_account");
			goto out;
		}
		json_decref(kept);
	}
	/* Like the real app: first what the login is for. */
	if (tpapp_details(&c, &status, &details, &error) != 0) {
		sim_send_error(req, 502, "issod_unreachable");
		goto out;
	}
	if (action == TPAPP_SHOW || status != 200) {
		http_send_json(req, status, details);
		details = NULL;
		goto out;
	}
	if (action == TPAPP_APPROVE) {
		pick = json_is_integer(pick_v) ? (int)json_integer_value(pick_v)
		                               : tpapp_parse_pick(json_string_value(pick_v));
		if (pick_v == NULL) {
			http_send_json(req, 400,
			               json_pack("{s:s, s:O}", "error", "pick_required", "choices",
			                         json_object_get(details, "choices")));
			goto out;
		}
		if (!tpapp_is_choice(details, pick)) {
			sim_send_error(req, 400, "not_a_choice");
			goto out;
		}
	}
	if (tpapp_answer(&c, tpapp_state, account, password, org,
	                 action == TPAPP_DENY ? "deny" : "approve", pick, details, &status, &reply,
	                 &error) != 0) {
		sim_send_error(req, 502, "issod_unreachable");
		goto out;
	}
	json_object_set(reply, "service", json_object_get(details, "service"));
	http_send_json(req, status, reply);
	reply = NULL;
out:
	tpapp_code_free(&c);
	json_decref(details);
	json_decref(reply);
	json_decref(in);
}

static void
tpapp_show_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, TPAPP_SHOW);
}

static void
tpapp_approve_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, TPAPP_APPROVE);
}

static void
tpapp_deny_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, TPAPP_DENY);
}

static void
tpapp_open_link_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_handle(req, TPAPP_OPEN_LINK);
}

static void tpapp_ciba_list_handler(struct http_req *req, void *ctx);
static void tpapp_ciba_approve_handler(struct http_req *req, void *ctx);
static void tpapp_ciba_deny_handler(struct http_req *req, void *ctx);

static void
tpapp_routes(struct http_server *srv)
{
	http_route(srv, HTTP_POST, "/phone/tpapp/enrol", tpapp_enrol_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/show", tpapp_show_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/approve", tpapp_approve_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/deny", tpapp_deny_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/open-link", tpapp_open_link_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/ciba-list", tpapp_ciba_list_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/ciba-approve", tpapp_ciba_approve_handler, NULL);
	http_route(srv, HTTP_POST, "/phone/tpapp/ciba-deny", tpapp_ciba_deny_handler, NULL);
}

const struct sim_service sim_service_tpapp = {
    .name = "tpapp",
    .init = tpapp_init,
    .routes = tpapp_routes,
    .deinit = tpapp_deinit,
};

/* ---- isso-sim phone tpapp … ---- */

static int
tpapp_usage(void)
{
	fprintf(
	    stderr,
	    "usage: isso-sim phone tpapp show QR [--issod URL]\n"
	    "       isso-sim phone tpapp approve QR --account A [--password P] [--org UBN]\n"
	    "                [--pick NN] [--issod URL] [--identities FILE]\n"
	    "       isso-sim phone tpapp deny QR --account A [--password P] [--org UBN] …\n"
	    "       isso-sim phone tpapp open-link LINK --account A [--password P] [--org UBN] …\n"
	    "       isso-sim phone tpapp enrol --account A --issod URL [--password P] [--name N]\n"
	    "       isso-sim phone tpapp ciba-list --account A --issod URL\n"
	    "       isso-sim phone tpapp ciba-approve [REQUEST] --account A --issod URL\n"
	    "                [--decline FIELD]...\n"
	    "       isso-sim phone tpapp ciba-deny [REQUEST] --account A --issod URL\n"
	    "  every command but show takes --state DIR (default $ISSO_SIM_STATE, else\n"
	    "  ~/.local/state/isso-sim): where the app keeps its device keys; an answer\n"
	    "  for an account without one enrols one first (with its password);\n"
	    "  show prints the service's name and the three numbers the app offers;\n"
	    "  --pick is the number the login page shows (without it, approve asks on a\n"
	    "  terminal); open-link approves through the app link on the same phone and\n"
	    "  prints the return_url to open in that phone's browser;\n"
	    "  --org answers an organisation login for that 統一編號;\n"
	    "  --issod defaults to the address in the QR code or link; without --password\n"
	    "  the test identities' password for the account is used;\n"
	    "  ciba-list shows the counter requests (CIBA) waiting for the account's app\n"
	    "  (the agency's service, the binding message, the fields); ciba-approve and\n"
	    "  ciba-deny answer REQUEST, or the only one waiting; --decline leaves out an\n"
	    "  optional field (repeatable)\n");
	return 2;
}

/* The number the citizen reads on the page, asked on the terminal; -1
 * when there is no terminal or no valid answer. */
static int
tpapp_ask_pick(const json_t *details)
{
	char line[32];
	const json_t *v;
	size_t i;

	if (!isatty(STDIN_FILENO))
		return -1;
	fprintf(stderr, "%s\n", json_string_value(json_object_get(details, "service")) ?: "");
	fprintf(stderr, "Which number does the login page show?");
	json_array_foreach(json_object_get(details, "choices"), i, v)
	{
		fprintf(stderr, " %02d", (int)json_integer_value(v));
	}
	fprintf(stderr, ": ");
	if (fgets(line, sizeof(line), stdin) == NULL)
		return -1;
	line[strcspn(line, "\r\n")] = '\0';
	return tpapp_parse_pick(line);
}

/* The command line's state folder (malloc'd). */
static char *
tpapp_cli_state(const char *arg)
{
	const char *env = getenv("ISSO_SIM_STATE"), *home = getenv("HOME");

	if (arg != NULL)
		return xstrdup(arg);
	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	if (home != NULL && home[0] != '\0') {
		char *local = xasprintf("%s/.local", home),
		     *st = xasprintf("%s/.local/state", home);
		(void)mkdir(local, 0700);
		(void)mkdir(st, 0700);
		free(local);
		free(st);
		return xasprintf("%s/.local/state/isso-sim", home);
	}
	return xstrdup(".isso-sim");
}

/* Prints issod's reply with its status; 0 when status is ok, else 1. */
static int
tpapp_print(json_t *reply, const json_t *details, int status, int ok)
{
	if (details != NULL)
		json_object_set(reply, "service", json_object_get(details, "service"));
	json_object_set_new(reply, "status", json_integer(status));
	json_dumpf(reply, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	return status == ok ? 0 : 1;
}

/* ---- counter identification (CIBA): the app's list and answer ---- */

/* account's kept key for base, enrolled first with password when there
 * is none (*status_r and *reply_r are then the enrolment's when it
 * failed). */
static json_t *
tpapp_key_or_enrol(const char *dir, const char *base, const char *account, const char *password,
                   int *status_r, json_t **reply_r, const char **error_r)
{
	json_t *key = tpapp_key_load(dir, base, account);

	*reply_r = NULL;
	if (key != NULL)
		return key;
	if (password == NULL) {
		*error_r = "no device key for the account and no password to enrol one";
		return NULL;
	}
	if (tpapp_enrol(dir, base, account, password, NULL, status_r, reply_r, error_r) < 0 ||
	    *status_r != 201)
		return NULL;
	json_decref(*reply_r);
	*reply_r = NULL;
	key = tpapp_key_load(dir, base, account);
	if (key == NULL)
		*error_r = "cannot read the device key back";
	return key;
}

/* Signs claims with the kept key and posts {signature, device, …req} to
 * path. */
static int
tpapp_signed_post(const char *base, const char *path, const json_t *key, json_t *claims,
                  json_t *req, int *status_r, json_t **reply_r, const char **error_r)
{
	struct jose_keyset *ks = jose_keyset_new();
	char *jws = NULL;
	int ret = ISSO_ERR_IO;

	if (jose_keyset_add(ks, json_string_value(json_object_get(key, "jwk")), true, error_r) <
	        0 ||
	    jose_sign(ks, "ES256", NULL, claims, &jws) < 0) {
		*error_r = "cannot sign with the kept device key";
		goto out;
	}
	json_object_set(req, "device", json_object_get(key, "device"));
	json_object_set_new(req, "signature", json_string(jws));
	ret = tpapp_post(base, path, req, status_r, reply_r, error_r);
out:
	jose_keyset_free(ks);
	free(jws);
	return ret;
}

/* POST /app/v1/ciba/pending, signed with a fresh jti. */
static int
tpapp_ciba_list(const char *base, const json_t *key, int *status_r, json_t **reply_r,
                const char **error_r)
{
	unsigned char rnd[16];
	char jti[33];
	json_t *claims, *req = json_object();
	int ret;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		*error_r = "no randomness";
		json_decref(req);
		return ISSO_ERR_IO;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	claims = json_pack("{s:O, s:s, s:s, s:I}", "device", json_object_get(key, "device"),
	                   "action", "ciba_pending", "jti", jti, "iat", (json_int_t)time(NULL));
	ret = tpapp_signed_post(base, "/app/v1/ciba/pending", key, claims, req, status_r, reply_r,
	                        error_r);
	json_decref(claims);
	json_decref(req);
	return ret;
}

/* The app's answer to the pending request entry (from the list), with
 * the fields the citizen declined (NULL: none, and no "declined" sent,
 * as older apps answer) in the signed payload and the body alike. */
static int
tpapp_ciba_answer(const char *base, const json_t *key, const json_t *entry, const char *decision,
                  const json_t *declined, int *status_r, json_t **reply_r, const char **error_r)
{
	json_t *claims, *req;
	int ret;

	claims =
	    json_pack("{s:O, s:O, s:s, s:O, s:I}", "request", json_object_get(entry, "request"),
	              "device", json_object_get(key, "device"), "decision", decision, "nonce",
	              json_object_get(entry, "nonce"), "iat", (json_int_t)time(NULL));
	req = json_pack("{s:O, s:s}", "request", json_object_get(entry, "request"), "decision",
	                decision);
	if (declined != NULL && claims != NULL && req != NULL) {
		json_object_set_new(claims, "declined", json_deep_copy(declined));
		json_object_set_new(req, "declined", json_deep_copy(declined));
	}
	if (claims == NULL || req == NULL) {
		*error_r = "issod's list entry has no request or nonce";
		ret = ISSO_ERR_IO;
	} else {
		ret = tpapp_signed_post(base, "/app/v1/ciba/answer", key, claims, req, status_r,
		                        reply_r, error_r);
	}
	json_decref(claims);
	json_decref(req);
	return ret;
}

/* The app's side of a counter request (CIBA) for account at issod base:
 * action "ciba-list" lists the requests waiting for its app; "ciba-approve"
 * and "ciba-deny" answer request (or, when NULL, the only one waiting) as
 * the list shows it, declining the fields in declined (NULL: none).
 * Returns 0 with issod's status and reply (the answer
 * carries the request, service and binding message), or the app's own
 * refusal: 404 {"error": "no_such_request", requests} / 409 {"error":
 * "request_required", requests} (not exactly one waiting); < 0 with
 * *error_r when issod cannot be reached or the key cannot be kept. */
static int
tpapp_ciba_run(const char *action, const char *request, const json_t *declined, const char *state,
               const char *base, const char *account, const char *password, int *status_r,
               json_t **reply_r, const char **error_r)
{
	json_t *key = NULL, *list = NULL, *answer = NULL, *entry = NULL, *v;
	bool deny = strcmp(action, "ciba-deny") == 0;
	int ret;
	size_t i;

	*reply_r = NULL;
	key = tpapp_key_or_enrol(state, base, account, password, status_r, reply_r, error_r);
	if (key == NULL)
		return *reply_r != NULL ? 0 : ISSO_ERR_IO;
	ret = tpapp_ciba_list(base, key, status_r, &list, error_r);
	if (ret < 0)
		goto out;
	if (strcmp(action, "ciba-list") == 0 || *status_r != 200) {
		*reply_r = list;
		list = NULL;
		goto out;
	}
	json_array_foreach(json_object_get(list, "requests"), i, v)
	{
		if (request == NULL ? json_array_size(json_object_get(list, "requests")) == 1
		                    : strcmp(json_string_value(json_object_get(v, "request")) ?: "",
		                             request) == 0)
			entry = v;
	}
	if (entry == NULL) {
		*status_r = request != NULL ? 404 : 409;
		*reply_r = json_pack("{s:s, s:O}", "error",
		                     request != NULL ? "no_such_request" : "request_required",
		                     "requests", json_object_get(list, "requests"));
		goto out;
	}
	ret = tpapp_ciba_answer(base, key, entry, deny ? "deny" : "approve", declined, status_r,
	                        &answer, error_r);
	if (ret < 0)
		goto out;
	json_object_set(answer, "service", json_object_get(entry, "service"));
	json_object_set(answer, "binding_message", json_object_get(entry, "binding_message"));
	json_object_set(answer, "request", json_object_get(entry, "request"));
	*reply_r = answer;
	answer = NULL;
out:
	json_decref(answer);
	json_decref(list);
	json_decref(key);
	return ret;
}

/* POST /phone/tpapp/ciba-list|ciba-approve|ciba-deny {issod, account,
 * password?, request?, decline?}: tpapp_ciba_run's status and reply. */
static void
tpapp_ciba_handle(struct http_req *req, const char *action)
{
	size_t len = 0;
	const char *raw = http_body(req, &len), *account, *password, *request, *error = NULL;
	json_t *in = raw != NULL ? json_loadb(raw, len, 0, NULL) : NULL, *reply = NULL, *kept;
	json_t *decline, *v;
	char *base = NULL;
	int status = 0;
	bool strings;
	size_t i;

	account = json_string_value(json_object_get(in, "account"));
	password = json_string_value(json_object_get(in, "password"));
	request = json_string_value(json_object_get(in, "request"));
	base = tpapp_base(json_string_value(json_object_get(in, "issod")));
	if (account == NULL || base == NULL) {
		sim_send_error(req, 400, "issod_and_account_required");
		goto out;
	}
	/* decline: strings, for an approval; issod judges the words. */
	decline = json_object_get(in, "decline");
	strings = json_is_array(decline);
	json_array_foreach(decline, i, v)
	{
		strings = strings && json_is_string(v);
	}
	if (decline != NULL && (!strings || strcmp(action, "ciba-approve") != 0)) {
		sim_send_error(req, 400, "decline_takes_field_names_for_ciba_approve");
		goto out;
	}
	kept = tpapp_key_load(tpapp_state, base, account);
	if (password == NULL && kept == NULL)
		password = tpapp_password_of(tpapp_identities, account);
	if (password == NULL && kept == NULL) {
		sim_send_error(req, 404, "unknown_account");
		goto out;
	}
	json_decref(kept);
	if (tpapp_ciba_run(action, request, decline, tpapp_state, base, account, password, &status,
	                   &reply, &error) < 0 ||
	    reply == NULL) {
		sim_send_error(req, 502, "issod_unreachable");
		goto out;
	}
	http_send_json(req, status, reply);
	reply = NULL;
out:
	free(base);
	json_decref(reply);
	json_decref(in);
}

static void
tpapp_ciba_list_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_ciba_handle(req, "ciba-list");
}

static void
tpapp_ciba_approve_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_ciba_handle(req, "ciba-approve");
}

static void
tpapp_ciba_deny_handler(struct http_req *req, void *ctx)
{
	(void)ctx;
	tpapp_ciba_handle(req, "ciba-deny");
}

/* isso-sim phone tpapp ciba-list|ciba-approve|ciba-deny [REQUEST]
 * --account A --issod URL: prints tpapp_ciba_run's reply; exit 0 when
 * issod took it. */
static int
tpapp_ciba_cmd(const char *action, const char *request, const json_t *declined, const char *state,
               const char *base, const char *account, const char *password)
{
	json_t *reply = NULL;
	const char *error = NULL;
	int status = 0, ret;

	if (tpapp_ciba_run(action, request, declined, state, base, account, password, &status,
	                   &reply, &error) < 0 ||
	    reply == NULL) {
		fprintf(stderr, "isso-sim: %s\n", error != NULL ? error : "no reply");
		json_decref(reply);
		return 2;
	}
	ret = tpapp_print(reply, NULL, status, 200);
	json_decref(reply);
	return ret;
}

int
sim_tpapp_phone_cmd(int argc, char **argv)
{
	const char *action = NULL, *text = NULL, *account = NULL, *password = NULL;
	const char *issod = NULL, *ids_path = TPAPP_DEFAULT_IDENTITIES, *error = NULL, *org = NULL;
	const char *pick_arg = NULL, *state_arg = NULL, *name = NULL;
	json_t *ids = NULL, *reply = NULL, *details = NULL, *declined = NULL;
	struct tpapp_code c = {0};
	char *state = NULL, *base = NULL;
	int status = 0, ret = 2, pick = -1;
	bool show, link, enrol;

	/* argv[0] is "tpapp" */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--account") == 0 && i + 1 < argc)
			account = argv[++i];
		else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc)
			password = argv[++i];
		else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
			org = argv[++i];
		else if (strcmp(argv[i], "--pick") == 0 && i + 1 < argc)
			pick_arg = argv[++i];
		else if (strcmp(argv[i], "--issod") == 0 && i + 1 < argc)
			issod = argv[++i];
		else if (strcmp(argv[i], "--identities") == 0 && i + 1 < argc)
			ids_path = argv[++i];
		else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state_arg = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--decline") == 0 && i + 1 < argc) {
			if (declined == NULL)
				declined = json_array();
			json_array_append_new(declined, json_string(argv[++i]));
		} else if (argv[i][0] == '-') {
			ret = tpapp_usage();
			goto out;
		} else if (action == NULL)
			action = argv[i];
		else if (text == NULL)
			text = argv[i];
		else {
			ret = tpapp_usage();
			goto out;
		}
	}
	if (action == NULL) {
		ret = tpapp_usage();
		goto out;
	}
	if (strncmp(action, "ciba-", 5) == 0) {
		if ((strcmp(action, "ciba-list") != 0 && strcmp(action, "ciba-approve") != 0 &&
		     strcmp(action, "ciba-deny") != 0) ||
		    account == NULL || issod == NULL || org != NULL || pick_arg != NULL ||
		    name != NULL || (text != NULL && strcmp(action, "ciba-list") == 0) ||
		    (declined != NULL && strcmp(action, "ciba-approve") != 0)) {
			ret = tpapp_usage();
			goto out;
		}
		if ((base = tpapp_base(issod)) == NULL) {
			fprintf(stderr, "isso-sim: --issod takes issod's http(s) address\n");
			ret = 2;
			goto out;
		}
		state = tpapp_cli_state(state_arg);
		if (password == NULL) {
			json_t *kept = tpapp_key_load(state, base, account);
			if (kept == NULL) {
				ids = json_load_file(ids_path, 0, NULL);
				password = tpapp_password_of(ids, account);
			}
			json_decref(kept);
		}
		curl_global_init(CURL_GLOBAL_DEFAULT);
		ret = tpapp_ciba_cmd(action, text, declined, state, base, account, password);
		goto out;
	}
	enrol = strcmp(action, "enrol") == 0;
	if (enrol ? (text != NULL || account == NULL || issod == NULL)
	          : (text == NULL ||
	             (strcmp(action, "show") != 0 && strcmp(action, "approve") != 0 &&
	              strcmp(action, "deny") != 0 && strcmp(action, "open-link") != 0))) {
		ret = tpapp_usage();
		goto out;
	}
	show = strcmp(action, "show") == 0;
	link = strcmp(action, "open-link") == 0;
	if ((!show && account == NULL) || (pick_arg != NULL && strcmp(action, "approve") != 0) ||
	    (name != NULL && !enrol) || declined != NULL) {
		ret = tpapp_usage();
		goto out;
	}
	if (pick_arg != NULL && (pick = tpapp_parse_pick(pick_arg)) < 0) {
		fprintf(stderr, "isso-sim: --pick takes the two digits the page shows\n");
		goto out;
	}
	state = tpapp_cli_state(state_arg);
	if (!enrol && tpapp_code_parse(text, link, issod, &c, &error) != 0) {
		fprintf(stderr, "isso-sim: %s\n", error);
		goto out;
	}
	if (enrol && (base = tpapp_base(issod)) == NULL) {
		fprintf(stderr, "isso-sim: --issod takes issod's http(s) address\n");
		goto out;
	}
	if (!show && password == NULL) {
		json_t *kept = enrol ? NULL : tpapp_key_load(state, c.base, account);
		if (kept == NULL) {
			ids = json_load_file(ids_path, 0, NULL);
			password = tpapp_password_of(ids, account);
			if (password == NULL) {
				fprintf(stderr,
				        "isso-sim: no device key and no password for %s in %s: "
				        "give --password\n",
				        account, ids_path);
				goto out;
			}
		}
		json_decref(kept);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (enrol) {
		if (tpapp_enrol(state, base, account, password, name, &status, &reply, &error) !=
		    0) {
			fprintf(stderr, "isso-sim: %s\n", error);
			goto out;
		}
		ret = tpapp_print(reply, NULL, status, 201);
		goto out;
	}
	/* Like the real app: first what the login is for. */
	if (tpapp_details(&c, &status, &details, &error) != 0) {
		fprintf(stderr, "isso-sim: %s\n", error);
		goto out;
	}
	if (show || status != 200) {
		json_object_set_new(details, "status", json_integer(status));
		json_dumpf(details, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		ret = status == 200 ? 0 : 1;
		goto out;
	}
	if (strcmp(action, "approve") == 0) {
		if (pick < 0)
			pick = tpapp_ask_pick(details);
		if (pick < 0) {
			fprintf(stderr,
			        "isso-sim: give --pick NN: the number the login page shows\n");
			json_dumpf(details, stderr, JSON_INDENT(2));
			fputc('\n', stderr);
			goto out;
		}
		if (!tpapp_is_choice(details, pick)) {
			fprintf(stderr, "isso-sim: %02d is not one of the app's choices\n", pick);
			goto out;
		}
	}
	if (tpapp_answer(&c, state, account, password, org,
	                 strcmp(action, "deny") == 0 ? "deny" : "approve", pick, details, &status,
	                 &reply, &error) != 0) {
		fprintf(stderr, "isso-sim: %s\n", error);
		goto out;
	}
	ret = tpapp_print(reply, details, status, 200);
out:
	tpapp_code_free(&c);
	json_decref(details);
	json_decref(reply);
	json_decref(ids);
	json_decref(declined);
	free(state);
	free(base);
	return ret;
}
