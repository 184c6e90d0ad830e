/* Unit tests for the server-side QR codes (src/auth/qr.c): the SVG draws
 * exactly the modules libqrencode computes, with a quiet zone, a title for
 * screen readers and no markup a strict CSP or the page could trip on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <qrencode.h>

#include "auth/qr.h"

/* A ticket shaped like TW FidO's sp_ticket (base64url JSON "." digest). */
static const char ticket[] =
    "eyJ0cmFuc2FjdGlvbl9pZCI6IjU3YzU2YTk3LWY1YmEtNGI3Mi05MzNiLWJjOGI1YjZmNDI2OSIsIm9wX2NvZGUi"
    "OiJBVEgiLCJvcF9tb2RlIjoiSS1TQ0FOIiwic3Bfc2VydmljZV9pZCI6IlRQRS1JU1NPLVNJTSIsInNwX3RpY2tl"
    "dF9pZCI6IkVkNE9mZUQ4UDFtRzJfUEFGWGRGdndrTEI0XzVXLTRvIiwic3BfbmFtZSI6IuiHuuWMl-W4guaUv-W6"
    "nCAoaXNzby1zaW0pIiwiaGludCI6IuiHuuWMl-W4guaUv-W6nOWWruS4gOi6q-WIhumpl-itieWFpeWPo-eZu-WF"
    "pSIsImV4cGlyYXRpb25fdGltZSI6IjIwMjYtMTEtMjggMDk6NTI6MzUiLCJoYXNoZWRfaWRfbnVtIjoiNTFmZjIw"
    "YTU3MjUzZjdmMGVlM2E5YmZmZTg2YTg2YTIxNDFjNzE2YjJmNTU0YjJiZjY0MjlkZjUwZTUzOGMxMyIsInZlcnNp"
    "b24iOiIyLjkifQ.nI_NAqt-9mPIfLrq14SQmmrjqKBiAxKpfiV1bYpWkHY";

/* Paints the path's "MxyhNv1h-Nz" runs into grid (size x size). */
static void
paint(const char *svg, unsigned char *grid, int size)
{
	const char *d = strstr(svg, " d=\"");
	int x, y, n, m, used;

	assert_non_null(d);
	d += 4;
	while (*d == 'M') {
		assert_int_equal(sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &m, &used), 4);
		assert_int_equal(n, m);
		assert_true(x >= 0 && y >= 0 && n > 0 && x + n <= size && y < size);
		for (int i = 0; i < n; i++) {
			assert_int_equal(grid[y * size + x + i], 0); /* runs never overlap */
			grid[y * size + x + i] = 1;
		}
		d += used;
	}
	assert_int_equal(*d, '"');
}

static void
test_modules_match(void **state)
{
	char *svg = qr_svg(ticket, "QR");
	QRcode *qr = QRcode_encodeString(ticket, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
	int size, vb = 0;
	unsigned char *grid;

	assert_non_null(svg);
	assert_non_null(qr);
	size = qr->width + 8;
	assert_int_equal(sscanf(strstr(svg, "viewBox=\"0 0 ") + 13, "%d", &vb), 1);
	assert_int_equal(vb, size);
	grid = calloc((size_t)size * (size_t)size, 1);
	paint(svg, grid, size);
	for (int y = 0; y < size; y++) {
		for (int x = 0; x < size; x++) {
			int qx = x - 4, qy = y - 4;
			int want = qx >= 0 && qy >= 0 && qx < qr->width && qy < qr->width
			               ? qr->data[qy * qr->width + qx] & 1
			               : 0; /* the quiet zone stays light */
			assert_int_equal(grid[y * size + x], want);
		}
	}
	/* the top-left finder pattern: a 7-module dark row at (4,4) */
	assert_non_null(strstr(svg, "M4 4h7v1h-7z"));
	free(grid);
	QRcode_free(qr);
	free(svg);
}

static void
test_markup(void **state)
{
	char *svg = qr_svg("https://example.tw/", "<掃描> & \"QR\"\x01");
	static const char head[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" ";

	assert_non_null(svg);
	assert_true(strncmp(svg, head, strlen(head)) == 0);
	assert_non_null(strstr(svg, "role=\"img\" aria-labelledby=\"qr-title\""));
	assert_non_null(
	    strstr(svg, "<title id=\"qr-title\">&lt;掃描&gt; &amp; &quot;QR&quot; </title>"));
	assert_null(strstr(svg, "style"));
	assert_null(strstr(svg, "<script"));
	assert_true(strlen(svg) > 9 && strcmp(svg + strlen(svg) - 9, "\"/></svg>") == 0);
	free(svg);
}

static void
test_refusals(void **state)
{
	char *big = malloc(QR_TEXT_MAX + 2);
	char *svg;

	assert_null(qr_svg(NULL, "t"));
	assert_null(qr_svg("", "t"));
	memset(big, 'a', QR_TEXT_MAX + 1);
	big[QR_TEXT_MAX + 1] = '\0';
	assert_null(qr_svg(big, "t"));
	big[QR_TEXT_MAX] = '\0'; /* the limit itself encodes (version <= 40 at L) */
	svg = qr_svg(big, NULL);
	assert_non_null(svg);
	assert_non_null(strstr(svg, "<title id=\"qr-title\">QR code</title>"));
	free(svg);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_modules_match),
	    cmocka_unit_test(test_markup),
	    cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
