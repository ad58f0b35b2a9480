/**
 * A minimal browser for the federated login: follows redirects by hand, keeps cookies (by name,
 * sent where their Path matches), fills in the dev IdP's user picker and answers the gateway's
 * consent page. Nothing a real browser would not do — and nothing more, so a test sees every hop.
 */
export interface Hop {
  readonly url: string
  readonly status: number
  readonly location: string | undefined
}

/** The consent page's form, as a browser reads it from the HTML. */
export interface ConsentForm {
  readonly action: string
  /** the hidden fields */
  readonly fields: Readonly<Record<string, string>>
}

/** Where a sign-in stopped at the consent page. */
export interface ConsentPage {
  readonly url: string
  readonly res: Response
  readonly html: string
  readonly form: ConsentForm
}

export class Browser {
  readonly cookies = new Map<string, { value: string, path: string }>()
  readonly hops: Hop[] = []
  /** sent with every request (e.g. X-Forwarded-For, as a balancer would add it) */
  readonly #headers: Record<string, string>

  constructor (headers: Record<string, string> = {}) {
    this.#headers = headers
  }

  async get (url: string, headers: Record<string, string> = {}): Promise<Response> {
    return await this.#send(url, { method: 'GET', headers })
  }

  /** A form post, with the Origin a browser adds (that of the page: here the target's own). */
  async post (url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return await this.#send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin, ...headers },
      body: new URLSearchParams(form).toString(),
    })
  }

  /** The Cookie header this browser would send to `url`. */
  cookieFor (url: string): string {
    const path = new URL(url).pathname
    return [...this.cookies].filter(([, c]) => path.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`).join('; ')
  }

  async #send (url: string, init: { method: string, headers: Record<string, string>, body?: string }): Promise<Response> {
    const cookie = this.cookieFor(url)
    const res = await fetch(url, { ...init, headers: { ...this.#headers, ...init.headers, ...(cookie === '' ? {} : { cookie }) }, redirect: 'manual' })
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

export interface SignInOptions {
  /** the answer on the gateway's consent page, if one is shown (default allow) */
  readonly consent?: 'allow' | 'deny'
}

/**
 * From the client's authorization URL to the redirect back to the client: follow the redirects,
 * at the dev IdP's user picker post `username`, on the gateway's consent page press Allow (or
 * what `opts.consent` says). Returns the URL the client receives.
 */
export async function signIn (browser: Browser, authorizationUrl: string, username: string, isClientRedirect: (url: string) => boolean,
  opts: SignInOptions = {}): Promise<URL> {
  const end = await walk(browser, authorizationUrl, username, isClientRedirect, opts.consent ?? 'allow')
  if (!(end instanceof URL)) throw new Error(`sign-in stopped at the consent page: ${end.url}`)
  return end
}

/** Sign in up to the consent page, and stop there; throws when the sign-in ends anywhere else. */
export async function signInToConsent (browser: Browser, authorizationUrl: string, username: string): Promise<ConsentPage> {
  const end = await walk(browser, authorizationUrl, username, () => false, 'stop')
  if (end instanceof URL) throw new Error(`sign-in ended without a consent page: ${end.href}`)
  return end
}

/** Press a button of a consent page in the browser that got it. */
export async function answerConsent (browser: Browser, page: ConsentPage, decision: 'allow' | 'deny'): Promise<Response> {
  return await browser.post(page.form.action, { ...page.form.fields, decision })
}

async function walk (browser: Browser, start: string, username: string, isClientRedirect: (url: string) => boolean,
  consent: 'allow' | 'deny' | 'stop'): Promise<URL | ConsentPage> {
  let url = start
  for (let hop = 0; hop < 12; hop++) {
    if (isClientRedirect(url)) return new URL(url)
    let res = await browser.get(url, { accept: 'text/html' })
    if (res.status === 200) {
      const html = await res.text()
      const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1]
      const form = readConsentForm(html, url)
      if (tx !== undefined) res = await browser.post(new URL('/authorize', url).href, { tx, username })
      else if (form === undefined) throw new Error(`sign-in stopped at a page that is neither the user picker nor the consent page: ${url}`)
      else if (consent === 'stop') return { url, res, html, form }
      else res = await answerConsent(browser, { url, res, html, form }, consent)
    }
    const location = res.headers.get('location')
    if ((res.status !== 302 && res.status !== 303) || location === null) throw new Error(`sign-in stopped: ${res.status} at ${url}: ${(await res.text()).slice(0, 300)}`)
    url = new URL(location, url).href
  }
  throw new Error('sign-in: too many redirects')
}

/** The consent form of a page: its action and hidden fields, unescaped as a browser would. */
export function readConsentForm (html: string, pageUrl: string): ConsentForm | undefined {
  const action = /<form method="post" action="([^"]*)">/.exec(html)?.[1]
  if (action === undefined || !html.includes('name="decision"')) return undefined
  const fields: Record<string, string> = {}
  for (const [, name = '', value = ''] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[unescape(name)] = unescape(value)
  return { action: new URL(unescape(action), pageUrl).href, fields }
}

function unescape (text: string): string {
  return text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&amp;/g, '&')
}
