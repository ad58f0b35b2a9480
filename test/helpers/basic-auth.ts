/**
 * HTTP Basic credentials, built one way for every test.
 *
 * Two flavours, because the gateway takes Basic in two places with two rules:
 * - basicAuth: plain RFC 7617, as a browser or curl sends it (the admin endpoints' user and
 *   password): `user:password` in UTF-8, base64, nothing escaped;
 * - clientBasicAuth: an OAuth client authenticating at a token endpoint (client_secret_basic),
 *   RFC 6749 §2.3.1: the client id and the secret are each application/x-www-form-urlencoded
 *   first, then put together as above.
 * Hostile tests that need a malformed header (no colon, bad base64, …) still write it by hand.
 */

/** RFC 7617 `Basic` credentials: base64 of UTF-8 `user:password`, unescaped. */
export function basicAuth (user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`
}

/** RFC 6749 §2.3.1 client_secret_basic: id and secret form-urlencoded, then RFC 7617 `Basic`. */
export function clientBasicAuth (clientId: string, secret: string): string {
  return basicAuth(formUrlEncode(clientId), formUrlEncode(secret))
}

/** The application/x-www-form-urlencoded serialization of one value (space as `+`). */
export function formUrlEncode (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice('v='.length)
}
