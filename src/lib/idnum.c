/* Taiwan identity formats. Every predicate checks characters one by one
 * up to a fixed length, so it never reads past the terminating NUL. */
#include "lib/idnum.h"

#include <string.h>

/* Codes of A..Z for the first letter of IDs (REFERENCE.md "Formats"). */
static const unsigned char idnum_letter_code[26] = {
    10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
    22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33,
};

static bool
idnum_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
idnum_is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

/* Checks s[2..9] are digits, s[10] ends the string, and the checksum with
 * the given value standing for the second character. */
static bool
idnum_checksum(const char *s, int second)
{
	int code, sum, i;

	for (i = 2; i < 10; i++)
		if (!idnum_is_digit(s[i]))
			return false;
	if (s[10] != '\0')
		return false;
	code = idnum_letter_code[s[0] - 'A'];
	sum = code / 10 + code % 10 * 9 + second * 8;
	for (i = 2; i < 9; i++)
		sum += (s[i] - '0') * (9 - i);
	sum += s[9] - '0';
	return sum % 10 == 0;
}

bool
idnum_is_national_id(const char *s)
{
	if (s == NULL || !idnum_is_upper(s[0]) || (s[1] != '1' && s[1] != '2'))
		return false;
	return idnum_checksum(s, s[1] - '0');
}

bool
idnum_is_resident_id(const char *s)
{
	if (s == NULL || !idnum_is_upper(s[0]))
		return false;
	/* Old style: the second letter counts as the units digit of its code. */
	if (s[1] >= 'A' && s[1] <= 'D')
		return idnum_checksum(s, idnum_letter_code[s[1] - 'A'] % 10);
	if (s[1] == '8' || s[1] == '9')
		return idnum_checksum(s, s[1] - '0');
	return false;
}

bool
idnum_is_valid(const char *s)
{
	return idnum_is_national_id(s) || idnum_is_resident_id(s);
}

bool
idnum_normalize(const char *s, char out[11])
{
	size_t i, n;

	out[0] = '\0';
	if (s == NULL)
		return false;
	while (*s == ' ')
		s++;
	n = strnlen(s, 64);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n != 10)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!idnum_is_upper(c) && !idnum_is_digit(c)) {
			out[0] = '\0';
			return false;
		}
		out[i] = c;
	}
	out[n] = '\0';
	return true;
}

bool
phone_normalize(const char *s, char out[11])
{
	char digits[11];
	size_t n = 0;
	bool sep_ok = false; /* a separator sits between two digits */

	out[0] = '\0';
	if (s == NULL)
		return false;
	while (*s == ' ')
		s++;
	if (strncmp(s, "+886", 4) == 0) {
		s += 4;
		if (*s == ' ' || *s == '-')
			s++;
		if (*s != '9')
			return false;
		digits[n++] = '0';
	}
	for (; *s != '\0'; s++) {
		if (idnum_is_digit(*s)) {
			if (n == 10)
				return false;
			digits[n++] = *s;
			sep_ok = true;
		} else if ((*s == ' ' || *s == '-') && sep_ok && idnum_is_digit(s[1])) {
			sep_ok = false;
		} else {
			break;
		}
	}
	/* Only trailing spaces may follow the number. */
	while (*s == ' ')
		s++;
	if (*s != '\0' || n != 10)
		return false;
	if (digits[0] != '0' || digits[1] != '9')
		return false;
	memcpy(out, digits, 10);
	out[10] = '\0';
	return true;
}

void
phone_to_e164(const char *normalized, char out[14])
{
	if (normalized == NULL || normalized[0] != '0' || strnlen(normalized, 11) != 10) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "+886", 4);
	memcpy(out + 4, normalized + 1, 9);
	out[13] = '\0';
}

bool
idnum_is_ubn(const char *s)
{
	static const int w[8] = {1, 2, 1, 2, 1, 2, 4, 1};
	int sum = 0, p, i;

	if (s == NULL)
		return false;
	for (i = 0; i < 8; i++)
		if (!idnum_is_digit(s[i]))
			return false;
	if (s[8] != '\0')
		return false;
	for (i = 0; i < 8; i++) {
		p = (s[i] - '0') * w[i];
		sum += p / 10 + p % 10;
	}
	/* The seventh digit 7 gives 28 -> 10, which may count as 1 or 0. */
	return sum % 5 == 0 || (s[6] == '7' && (sum + 1) % 5 == 0);
}

bool
date_is_valid(const char *s)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, i, max;

	if (s == NULL)
		return false;
	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return false;
		} else if (!idnum_is_digit(s[i])) {
			return false;
		}
	}
	if (s[10] != '\0')
		return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1900 || y > 2100 || m < 1 || m > 12 || d < 1)
		return false;
	max = mdays[m - 1];
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		max = 29;
	return d <= max;
}
