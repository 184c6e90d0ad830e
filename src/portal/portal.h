/* The portal: the method-choice page (請選擇以下方式擇一登入), consent
 * (授權資料) and the home page; and the one place that mounts every route. */
#ifndef ISSO_PORTAL_H
#define ISSO_PORTAL_H

struct isso_app;
struct http_server;

/* Registers every route of the daemon: portal, methods, OpenID Provider,
 * static files. */
void portal_routes(struct isso_app *app, struct http_server *srv);

#endif
