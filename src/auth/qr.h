/* QR codes drawn on the server as inline SVG (no image requests, no
 * script), for the methods whose second factor is a phone scanning the
 * screen: moica-mobile (the TW FidO sp_ticket) and telecom. */
#ifndef ISSO_QR_H
#define ISSO_QR_H

/* Longest text qr_svg() accepts (bytes); the TW FidO sp_ticket is well
 * under it. */
#define QR_TEXT_MAX 2048

/* Encodes text (error correction L: a screen is not a worn label, and
 * fewer, larger modules scan better; 4-module quiet zone) as an SVG
 * element: role="img", labelled by a <title id="qr-title"> holding title
 * (XML-escaped; give the alternative text screen readers announce, e.g.
 * "QR code to scan with the app"). One QR per page (the id is fixed).
 * The markup uses no style attribute, so it passes a strict CSP. Returns
 * a malloc'd NUL-terminated string the caller frees, or NULL when text is
 * empty, longer than QR_TEXT_MAX or cannot be encoded. */
char *qr_svg(const char *text, const char *title);

#endif
