/* A real struct isso_app for unit tests of the parts that read the store
 * and the keys: the default configuration, with its SQLite store and
 * master key in a fresh directory under /tmp that the teardown removes.
 * Use as a cmocka group setup / teardown; *state is the struct
 * app_fixture. Include once per test program. */
#ifndef ISSO_TEST_APP_FIXTURE_H
#define ISSO_TEST_APP_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/app.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

struct app_fixture {
	struct isso_config cfg;
	struct isso_app app;
	char dir[64];
};

static void
app_fixture_set(char **field, const char *dir, const char *name)
{
	free(*field);
	*field = xasprintf("%s/%s", dir, name);
}

static int
app_fixture_setup(void **state)
{
	struct app_fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;

	log_init(2, LOG_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/isso-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		goto fail;
	if (config_load(NULL, &f->cfg, &error) != 0)
		goto fail;
	app_fixture_set(&f->cfg.store.path, f->dir, "isso.db");
	app_fixture_set(&f->cfg.keys.master_key_file, f->dir, "master.key");
	if (app_init(&f->app, &f->cfg, &error) != 0)
		goto fail;
	*state = f;
	return 0;
fail:
	fprintf(stderr, "app fixture: %s\n", error != NULL ? error : "cannot create a directory");
	return -1;
}

static int
app_fixture_teardown(void **state)
{
	struct app_fixture *f = *state;
	DIR *d;
	struct dirent *de;

	if (f == NULL)
		return 0;
	app_free(&f->app);
	config_free(&f->cfg);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char path[512];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	*state = NULL;
	return 0;
}

#endif
