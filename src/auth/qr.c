/* Server-side QR codes as SVG, through libqrencode. */
#include <pthread.h>
#include <qrencode.h>
#include <string.h>

#include "auth/qr.h"
#include "lib/buf.h"

#define QR_QUIET   4
#define QR_SVG_MAX (512 * 1024)

/* libqrencode keeps shared Reed-Solomon tables that only a build with
 * thread safety guards; one lock keeps us correct with any build. */
static pthread_mutex_t qr_lock = PTHREAD_MUTEX_INITIALIZER;

static int
xml_escape(struct buf *b, const char *s)
{
	int ret = 0;

	for (; *s != '\0' && ret == 0; s++) {
		switch (*s) {
		case '&':
			ret = buf_addstr(b, "&amp;");
			break;
		case '<':
			ret = buf_addstr(b, "&lt;");
			break;
		case '>':
			ret = buf_addstr(b, "&gt;");
			break;
		case '"':
			ret = buf_addstr(b, "&quot;");
			break;
		case '\'':
			ret = buf_addstr(b, "&#39;");
			break;
		default:
			/* Control characters have no place in a title. */
			ret = (unsigned char)*s < 0x20 ? buf_addc(b, ' ') : buf_addc(b, *s);
			break;
		}
	}
	return ret;
}

char *
qr_svg(const char *text, const char *title)
{
	QRcode *qr = NULL;
	struct buf b;
	char *out = NULL;
	int size, ret = 0;

	buf_init(&b, QR_SVG_MAX);
	if (text == NULL || text[0] == '\0' || strlen(text) > QR_TEXT_MAX)
		goto out;
	pthread_mutex_lock(&qr_lock);
	qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
	pthread_mutex_unlock(&qr_lock);
	if (qr == NULL)
		goto out;
	size = qr->width + 2 * QR_QUIET;
	ret |= buf_printf(&b,
	                  "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	                  "role=\"img\" aria-labelledby=\"qr-title\" "
	                  "shape-rendering=\"crispEdges\"><title id=\"qr-title\">",
	                  size, size);
	ret |= xml_escape(&b, title != NULL ? title : "QR code");
	ret |= buf_printf(&b,
	                  "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
	                  "<path fill=\"#000\" d=\"",
	                  size, size);
	/* One horizontal run of dark modules per subpath keeps the markup
	 * small (a few kB for a version-15 code). */
	for (int y = 0; y < qr->width && ret == 0; y++) {
		const unsigned char *row = qr->data + (size_t)y * (size_t)qr->width;
		for (int x = 0; x < qr->width && ret == 0;) {
			int run = 0;
			if (!(row[x] & 1)) {
				x++;
				continue;
			}
			while (x + run < qr->width && (row[x + run] & 1))
				run++;
			ret |= buf_printf(&b, "M%d %dh%dv1h-%dz", x + QR_QUIET, y + QR_QUIET, run,
			                  run);
			x += run;
		}
	}
	ret |= buf_addstr(&b, "\"/></svg>");
	if (ret == 0)
		out = buf_detach(&b, NULL);
out:
	if (qr != NULL)
		QRcode_free(qr);
	buf_free(&b);
	return out;
}
