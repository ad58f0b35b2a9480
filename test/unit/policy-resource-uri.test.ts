// Resource URIs and URI templates as the policy judges them: the RFC 3986 §6.2.2 normal form, what
// stays ambiguous, and how globs relate to templates — through the real config loader.
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { compilePolicy } from '../../src/policy/decide.ts'
import { isJudgeableUri, normalizeUri, removeDotSegments } from '../../src/policy/resource-uri.ts'
import { decideResource, decideTemplate } from '../../src/policy/resource-decision.ts'
import { covers, globTokens, overlaps, parseTemplate } from '../../src/policy/uri-template.ts'
import type { Principal } from '../../src/authn/principal.ts'

t.test('normalizeUri: the normal form, or undefined when ambiguous', t => {
  const cases: Array<[string, string | undefined]> = [
    ['file:///public/readme.txt', 'file:///public/readme.txt'],
    ['file:///public/%70rivate/key', 'file:///public/private/key'], // unreserved decoded
    ['file:///public/%7Euser', 'file:///public/~user'],
    ['file:///public/%2e%2e/secret', 'file:///secret'], // decoded, then dot segments removed
    ['file:///public/caf%c3%a9', 'file:///public/caf%C3%A9'], // hex uppercased
    ['file:///public/a%20b', 'file:///public/a%20b'],
    ['FILE:///public/x', 'file:///public/x'],
    ['HTTPS://User@EXAMPLE.Com:8443/A', 'https://User@example.com:8443/A'], // userinfo and path keep their case
    ['https://ex%61mple.com/', 'https://example.com/'],
    ['file:///public/./x', 'file:///public/x'],
    ['file:///public/../secret', 'file:///secret'],
    ['file:///public/x/.', 'file:///public/x/'],
    ['file:///public/x/..', 'file:///public/'],
    ['file:///..', 'file:///'],
    ['urn:isbn:0451450523', 'urn:isbn:0451450523'],
    ['file:///public/x?a=%2F&b=%5c', 'file:///public/x?a=%2F&b=%5C'], // encoded / and \ are data in a query
    ['file:///public/x?p=../y', 'file:///public/x?p=../y'], // no dot segments in a query
    ['file:///public/%25', 'file:///public/%25'],
    ['file:///public/%25zz', 'file:///public/%25zz'],
    // ambiguous
    ['file:///public/private%2fkey', undefined],
    ['file:///public/private%2Fkey', undefined],
    ['file:///public/..%2fsecret', undefined],
    ['file:///public/private%5ckey', undefined],
    ['file:///public/private\\key', undefined],
    ['file:///public//private/key', undefined],
    ['file:////public/x', undefined],
    ['file:///public/x%00', undefined],
    ['file:///public/x%1f', undefined],
    ['file:///public/x%7F', undefined],
    ['file:///public/x?a=%00', undefined],
    ['file:///public/x\u0000', undefined],
    ['file:///public/x\n', undefined],
    ['file:///public/a b', undefined],
    ['file:///public/caf\u00e9', undefined], // an IRI, not a URI
    ['file:///public/%C0%AF', undefined], // overlong "/"
    ['file:///public/%E9', undefined], // Latin-1, not UTF-8
    ['file:///public/%C3', undefined],
    ['file:///public/%C3x%A9', undefined],
    ['file:///public/%ED%A0%80', undefined], // an encoded surrogate
    ['file:///public/private%252fkey', undefined], // double encoding
    ['file:///public/%25%32%66', undefined],
    ['file:///public/%zz', undefined],
    ['file:///public/%4', undefined],
    ['file:///public/x#frag', undefined],
    ['file:///public/x#', undefined],
    ['file:///public/{x}', undefined],
    ['/public/x', undefined], // relative
    ['', undefined],
  ]
  for (const [uri, expected] of cases) t.equal(normalizeUri(uri), expected, JSON.stringify(uri))
  t.end()
})

t.test('removeDotSegments: RFC 3986 §5.2.4 examples', t => {
  t.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g')
  t.equal(removeDotSegments('mid/content=5/../6'), 'mid/6')
  t.equal(removeDotSegments('/../../x'), '/x')
  t.equal(removeDotSegments('../x'), 'x')
  t.equal(removeDotSegments('/a/..'), '/')
  t.end()
})

t.test('isJudgeableUri: only a URI already in normal (and WHATWG) form', t => {
  for (const uri of ['file:///public/readme.txt', 'file:///public/caf%C3%A9', 'https://example.com/a?b=c', 'urn:isbn:0451450523', 'db://host/table']) t.ok(isJudgeableUri(uri), uri)
  for (const uri of ['file:///public/%70rivate', 'FILE:///x', 'file://localhost/x', 'https://example.com', 'https://example.com:443/', 'file:///public/caf%c3%a9', 'file:///a/./b']) t.notOk(isJudgeableUri(uri), uri)
  t.end()
})

const config = parseConfig(`
publicUrl: https://mcp.example.com
servers:
  files:
    upstream: { url: http://files.internal/mcp }
    tools: [{ allow: ["*"] }]
    resources:
      - allow: ["file:///public/*"]
        id: public
      - deny: ["file:///public/private/*", "file:///public/keys.txt"]
        id: private
      - allow: ["db://reports/?"]
        id: reports
  open:
    upstream: { url: http://open.internal/mcp }
    tools: [{ allow: ["*"] }]
`, { source: '<test>', env: {} })
const files = compilePolicy(config.servers.files!)
const open = compilePolicy(config.servers.open!)
const alice: Principal = { key: 'k', subject: 'alice', issuer: 'https://idp.example.com', clientId: 'c', scopes: [], claims: {}, anonymous: false, assertionJti: undefined }

t.test('decideResource', t => {
  const cases: Array<[string, boolean, string]> = [
    ['file:///public/readme.txt', true, 'allowed_by_rule'],
    ['file:///public/private/key', false, 'denied_by_rule'],
    ['file:///public/%70rivate/key', false, 'non_canonical_uri'],
    ['file:///public/private%2fkey', false, 'non_canonical_uri'],
    ['file:///public/x/../private/key', false, 'non_canonical_uri'],
    ['file:///public/keys.txt', false, 'denied_by_rule'],
    ['file:///public/keys.txt?v=1', false, 'denied_by_rule'], // a deny rule ignores the query
    ['file:///public/keys.txt?', false, 'denied_by_rule'],
    ['file:///public/readme.txt?v=1', true, 'allowed_by_rule'],
    ['file:///secret/keys.txt', false, 'no_matching_rule'],
  ]
  for (const [uri, allow, reason] of cases) t.match(decideResource(files, uri, alice), { allow, reason }, uri)
  t.match(decideResource(open, 'file:///anything', alice), { allow: true, reason: 'default_allow' }, 'no resources list: open')
  t.match(decideResource(open, 'FILE:///anything', alice), { allow: false, reason: 'non_canonical_uri' }, 'but only in normal form')
  t.end()
})

t.test('globs and templates', t => {
  const tpl = (s: string): ReturnType<typeof globTokens> => parseTemplate(s)!
  const g = globTokens
  t.ok(covers(g('file:///public/*'), tpl('file:///public/{name}')))
  t.ok(covers(g('file:///public/*'), tpl('file:///public/{+path}/{name}.txt')))
  t.ok(covers(g('*'), tpl('{scheme}://{host}/{path}')))
  t.notOk(covers(g('file:///public/*'), tpl('file:///{dir}/x')))
  t.notOk(covers(g('file:///public/?'), tpl('file:///public/{c}')), '? is one character, an expression any number')
  t.notOk(covers(g('file:///public/*.txt'), tpl('file:///public/{name}')))
  t.ok(covers(g('file:///public/*.txt'), tpl('file:///public/{name}.txt')))
  t.ok(covers(g('file:///public/readme.txt'), tpl('file:///public/readme.txt')), 'no expressions: the URI itself')
  t.ok(overlaps(g('file:///public/private/*'), tpl('file:///public/{path}')))
  t.ok(overlaps(g('file:///public/private/*'), tpl('file:///{a}/private/{b}')))
  t.ok(overlaps(g('file:///secret/keys.txt'), tpl('file:///{path}')))
  t.ok(overlaps(g('file:///?ecret/*'), tpl('file:///s{x}')))
  t.notOk(overlaps(g('file:///public/private/*'), tpl('file:///public/docs/{name}')))
  t.notOk(overlaps(g('file:///secret/*'), tpl('file:///public/{path}')))
  t.notOk(overlaps(g('a?'), tpl('a')))
  for (const bad of ['file:///{', 'file:///}', 'file:///{}', 'file:///{a{b}}']) t.equal(parseTemplate(bad), undefined, bad)
  t.end()
})

t.test('decideTemplate: deny wins on any overlap; allow only when it covers every expansion', t => {
  const cases: Array<[string, boolean, string]> = [
    ['file:///public/docs/{name}', true, 'allowed_by_rule'],
    ['file:///public/{path}', false, 'denied_by_rule'], // could expand into public/private/
    ['file:///public/keys.txt{?v}', false, 'denied_by_rule'],
    ['file:///public/keys.txt?v={v}', false, 'denied_by_rule'], // a deny rule ignores the query
    ['file:///{dir}/readme.txt', false, 'denied_by_rule'], // {dir} can be public/private
    ['file:///secret/{name}', false, 'no_matching_rule'],
    ['db://reports/{id}', false, 'no_matching_rule'], // `?` is one character, {id} any number
    ['file:///public/docs/%7E{name}', false, 'non_canonical_uri'],
    ['FILE:///public/docs/{name}', false, 'non_canonical_uri'],
    ['file:///public/docs/../{name}', false, 'non_canonical_uri'],
    ['file:///public//{name}', false, 'non_canonical_uri'],
    ['file:///public/docs/{name', false, 'non_canonical_uri'],
    ['file:///public/readme.txt', true, 'allowed_by_rule'],
    [`file:///public/${'a'.repeat(2048)}`, false, 'non_canonical_uri'],
  ]
  for (const [template, allow, reason] of cases) t.match(decideTemplate(files, template, alice), { allow, reason }, template.slice(0, 80))
  t.match(decideTemplate(open, 'file:///{path}', alice), { allow: true, reason: 'default_allow' })
  t.end()
})
