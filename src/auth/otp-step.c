/* The shared SMS-code step of the login methods. */
#include <string.h>

#include "auth/app.h"
#include "auth/flow.h"
#include "auth/method.h"
#include "auth/otp-step.h"
#include "auth/otp.h"
#include "auth/page.h"
#include "http/csrf.h"
#include "lib/idnum.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* The page of the step. phone: the number to show in its field (what was
 * typed, else the number the code went to, else prefill). error_key, if
 * any, is about field ("phone", "code") or, with field NULL, the step. */
static void
show(struct isso_app *app, struct http_req *req, const char *txn_id, json_t *txn,
     const struct otp_step_view *view, const char *phone, int status, const char *field,
     const char *error_key)
{
	json_t *state = json_object_get(txn, "otp_step");
	const char *sent_to = json_string_value(json_object_get(state, "phone"));
	int64_t sent_at = json_integer_value(json_object_get(state, "at"));
	char masked[32];
	json_t *ctx;

	ctx = json_pack("{s:s, s:s, s:s, s:o, s:s}", "txn", txn_id, "csrf",
	                csrf_token(req, &app->secrets, "otp-step"), "action", http_path(req),
	                "steps", method_steps(app, req, view->step_keys, view->current), "heading",
	                page_text(app, req, view->title_key));
	if (phone == NULL)
		phone = sent_to;
	json_object_set_new(ctx, "phone", json_string(phone != NULL ? phone : ""));
	if (view->back_url != NULL)
		json_object_set_new(ctx, "back_url", json_string(view->back_url));
	if (sent_to != NULL) {
		int left = otp_cooldown_left(app, sent_to);
		int64_t valid = sent_at > 0 ? sent_at + app->cfg->security.otp_ttl - app_now() : 0;
		json_object_set_new(ctx, "sent", json_true());
		json_object_set_new(ctx, "phone_masked", json_string(log_mask(sent_to, masked)));
		json_object_set_new(ctx, "cooldown", json_integer(left));
		if (left > 0)
			json_object_set_new(ctx, "cooling", json_true());
		if (valid > 0)
			json_object_set_new(ctx, "code_seconds", json_integer(valid));
	}
	if (error_key != NULL && field != NULL)
		page_field_error(app, req, ctx, field, error_key);
	else if (error_key != NULL)
		page_form_error(app, req, ctx, error_key, NULL, NULL);
	json_object_set_new(ctx, "script", json_true());
	page_render(app, req, status, "otp-step", view->title_key, ctx);
}

static const char *
send_error_key(int ret, int wait)
{
	if (ret == ISSO_ERR_LIMIT)
		return wait > 0 ? "otp.cooldown" : "otp.hourly_limit";
	return "otp.sms_failed";
}

bool
otp_step(struct isso_app *app, struct http_req *req, const char *txn_id, json_t *txn,
         const struct method *m, const struct otp_step_view *view, const char *prefill,
         char phone_r[11])
{
	json_t *state = json_object_get(txn, "otp_step");
	const char *action, *given, *code, *purpose;
	char phone[11], otp_id[44];
	enum otp_result r = OTP_EXPIRED;
	int wait = 0, left = 0, ret;

	phone_r[0] = '\0';
	purpose = m->id;
	if (http_method(req) != HTTP_POST) {
		show(app, req, txn_id, txn, view, state != NULL ? NULL : prefill, 200, NULL, NULL);
		return false;
	}
	if (!csrf_check(req, &app->secrets, "otp-step")) {
		show(app, req, txn_id, txn, view, state != NULL ? NULL : prefill, 403, NULL,
		     "error.csrf");
		return false;
	}
	action = http_form(req, "action");
	if (action != NULL && strcmp(action, "send") == 0) {
		given = http_form(req, "phone");
		if (given == NULL || strlen(given) > 16 || !phone_normalize(given, phone)) {
			show(app, req, txn_id, txn, view,
			     given != NULL && strlen(given) <= 16 ? given : NULL, 400, "phone",
			     "register.bad_phone");
			return false;
		}
		ret = otp_send(app, req, purpose, phone, NULL, OTP_DELIVER_NOW, otp_id, &wait);
		if (ret < 0) {
			show(app, req, txn_id, txn, view, phone, ret == ISSO_ERR_LIMIT ? 429 : 503,
			     NULL, send_error_key(ret, wait));
			return false;
		}
		json_object_set_new(txn, "otp_step",
		                    json_pack("{s:s, s:s, s:I}", "phone", phone, "id", otp_id, "at",
		                              (json_int_t)app_now()));
		if (flow_txn_save(app, txn_id, txn) < 0) {
			page_error(app, req, 400, "error.txn_title", "error.txn_expired", NULL);
			return false;
		}
		/* Post/redirect/get: a reload does not send another SMS. */
		http_redirect(req, 303, flow_url(req, http_path(req), txn_id));
		return false;
	}
	code = http_form(req, "code");
	if (state == NULL || code == NULL) {
		show(app, req, txn_id, txn, view, NULL, 400, state == NULL ? "phone" : "code",
		     state == NULL ? "otp.send_first" : "otp.code_missing");
		return false;
	}
	memcpy(phone, json_string_value(json_object_get(state, "phone")) ?: "", sizeof(phone));
	phone[sizeof(phone) - 1] = '\0';
	ret = otp_check(app, json_string_value(json_object_get(state, "id")), purpose, phone, code,
	                &r, &left);
	if (ret == 0 && r == OTP_OK) {
		json_object_del(txn, "otp_step");
		memcpy(phone_r, phone, sizeof(phone));
		return true;
	}
	if (ret == 0 && r == OTP_WRONG) {
		show(app, req, txn_id, txn, view, phone, 400, "code", "otp.wrong");
		return false;
	}
	/* Used up or expired: start again from the number. */
	json_object_del(txn, "otp_step");
	(void)flow_txn_save(app, txn_id, txn);
	show(app, req, txn_id, txn, view, phone, 400, "phone",
	     r == OTP_EXHAUSTED ? "otp.exhausted_step" : "otp.expired_step");
	return false;
}

void
otp_step_complete(struct isso_app *app, struct http_req *req, const char *txn_id, json_t *txn,
                  const struct method *m, const struct otp_step_view *view, json_t *st,
                  const char *uuid, enum loa loa)
{
	struct flow_auth auth;
	char phone[11], *idn = NULL, *name = NULL;

	if (!otp_step(app, req, txn_id, txn, m, view, NULL, phone))
		return;
	idn = method_state_open(app, st, "id");
	if (idn == NULL) {
		page_error(app, req, 503, "error.unavailable", "error.unavailable.message", NULL);
		return;
	}
	memset(&auth, 0, sizeof(auth));
	auth.uuid = uuid;
	auth.method = m;
	auth.loa = loa;
	auth.phone = phone;
	auth.attrs = json_pack("{s:s}", "id_number", idn);
	name = method_state_open(app, st, "name");
	if (name != NULL)
		json_object_set_new(auth.attrs, "name", json_string(name));
	flow_complete(app, req, txn_id, txn, &auth);
	json_decref(auth.attrs);
	xfree_secret(idn);
	if (name != NULL)
		xfree_secret(name);
}
