/* The NHI card component's WebSocket (ws[s]://127.0.0.1:<nhi-port>/echo):
 * the handshake (trusted Origin only), one thread per connection reading
 * RFC 6455 frames, and the commands (GetVersion, GetBasic,
 * SecureGetBasicWithParam, GetRandom, H_Sign, EnCrypt). Replies are our
 * own JSON format (see docs/cardagent.md). EnCrypt encrypts the password
 * to the NHI service's key (--nhi-service-cert), so that whoever sees the
 * blob on its way (the portal, a proxy, a log) cannot test guesses. */
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cardagent/agent.h"
#include "cardagent/parse.h"
#include "cardagent/ws.h"
#include "lib/hex.h"
#include "lib/b64.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define NHI_MAX_CONNECTIONS 8
#define NHI_IDLE_SECONDS    300
#define NHI_POLL_MS         200
#define NHI_MAX_PARAMS      4
#define NHI_RANDOM_BYTES    32
#define NHI_SERVICE_BITS    2048 /* the smallest service key accepted */

static const char *const nhi_hosts[] = {"127.0.0.1", "localhost", "iccert.nhi.gov.tw", NULL};

struct nhi_server {
	struct agent *a;
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int live; /* connection threads running */
	atomic_bool stopping;
};

struct ws_conn {
	struct nhi_server *srv;
	struct MHD_UpgradeResponseHandle *urh;
	int sock;
	unsigned char in[WS_MAX_HEADER + WS_MAX_MESSAGE];
	size_t have;
	unsigned char msg[WS_MAX_MESSAGE];
	size_t msg_len;
	bool in_msg;
	int msg_opcode;
};

/* ---- commands ---- */

static char *
reply_error(int ret)
{
	return xasprintf("{\"ret\":%d}", ret);
}

static char *
reply_json(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	char *copy = text != NULL ? xstrdup(text) : reply_error(NHI_ERR_CARD);

	free(text);
	json_decref(o);
	return copy;
}

static int
nhi_ret(int rc)
{
	switch (rc) {
	case RC_NO_MODULE:
	case RC_NO_READER:
		return NHI_ERR_NO_READER;
	case RC_NO_CARD:
		return NHI_ERR_NO_CARD;
	case RC_CARD_REMOVED:
		return NHI_ERR_REMOVED;
	default:
		return NHI_ERR_CARD;
	}
}

/* Percent-decodes s[0..n) into out (NUL-terminated, at most max bytes
 * before the NUL); '+' is a space. Returns the length, -1 when the
 * encoding is bad, -2 when the value is too long, -3 when it holds a NUL
 * (%00: later code would see a shorter string than was checked). */
static long
pct_decode(const char *s, size_t n, char *out, size_t max)
{
	size_t o = 0;
	int h, l;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if ((h = hex_digit_value((unsigned char)s[i + 1])) < 0 ||
			    (l = hex_digit_value((unsigned char)s[i + 2])) < 0)
				return -1;
			c = (char)(h << 4 | l);
			if (c == '\0')
				return -3;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o >= max)
			return -2;
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

static bool
random_ok(const char *s, size_t n)
{
	if (n < 1 || n > NHI_MAX_RANDOM)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
pwd_ok(const char *s, size_t n)
{
	if (n < NHI_MIN_PWD || n > NHI_MAX_PWD)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* See cardagent/parse.h. */
int
nhi_parse_params(const char *q, size_t n, struct nhi_params *p)
{
	size_t i = 0, count = 0;
	char tmp[NHI_MAX_RANDOM + 1];

	while (i < n) {
		const char *pair = q + i, *amp = memchr(pair, '&', n - i), *eq;
		size_t plen = amp != NULL ? (size_t)(amp - pair) : n - i;
		long vlen;

		i += plen + 1;
		if (plen == 0)
			continue;
		if (++count > NHI_MAX_PARAMS)
			return NHI_ERR_PARAM;
		eq = memchr(pair, '=', plen);
		if (eq == NULL)
			return NHI_ERR_PARAM;
		if ((size_t)(eq - pair) == 6 && memcmp(pair, "Random", 6) == 0) {
			if (p->has_random)
				return NHI_ERR_PARAM;
			vlen = pct_decode(eq + 1, plen - 7, tmp, NHI_MAX_RANDOM);
			if (vlen == -1)
				return NHI_ERR_COMMAND;
			if (vlen < 0 || !random_ok(tmp, (size_t)vlen))
				return NHI_ERR_PARAM;
			memcpy(p->random, tmp, (size_t)vlen + 1);
			p->has_random = true;
		} else if ((size_t)(eq - pair) == 3 && memcmp(pair, "Pwd", 3) == 0) {
			if (p->has_pwd)
				return NHI_ERR_PARAM;
			vlen = pct_decode(eq + 1, plen - 4, tmp, NHI_MAX_PWD);
			if (vlen < 0 || !pwd_ok(tmp, (size_t)vlen)) {
				explicit_bzero(tmp, sizeof(tmp));
				return vlen == -1 ? NHI_ERR_COMMAND : NHI_ERR_PARAM;
			}
			memcpy(p->pwd, tmp, (size_t)vlen + 1);
			explicit_bzero(tmp, sizeof(tmp));
			p->has_pwd = true;
		} else {
			return NHI_ERR_PARAM;
		}
	}
	return 0;
}

/* An ASCII field of the basic data, trailing blanks cut; false when it
 * holds anything but printable ASCII. */
static bool
basic_ascii(const unsigned char *b, size_t n, char *out)
{
	while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\0'))
		n--;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < 0x21 || b[i] > 0x7e)
			return false;
		out[i] = (char)b[i];
	}
	out[n] = '\0';
	return n > 0;
}

/* The Big5 name as UTF-8 (CP950, Windows' Big5, then Big5-HKSCS). */
static bool
basic_name(const unsigned char *b, size_t n, char *out, size_t out_size)
{
	static const char *const charsets[] = {"CP950", "BIG5-HKSCS", "BIG5"};

	while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\0'))
		n--;
	if (n == 0)
		return false; /* a card holds a name, as it holds the other fields */
	for (size_t k = 0; k < ISSO_N_ELEMENTS(charsets); k++) {
		iconv_t cd = iconv_open("UTF-8", charsets[k]);
		char *in = (char *)b, *o = out;
		size_t inleft = n, outleft = out_size - 1, r;

		if (cd == (iconv_t)-1)
			continue;
		r = iconv(cd, &in, &inleft, &o, &outleft);
		iconv_close(cd);
		if (r != (size_t)-1 && inleft == 0) {
			*o = '\0';
			return utf8_printable(out, (size_t)(o - out), false);
		}
	}
	return false;
}

/* See cardagent/parse.h. */
json_t *
nhi_basic_json(const unsigned char *b)
{
	char card_no[13], name[128], id[11], birth[8], sex[2];

	if (!basic_ascii(b, 12, card_no) || !basic_name(b + 12, 20, name, sizeof(name)) ||
	    !basic_ascii(b + 32, 10, id) || !basic_ascii(b + 42, 7, birth) ||
	    !basic_ascii(b + 49, 1, sex))
		return NULL;
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "ret", 0, "card_no", card_no, "name",
	                 name, "national_id", id, "birth", birth, "sex", sex);
}

static char *
b64_new(const unsigned char *b, size_t n)
{
	char *s = xmalloc((n + 2) / 3 * 4 + 1);

	return b64_encode(b, n, s);
}

/* RSA-OAEP (SHA-256, MGF1 with SHA-256) of msg to the NHI service's key;
 * malloc'd, or NULL. */
static unsigned char *
service_encrypt(EVP_PKEY *key, const unsigned char *msg, size_t len, size_t *out_len_r)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	unsigned char *out = NULL;
	size_t n = 0;

	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_encrypt(ctx, NULL, &n, msg, len) <= 0 || n == 0)
		goto out;
	out = xmalloc(n);
	if (EVP_PKEY_encrypt(ctx, out, &n, msg, len) <= 0) {
		free(out);
		out = NULL;
		goto out;
	}
	*out_len_r = n;
out:
	EVP_PKEY_CTX_free(ctx);
	return out;
}

int
nhi_service_load(struct agent *a, const char *path, const char **error_r)
{
	FILE *f = fopen(path, "r");
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	int ret = ISSO_ERR_INVALID;

	if (f == NULL) {
		*error_r = "cannot open the NHI service certificate file";
		return ISSO_ERR_IO;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		*error_r = "the NHI service certificate file holds no PEM certificate";
		goto out;
	}
	key = X509_get_pubkey(x);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bits(key) < NHI_SERVICE_BITS) {
		*error_r = "the NHI service certificate needs an RSA key of at least 2048 bits";
		goto out;
	}
	a->nhi_service_key = key;
	key = NULL;
	ret = 0;
out:
	EVP_PKEY_free(key);
	X509_free(x);
	return ret;
}

void
nhi_service_free(struct agent *a)
{
	EVP_PKEY_free(a->nhi_service_key);
	a->nhi_service_key = NULL;
}

static const char *const nhi_commands[] = {
    "GetVersion", "GetBasic", "SecureGetBasicWithParam", "GetRandom", "H_Sign", "EnCrypt",
};

char *
nhi_command(struct agent *a, const char *msg, size_t len)
{
	struct nhi_params par;
	struct p11_nhi_op op;
	struct p11_status st = {RC_OK, 0, -1};
	const char *q = memchr(msg, '?', len), *cmd = NULL;
	size_t name_len = q != NULL ? (size_t)(q - msg) : len;
	char *out = NULL, *sig = NULL, *cert = NULL, *tbs = NULL, card_no[13];
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	json_t *basic = NULL;
	int ret;

	memset(&par, 0, sizeof(par));
	memset(&op, 0, sizeof(op));
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)msg[i] < 0x21 || (unsigned char)msg[i] > 0x7e) {
			ret = NHI_ERR_COMMAND;
			goto fail;
		}
	}
	for (size_t i = 0; i < ISSO_N_ELEMENTS(nhi_commands); i++)
		if (strlen(nhi_commands[i]) == name_len &&
		    memcmp(msg, nhi_commands[i], name_len) == 0)
			cmd = nhi_commands[i];
	if (cmd == NULL) {
		ret = NHI_ERR_COMMAND;
		goto fail;
	}
	if (q != NULL && (ret = nhi_parse_params(q + 1, len - name_len - 1, &par)) != 0)
		goto fail;
	/* Exactly the parameters each command takes. */
	ret = NHI_ERR_PARAM;
	if (strcmp(cmd, "GetVersion") == 0 || strcmp(cmd, "GetBasic") == 0 ||
	    strcmp(cmd, "GetRandom") == 0) {
		if (par.has_pwd || par.has_random)
			goto fail;
	} else if (strcmp(cmd, "SecureGetBasicWithParam") == 0) {
		if (!par.has_pwd || par.has_random)
			goto fail;
	} else if (strcmp(cmd, "H_Sign") == 0) {
		if (!par.has_random || par.has_pwd)
			goto fail;
	} else if (!par.has_random || !par.has_pwd) { /* EnCrypt */
		goto fail;
	}

	if (strcmp(cmd, "GetVersion") == 0) {
		out = reply_json(
		    json_pack("{s:i, s:s}", "ret", 0, "version", "isso-cardagent " AGENT_VERSION));
		goto out;
	}
	if (strcmp(cmd, "EnCrypt") == 0 && a->nhi_service_key == NULL) {
		ret = NHI_ERR_CARD; /* nobody to encrypt the password to */
		goto fail;
	}
	if (a->p11 == NULL) {
		ret = nhi_ret(RC_NO_MODULE);
		goto fail;
	}
	op.pin = a->nhi_pin;
	if (strcmp(cmd, "GetRandom") == 0) {
		op.random_len = NHI_RANDOM_BYTES;
	} else {
		op.read_basic = true;
		/* EnCrypt only needs the card number from the card */
		if (strcmp(cmd, "H_Sign") == 0) {
			op.tbs = (const unsigned char *)par.random;
			op.tbs_len = strlen(par.random);
		}
	}
	p11_nhi(a->p11, &op, &st);
	if (st.rc != RC_OK) {
		ret = nhi_ret(st.rc);
		goto fail;
	}
	if (op.random_len > 0) {
		char hex[2 * NHI_RANDOM_BYTES + 1];

		hex_encode(op.random, NHI_RANDOM_BYTES, hex);
		out = reply_json(json_pack("{s:i, s:s}", "ret", 0, "random", hex));
		goto out;
	}
	if ((basic = nhi_basic_json(op.basic)) == NULL) {
		ret = NHI_ERR_CARD;
		goto fail;
	}
	snprintf(card_no, sizeof(card_no), "%s",
	         json_string_value(json_object_get(basic, "card_no")));
	if (strcmp(cmd, "H_Sign") == 0) {
		sig = b64_new(op.sig, op.sig_len);
		cert = b64_new(op.cert, op.cert_len);
		out = reply_json(json_pack("{s:i, s:s, s:s, s:s}", "ret", 0, "card_no", card_no,
		                           "signature", sig, "cert", cert));
	} else if (strcmp(cmd, "EnCrypt") == 0) {
		tbs = xasprintf("NHI-PWD\n%s\n%s", par.random, par.pwd);
		blob = service_encrypt(a->nhi_service_key, (const unsigned char *)tbs, strlen(tbs),
		                       &blob_len);
		if (blob == NULL) {
			ret = NHI_ERR_CARD;
			goto fail;
		}
		sig = b64_new(blob, blob_len);
		out = reply_json(
		    json_pack("{s:i, s:s, s:s}", "ret", 0, "card_no", card_no, "blob", sig));
	} else {
		out = reply_json(basic);
		basic = NULL;
	}
	goto out;
fail:
	out = reply_error(ret);
out:
	log_event(
	    LOG_INFO, "nhi_command",
	    json_pack("{s:s, s:I, s:I}", "command", cmd != NULL ? cmd : "(unknown)", "ret",
	              (json_int_t)(out != NULL && strncmp(out, "{\"ret\":0", 8) == 0 ? 0 : ret),
	              "last_error", (json_int_t)st.rv));
	if (tbs != NULL)
		explicit_bzero(tbs, strlen(tbs));
	free(tbs);
	free(blob);
	explicit_bzero(&par, sizeof(par));
	p11_nhi_op_clear(&op);
	explicit_bzero(&op, sizeof(op));
	json_decref(basic);
	free(sig);
	free(cert);
	return out;
}

/* ---- the connection ---- */

static bool
send_all(int sock, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(sock, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool
send_frame(struct ws_conn *c, int opcode, const void *payload, size_t len)
{
	unsigned char h[WS_MAX_HEADER];
	size_t hl = ws_header(h, opcode, len);

	return send_all(c->sock, h, hl) && (len == 0 || send_all(c->sock, payload, len));
}

static void
send_close(struct ws_conn *c, int code)
{
	unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};

	send_frame(c, WS_CLOSE, p, 2);
}

/* Handles one frame. Returns 0 to go on, or a close code to end with
 * (WS_CLOSE_NORMAL after an orderly close: already answered). */
static int
on_frame(struct ws_conn *c, const struct ws_frame *f)
{
	int code;
	char *reply;

	switch (f->opcode) {
	case WS_PING:
		return send_frame(c, WS_PONG, f->payload, f->len) ? 0 : WS_CLOSE_NORMAL;
	case WS_PONG:
		return 0;
	case WS_CLOSE:
		if (!ws_close_payload_ok(f->payload, f->len, &code))
			return WS_CLOSE_PROTOCOL;
		send_close(c, code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY
		                  ? code
		                  : WS_CLOSE_NORMAL);
		return -1;
	case WS_CONT:
		if (!c->in_msg)
			return WS_CLOSE_PROTOCOL;
		break;
	default: /* text, binary */
		if (c->in_msg)
			return WS_CLOSE_PROTOCOL;
		c->in_msg = true;
		c->msg_opcode = f->opcode;
		c->msg_len = 0;
		break;
	}
	if (c->msg_len + f->len > WS_MAX_MESSAGE)
		return WS_CLOSE_TOO_BIG;
	memcpy(c->msg + c->msg_len, f->payload, f->len);
	c->msg_len += f->len;
	if (!f->fin)
		return 0;
	c->in_msg = false;
	if (c->msg_opcode != WS_TEXT)
		return WS_CLOSE_DATA;
	if (!utf8_valid((const char *)c->msg, c->msg_len))
		return WS_CLOSE_BAD_TEXT;
	reply = nhi_command(c->srv->a, (const char *)c->msg, c->msg_len);
	explicit_bzero(c->msg, sizeof(c->msg));
	c->msg_len = 0;
	code = send_frame(c, WS_TEXT, reply, strlen(reply)) ? 0 : -1;
	free(reply);
	return code;
}

/* After our close frame: stop sending and read what the client still had
 * in flight (at most a second), so that closing does not reset the TCP
 * connection and lose the close frame. */
static void
drain(int sock)
{
	unsigned char scratch[4096];
	struct pollfd pfd = {sock, POLLIN, 0};
	struct timespec start, now;

	shutdown(sock, SHUT_WR);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    1000)
			break;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (recv(sock, scratch, sizeof(scratch), 0) <= 0)
			break;
	}
}

static void *
conn_thread(void *arg)
{
	struct ws_conn *c = arg;
	struct nhi_server *srv = c->srv;
	time_t last = time(NULL);
	int code = 0;

	while (code == 0) {
		struct ws_frame f;
		struct pollfd pfd = {c->sock, POLLIN, 0};
		long used;
		ssize_t r;
		int pr;

		/* Every complete frame in the buffer first. */
		while (code == 0 && (used = ws_parse(c->in, c->have, &f)) != 0) {
			if (used < 0) {
				code = (int)-used;
				break;
			}
			code = on_frame(c, &f);
			memmove(c->in, c->in + used, c->have - (size_t)used);
			c->have -= (size_t)used;
		}
		if (code != 0)
			break;
		if (atomic_load(&srv->stopping)) {
			code = WS_CLOSE_GOING_AWAY;
			break;
		}
		if (time(NULL) - last > NHI_IDLE_SECONDS) {
			code = WS_CLOSE_NORMAL;
			break;
		}
		pr = poll(&pfd, 1, NHI_POLL_MS);
		if (pr < 0 && errno != EINTR)
			code = -1;
		if (pr <= 0)
			continue;
		if (c->have == sizeof(c->in)) { /* cannot happen: ws_parse limits frames */
			code = WS_CLOSE_TOO_BIG;
			break;
		}
		r = recv(c->sock, c->in + c->have, sizeof(c->in) - c->have, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r <= 0) {
			code = -1; /* the peer went away */
			break;
		}
		c->have += (size_t)r;
		last = time(NULL);
	}
	if (code > 0) {
		send_close(c, code);
		drain(c->sock);
	}
	if (code > 0 && code != WS_CLOSE_NORMAL && code != WS_CLOSE_GOING_AWAY)
		log_event(LOG_WARN, "ws_closed", json_pack("{s:i}", "code", code));
	explicit_bzero(c->in, sizeof(c->in));
	explicit_bzero(c->msg, sizeof(c->msg));
	MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(c);
	pthread_mutex_lock(&srv->lock);
	srv->live--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

static void
upgrade_cb(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
           size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct nhi_server *srv = cls;
	struct ws_conn *c;
	struct timeval tv = {10, 0};
	pthread_attr_t attr;
	pthread_t t;
	int fl;

	pthread_mutex_lock(&srv->lock);
	if (srv->live >= NHI_MAX_CONNECTIONS || atomic_load(&srv->stopping) ||
	    extra_in_size > sizeof(c->in)) {
		pthread_mutex_unlock(&srv->lock);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	srv->live++;
	pthread_mutex_unlock(&srv->lock);
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->urh = urh;
	c->sock = sock;
	memcpy(c->in, extra_in, extra_in_size);
	c->have = extra_in_size;
	/* Blocking sends with a time limit; reads go through poll(). */
	if ((fl = fcntl(sock, F_GETFL)) >= 0)
		fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		free(c);
		pthread_mutex_lock(&srv->lock);
		srv->live--;
		pthread_cond_broadcast(&srv->cond);
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_attr_destroy(&attr);
}

/* ---- the handshake ---- */

/* True when the comma-separated header value holds token (any case). */
static bool
has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;

		while (*e != '\0' && *e != ',')
			e++;
		const char *t = e;

		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		p = e;
	}
	return false;
}

static enum MHD_Result
refuse(struct MHD_Connection *conn, unsigned status, const char *error)
{
	return agent_send_json(conn, status, json_pack("{s:s}", "error", error));
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int marker;
	struct nhi_server *srv = cls;
	const char *origin, *upgrade, *connection, *ver, *key;
	struct MHD_Response *r;
	char accept[29];
	enum MHD_Result ret;
	int live;

	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* a handshake has no body: ignore it */
		return MHD_YES;
	}
	if (!agent_host_ok(conn, srv->a->nhi_port, nhi_hosts))
		return refuse(conn, 403, "forbidden_host");
	if (strcmp(url, "/echo") != 0)
		return refuse(conn, 404, "not_found");
	if (strcmp(method, "GET") != 0)
		return refuse(conn, 405, "method_not_allowed");
	origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (!agent_trusted(srv->a, origin)) {
		log_event(LOG_WARN, "untrusted_site",
		          json_pack("{s:s, s:s?}", "func", "nhi", "site", origin));
		return refuse(conn, 403, "untrusted_site");
	}
	upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
	connection = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
	ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	if (upgrade == NULL || !has_token(upgrade, "websocket") || connection == NULL ||
	    !has_token(connection, "upgrade"))
		return refuse(conn, 426, "websocket_expected");
	if (ver == NULL || strcmp(ver, "13") != 0) {
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
		ret = MHD_queue_response(conn, 426, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (key == NULL || !ws_accept(key, accept))
		return refuse(conn, 400, "bad_websocket_key");
	pthread_mutex_lock(&srv->lock);
	live = srv->live;
	pthread_mutex_unlock(&srv->lock);
	if (live >= NHI_MAX_CONNECTIONS || atomic_load(&srv->stopping))
		return refuse(conn, 503, "busy");
	r = MHD_create_response_for_upgrade(upgrade_cb, srv);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Upgrade", "websocket");
	MHD_add_response_header(r, "Connection", "Upgrade");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
	ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	*con_cls = NULL;
}

int
nhi_start(struct agent *a, struct nhi_server **srv_r, const char **error_r)
{
	struct nhi_server *srv = NULL;
	int fd;

	*srv_r = NULL;
	if (agent_listen(a->listen, a->nhi_port, &fd, &a->nhi_port, error_r) != 0)
		return ISSO_ERR_IO;
	srv = xcalloc(1, sizeof(*srv));
	srv->a = a;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	atomic_init(&srv->stopping, false);
	srv->d = agent_mhd_start(MHD_ALLOW_UPGRADE, fd, access_cb, srv, completed_cb,
	                         a->nhi_tls_cert, a->nhi_tls_key, error_r);
	if (srv->d == NULL) {
		pthread_cond_destroy(&srv->cond);
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return ISSO_ERR_IO;
	}
	*srv_r = srv;
	return 0;
}

void
nhi_stop(struct nhi_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stopping, true);
	pthread_mutex_lock(&srv->lock);
	while (srv->live > 0)
		pthread_cond_wait(&srv->cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	MHD_stop_daemon(srv->d);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
