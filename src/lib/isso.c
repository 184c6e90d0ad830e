/* Error names, and the machine facts every part sizes itself by. */
#include "lib/isso.h"

#include <sched.h>
#include <unistd.h>

unsigned
isso_cpu_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

const char *
isso_strerror(int err)
{
	switch (err) {
	case ISSO_OK:
		return "ok";
	case ISSO_ERR_NOMEM:
		return "out of memory";
	case ISSO_ERR_INVALID:
		return "invalid input";
	case ISSO_ERR_IO:
		return "i/o error";
	case ISSO_ERR_STORE:
		return "store error";
	case ISSO_ERR_CONFLICT:
		return "conflict";
	case ISSO_ERR_LIMIT:
		return "limit reached";
	case ISSO_ERR_CRYPTO:
		return "cryptographic failure";
	case ISSO_ERR_DENIED:
		return "denied";
	case ISSO_ERR_TIMEOUT:
		return "timeout";
	default:
		return "unknown error";
	}
}
