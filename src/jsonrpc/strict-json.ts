/**
 * RFC 8259 JSON, checked strictly before `JSON.parse` (which keeps the last of duplicate
 * members and accepts lone surrogates). See parse.ts for the rules and why.
 *
 * One iterative pass over the text with an explicit container stack (no recursion, so no
 * stack overflow whatever the nesting, and small functions V8 inlines). It allocates only
 * the member names it must compare.
 */

export interface StrictJsonViolation {
  /** -32700: not JSON at all; -32600: JSON, but refused */
  readonly code: -32700 | -32600
  readonly detail: string
}

/**
 * Why `text` is refused, or undefined when it is strict JSON. `maxDepth` caps the nesting of
 * arrays and objects. Objects at depth 1 and 2 (2 and 3 when the top level is an array, a
 * batch) — a message and its direct members — also refuse names equal ignoring case.
 */
export function findStrictJsonViolation (text: string, maxDepth: number): StrictJsonViolation | undefined {
  try {
    scan(text, maxDepth)
    return undefined
  } catch (err) {
    if (err instanceof Refusal) return err
    /* c8 ignore next */
    throw err
  } finally {
    seen.length = 0 // keep no names alive
  }
}

/** per open container: is it an object (else an array) */
const isObject: boolean[] = []
/** per open object: the member names seen so far (a Set once there are many) */
const seen: Array<string[] | Set<string> | undefined> = []

function scan (s: string, maxDepth: number): void {
  let i = ws(s, 0)
  const foldDepth = s.charCodeAt(i) === 0x5b ? 3 : 2
  let depth = 0
  for (;;) {
    // a value starts at i
    const c = s.charCodeAt(i)
    if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw TOO_DEEP
      const object = c === 0x7b
      isObject[depth] = object
      seen[depth] = undefined
      i = ws(s, i + 1)
      if (s.charCodeAt(i) !== (object ? 0x7d : 0x5d)) {
        if (object) i = member(s, i, depth, depth <= foldDepth)
        continue
      }
      i++
      depth--
    } else if (c === 0x22) {
      i = endOfString(s, i)
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = endOfNumber(s, i)
    } else if (c === 0x74 && s.startsWith('true', i)) {
      i += 4
    } else if (c === 0x66 && s.startsWith('false', i)) {
      i += 5
    } else if (c === 0x6e && s.startsWith('null', i)) {
      i += 4
    } else {
      throw SYNTAX // including NaN: the end of the text
    }
    // the value is complete: close containers until one continues
    for (;;) {
      i = ws(s, i)
      if (depth === 0) {
        if (i !== s.length) throw SYNTAX
        return
      }
      const d = s.charCodeAt(i)
      if (d === 0x2c) {
        i = ws(s, i + 1)
        if (isObject[depth] === true) i = member(s, i, depth, depth <= foldDepth)
        break
      }
      if (d !== (isObject[depth] === true ? 0x7d : 0x5d)) throw SYNTAX
      seen[depth] = undefined
      i++
      depth--
    }
  }
}

function ws (s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i)
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
    else return i
  }
}

/** At a member name: checks it and the colon; returns where the member's value starts. */
function member (s: string, i: number, depth: number, fold: boolean): number {
  if (s.charCodeAt(i) !== 0x22) throw SYNTAX
  const end = endOfString(s, i)
  let name = escaped ? JSON.parse(s.slice(i, end)) as string : s.slice(i + 1, end - 1)
  if (name === '__proto__') throw PROTO
  if (fold && foldable) name = name.toLowerCase().replaceAll('ſ', 's')
  const names = seen[depth]
  if (names === undefined) {
    seen[depth] = [name]
  } else if (Array.isArray(names)) {
    if (names.includes(name)) throw DUPLICATE
    if (names.push(name) === 16) seen[depth] = new Set(names) // linear search only while small
  } else {
    if (names.has(name)) throw DUPLICATE
    names.add(name)
  }
  i = ws(s, end)
  if (s.charCodeAt(i) !== 0x3a) throw SYNTAX
  return ws(s, i + 1)
}

/** set by endOfString: the string had escapes / may change under case folding */
let escaped = false
let foldable = false

/** At an opening quote: the index after the closing quote. */
function endOfString (s: string, i: number): number {
  let esc = false
  let fold = false
  i++
  for (;;) {
    const c = s.charCodeAt(i)
    if (c === 0x22) break
    if (c === 0x5c) {
      i = endOfEscape(s, i)
      esc = true
    } else if (c >= 0x20) {
      if (c >= 0x41 && (c <= 0x5a || c >= 0x7f)) fold = true
      i++
    } else {
      throw SYNTAX // a control character, or NaN: the end of the text
    }
  }
  escaped = esc
  foldable = fold || esc
  return i + 1
}

/** At a backslash: the index after the escape sequence. */
function endOfEscape (s: string, i: number): number {
  const e = s.charCodeAt(i + 1)
  if (e !== 0x75) {
    // " \ / b f n r t
    if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) return i + 2
    throw SYNTAX
  }
  const unit = hex4(s, i + 2)
  if (unit < 0xd800 || unit > 0xdfff) return i + 6
  if (unit >= 0xdc00 || s.charCodeAt(i + 6) !== 0x5c || s.charCodeAt(i + 7) !== 0x75) throw LONE_SURROGATE
  const low = hex4(s, i + 8)
  if (low < 0xdc00 || low > 0xdfff) throw LONE_SURROGATE
  return i + 12
}

/** Four hex digits at `i` as a code unit; a syntax error otherwise. */
function hex4 (s: string, i: number): number {
  let v = 0
  for (let k = i; k < i + 4; k++) {
    const c = s.charCodeAt(k)
    const lower = c | 0x20 // a-f for A-F and a-f only; NaN (the end) → 0x20
    if (c >= 0x30 && c <= 0x39) v = v * 16 + c - 0x30
    else if (lower >= 0x61 && lower <= 0x66) v = v * 16 + lower - 0x57
    else throw SYNTAX
  }
  return v
}

/** At a `-` or digit: the index after the number. */
function endOfNumber (s: string, start: number): number {
  let i = start
  let c = s.charCodeAt(i)
  if (c === 0x2d) c = s.charCodeAt(++i)
  if (c === 0x30) i++
  else i = digits(s, i)
  c = s.charCodeAt(i)
  if (c === 0x2e) {
    i = digits(s, i + 1)
    c = s.charCodeAt(i)
  }
  let exponent = false
  if (c === 0x65 || c === 0x45) {
    c = s.charCodeAt(++i)
    if (c === 0x2b || c === 0x2d) i++
    i = digits(s, i)
    exponent = true
  }
  // 1e400 would become Infinity, and be forwarded as null
  if ((exponent || i - start > 300) && !Number.isFinite(Number(s.slice(start, i)))) throw OUT_OF_RANGE
  return i
}

/** The index after one or more digits at `i`. */
function digits (s: string, i: number): number {
  let c = s.charCodeAt(i)
  if (!(c >= 0x30 && c <= 0x39)) throw SYNTAX
  do c = s.charCodeAt(++i); while (c >= 0x30 && c <= 0x39)
  return i
}

/** Internal to this module and always caught by it: preallocated values, no stack trace. */
class Refusal implements StrictJsonViolation {
  readonly code: -32700 | -32600
  readonly detail: string
  constructor (code: -32700 | -32600, detail: string) {
    this.code = code
    this.detail = detail
  }
}

const SYNTAX = new Refusal(-32700, 'the body is not valid JSON')
const TOO_DEEP = new Refusal(-32600, 'nested too deeply')
const DUPLICATE = new Refusal(-32600, 'duplicate member name')
const PROTO = new Refusal(-32600, 'member name __proto__ is not allowed')
const LONE_SURROGATE = new Refusal(-32600, 'lone surrogate in a string')
const OUT_OF_RANGE = new Refusal(-32600, 'number out of range')
