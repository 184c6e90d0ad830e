/* What operators and load balancers ask the daemon: /healthz (the process
 * answers), /readyz (the store answers and signing keys are loaded) and
 * /metrics (Prometheus text, only when metrics.enabled and only to a
 * direct connection from an address in metrics.allow). */
#ifndef ISSO_OPS_H
#define ISSO_OPS_H

struct isso_app;
struct http_server;

/* Mounts the three routes (/metrics only when metrics.enabled). The
 * settings were checked by config_load. */
void ops_routes(struct isso_app *app, struct http_server *srv);

#endif
