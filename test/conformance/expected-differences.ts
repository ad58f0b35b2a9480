/**
 * Where the gateway's answer deliberately differs from the upstream's, check by check. Every
 * entry is a place where the gateway is *stricter* than the server behind it, required by the
 * spec; the run fails on any other difference, and on a listed difference that did not happen
 * (so this list can't go stale).
 */
export interface ExpectedDifference {
  readonly scenario: string
  readonly check: string
  readonly direct: string
  readonly gateway: string
  readonly why: string
}

export const EXPECTED_DIFFERENCES: readonly ExpectedDifference[] = [
  {
    scenario: 'dns-rebinding-protection',
    check: 'localhost-host-rebinding-rejected',
    direct: 'FAILURE',
    gateway: 'SUCCESS',
    why: 'server-everything does not validate Origin; the gateway answers a foreign Origin with 403 ' +
      '(Streamable HTTP: "If the Origin header is present and invalid, servers MUST respond with HTTP 403")',
  },
]
