/* Error names. */
#include "lib/isso.h"

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
