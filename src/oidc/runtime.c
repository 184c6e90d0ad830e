/* The OpenID Provider's background state: the clients' JWK set cache and
 * the back-channel logout sender, both on the daemon's worker pool. */
#include <stdlib.h>
#include <unistd.h>

#include "auth/app.h"
#include "lib/isso.h"
#include "lib/secret.h"
#include "lib/worker.h"
#include "lib/xmalloc.h"
#include "oidc/oidc-private.h"

int
oidc_start(struct isso_app *app)
{
	struct oidc_runtime *rt;
	long threads = app->cfg->server.threads;
	unsigned waiters;
	int ret;

	if (app->workers == NULL || app->oidc != NULL)
		return ISSO_ERR_INVALID;
	/* As many request threads as the server runs (one per core by
	 * default); at most half of them may wait for a JWK set fetch, and
	 * none when there is only one. */
	if (threads <= 0)
		threads = isso_cpu_count();
	waiters = threads > 1 ? (unsigned)(threads / 2 < 4 ? threads / 2 : 4) : 0;
	rt = xcalloc(1, sizeof(*rt));
	secret_token(12, rt->node);
	atomic_init(&rt->backchannel_sending, 0);
	rt->backchannel_task = -1;
	rt->jwks = oidc_jwks_cache_new(app->workers, waiters);
	app->oidc = rt;
	ret = oidc_backchannel_start(app);
	if (ret < 0)
		oidc_stop(app);
	return ret;
}

void
oidc_stop(struct isso_app *app)
{
	if (app->oidc == NULL)
		return;
	oidc_jwks_cache_free(app->oidc->jwks);
	free(app->oidc);
	app->oidc = NULL;
}
