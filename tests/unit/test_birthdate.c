/* Unit tests for dates as people type them (西元 and 民國 years). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/birthdate.h"

#define TODAY "2026-12-07"

static void
assert_date(const char *typed, const char *want)
{
	char out[11] = "unchanged";
	enum date_typed r = date_parse_typed(typed, TODAY, out);

	if (r != DATE_OK || strcmp(out, want) != 0)
		fail_msg("\"%s\": got %d \"%s\", want \"%s\"", typed, (int)r, out, want);
}

static void
assert_refused(const char *typed, enum date_typed want)
{
	char out[11] = "unchanged";
	enum date_typed r = date_parse_typed(typed, TODAY, out);

	if (r != want)
		fail_msg("\"%s\": got %d, want %d", typed, (int)r, (int)want);
	assert_string_equal(out, "unchanged");
}

static void
test_western(void **state)
{
	(void)state;
	assert_date("1985-03-14", "1985-03-14");
	assert_date("1985/3/14", "1985-03-14");
	assert_date("1985.03.14", "1985-03-14");
	assert_date("1985 3 14", "1985-03-14");
	assert_date("  1985 - 3 - 14  ", "1985-03-14");
	assert_date("19850314", "1985-03-14");
	assert_date("1985年3月14日", "1985-03-14");
	assert_date("1985 年 3 月 14 日", "1985-03-14");
	assert_date("1985年3月14", "1985-03-14");
	assert_date("西元1985-03-14", "1985-03-14");
	assert_date("西元 1985年3月14日", "1985-03-14");
	/* Full-width digits and separators, as some input methods type. */
	assert_date("１９８５／０３／１４", "1985-03-14");
	assert_date("１９８５－３－１４", "1985-03-14");
	assert_date("1988-02-29", "1988-02-29");
	assert_date("2000-02-29", "2000-02-29");
	assert_date("1900-01-01", "1900-01-01");
	assert_date(TODAY, TODAY);
}

static void
test_roc(void **state)
{
	(void)state;
	/* 民國 74 is 1985: the year plus 1911. */
	assert_date("民國74-03-14", "1985-03-14");
	assert_date("民國74/3/14", "1985-03-14");
	assert_date("民國74年3月14日", "1985-03-14");
	assert_date("民國 74 年 3 月 14 日", "1985-03-14");
	assert_date("民國0740314", "1985-03-14");
	assert_date("民國740314", "1985-03-14");
	assert_date("74-03-14", "1985-03-14");
	assert_date("74/3/14", "1985-03-14");
	assert_date("074/3/14", "1985-03-14");
	assert_date("0740314", "1985-03-14");
	assert_date("74年3月14日", "1985-03-14");
	assert_date("1/1/1", "1912-01-01");
	assert_date("114-12-07", "2025-12-07");
	assert_date("115-12-07", TODAY);
	/* 民國 with four digits is still a 民國 year. */
	assert_date("民國0074-03-14", "1985-03-14");
	assert_date("民國８９年２月２９日", "2000-02-29");
}

static void
test_invalid(void **state)
{
	(void)state;
	assert_refused("1985-02-29", DATE_INVALID);
	assert_refused("1985-13-01", DATE_INVALID);
	assert_refused("1985-00-10", DATE_INVALID);
	assert_refused("1985-04-31", DATE_INVALID);
	assert_refused("1985-01-00", DATE_INVALID);
	assert_refused("1900-02-29", DATE_INVALID);
	assert_refused("民國0-01-01", DATE_INVALID);
	assert_refused("民國74-02-30", DATE_INVALID);
}

static void
test_format(void **state)
{
	(void)state;
	const char *bad[] = {
	    "",
	    "   ",
	    "1985",
	    "1985-03",
	    "1985-03-14-01",
	    "1985-3/14",  /* two separators */
	    "1985年3-14", /* 年 without 月 */
	    "1985-3月14日",
	    "14/03/1985", /* day first: the year is four digits at the end */
	    "03-14-1985",
	    "1985-003-14",
	    "1985-03-014",
	    "19850314 1",
	    "198503141",
	    "850314",       /* six digits only after 民國 */
	    "西元74-03-14", /* 西元 needs four digits */
	    "西元0740314",
	    "民國19850314",
	    "12345-01-01",
	    "1985-03-14x",
	    "x1985-03-14",
	    "1985–03–14", /* an en dash is not a separator */
	    "民國",
	    "年月日",
	    "1985\xE5\xB9", /* a cut UTF-8 sequence */
	    "+1985-03-14",
	    "1985--03-14",
	};
	char out[11] = "unchanged";
	char long_input[80];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i], DATE_FORMAT);
	assert_int_equal(date_parse_typed(NULL, TODAY, out), DATE_FORMAT);
	memset(long_input, ' ', sizeof(long_input) - 11);
	memcpy(long_input + sizeof(long_input) - 11, "1985-03-14", 11);
	assert_refused(long_input, DATE_FORMAT);
}

static void
test_bounds(void **state)
{
	(void)state;
	assert_refused("2026-12-08", DATE_FUTURE);
	assert_refused("2099-01-01", DATE_FUTURE);
	assert_refused("9999-12-31", DATE_FUTURE);
	assert_refused("民國116-01-01", DATE_FUTURE);
	assert_refused("116/1/1", DATE_FUTURE);
	/* 民國 999 is 2910: in the future, not a format error. */
	assert_refused("999-01-01", DATE_FUTURE);
	assert_refused("1899-12-31", DATE_TOO_EARLY);
	assert_refused("0074-03-14", DATE_TOO_EARLY); /* four digits: a Western year */
	assert_refused("18991231", DATE_TOO_EARLY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_western), cmocka_unit_test(test_roc),
	    cmocka_unit_test(test_invalid), cmocka_unit_test(test_format),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
