/* Replays a fuzz corpus without libFuzzer: calls LLVMFuzzerTestOneInput on
 * every regular file in the directory given as argv[1]. Fails when the
 * directory is missing or holds no file. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The fuzz target under test. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_FILE (16 * 1024 * 1024)

/* Runs the target on one file; returns 0, or -1 when it cannot be read. */
static int
replay_file(const char *path, size_t size)
{
	FILE *f = NULL;
	uint8_t *data = NULL;
	int ret = -1;

	if (size > REPLAY_MAX_FILE)
		goto out;
	f = fopen(path, "rb");
	if (f == NULL)
		goto out;
	/* a private copy of exactly size bytes, so ASan sees overreads */
	data = malloc(size > 0 ? size : 1);
	if (data == NULL || fread(data, 1, size, f) != size)
		goto out;
	LLVMFuzzerTestOneInput(data, size);
	ret = 0;
out:
	free(data);
	if (f != NULL)
		fclose(f);
	return ret;
}

int
main(int argc, char **argv)
{
	DIR *dir = NULL;
	struct dirent *de;
	size_t count = 0;
	int ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		goto out;
	}
	dir = opendir(argv[1]);
	if (dir == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	while ((de = readdir(dir)) != NULL) {
		char path[4096];
		struct stat st;

		if (snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path, (size_t)st.st_size) != 0) {
			fprintf(stderr, "%s: cannot read\n", path);
			goto out;
		}
		count++;
	}
	printf("replayed %zu inputs from %s\n", count, argv[1]);
	if (count == 0) {
		fprintf(stderr, "%s: empty corpus\n", argv[1]);
		goto out;
	}
	ret = 0;
out:
	if (dir != NULL)
		closedir(dir);
	return ret;
}
