/* Method taipeipass (台北通會員帳號): password login of TaipeiPass members,
 * with registration and password reset by SMS code. */
#include <stdlib.h>
#include <string.h>

#include "auth/app.h"
#include "auth/claims.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/otp.h"
#include "auth/page.h"
#include "auth/person.h"
#include "http/csrf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define PENDING_TTL 900

static const char *const amr_pwd[] = {"pwd", NULL};
static const char *const bullets[] = {"tp.bullet1", "tp.bullet2", "tp.bullet3", NULL};

static void handle(struct isso_app *app, struct http_req *req, const char *step);
static void routes(struct isso_app *app, struct http_server *srv);

const struct method method_taipeipass = {
    .id = "taipeipass",
    .loa = LOA_LOW,
    .amr = amr_pwd,
    .vouches = CLAIM_UUID | CLAIM_NAME | CLAIM_ID_NUMBER | CLAIM_PHONE | CLAIM_EMAIL |
               CLAIM_BIRTHDATE | CLAIM_ADDRESS,
    .linked_member_data = true,
    .title_key = "tp.title",
    .bullet_keys = bullets,
    .register_path = "/taipeipass/register",
    .handle = handle,
    .routes = routes,
};

/* Too many attempts from one address in the last minute? */
static bool
addr_limited(struct isso_app *app, struct http_req *req, const char *what)
{
	char key[128];
	int count = 0;

	snprintf(key, sizeof(key), "%s:%s", what, http_remote_addr(req));
	if (store_rate_hit(app->store, key, 60, app_now(), &count) < 0)
		return true;
	return count > app->cfg->security.ip_rate_per_min;
}

static void
login_page(struct isso_app *app, struct http_req *req, const char *id, int status,
           const char *error_key, const char *account)
{
	json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:s}", "txn", id, "csrf",
	                        csrf_token(req, &app->secrets, "tp-login"), "register_url",
	                        flow_url(req, "/taipeipass/register", id), "forgot_url",
	                        flow_url(req, "/taipeipass/forgot", id), "back_url",
	                        flow_url(req, "/login", id));

	if (error_key != NULL)
		json_object_set_new(ctx, "error", json_string(page_text(app, req, error_key)));
	if (account != NULL)
		json_object_set_new(ctx, "account", json_string(account));
	page_render(app, req, status, "login-taipeipass", "tp.login_title", ctx);
}

static void
handle(struct isso_app *app, struct http_req *req, const char *step)
{
	const char *id = NULL, *account, *password;
	json_t *txn;
	bool ok = false, locked = false;
	char uuid[37];
	struct flow_auth auth;

	if (step[0] != '\0') {
		page_error(app, req, 404, "error.not_found", "error.not_found.message", "/");
		return;
	}
	txn = flow_txn_load(app, req, &id);
	if (txn == NULL)
		return;
	if (http_method(req) != HTTP_POST) {
		const char *hint = json_string_value(json_object_get(txn, "login_hint"));
		login_page(app, req, id, 200, NULL, hint);
		goto out;
	}
	if (!csrf_check(req, &app->secrets, "tp-login")) {
		login_page(app, req, id, 403, "error.csrf", NULL);
		goto out;
	}
	account = http_form(req, "account");
	password = http_form(req, "password");
	if (account == NULL || account[0] == '\0' || password == NULL || password[0] == '\0') {
		login_page(app, req, id, 400, "tp.missing", account);
		goto out;
	}
	if (addr_limited(app, req, "login")) {
		login_page(app, req, id, 429, "error.rate_limited", account);
		goto out;
	}
	if (member_authenticate(app, account, password, &ok, &locked, uuid) < 0 && !locked) {
		login_page(app, req, id, 400, "tp.bad_login", account);
		goto out;
	}
	if (locked) {
		/* The same words whether or not the account exists. */
		login_page(app, req, id, 429, "tp.locked", account);
		goto out;
	}
	if (!ok) {
		login_page(app, req, id, 401, "tp.bad_login", account);
		goto out;
	}
	memset(&auth, 0, sizeof(auth));
	auth.uuid = uuid;
	auth.method = &method_taipeipass;
	auth.loa = LOA_LOW;
	flow_complete(app, req, id, txn, &auth);
out:
	json_decref(txn);
}

/* ---- registration ---- */

/* The t parameter, kept through registration so the citizen returns to
 * the login they came from. Only a well-formed value is echoed. */
static const char *
keep_txn(struct http_req *req)
{
	const char *t = http_param(req, "t");

	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return t != NULL && strlen(t) == 43 && strspn(t, b64url) == 43 ? t : NULL;
}

static void
register_page(struct isso_app *app, struct http_req *req, int status, const char *error_key,
              json_t *fields)
{
	json_t *ctx = fields != NULL ? json_deep_copy(fields) : json_object();
	const char *t = keep_txn(req);

	json_object_set_new(ctx, "csrf", json_string(csrf_token(req, &app->secrets, "tp-reg")));
	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	if (error_key != NULL)
		json_object_set_new(ctx, "error", json_string(page_text(app, req, error_key)));
	page_render(app, req, status, "register", "tp.register_title", ctx);
}

static void
verify_page(struct isso_app *app, struct http_req *req, const char *tmpl, const char *purpose,
            const char *pending, const char *phone, int status, const char *error_key)
{
	char masked[32];
	json_t *ctx =
	    json_pack("{s:s, s:s, s:s, s:i}", "csrf", csrf_token(req, &app->secrets, purpose),
	              "pending", pending, "phone_masked", log_mask(phone, masked), "cooldown",
	              otp_cooldown_left(app, phone));
	const char *t = keep_txn(req);

	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	if (error_key != NULL)
		json_object_set_new(ctx, "error", json_string(page_text(app, req, error_key)));
	page_render(app, req, status, tmpl, "otp.title", ctx);
}

static const char *
otp_error_key(int ret, int wait)
{
	if (ret == ISSO_ERR_LIMIT)
		return wait > 0 ? "otp.cooldown" : "otp.hourly_limit";
	return "otp.sms_failed";
}

static void
register_start(struct isso_app *app, struct http_req *req)
{
	const char *account = http_form(req, "account");
	const char *password = http_form(req, "password");
	const char *password2 = http_form(req, "password2");
	const char *phone_in = http_form(req, "phone");
	const char *email = http_form(req, "email");
	const char *name = http_form(req, "name");
	const char *problem = NULL;
	struct store_member *other = NULL;
	char phone[11], pending[44], otp_id[44], uuid[37];
	char *sealed = NULL;
	json_t *echo, *data = NULL;
	int wait = 0, ret;

	echo = json_pack("{s:s, s:s, s:s, s:s}", "account", account ?: "", "phone", phone_in ?: "",
	                 "email", email ?: "", "name", name ?: "");
	if (account == NULL || password == NULL || password2 == NULL || phone_in == NULL) {
		register_page(app, req, 400, "register.missing", echo);
		goto out;
	}
	if (http_form(req, "agree") == NULL) {
		register_page(app, req, 400, "register.must_agree", echo);
		goto out;
	}
	if (!phone_normalize(phone_in, phone)) {
		register_page(app, req, 400, "register.bad_phone", echo);
		goto out;
	}
	if (strcmp(password, password2) != 0) {
		register_page(app, req, 400, "password.mismatch", echo);
		goto out;
	}
	{
		/* Every field is checked before an SMS is spent on it. */
		struct member_new m = {.account = account,
		                       .password = password,
		                       .phone = phone,
		                       .email = email,
		                       .name = name};
		if ((problem = member_check(&m)) != NULL) {
			register_page(app, req, 400, problem, echo);
			goto out;
		}
	}
	if (addr_limited(app, req, "register")) {
		register_page(app, req, 429, "error.rate_limited", echo);
		goto out;
	}
	{
		char lower[40];
		size_t n = strlen(account);
		if (n >= sizeof(lower))
			n = sizeof(lower) - 1;
		for (size_t i = 0; i < n; i++)
			lower[i] = (char)(account[i] >= 'A' && account[i] <= 'Z' ? account[i] + 32
			                                                         : account[i]);
		lower[n] = '\0';
		if (store_member_find(app->store, lower, NULL, NULL, &other) == 0 &&
		    other != NULL) {
			register_page(app, req, 409, "register.account_taken", echo);
			goto out;
		}
	}
	/* A number that already has an account gets a notice instead of a
	 * code, so the page tells a stranger nothing. */
	if (member_find_by_phone(app, phone, uuid) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	ret = otp_send(app, req, "register", phone, uuid[0] != '\0' ? "otp.sms_registered" : NULL,
	               OTP_DELIVER_NOW, otp_id, &wait);
	if (ret < 0) {
		register_page(app, req, ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait),
		              echo);
		goto out;
	}
	if (secret_seal(&app->secrets, password, strlen(password), &sealed) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	secret_token(32, pending);
	data =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "account", account, "phone", phone, "email",
	              email ?: "", "name", name ?: "", "password", sealed, "otp", otp_id);
	if (store_eph_put(app->store, "reg", pending, data, app_now() + PENDING_TTL) < 0) {
		register_page(app, req, 503, "error.unavailable", echo);
		goto out;
	}
	verify_page(app, req, "register-verify", "tp-reg", pending, phone, 200, NULL);
out:
	json_decref(echo);
	store_member_free(other);
	free(sealed);
	json_decref(data);
}

/* Loads a pending registration or reset named by the "pending" field. */
static json_t *
pending_load(struct isso_app *app, struct http_req *req, const char *kind, const char **id_r)
{
	const char *id = http_form(req, "pending");
	json_t *data = NULL;

	*id_r = NULL;
	if (id == NULL || strlen(id) != 43)
		return NULL;
	if (store_eph_get(app->store, kind, id, app_now(), &data, NULL) < 0)
		return NULL;
	*id_r = id;
	return data;
}

static const char *
otp_result_key(enum otp_result r)
{
	switch (r) {
	case OTP_WRONG:
		return "otp.wrong";
	case OTP_EXHAUSTED:
		return "otp.exhausted";
	default:
		return "otp.expired";
	}
}

static void
done_page(struct isso_app *app, struct http_req *req, const char *title_key, const char *text_key)
{
	const char *t = keep_txn(req);
	json_t *ctx = json_pack("{s:s}", "message", page_text(app, req, text_key));

	json_object_set_new(ctx, "next_url",
	                    json_string(t != NULL ? flow_url(req, "/login/taipeipass", t) : "/"));
	page_render(app, req, 200, "done", title_key, ctx);
}

/* A reset's SMS: queued for a member (its timing and any gateway failure
 * must look like the no-account case), sent to nobody otherwise. */
static enum otp_delivery
reset_delivery(json_t *data)
{
	return json_is_true(json_object_get(data, "no_account")) ? OTP_DELIVER_NONE
	                                                         : OTP_DELIVER_QUEUED;
}

/* Resend for a pending registration or reset (after the cool-down). */
static void
resend(struct isso_app *app, struct http_req *req, const char *kind, const char *purpose,
       const char *tmpl, const char *pending, json_t *data)
{
	const char *phone = json_string_value(json_object_get(data, "phone"));
	const char *notice = NULL;
	char otp_id[44], uuid[37];
	int wait = 0, ret;

	if (strcmp(kind, "reg") == 0) {
		if (member_find_by_phone(app, phone, uuid) == 0 && uuid[0] != '\0')
			notice = "otp.sms_registered";
		ret = otp_send(app, req, "register", phone, notice, OTP_DELIVER_NOW, otp_id, &wait);
	} else {
		ret = otp_send(app, req, "reset", phone, NULL, reset_delivery(data), otp_id, &wait);
	}
	if (ret < 0) {
		verify_page(app, req, tmpl, purpose, pending, phone,
		            ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait));
		return;
	}
	json_object_set_new(data, "otp", json_string(otp_id));
	bool found = false;
	(void)store_eph_update(app->store, kind, pending, data, app_now(), &found);
	verify_page(app, req, tmpl, purpose, pending, phone, 200, "otp.resent");
}

static void
register_verify(struct isso_app *app, struct http_req *req)
{
	const char *pending = NULL;
	json_t *data = pending_load(app, req, "reg", &pending);
	const char *code = http_form(req, "code");
	const char *phone, *error_key = NULL;
	char *password = NULL, uuid[37];
	enum otp_result r;
	int left = 0, ret;
	struct member_new m;

	if (data == NULL) {
		register_page(app, req, 400, "otp.expired", NULL);
		goto out;
	}
	phone = json_string_value(json_object_get(data, "phone"));
	if (http_form(req, "resend") != NULL) {
		resend(app, req, "reg", "tp-reg", "register-verify", pending, data);
		goto out;
	}
	if (code == NULL || otp_check(app, json_string_value(json_object_get(data, "otp")),
	                              "register", phone, code, &r, &left) < 0) {
		verify_page(app, req, "register-verify", "tp-reg", pending, phone, 400,
		            "otp.wrong");
		goto out;
	}
	if (r != OTP_OK) {
		if (r == OTP_WRONG) {
			verify_page(app, req, "register-verify", "tp-reg", pending, phone, 400,
			            otp_result_key(r));
		} else {
			(void)store_eph_delete(app->store, "reg", pending);
			register_page(app, req, 400, otp_result_key(r), NULL);
		}
		goto out;
	}
	(void)store_eph_delete(app->store, "reg", pending);
	if (secret_open(&app->secrets, json_string_value(json_object_get(data, "password")),
	                &password) < 0) {
		register_page(app, req, 400, "otp.expired", NULL);
		goto out;
	}
	memset(&m, 0, sizeof(m));
	m.account = json_string_value(json_object_get(data, "account"));
	m.phone = phone;
	m.email = json_string_value(json_object_get(data, "email"));
	m.name = json_string_value(json_object_get(data, "name"));
	m.password = password;
	m.phone_verified = true; /* by the code just checked */
	ret = member_create(app, &m, uuid, &error_key);
	if (ret < 0) {
		/* Taken by a concurrent registration, or a field that the
		 * first page could not check (e-mail in use). */
		register_page(app, req, ret == ISSO_ERR_CONFLICT ? 409 : 400,
		              error_key != NULL ? error_key : "error.unavailable", NULL);
		goto out;
	}
	store_audit_append(app->store, app_now(), "member_registered",
	                   json_pack("{s:s}", "uuid", uuid));
	done_page(app, req, "tp.register_done_title", "tp.register_done");
out:
	xfree_secret(password);
	json_decref(data);
}

static void
register_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	if (http_method(req) != HTTP_POST) {
		register_page(app, req, 200, NULL, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, "tp-reg")) {
		register_page(app, req, 403, "error.csrf", NULL);
		return;
	}
	if (http_form(req, "pending") != NULL)
		register_verify(app, req);
	else
		register_start(app, req);
}

/* ---- forgotten password ---- */

static void
forgot_page(struct isso_app *app, struct http_req *req, int status, const char *error_key)
{
	const char *t = keep_txn(req);
	json_t *ctx = json_pack("{s:s}", "csrf", csrf_token(req, &app->secrets, "tp-forgot"));

	if (t != NULL)
		json_object_set_new(ctx, "txn", json_string(t));
	if (error_key != NULL)
		json_object_set_new(ctx, "error", json_string(page_text(app, req, error_key)));
	page_render(app, req, status, "forgot", "tp.forgot_title", ctx);
}

static void
forgot_start(struct isso_app *app, struct http_req *req)
{
	const char *phone_in = http_form(req, "phone");
	char phone[11], uuid[37], otp_id[44], pending[44];
	json_t *data = NULL;
	int wait = 0, ret;

	if (phone_in == NULL || !phone_normalize(phone_in, phone)) {
		forgot_page(app, req, 400, "register.bad_phone");
		return;
	}
	if (addr_limited(app, req, "forgot")) {
		forgot_page(app, req, 429, "error.rate_limited");
		return;
	}
	if (member_find_by_phone(app, phone, uuid) < 0) {
		forgot_page(app, req, 503, "error.unavailable");
		return;
	}
	data = json_pack("{s:s, s:b}", "phone", phone, "no_account", uuid[0] == '\0');
	ret = otp_send(app, req, "reset", phone, NULL, reset_delivery(data), otp_id, &wait);
	if (ret < 0) {
		json_decref(data);
		forgot_page(app, req, ret == ISSO_ERR_LIMIT ? 429 : 503, otp_error_key(ret, wait));
		return;
	}
	secret_token(32, pending);
	json_object_set_new(data, "otp", json_string(otp_id));
	if (store_eph_put(app->store, "reset", pending, data, app_now() + PENDING_TTL) < 0) {
		forgot_page(app, req, 503, "error.unavailable");
		json_decref(data);
		return;
	}
	json_decref(data);
	verify_page(app, req, "forgot-verify", "tp-forgot", pending, phone, 200, NULL);
}

static void
forgot_verify(struct isso_app *app, struct http_req *req)
{
	const char *pending = NULL;
	json_t *data = pending_load(app, req, "reset", &pending);
	const char *code = http_form(req, "code");
	const char *password = http_form(req, "password");
	const char *password2 = http_form(req, "password2");
	const char *phone, *problem;
	char uuid[37];
	enum otp_result r = OTP_EXPIRED;
	int left = 0;

	if (data == NULL) {
		forgot_page(app, req, 400, "otp.expired");
		goto out;
	}
	phone = json_string_value(json_object_get(data, "phone"));
	if (http_form(req, "resend") != NULL) {
		resend(app, req, "reset", "tp-forgot", "forgot-verify", pending, data);
		goto out;
	}
	if (password == NULL || password2 == NULL || strcmp(password, password2) != 0) {
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, phone, 400,
		            "password.mismatch");
		goto out;
	}
	if ((problem = member_password_problem(NULL, password)) != NULL) {
		verify_page(app, req, "forgot-verify", "tp-forgot", pending, phone, 400, problem);
		goto out;
	}
	if (code == NULL ||
	    otp_check(app, json_string_value(json_object_get(data, "otp")), "reset", phone, code,
	              &r, &left) < 0 ||
	    r != OTP_OK) {
		if (r == OTP_EXHAUSTED || r == OTP_EXPIRED) {
			(void)store_eph_delete(app->store, "reset", pending);
			forgot_page(app, req, 400, otp_result_key(r));
		} else {
			verify_page(app, req, "forgot-verify", "tp-forgot", pending, phone, 400,
			            "otp.wrong");
		}
		goto out;
	}
	(void)store_eph_delete(app->store, "reset", pending);
	if (member_find_by_phone(app, phone, uuid) < 0 || uuid[0] == '\0' ||
	    member_set_password(app, uuid, password) < 0) {
		forgot_page(app, req, 400, "otp.expired");
		goto out;
	}
	/* Whoever held the old password loses what it gave them. */
	(void)store_token_revoke_person(app->store, uuid);
	(void)flow_sessions_end_person(app, uuid);
	store_audit_append(app->store, app_now(), "password_reset",
	                   json_pack("{s:s}", "uuid", uuid));
	done_page(app, req, "tp.reset_done_title", "tp.reset_done");
out:
	json_decref(data);
}

static void
forgot_route(struct http_req *req, void *ctx)
{
	struct isso_app *app = ctx;

	if (http_method(req) != HTTP_POST) {
		forgot_page(app, req, 200, NULL);
		return;
	}
	if (!csrf_check(req, &app->secrets, "tp-forgot")) {
		forgot_page(app, req, 403, "error.csrf");
		return;
	}
	if (http_form(req, "pending") != NULL)
		forgot_verify(app, req);
	else
		forgot_start(app, req);
}

static void
routes(struct isso_app *app, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/taipeipass/register", register_route, app);
	http_route(srv, HTTP_GET | HTTP_POST, "/taipeipass/forgot", forgot_route, app);
}
