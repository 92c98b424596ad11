/**
 * Shared machinery of the fuzz tests (test/fuzz/*.fuzz.test.ts): a seeded deterministic PRNG, byte
 * mutators, structure-aware JSON mutators and hostile JSON values, and a per-call timer.
 *
 * Every case draws from its own generator, derived from (FUZZ_SEED, target, case index), so one
 * failing case reproduces on its own: `FUZZ_SEED=<seed> npm run test:fuzz` replays the whole run,
 * and the failure report names the target and case index.
 */

/** The run's seed: FUZZ_SEED (decimal or 0x-hex) when set, else a fixed default so CI is deterministic. */
export function fuzzSeed (): number {
  const env = process.env.FUZZ_SEED
  if (env === undefined || env === '') return 0xb17f10
  const n = env.startsWith('0x') ? Number.parseInt(env.slice(2), 16) : Number.parseInt(env, 10)
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED '${env}' is not an integer`)
  return n >>> 0
}

/** FNV-1a over a string, for deriving per-target and per-case seeds. */
function fnv1a (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** sfc32: small, fast, good enough for fuzzing, fully deterministic. Never Math.random. */
export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor (seed: number, stream = '') {
    this.#a = 0x9e3779b9
    this.#b = seed >>> 0
    this.#c = fnv1a(stream)
    this.#d = 1
    for (let i = 0; i < 15; i++) this.u32()
  }

  /** The generator of one case: reproducible from the run seed, a target name and an index alone. */
  static forCase (seed: number, target: string, index: number): Rng {
    return new Rng(seed, `${target}#${index}`)
  }

  u32 (): number {
    this.#a >>>= 0; this.#b >>>= 0; this.#c >>>= 0; this.#d >>>= 0
    const t = (this.#a + this.#b) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#d = (this.#d + 1) | 0
    const r = (t + this.#d) | 0
    this.#c = (this.#c + r) | 0
    return r >>> 0
  }

  float (): number { return this.u32() / 4294967296 }
  /** integer in [lo, hi] */
  int (lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)) }
  chance (p: number): boolean { return this.float() < p }
  pick<T> (items: readonly T[]): T { return items[this.int(0, items.length - 1)]! }

  /** Mostly small numbers, sometimes large: sizes and lengths. */
  size (max: number): number {
    const r = this.float()
    if (r < 0.5) return this.int(0, Math.min(max, 16))
    if (r < 0.85) return this.int(0, Math.min(max, 512))
    return this.int(0, max)
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    let i = 0
    for (; i + 4 <= n; i += 4) {
      const v = this.u32()
      out[i] = v & 0xff; out[i + 1] = (v >>> 8) & 0xff; out[i + 2] = (v >>> 16) & 0xff; out[i + 3] = v >>> 24
    }
    for (; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }
}

// ---- byte-level mutation --------------------------------------------------------------------------

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x20, 0x0a, 0xc0, 0xed, 0xf4, 0xf8]
/** byte strings that tend to break parsers: overlong UTF-8, a UTF-16 surrogate in UTF-8, BOM, JSON punctuation */
const INTERESTING_CHUNKS = ['\u0000', '"', '\\', '\\u0000', '\\ud800', '{', '}', '[', ']', ',', ':', 'null', 'true', '1e999', '-0', 'NaN', '"__proto__"', '{"a":', '\ufeff']
  .map(s => new TextEncoder().encode(s))
  .concat([Uint8Array.of(0xc0, 0x80), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xf4, 0x90, 0x80, 0x80), Uint8Array.of(0xef, 0xbb, 0xbf), Uint8Array.of(0xff, 0xfe)])

function concatBytes (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.length }
  return out
}

/** One random byte-level edit of `data` (a copy); `other` is a second message for splicing. */
export function mutateBytesOnce (rng: Rng, data: Uint8Array, other: Uint8Array): { data: Uint8Array, op: string } {
  const d = data
  const at = (): number => d.length === 0 ? 0 : rng.int(0, d.length - 1)
  const op = rng.int(0, 11)
  switch (op) {
    case 0: { // bit flips
      const out = d.slice()
      const flips = rng.int(1, 8)
      for (let i = 0; i < flips && out.length > 0; i++) { const p = at(); out[p] = out[p]! ^ (1 << rng.int(0, 7)) }
      return { data: out, op: `bitflip×${flips}` }
    }
    case 1: { // set a byte
      const out = d.slice()
      if (out.length > 0) out[at()] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(0, 255)
      return { data: out, op: 'setbyte' }
    }
    case 2: { // truncate
      const n = rng.int(0, d.length)
      return { data: d.slice(0, n), op: `truncate@${n}` }
    }
    case 3: { // extend with random bytes or a repeat of itself
      const tail = rng.chance(0.5) ? rng.bytes(rng.size(4096)) : d.slice(0, rng.int(0, d.length))
      return { data: concatBytes(d, tail), op: `extend+${tail.length}` }
    }
    case 4: { // insert bytes
      const p = rng.int(0, d.length)
      const ins = rng.chance(0.5) ? rng.pick(INTERESTING_CHUNKS) : rng.bytes(rng.int(1, 32))
      return { data: concatBytes(d.subarray(0, p), ins, d.subarray(p)), op: `insert@${p}` }
    }
    case 5: { // delete a range
      const p = rng.int(0, d.length)
      const n = rng.int(1, Math.max(1, Math.min(64, d.length - p)))
      return { data: concatBytes(d.subarray(0, p), d.subarray(Math.min(d.length, p + n))), op: `delete@${p}+${n}` }
    }
    case 6: { // duplicate a range in place
      const p = rng.int(0, d.length)
      const n = rng.int(0, Math.min(256, d.length - p))
      return { data: concatBytes(d.subarray(0, p + n), d.subarray(p, p + n), d.subarray(p + n)), op: `dup@${p}+${n}` }
    }
    case 7: { // splice: a prefix of this message and a suffix of the other
      const p = rng.int(0, d.length)
      const q = rng.int(0, other.length)
      return { data: concatBytes(d.subarray(0, p), other.subarray(q)), op: `splice@${p}/${q}` }
    }
    case 8: { // splice at the same offset (keeps the framing of two similar messages)
      const p = rng.int(0, Math.min(d.length, other.length))
      return { data: concatBytes(d.subarray(0, p), other.subarray(p)), op: `splice-aligned@${p}` }
    }
    case 9: { // overwrite a run with an interesting chunk
      const out = d.slice()
      const chunk = rng.pick(INTERESTING_CHUNKS)
      const p = at()
      for (let i = 0; i < chunk.length && p + i < out.length; i++) out[p + i] = chunk[i]!
      return { data: out, op: `overwrite@${p}` }
    }
    case 10: { // swap two ranges
      if (d.length < 4) return { data: d.slice(), op: 'swap-noop' }
      const n = rng.int(1, Math.floor(d.length / 2))
      const p = rng.int(0, d.length - 2 * n)
      const q = rng.int(p + n, d.length - n)
      const out = d.slice()
      out.set(d.subarray(q, q + n), p)
      out.set(d.subarray(p, p + n), q)
      return { data: out, op: `swap@${p}/${q}+${n}` }
    }
    default: { // arithmetic on an ASCII digit (off-by-one numbers, still JSON)
      const out = d.slice()
      const digits: number[] = []
      for (let i = 0; i < out.length; i++) if (out[i]! >= 0x30 && out[i]! <= 0x39) digits.push(i)
      if (digits.length > 0) { const p = rng.pick(digits); out[p] = 0x30 + ((out[p]! - 0x30 + rng.int(1, 9)) % 10) }
      return { data: out, op: 'digit' }
    }
  }
}

/** 1-5 stacked byte-level edits. */
export function mutateBytes (rng: Rng, data: Uint8Array, other: Uint8Array): { data: Uint8Array, op: string } {
  let d = data
  const ops: string[] = []
  const n = rng.chance(0.6) ? 1 : rng.int(2, 5)
  for (let i = 0; i < n; i++) {
    const m = mutateBytesOnce(rng, d, other)
    d = m.data
    ops.push(m.op)
  }
  return { data: d, op: ops.join(',') }
}

// ---- hostile JSON values ------------------------------------------------------------------------

/** numbers that sit on the edges of every integer check */
export const HOSTILE_NUMBERS = [0, -0, 1, -1, 0.5, -0.5, 1.5, 255, 256, 4095, 4096, 4097, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32,
  2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e21, 1e300, -1e300, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON]
/** number tokens JSON.stringify never writes but a peer can: they parse to Infinity, -0, 0, or lose precision */
export const RAW_NUMBER_TOKENS = ['1e999', '-1e999', '1e-999', '-0', '-0.0', '0.0', '1.0', '1E2', '1e+2', '00', '-', '1.', '.5', '+1', '0x10',
  '123456789012345678901234567890', '9007199254740993', '18446744073709551616', '-9007199254740993', 'NaN', 'Infinity']
export const HOSTILE_STRINGS = ['', ' ', 'a', '0', '-1', 'NaN', 'Infinity', '-Infinity', '1e999', 'null', 'true', 'undefined', '__proto__', 'constructor',
  'prototype', 'toString', 'hasOwnProperty', '\u0000', '\ud800', '\udfff', '\u202e', '\ufeff', '😀', '\n', '"', '\\', '/', '../../etc/passwd', '/etc/passwd',
  '%s%n', '${x}', '<script>', 'A'.repeat(86) + '==', '0'.repeat(64), 'f'.repeat(64), 'ipfs://', 'dataset://', 'bafy', 'x'.repeat(129)]

/** Adversarial regex inputs: long runs of an accepted character that end in one that is not. */
function regexKiller (rng: Rng, maxLen: number): string {
  const ch = rng.pick(['a', '0', 'A', '.', '-', '/', 'b', 'z', '2', ' ', 'é'])
  return ch.repeat(rng.int(1, Math.max(1, maxLen))) + rng.pick(['!', '\u0000', ' ', '', '\n', '="', '@@'])
}

export function deepNest (rng: Rng, depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf
  const asArray = rng.chance(0.5)
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { a: v }
  return v
}

/** A random hostile JSON value; `maxString` bounds long strings (kept under a target's size limit most of the time). */
export function hostileValue (rng: Rng, maxString: number, depth = 0): unknown {
  const r = rng.int(0, 15)
  switch (r) {
    case 0: return null
    case 1: return rng.chance(0.5)
    case 2: return rng.pick(HOSTILE_NUMBERS)
    case 3: return rng.int(-1000, 100_000)
    case 4: return rng.pick(HOSTILE_STRINGS)
    case 5: return 'x'.repeat(rng.size(maxString))
    case 6: return regexKiller(rng, Math.min(maxString, 20_000))
    case 7: return randomText(rng, rng.size(64))
    case 8: return []
    case 9: return {}
    case 10: return deepNest(rng, rng.int(1, rng.chance(0.2) ? 700 : 40))
    case 11: {
      if (depth > 3) return null
      return Array.from({ length: rng.size(20) }, () => hostileValue(rng, maxString >> 2, depth + 1))
    }
    case 12: {
      if (depth > 3) return {}
      const o: Record<string, unknown> = {}
      const n = rng.size(20)
      for (let i = 0; i < n; i++) setOwn(o, rng.chance(0.3) ? rng.pick(HOSTILE_STRINGS) : randomText(rng, rng.int(1, 12)), hostileValue(rng, maxString >> 2, depth + 1))
      return o
    }
    case 13: return Array.from({ length: rng.int(0, 300) }, () => rng.pick(['a', 'a', 1, null]))
    case 14: return rng.int(0, 2 ** 31) * (rng.chance(0.5) ? 1 : -1) + (rng.chance(0.3) ? 0.5 : 0)
    default: return String(rng.pick(HOSTILE_NUMBERS))
  }
}

/** Sets an own property, even "__proto__" (as JSON.parse does; plain assignment would set the prototype). */
export function setOwn (o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Random text over a mixed alphabet (ASCII, JSON punctuation, some non-ASCII). */
export function randomText (rng: Rng, n: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@-+= {}[]",\\\u0000é日😀'
  const chars = [...alphabet]
  let s = ''
  for (let i = 0; i < n; i++) s += rng.pick(chars)
  return s
}

/**
 * JSON text nested `depth` levels deep, optionally around `inner` (JSON.parse takes any depth; a
 * recursive walk over the result overflows the stack).
 */
export function nestedText (rng: Rng, depth: number, inner = '1'): string {
  switch (rng.int(0, 2)) {
    case 0: return '['.repeat(depth) + inner + ']'.repeat(depth)
    case 1: return '{"a":'.repeat(depth) + inner + '}'.repeat(depth)
    default: return '[{"a":'.repeat(depth >> 1) + inner + '}]'.repeat(depth >> 1)
  }
}

/**
 * Random JSON-looking text: a hostile value (through `frame`, which shapes it like a message),
 * sometimes with a raw number token JSON.stringify never writes, sometimes nested far deeper than
 * JSON.stringify can go. Not always valid JSON.
 */
export function randomJsonText (rng: Rng, maxBytes: number, frame?: (value: unknown) => unknown): string {
  const value = frame !== undefined ? frame(hostileValue(rng, maxBytes)) : hostileValue(rng, maxBytes)
  let text = JSON.stringify(value) ?? 'null'
  if (rng.chance(0.05)) {
    const depth = rng.int(1000, Math.max(1000, Math.min(200_000, Math.floor(maxBytes / 6))))
    const deep = nestedText(rng, depth)
    text = frame !== undefined ? JSON.stringify(frame('@@DEEP@@')).replace('"@@DEEP@@"', deep) : deep
  }
  if (rng.chance(0.25)) text = injectRawNumber(rng, text)
  return text
}

// ---- structure-aware JSON mutation --------------------------------------------------------------

type Path = Array<string | number>

function paths (value: unknown, prefix: Path = [], out: Path[] = [], limit = 4000): Path[] {
  if (out.length >= limit) return out
  out.push(prefix)
  if (prefix.length >= 64) return out // do not walk into deep nesting made by an earlier edit
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out, limit))
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out, limit)
  return out
}

function getAt (root: unknown, path: Path): unknown {
  let v = root
  for (const k of path) v = (v as Record<string | number, unknown>)[k]
  return v
}

function setAt (root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>
  parent[path[path.length - 1]!] = value
  return root
}

/** Collects every string in a value (for cross-pollinating fields: another message's peer id, CID, ...). */
export function stringsOf (value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value)
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, out)
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) { out.push(k); stringsOf(v, out) }
  return out
}

function mutateString (rng: Rng, s: string): string {
  const chars = [...s]
  switch (rng.int(0, 6)) {
    case 0: if (chars.length > 0) chars[rng.int(0, chars.length - 1)] = rng.pick([...'aZ09._:/@-+= !"\\é\u0000']); return chars.join('')
    case 1: return s.slice(0, rng.int(0, s.length))
    case 2: return s + randomText(rng, rng.int(1, 8))
    case 3: return s.toUpperCase()
    case 4: return s.repeat(rng.int(2, 64))
    case 5: return ` ${s}`
    default: return s + '\n'
  }
}

/**
 * One structural edit of a parsed JSON message (deep-copied first): replace a field with a hostile
 * value or another type, drop or add fields, duplicate array items, nudge numbers and strings, nest.
 */
export function mutateJson (rng: Rng, value: unknown, pool: readonly string[], maxString: number): { value: unknown, op: string } {
  let root = structuredClone(value)
  const all = paths(root)
  const path = rng.pick(all)
  const target = getAt(root, path)
  const where = `/${path.join('/')}`
  const r = rng.int(0, 13)
  if (r === 0 || r === 1) return { value: setAt(root, path, hostileValue(rng, maxString)), op: `hostile${where}` }
  if (r === 2) { // delete a field or an item
    if (path.length === 0) return { value: rng.chance(0.5) ? {} : [], op: 'empty-root' }
    const parent = getAt(root, path.slice(0, -1))
    const key = path[path.length - 1]!
    if (Array.isArray(parent)) parent.splice(key as number, 1)
    else delete (parent as Record<string, unknown>)[key as string]
    return { value: root, op: `delete${where}` }
  }
  if (r === 3) { // add a field to an object on the path
    const objs = all.filter(p => { const v = getAt(root, p); return v !== null && typeof v === 'object' && !Array.isArray(v) })
    if (objs.length > 0) {
      const p = rng.pick(objs)
      const key = rng.chance(0.5) ? rng.pick(HOSTILE_STRINGS) : rng.pick([...pool, 'extra', 'v', 'sig', 'type'])
      const obj = getAt(root, p) as Record<string, unknown>
      setOwn(obj, key, hostileValue(rng, maxString))
      return { value: root, op: `add/${p.join('/')}/${key.slice(0, 20)}` }
    }
  }
  if (r === 4) { // swap the type
    let swapped: unknown
    if (typeof target === 'string') swapped = rng.chance(0.5) && target !== '' && Number.isFinite(Number(target)) ? Number(target) : [target]
    else if (typeof target === 'number') swapped = rng.chance(0.5) ? String(target) : target !== 0
    else if (typeof target === 'boolean') swapped = target ? 1 : 0
    else if (Array.isArray(target)) swapped = Object.fromEntries(target.map((v, i) => [String(i), v]))
    else if (target !== null && typeof target === 'object') swapped = Object.values(target)
    else swapped = rng.chance(0.5) ? '' : 0
    return { value: setAt(root, path, swapped), op: `typeswap${where}` }
  }
  if (r === 5 && typeof target === 'number') { // nudge a number onto an edge
    const n = rng.pick([target + 1, target - 1, -target, target * 2 ** rng.int(1, 64), target + 0.5, rng.pick(HOSTILE_NUMBERS)])
    return { value: setAt(root, path, n), op: `number${where}` }
  }
  if (r === 6 && typeof target === 'string') return { value: setAt(root, path, mutateString(rng, target)), op: `string${where}` }
  if (r === 7 && Array.isArray(target)) { // duplicate items (uniqueItems), or grow past maxItems
    const grown = target.length > 0 ? [...target, ...Array.from({ length: rng.pick([1, 1, 8, 64, 300]) }, () => rng.pick(target))] : [rng.pick(pool)]
    return { value: setAt(root, path, grown), op: `grow${where}` }
  }
  // (JSON.stringify and structuredClone overflow the stack near 5,000 levels: deeper nesting is made as text, see nestedText)
  if (r === 8) return { value: setAt(root, path, deepNest(rng, rng.int(1, rng.chance(0.3) ? 700 : 50), target)), op: `nest${where}` }
  if (r === 9 && pool.length > 0) return { value: setAt(root, path, rng.pick(pool)), op: `pool${where}` }
  if (r === 10) return { value: setAt(root, path, 'x'.repeat(rng.size(maxString))), op: `longstring${where}` }
  if (r === 11) return { value: setAt(root, path, regexKiller(rng, Math.min(maxString, 20_000))), op: `regexkiller${where}` }
  if (r === 12 && path.length > 0) { // move: the same value under a sibling key
    const parent = getAt(root, path.slice(0, -1))
    if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
      const keys = Object.keys(parent)
      const other = rng.pick(keys)
      const tmp = (parent as Record<string, unknown>)[other]
      ;(parent as Record<string, unknown>)[other] = target
      root = setAt(root, path, tmp)
      return { value: root, op: `swapfields${where}<->${other}` }
    }
  }
  // fallback: a numeric edge or a hostile value
  return { value: setAt(root, path, rng.chance(0.5) ? rng.pick(HOSTILE_NUMBERS) : hostileValue(rng, maxString)), op: `fallback${where}` }
}

/** 1-3 stacked structural edits. */
export function mutateJsonMany (rng: Rng, value: unknown, pool: readonly string[], maxString: number): { value: unknown, op: string } {
  let v = value
  const ops: string[] = []
  const n = rng.chance(0.7) ? 1 : rng.int(2, 3)
  for (let i = 0; i < n; i++) {
    const m = mutateJson(rng, v, pool, maxString)
    v = m.value
    ops.push(m.op)
  }
  return { value: v, op: ops.join(',') }
}

/** Replaces one number token of JSON text with a raw token JSON.stringify would never write. */
export function injectRawNumber (rng: Rng, text: string): string {
  const re = /(?<=[:[,])-?\d+(\.\d+)?([eE][+-]?\d+)?(?=[,\]}])/g
  const spots: Array<{ at: number, len: number }> = []
  for (const m of text.matchAll(re)) spots.push({ at: m.index, len: m[0].length })
  if (spots.length === 0) return text
  const s = rng.pick(spots)
  return text.slice(0, s.at) + rng.pick(RAW_NUMBER_TOKENS) + text.slice(s.at + s.len)
}

/** Text-level variants of valid JSON: raw number tokens, duplicate keys, whitespace, escapes. */
export function mutateJsonText (rng: Rng, text: string): { text: string, op: string } {
  switch (rng.int(0, 4)) {
    case 0: return { text: injectRawNumber(rng, text), op: 'rawnumber' }
    case 1: { // a duplicate key: JSON.parse keeps the last one
      const i = text.indexOf('{')
      if (i < 0) return { text, op: 'dupkey-noop' }
      const keys = [...text.matchAll(/"([A-Za-z]+)":/g)].map(m => m[1]!)
      const key = keys.length > 0 ? rng.pick(keys) : 'v'
      const dup = `"${key}":${JSON.stringify(hostileValue(rng, 64)) ?? 'null'},`
      return { text: rng.chance(0.5) ? text.slice(0, i + 1) + dup + text.slice(i + 1) : text.replace(/}$/, `,${dup.slice(0, -1)}}`), op: `dupkey:${key}` }
    }
    case 2: return { text: text.replace(/([,:])/g, (m: string) => rng.chance(0.1) ? `${m} \n\t` : m), op: 'whitespace' }
    case 3: return { text: text.replace(/[a-z]/, c => `\\u00${c.charCodeAt(0).toString(16)}`), op: 'escape' }
    default: return { text: ` ${text} `, op: 'pad' }
  }
}

// ---- timing -------------------------------------------------------------------------------------

/**
 * Runs `fn` and returns its result and cost in ms: the smaller of its wall-clock time and the CPU time
 * the process spent meanwhile. A hang or a super-linear path costs both; a busy machine (other
 * processes) inflates only the first, parallel GC threads only the second. A call over `slowMs` is run
 * again (up to twice) and the cheapest run counts.
 */
export function timed<T> (fn: () => T, slowMs: number): { value: T, ms: number } {
  const once = (): { value: T, ms: number } => {
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const value = fn()
    const wall = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return { value, ms: Math.min(wall, (cpu.user + cpu.system) / 1000) }
  }
  const first = once()
  let ms = first.ms
  for (let retry = 0; retry < 2 && ms > slowMs; retry++) ms = Math.min(ms, once().ms)
  return { value: first.value, ms }
}

/** A short printable excerpt of an input for failure reports. */
export function excerpt (data: Uint8Array | string, max = 300): string {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8')
  const s = JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text)
  return typeof data === 'string' ? s : `${s} hex:${Buffer.from(data.subarray(0, 48)).toString('hex')}${data.length > 48 ? '…' : ''}`
}
