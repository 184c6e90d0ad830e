/* The registry of login methods and assurance levels. */
#include <string.h>

#include "auth/method.h"

extern const struct method method_taipeipass;
extern const struct method method_moica_mobile;
extern const struct method method_telecom;

const struct method *const methods[] = {
    &method_taipeipass,
    &method_moica_mobile,
    &method_telecom,
    NULL,
};

const struct method *
method_find(const char *id)
{
	if (id == NULL)
		return NULL;
	for (const struct method *const *m = methods; *m != NULL; m++) {
		if (strcmp((*m)->id, id) == 0)
			return *m;
	}
	return NULL;
}

static const char *const loa_names[] = {
    [LOA_LOW] = "urn:isso:loa:low",
    [LOA_SUBSTANTIAL] = "urn:isso:loa:substantial",
    [LOA_HIGH] = "urn:isso:loa:high",
};

const char *
loa_name(enum loa loa)
{
	if (loa < LOA_LOW || loa > LOA_HIGH)
		return loa_names[LOA_LOW];
	return loa_names[loa];
}

enum loa
loa_parse(const char *name)
{
	if (name == NULL)
		return 0;
	for (int l = LOA_LOW; l <= LOA_HIGH; l++) {
		if (strcmp(loa_names[l], name) == 0)
			return (enum loa)l;
	}
	return 0;
}
