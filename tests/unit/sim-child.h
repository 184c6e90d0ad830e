/* Test fixture shared by the connector tests: runs the real isso-sim
 * (<builddir>/isso-sim, found beside the test's own directory) on a free
 * loopback port, and small timing and socket helpers. Header-only: each
 * test program is its own executable. */
#ifndef ISSO_TEST_SIM_CHILD_H
#define ISSO_TEST_SIM_CHILD_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn/outbound.h"

static char sim_bin[PATH_MAX + 16];
static pid_t sim_pid = -1;
static char sim_base[64]; /* http://127.0.0.1:PORT */

static long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* A loopback socket bound to a free port; listening when backlog >= 0. */
static int
loopback_socket(int backlog, int *port_r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port_r = ntohs(sa.sin_port);
	return fd;
}

/* Runs isso-sim with args (NULL-terminated), output discarded; returns its
 * exit status, or -1 when it did not end within timeout_ms (it is killed). */
static int
run_sim(const char *const *args, long timeout_ms)
{
	const char *argv[24] = {sim_bin};
	struct timespec t0;
	pid_t pid;
	int status = 0, n = 1;

	for (; args[n - 1] != NULL && n < 23; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execv(sim_bin, (char *const *)argv);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (ms_since(&t0) > timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(20);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* <builddir>/tests/test_x -> <builddir>/isso-sim */
static void
find_sim_binary(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	assert_true(n > 0);
	self[n] = '\0';
	for (int i = 0; i < 2; i++) {
		slash = strrchr(self, '/');
		assert_non_null(slash);
		*slash = '\0';
	}
	snprintf(sim_bin, sizeof(sim_bin), "%s/isso-sim", self);
}

static size_t
sim_child_discard(char *data, size_t size, size_t n, void *ctx)
{
	return size * n;
}

/* GET {sim_base}/health answered 200? */
static bool
sim_child_healthy(void)
{
	char url[128];
	long status = 0;
	CURL *curl = curl_easy_init();

	if (curl == NULL)
		return false;
	snprintf(url, sizeof(url), "%s/health", sim_base);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sim_child_discard);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status == 200;
}

/* Starts `isso-sim serve` on a free port with extra (NULL-terminated)
 * arguments and waits (10 s at most) until it answers /health. name is
 * the test's, for messages. Returns 0 or -1. */
static int
sim_child_start(const char *name, const char *const *extra)
{
	const char *argv[32] = {sim_bin,  "serve", "--listen",    "127.0.0.1",
	                        "--port", NULL,    "--log-level", "warn"};
	struct timespec t0;
	char port_arg[8];
	int fd, port, status, n = 8;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* The connectors go through the outbound client: every peer of these
	 * tests is on 127.0.0.1, as in a development set-up. */
	{
		struct outbound_policy policy = {.issuer = "http://127.0.0.1:8080",
		                                 .allow = "127.0.0.1"};
		const char *error = NULL;

		if (outbound_configure(&policy, &error) != 0) {
			fprintf(stderr, "%s: outbound policy: %s\n", name, error);
			return -1;
		}
	}
	find_sim_binary();
	if (access(sim_bin, X_OK) != 0) {
		fprintf(stderr, "%s: %s: not built\n", name, sim_bin);
		return -1;
	}
	fd = loopback_socket(-1, &port);
	close(fd);
	snprintf(port_arg, sizeof(port_arg), "%d", port);
	snprintf(sim_base, sizeof(sim_base), "http://127.0.0.1:%d", port);
	argv[5] = port_arg;
	for (; extra != NULL && *extra != NULL && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;

	sim_pid = fork();
	if (sim_pid < 0)
		return -1;
	if (sim_pid == 0) {
		execv(sim_bin, (char *const *)argv);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 10000) {
		if (waitpid(sim_pid, &status, WNOHANG) == sim_pid) {
			fprintf(stderr, "%s: isso-sim exited at start\n", name);
			sim_pid = -1;
			return -1;
		}
		if (sim_child_healthy())
			return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "%s: isso-sim did not answer\n", name);
	return -1;
}

/* Stops the simulator (SIGTERM, then SIGKILL after 5 s). */
static void
sim_child_stop(void)
{
	struct timespec t0;
	int status;

	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (waitpid(sim_pid, &status, WNOHANG) == 0) {
			if (ms_since(&t0) > 5000) {
				kill(sim_pid, SIGKILL);
				waitpid(sim_pid, &status, 0);
				break;
			}
			sleep_ms(20);
		}
		sim_pid = -1;
	}
	curl_global_cleanup();
}

#endif
