/* libisso-testcard.so: a PKCS#11 module for tests that puts a card-like
 * face on another module, SoftHSM2 by default (docs/test-pki.md):
 *
 * - the token serialNumber is the token label without a leading "NHI "
 *   (the MOICA card_sn or the NHI card_no), the slotDescription is
 *   "Generic Smart Card Reader <n>";
 * - three wrong user PINs in a row lock the card (CKR_PIN_LOCKED, without
 *   asking the module below), with CKF_USER_PIN_COUNT_LOW / FINAL_TRY /
 *   LOCKED in the token flags on the way;
 * - a card can be taken out of its reader and put back (test-pki.sh
 *   --remove / --insert): its slot then has no token and the sessions
 *   open on it fail with CKR_DEVICE_REMOVED.
 *
 * ISSO_TESTCARD_MODULE names the module below (default SoftHSM2's),
 * ISSO_TESTCARD_STATE the directory with the card state (testcard.h).
 * Every other function is the module's own. Nothing is logged. */

/* Only C_GetFunctionList leaves the shared object. */
#pragma GCC visibility push(default)
#include <p11-kit/pkcs11.h>
#pragma GCC visibility pop

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testcard/testcard.h"

#define DEFAULT_MODULE   "/usr/lib/softhsm/libsofthsm2.so"
#define NHI_LABEL_PREFIX "NHI "

/* A session opened through us, and the card it was opened on. */
struct session {
	CK_SESSION_HANDLE handle;
	CK_SLOT_ID slot;
	char serial[TESTCARD_SERIAL_MAX + 1];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *under_lib;          /* dlopen() handle, kept for good */
static CK_FUNCTION_LIST *under;  /* the module below */
static CK_FUNCTION_LIST funcs;   /* ours: its functions, some replaced */
static struct session *sessions; /* under lock */
static size_t sessions_count, sessions_size;

/* Copies src into a blank-padded PKCS#11 text field. */
static void
pad(unsigned char *field, size_t size, const char *src)
{
	size_t n = strlen(src);

	memset(field, ' ', size);
	memcpy(field, src, n < size ? n : size);
}

/* The card's serial from its token label: blanks trimmed, a leading
 * "NHI " removed, at most TESTCARD_SERIAL_MAX characters. */
static void
serial_from_label(const unsigned char label[32], char serial_r[TESTCARD_SERIAL_MAX + 1])
{
	char text[33];
	const char *s = text;
	size_t n = 32;

	while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
		n--;
	memcpy(text, label, n);
	text[n] = '\0';
	if (strncmp(s, NHI_LABEL_PREFIX, strlen(NHI_LABEL_PREFIX)) == 0)
		s += strlen(NHI_LABEL_PREFIX);
	snprintf(serial_r, TESTCARD_SERIAL_MAX + 1, "%.*s", TESTCARD_SERIAL_MAX, s);
}

/* The serial of the card in slot (from the module below), with its token
 * info when info_r is not NULL. */
static CK_RV
slot_serial(CK_SLOT_ID slot, char serial_r[TESTCARD_SERIAL_MAX + 1], CK_TOKEN_INFO *info_r)
{
	CK_TOKEN_INFO info;
	CK_RV rv;

	rv = under->C_GetTokenInfo(slot, &info);
	if (rv != CKR_OK)
		return rv;
	serial_from_label(info.label, serial_r);
	if (info_r != NULL)
		*info_r = info;
	return CKR_OK;
}

static bool
serial_removed(const char *serial)
{
	bool removed;

	pthread_mutex_lock(&lock);
	removed = testcard_removed(serial);
	pthread_mutex_unlock(&lock);
	return removed;
}

/* True when the slot holds a card that has been taken out. */
static bool
slot_removed(CK_SLOT_ID slot)
{
	char serial[TESTCARD_SERIAL_MAX + 1];

	if (slot_serial(slot, serial, NULL) != CKR_OK)
		return false;
	return serial_removed(serial);
}

/* Session map, under lock. */
static struct session *
session_find(CK_SESSION_HANDLE handle)
{
	size_t i;

	for (i = 0; i < sessions_count; i++)
		if (sessions[i].handle == handle)
			return &sessions[i];
	return NULL;
}

static int
session_add(CK_SESSION_HANDLE handle, CK_SLOT_ID slot, const char *serial)
{
	struct session *s = session_find(handle), *grown;
	size_t size;

	if (s == NULL) {
		if (sessions_count == sessions_size) {
			size = sessions_size == 0 ? 16 : sessions_size * 2;
			grown = realloc(sessions, size * sizeof(*sessions));
			if (grown == NULL)
				return -1;
			sessions = grown;
			sessions_size = size;
		}
		s = &sessions[sessions_count++];
	}
	s->handle = handle;
	s->slot = slot;
	snprintf(s->serial, sizeof(s->serial), "%s", serial);
	return 0;
}

static void
session_remove(struct session *s)
{
	*s = sessions[--sessions_count];
}

/* CKR_DEVICE_REMOVED when the session's card has been taken out, else
 * CKR_OK (also for handles we do not know: the module below answers). */
static CK_RV
session_check(CK_SESSION_HANDLE handle)
{
	struct session *s;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&lock);
	s = session_find(handle);
	if (s != NULL && testcard_removed(s->serial))
		rv = CKR_DEVICE_REMOVED;
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV
tc_initialize(CK_VOID_PTR args)
{
	CK_RV rv;

	pthread_mutex_lock(&lock);
	rv = testcard_state_init(getenv("ISSO_TESTCARD_STATE")) < 0 ? CKR_HOST_MEMORY : CKR_OK;
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK)
		return rv;
	return under->C_Initialize(args);
}

static CK_RV
tc_finalize(CK_VOID_PTR reserved)
{
	CK_RV rv = under->C_Finalize(reserved);

	if (rv == CKR_OK) {
		pthread_mutex_lock(&lock);
		free(sessions);
		sessions = NULL;
		sessions_count = sessions_size = 0;
		pthread_mutex_unlock(&lock);
	}
	return rv;
}

static CK_RV
tc_get_info(CK_INFO *info)
{
	CK_RV rv = under->C_GetInfo(info);

	if (rv == CKR_OK) {
		pad(info->manufacturerID, sizeof(info->manufacturerID), "iSSO testcard");
		pad(info->libraryDescription, sizeof(info->libraryDescription),
		    "iSSO testcard (test cards only)");
	}
	return rv;
}

static CK_RV
tc_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
	CK_SLOT_ID *all = NULL, *grown;
	CK_ULONG n = 0, i, kept = 0;
	CK_RV rv;

	if (!token_present || count == NULL)
		return under->C_GetSlotList(token_present, list, count);
	do {
		rv = under->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv != CKR_OK)
			goto out;
		grown = realloc(all, (n > 0 ? n : 1) * sizeof(*all));
		if (grown == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		all = grown;
		rv = under->C_GetSlotList(CK_TRUE, all, &n);
	} while (rv == CKR_BUFFER_TOO_SMALL);
	if (rv != CKR_OK)
		goto out;

	for (i = 0; i < n; i++)
		if (!slot_removed(all[i]))
			all[kept++] = all[i];
	if (list != NULL && *count < kept) {
		rv = CKR_BUFFER_TOO_SMALL;
	} else if (list != NULL) {
		memcpy(list, all, kept * sizeof(*all));
	}
	*count = kept;
out:
	free(all);
	return rv;
}

/* The slot's place in the module's list of all slots, or -1. */
static long
slot_index(CK_SLOT_ID slot)
{
	CK_SLOT_ID *all = NULL, *grown;
	CK_ULONG n = 0, i;
	long index = -1;
	CK_RV rv = CKR_OK;

	do {
		if (under->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK)
			goto out;
		grown = realloc(all, (n > 0 ? n : 1) * sizeof(*all));
		if (grown == NULL)
			goto out;
		all = grown;
		rv = under->C_GetSlotList(CK_FALSE, all, &n);
	} while (rv == CKR_BUFFER_TOO_SMALL);
	if (rv != CKR_OK)
		goto out;
	for (i = 0; i < n; i++)
		if (all[i] == slot)
			index = (long)i;
out:
	free(all);
	return index;
}

static CK_RV
tc_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
	char desc[64];
	long index;
	CK_RV rv;

	rv = under->C_GetSlotInfo(slot, info);
	if (rv != CKR_OK)
		return rv;
	if ((info->flags & CKF_TOKEN_PRESENT) != 0 && slot_removed(slot))
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	index = slot_index(slot);
	if (index >= 0) {
		snprintf(desc, sizeof(desc), "Generic Smart Card Reader %ld", index);
		pad(info->slotDescription, sizeof(info->slotDescription), desc);
	}
	return CKR_OK;
}

static CK_RV
tc_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
	char serial[TESTCARD_SERIAL_MAX + 1];
	CK_TOKEN_INFO ti;
	int failures;
	CK_RV rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = slot_serial(slot, serial, &ti);
	if (rv != CKR_OK)
		return rv;

	pthread_mutex_lock(&lock);
	if (testcard_removed(serial)) {
		rv = CKR_TOKEN_NOT_PRESENT;
	} else {
		failures = testcard_failures(serial);
		ti.flags &= ~(CK_FLAGS)(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY |
		                        CKF_USER_PIN_LOCKED);
		if (failures >= TESTCARD_PIN_TRIES)
			ti.flags |= CKF_USER_PIN_LOCKED;
		else if (failures == TESTCARD_PIN_TRIES - 1)
			ti.flags |= CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY;
		else if (failures > 0)
			ti.flags |= CKF_USER_PIN_COUNT_LOW;
		pad(ti.serialNumber, sizeof(ti.serialNumber), serial);
		*info = ti;
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV
tc_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                CK_SESSION_HANDLE *session_r)
{
	char serial[TESTCARD_SERIAL_MAX + 1];
	CK_SESSION_HANDLE handle;
	CK_RV rv;

	if (session_r == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = slot_serial(slot, serial, NULL);
	if (rv != CKR_OK)
		return rv;
	if (serial_removed(serial))
		return CKR_TOKEN_NOT_PRESENT;
	rv = under->C_OpenSession(slot, flags, app, notify, &handle);
	if (rv != CKR_OK)
		return rv;

	pthread_mutex_lock(&lock);
	if (session_add(handle, slot, serial) < 0)
		rv = CKR_HOST_MEMORY;
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK) {
		under->C_CloseSession(handle);
		return rv;
	}
	*session_r = handle;
	return CKR_OK;
}

static CK_RV
tc_close_session(CK_SESSION_HANDLE handle)
{
	struct session *s;
	CK_RV rv = under->C_CloseSession(handle);

	pthread_mutex_lock(&lock);
	s = session_find(handle);
	if (s != NULL && (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID))
		session_remove(s);
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV
tc_close_all_sessions(CK_SLOT_ID slot)
{
	CK_RV rv = under->C_CloseAllSessions(slot);
	size_t i;

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	for (i = 0; i < sessions_count;) {
		if (sessions[i].slot == slot)
			session_remove(&sessions[i]);
		else
			i++;
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

/* The PIN counter of section 2 of the cards contract: checked and counted
 * under the lock, so that two threads cannot both use the last try. */
static CK_RV
tc_login(CK_SESSION_HANDLE handle, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
	char serial[TESTCARD_SERIAL_MAX + 1];
	struct session *s;
	int failures;
	CK_RV rv;

	pthread_mutex_lock(&lock);
	s = session_find(handle);
	if (s != NULL && testcard_removed(s->serial)) {
		rv = CKR_DEVICE_REMOVED;
		goto out;
	}
	if (s == NULL || user != CKU_USER) {
		rv = under->C_Login(handle, user, pin, pin_len);
		goto out;
	}
	snprintf(serial, sizeof(serial), "%s", s->serial);
	failures = testcard_failures(serial);
	if (failures >= TESTCARD_PIN_TRIES) {
		rv = CKR_PIN_LOCKED;
		goto out;
	}
	rv = under->C_Login(handle, user, pin, pin_len);
	if (rv == CKR_PIN_INCORRECT) {
		failures++;
		if (testcard_set_failures(serial, failures) < 0)
			rv = CKR_FUNCTION_FAILED;
		else if (failures >= TESTCARD_PIN_TRIES)
			rv = CKR_PIN_LOCKED;
	} else if (rv == CKR_OK) {
		if (testcard_set_failures(serial, 0) < 0)
			rv = CKR_FUNCTION_FAILED;
	}
out:
	pthread_mutex_unlock(&lock);
	return rv;
}

/* Calls on a session whose card may have been taken out. */
static CK_RV
tc_logout(CK_SESSION_HANDLE h)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_Logout(h);
}

static CK_RV
tc_get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_GetSessionInfo(h, info);
}

static CK_RV
tc_get_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl,
                       CK_ULONG count)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_GetAttributeValue(h, obj, tmpl, count);
}

static CK_RV
tc_find_objects_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_FindObjectsInit(h, tmpl, count);
}

static CK_RV
tc_find_objects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *count)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_FindObjects(h, objs, max, count);
}

static CK_RV
tc_find_objects_final(CK_SESSION_HANDLE h)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_FindObjectsFinal(h);
}

static CK_RV
tc_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM *mech, CK_OBJECT_HANDLE key)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_SignInit(h, mech, key);
}

static CK_RV
tc_sign(CK_SESSION_HANDLE h, CK_BYTE *data, CK_ULONG len, CK_BYTE *sig, CK_ULONG *sig_len)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_Sign(h, data, len, sig, sig_len);
}

static CK_RV
tc_sign_update(CK_SESSION_HANDLE h, CK_BYTE *part, CK_ULONG len)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_SignUpdate(h, part, len);
}

static CK_RV
tc_sign_final(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG *sig_len)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_SignFinal(h, sig, sig_len);
}

static CK_RV
tc_generate_random(CK_SESSION_HANDLE h, CK_BYTE *data, CK_ULONG len)
{
	CK_RV rv = session_check(h);

	return rv != CKR_OK ? rv : under->C_GenerateRandom(h, data, len);
}

/* Loads the module below once and builds our function list from its. */
static CK_RV
load(void)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST **);
	CK_FUNCTION_LIST *list = NULL;
	const char *path;
	void *lib;

	if (under != NULL)
		return CKR_OK;
	path = getenv("ISSO_TESTCARD_MODULE");
	if (path == NULL || path[0] == '\0')
		path = DEFAULT_MODULE;
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		return CKR_GENERAL_ERROR;
	get_list = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(lib, "C_GetFunctionList");
	/* Not ourselves: that would go round for ever. */
	if (get_list == NULL || get_list == C_GetFunctionList || get_list(&list) != CKR_OK ||
	    list == NULL) {
		dlclose(lib);
		return CKR_GENERAL_ERROR;
	}
	under_lib = lib;
	under = list;

	funcs = *list;
	funcs.C_Initialize = tc_initialize;
	funcs.C_Finalize = tc_finalize;
	funcs.C_GetInfo = tc_get_info;
	funcs.C_GetFunctionList = C_GetFunctionList;
	funcs.C_GetSlotList = tc_get_slot_list;
	funcs.C_GetSlotInfo = tc_get_slot_info;
	funcs.C_GetTokenInfo = tc_get_token_info;
	funcs.C_OpenSession = tc_open_session;
	funcs.C_CloseSession = tc_close_session;
	funcs.C_CloseAllSessions = tc_close_all_sessions;
	funcs.C_GetSessionInfo = tc_get_session_info;
	funcs.C_Login = tc_login;
	funcs.C_Logout = tc_logout;
	funcs.C_GetAttributeValue = tc_get_attribute_value;
	funcs.C_FindObjectsInit = tc_find_objects_init;
	funcs.C_FindObjects = tc_find_objects;
	funcs.C_FindObjectsFinal = tc_find_objects_final;
	funcs.C_SignInit = tc_sign_init;
	funcs.C_Sign = tc_sign;
	funcs.C_SignUpdate = tc_sign_update;
	funcs.C_SignFinal = tc_sign_final;
	funcs.C_GenerateRandom = tc_generate_random;
	return CKR_OK;
}

/* dlclose(): what we hold in memory goes (the module below stays loaded,
 * since nothing tells us that its last user is gone). */
__attribute__((destructor)) static void
unload(void)
{
	pthread_mutex_lock(&lock);
	testcard_state_free();
	free(sessions);
	sessions = NULL;
	sessions_count = sessions_size = 0;
	pthread_mutex_unlock(&lock);
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST **list_r)
{
	CK_RV rv;

	if (list_r == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	rv = load();
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK)
		*list_r = &funcs;
	return rv;
}
