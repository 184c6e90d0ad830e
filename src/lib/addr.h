/* Client addresses as the rate limits and guess throttles count them: one
 * IPv4 address, or one IPv6 /64 (what a single subscriber is usually
 * given, so every address inside it counts as one client). */
#ifndef ISSO_ADDR_H
#define ISSO_ADDR_H

/* Room for the longest key: an IPv6 prefix text and "/64". */
#define ADDR_KEY_MAX 64

/* The key of a client address given as text (http_remote_addr): an IPv4
 * address as it is, an IPv6 address by its /64 ("2001:db8:1:2::/64"), an
 * IPv4-mapped IPv6 address as its IPv4 address; anything else (no address
 * at all) as "unknown". Writes out and returns it. */
const char *addr_limit_key(const char *addr, char out[ADDR_KEY_MAX]);

#endif
