/**
 * A minimal browser for the federated login: follows redirects by hand, keeps cookies (by name,
 * sent where their Path matches), and fills in the dev IdP's user picker. Nothing a real browser
 * would not do — and nothing more, so a test sees every hop.
 */
export interface Hop {
  readonly url: string
  readonly status: number
  readonly location: string | undefined
}

export class Browser {
  readonly cookies = new Map<string, { value: string, path: string }>()
  readonly hops: Hop[] = []

  async get (url: string, headers: Record<string, string> = {}): Promise<Response> {
    return await this.#send(url, { method: 'GET', headers })
  }

  async post (url: string, form: Record<string, string>): Promise<Response> {
    return await this.#send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() })
  }

  async #send (url: string, init: { method: string, headers: Record<string, string>, body?: string }): Promise<Response> {
    const path = new URL(url).pathname
    const cookie = [...this.cookies].filter(([, c]) => path.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`).join('; ')
    const res = await fetch(url, { ...init, headers: { ...init.headers, ...(cookie === '' ? {} : { cookie }) }, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) this.#store(line)
    this.hops.push({ url, status: res.status, location: res.headers.get('location') ?? undefined })
    return res
  }

  #store (line: string): void {
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
    const eq = pair.indexOf('=')
    const name = pair.slice(0, eq)
    const attr = (key: string): string | undefined => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1)
    if (attr('max-age') === '0') this.cookies.delete(name)
    else this.cookies.set(name, { value: pair.slice(eq + 1), path: attr('path') ?? '/' })
  }
}

/**
 * From the client's authorization URL to the redirect back to the client: follow the redirects,
 * and at the dev IdP's user picker post `username`. Returns the URL the client receives.
 */
export async function signIn (browser: Browser, authorizationUrl: string, username: string, isClientRedirect: (url: string) => boolean): Promise<URL> {
  let url = authorizationUrl
  for (let hop = 0; hop < 10; hop++) {
    if (isClientRedirect(url)) return new URL(url)
    let res = await browser.get(url, { accept: 'text/html' })
    if (res.status === 200) {
      const tx = /name="tx" value="([^"]+)"/.exec(await res.text())?.[1]
      if (tx === undefined) throw new Error(`sign-in stopped at a page without the user picker: ${url}`)
      res = await browser.post(new URL('/authorize', url).href, { tx, username })
    }
    const location = res.headers.get('location')
    if (res.status !== 302 || location === null) throw new Error(`sign-in stopped: ${res.status} at ${url}: ${(await res.text()).slice(0, 300)}`)
    url = new URL(location, url).href
  }
  throw new Error('sign-in: too many redirects')
}
