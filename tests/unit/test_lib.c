/* Unit tests for the base library: pool, buf, b64, log, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/hex.h"
#include "lib/isso.h"
#include "lib/log.h"
#include "lib/loginchal.h"
#include "lib/pool.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

static void
test_strerror(void **state)
{
	assert_string_equal(isso_strerror(0), "ok");
	assert_string_equal(isso_strerror(ISSO_ERR_LIMIT), "limit reached");
	assert_string_equal(isso_strerror(-1000), "unknown error");
}

static void
test_xmalloc(void **state)
{
	char *s = xasprintf("%s-%d", "a", 42);

	assert_string_equal(s, "a-42");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	xfree_secret(s);
	xfree_secret(NULL);
	s = xstrndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
}

static void
test_pool(void **state)
{
	struct pool *p = pool_new(0);
	unsigned char *a, *big, *sec;
	char *s;
	size_t i;
	int j;

	for (j = 0; j < 1000; j++) {
		a = pool_alloc(p, (size_t)j % 37 + 1);
		assert_non_null(a);
		assert_int_equal((uintptr_t)a % 16, 0);
		for (i = 0; i < (size_t)j % 37 + 1; i++)
			assert_int_equal(a[i], 0);
		memset(a, 0xaa, (size_t)j % 37 + 1);
	}
	a = pool_alloc(p, 0);
	assert_non_null(a);
	big = pool_alloc(p, 1 << 20);
	assert_int_equal((uintptr_t)big % 16, 0);
	for (i = 0; i < 1 << 20; i += 4096)
		assert_int_equal(big[i], 0);
	memset(big, 1, 1 << 20);
	/* After a large allocation, small ones still come from a block. */
	a = pool_alloc(p, 8);
	assert_non_null(a);
	sec = pool_alloc_secret(p, 64);
	assert_int_equal((uintptr_t)sec % 16, 0);
	memset(sec, 's', 64);
	s = pool_strdup(p, "hello");
	assert_string_equal(s, "hello");
	assert_null(pool_strdup(p, NULL));
	s = pool_strndup(p, "hello world", 5);
	assert_string_equal(s, "hello");
	s = pool_printf(p, "%d-%s-%05.1f", 7, "x", 2.25);
	assert_string_equal(s, "7-x-002.2");
	s = pool_printf(p, "%2000d", 1);
	assert_int_equal(strlen(s), 2000);
	pool_free(p);
	pool_free(NULL);

	p = pool_new(1);
	for (j = 0; j < 100; j++)
		assert_non_null(pool_alloc(p, 200));
	pool_free(p);
}

static void
test_buf(void **state)
{
	struct buf b;
	char *s;
	size_t len;
	int i;

	buf_init(&b, 10);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_addstr(&b, "hello"), 0);
	assert_int_equal(buf_addc(&b, ' '), 0);
	assert_int_equal(buf_printf(&b, "%d", 123), 0);
	assert_string_equal(b.data, "hello 123");
	/* Would exceed 10: refused, unchanged. */
	assert_int_equal(buf_addstr(&b, "ab"), ISSO_ERR_LIMIT);
	assert_string_equal(b.data, "hello 123");
	assert_int_equal(buf_printf(&b, "%s", "xy"), ISSO_ERR_LIMIT);
	assert_string_equal(b.data, "hello 123");
	assert_int_equal(b.len, 9);
	assert_int_equal(buf_addc(&b, '!'), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(buf_addc(&b, '!'), ISSO_ERR_LIMIT);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_int_equal(buf_add(&b, "x", SIZE_MAX), ISSO_ERR_LIMIT);
	s = buf_detach(&b, &len);
	assert_string_equal(s, "hello 123!");
	assert_int_equal(len, 10);
	free(s);
	assert_int_equal(b.len, 0);
	/* Usable again after detach. */
	assert_int_equal(buf_addstr(&b, "again"), 0);
	assert_string_equal(b.data, "again");
	buf_reset(&b);
	assert_string_equal(b.data, "");
	s = buf_detach(&b, NULL);
	assert_string_equal(s, "");
	free(s);
	s = buf_detach(&b, NULL);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);

	/* Growth through many sizes, binary content. */
	buf_init(&b, 100000);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_add(&b, "a\0cdefghij", 10), 0);
	assert_int_equal(b.len, 100000);
	assert_int_equal(b.data[1], '\0');
	assert_int_equal(b.data[100000], '\0');
	assert_int_equal(buf_addc(&b, 'x'), ISSO_ERR_LIMIT);
	buf_free_secret(&b);
	assert_null(b.data);

	buf_init(&b, 5000);
	assert_int_equal(buf_printf(&b, "%3000d", 5), 0);
	assert_int_equal(b.len, 3000);
	assert_int_equal(buf_printf(&b, "%3000d", 5), ISSO_ERR_LIMIT);
	assert_int_equal(b.len, 3000);
	assert_int_equal(strlen(b.data), 3000);
	buf_free(&b);

	buf_init(&b, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_addc(&b, 'a'), ISSO_ERR_LIMIT);
	buf_free(&b);
}

static void
test_b64(void **state)
{
	unsigned char data[256], out[300];
	char enc[400];
	size_t n;
	long r;

	for (n = 0; n < sizeof(data); n++)
		data[n] = (unsigned char)(n * 7 + 3);
	for (n = 0; n <= 70; n++) {
		b64url_encode(data, n, enc);
		assert_int_equal(strlen(enc), b64url_encoded_len(n));
		assert_null(strpbrk(enc, "+/="));
		r = b64url_decode(enc, strlen(enc), out, sizeof(out));
		assert_int_equal(r, (long)n);
		assert_memory_equal(out, data, n);
		b64_encode(data, n, enc);
		assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
		r = b64_decode(enc, strlen(enc), out, sizeof(out));
		assert_int_equal(r, (long)n);
		assert_memory_equal(out, data, n);
	}
	/* RFC 4648 §10 vectors. */
	assert_string_equal(b64_encode("foob", 4, enc), "Zm9vYg==");
	assert_string_equal(b64_encode("fooba", 5, enc), "Zm9vYmE=");
	assert_string_equal(b64_encode("foobar", 6, enc), "Zm9vYmFy");
	assert_string_equal(b64url_encode("fooba", 5, enc), "Zm9vYmE");
	assert_string_equal(b64url_encode("\xfb\xff", 2, enc), "-_8");
	assert_string_equal(b64_encode("\xfb\xff", 2, enc), "+/8=");
	assert_int_equal(b64url_encoded_len(32), 43);

	/* Rejects. */
	assert_int_equal(b64url_decode("Zm9vYmE=", 8, out, sizeof(out)), -1); /* padding */
	assert_int_equal(b64url_decode("Zm9v+mE", 7, out, sizeof(out)), -1);  /* std char */
	assert_int_equal(b64url_decode("Zm9 vYmE", 8, out, sizeof(out)), -1); /* space */
	assert_int_equal(b64url_decode("Zm9vY", 5, out, sizeof(out)), -1);    /* length 4n+1 */
	assert_int_equal(b64url_decode("Zm9vYmF", 7, out, sizeof(out)), -1);  /* bits set */
	assert_int_equal(b64url_decode("Zh", 2, out, sizeof(out)), -1);       /* bits set */
	assert_int_equal(b64url_decode("Zg", 2, out, sizeof(out)), 1);
	assert_int_equal(b64url_decode("Zm\0v", 4, out, sizeof(out)), -1); /* NUL */
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 5), -1);        /* too small */
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 6), 6);
	assert_int_equal(b64url_decode("", 0, out, 0), 0);
	assert_int_equal(b64_decode("Zm9vYg=", 7, out, sizeof(out)), -1);  /* length */
	assert_int_equal(b64_decode("Zm9vYg", 6, out, sizeof(out)), -1);   /* no padding */
	assert_int_equal(b64_decode("Zm9v-g==", 8, out, sizeof(out)), -1); /* url char */
	assert_int_equal(b64_decode("Zm=vYg==", 8, out, sizeof(out)), -1); /* inner pad */
	assert_int_equal(b64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(b64_decode("====", 4, out, sizeof(out)), -1);
	assert_int_equal(b64_decode("Zm9vYh==", 8, out, sizeof(out)), -1); /* bits set */
	assert_int_equal(b64_decode("Zm9vYg==", 8, out, 3), -1);           /* too small */
	assert_int_equal(b64_decode("Zm9vYg==", 8, out, 4), 4);
	assert_memory_equal(out, "foob", 4);
}

static void
test_log_mask(void **state)
{
	char out[32];
	char longv[200];

	assert_string_equal(log_mask("A123456789", out), "A*******89");
	assert_string_equal(log_mask("0912345678", out), "0*******78");
	assert_string_equal(log_mask("abcd", out), "a*cd");
	assert_string_equal(log_mask("abc", out), "***");
	assert_string_equal(log_mask("", out), "");
	assert_string_equal(log_mask(NULL, out), "");
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	log_mask(longv, out);
	assert_true(strlen(out) < 32);
	assert_int_equal(out[0], 'x');
	/* Non-ASCII bytes never survive (no split UTF-8 character). */
	assert_string_equal(log_mask("\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e", out), "*********");
}

/* Reads what log_* wrote to a temporary file. */
static char *
read_file(FILE *f)
{
	static char text[8192];
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	return text;
}

static void
test_log_event(void **state)
{
	FILE *f = tmpfile();
	json_t *j, *fields;
	json_error_t err;
	char *text, *nl;
	char big[3000];

	assert_non_null(f);
	log_init(fileno(f), LOG_INFO);
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("INFO"), -1);
	assert_int_equal(log_level_parse(NULL), -1);

	log_info("login_ok", "method", "telecom", "who", "A*******89", NULL);
	text = read_file(f);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	j = json_loads(text, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "event")), "login_ok");
	assert_string_equal(json_string_value(json_object_get(j, "method")), "telecom");
	text = (char *)json_string_value(json_object_get(j, "ts"));
	assert_int_equal(strlen(text), 24);
	assert_int_equal(text[10], 'T');
	assert_int_equal(text[19], '.');
	assert_int_equal(text[23], 'Z');
	json_decref(j);

	/* Below the level: nothing. */
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	log_event(LOG_DEBUG, "noise", json_pack("{s:i}", "n", 1));
	assert_string_equal(read_file(f), "");

	/* Fields cannot replace the fixed members; hostile strings stay one line. */
	fields = json_pack("{s:s, s:s, s:i}", "level", "debug", "ua", "a\nb\"c", "n", 5);
	log_event(LOG_WARN, "x", fields);
	text = read_file(f);
	assert_non_null(strchr(text, '\n'));
	assert_int_equal(strchr(text, '\n')[1], '\0');
	j = json_loads(text, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(j, "ua")), "a\nb\"c");
	assert_int_equal(json_integer_value(json_object_get(j, "n")), 5);
	json_decref(j);

	/* Invalid UTF-8 and huge values are made safe. */
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	rewind(f);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error("bad", "bytes", "\xff\xfeok", "big", big, "odd", NULL);
	text = read_file(f);
	j = json_loads(text, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "bytes")), "??ok");
	assert_true(strlen(json_string_value(json_object_get(j, "big"))) <= 1024);
	assert_true(json_is_null(json_object_get(j, "odd")));
	json_decref(j);

	log_init(2, LOG_INFO);
	fclose(f);
}

static void *
log_thread(void *arg)
{
	char pad[600];
	int i;

	memset(pad, 'a' + (int)(intptr_t)arg, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (i = 0; i < 200; i++)
		log_warn("concurrent", "pad", pad, NULL);
	return NULL;
}

static void
test_log_threads(void **state)
{
	FILE *f = tmpfile();
	pthread_t t[4];
	char line[2048];
	json_error_t err;
	json_t *j;
	int i, n = 0;

	assert_non_null(f);
	log_init(fileno(f), LOG_INFO);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	log_init(2, LOG_INFO);
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		j = json_loads(line, 0, &err);
		if (j == NULL)
			fail_msg("line %d not JSON: %s", n + 1, err.text);
		assert_int_equal(strlen(json_string_value(json_object_get(j, "pad"))), 599);
		json_decref(j);
		n++;
	}
	assert_int_equal(n, 800);
	fclose(f);
}

static const char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/isso-test-lib-%ld.ini", (long)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
clear_env(void)
{
	unsetenv("ISSO_SERVER_PORT");
	unsetenv("ISSO_SERVER_PUBLIC_URL");
	unsetenv("ISSO_SERVER_LISTEN");
	unsetenv("ISSO_STORE_DRIVER");
	unsetenv("ISSO_STORE_CLIENT_CACHE_MS");
	unsetenv("ISSO_SMS_PASSWORD");
	unsetenv("ISSO_OIDC_CODE_TTL");
	unsetenv("ISSO_KEYS_MASTER_KEY_FILE");
	unsetenv("ISSO_LOG_LEVEL");
}

static void
test_config_defaults(void **state)
{
	struct isso_config c;
	const char *err = "x";

	clear_env();
	assert_int_equal(config_load(NULL, &c, &err), 0);
	assert_null(err);
	assert_string_equal(c.server.listen, "127.0.0.1");
	assert_int_equal(c.server.port, 8080);
	assert_string_equal(c.server.public_url, "http://127.0.0.1:8080");
	assert_int_equal(c.server.threads, 0);
	assert_int_equal(c.server.max_body, 65536);
	assert_string_equal(c.server.datadir, ISSO_DATADIR);
	assert_string_equal(c.store.driver, "sqlite");
	assert_string_equal(c.store.path, "var/isso.db");
	assert_string_equal(c.store.conninfo, "");
	assert_int_equal(c.store.client_cache_ms, 1000);
	assert_string_equal(c.keys.master_key_file, "var/master.key");
	assert_string_equal(c.log.level, "info");
	assert_int_equal(c.oidc.code_ttl, 60);
	assert_int_equal(c.oidc.access_token_ttl, 600);
	assert_int_equal(c.oidc.refresh_token_ttl, 2592000);
	assert_int_equal(c.oidc.id_token_ttl, 600);
	assert_int_equal(c.oidc.session_ttl, 28800);
	assert_int_equal(c.oidc.txn_ttl, 900);
	assert_int_equal(c.oidc.par_ttl, 60);
	assert_int_equal(c.oidc.sealed_access_tokens, 1);
	assert_int_equal(c.security.account_free_failures, 3);
	assert_int_equal(c.security.account_delay_max, 10);
	assert_int_equal(c.security.ip_rate_per_min, 30);
	assert_string_equal(c.outbound.allow, "");
	assert_true(config_issuer_on_loopback(&c));
	config_free(&c);
	config_free(&c);
}

static void
test_config_file_env(void **state)
{
	struct isso_config c;
	const char *err = NULL, *path;

	clear_env();
	path = write_tmp("; comment\n"
	                 "# another\n"
	                 "[server]\n"
	                 "port = 9000\n"
	                 "threads = 4\n"
	                 "\n"
	                 "[store]\n"
	                 "driver = postgresql\n"
	                 "conninfo = host=db dbname=isso\n"
	                 "[oidc]\n"
	                 "code_ttl = 30\n");
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_int_equal(c.server.port, 9000);
	/* public_url follows the port when not set. */
	assert_string_equal(c.server.public_url, "http://127.0.0.1:9000");
	assert_int_equal(c.server.threads, 4);
	assert_string_equal(c.store.driver, "postgresql");
	assert_string_equal(c.store.conninfo, "host=db dbname=isso");
	assert_int_equal(c.oidc.code_ttl, 30);
	config_free(&c);

	/* Environment wins over the file. */
	setenv("ISSO_OIDC_CODE_TTL", "45", 1);
	setenv("ISSO_SERVER_PUBLIC_URL", "https://sso.example.gov.tw/", 1);
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_int_equal(c.oidc.code_ttl, 45);
	assert_string_equal(c.server.public_url, "https://sso.example.gov.tw");
	assert_int_equal(c.server.port, 9000);
	config_free(&c);

	/* Port from the environment alone, IPv6 listen. */
	clear_env();
	setenv("ISSO_SERVER_PORT", "8443", 1);
	setenv("ISSO_SERVER_LISTEN", "::1", 1);
	assert_int_equal(config_load(NULL, &c, &err), 0);
	assert_string_equal(c.server.public_url, "http://[::1]:8443");
	config_free(&c);
	clear_env();

	path = write_tmp("[server]\npublic_url = http://localhost:8080///\n");
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_string_equal(c.server.public_url, "http://localhost:8080");
	config_free(&c);
	unlink(path);
}

static void
expect_error(const char *text, const char *needle)
{
	struct isso_config c;
	const char *err = NULL, *path = write_tmp(text);

	assert_int_equal(config_load(path, &c, &err), ISSO_ERR_INVALID);
	assert_non_null(err);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	/* cfg is released on failure; freeing again is harmless. */
	assert_null(c.server.listen);
	config_free(&c);
	unlink(path);
}

static void
test_config_errors(void **state)
{
	struct isso_config c;
	const char *err = NULL;
	char longline[400];

	clear_env();
	expect_error("[server]\nport = 80\nbogus = 1\n", "line 3: unknown key [server] bogus");
	expect_error("[server]\n\nport = 8x\n", "line 3: [server] port: not an integer");
	expect_error("[server]\nport = \n", "not an integer");
	expect_error("[server]\nport = 70000\n", "line 2: [server] port: out of range");
	expect_error("[server]\nport = 99999999999999999999\n", "out of range");
	expect_error("[server]\nport = -1\n", "out of range");
	expect_error("[server]\nport = 1\nport = 2\n", "line 3: [server] port given twice");
	expect_error("[server\nport = 1\n", "line 1: syntax error");
	expect_error("[server]\njunk line\n", "line 2: syntax error");
	expect_error("[store]\ndriver = mysql\n", "store.driver");
	expect_error("[store]\nclient_cache_ms = 60001\n", "[store] client_cache_ms: out of range");
	expect_error("[store]\nclient_cache_ms = -1\n", "out of range");
	expect_error("[log]\nlevel = loud\n", "log.level");
	expect_error("[server]\npublic_url = ftp://x\n", "public_url");
	expect_error("[server]\npublic_url = http://\n", "public_url");
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	memcpy(longline, "[store]\nconninfo = ", 19);
	expect_error(longline, "line 2: too long");

	assert_int_equal(config_load("/nonexistent/isso.ini", &c, &err), ISSO_ERR_INVALID);
	assert_non_null(strstr(err, "/nonexistent/isso.ini"));

	setenv("ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES", "0", 1);
	assert_int_equal(config_load(NULL, &c, &err), ISSO_ERR_INVALID);
	assert_string_equal(err, "ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES: out of range");
	setenv("ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES", " 5", 1);
	assert_int_equal(config_load(NULL, &c, &err), ISSO_ERR_INVALID);
	setenv("ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES", "5", 1);
	assert_int_equal(config_load(NULL, &c, &err), 0);
	assert_int_equal(c.security.device_cookie_max_failures, 5);
	config_free(&c);
	unsetenv("ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES");

	/* 0 turns the client cache off. */
	setenv("ISSO_STORE_CLIENT_CACHE_MS", "0", 1);
	assert_int_equal(config_load(NULL, &c, &err), 0);
	assert_int_equal(c.store.client_cache_ms, 0);
	config_free(&c);
	setenv("ISSO_STORE_CLIENT_CACHE_MS", "60001", 1);
	assert_int_equal(config_load(NULL, &c, &err), ISSO_ERR_INVALID);
	assert_string_equal(err, "ISSO_STORE_CLIENT_CACHE_MS: out of range");
	unsetenv("ISSO_STORE_CLIENT_CACHE_MS");
}

static void
test_utf8(void **state)
{
	static const char *const bad[] = {
	    "\xc0\xaf",         /* overlong '/' */
	    "\xe0\x80\xaf",     /* overlong */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* beyond U+10FFFF */
	    "\x80",             /* stray continuation */
	    "\xe8\x87",         /* truncated */
	};

	assert_true(utf8_valid("", 0));
	assert_true(utf8_valid("臺北 iSSO", strlen("臺北 iSSO")));
	assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(utf8_valid(bad[i], strlen(bad[i])));
		assert_false(utf8_printable(bad[i], strlen(bad[i]), true));
	}
	assert_true(utf8_printable("驗證碼 123456", strlen("驗證碼 123456"), false));
	assert_false(utf8_printable("a\nb", 3, false));
	assert_true(utf8_printable("a\r\nb", 4, true));
	assert_false(utf8_printable("a\tb", 3, true));
	assert_false(utf8_printable("a\x7f", 2, true));
	assert_false(utf8_printable("a\0b", 3, true));
}

/* The card login challenge: what issod makes parses back; anything off
 * the format by one byte does not. */
static void
test_loginchal(void **state)
{
	static const char nonce[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";
	static const char *const bad[] = {
	    "",
	    "iSSO-LOGIN-v1",
	    "iSSO-LOGIN-v1\nhttps://isso.gov.taipei\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z\n",
	    "iSSO-LOGIN-v2\nhttps://isso.gov.taipei\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\r\nhttps://"
	    "isso.gov.taipei\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nftp://isso.gov.taipei\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://a b\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://a?b\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://u@a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n"
	    "2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_\n2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_=\n2026-12-07T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-02-29T01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-12-07T24:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-12-07 "
	    "01:02:03Z",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-12-07T01:02:03",
	    "iSSO-LOGIN-v1\nhttps://"
	    "a\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-12-07T01:02:03Z\nx",
	    "I agree to transfer NT$1,000,000",
	};
	struct login_chal ch;
	char *text, origin[64], *big;

	(void)state;
	text = login_chal_format("https://isso.gov.taipei/isso", nonce, 1796605323);
	assert_non_null(text);
	assert_string_equal(text,
	                    "iSSO-LOGIN-v1\nhttps://isso.gov.taipei/isso\n"
	                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n2026-12-07T01:02:03Z");
	assert_int_equal(login_chal_parse((const unsigned char *)text, strlen(text), &ch), 0);
	assert_string_equal(ch.issuer, "https://isso.gov.taipei/isso");
	assert_string_equal(ch.nonce, nonce);
	assert_int_equal(ch.time, 1796605323);
	assert_string_equal(login_chal_issuer_origin(ch.issuer, origin, sizeof(origin)),
	                    "https://isso.gov.taipei");
	assert_null(login_chal_issuer_origin(ch.issuer, origin, 8));
	/* a NUL inside is not the text */
	text[20] = '\0';
	assert_int_equal(login_chal_parse((const unsigned char *)text, strlen(text + 21) + 21, &ch),
	                 ISSO_ERR_INVALID);
	free(text);
	/* a leap day */
	text = login_chal_format("http://127.0.0.1:8080", nonce, 1709164800);
	assert_non_null(text);
	assert_non_null(strstr(text, "2024-02-29T00:00:00Z"));
	assert_int_equal(login_chal_parse((const unsigned char *)text, strlen(text), &ch), 0);
	assert_int_equal(ch.time, 1709164800);
	free(text);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    login_chal_parse((const unsigned char *)bad[i], strlen(bad[i]), &ch),
		    ISSO_ERR_INVALID);
	/* what does not fit the format is never made */
	assert_null(login_chal_format("isso.gov.taipei", nonce, 0));
	assert_null(login_chal_format("https://isso.gov.taipei", "short", 0));
	assert_null(login_chal_format("https://isso.gov.taipei", nonce, -1));
	big = xmalloc(300);
	memset(big, 'a', 299);
	memcpy(big, "https://", 8);
	big[299] = '\0';
	assert_null(login_chal_format(big, nonce, 0));
	big[LOGIN_CHAL_ISSUER_MAX] = '\0';
	text = login_chal_format(big, nonce, 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), LOGIN_CHAL_MAX);
	assert_int_equal(login_chal_parse((const unsigned char *)text, strlen(text), &ch), 0);
	free(text);
	free(big);
}

static void
test_hex(void **state)
{
	const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};
	unsigned char back[4];
	char out[9];

	(void)state;
	assert_string_equal(hex_encode(bytes, sizeof(bytes), out), "000fa5ff");
	assert_string_equal(hex_encode(bytes, 0, out), "");
	assert_true(hex_decode("000FA5ff", back, sizeof(back)));
	assert_memory_equal(back, bytes, sizeof(bytes));
	/* A bad digit in either place of a pair refuses and wipes. */
	assert_false(hex_decode("000fa5fg", back, sizeof(back)));
	assert_memory_equal(back, "\0\0\0\0", 4);
	assert_false(hex_decode("0g0fa5ff", back, sizeof(back)));
	/* A short string stops at its NUL without reading past it. */
	assert_false(hex_decode("00f", back, sizeof(back)));
	assert_false(hex_decode("", back, 1));
	assert_int_equal(hex_digit_value('7'), 7);
	assert_int_equal(hex_digit_value('b'), 11);
	assert_int_equal(hex_digit_value('B'), 11);
	assert_int_equal(hex_digit_value('g'), -1);
	assert_int_equal(hex_digit_value('\0'), -1);
	assert_int_equal(hex_digit(0xab), 'b');
	assert_int_equal(hex_digit_upper(0xab), 'B');
}

/* explicit_bzero, as config.c calls it, interposed: remembers whether
 * the last text "wipe-me-secret" was wiped, so a test can see secrets go. */
static bool wiped_secret;

void
explicit_bzero(void *p, size_t n)
{
	static const char text[] = "wipe-me-secret";
	volatile unsigned char *v = p;
	size_t same = 0;

	/* read through v: string.h declares p write-only */
	for (size_t i = 0; n == sizeof(text) - 1 && i < n; i++)
		same += v[i] == (unsigned char)text[i];
	if (n == sizeof(text) - 1 && same == n)
		wiped_secret = true;
	for (size_t i = 0; i < n; i++)
		v[i] = 0;
}

struct demo_settings {
	char *mode, *url, *secret;
	int n;
	bool on;
};

static const struct config_option demo_options[] = {
    {"mode", CONFIG_OPT_STRING, offsetof(struct demo_settings, mode), "http", 0, 0, false},
    {"url", CONFIG_OPT_URL, offsetof(struct demo_settings, url), "", 0, 0, false},
    {"secret", CONFIG_OPT_STRING, offsetof(struct demo_settings, secret), "", 0, 0, true},
    {"n", CONFIG_OPT_INT, offsetof(struct demo_settings, n), "5", 1, 10, false},
    {"on", CONFIG_OPT_BOOL, offsetof(struct demo_settings, on), "1", 0, 0, false},
    {NULL, 0, 0, NULL, 0, 0, false},
};

static void
clear_demo_env(void)
{
	unsetenv("ISSO_DEMO_MODE");
	unsetenv("ISSO_DEMO_URL");
	unsetenv("ISSO_DEMO_SECRET");
	unsetenv("ISSO_DEMO_N");
	unsetenv("ISSO_DEMO_ON");
}

/* Parses [demo] of text (NULL: no file) and expects needle in the error,
 * or success when needle is NULL (then d is filled). */
static void
demo_parse(const char *text, const char *needle, struct demo_settings *d)
{
	struct isso_config c;
	const char *err = NULL, *path = text != NULL ? write_tmp(text) : NULL;
	int r;

	assert_int_equal(config_load(path, &c, &err), 0);
	memset(d, 0, sizeof(*d));
	r = config_section_parse(&c, "demo", demo_options, d, &err);
	if (needle == NULL) {
		if (r != 0)
			fail_msg("demo refused: %s", err);
	} else {
		assert_int_equal(r, ISSO_ERR_INVALID);
		if (strstr(err, needle) == NULL)
			fail_msg("error \"%s\" lacks \"%s\"", err, needle);
		/* nothing is left for the caller */
		assert_null(d->mode);
		assert_null(d->url);
		assert_null(d->secret);
	}
	config_free(&c);
	if (path != NULL)
		unlink(path);
}

/* A section's owner parses it from a table: types, ranges, defaults, the
 * file, the environment winning, errors naming section.key. */
static void
test_config_section(void **state)
{
	struct demo_settings d;

	clear_env();
	clear_demo_env();
	/* the defaults */
	demo_parse(NULL, NULL, &d);
	assert_string_equal(d.mode, "http");
	assert_string_equal(d.url, "");
	assert_string_equal(d.secret, "");
	assert_int_equal(d.n, 5);
	assert_true(d.on);
	config_section_free(demo_options, &d);
	config_section_free(demo_options, &d);

	/* the file */
	demo_parse("[server]\nthreads = 2\n[demo]\nmode = sim\nurl = https://x.example/a\n"
	           "secret = s3cret\nn = 10\non = no\n",
	           NULL, &d);
	assert_string_equal(d.mode, "sim");
	assert_string_equal(d.url, "https://x.example/a");
	assert_string_equal(d.secret, "s3cret");
	assert_int_equal(d.n, 10);
	assert_false(d.on);
	config_section_free(demo_options, &d);

	/* the environment wins over the file */
	setenv("ISSO_DEMO_N", "1", 1);
	setenv("ISSO_DEMO_ON", "true", 1);
	setenv("ISSO_DEMO_URL", "HTTP://y.example", 1);
	demo_parse("[demo]\nn = 7\non = off\nurl = https://x.example\n", NULL, &d);
	assert_int_equal(d.n, 1);
	assert_true(d.on);
	assert_string_equal(d.url, "HTTP://y.example");
	config_section_free(demo_options, &d);
	clear_demo_env();

	/* errors name the setting and where it came from */
	demo_parse("[demo]\nn = 11\n", "demo.n: out of range (line 2)", &d);
	demo_parse("[demo]\n\nn = 0\n", "demo.n: out of range (line 3)", &d);
	demo_parse("[demo]\nn = 5x\n", "demo.n: not an integer", &d);
	demo_parse("[demo]\nn = \n", "demo.n: not an integer", &d);
	demo_parse("[demo]\non = maybe\n", "demo.on: not a boolean", &d);
	demo_parse("[demo]\nurl = ftp://x.example\n", "demo.url: must be an http", &d);
	demo_parse("[demo]\nurl = javascript:alert(1)\n", "demo.url: must be an http", &d);
	setenv("ISSO_DEMO_URL", "https://x.example/a b", 1);
	demo_parse(NULL, "demo.url: no space or control character allowed in a URL (ISSO_DEMO_URL)",
	           &d);
	clear_demo_env();
	setenv("ISSO_DEMO_N", "99999999999999999999", 1);
	demo_parse(NULL, "demo.n: out of range (ISSO_DEMO_N)", &d);
	clear_demo_env();
	/* a raw key given twice is refused at load, as a core key is */
	expect_error("[demo]\nn = 1\nn = 2\n", "line 3: [demo] n given twice");

	/* secrets are wiped when freed */
	setenv("ISSO_DEMO_SECRET", "wipe-me-secret", 1);
	demo_parse(NULL, NULL, &d);
	assert_string_equal(d.secret, "wipe-me-secret");
	wiped_secret = false;
	config_section_free(demo_options, &d);
	assert_true(wiped_secret);
	assert_null(d.secret);
	/* the file's copy too, when the configuration is freed */
	{
		struct isso_config c;
		const char *err = NULL, *path = write_tmp("[demo]\nsecret = wipe-me-secret\n");

		clear_demo_env();
		assert_int_equal(config_load(path, &c, &err), 0);
		wiped_secret = false;
		config_free(&c);
		assert_true(wiped_secret);
		unlink(path);
	}
}

/* A key of the file that no owner parsed stops the start, as an unknown
 * key of a core section does at load. */
static void
test_config_claimed(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
	    {"[demo]\nmode = sim\nbogus = 1\n", "line 3: unknown key [demo] bogus"},
	    {"[nosuch]\nport = 1\n", "line 2: unknown key [nosuch] port"},
	    {"port = 1\n", "line 1: unknown key [] port"},
	};
	struct isso_config c;
	struct demo_settings d;
	const char *err = NULL, *path;

	clear_env();
	clear_demo_env();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = write_tmp(cases[i].text);
		assert_int_equal(config_load(path, &c, &err), 0);
		memset(&d, 0, sizeof(d));
		assert_int_equal(config_section_parse(&c, "demo", demo_options, &d, &err), 0);
		config_section_free(demo_options, &d);
		assert_int_equal(config_check_claimed(&c, &err), ISSO_ERR_INVALID);
		if (strstr(err, cases[i].needle) == NULL)
			fail_msg("error \"%s\" lacks \"%s\"", err, cases[i].needle);
		config_free(&c);
		unlink(path);
	}
	/* every key claimed, by one owner or several */
	path = write_tmp("[server]\nthreads = 2\n[demo]\nmode = sim\nn = 3\n");
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_int_equal(config_check_claimed(&c, &err), ISSO_ERR_INVALID);
	memset(&d, 0, sizeof(d));
	assert_int_equal(config_section_parse(&c, "demo", demo_options, &d, &err), 0);
	config_section_free(demo_options, &d);
	assert_int_equal(config_section_parse(&c, "demo", demo_options, &d, &err), 0);
	config_section_free(demo_options, &d);
	assert_int_equal(config_check_claimed(&c, &err), 0);
	config_free(&c);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_xmalloc),
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_buf),
	    cmocka_unit_test(test_b64),
	    cmocka_unit_test(test_log_mask),
	    cmocka_unit_test(test_log_event),
	    cmocka_unit_test(test_log_threads),
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_file_env),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_section),
	    cmocka_unit_test(test_config_claimed),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_loginchal),
	    cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
