/* Tests for the outbound HTTP client: address classes, the allow-list,
 * URL checks, and real requests to a listener on loopback that the policy
 * refuses unless it is listed. Host names come from a hosts file through
 * nss_wrapper (ctest sets LD_PRELOAD and NSS_WRAPPER_HOSTS; see
 * CMakeLists.txt), so a name can resolve to a private address here. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn/outbound.h"
#include "lib/isso.h"
#include "lib/log.h"

/* ---- a tiny HTTP server on 127.0.0.1 ---- */

static int srv_fd = -1;
static int srv_port;
static pthread_t srv_thread;
static volatile int srv_connections;
static const char *srv_reply = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Cache-Control: public, max-age=120\r\n"
                               "Age: 20\r\n"
                               "Content-Length: 12\r\n"
                               "Connection: close\r\n\r\n"
                               "{\"ok\":true}\n";
static char srv_last_request[4096];

static void *
srv_main(void *arg)
{
	for (;;) {
		char buf[4096];
		size_t len = 0;
		ssize_t n;
		int c = accept(srv_fd, NULL, NULL);

		if (c < 0)
			break;
		srv_connections++;
		/* read the head and a small body (the tests' are tiny) */
		while (len < sizeof(buf) - 1) {
			n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			char *end = strstr(buf, "\r\n\r\n");
			if (end != NULL) {
				const char *cl = strcasestr(buf, "\r\nContent-Length: ");
				size_t want = cl != NULL ? strtoul(cl + 18, NULL, 10) : 0;

				if (len >= (size_t)(end + 4 - buf) + want)
					break;
			}
		}
		buf[len] = '\0';
		memcpy(srv_last_request, buf, len + 1);
		(void)send(c, srv_reply, strlen(srv_reply), MSG_NOSIGNAL);
		close(c);
	}
	return NULL;
}

static int
setup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	log_init(2, LOG_ERROR);
	srv_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(srv_fd, 16) != 0 || getsockname(srv_fd, (struct sockaddr *)&sin, &sl) != 0)
		return -1;
	srv_port = ntohs(sin.sin_port);
	return pthread_create(&srv_thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	shutdown(srv_fd, SHUT_RDWR);
	close(srv_fd);
	pthread_join(srv_thread, NULL);
	return 0;
}

static void
configure(const char *issuer, const char *allow)
{
	struct outbound_policy p = {.issuer = issuer, .allow = allow};
	const char *err = NULL;

	assert_int_equal(outbound_configure(&p, &err), 0);
}

/* ---- real requests ---- */

static int
get(const char *url, unsigned flags, struct outbound_resp *resp, const char **err)
{
	struct outbound_req req = {
	    .method = OUTBOUND_GET,
	    .url = url,
	    .agent = "isso-test/1",
	    .timeout_ms = 5000,
	    .reply_max = 4096,
	    .flags = flags,
	    .purpose = "test",
	};

	return outbound_request(&req, resp, err);
}

/* Before outbound_configure() nothing may go out. Runs first. */
static void
test_unconfigured_refuses(void **state)
{
	struct outbound_resp resp;
	const char *err = NULL;
	char url[128];
	int before = srv_connections;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv_port);
	assert_int_equal(outbound_check_url("https://example.gov.tw/", &err), ISSO_ERR_DENIED);
	assert_int_equal(get(url, OUTBOUND_PLAIN_HTTP_OK, &resp, &err), ISSO_ERR_DENIED);
	outbound_resp_free(&resp);
	assert_false(outbound_address_allowed("example.gov.tw", "8.8.8.8", 443));
	assert_int_equal(srv_connections, before);
}

/* ---- classification ---- */

static void
test_classify_v4(void **state)
{
	static const struct {
		const char *ip;
		enum outbound_class c;
	} cases[] = {
	    {"8.8.8.8", OUTBOUND_PUBLIC},
	    {"93.184.215.14", OUTBOUND_PUBLIC},
	    {"127.0.0.1", OUTBOUND_LOOPBACK},
	    {"127.255.255.254", OUTBOUND_LOOPBACK},
	    {"10.0.0.1", OUTBOUND_PRIVATE},
	    {"172.16.0.1", OUTBOUND_PRIVATE},
	    {"172.31.255.255", OUTBOUND_PRIVATE},
	    {"172.32.0.1", OUTBOUND_PUBLIC},
	    {"172.15.255.255", OUTBOUND_PUBLIC},
	    {"192.168.1.1", OUTBOUND_PRIVATE},
	    {"169.254.1.1", OUTBOUND_LINK_LOCAL},
	    {"169.254.169.254", OUTBOUND_METADATA},
	    {"169.254.170.2", OUTBOUND_METADATA},
	    {"100.100.100.200", OUTBOUND_METADATA},
	    {"100.64.0.1", OUTBOUND_CGNAT},
	    {"100.127.255.255", OUTBOUND_CGNAT},
	    {"100.128.0.1", OUTBOUND_PUBLIC},
	    {"224.0.0.1", OUTBOUND_MULTICAST},
	    {"239.255.255.250", OUTBOUND_MULTICAST},
	    {"255.255.255.255", OUTBOUND_MULTICAST},
	    {"0.0.0.0", OUTBOUND_UNSPECIFIED},
	    {"0.1.2.3", OUTBOUND_UNSPECIFIED},
	    {"240.0.0.1", OUTBOUND_RESERVED},
	    {"192.0.2.10", OUTBOUND_RESERVED},
	    {"198.51.100.7", OUTBOUND_RESERVED},
	    {"203.0.113.9", OUTBOUND_RESERVED},
	    {"198.18.0.1", OUTBOUND_RESERVED},
	    {"192.0.0.192", OUTBOUND_METADATA},
	    {"not-an-ip", OUTBOUND_INVALID},
	    {"127.1", OUTBOUND_INVALID},
	    {"", OUTBOUND_INVALID},
	};

	for (size_t i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		enum outbound_class c = outbound_classify(cases[i].ip);

		if (c != cases[i].c)
			fail_msg("%s: %s, expected %s", cases[i].ip, outbound_class_name(c),
			         outbound_class_name(cases[i].c));
	}
	assert_int_equal(outbound_classify(NULL), OUTBOUND_INVALID);
}

static void
test_classify_v6(void **state)
{
	static const struct {
		const char *ip;
		enum outbound_class c;
	} cases[] = {
	    {"2001:4860:4860::8888", OUTBOUND_PUBLIC},
	    {"2606:4700::1111", OUTBOUND_PUBLIC},
	    {"::1", OUTBOUND_LOOPBACK},
	    {"::", OUTBOUND_UNSPECIFIED},
	    {"fc00::1", OUTBOUND_PRIVATE},
	    {"fd12:3456::1", OUTBOUND_PRIVATE},
	    {"fec0::1", OUTBOUND_PRIVATE},
	    {"fe80::1", OUTBOUND_LINK_LOCAL},
	    {"febf::1", OUTBOUND_LINK_LOCAL},
	    {"ff02::1", OUTBOUND_MULTICAST},
	    {"fd00:ec2::254", OUTBOUND_METADATA},
	    /* IPv4 inside IPv6 is judged as the IPv4 address */
	    {"::ffff:127.0.0.1", OUTBOUND_LOOPBACK},
	    {"::ffff:7f00:1", OUTBOUND_LOOPBACK},
	    {"::ffff:10.1.2.3", OUTBOUND_PRIVATE},
	    {"::ffff:169.254.169.254", OUTBOUND_METADATA},
	    {"::ffff:8.8.8.8", OUTBOUND_PUBLIC},
	    {"64:ff9b::a9fe:a9fe", OUTBOUND_METADATA},
	    {"64:ff9b::10.0.0.1", OUTBOUND_PRIVATE},
	    {"64:ff9b::8.8.8.8", OUTBOUND_PUBLIC},
	    {"64:ff9b:1::1", OUTBOUND_PRIVATE},
	    {"2002:7f00:1::1", OUTBOUND_LOOPBACK},
	    {"2002:0808:0808::1", OUTBOUND_PUBLIC},
	    /* IPv4-compatible (deprecated), Teredo, documentation, outside 2000::/3 */
	    {"::127.0.0.1", OUTBOUND_RESERVED},
	    {"2001::1", OUTBOUND_RESERVED},
	    {"2001:db8::1", OUTBOUND_RESERVED},
	    {"3fff::1", OUTBOUND_RESERVED},
	    {"100::1", OUTBOUND_RESERVED},
	    {"4000::1", OUTBOUND_RESERVED},
	    {"fe80::1%eth0", OUTBOUND_INVALID},
	};

	for (size_t i = 0; i < ISSO_N_ELEMENTS(cases); i++) {
		enum outbound_class c = outbound_classify(cases[i].ip);

		if (c != cases[i].c)
			fail_msg("%s: %s, expected %s", cases[i].ip, outbound_class_name(c),
			         outbound_class_name(cases[i].c));
	}
}

/* ---- the allow-list ---- */

static void
test_allow_list(void **state)
{
	const char *err = NULL;
	struct outbound_policy p = {.issuer = "https://isso.example.gov.tw"};

	configure("https://isso.example.gov.tw", "");
	assert_true(outbound_address_allowed("example.gov.tw", "8.8.8.8", 443));
	assert_false(outbound_address_allowed("x", "127.0.0.1", 80));
	assert_false(outbound_address_allowed("x", "10.0.0.1", 443));
	assert_false(outbound_address_allowed("x", "::ffff:10.0.0.1", 443));
	assert_false(outbound_address_allowed("x", "169.254.169.254", 80));

	configure("https://isso.example.gov.tw",
	          "10.0.0.0/8, 127.0.0.1:8090 [::1]:9000 sms.internal:443, fd00::/8,"
	          "::ffff:192.168.0.0/112");
	assert_true(outbound_address_allowed("x", "10.20.30.40", 443));
	assert_true(outbound_address_allowed("x", "::ffff:10.20.30.40", 443));
	assert_true(outbound_address_allowed("x", "11.0.0.1", 443));
	assert_false(outbound_address_allowed("x", "172.16.0.1", 443));
	assert_true(outbound_address_allowed("x", "127.0.0.1", 8090));
	assert_false(outbound_address_allowed("x", "127.0.0.1", 8091));
	assert_false(outbound_address_allowed("x", "127.0.0.2", 8090));
	assert_true(outbound_address_allowed("x", "::1", 9000));
	assert_false(outbound_address_allowed("x", "::1", 8090));
	/* a listed name vouches for what it resolves to, on its port */
	assert_true(outbound_address_allowed("sms.internal", "172.20.0.5", 443));
	assert_true(outbound_address_allowed("SMS.Internal", "172.20.0.5", 443));
	assert_false(outbound_address_allowed("sms.internal", "172.20.0.5", 80));
	assert_false(outbound_address_allowed("other.internal", "172.20.0.5", 443));
	/* …but never for a metadata address */
	assert_false(outbound_address_allowed("sms.internal", "169.254.169.254", 443));
	assert_true(outbound_address_allowed("x", "fd12::1", 443));
	assert_false(outbound_address_allowed("x", "fd00:ec2::254", 80));
	assert_true(outbound_address_allowed("x", "192.168.7.7", 443));

	/* metadata only by an entry naming exactly that address */
	configure("https://isso.example.gov.tw", "169.254.0.0/16");
	assert_true(outbound_address_allowed("x", "169.254.1.1", 80));
	assert_false(outbound_address_allowed("x", "169.254.169.254", 80));
	configure("https://isso.example.gov.tw", "169.254.169.254");
	assert_true(outbound_address_allowed("x", "169.254.169.254", 80));
	assert_true(outbound_address_allowed("x", "::ffff:169.254.169.254", 80));

	/* malformed entries name their position */
	static const char *const bad[] = {
	    "10.0.0.0/33", "::/129", "host:0",    "host:65536", "[::1", "::1:80x",
	    "a..b",        "-a",     "10.0.0.0/", "/8",         "h_st", "[10.0.0.1]:80",
	};
	for (size_t i = 0; i < ISSO_N_ELEMENTS(bad); i++) {
		char allow[64];

		snprintf(allow, sizeof(allow), "127.0.0.1, %s", bad[i]);
		p.allow = allow;
		err = NULL;
		if (outbound_configure(&p, &err) != ISSO_ERR_INVALID)
			fail_msg("accepted allow entry %s", bad[i]);
		assert_non_null(strstr(err, "entry 2"));
	}
	/* separators only: an empty list; more than 64 entries: refused */
	p.allow = " ,\t, ";
	assert_int_equal(outbound_configure(&p, &err), 0);
	{
		char many[65 * 12 + 1] = "";

		for (int i = 0; i < 65; i++)
			snprintf(many + strlen(many), sizeof(many) - strlen(many), "10.0.0.%d,", i);
		p.allow = many;
		assert_int_equal(outbound_configure(&p, &err), ISSO_ERR_INVALID);
		assert_non_null(strstr(err, "more than 64"));
		many[strlen(many) - strlen("10.0.0.64,")] = '\0';
		assert_int_equal(outbound_configure(&p, &err), 0);
	}
	p.issuer = "not a url";
	p.allow = "";
	assert_int_equal(outbound_configure(&p, &err), ISSO_ERR_INVALID);
}

/* ---- URL checks ---- */

static void
test_check_url(void **state)
{
	const char *err = NULL;

	/* public issuer: https only, internal hosts refused */
	configure("https://isso.example.gov.tw", "");
	assert_int_equal(outbound_check_url("https://rp.example.gov.tw/jwks", &err), 0);
	assert_int_equal(outbound_check_url("https://93.184.215.14:8443/x?y=1", &err), 0);
	assert_int_equal(outbound_check_url("http://rp.example.gov.tw/jwks", &err),
	                 ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "http"));
	assert_int_equal(
	    outbound_check_url_flags("http://ocsp.example.gov.tw/", OUTBOUND_PLAIN_HTTP_OK, &err),
	    0);
	assert_int_equal(outbound_check_url("https://127.0.0.1/jwks", &err), ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "loopback"));
	assert_int_equal(outbound_check_url("https://localhost/jwks", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://api.localhost./jwks", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://[::1]/jwks", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://[::ffff:127.0.0.1]/", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://10.1.2.3/", &err), ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "private"));
	assert_int_equal(outbound_check_url("https://169.254.169.254/latest", &err),
	                 ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "metadata"));
	assert_int_equal(outbound_check_url("https://[fd00:ec2::254]/", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://0.0.0.0/", &err), ISSO_ERR_DENIED);
	/* numeric forms libcurl reads as IPv4 are judged as the address */
	assert_int_equal(outbound_check_url("https://2130706433/", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://0x7f000001/", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://127.1/", &err), ISSO_ERR_DENIED);

	/* syntax */
	static const char *const malformed[] = {
	    "ftp://example.gov.tw/",
	    "file:///etc/passwd",
	    "gopher://x/",
	    "https://user:pw@example.gov.tw/",
	    "https://example.gov.tw@127.0.0.1/",
	    "https://example.gov.tw/#frag",
	    "https://[fe80::1%25eth0]/",
	    "https://exa mple.gov.tw/",
	    "https:///path",
	    "//example.gov.tw/",
	    "example.gov.tw",
	    "",
	    "https://example.gov.tw:0/",
	    "https://example.gov.tw:99999/",
	    "https://ex_ample.gov.tw/",
	};
	for (size_t i = 0; i < ISSO_N_ELEMENTS(malformed); i++) {
		if (outbound_check_url(malformed[i], &err) != ISSO_ERR_INVALID)
			fail_msg("accepted %s", malformed[i]);
	}
	assert_int_equal(outbound_check_url(NULL, &err), ISSO_ERR_INVALID);
	{
		char longurl[OUTBOUND_URL_MAX + 32];

		snprintf(longurl, sizeof(longurl), "https://example.gov.tw/");
		memset(longurl + strlen(longurl), 'a', OUTBOUND_URL_MAX);
		longurl[OUTBOUND_URL_MAX + 1] = '\0';
		assert_int_equal(outbound_check_url(longurl, &err), ISSO_ERR_INVALID);
	}

	/* loopback issuer: plain http allowed, addresses still checked */
	configure("http://127.0.0.1:8080", "");
	assert_int_equal(outbound_check_url("http://rp.example.gov.tw/jwks", &err), 0);
	assert_int_equal(outbound_check_url("http://127.0.0.1:9000/jwks", &err), ISSO_ERR_DENIED);
	configure("http://localhost:8080", "127.0.0.1");
	assert_int_equal(outbound_check_url("http://127.0.0.1:9000/jwks", &err), 0);
	/* localhost is judged as 127.0.0.1 here (at request time, every
	 * address it resolves to) */
	assert_int_equal(outbound_check_url("http://localhost:9000/jwks", &err), 0);
	configure("http://[::1]:8080", "10.0.0.0/8");
	assert_int_equal(outbound_check_url("http://localhost:9000/jwks", &err), ISSO_ERR_DENIED);
	configure("http://[::1]:8080", "localhost");
	assert_int_equal(outbound_check_url("http://localhost:9000/jwks", &err), 0);
	/* a public issuer on an address literal is not loopback */
	configure("https://93.184.215.14", "127.0.0.1");
	assert_int_equal(outbound_check_url("http://127.0.0.1:9000/", &err), ISSO_ERR_DENIED);
	assert_int_equal(outbound_check_url("https://127.0.0.1:9000/", &err), 0);
}

static void
test_request_loopback(void **state)
{
	struct outbound_resp resp;
	const char *err = NULL;
	char url[128];
	int before;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks?secret=x", srv_port);

	configure("http://127.0.0.1:8080", "");
	before = srv_connections;
	assert_int_equal(get(url, 0, &resp, &err), ISSO_ERR_DENIED);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before);

	/* listed: the request goes through */
	configure("http://127.0.0.1:8080", "127.0.0.1");
	assert_int_equal(get(url, 0, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body.data, "{\"ok\":true}\n");
	assert_string_equal(resp.content_type, "application/json");
	assert_int_equal(resp.max_age, 100); /* max-age 120 minus Age 20 */
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before + 1);
	assert_non_null(strstr(srv_last_request, "GET /jwks?secret=x HTTP/1.1\r\n"));
	assert_non_null(strstr(srv_last_request, "User-Agent: isso-test/1\r\n"));

	/* listed with another port: refused */
	configure("http://127.0.0.1:8080", "127.0.0.1:1");
	assert_int_equal(get(url, 0, &resp, &err), ISSO_ERR_DENIED);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before + 1);

	/* public issuer: plain http refused even when listed, unless signed */
	configure("https://isso.example.gov.tw", "127.0.0.1");
	assert_int_equal(get(url, 0, &resp, &err), ISSO_ERR_DENIED);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before + 1);
	assert_int_equal(get(url, OUTBOUND_PLAIN_HTTP_OK, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before + 2);
}

static void
test_request_post_and_limits(void **state)
{
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
	                                      "Authorization: Basic c2VjcmV0", NULL};
	struct outbound_resp resp;
	struct outbound_req req = {
	    .method = OUTBOUND_POST,
	    .headers = headers,
	    .body = "a=1&b=2",
	    .body_len = 7,
	    .timeout_ms = 5000,
	    .reply_max = 4096,
	    .purpose = "test",
	};
	const char *err = NULL;
	char url[128];

	configure("http://127.0.0.1:8080", "127.0.0.1");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/post", srv_port);
	req.url = url;
	assert_int_equal(outbound_request(&req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	outbound_resp_free(&resp);
	assert_non_null(strstr(srv_last_request, "POST /post HTTP/1.1\r\n"));
	assert_non_null(strstr(srv_last_request, "Authorization: Basic c2VjcmV0\r\n"));
	assert_non_null(strstr(srv_last_request, "\r\n\r\na=1&b=2"));
	assert_null(strstr(srv_last_request, "Expect:"));

	/* a reply larger than reply_max */
	req.reply_max = 4;
	assert_int_equal(outbound_request(&req, &resp, &err), ISSO_ERR_LIMIT);
	outbound_resp_free(&resp);

	/* nothing listens on port 1 */
	req.reply_max = 4096;
	configure("http://127.0.0.1:8080", "127.0.0.1");
	req.url = "http://127.0.0.1:1/";
	assert_int_equal(outbound_request(&req, &resp, &err), ISSO_ERR_IO);
	outbound_resp_free(&resp);
	req.url = "http://no-such-host.invalid/";
	assert_int_equal(outbound_request(&req, &resp, &err), ISSO_ERR_IO);
	outbound_resp_free(&resp);
	req.url = "ftp://127.0.0.1/";
	assert_int_equal(outbound_request(&req, &resp, &err), ISSO_ERR_INVALID);
	outbound_resp_free(&resp);
}

/* Names from the hosts file (tests/unit/outbound-hosts via nss_wrapper). */
static void
test_request_names(void **state)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct outbound_resp resp;
	const char *err = NULL;
	char url[128];
	int before = srv_connections;

	/* the hosts file must be in use, or this test proves nothing */
	assert_int_equal(getaddrinfo("intranet.example", "443", &hints, &res), 0);
	freeaddrinfo(res);

	configure("http://127.0.0.1:8080", "");
	/* a name that resolves to a private address */
	assert_int_equal(get("http://intranet.example/jwks", 0, &resp, &err), ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "private"));
	outbound_resp_free(&resp);
	/* one good and one metadata address: every address must pass */
	assert_int_equal(get("http://mixed.example/jwks", 0, &resp, &err), ISSO_ERR_DENIED);
	assert_non_null(strstr(err, "metadata"));
	outbound_resp_free(&resp);
	/* a name for loopback: refused, then allowed by its name */
	snprintf(url, sizeof(url), "http://loop.example:%d/x", srv_port);
	assert_int_equal(get(url, 0, &resp, &err), ISSO_ERR_DENIED);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before);
	configure("http://127.0.0.1:8080", "loop.example");
	assert_int_equal(get(url, 0, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	outbound_resp_free(&resp);
	assert_non_null(strstr(srv_last_request, "Host: loop.example:"));
	assert_int_equal(srv_connections, before + 1);
	/* …and by its address */
	configure("http://127.0.0.1:8080", "127.0.0.0/8");
	assert_int_equal(get(url, 0, &resp, &err), 0);
	outbound_resp_free(&resp);
	assert_int_equal(srv_connections, before + 2);
}

static void
test_form_add(void **state)
{
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(outbound_form_add(&b, "username", "isso"), 0);
	assert_int_equal(outbound_form_add(&b, "smbody", "碼 1&2=3+~"), 0);
	assert_string_equal(b.data, "username=isso&smbody=%E7%A2%BC%201%262%3D3%2B~");
	assert_int_equal(outbound_form_add(&b, "x", "0123456789012345678901234567890"),
	                 ISSO_ERR_LIMIT);
	assert_string_equal(b.data, "username=isso&smbody=%E7%A2%BC%201%262%3D3%2B~");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unconfigured_refuses),
	    cmocka_unit_test(test_classify_v4),
	    cmocka_unit_test(test_classify_v6),
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_check_url),
	    cmocka_unit_test(test_request_loopback),
	    cmocka_unit_test(test_request_post_and_limits),
	    cmocka_unit_test(test_request_names),
	    cmocka_unit_test(test_form_add),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
