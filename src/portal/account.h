/* /account: the citizen's own page (consents, sessions, release history). */
#ifndef ISSO_ACCOUNT_H
#define ISSO_ACCOUNT_H

struct isso_app;
struct http_server;

/* GET /account, POST /account/withdraw and /account/logout-all. */
void account_routes(struct isso_app *app, struct http_server *srv);

#endif
