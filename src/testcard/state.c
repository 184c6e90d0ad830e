/* Card state of the testcard module: files under the state directory, or
 * counters in memory (testcard.h). */
#include "testcard/testcard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A counter file holds a short number; anything longer is not ours. */
#define COUNTER_FILE_MAX 16

struct mem_counter {
	char serial[TESTCARD_SERIAL_MAX + 1];
	int failures;
};

static char *state_dir;              /* NULL: in memory */
static struct mem_counter *counters; /* in memory */
static size_t counters_count;

int
testcard_state_init(const char *dir)
{
	char *copy = NULL;

	if (dir != NULL && dir[0] != '\0') {
		copy = strdup(dir);
		if (copy == NULL)
			return -1;
	}
	free(state_dir);
	state_dir = copy;
	return 0;
}

void
testcard_state_free(void)
{
	free(state_dir);
	state_dir = NULL;
	free(counters);
	counters = NULL;
	counters_count = 0;
}

/* Only serials made of these characters name files: a label can hold
 * anything, a file name must not climb out of the directory. */
static bool
serial_is_file_name(const char *serial)
{
	size_t i;

	if (serial[0] == '\0' || strlen(serial) > TESTCARD_SERIAL_MAX)
		return false;
	for (i = 0; serial[i] != '\0'; i++) {
		char c = serial[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Writes DIR/<serial><suffix> into path_r. Returns false when the state
 * is in memory, the serial cannot be a file name or the path is too long. */
static bool
state_path(const char *serial, const char *suffix, char *path_r, size_t size)
{
	int n;

	if (state_dir == NULL || !serial_is_file_name(serial))
		return false;
	n = snprintf(path_r, size, "%s/%s%s", state_dir, serial, suffix);
	return n > 0 && (size_t)n < size;
}

bool
testcard_removed(const char *serial)
{
	char path[PATH_MAX];

	if (!state_path(serial, ".removed", path, sizeof(path)))
		return false;
	return access(path, F_OK) == 0;
}

static struct mem_counter *
mem_counter_find(const char *serial)
{
	size_t i;

	for (i = 0; i < counters_count; i++)
		if (strcmp(counters[i].serial, serial) == 0)
			return &counters[i];
	return NULL;
}

int
testcard_failures(const char *serial)
{
	char path[PATH_MAX], text[COUNTER_FILE_MAX + 1], *end;
	struct mem_counter *c;
	ssize_t n;
	long v;
	int fd;

	if (state_dir == NULL || !serial_is_file_name(serial)) {
		c = mem_counter_find(serial);
		return c != NULL ? c->failures : 0;
	}
	if (!state_path(serial, ".pin-failures", path, sizeof(path)))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, text, COUNTER_FILE_MAX);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\0' && *end != '\n') || v < 0)
		return 0;
	return v > TESTCARD_PIN_TRIES ? TESTCARD_PIN_TRIES : (int)v;
}

static int
mem_counter_set(const char *serial, int n)
{
	struct mem_counter *c = mem_counter_find(serial), *grown;

	if (c == NULL) {
		if (n == 0)
			return 0;
		grown = realloc(counters, (counters_count + 1) * sizeof(*counters));
		if (grown == NULL)
			return -1;
		counters = grown;
		c = &counters[counters_count++];
		snprintf(c->serial, sizeof(c->serial), "%s", serial);
	}
	c->failures = n;
	return 0;
}

int
testcard_set_failures(const char *serial, int n)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[COUNTER_FILE_MAX];
	int fd = -1, len, ret = -1;

	if (state_dir == NULL || !serial_is_file_name(serial))
		return mem_counter_set(serial, n);
	if (!state_path(serial, ".pin-failures", path, sizeof(path)))
		return -1;
	if (n == 0)
		return unlink(path) == 0 || errno == ENOENT ? 0 : -1;

	len = snprintf(tmp, sizeof(tmp), "%s/.%s.pin-failures.XXXXXX", state_dir, serial);
	if (len < 0 || (size_t)len >= sizeof(tmp))
		return -1;
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -1;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -1;
	len = snprintf(text, sizeof(text), "%d\n", n);
	if (write(fd, text, (size_t)len) != len)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}
