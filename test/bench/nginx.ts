/**
 * nginx as the plain-reverse-proxy yardstick of performance.md, and the apt install of the load
 * tools. The config lives in the bench's temp dir with its own pid file, error log and temp
 * paths: the system nginx config (/etc/nginx) is never read, and nothing runs as a daemon.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'

export interface NginxFiles {
  readonly prefix: string
  readonly conf: string
  readonly errorLog: string
  readonly pidFile: string
}

export interface NginxOptions {
  /** worker_connections (4096); an open stream holds two (client and upstream) */
  readonly workerConnections?: number
  /** proxy_read_timeout in seconds (nginx's default 60 s closes an idle stream) */
  readonly readTimeoutS?: number
}

/** Write nginx.conf for `127.0.0.1:listenPort` → `127.0.0.1:upstreamPort` (paths are passed through). */
export function writeNginxConfig (dir: string, listenPort: number, upstreamPort: number, o: NginxOptions = {}): NginxFiles {
  const workerConnections = o.workerConnections ?? 4096
  const prefix = join(dir, 'nginx')
  mkdirSync(prefix, { recursive: true })
  // workers run as the compiled-in user (nobody) when started as root: let them reach the temp paths
  chmodSync(dir, 0o755)
  chmodSync(prefix, 0o755)
  const errorLog = join(prefix, 'error.log')
  const pidFile = join(prefix, 'nginx.pid')
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(conf, `# written by test/bench/nginx.ts — plain reverse proxy yardstick (performance.md, Protocol P)
daemon off;
master_process on;
worker_processes 1;
${workerConnections > 4096 ? `worker_rlimit_nofile ${workerConnections + 64};\n` : ''}pid ${pidFile};
error_log ${errorLog} warn;

events {
  worker_connections ${workerConnections};
}

http {
  access_log off;
  client_body_temp_path ${join(prefix, 'client_body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};

  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }

  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
${o.readTimeoutS === undefined ? '' : `      proxy_read_timeout ${o.readTimeoutS}s;\n`}    }
  }
}
`)
  return { prefix, conf, errorLog, pidFile }
}

/** Arguments that start nginx in the foreground on exactly this config. */
export function nginxArgs (files: NginxFiles): string[] {
  // -e: the error log used before the config is read (else /var/log/nginx/error.log)
  return ['-p', `${files.prefix}/`, '-c', files.conf, '-e', files.errorLog]
}

export function which (command: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' })
  const path = r.stdout.trim()
  return r.status === 0 && path !== '' ? path : undefined
}

/**
 * Make sure nginx, wrk and taskset exist; install the missing ones from the Debian registry
 * (apt-get update + install -y), printing each command. Returns the resolved paths.
 */
export function ensureTools (log: (line: string) => void): { nginx: string; wrk: string } {
  const wanted = [['nginx', 'nginx'], ['wrk', 'wrk']] as const
  const missing = wanted.filter(([cmd]) => which(cmd) === undefined && which(`/usr/sbin/${cmd}`) === undefined).map(([, pkg]) => pkg)
  if (missing.length === 0) {
    log('tools: nginx and wrk already installed (no apt-get)')
  } else {
    const asRoot = process.getuid?.() === 0 ? [] : ['sudo']
    for (const args of [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', ...missing]]) {
      const argv = [...asRoot, ...args]
      log(`tools: missing ${missing.join(', ')} → running: ${argv.join(' ')}`)
      const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 })
      if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.status ?? r.signal ?? r.error?.message})`)
    }
  }
  if (which('taskset') === undefined) throw new Error('taskset (util-linux) is missing: Protocol P pins processes with it')
  const nginx = which('nginx') ?? which('/usr/sbin/nginx')
  const wrk = which('wrk')
  if (nginx === undefined || wrk === undefined) throw new Error('nginx or wrk still missing after apt-get install')
  const nv = spawnSync(nginx, ['-v'], { encoding: 'utf8' })
  const wv = spawnSync(wrk, ['-v'], { encoding: 'utf8' })
  log(`tools: ${(nv.stderr || nv.stdout).trim()} (${nginx}); ${(wv.stdout || wv.stderr).split('\n')[0]?.trim()} (${wrk})`)
  return { nginx, wrk }
}
