/* Dates as people in Taiwan type them: the year in the Western calendar
 * (西元, four digits) or in the Republic of China calendar (民國, one to
 * three digits, or four with 民國 in front: 民國 year + 1911). */
#ifndef ISSO_BIRTHDATE_H
#define ISSO_BIRTHDATE_H

enum date_typed {
	DATE_OK = 0,
	DATE_FORMAT,    /* not a date in any accepted form */
	DATE_INVALID,   /* the form is right but the day does not exist */
	DATE_FUTURE,    /* after today */
	DATE_TOO_EARLY, /* before 1900-01-01 */
};

/* Reads s (untrusted UTF-8, at most 64 bytes) and writes "YYYY-MM-DD" into
 * out. Accepted, with ASCII or full-width digits, spaces around the parts:
 *   1985-03-14  1985/3/14  1985.3.14  1985 3 14  1985年3月14日  19850314
 *   西元1985-03-14 (西元 requires four digits)
 *   民國74-03-14  民國74/3/14  民國74年3月14日  74-03-14  074/3/14
 *   0740314 (seven digits) and, after 民國, 740314 (six digits)
 * A year of one to three digits is a 民國 year. today ("YYYY-MM-DD") is the
 * last date allowed; out is written only on DATE_OK. */
enum date_typed date_parse_typed(const char *s, const char *today, char out[11]);

#endif
