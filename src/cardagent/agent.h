/* isso-cardagent: the local smart-card service on a citizen's PC. It speaks
 * the HiPKI local server protocol over HTTP (MOICA card) and the NHI card
 * component's commands over a WebSocket, both on loopback, to trusted
 * sites only. See docs/cardagent.md. */
#ifndef ISSO_CARDAGENT_AGENT_H
#define ISSO_CARDAGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cardagent/p11.h"

#define AGENT_VERSION    "1.0"
#define AGENT_MAX_TRUST  32
#define AGENT_MAX_ORIGIN 256

/* HiPKI ret_code values (numbers in the JSON replies). */
#define RC_OK            0
#define RC_UNTRUSTED     0x76000031
#define RC_BAD_REQUEST   0x76000001
#define RC_NO_MODULE     0x76000002
#define RC_NO_READER     0x76000003
#define RC_NO_CARD       0x76000004
#define RC_PIN_FORMAT    0x76000005
#define RC_PIN_INCORRECT 0x76000006
#define RC_PIN_LOCKED    0x76000007
#define RC_CARD_REMOVED  0x76000008
#define RC_NO_KEY        0x76000009
#define RC_CARD_ERROR    0x7600000A
/* Ours: the iSSO profile refuses text that is not this site's iSSO login
 * challenge; the general signer waits for (or did not get) the citizen's
 * confirmation in the agent's own window. */
#define RC_NOT_LOGIN 0x7600000B
#define RC_CONFIRM   0x7600000C
#define RC_DECLINED  0x7600000D

struct agent {
	const char *listen;
	int port;     /* the HiPKI HTTP port (the bound one once started) */
	int nhi_port; /* 0: no WebSocket */
	const char *nhi_tls_cert, *nhi_tls_key;
	char *nhi_pin;
	const char *nhi_service_cert; /* PEM file named by --nhi-service-cert */
	void *nhi_service_key;        /* its EVP_PKEY *; NULL: EnCrypt answers -6 */
	/* Normalised origins (scheme://host[:port], no default port). */
	char *trust[AGENT_MAX_TRUST];
	size_t n_trust;
	/* false (the default, the iSSO profile): /sign signs only an iSSO
	 * login challenge whose issuer is the asking site. true: other text
	 * too, once the citizen confirmed it in the agent's window. */
	bool general_signer;
	struct p11 *p11; /* NULL when the module could not be loaded */
	const char *module_path;
	const char *module_error;
};

/* Normalises an origin given on the command line ("https://Site.gov.tw/"
 * -> "https://site.gov.tw"): http or https, a host, an optional port, no
 * path, query or user info. Returns a new string (caller frees) or NULL
 * when it is not an origin. */
char *agent_origin_normalise(const char *s);
/* True when origin (an Origin header, a postMessage event.origin) is one of
 * the trusted sites, compared exactly. */
bool agent_trusted(const struct agent *a, const char *origin);

/* True when the Host header is <name>:<port> for one of the NULL-terminated
 * names (a DNS rebinding page sends its own host name). */
bool agent_host_ok(struct MHD_Connection *conn, int port, const char *const *names);

/* Queues a response with the headers every reply carries (Cache-Control:
 * no-store, X-Content-Type-Options: nosniff, no CORS). csp (may be NULL)
 * is sent with X-Frame-Options: DENY. The body is copied. */
enum MHD_Result agent_send(struct MHD_Connection *conn, unsigned status, const char *ctype,
                           const char *body, size_t len, const char *csp);
/* A JSON reply; steals obj. */
enum MHD_Result agent_send_json(struct MHD_Connection *conn, unsigned status, json_t *obj);

/* Binds and listens on addr:port (an IP address; port 0: any), and sets
 * *port_r to the bound port. Returns 0 or ISSO_ERR_* with *error_r set. */
int agent_listen(const char *addr, int port, int *fd_r, int *port_r, const char **error_r);
/* Starts a libmicrohttpd daemon (thread per connection) on a listening
 * socket, which it then owns, with TLS when cert_pem and key_pem are
 * given. Returns NULL with *error_r set (the socket is closed). */
struct MHD_Daemon *agent_mhd_start(unsigned flags, int fd, MHD_AccessHandlerCallback cb, void *cls,
                                   MHD_RequestCompletedCallback done, const char *cert_pem,
                                   const char *key_pem, const char **error_r);

/* Makes jansson wipe every block it frees: parsed requests hold PINs and
 * passwords. Call once, before any JSON is parsed. */
void agent_json_wipe(void);

/* The HiPKI HTTP server. Returns 0 or ISSO_ERR_IO with *error_r set. */
struct hipki_server;
int hipki_start(struct agent *a, struct hipki_server **srv_r, const char **error_r);
void hipki_stop(struct hipki_server *srv);

/* The NHI WebSocket server (a->nhi_port > 0). */
struct nhi_server;
int nhi_start(struct agent *a, struct nhi_server **srv_r, const char **error_r);
/* Closes every WebSocket, then stops listening. */
void nhi_stop(struct nhi_server *srv);

/* Loads the NHI service's certificate (PEM, an RSA key of at least 2048
 * bits) whose key EnCrypt encrypts the password to, into
 * a->nhi_service_key. Returns 0, or ISSO_ERR_IO / ISSO_ERR_INVALID with
 * *error_r set (a static string). nhi_service_free() releases it. */
int nhi_service_load(struct agent *a, const char *path, const char **error_r);
void nhi_service_free(struct agent *a);

/* One NHI command (a WebSocket text message, not NUL-terminated) -> the
 * JSON reply text (caller frees). The message may hold a password: the
 * caller wipes it; copies made here are wiped. */
char *nhi_command(struct agent *a, const char *msg, size_t len);

#endif
