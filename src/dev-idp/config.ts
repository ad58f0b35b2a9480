/**
 * The dev IdP's configuration (design.md §8): YAML, `${ENV}` substituted, a closed schema with
 * defaults, then the rules that relate one field to another. Every problem is reported at once,
 * with its path; no message repeats a value (passwords and secrets live in this file).
 *
 *   parseYaml → substituteEnv → validateDevIdpSchema → checks → build (frozen)
 */
import { createHash } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { ConfigError, formatPath, type PathSegment, type Problem } from '../config/errors.ts'
import { parseYaml, readConfigFile, substituteEnv, type Env } from '../config/load.ts'
import { type LocatedProblem, type SigningAlgorithm, validateDevIdpSchema } from './config-schema.ts'

export { ConfigError } from '../config/errors.ts'

export interface DevIdpUser {
  readonly username: string
  readonly sub: string
  readonly password: string
  readonly email: string
  readonly name?: string
  readonly groups: readonly string[]
}

export interface DevIdpClient {
  readonly clientId: string
  readonly secret: string
  readonly redirectUris: readonly string[]
  /** the client_id this client has at the resource AS; goes into the ID-JAG's `client_id` */
  readonly idJagClientId: string
}

/** One entry of `policy`: who may get an ID-JAG for which (audience, resource) pairs, with which scopes. */
export interface DevIdpGrant {
  /** a resource AS's issuer (e.g. the gateway's); the ID-JAG's `aud` */
  readonly audience: string
  /** the RFC 9728 resource ids reachable under it; required: no entry stands for "any resource" */
  readonly resources: readonly string[]
  /** absent: any user; else the user must be in one of them */
  readonly groups?: readonly string[]
  /** absent: any user; else usernames */
  readonly users?: readonly string[]
  /** absent: any client; else IdP client ids */
  readonly clients?: readonly string[]
  /** the scopes a grant under this entry may carry */
  readonly scopes: readonly string[]
}

export interface DevIdpConfig {
  /** absent: `http://{listen.host}:{bound port}`, known once the IdP listens */
  readonly issuer?: string
  readonly listen: { readonly host: string; readonly port: number }
  /** keysFile is absolute (resolved against the config file's directory) */
  readonly signing: { readonly alg: SigningAlgorithm; readonly keysFile?: string }
  readonly idTokenTtlSeconds: number
  readonly idJagTtlSeconds: number
  readonly users: readonly DevIdpUser[]
  readonly clients: readonly DevIdpClient[]
  readonly policy: readonly DevIdpGrant[]
}

export async function loadDevIdpConfig (path: string, env: Env = process.env): Promise<DevIdpConfig> {
  return parseDevIdpConfig(await readConfigFile(path), { source: path, env, baseDir: dirname(resolve(path)) })
}

/** Throws ConfigError listing every problem. `baseDir` anchors a relative `signing.keysFile`. */
export function parseDevIdpConfig (text: string, opts: { source: string; env?: Env; baseDir?: string }): DevIdpConfig {
  const substituted = substituteEnv(parseYaml(text, opts.source) ?? {}, opts.env ?? {})
  const data = substituted.value
  const problems = [...substituted.problems, ...validateDevIdpSchema(data)]
  // Cross-field rules only run on what the schema accepted: the casts below rely on it.
  if (problems.length === 0) problems.push(...checkDevIdpConfig(data as RawDevIdpConfig))
  if (problems.length > 0) throw new ConfigError(opts.source, dedupe(problems, substituted.problems.length))
  return deepFreeze(build(data as RawDevIdpConfig, opts.baseDir ?? process.cwd()))
}

/** What the schema guarantees (defaults filled in). */
interface RawDevIdpConfig {
  issuer?: string
  listen: { host: string; port: number }
  signing: { alg: SigningAlgorithm; keysFile?: string }
  idTokenTtlSeconds: number
  idJagTtlSeconds: number
  users: (Omit<DevIdpUser, 'sub'> & { sub?: string })[]
  clients: (Omit<DevIdpClient, 'idJagClientId'> & { idJagClientId?: string })[]
  policy: DevIdpGrant[]
}

/** A stable subject for a user without `sub`: the same username always gets the same id. */
export function derivedSub (username: string): string {
  return `u_${createHash('sha256').update(`portcullis-dev-idp:${username}`).digest('base64url').slice(0, 22)}`
}

function checkDevIdpConfig (raw: RawDevIdpConfig): LocatedProblem[] {
  const problems: LocatedProblem[] = []
  const report = (path: PathSegment[], message: string): void => { problems.push({ path, message }) }
  if (raw.issuer !== undefined) checkUrl(raw.issuer, ['issuer'], report, { rootOnly: true })
  else if (['0.0.0.0', '::', '[::]'].includes(raw.listen.host)) {
    report(['issuer'], 'is required when listen.host is a wildcard address (clients must be told one URL)')
  }
  unique(raw.users.map((u) => u.username), ['users'], 'username', report)
  // a repeated username already repeats its derived sub: report it once
  const firstOfName = raw.users.filter((u, i) => raw.users.findIndex((other) => other.username === u.username) === i)
  unique(raw.users.map((u) => firstOfName.includes(u) ? u.sub ?? derivedSub(u.username) : `\u0000${u.username}`), ['users'], 'sub', report)
  unique(raw.clients.map((c) => c.clientId), ['clients'], 'clientId', report)
  raw.clients.forEach((client, i) => client.redirectUris.forEach((uri, j) => checkUrl(uri, ['clients', i, 'redirectUris', j], report)))
  const usernames = new Set(raw.users.map((u) => u.username))
  const groups = new Set(raw.users.flatMap((u) => u.groups))
  const clientIds = new Set(raw.clients.map((c) => c.clientId))
  raw.policy.forEach((grant, i) => {
    checkUrl(grant.audience, ['policy', i, 'audience'], report)
    grant.resources.forEach((resource, j) => checkUrl(resource, ['policy', i, 'resources', j], report))
    grant.users?.forEach((name, j) => { if (!usernames.has(name)) report(['policy', i, 'users', j], 'is not the username of any user') })
    grant.groups?.forEach((name, j) => { if (!groups.has(name)) report(['policy', i, 'groups', j], 'no user is in this group') })
    grant.clients?.forEach((id, j) => { if (!clientIds.has(id)) report(['policy', i, 'clients', j], 'is not the clientId of any client') })
  })
  return problems
}

function checkUrl (value: string, path: PathSegment[], report: (path: PathSegment[], message: string) => void, opts: { rootOnly?: boolean } = {}): void {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    report(path, 'must be an absolute URL')
    return
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') report(path, 'must be an http or https URL')
  else if (url.hash !== '' || value.includes('#')) report(path, 'must not have a fragment')
  else if (opts.rootOnly === true && (url.search !== '' || url.pathname !== '/')) {
    report(path, 'must be an origin without path or query (the dev IdP serves its endpoints at the root)')
  }
}

function unique (values: readonly string[], path: PathSegment[], key: string, report: (path: PathSegment[], message: string) => void): void {
  const first = new Map<string, number>()
  values.forEach((value, i) => {
    const earlier = first.get(value)
    if (earlier === undefined) first.set(value, i)
    else report([...path, i, key], `repeats the ${key} of ${formatPath([...path, earlier])}`)
  })
}

function build (raw: RawDevIdpConfig, baseDir: string): DevIdpConfig {
  const { keysFile } = raw.signing
  return {
    ...(raw.issuer !== undefined && { issuer: raw.issuer }),
    listen: raw.listen,
    signing: { alg: raw.signing.alg, ...(keysFile !== undefined && { keysFile: resolve(baseDir, keysFile) }) },
    idTokenTtlSeconds: raw.idTokenTtlSeconds,
    idJagTtlSeconds: raw.idJagTtlSeconds,
    users: raw.users.map((user) => ({ ...user, sub: user.sub ?? derivedSub(user.username) })),
    clients: raw.clients.map((client) => ({ ...client, idJagClientId: client.idJagClientId ?? client.clientId })),
    policy: raw.policy,
  }
}

/** One problem per path and message; a path whose ${VAR} failed (the first `envCount`) gets no follow-on complaints. */
function dedupe (problems: readonly LocatedProblem[], envCount: number): Problem[] {
  const envPaths = new Set(problems.slice(0, envCount).map((problem) => formatPath(problem.path)))
  const seen = new Set<string>()
  const out: Problem[] = []
  for (const [i, problem] of problems.entries()) {
    const path = formatPath(problem.path)
    const key = `${path}\n${problem.message}`
    if (seen.has(key) || (i >= envCount && envPaths.has(path))) continue
    seen.add(key)
    out.push({ path, message: problem.message })
  }
  return out
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item)
    Object.freeze(value)
  }
  return value
}
