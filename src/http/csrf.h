/* CSRF protection for every form: a per-browser random cookie and, in each
 * form, a MAC of it bound to the form's purpose. */
#ifndef ISSO_CSRF_H
#define ISSO_CSRF_H

#include <stdbool.h>

#include "http/http.h"

struct secret_keys;

/* The token to put in a form (hidden field "csrf"), setting the browser
 * cookie when it has none. Allocated from the request pool. */
const char *csrf_token(struct http_req *req, const struct secret_keys *keys, const char *purpose);
/* True when the POSTed "csrf" field matches this browser and purpose. */
bool csrf_check(struct http_req *req, const struct secret_keys *keys, const char *purpose);

#endif
