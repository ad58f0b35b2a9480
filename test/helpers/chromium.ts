import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'

/** Debian's chromium package; the tests never download a browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Quiet and offline: no GPU, no QUIC, no first-run, background, component or sync traffic. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
]

export interface HeadlessChromium {
  readonly context: BrowserContext
  close (): Promise<void>
}

/**
 * A real headless Chromium driven by playwright-core, with a fresh user data directory (removed
 * on close). `headers` go with every request the pages make (an admin token, say).
 */
export async function launchChromium (opts: { headers?: Record<string, string>, viewport?: { width: number, height: number } } = {}): Promise<HeadlessChromium> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'portcullis-chromium-'))
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: opts.viewport ?? { width: 1280, height: 800 },
      ...(opts.headers === undefined ? {} : { extraHTTPHeaders: opts.headers }),
    })
    return {
      context,
      async close () {
        await context.close()
        await rm(userDataDir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true })
    throw err
  }
}
