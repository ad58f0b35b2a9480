// The closed sets that become metric labels and audit reasons: what comes from outside (a claim
// name from jose, a method name from a client) is mapped into them, and the values dashboards,
// alerts and design.md §6 name are members (a rename would break them).
import t from 'tap'
import { badClaimReason as oauthClaimReason, GRANT_TYPE_LABELS, OAUTH_ERROR_CODES, OAUTH_REASONS } from '../../src/authorization-server/reasons.ts'
import { badClaimReason as tokenClaimReason, TOKEN_VALIDATION_REASONS, TOKEN_VALIDATION_RESULTS } from '../../src/authn/reasons.ts'
import { UPSTREAM_ERROR_REASONS } from '../../src/errors.ts'
import { KNOWN_METHODS, methodLabel } from '../../src/jsonrpc/method-label.ts'
import { RATE_LIMITED_LABELS } from '../../src/limits/limit-labels.ts'
import { DECISION_LABELS, DECISION_REASONS } from '../../src/policy/decide.ts'
import { MCP_ERROR_TYPES } from '../../src/telemetry/records.ts'

t.test('no set repeats a value', async (t) => {
  const sets = { OAUTH_ERROR_CODES, OAUTH_REASONS, GRANT_TYPE_LABELS, TOKEN_VALIDATION_RESULTS, TOKEN_VALIDATION_REASONS, UPSTREAM_ERROR_REASONS, KNOWN_METHODS, RATE_LIMITED_LABELS, DECISION_LABELS, DECISION_REASONS, MCP_ERROR_TYPES }
  for (const [name, values] of Object.entries(sets)) t.equal(new Set<string>(values).size, values.length, name)
})

t.test("a claim jose names becomes bad_<claim> when it is one we check, else the verification's fallback", async (t) => {
  t.equal(oauthClaimReason('aud', 'malformed_assertion'), 'bad_aud')
  t.equal(oauthClaimReason('client_id', 'malformed_assertion'), 'bad_client_id')
  t.equal(oauthClaimReason('nonce', 'malformed_id_token'), 'bad_nonce')
  t.equal(oauthClaimReason('made_up', 'malformed_assertion'), 'malformed_assertion')
  t.equal(oauthClaimReason('__proto__', 'malformed_id_token'), 'malformed_id_token', 'not an inherited property')
  t.equal(tokenClaimReason('typ'), 'bad_typ')
  t.equal(tokenClaimReason('iss'), 'bad_iss')
  t.equal(tokenClaimReason('made_up'), 'malformed')
  t.equal(tokenClaimReason('constructor'), 'malformed', 'not an inherited property')
})

t.test('a method a client names is a label only when known', async (t) => {
  t.equal(methodLabel('tools/call'), 'tools/call')
  t.equal(methodLabel('x/made-up'), '_other')
  t.equal(methodLabel(undefined), '_other')
  t.equal(methodLabel('toString'), '_other')
})

t.test('the values dashboards, alerts and design.md §6 name are in the sets', async (t) => {
  // grafana/build-dashboards.ts, deploy/prometheus/rules.test.yaml, design.md §6
  for (const reason of ['wrong_typ', 'bad_signature', 'untrusted_issuer', 'audience_mismatch', 'client_mismatch', 'expired', 'replayed_jti', 'resource_not_allowed']) {
    t.ok((OAUTH_REASONS as readonly string[]).includes(reason), `token reason ${reason}`)
  }
  for (const error of ['invalid_grant', 'invalid_client', 'invalid_request', 'invalid_target', 'invalid_scope', 'temporarily_unavailable']) {
    t.ok((OAUTH_ERROR_CODES as readonly string[]).includes(error), `OAuth error ${error}`)
  }
  t.same([...GRANT_TYPE_LABELS], ['jwt_bearer', 'authorization_code', 'other'])
  for (const reason of ['refused', 'timeout', 'status_5xx', 'bad_response', 'stream_closed', 'process_exited']) {
    t.ok((UPSTREAM_ERROR_REASONS as readonly string[]).includes(reason), `upstream reason ${reason}`)
  }
  for (const limit of ['streams', 'stdio_sessions', 'sse_sessions', 'address', 'client', 'rate_subject', 'rate_client', 'rate_server']) {
    t.ok((RATE_LIMITED_LABELS as readonly string[]).includes(limit), `limit ${limit}`)
  }
  t.same([...DECISION_LABELS], ['allow', 'deny', 'would_deny'])
})
