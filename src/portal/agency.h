/* Agencies' pages (/agency) and the review of their applications
 * (/admin/applications): portal/agency.c. */
#ifndef ISSO_AGENCY_H
#define ISSO_AGENCY_H

struct isso_app;
struct http_server;

void agency_routes(struct isso_app *app, struct http_server *srv);

#endif
