/* PKCS#11 for the agent: loading, slot listing, signing on the MOICA-like
 * token, and the NHI token's basic data, random and signatures. Every
 * public function takes the module's mutex for its whole duration, so one
 * card operation (open, login, sign, logout, close) never interleaves
 * with another. Object counts and sizes read from the module are capped. */
#include "cardagent/p11.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "cardagent/agent.h"
#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define P11_MAX_SLOTS   64
#define P11_MAX_OBJECTS 16
#define P11_MAX_CERT    (16 * 1024)
#define P11_MAX_ATTR    256
#define P11_MAX_SIG     1024
#define P11_NHI_PREFIX  "NHI "

struct p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	pthread_mutex_t lock;
	char manufacturer[33];
	char description[33];
};

int
p11_tries_left(unsigned long flags)
{
	if (flags & CKF_USER_PIN_LOCKED)
		return 0;
	if (flags & CKF_USER_PIN_FINAL_TRY)
		return 1;
	if (flags & CKF_USER_PIN_COUNT_LOW)
		return 2;
	return 3;
}

static void
st_set(struct p11_status *st, int rc, CK_RV rv)
{
	st->rc = rc;
	st->rv = rv;
}

/* The agent's code for a failed call on a card that was there when the
 * operation began. */
static int
rv_to_rc(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return RC_OK;
	case CKR_PIN_INCORRECT:
		return RC_PIN_INCORRECT;
	case CKR_PIN_LOCKED:
		return RC_PIN_LOCKED;
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_INVALID:
		return RC_PIN_FORMAT;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return RC_CARD_REMOVED;
	case CKR_SLOT_ID_INVALID:
		return RC_NO_READER;
	default:
		return RC_CARD_ERROR;
	}
}

/* A blank-padded PKCS#11 text field as a C string: trailing blanks and NULs
 * cut, and anything that is not valid UTF-8 made ASCII ('?'). */
static void
p11_text(const CK_UTF8CHAR *s, size_t n, char *out, size_t out_size)
{
	size_t i;

	if (n >= out_size)
		n = out_size - 1;
	memcpy(out, s, n);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
	if (strlen(out) != n || !utf8_valid(out, n)) {
		for (i = 0; i < n; i++)
			if ((unsigned char)out[i] >= 0x80 || out[i] == '\0')
				out[i] = '?';
	}
}

/* ---- loading ---- */

int
p11_load(const char *path, struct p11 **p11_r, const char **error_r)
{
	CK_C_GetFunctionList get_list;
	CK_C_INITIALIZE_ARGS args;
	CK_INFO info;
	struct p11 *p = NULL;
	CK_RV rv;
	int ret = ISSO_ERR_IO;

	*p11_r = NULL;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		*error_r = "cannot load the PKCS#11 module";
		goto out;
	}
	get_list = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&p->f) != CKR_OK || p->f == NULL) {
		*error_r = "not a PKCS#11 module (no C_GetFunctionList)";
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p->f = NULL;
		*error_r = "C_Initialize failed";
		goto out;
	}
	if (p->f->C_GetInfo(&info) == CKR_OK) {
		p11_text(info.manufacturerID, sizeof(info.manufacturerID), p->manufacturer,
		         sizeof(p->manufacturer));
		p11_text(info.libraryDescription, sizeof(info.libraryDescription), p->description,
		         sizeof(p->description));
	}
	*p11_r = p;
	p = NULL;
	ret = 0;
out:
	p11_unload(p);
	return ret;
}

void
p11_unload(struct p11 *p)
{
	if (p == NULL)
		return;
	if (p->f != NULL)
		p->f->C_Finalize(NULL);
	if (p->dl != NULL)
		dlclose(p->dl);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- helpers (lock held) ---- */

/* All slots (with or without a token), at most P11_MAX_SLOTS. */
static CK_RV
slot_list(struct p11 *p, CK_SLOT_ID *slots, CK_ULONG *n_r)
{
	CK_ULONG n = P11_MAX_SLOTS;
	CK_RV rv;

	rv = p->f->C_GetSlotList(CK_FALSE, slots, &n);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		/* More readers than we look at: take the first ones. */
		CK_SLOT_ID *all;
		CK_ULONG total = 0;

		if ((rv = p->f->C_GetSlotList(CK_FALSE, NULL, &total)) != CKR_OK)
			return rv;
		all = xcalloc(total + 1, sizeof(*all));
		rv = p->f->C_GetSlotList(CK_FALSE, all, &total);
		if (rv == CKR_OK) {
			n = total < P11_MAX_SLOTS ? total : P11_MAX_SLOTS;
			memcpy(slots, all, n * sizeof(*slots));
		}
		free(all);
	}
	*n_r = rv == CKR_OK ? n : 0;
	return rv;
}

static bool
token_present(struct p11 *p, CK_SLOT_ID slot)
{
	CK_SLOT_INFO si;

	return p->f->C_GetSlotInfo(slot, &si) == CKR_OK && (si.flags & CKF_TOKEN_PRESENT);
}

static bool
token_is_nhi(const CK_TOKEN_INFO *ti)
{
	return memcmp(ti->label, P11_NHI_PREFIX, strlen(P11_NHI_PREFIX)) == 0;
}

/* Up to max handles of objects matching tmpl. */
static CK_RV
find_objects(struct p11 *p, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n_tmpl,
             CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *n_r)
{
	CK_RV rv;

	*n_r = 0;
	if ((rv = p->f->C_FindObjectsInit(s, tmpl, n_tmpl)) != CKR_OK)
		return rv;
	rv = p->f->C_FindObjects(s, out, max, n_r);
	p->f->C_FindObjectsFinal(s);
	return rv;
}

/* One attribute's value, malloc'd (with a NUL after it), at most max bytes. */
static CK_RV
get_attr(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, size_t max,
         unsigned char **val_r, size_t *len_r)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*val_r = NULL;
	*len_r = 0;
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	a.pValue = xmalloc(a.ulValueLen + 1);
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK || a.ulValueLen > max) {
		free(a.pValue);
		return rv != CKR_OK ? rv : CKR_ATTRIBUTE_VALUE_INVALID;
	}
	((unsigned char *)a.pValue)[a.ulValueLen] = '\0';
	*val_r = a.pValue;
	*len_r = a.ulValueLen;
	return CKR_OK;
}

static json_t *
hex_string(const unsigned char *b, size_t n)
{
	char *s = xmalloc(2 * n + 1);
	json_t *j;

	j = json_string(hex_encode(b, n, s));
	free(s);
	return j;
}

/* [{certb64, label, id}] of the token's X.509 certificates. */
static json_t *
token_certs(struct p11 *p, CK_SLOT_ID slot)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)}};
	CK_OBJECT_HANDLE objs[P11_MAX_OBJECTS];
	CK_SESSION_HANDLE s;
	CK_ULONG n = 0;
	json_t *certs = json_array();

	if (p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return certs;
	find_objects(p, s, tmpl, ISSO_N_ELEMENTS(tmpl), objs, P11_MAX_OBJECTS, &n);
	for (CK_ULONG i = 0; i < n; i++) {
		unsigned char *der = NULL, *label = NULL, *id = NULL;
		size_t der_len, label_len, id_len;
		char *b64, text[P11_MAX_ATTR + 1];

		if (get_attr(p, s, objs[i], CKA_VALUE, P11_MAX_CERT, &der, &der_len) == CKR_OK &&
		    der_len > 0) {
			b64 = xmalloc((der_len + 2) / 3 * 4 + 1);
			b64_encode(der, der_len, b64);
			text[0] = '\0';
			if (get_attr(p, s, objs[i], CKA_LABEL, P11_MAX_ATTR, &label, &label_len) ==
			    CKR_OK)
				p11_text(label, label_len, text, sizeof(text));
			if (get_attr(p, s, objs[i], CKA_ID, P11_MAX_ATTR, &id, &id_len) != CKR_OK)
				id_len = 0;
			json_array_append_new(certs,
			                      json_pack("{s:s, s:s, s:o}", "certb64", b64, "label",
			                                text, "id", hex_string(id, id_len)));
			free(b64);
		}
		free(der);
		free(label);
		free(id);
	}
	p->f->C_CloseSession(s);
	return certs;
}

/* ---- pkcs11info ---- */

json_t *
p11_info(struct p11 *p, bool withcert, struct p11_status *st)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = 0;
	json_t *reply = NULL, *arr;
	CK_RV rv;

	st->tries_left = -1;
	st_set(st, RC_OK, 0);
	pthread_mutex_lock(&p->lock);
	if ((rv = slot_list(p, slots, &n)) != CKR_OK) {
		st_set(st, RC_CARD_ERROR, rv);
		goto out;
	}
	arr = json_array();
	for (CK_ULONG i = 0; i < n; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		char desc[65], serial[17], label[33], manuf[33], model[17];
		json_t *slot, *token = json_null();

		if (p->f->C_GetSlotInfo(slots[i], &si) != CKR_OK)
			continue;
		p11_text(si.slotDescription, sizeof(si.slotDescription), desc, sizeof(desc));
		if ((si.flags & CKF_TOKEN_PRESENT) &&
		    p->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK) {
			p11_text(ti.serialNumber, sizeof(ti.serialNumber), serial, sizeof(serial));
			p11_text(ti.label, sizeof(ti.label), label, sizeof(label));
			p11_text(ti.manufacturerID, sizeof(ti.manufacturerID), manuf,
			         sizeof(manuf));
			p11_text(ti.model, sizeof(ti.model), model, sizeof(model));
			token = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i}", "serialNumber", serial,
			                  "label", label, "manufacturerID", manuf, "model", model,
			                  "flags", (json_int_t)ti.flags, "pinTriesLeft",
			                  p11_tries_left(ti.flags));
			if (withcert && (ti.flags & CKF_TOKEN_INITIALIZED))
				json_object_set_new(token, "certs", token_certs(p, slots[i]));
		}
		slot = json_pack("{s:s, s:I, s:o}", "slotDescription", desc, "slotID",
		                 (json_int_t)slots[i], "token", token);
		json_array_append_new(arr, slot);
	}
	reply = json_pack("{s:{s:s, s:s}, s:o}", "moduleInfo", "manufacturerID", p->manufacturer,
	                  "libraryDescription", p->description, "slots", arr);
out:
	pthread_mutex_unlock(&p->lock);
	return reply;
}

void
p11_counts(struct p11 *p, int *slots_r, int *tokens_r, char *desc, size_t desc_size)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = 0;

	*slots_r = *tokens_r = 0;
	pthread_mutex_lock(&p->lock);
	snprintf(desc, desc_size, "%s (%s)", p->description, p->manufacturer);
	if (slot_list(p, slots, &n) == CKR_OK) {
		*slots_r = (int)n;
		for (CK_ULONG i = 0; i < n; i++)
			if (token_present(p, slots[i]))
				(*tokens_r)++;
	}
	pthread_mutex_unlock(&p->lock);
}

/* ---- choosing a token and a key ---- */

enum token_kind { TOKEN_MOICA, TOKEN_NHI };

/* Counts the token's X.509 certificates (visible before login). */
static CK_ULONG
count_certs(struct p11 *p, CK_SLOT_ID slot)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE objs[1];
	CK_SESSION_HANDLE s;
	CK_ULONG n = 0;

	if (p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return 0;
	find_objects(p, s, tmpl, ISSO_N_ELEMENTS(tmpl), objs, 1, &n);
	p->f->C_CloseSession(s);
	return n;
}

/* The slot to use: the asked one, or the first present, initialised token
 * of the kind (a MOICA-like token also needs a certificate). */
static void
choose_slot(struct p11 *p, enum token_kind kind, bool has_slot, CK_SLOT_ID want, CK_SLOT_ID *slot_r,
            CK_TOKEN_INFO *ti, struct p11_status *st)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = 0, i;
	bool found_slot = false, token_without_cert = false;
	CK_RV rv;

	if ((rv = slot_list(p, slots, &n)) != CKR_OK) {
		st_set(st, RC_CARD_ERROR, rv);
		return;
	}
	if (n == 0) {
		st_set(st, RC_NO_READER, 0);
		return;
	}
	for (i = 0; i < n; i++) {
		if (has_slot && slots[i] != want)
			continue;
		found_slot = true;
		if (!token_present(p, slots[i]) || p->f->C_GetTokenInfo(slots[i], ti) != CKR_OK)
			continue;
		if (!(ti->flags & CKF_TOKEN_INITIALIZED))
			continue;
		if ((kind == TOKEN_NHI) != token_is_nhi(ti))
			continue;
		if (kind == TOKEN_MOICA && count_certs(p, slots[i]) == 0) {
			token_without_cert = true;
			continue;
		}
		*slot_r = slots[i];
		st_set(st, RC_OK, 0);
		return;
	}
	if (!found_slot)
		st_set(st, RC_NO_READER, CKR_SLOT_ID_INVALID);
	else if (token_without_cert)
		st_set(st, RC_NO_KEY, 0);
	else
		st_set(st, RC_NO_CARD, CKR_TOKEN_NOT_PRESENT);
}

/* After login: the first certificate with a signing private key of the same
 * CKA_ID. Sets *key_r and the certificate's DER (malloc'd). */
static CK_RV
find_pair(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *key_r, unsigned char **cert_r,
          size_t *cert_len_r)
{
	CK_OBJECT_CLASS cert_cls = CKO_CERTIFICATE, key_cls = CKO_PRIVATE_KEY;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE ctmpl[] = {{CKA_CLASS, &cert_cls, sizeof(cert_cls)},
	                        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)}};
	CK_OBJECT_HANDLE certs[P11_MAX_OBJECTS], keys[1];
	CK_ULONG n = 0, nk;
	CK_RV rv;

	*cert_r = NULL;
	if ((rv = find_objects(p, s, ctmpl, ISSO_N_ELEMENTS(ctmpl), certs, P11_MAX_OBJECTS, &n)) !=
	    CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < n; i++) {
		unsigned char *id = NULL;
		size_t id_len;

		if ((rv = get_attr(p, s, certs[i], CKA_ID, P11_MAX_ATTR, &id, &id_len)) != CKR_OK) {
			if (rv_to_rc(rv) == RC_CARD_REMOVED)
				return rv;
			continue;
		}
		CK_ATTRIBUTE ktmpl[] = {{CKA_CLASS, &key_cls, sizeof(key_cls)},
		                        {CKA_ID, id, id_len},
		                        {CKA_SIGN, &yes, sizeof(yes)}};
		rv = find_objects(p, s, ktmpl, ISSO_N_ELEMENTS(ktmpl), keys, 1, &nk);
		free(id);
		if (rv != CKR_OK)
			return rv;
		if (nk == 0)
			continue;
		if ((rv = get_attr(p, s, certs[i], CKA_VALUE, P11_MAX_CERT, cert_r, cert_len_r)) !=
		    CKR_OK)
			return rv;
		*key_r = keys[0];
		return CKR_OK;
	}
	return CKR_OK;
}

static CK_RV
sign_data(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *data,
          size_t len, unsigned char **sig_r, size_t *sig_len_r)
{
	CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_ULONG sig_len = P11_MAX_SIG;
	unsigned char *sig = xmalloc(P11_MAX_SIG);
	CK_RV rv;

	*sig_r = NULL;
	if ((rv = p->f->C_SignInit(s, &mech, key)) == CKR_OK)
		rv = p->f->C_Sign(s, (CK_BYTE_PTR)data, len, sig, &sig_len);
	if (rv != CKR_OK || sig_len == 0 || sig_len > P11_MAX_SIG) {
		free(sig);
		return rv != CKR_OK ? rv : CKR_FUNCTION_FAILED;
	}
	*sig_r = sig;
	*sig_len_r = sig_len;
	return CKR_OK;
}

/* C_Login as the user. The PIN is the caller's buffer; nothing is kept.
 * A token left logged in (by another program, or an earlier operation that
 * could not log out) answers CKR_USER_ALREADY_LOGGED_IN without looking at
 * the PIN: taking that as success would sign with any well-formed PIN. So
 * log out and log in once more; still logged in is a card error. */
static CK_RV
login(struct p11 *p, CK_SESSION_HANDLE s, const char *pin)
{
	CK_RV rv = p->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));

	if (rv != CKR_USER_ALREADY_LOGGED_IN)
		return rv;
	log_warn("card_already_logged_in", "message", "logging out before the login", NULL);
	rv = p->f->C_Logout(s);
	if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN && rv_to_rc(rv) == RC_CARD_REMOVED)
		return rv;
	return p->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

/* The status after a failed call on a card that was present. */
static void
fail(struct p11 *p, CK_SLOT_ID slot, CK_RV rv, struct p11_status *st)
{
	CK_TOKEN_INFO ti;

	st_set(st, rv_to_rc(rv), rv);
	if (st->rc == RC_PIN_INCORRECT || st->rc == RC_PIN_LOCKED) {
		st->tries_left = st->rc == RC_PIN_LOCKED ? 0 : -1;
		if (p->f->C_GetTokenInfo(slot, &ti) == CKR_OK) {
			st->tries_left = p11_tries_left(ti.flags);
			if (st->rc == RC_PIN_INCORRECT && st->tries_left == 0)
				st->rc = RC_PIN_LOCKED;
		}
	}
}

/* ---- MOICA signing ---- */

void
p11_sign(struct p11 *p, const struct p11_sign_req *req, struct p11_sign_res *res,
         struct p11_status *st)
{
	CK_SLOT_ID slot = 0;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	unsigned char *data = NULL;
	size_t data_len = 0;
	bool logged_in = false;
	CK_RV rv;

	memset(res, 0, sizeof(*res));
	st->tries_left = -1;
	pthread_mutex_lock(&p->lock);
	choose_slot(p, TOKEN_MOICA, req->has_slot, req->slot, &slot, &ti, st);
	if (st->rc != RC_OK)
		goto out;
	p11_text(ti.serialNumber, sizeof(ti.serialNumber), res->serial, sizeof(res->serial));
	if (ti.flags & CKF_USER_PIN_LOCKED) {
		st_set(st, RC_PIN_LOCKED, CKR_PIN_LOCKED);
		st->tries_left = 0;
		goto out;
	}
	if ((rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		s = CK_INVALID_HANDLE;
		fail(p, slot, rv, st);
		goto out;
	}
	if ((rv = login(p, s, req->pin)) != CKR_OK) {
		fail(p, slot, rv, st);
		goto out;
	}
	logged_in = true;
	if ((rv = find_pair(p, s, &key, &res->cert, &res->cert_len)) != CKR_OK) {
		fail(p, slot, rv, st);
		goto out;
	}
	if (res->cert == NULL) {
		st_set(st, RC_NO_KEY, 0);
		goto out;
	}
	if (req->prepare(req->ctx, res->cert, res->cert_len, &data, &data_len) != 0) {
		st_set(st, RC_NO_KEY, 0);
		goto out;
	}
	if ((rv = sign_data(p, s, key, data, data_len, &res->sig, &res->sig_len)) != CKR_OK) {
		fail(p, slot, rv, st);
		goto out;
	}
	st_set(st, RC_OK, 0);
out:
	if (logged_in)
		p->f->C_Logout(s);
	if (s != CK_INVALID_HANDLE)
		p->f->C_CloseSession(s);
	pthread_mutex_unlock(&p->lock);
	free(data);
	if (st->rc != RC_OK) {
		free(res->sig);
		free(res->cert);
		res->sig = res->cert = NULL;
		res->sig_len = res->cert_len = 0;
	}
}

void
p11_sign_res_clear(struct p11_sign_res *res)
{
	free(res->sig);
	free(res->cert);
	memset(res, 0, sizeof(*res));
}

/* ---- NHI ---- */

/* The 50 bytes of the CKO_DATA object "NHI basic" (application isso-nhi). */
static CK_RV
read_basic(struct p11 *p, CK_SESSION_HANDLE s, unsigned char out[P11_NHI_BASIC_LEN])
{
	static const char app[] = "isso-nhi", label[] = "NHI basic";
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_APPLICATION, (void *)app, sizeof(app) - 1},
	                       {CKA_LABEL, (void *)label, sizeof(label) - 1}};
	CK_OBJECT_HANDLE o;
	CK_ULONG n = 0;
	unsigned char *v = NULL;
	size_t len;
	CK_RV rv;

	if ((rv = find_objects(p, s, tmpl, ISSO_N_ELEMENTS(tmpl), &o, 1, &n)) != CKR_OK)
		return rv;
	if (n == 0)
		return CKR_DATA_INVALID;
	if ((rv = get_attr(p, s, o, CKA_VALUE, 4096, &v, &len)) != CKR_OK)
		return rv;
	if (len != P11_NHI_BASIC_LEN)
		rv = CKR_DATA_LEN_RANGE;
	else
		memcpy(out, v, P11_NHI_BASIC_LEN);
	free(v);
	return rv;
}

void
p11_nhi(struct p11 *p, struct p11_nhi_op *op, struct p11_status *st)
{
	CK_SLOT_ID slot = 0;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	bool logged_in = false;
	CK_RV rv = CKR_OK;

	st->tries_left = -1;
	op->sig = op->cert = NULL;
	op->sig_len = op->cert_len = 0;
	pthread_mutex_lock(&p->lock);
	choose_slot(p, TOKEN_NHI, false, 0, &slot, &ti, st);
	if (st->rc != RC_OK)
		goto out;
	if ((rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		s = CK_INVALID_HANDLE;
		goto fail;
	}
	if (op->pin != NULL && (ti.flags & CKF_LOGIN_REQUIRED)) {
		if ((rv = login(p, s, op->pin)) != CKR_OK)
			goto fail;
		logged_in = true;
	}
	if (op->read_basic && (rv = read_basic(p, s, op->basic)) != CKR_OK)
		goto fail;
	if (op->random_len > 0 &&
	    (op->random_len > P11_MAX_RANDOM ||
	     (rv = p->f->C_GenerateRandom(s, op->random, op->random_len)) != CKR_OK))
		goto fail;
	if (op->tbs != NULL) {
		if ((rv = find_pair(p, s, &key, &op->cert, &op->cert_len)) != CKR_OK)
			goto fail;
		if (op->cert == NULL) {
			st_set(st, RC_NO_KEY, 0);
			goto out;
		}
		if ((rv = sign_data(p, s, key, op->tbs, op->tbs_len, &op->sig, &op->sig_len)) !=
		    CKR_OK)
			goto fail;
	}
	st_set(st, RC_OK, 0);
	goto out;
fail:
	fail(p, slot, rv, st);
out:
	if (logged_in)
		p->f->C_Logout(s);
	if (s != CK_INVALID_HANDLE)
		p->f->C_CloseSession(s);
	pthread_mutex_unlock(&p->lock);
	if (st->rc != RC_OK)
		p11_nhi_op_clear(op);
}

void
p11_nhi_op_clear(struct p11_nhi_op *op)
{
	free(op->sig);
	free(op->cert);
	op->sig = op->cert = NULL;
	op->sig_len = op->cert_len = 0;
}
