// The deployment files (deploy/): the kustomize base and every overlay build, and the built
// objects have what running the gateway safely needs (probes on the admin port, a locked-down
// securityContext, a drain that fits the grace period, PDB, HPA, Secret references but no Secret
// values); several replicas share a Redis store (design.md §7: store URL and session key from a
// Secret, the pod IP as advertiseUrl, replica-to-replica and Redis traffic allowed by the
// NetworkPolicy; a Redis of their own in dev and compose); every config under deploy/ loads with
// the real config loader, and every ${ENV} it needs is provided by the Deployment; yamllint and
// docker-compose accept the YAML; the Dockerfile keeps its promises.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { parseConfig, parseYaml } from '../../src/config/load.ts'
import { PROD_SAMPLER } from '../bench/features-options.ts'
import { TRACES_FLUSH_MS } from '../../src/telemetry/tracing.ts'
import { STOP_WAIT_MS } from '../../src/telemetry/log-destination.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const kustomizeDir = join(root, 'deploy/kubernetes')
const OVERLAYS = readdirSync(join(kustomizeDir, 'overlays')).sort()

/** a built Kubernetes object, walked loosely: a missing field is a failed assertion, not a crash */
type Obj = Record<string, any>
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function has (tool: string, args: string[]): boolean {
  return spawnSync(tool, args, { encoding: 'utf8' }).error === undefined
}
const skipUnless = (tool: string, args: string[], install: string): false | string =>
  has(tool, args) ? false : `${tool} is not installed (${install})`

const noKubectl = skipUnless('kubectl', ['version', '--client'], 'kubectl, with its built-in kustomize')

function kustomize (dir: string): Obj[] {
  const result = spawnSync('kubectl', ['kustomize', join(kustomizeDir, dir)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${result.stderr}`)
  return parseAllDocuments(result.stdout).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${doc.errors.map((e) => e.message).join('; ')}`)
    return doc.toJS() as Obj
  }).filter((o) => o !== null)
}

const one = (objects: Obj[], kind: string, name = 'portcullis'): Obj | undefined =>
  objects.find((o) => o.kind === kind && (o.metadata?.name === name || String(o.metadata?.name).startsWith(`${name}-`)))

/** ${NAME} references in the string values of a config (not in its comments; `$${` is a literal). */
function envReferences (text: string): string[] {
  const strings: string[] = []
  const walk = (node: unknown): void => {
    if (typeof node === 'string') strings.push(node)
    else if (Array.isArray(node)) node.forEach(walk)
    else if (typeof node === 'object' && node !== null) Object.values(node).forEach(walk)
  }
  walk(parseYaml(text, '<config>'))
  return [...new Set(strings.flatMap((value) => [...value.replaceAll('$${', '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] ?? '')))]
}

/** Values of the right shape where the config checks the shape (a URL, an address). */
const FAKE_VALUES: Record<string, string> = {
  REDIS_URL: 'redis://portcullis:test-password@redis.test:6379',
  POD_IP: '10.0.0.7',
}

/** A value for every ${NAME}: the test only checks the config, not the secrets. */
const fakeEnv = (text: string): Record<string, string> =>
  Object.fromEntries(envReferences(text).map((name) => [name, FAKE_VALUES[name] ?? `test-value-for-${name.toLowerCase()}`]))

/** the container's env entry of that name */
const envVar = (container: Obj | undefined, name: string): Obj | undefined => (container?.env ?? []).find((e: Obj) => e.name === name)

function checkGatewayObjects (t: Test, objects: Obj[], where: string): { config: string; deployment: Obj } {
  const deployment = one(objects, 'Deployment')
  t.ok(deployment, `${where}: a Deployment`)
  const pod = deployment?.spec?.template?.spec ?? {}
  const container = (pod.containers ?? []).find((c: Obj) => c.name === 'portcullis') ?? {}

  // ports and probes
  const ports = Object.fromEntries((container.ports ?? []).map((p: Obj) => [p.name, p.containerPort]))
  t.same(ports, { http: 8080, metrics: 9464 }, `${where}: container ports http 8080 and metrics 9464`)
  t.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${where}: readiness probe /readyz`)
  t.equal(container.readinessProbe?.httpGet?.port, 'metrics', `${where}: readiness probe on the admin port`)
  t.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${where}: liveness probe /healthz`)
  t.equal(container.livenessProbe?.httpGet?.port, 'metrics', `${where}: liveness probe on the admin port`)

  // resources
  for (const kind of ['requests', 'limits']) {
    t.ok(container.resources?.[kind]?.cpu, `${where}: cpu ${kind}`)
    t.ok(container.resources?.[kind]?.memory, `${where}: memory ${kind}`)
  }

  // security
  t.equal(pod.securityContext?.runAsNonRoot, true, `${where}: pod runAsNonRoot`)
  t.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp RuntimeDefault`)
  t.equal(container.securityContext?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`)
  t.equal(container.securityContext?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`)
  t.same(container.securityContext?.capabilities?.drop, ['ALL'], `${where}: drop ALL capabilities`)
  t.equal(pod.automountServiceAccountToken, false, `${where}: no service account token`)

  // the config: from the ConfigMap, loads, and every ${ENV} is in the container's env
  const configMapName: string | undefined = (pod.volumes ?? []).flatMap((v: Obj) => v.projected?.sources ?? [])
    .find((s: Obj) => s.configMap !== undefined)?.configMap?.name
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === configMapName)
  t.ok(configMap, `${where}: the ConfigMap the pod mounts (${configMapName ?? '?'}) is part of the build`)
  const config = String(configMap?.data?.['portcullis.yaml'] ?? '')
  const envNames = new Set((container.env ?? []).map((e: Obj) => e.name))
  for (const name of envReferences(config)) t.ok(envNames.has(name), `${where}: \${${name}} of the config is in the container env`)
  const loaded = parseConfig(config, { source: `${where}/portcullis.yaml`, env: fakeEnv(config) })
  t.equal(loaded.admin.port, 9464, `${where}: config admin port is the metrics port`)
  t.equal(loaded.listen.port, 8080, `${where}: config listen port is the http port`)

  // the mounted files are where the command and the config look for them
  const mount = (container.volumeMounts ?? []).find((m: Obj) => m.name === 'config')
  t.equal(mount?.mountPath, '/etc/portcullis', `${where}: config volume at /etc/portcullis`)
  t.same(container.args ?? container.command, ['node', 'bin/portcullis.js', 'start', '--config', '/etc/portcullis/portcullis.yaml'], `${where}: starts with the mounted config`)
  if (loaded.authorization.signingKeys !== undefined) {
    const secretItem = (pod.volumes ?? []).flatMap((v: Obj) => v.projected?.sources ?? []).find((s: Obj) => s.secret !== undefined)?.secret?.items?.[0]
    t.equal(`/etc/portcullis/${String(secretItem?.path)}`, loaded.authorization.signingKeys, `${where}: signingKeys is the file the Secret is mounted as`)
  }

  // stop: preStop sleep + drainTimeoutMs + the wait for stdout's reader + the wait for the last spans fit in the grace period
  const preStop: string[] = container.lifecycle?.preStop?.exec?.command ?? []
  t.equal(preStop[0], 'sleep', `${where}: a preStop sleep so endpoints drop the pod before SIGTERM`)
  const sleepSeconds = Number(preStop[1])
  t.ok(sleepSeconds > 0, `${where}: preStop sleeps ${sleepSeconds}s`)
  const grace = Number(pod.terminationGracePeriodSeconds)
  t.ok(grace * 1000 > loaded.listen.drainTimeoutMs + sleepSeconds * 1000 + STOP_WAIT_MS + TRACES_FLUSH_MS,
    `${where}: terminationGracePeriodSeconds ${grace}s > preStop ${sleepSeconds}s + drainTimeoutMs ${loaded.listen.drainTimeoutMs}ms + log flush ${STOP_WAIT_MS}ms + traces flush ${TRACES_FLUSH_MS}ms`)

  // Service, PDB, HPA
  const service = one(objects, 'Service')
  const servicePorts = Object.fromEntries((service?.spec?.ports ?? []).map((p: Obj) => [p.name, [p.port, p.targetPort]]))
  t.same(servicePorts, { http: [8080, 'http'], metrics: [9464, 'metrics'] }, `${where}: Service ports http and metrics`)
  t.same(service?.spec?.selector, deployment?.spec?.selector?.matchLabels, `${where}: Service selects the Deployment's pods`)
  const pdb = one(objects, 'PodDisruptionBudget')
  t.equal(pdb?.apiVersion, 'policy/v1', `${where}: a policy/v1 PodDisruptionBudget`)
  t.same(pdb?.spec?.selector?.matchLabels, deployment?.spec?.selector?.matchLabels, `${where}: PDB selects the Deployment's pods`)
  t.ok(pdb?.spec?.maxUnavailable !== undefined || pdb?.spec?.minAvailable !== undefined, `${where}: PDB sets a budget`)
  const hpa = one(objects, 'HorizontalPodAutoscaler')
  t.equal(hpa?.apiVersion, 'autoscaling/v2', `${where}: an autoscaling/v2 HPA`)
  t.equal(hpa?.spec?.scaleTargetRef?.name, deployment?.metadata?.name, `${where}: HPA scales the Deployment`)
  t.equal(hpa?.spec?.metrics?.[0]?.resource?.name, 'cpu', `${where}: HPA on CPU`)
  t.ok(hpa?.spec?.minReplicas <= hpa?.spec?.maxReplicas, `${where}: HPA min <= max`)

  // secrets by reference only: every env var that smells like a secret comes from a Secret
  for (const env of container.env ?? []) {
    if (/SECRET|TOKEN|PASSWORD|KEY/i.test(String(env.name))) {
      t.ok(env.valueFrom?.secretKeyRef, `${where}: ${String(env.name)} comes from a Secret, not a literal`)
    }
  }
  return { config, deployment: deployment ?? {} }
}

t.test('kustomize base', { skip: noKubectl }, async (t) => {
  const objects = kustomize('base')
  checkGatewayObjects(t, objects, 'base')
  t.same(objects.filter((o) => o.kind === 'Secret'), [], 'the base holds no Secret (values come from outside)')
  const pod = one(objects, 'Deployment')?.spec?.template?.spec
  const secretNames = new Set([
    ...(pod?.volumes ?? []).flatMap((v: Obj) => v.projected?.sources ?? []).filter((s: Obj) => s.secret).map((s: Obj) => s.secret.name),
    ...(pod?.containers?.[0]?.env ?? []).filter((e: Obj) => e.valueFrom?.secretKeyRef).map((e: Obj) => e.valueFrom.secretKeyRef.name),
  ])
  t.same([...secretNames].sort(), ['portcullis-client-secrets', 'portcullis-signing-keys'], 'references the signing keys and client secrets Secrets')
  for (const o of objects) t.equal(o.metadata?.labels?.['app.kubernetes.io/name'], 'portcullis', `${o.kind as string} is labelled`)
})

for (const overlay of OVERLAYS) {
  t.test(`kustomize overlays/${overlay}`, { skip: noKubectl }, async (t) => {
    const objects = kustomize(`overlays/${overlay}`)
    const { config, deployment } = checkGatewayObjects(t, objects, overlay)
    for (const o of objects) t.ok(o.metadata?.namespace, `${o.kind as string} ${o.metadata?.name as string} has a namespace`)
    if (overlay === 'prod') {
      const pod = deployment.spec?.template?.spec ?? {}
      t.ok(deployment.spec?.replicas >= 3, 'prod runs at least 3 replicas')
      t.ok(one(objects, 'HorizontalPodAutoscaler')?.spec?.minReplicas >= 3, 'prod HPA keeps at least 3')
      t.ok(pod.affinity?.podAntiAffinity, 'prod spreads replicas (pod anti-affinity)')
      t.ok(one(objects, 'ServiceMonitor'), 'prod has the ServiceMonitor component')
      t.equal(one(objects, 'ServiceMonitor')?.spec?.endpoints?.[0]?.port, 'metrics', 'ServiceMonitor scrapes the metrics port')
      t.ok(one(objects, 'NetworkPolicy'), 'prod has the NetworkPolicy component')
      t.same(one(objects, 'NetworkPolicy')?.spec?.policyTypes, ['Ingress', 'Egress'], 'NetworkPolicy restricts both directions')
      t.same(objects.filter((o) => o.kind === 'Secret'), [], 'prod holds no Secret values')
      const loaded = parseConfig(config, { source: 'prod', env: fakeEnv(config) })
      t.match(loaded.store?.url, /^rediss?:\/\//, 'prod config uses a Redis store')
      t.equal(loaded.store?.keyPrefix, 'portcullis:', 'prod store key prefix portcullis:')

      // design.md §7: the store URL and the session key from the Secret, the pod's own address from the downward API
      const rawConfig = parseYaml(config, 'prod') as Obj
      t.equal(rawConfig.store?.url, '${REDIS_URL}', 'prod store.url is ${REDIS_URL}: credentials stay in the Secret')
      t.equal(rawConfig.listen?.advertiseUrl, 'http://${POD_IP}:8080', 'prod listen.advertiseUrl is the pod IP on the client port')
      t.equal(loaded.listen.advertiseUrl, `http://${FAKE_VALUES.POD_IP ?? ''}:8080`, 'advertiseUrl loads as http://<pod ip>:8080')
      const container = (pod.containers ?? []).find((c: Obj) => c.name === 'portcullis')
      for (const name of ['REDIS_URL', 'PORTCULLIS_SESSION_KEY']) {
        const ref = envVar(container, name)?.valueFrom?.secretKeyRef
        t.ok(ref?.name && ref?.key, `prod ${name} comes from a Secret (secretKeyRef)`)
        t.notOk(ref?.optional, `prod ${name} is required, not optional`)
        t.equal(envVar(container, name)?.value, undefined, `prod ${name} has no literal value`)
      }
      t.equal(envVar(container, 'POD_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP', 'prod POD_IP from the downward API (status.podIP)')
      t.equal(envVar(container, 'REDIS_PASSWORD'), undefined, 'no separate REDIS_PASSWORD: the URL carries the credentials')
      t.equal((container?.env ?? []).filter((e: Obj) => e.name === 'PORTCULLIS_SESSION_KEY').length, 1, 'PORTCULLIS_SESSION_KEY once (the patch merges into the base entry)')

      // the NetworkPolicy lets replicas reach each other on the client port, and reach Redis
      const policy = one(objects, 'NetworkPolicy')
      const selectsGateway = (peer: Obj): boolean => peer.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'portcullis' && peer.namespaceSelector === undefined
      const portsOf = (rule: Obj): unknown[] => (rule.ports ?? []).map((p: Obj) => p.port)
      t.ok((policy?.spec?.ingress ?? []).some((r: Obj) => (r.from ?? []).some(selectsGateway) && portsOf(r).some((p) => p === 'http' || p === 8080)),
        'NetworkPolicy: ingress from the other gateway pods on the http port (8080)')
      t.ok((policy?.spec?.egress ?? []).some((r: Obj) => (r.to ?? []).some(selectsGateway) && portsOf(r).includes(8080)),
        'NetworkPolicy: egress to the other gateway pods on 8080')
      t.ok((policy?.spec?.egress ?? []).some((r: Obj) => portsOf(r).includes(6379)), 'NetworkPolicy: egress to Redis on 6379')
      t.notMatch(String(deployment.spec?.template?.spec?.containers?.[0]?.image), /:latest$|^portcullis$/, 'prod pins an image')
      const env = Object.fromEntries(((pod.containers?.[0]?.env ?? []) as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]))
      t.same({ OTEL_TRACES_SAMPLER: env.OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: env.OTEL_TRACES_SAMPLER_ARG }, PROD_SAMPLER,
        'prod samples traces as `npm run bench` measures "telemetry on"')
    }
    if (overlay === 'dev') {
      t.equal(deployment.spec?.replicas, 1, 'dev runs one replica')
      // a one-pod Redis as the shared store, locked down like the gateway
      const redis = objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'redis')
      const redisService = objects.find((o) => o.kind === 'Service' && o.metadata?.name === 'redis')
      t.ok(redis, 'dev: a Redis Deployment')
      t.equal(redis?.spec?.replicas, 1, 'dev Redis: one replica')
      t.same(redisService?.spec?.selector, redis?.spec?.selector?.matchLabels, 'dev Redis Service selects the Redis pod')
      t.same((redisService?.spec?.ports ?? []).map((p: Obj) => p.port), [6379], 'dev Redis Service on 6379')
      const redisPod = redis?.spec?.template?.spec ?? {}
      const redisContainer = redisPod.containers?.[0] ?? {}
      t.equal(redisPod.securityContext?.runAsNonRoot, true, 'dev Redis: runAsNonRoot')
      t.equal(redisContainer.securityContext?.readOnlyRootFilesystem, true, 'dev Redis: readOnlyRootFilesystem')
      t.equal(redisContainer.securityContext?.allowPrivilegeEscalation, false, 'dev Redis: no privilege escalation')
      t.same(redisContainer.securityContext?.capabilities?.drop, ['ALL'], 'dev Redis: drop ALL capabilities')
      t.ok(redisContainer.resources?.limits?.memory && redisContainer.resources?.limits?.cpu, 'dev Redis: resource limits')
      t.notOk((redisPod.volumes ?? []).some((v: Obj) => v.persistentVolumeClaim), 'dev Redis: no persistent volume')
      t.ok(redisContainer.readinessProbe, 'dev Redis: a readiness probe')
      const store = parseConfig(config, { source: 'dev', env: fakeEnv(config) }).store
      const url = new URL(store?.url ?? 'invalid:')
      t.equal(url.protocol, 'redis:', 'dev store.url is a redis:// URL')
      t.equal(url.hostname, redisService?.metadata?.name, 'dev store.url names the Redis Service')
      t.equal(url.port === '' ? '6379' : url.port, '6379', 'dev store.url on 6379')
      const gatewayContainer = (deployment.spec?.template?.spec?.containers ?? []).find((c: Obj) => c.name === 'portcullis')
      const sessionKeyRef = envVar(gatewayContainer, 'PORTCULLIS_SESSION_KEY')?.valueFrom?.secretKeyRef
      const devSecret = objects.find((o) => o.kind === 'Secret' && o.metadata?.name === sessionKeyRef?.name)
      const devSessionKey = Buffer.from(String(devSecret?.data?.[sessionKeyRef?.key] ?? ''), 'base64').toString('utf8')
      t.ok(devSessionKey.length >= 32, 'dev: PORTCULLIS_SESSION_KEY has >= 32 characters')
      t.match(devSessionKey, /dev-only/, 'dev: the session key is marked dev-only')
    }
  })
}

t.test('every gateway config under deploy/ loads with the real loader', async (t) => {
  const configs = [
    'deploy/compose/portcullis.yaml',
    'deploy/kubernetes/base/portcullis.yaml',
    ...OVERLAYS.map((o) => `deploy/kubernetes/overlays/${o}/portcullis.yaml`),
  ]
  for (const file of configs) {
    const text = readFileSync(join(root, file), 'utf8')
    t.doesNotThrow(() => parseConfig(text, { source: file, env: fakeEnv(text) }), file)
    if (envReferences(text).length > 0) {
      t.throws(() => parseConfig(text, { source: file, env: {} }), `${file} needs its \${ENV} values (no secret is inlined)`)
    }
  }
})

t.test('yamllint -c .yamllint.yaml deploy grafana', { skip: skipUnless('yamllint', ['--version'], 'apt-get install yamllint') }, async (t) => {
  const result = spawnSync('yamllint', ['-f', 'parsable', '-c', '.yamllint.yaml', 'deploy', 'grafana'], { cwd: root, encoding: 'utf8' })
  t.equal(result.status, 0, `${result.stdout}${result.stderr}`)
})

t.test('docker-compose config accepts the compose stack', { skip: skipUnless('docker-compose', ['version'], 'apt-get install docker-compose') }, async (t) => {
  const file = 'deploy/compose/docker-compose.yaml'
  const result = spawnSync('docker-compose', ['-f', file, 'config', '-q'], { cwd: root, encoding: 'utf8', env: { ...process.env, DEMO_CLIENT_SECRET: 'test' } })
  t.equal(result.status, 0, `${result.stdout}${result.stderr}`)
  const full = spawnSync('docker-compose', ['-f', file, 'config'], { cwd: root, encoding: 'utf8' })
  const services = Object.keys((parseAllDocuments(full.stdout)[0]?.toJS() as Obj | undefined)?.services ?? {}).sort()
  t.same(services, ['everything', 'gateway', 'grafana', 'jaeger', 'prometheus', 'redis'], 'gateway, upstream, Redis, Prometheus, Grafana, Jaeger')
})

t.test('the compose stack: Redis as the gateway\'s shared store', async (t) => {
  const compose = parseYaml(readFileSync(join(root, 'deploy/compose/docker-compose.yaml'), 'utf8'), 'compose') as Obj
  const redis = compose.services?.redis ?? {}
  const gateway = compose.services?.gateway ?? {}
  t.match(redis.image, /^(redis:7[.\d]*-alpine|valkey\/valkey:[\d.]+(-alpine)?)$/, 'the official Redis (or Valkey) image')
  t.same(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping'], 'healthcheck redis-cli ping')
  t.notOk(redis.ports, 'Redis is not published on the host')
  t.equal(gateway.depends_on?.redis?.condition, 'service_healthy', 'the gateway starts once Redis answers')
  const sessionKey = String(gateway.environment?.PORTCULLIS_SESSION_KEY ?? '')
  const sessionKeyDefault = /^\$\{PORTCULLIS_SESSION_KEY:-(.*)\}$/.exec(sessionKey)?.[1] ?? ''
  t.ok(sessionKeyDefault.length >= 32, 'PORTCULLIS_SESSION_KEY has a default of >= 32 characters (overridable from the environment)')
  t.match(sessionKeyDefault, /dev-only/, 'and the default is marked dev-only')
  const text = readFileSync(join(root, 'deploy/compose/portcullis.yaml'), 'utf8')
  const store = parseConfig(text, { source: 'compose', env: fakeEnv(text) }).store
  t.equal(new URL(store?.url ?? 'invalid:').hostname, 'redis', 'compose portcullis.yaml store.url names the redis service')
})

t.test('the Dockerfile', async (t) => {
  const text = readFileSync(join(root, 'deploy/Dockerfile'), 'utf8')
  const instructions = text.split('\n').filter((l) => /^[A-Z]+\s/.test(l))
  const froms = instructions.filter((l) => l.startsWith('FROM '))
  t.ok(froms.length >= 2, 'multi-stage')
  t.match(text, /^ARG NODE_IMAGE=node:24\.\d+\.\d+-slim$/m, 'official node:24 slim image, pinned to a full version')
  t.match(text, /npm prune --omit=dev/, 'production dependencies only in the image')
  t.match(text, /^RUN node bin\/build\.js/m, 'compiles dist/ (npm run build)')
  t.match(text, /^COPY --from=build \/app\/dist \.\/dist$/m, 'the runtime stage takes dist/ from the build stage')
  t.notMatch(text.split('AS runtime')[1] ?? '', /^COPY src /m, 'and not the TypeScript sources')
  t.match(text, /^ENV NODE_OPTIONS=--max-semi-space-size=\d+$/m, 'V8 flags chosen in the Dockerfile')
  t.match(text, /^ENV MALLOC_ARENA_MAX=2$/m, 'and the allocator\'s arenas')
  t.match(instructions.filter((l) => l.startsWith('USER ')).at(-1), /^USER node$/, 'runs as the non-root node user')
  t.ok(instructions.includes('STOPSIGNAL SIGTERM'), 'STOPSIGNAL SIGTERM')
  t.ok(instructions.includes('EXPOSE 8080 9464'), 'exposes the client and admin ports')
  t.equal(instructions.filter((l) => l.startsWith('CMD ')).at(-1), 'CMD ["node", "bin/portcullis.js", "start", "--config", "/etc/portcullis/portcullis.yaml"]', 'exec-form CMD, node as PID 1 gets the signal')
  for (const dir of ['bin', 'src']) t.match(text, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'), `the build stage copies ${dir}/`)
})
