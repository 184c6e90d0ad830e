/* Unit tests for Taiwan identity formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/idnum.h"

/* Computes the check digit for the first nine characters of an ID, to
 * build valid numbers for every letter independently of the code under
 * test. */
static char
check_digit(const char *s9)
{
	static const int codes[26] = {10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
	                              22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33};
	int code = codes[s9[0] - 'A'], sum, i, second;

	if (s9[1] >= 'A' && s9[1] <= 'D')
		second = codes[s9[1] - 'A'] % 10;
	else
		second = s9[1] - '0';
	sum = code / 10 + (code % 10) * 9 + second * 8;
	for (i = 2; i < 9; i++)
		sum += (s9[i] - '0') * (9 - i);
	return (char)('0' + (10 - sum % 10) % 10);
}

static void
test_national_id(void **state)
{
	char id[11], good;
	int l, d;

	assert_true(idnum_is_national_id("A123456789"));
	assert_true(idnum_is_national_id("A223456781"));
	assert_true(idnum_is_national_id("F228033121"));
	assert_true(idnum_is_national_id("H187654320"));
	assert_true(idnum_is_valid("A123456789"));

	/* Every letter, and every wrong check digit rejected. */
	for (l = 0; l < 26; l++) {
		snprintf(id, sizeof(id), "%c12345678", 'A' + l);
		id[9] = check_digit(id);
		id[10] = '\0';
		assert_true(idnum_is_national_id(id));
		good = id[9];
		for (d = 0; d < 10; d++) {
			if ('0' + d == good)
				continue;
			id[9] = (char)('0' + d);
			assert_false(idnum_is_national_id(id));
		}
	}
	/* I and O have two-digit codes that differ from their position. */
	assert_true(idnum_is_national_id("I100000003") == (check_digit("I10000000") == '3'));

	assert_false(idnum_is_national_id("A123456788")); /* checksum */
	assert_false(idnum_is_national_id("B123456789")); /* checksum */
	assert_false(idnum_is_national_id("a123456789")); /* lower case */
	assert_false(idnum_is_national_id("A323456789")); /* gender digit */
	assert_false(idnum_is_national_id("A023456789"));
	assert_false(idnum_is_national_id("A12345678"));   /* short */
	assert_false(idnum_is_national_id("A1234567890")); /* long */
	assert_false(idnum_is_national_id("A12345678X"));  /* letter */
	assert_false(idnum_is_national_id("1123456789"));  /* no letter */
	assert_false(idnum_is_national_id(" A123456789"));
	assert_false(idnum_is_national_id("A123456789 "));
	assert_false(idnum_is_national_id("A1234\0"
	                                  "6789"));
	assert_false(idnum_is_national_id(""));
	assert_false(idnum_is_national_id("A"));
	assert_false(idnum_is_national_id(NULL));
	assert_false(idnum_is_national_id("\xc3\x81"
	                                  "123456789"));
	assert_false(idnum_is_valid("A123456788"));
	assert_false(idnum_is_valid(NULL));
	/* A resident number is not a national ID. */
	assert_false(idnum_is_national_id("A800000014"));
}

static void
test_resident_id(void **state)
{
	char id[11];
	int s;

	assert_true(idnum_is_resident_id("A800000014"));
	assert_true(idnum_is_resident_id("A900000025"));
	assert_true(idnum_is_valid("A800000014"));
	assert_false(idnum_is_resident_id("A800000015"));
	assert_false(idnum_is_resident_id("A900000024"));
	assert_false(idnum_is_resident_id("A700000014"));
	assert_false(idnum_is_resident_id("A123456789")); /* national */
	assert_false(idnum_is_resident_id("a800000014"));
	assert_false(idnum_is_resident_id("A80000001"));
	assert_false(idnum_is_resident_id("A8000000145"));
	assert_false(idnum_is_resident_id(NULL));
	assert_false(idnum_is_resident_id(""));

	/* Old style: second letter A-D. */
	for (s = 0; s < 4; s++) {
		snprintf(id, sizeof(id), "F%c1234567", 'A' + s);
		id[9] = check_digit(id);
		id[10] = '\0';
		assert_true(idnum_is_resident_id(id));
		assert_true(idnum_is_valid(id));
		assert_false(idnum_is_national_id(id));
		id[9] = (char)('0' + (id[9] - '0' + 1) % 10);
		assert_false(idnum_is_resident_id(id));
	}
	assert_true(idnum_is_resident_id("FA12345673") == (check_digit("FA1234567") == '3'));
	snprintf(id, sizeof(id), "FE1234567");
	id[9] = check_digit("FA1234567");
	id[10] = '\0';
	assert_false(idnum_is_resident_id(id)); /* E is not a resident letter */
}

static void
test_normalize(void **state)
{
	char out[11];

	assert_true(idnum_normalize("  a123456789 ", out));
	assert_string_equal(out, "A123456789");
	assert_true(idnum_normalize("A123456789", out));
	assert_string_equal(out, "A123456789");
	assert_false(idnum_normalize("A12345678", out));
	assert_false(idnum_normalize("A1234567890", out));
	assert_false(idnum_normalize("A12345-789", out));
	assert_false(idnum_normalize("A12345 789", out));
	assert_false(idnum_normalize("", out));
	assert_false(idnum_normalize(NULL, out));
	assert_false(idnum_normalize("\xef\xbc\xa1"
	                             "123456789",
	                             out));
}

static void
test_phone(void **state)
{
	char out[11], e164[14];
	static const char *const good[] = {
	    "0912345678",   "0912-345-678",     "0912 345 678",     "+886912345678",
	    " 0912345678 ", "+886 912 345 678", "+886-912-345-678", "09-12345678",
	};
	static const char *const bad[] = {
	    "",
	    "091234567",
	    "09123456789",
	    "0812345678",
	    "1912345678",
	    "+8860912345678",
	    "+886812345678",
	    "886912345678",
	    "0912--345678",
	    "0912-345-678-",
	    "-0912345678",
	    "0912 345 678x",
	    "0912.345.678",
	    "(09)12345678",
	    "+88691234567",
	    "+8869123456789",
	    "0912345678 9",
	    "０９１２３４５６７８",
	    "+886",
	    "0912 -345678",
	    "09123456780000000000000000000",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!phone_normalize(good[i], out))
			fail_msg("rejected \"%s\"", good[i]);
		assert_string_equal(out, "0912345678");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (phone_normalize(bad[i], out))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(phone_normalize(NULL, out));

	phone_to_e164("0912345678", e164);
	assert_string_equal(e164, "+886912345678");
	phone_to_e164("912345678", e164);
	assert_string_equal(e164, "");
	phone_to_e164(NULL, e164);
	assert_string_equal(e164, "");
}

static void
test_ubn(void **state)
{
	assert_true(idnum_is_ubn("04595257"));
	assert_true(idnum_is_ubn("10458575"));
	/* Seventh digit 7: the alternative sum also counts. */
	assert_true(idnum_is_ubn("10458574"));
	assert_true(idnum_is_ubn("00000000"));
	assert_true(idnum_is_ubn("04702088"));
	assert_true(idnum_is_ubn("00651474"));
	assert_true(idnum_is_ubn("00238778"));
	assert_false(idnum_is_ubn("04595258"));
	assert_false(idnum_is_ubn("10458576"));
	assert_false(idnum_is_ubn("10458573"));
	assert_false(idnum_is_ubn("0459525"));
	assert_false(idnum_is_ubn("045952570"));
	assert_false(idnum_is_ubn("0459525a"));
	assert_false(idnum_is_ubn("-4595257"));
	assert_false(idnum_is_ubn(""));
	assert_false(idnum_is_ubn(NULL));
}

static void
test_date(void **state)
{
	assert_true(date_is_valid("2024-02-29"));
	assert_false(date_is_valid("2023-02-29"));
	assert_true(date_is_valid("2000-02-29"));
	assert_false(date_is_valid("2100-02-29"));
	assert_false(date_is_valid("1900-02-29"));
	assert_true(date_is_valid("1900-01-01"));
	assert_true(date_is_valid("2100-12-31"));
	assert_false(date_is_valid("1899-12-31"));
	assert_false(date_is_valid("2101-01-01"));
	assert_true(date_is_valid("1985-04-30"));
	assert_false(date_is_valid("1985-04-31"));
	assert_false(date_is_valid("1985-13-01"));
	assert_false(date_is_valid("1985-00-01"));
	assert_false(date_is_valid("1985-01-00"));
	assert_false(date_is_valid("1985-01-32"));
	assert_false(date_is_valid("1985-1-01"));
	assert_false(date_is_valid("1985/01/01"));
	assert_false(date_is_valid("1985-01-01 "));
	assert_false(date_is_valid("1985-01-0"));
	assert_false(date_is_valid("74-01-01"));
	assert_false(date_is_valid("19850101"));
	assert_false(date_is_valid(""));
	assert_false(date_is_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_national_id), cmocka_unit_test(test_resident_id),
	    cmocka_unit_test(test_normalize),   cmocka_unit_test(test_phone),
	    cmocka_unit_test(test_ubn),         cmocka_unit_test(test_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
