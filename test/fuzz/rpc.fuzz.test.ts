/**
 * Fuzzes the JSON-RPC API of one real bitflowd process (local network, no chain): at least CALLS
 * (10,000 by default) method calls across every method rpc.discover lists, with params made from
 * each method's schema and then broken (wrong types, missing and extra params, by position and by
 * name, huge strings, deep nesting, NaN-ish strings, negative and huge numbers), sent in batches over
 * HTTP and WebSocket, plus malformed bodies and invalid batch shapes.
 *
 * Every answer must be a well-formed JSON-RPC 2.0 response (or none, for notifications); params that
 * fail their schema must get -32602 with a message; nothing may get -32603 (an internal error is a
 * bug, whatever the params); afterwards the daemon process is alive and answers bitflow_nodeInfo.
 *
 * Reproduce with FUZZ_SEED=<seed> (printed at the start); FUZZ_RPC_CALLS changes the count.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import WebSocket from 'ws'
import { Ajv, type ValidateFunction } from 'ajv'
import { processAlive } from '../../daemon/datadir.js'
import { tempDir, spawnDaemon, cleanup, type SpawnedDaemon } from '../helpers/daemon.js'
import {
  Rng, fuzzSeed, hostileValue, setOwn, mutateJsonMany, deepNest, nestedText, randomText, injectRawNumber, HOSTILE_STRINGS, HOSTILE_NUMBERS, excerpt
} from './lib.js'

const SEED = fuzzSeed()
const CALLS = Number(process.env.FUZZ_RPC_CALLS ?? 10_000)
/** the whole campaign (all batches) must finish within this */
const BUDGET_MS = 60_000
/** one batch must be answered within this: nothing the fuzzer sends may start a long operation */
const BATCH_MS = 10_000
const MAX_BATCH = 50 // the daemon's default rpc.maxBatchSize
const MAX_BODY = 1024 * 1024 // the daemon's default rpc.maxRequestBytes

console.log(`rpc fuzz: FUZZ_SEED=${SEED} (0x${SEED.toString(16)}), ${CALLS} calls`)

/**
 * Methods that only ever get params failing their schema (so the handler never runs) unless the
 * call lacks the RPC token (then -32001 comes first, whatever the params). Why each one:
 */
const INVALID_PARAMS_ONLY: Record<string, string> = {
  bitflow_publishProbe: 'valid params publish up to 10,000 probes at 0.1/s: a long-running operation',
  bitflow_addDataset: 'reads and hashes any absolute path the daemon can see (e.g. /)',
  bitflow_publishTaskpack: 'reads a directory from disk, packs it and publishes a DHT record',
  bitflow_putTensor: 'reads a local file or stores arbitrary bytes in the block store',
  bitflow_getTensor: 'options.out writes a file; a valid CID starts a network fetch',
  bitflow_fetchContent: 'a valid CID starts a network fetch that waits for providers',
  bitflow_getModel: 'a valid model id starts a network fetch (10 s bitswap timeout)',
  bitflow_scoreAgents: 'runs every stored agent in the sandbox (containers)',
  bitflow_submitAgent: 'stores an agent and checks it with the Python parser',
  bitflow_gc: 'deletes every unpinned block of the store'
}
/** Methods whose valid-looking params are rewritten so they cannot do real work. */
const SANITIZE: Record<string, (value: string) => string> = {
  // a parseable multiaddr would be dialled (up to the dial timeout): keep it unparseable
  bitflow_connect: s => `x${s}`.slice(0, 1024)
}
/** error codes a method may answer with (daemon/rpc/errors.ts); -32603 is never acceptable */
const DOCUMENTED = new Set([-32700, -32600, -32601, -32602, -32001, -32002, -32004, -32010])

interface MethodDoc {
  name: string
  params: Array<{ name: string, required: boolean, schema: Record<string, unknown> }>
  'x-requires-token'?: boolean
  'x-websocket-only'?: boolean
}

type Expect = 'invalid-params' | 'unauthorized' | 'invalid-request' | 'method-not-found' | 'ws-only' | 'any'
interface Sent { id: string | number | undefined, method: string, params: unknown, expect: Expect, how: string }

const dir = tempDir('rpc-fuzz')
let daemon: SpawnedDaemon
let url: string
let token: string
let methods: MethodDoc[] = []
const validators = new Map<string, ValidateFunction>()
const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false })
let peerId = ''

beforeAll(async () => {
  const genesisFile = join(dir, 'genesis.json')
  writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
  daemon = await spawnDaemon(join(dir, 'd'), ['--genesis-file', genesisFile, '--role', 'node', '--log-level', 'warn'], 60_000)
  url = daemon.runtime.rpcUrl
  peerId = daemon.runtime.peerId
  token = readFileSync(join(dir, 'd', 'rpc.cookie'), 'utf8').trim()
  const doc = await (await post(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'rpc.discover' }))).json() as { result: { methods: MethodDoc[] } }
  methods = doc.result.methods
  for (const m of methods) for (const p of m.params) validators.set(`${m.name}/${p.name}`, ajv.compile(p.schema))
})

afterAll(async () => {
  if (daemon !== undefined) await daemon.stop()
  cleanup(daemon !== undefined ? [daemon.pid] : [], [dir])
})

async function post (body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number, type: string, text: string, json: () => unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : new Blob([new Uint8Array(body)]), signal: AbortSignal.timeout(BATCH_MS * 2) })
  const text = await res.text()
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) }
}

// ---- what the server must answer ----------------------------------------------------------------

/** Replays RpcRegistry.normalizeParams on the JSON the server will parse: true when the params pass. */
function paramsPass (m: MethodDoc, raw: unknown): boolean {
  const byName: Record<string, unknown> = {}
  if (raw === undefined || raw === null) {
    // no params
  } else if (Array.isArray(raw)) {
    if (raw.length > m.params.length) return false
    raw.forEach((v, i) => { byName[m.params[i]!.name] = v })
  } else if (typeof raw === 'object') {
    const known = new Set(m.params.map(p => p.name))
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (!known.has(k)) return false
      byName[k] = v
    }
  } else {
    return false
  }
  for (const p of m.params) {
    const v = byName[p.name]
    if (v === undefined || v === null) { if (p.required) return false; continue }
    if (!validators.get(`${m.name}/${p.name}`)!(v)) return false
  }
  return true
}

function wellFormed (r: unknown): string | undefined {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return 'a response is not an object'
  const o = r as Record<string, unknown>
  if (o.jsonrpc !== '2.0') return 'jsonrpc is not "2.0"'
  if (!('id' in o) || !(typeof o.id === 'string' || typeof o.id === 'number' || o.id === null)) return `id ${JSON.stringify(o.id)} is not a string, number or null`
  if (('result' in o) === ('error' in o)) return 'not exactly one of result and error'
  for (const k of Object.keys(o)) if (!['jsonrpc', 'id', 'result', 'error'].includes(k)) return `unexpected member ${k}`
  if ('error' in o) {
    const e = o.error as Record<string, unknown> | null
    if (e === null || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string' || e.message.trim() === '') return `malformed error object ${JSON.stringify(e)?.slice(0, 200)}`
  }
  return undefined
}

function checkAnswer (s: Sent, r: Record<string, unknown>): string | undefined {
  const err = r.error as { code: number, message: string } | undefined
  const code = err?.code
  const want: Partial<Record<Expect, number>> = { 'invalid-params': -32602, unauthorized: -32001, 'invalid-request': -32600, 'method-not-found': -32601, 'ws-only': -32600 }
  if (code === -32603) return `internal error: ${err!.message}`
  if (s.expect === 'any') {
    if (code !== undefined && !DOCUMENTED.has(code)) return `undocumented error code ${code}: ${err!.message}`
    return undefined
  }
  if (code !== want[s.expect]) return `expected ${s.expect} (${want[s.expect]}), got ${code === undefined ? `result ${excerpt(JSON.stringify(r.result) ?? '', 120)}` : `${code}: ${err!.message}`}`
  return undefined
}

// ---- params -------------------------------------------------------------------------------------

const CIDS = ['bafkreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG']
function stringPool (): string[] {
  const hex = createHash('sha256').update('x').digest('hex')
  return [...CIDS, ...CIDS.map(c => `ipfs://${c}`), `dataset://${hex}`, 'dataset://', hex, peerId, '12D3KooWEUfxxnMgRSpjCYTehPEm1Fg7evmwRCw9KU6zGFi6eNAq',
    'linear-regression@1.0.0', 'x@0.0.1-rc.1', '@1.0.0', 'task-a', `${CIDS[0]}/1`, 'exec-1', 'x-0123456789abcdef', 'agent-1', 'peers', 'probes', 'liveness',
    'execution', 'committee', 'transfers', 'probe', 'a'.repeat(64), 'not-a-multiaddr', 'relative/path', '0', '-1', '1.5', 'NaN', '1e999', '9007199254740993', ...HOSTILE_STRINGS]
}
let POOL: string[] = []

function genString (rng: Rng, s: Record<string, unknown>): string {
  const min = typeof s.minLength === 'number' ? s.minLength : 0
  const max = typeof s.maxLength === 'number' ? s.maxLength : 300
  const pattern = typeof s.pattern === 'string' ? new RegExp(s.pattern, 'u') : undefined
  const fits = (x: string): boolean => x.length >= min && x.length <= max && (pattern === undefined || pattern.test(x))
  if (rng.chance(0.7)) {
    const ok = POOL.filter(fits)
    if (ok.length > 0) return rng.pick(ok)
  }
  const n = rng.int(Math.max(min, 1), Math.max(min, Math.min(max, 24)))
  const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let out = ''
  for (let i = 0; i < n; i++) out += alnum[rng.int(0, alnum.length - 1)]
  return out
}

/** A value that mostly satisfies `s` (a JSON Schema from rpc.discover). */
function genValue (rng: Rng, s: Record<string, unknown>, depth = 0): unknown {
  if (Array.isArray(s.enum)) return rng.pick(s.enum as unknown[])
  if ('const' in s) return s.const
  if (Array.isArray(s.anyOf)) return genValue(rng, rng.pick(s.anyOf as Array<Record<string, unknown>>), depth)
  switch (s.type) {
    case 'string': return genString(rng, s)
    case 'integer':
    case 'number': {
      const lo = typeof s.minimum === 'number' ? s.minimum : -1000
      const hi = typeof s.maximum === 'number' ? s.maximum : lo + 1_000_000
      const edges = [lo, hi, Math.ceil(lo), Math.floor(hi), Math.min(hi, lo + 1)]
      const n = rng.chance(0.4) ? rng.pick(edges) : lo + Math.floor(rng.float() * Math.min(hi - lo, 100_000))
      return s.type === 'integer' ? Math.trunc(n) : (rng.chance(0.3) ? n + 0.5 : n)
    }
    case 'boolean': return rng.chance(0.5)
    case 'array': {
      const items = (s.items ?? {}) as Record<string, unknown>
      const min = typeof s.minItems === 'number' ? s.minItems : 0
      const max = Math.min(typeof s.maxItems === 'number' ? s.maxItems : 6, min + 6)
      return Array.from({ length: rng.int(min, max) }, () => genValue(rng, items, depth + 1))
    }
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>
      const required = new Set((s.required ?? []) as string[])
      const o: Record<string, unknown> = {}
      for (const [k, ps] of Object.entries(props)) if (required.has(k) || rng.chance(0.5)) o[k] = genValue(rng, ps, depth + 1)
      if (s.additionalProperties !== false && rng.chance(0.5)) {
        const n = rng.int(1, 6)
        for (let i = 0; i < n; i++) setOwn(o, rng.chance(0.3) ? rng.pick(HOSTILE_STRINGS) : randomText(rng, rng.int(1, 10)), hostileValue(rng, 4096, depth + 1))
      }
      if (s.additionalProperties !== false && rng.chance(0.05)) o.deep = deepNest(rng, rng.int(500, 700))
      if (s.patternProperties !== undefined) {
        const inner = Object.values(s.patternProperties as Record<string, Record<string, unknown>>)[0] ?? {}
        for (let i = rng.int(0, 3); i > 0; i--) o[randomText(rng, rng.int(1, 8))] = genValue(rng, inner, depth + 1)
      }
      return o
    }
    default: return hostileValue(rng, 4096, depth)
  }
}

/** Params for one call of `m`: schema-made, then (mostly) broken in one of many ways. */
function genParams (rng: Rng, m: MethodDoc): { params: unknown, how: string } {
  const byName = rng.chance(0.5)
  const values = m.params.map(p => (p.required || rng.chance(0.6)) ? genValue(rng, p.schema) : undefined)
  const pack = (vals: unknown[], named = byName): unknown => {
    if (!named) {
      let last = vals.length
      while (last > 0 && vals[last - 1] === undefined) last--
      return vals.slice(0, last).map(v => v === undefined ? null : v)
    }
    return Object.fromEntries(m.params.flatMap((p, i) => vals[i] === undefined ? [] : [[p.name, vals[i]]]))
  }
  const r = rng.float()
  if (r < 0.25) return { params: pack(values), how: `schema-${byName ? 'named' : 'positional'}` }
  if (r < 0.55) {
    const mut = mutateJsonMany(rng, pack(values), POOL, 8192)
    return { params: mut.value, how: `mutated(${mut.op})` }
  }
  if (r < 0.65) { // one param replaced by a hostile value
    const vals = [...values]
    if (vals.length > 0) vals[rng.int(0, vals.length - 1)] = rng.chance(0.5) ? hostileValue(rng, 8192) : rng.pick([...HOSTILE_NUMBERS, ...HOSTILE_STRINGS, null, true, [], {}])
    return { params: pack(vals), how: 'hostile-param' }
  }
  if (r < 0.72) { // too many positional params
    const vals = [...values]
    while (vals.length < m.params.length) vals.push(undefined)
    return { params: [...(pack(vals, false) as unknown[]), ...Array.from({ length: m.params.length - (pack(vals, false) as unknown[]).length + rng.int(1, 3) }, () => hostileValue(rng, 256))], how: 'extra-positional' }
  }
  if (r < 0.78) { // an unknown param name, or a required one missing
    const o = (byName ? pack(values) : Object.fromEntries(m.params.map((p, i) => [p.name, values[i]]))) as Record<string, unknown>
    if (rng.chance(0.5) || m.params.length === 0) setOwn(o, rng.pick(['extra', '__proto__', 'constructor', 'PARAMS', m.params[0]?.name.toUpperCase() ?? 'x']), hostileValue(rng, 64))
    else delete o[rng.pick(m.params).name]
    return { params: o, how: 'names' }
  }
  if (r < 0.84) return { params: rng.pick([[], {}, null, undefined]), how: 'empty' }
  if (r < 0.90) return { params: rng.pick(['str', 0, -1, true, false, 1e308, '', '[]', '{}']), how: 'not-structured' }
  if (r < 0.95) return { params: hostileValue(rng, 8192), how: 'random' }
  // huge strings and deep nesting inside otherwise ordinary params
  const big = rng.chance(0.5) ? 'x'.repeat(rng.int(10_000, 200_000)) : deepNest(rng, rng.int(100, 700))
  const vals = [...values]
  vals[vals.length > 0 ? rng.int(0, vals.length - 1) : 0] = big
  return { params: pack(vals), how: 'big' }
}

// ---- requests -----------------------------------------------------------------------------------

let nextId = 1

function genCall (rng: Rng, authorized: boolean, websocket: boolean): { req: Record<string, unknown>, sent: Sent } {
  const m = rng.pick(methods)
  let method = m.name
  let unknown = false
  const rm = rng.float()
  if (rm < 0.03) { method = rng.pick([m.name.toUpperCase(), `${m.name} `, m.name.slice(0, -1), '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'rpc.', 'bitflow_', randomText(rng, 12)]); unknown = !methods.some(x => x.name === method) }
  let { params, how } = genParams(rng, m)
  // the server sees the JSON, not this object (undefined disappears, -0 becomes 0, ...)
  let wire = params === undefined ? undefined : JSON.parse(JSON.stringify(params)) as unknown
  const mutating = m['x-requires-token'] === true
  const wsOnly = m['x-websocket-only'] === true
  const guarded = !(mutating && !authorized) && !(wsOnly && !websocket)
  if (!unknown && guarded && paramsPass(m, wire)) {
    if (INVALID_PARAMS_ONLY[m.name] !== undefined) {
      // make them fail: one param too many, or an unknown name
      if (Array.isArray(wire) || wire === undefined || wire === null) {
        const arr = [...((wire ?? []) as unknown[])]
        while (arr.length <= m.params.length) arr.push('x')
        wire = arr
      } else {
        wire = { ...(wire as object), zzExtra: 1 }
      }
      params = wire
      how += '+invalidated'
    } else if (SANITIZE[m.name] !== undefined) {
      wire = JSON.parse(JSON.stringify(wire, (_k, v: unknown) => typeof v === 'string' ? SANITIZE[m.name]!(v) : v))
      params = wire
      how += '+sanitized'
    }
  }
  let expect: Expect
  if (unknown) expect = 'method-not-found'
  else if (mutating && !authorized) expect = 'unauthorized'
  else if (wsOnly && !websocket) expect = 'ws-only'
  else expect = paramsPass(m, wire) ? 'any' : 'invalid-params'
  const notification = rng.chance(0.03)
  const id = notification ? undefined : (rng.chance(0.2) ? `s-${nextId++}` : nextId++)
  const req: Record<string, unknown> = { jsonrpc: '2.0', method }
  if (params !== undefined) req.params = params
  if (id !== undefined) req.id = id
  return { req, sent: { id, method, params, expect, how } }
}

interface Stats { calls: number, reachedHandler: Record<string, number>, batches: number, maxBatchMs: number, slowest: string, codes: Record<string, number>, failures: string[] }

function fail (stats: Stats, msg: string): void { if (stats.failures.length < 25) stats.failures.push(msg) }

function checkReplies (stats: Stats, where: string, sent: Sent[], replies: unknown[]): void {
  const byId = new Map<string | number, Sent>()
  for (const s of sent) if (s.id !== undefined) byId.set(s.id, s)
  const seen = new Set<string | number>()
  for (const r of replies) {
    const bad = wellFormed(r)
    if (bad !== undefined) { fail(stats, `${where}: ${bad}: ${excerpt(JSON.stringify(r) ?? '', 300)}`); continue }
    const o = r as Record<string, unknown>
    const code = (o.error as { code?: number } | undefined)?.code
    stats.codes[code === undefined ? 'result' : String(code)] = (stats.codes[code === undefined ? 'result' : String(code)] ?? 0) + 1
    const s = byId.get(o.id as string | number)
    if (s === undefined) { fail(stats, `${where}: a reply for id ${JSON.stringify(o.id)} that was not asked (or was a notification): ${excerpt(JSON.stringify(o), 300)}`); continue }
    if (seen.has(o.id as string | number)) fail(stats, `${where}: two replies for id ${JSON.stringify(o.id)}`)
    seen.add(o.id as string | number)
    if (s.expect === 'any') stats.reachedHandler[s.method] = (stats.reachedHandler[s.method] ?? 0) + 1
    const problem = checkAnswer(s, o)
    if (problem !== undefined) fail(stats, `${where}: ${s.method} (${s.how}) params ${excerpt(JSON.stringify(s.params) ?? 'absent', 300)}: ${problem}`)
  }
  for (const s of sent) if (s.id !== undefined && !seen.has(s.id)) fail(stats, `${where}: no reply for id ${JSON.stringify(s.id)} (${s.method})`)
}

async function httpBatch (stats: Stats, rng: Rng, index: number): Promise<void> {
  const authorized = rng.chance(0.85)
  const size = rng.chance(0.1) ? 1 : rng.int(1, MAX_BATCH)
  const calls = Array.from({ length: size }, () => genCall(rng, authorized, false))
  const single = size === 1 && rng.chance(0.5)
  let body = JSON.stringify(single ? calls[0]!.req : calls.map(c => c.req))
  if (rng.chance(0.05)) body = injectRawNumber(rng, body) // raw 1e999, -0, 2^64 tokens: may no longer be JSON, or change a param
  const where = `batch ${index} [FUZZ_SEED=${SEED}]`
  const started = performance.now()
  let res: Awaited<ReturnType<typeof post>>
  try {
    res = await post(body, authorized ? { authorization: `Bearer ${token}` } : {})
  } catch (err) {
    fail(stats, `${where}: request failed: ${String(err)} body ${excerpt(body)}`)
    return
  }
  const ms = performance.now() - started
  if (ms > stats.maxBatchMs) { stats.maxBatchMs = ms; stats.slowest = `${where} (${calls.map(c => c.sent.method).join(',').slice(0, 300)})` }
  if (ms > BATCH_MS) fail(stats, `${where}: took ${ms.toFixed(0)} ms`)
  stats.batches++
  if (Buffer.byteLength(body) <= MAX_BODY) stats.calls += size
  if (Buffer.byteLength(body) > MAX_BODY) { if (res.status !== 413) fail(stats, `${where}: a ${Buffer.byteLength(body)}-byte body got HTTP ${res.status}, not 413`); return }
  const allNotifications = calls.every(c => c.sent.id === undefined)
  let parsedBody: unknown
  try { parsedBody = JSON.parse(body) } catch { parsedBody = undefined }
  if (parsedBody === undefined) { // the raw token broke the JSON
    if (res.status !== 200 || (res.json() as { error?: { code?: number } }).error?.code !== -32700) fail(stats, `${where}: invalid JSON did not get -32700: ${res.status} ${excerpt(res.text)}`)
    return
  }
  if (parsedBody !== undefined && JSON.stringify(parsedBody) !== JSON.stringify(JSON.parse(JSON.stringify(single ? calls[0]!.req : calls.map(c => c.req))))) {
    // the raw token changed a value: only the shape of the answers can be checked
    checkShapes(stats, where, res)
    return
  }
  if (allNotifications) { if (res.status !== 204) fail(stats, `${where}: only notifications, but HTTP ${res.status} ${excerpt(res.text)}`); return }
  if (res.status !== 200 || !res.type.startsWith('application/json')) { fail(stats, `${where}: HTTP ${res.status} ${res.type} ${excerpt(res.text)}`); return }
  const replies = res.json()
  if (single) checkReplies(stats, where, [calls[0]!.sent], [replies])
  else if (!Array.isArray(replies)) fail(stats, `${where}: a batch answered with ${excerpt(res.text)}`)
  else checkReplies(stats, where, calls.map(c => c.sent), replies)
}

/** Shape-only checks (no expectations about codes), for bodies the fuzzer cannot predict. */
function checkShapes (stats: Stats, where: string, res: Awaited<ReturnType<typeof post>>): void {
  if (res.status === 204) return
  if (res.status !== 200) { fail(stats, `${where}: HTTP ${res.status} ${excerpt(res.text)}`); return }
  let v: unknown
  try { v = res.json() } catch { fail(stats, `${where}: the answer is not JSON: ${excerpt(res.text)}`); return }
  for (const r of Array.isArray(v) ? v : [v]) {
    const bad = wellFormed(r)
    if (bad !== undefined) fail(stats, `${where}: ${bad}: ${excerpt(JSON.stringify(r) ?? '', 300)}`)
    else if ((r as { error?: { code: number, message: string } }).error?.code === -32603) fail(stats, `${where}: internal error ${(r as { error: { message: string } }).error.message}`)
  }
}

/** Bodies that are not (all) valid requests: each with the one answer it must get. */
function malformedBody (rng: Rng): { body: string | Uint8Array, headers?: Record<string, string>, check: (res: Awaited<ReturnType<typeof post>>) => string | undefined, what: string } {
  const single = (code: number, id: string | number | null = null) => (res: Awaited<ReturnType<typeof post>>): string | undefined => {
    if (res.status !== 200) return `HTTP ${res.status}`
    const v = res.json() as Record<string, unknown>
    const bad = wellFormed(v)
    if (bad !== undefined) return bad
    if ((v.error as { code?: number } | undefined)?.code !== code || v.id !== id) return `expected a single ${code} with id ${id}, got ${excerpt(res.text, 200)}`
    return undefined
  }
  const eachInvalid = (n: number) => (res: Awaited<ReturnType<typeof post>>): string | undefined => {
    if (res.status !== 200) return `HTTP ${res.status}`
    const v = res.json()
    if (!Array.isArray(v) || v.length !== n) return `expected ${n} replies, got ${excerpt(res.text, 200)}`
    for (const r of v) {
      const bad = wellFormed(r)
      if (bad !== undefined) return bad
      if ((r as { error: { code: number } }).error?.code !== -32600) return `expected -32600 for each, got ${excerpt(JSON.stringify(r), 200)}`
    }
    return undefined
  }
  const valid = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'bitflow_nodeInfo' })
  switch (rng.int(0, 13)) {
    case 0: { // random bytes
      const b = rng.bytes(rng.size(4096))
      const text = Buffer.from(b).toString('utf8')
      let parses = true
      try { JSON.parse(text) } catch { parses = false }
      return { body: b, what: 'random bytes', check: res => parses ? checkAnyError(res) : single(-32700)(res) }
    }
    case 1: { const n = rng.int(0, valid.length - 1); return { body: valid.slice(0, n), what: `truncated@${n}`, check: single(-32700) } }
    case 2: {
      const [body, id] = rng.pick([['1', null], ['"x"', null], ['null', null], ['true', null], ['{}', null], ['{"jsonrpc":"2.0"}', null], ['{"jsonrpc":"1.0","id":1,"method":"bitflow_nodeInfo"}', 1],
        ['{"jsonrpc":"2.0","method":1}', null], ['{"jsonrpc":"2.0","method":null,"id":"a"}', 'a'], ['{"method":"bitflow_nodeInfo","id":1}', 1], ['{"jsonrpc":2,"id":3,"method":"bitflow_nodeInfo"}', 3]] as Array<[string, string | number | null]>)
      return { body, what: 'not a request', check: single(-32600, id) }
    }
    case 3: return { body: '[]', what: 'empty batch', check: single(-32600) }
    case 4: { const n = rng.int(MAX_BATCH + 1, 400); return { body: JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'bitflow_peers' }))), what: `batch of ${n}`, check: single(-32600) } }
    case 5: { const n = rng.int(1, MAX_BATCH); return { body: JSON.stringify(Array.from({ length: n }, () => rng.pick([1, 'x', null, true, [], [valid], {}, { jsonrpc: '2.0' }, { jsonrpc: '2.0', method: 5 }]))), what: 'batch of garbage', check: eachInvalid(n) } }
    case 6: { const d = rng.int(1000, 150_000); return { body: nestedText(rng, d), what: `nesting ${d}`, check: res => checkAnyError(res) } }
    case 7: { // deep nesting in params
      const d = rng.int(1000, 100_000)
      const m = rng.pick(methods)
      return { body: `{"jsonrpc":"2.0","id":1,"method":${JSON.stringify(m.name)},"params":${nestedText(rng, d)}}`, what: `params nesting ${d} for ${m.name}`, check: res => checkAnyError(res, true) }
    }
    case 8: { // deep nesting inside a free-form object param (registerModel's definition, subscribe's params)
      const d = rng.int(1000, 100_000)
      return { body: `{"jsonrpc":"2.0","id":1,"method":"bitflow_registerModel","params":{"definition":{"format":"bitflow-model/1","x":${nestedText(rng, d)}}}}`, headers: { authorization: `Bearer ${token}` }, what: `definition nesting ${d}`, check: res => checkAnyError(res, true) }
    }
    case 9: return { body: `{"jsonrpc":"2.0","id":1,"method":"bitflow_peers","params":["${'x'.repeat(MAX_BODY)}"]}`, what: 'over the size cap', check: res => res.status === 413 ? undefined : `HTTP ${res.status}, not 413` }
    case 10: return { body: `[${valid},${valid.slice(0, -1)}`, what: 'truncated batch', check: single(-32700) }
    case 11: return { body: rng.pick(['{"jsonrpc":"2.0","id":1,"method":"bitflow_nodeInfo",}', "{'jsonrpc':'2.0'}", '{"jsonrpc":"2.0","id":NaN,"method":"bitflow_nodeInfo"}', '\u0000', '{"jsonrpc":"2.0","id":1,"method":"bitflow_nodeInfo"}}']), what: 'not JSON', check: single(-32700) }
    case 12: { // odd ids: objects, arrays, booleans, floats, huge numbers
      const id = rng.pick([{}, [], true, { a: 1 }, [1], false])
      return { body: JSON.stringify({ jsonrpc: '2.0', id, method: 'bitflow_nodeInfo' }), what: `id ${JSON.stringify(id)}`, check: single(-32600) }
    }
    default: { // a request with result/error members
      return { body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'bitflow_nodeInfo', [rng.pick(['result', 'error'])]: 1 }), what: 'result member', check: res => { const v = res.json() as Record<string, unknown>; return wellFormed(v) ?? ((v.error as { code?: number } | undefined)?.code === -32600 ? undefined : `expected -32600, got ${excerpt(res.text, 200)}`) } }
    }
  }
}

/** Any well-formed error or result, never an internal error; with `needError`, an error. */
function checkAnyError (res: Awaited<ReturnType<typeof post>>, needError = false): string | undefined {
  if (res.status !== 200) return `HTTP ${res.status}`
  let v: unknown
  try { v = res.json() } catch { return `not JSON: ${excerpt(res.text, 200)}` }
  for (const r of Array.isArray(v) ? v : [v]) {
    const bad = wellFormed(r)
    if (bad !== undefined) return bad
    const e = (r as { error?: { code: number, message: string } }).error
    if (e?.code === -32603) return `internal error: ${e.message}`
    if (needError && e === undefined) return `expected an error, got ${excerpt(JSON.stringify(r), 200)}`
  }
  return undefined
}

// ---- WebSocket ----------------------------------------------------------------------------------

async function websocketCampaign (stats: Stats, frames: number): Promise<void> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/?token=${token}`)
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const queue: unknown[] = []
  let wake: (() => void) | undefined
  ws.on('message', data => {
    const v = JSON.parse(data.toString()) as unknown
    if (!Array.isArray(v) && (v as { method?: string }).method === 'bitflow_subscription') return // an event, not a reply
    queue.push(v)
    wake?.()
  })
  const next = async (): Promise<unknown> => {
    const deadline = Date.now() + BATCH_MS
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error('no reply over the WebSocket')
      await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 200) })
    }
    return queue.shift()
  }
  try {
    const subscriptions: string[] = []
    for (let i = 0; i < frames; i++) {
      const rng = Rng.forCase(SEED, 'rpc-ws', i)
      const size = rng.int(1, MAX_BATCH)
      const calls = Array.from({ length: size }, () => genCall(rng, true, true))
      // unsubscribe from a subscription this connection holds, sometimes
      if (subscriptions.length > 0 && rng.chance(0.3)) {
        const id = nextId++
        calls.push({ req: { jsonrpc: '2.0', id, method: 'bitflow_unsubscribe', params: [subscriptions.pop()] }, sent: { id, method: 'bitflow_unsubscribe', params: null, expect: 'any', how: 'own subscription' } })
      }
      // a frame over rpc.maxRequestBytes closes the connection (ws maxPayload): drop the largest calls
      const bytes = (c: { req: unknown }): number => Buffer.byteLength(JSON.stringify(c.req))
      while (calls.length > 1 && Buffer.byteLength(JSON.stringify(calls.map(c => c.req))) > MAX_BODY * 0.9) {
        calls.splice(calls.reduce((best, c, j) => bytes(c) > bytes(calls[best]!) ? j : best, 0), 1)
      }
      if (calls.every(c => c.sent.id === undefined)) { const id = nextId++; calls.push({ req: { jsonrpc: '2.0', id, method: 'bitflow_nodeInfo' }, sent: { id, method: 'bitflow_nodeInfo', params: null, expect: 'any', how: 'plain' } }) }
      const started = performance.now()
      ws.send(JSON.stringify(calls.map(c => c.req)))
      let reply: unknown
      try { reply = await next() } catch (err) { fail(stats, `ws frame ${i}: ${String(err)}`); break }
      const ms = performance.now() - started
      if (ms > stats.maxBatchMs) { stats.maxBatchMs = ms; stats.slowest = `ws frame ${i}` }
      stats.calls += calls.length
      stats.batches++
      if (!Array.isArray(reply)) { fail(stats, `ws frame ${i}: a batch answered with ${excerpt(JSON.stringify(reply) ?? '')}`); continue }
      for (const r of reply as Array<{ result?: unknown, id?: unknown }>) {
        const s = calls.find(c => c.sent.id === r.id)?.sent
        if (s?.method === 'bitflow_subscribe' && typeof r.result === 'string') subscriptions.push(r.result)
      }
      checkReplies(stats, `ws frame ${i} [FUZZ_SEED=${SEED}]`, calls.map(c => c.sent), reply)
    }
    // a binary frame and a malformed text frame
    ws.send(Buffer.from([0xff, 0x00]), { binary: true })
    const bin = await next() as { error?: { code: number } }
    if (bin.error?.code !== -32600) fail(stats, `ws binary frame: ${JSON.stringify(bin)}`)
    ws.send('{"jsonrpc":')
    const bad = await next() as { error?: { code: number } }
    if (bad.error?.code !== -32700) fail(stats, `ws malformed frame: ${JSON.stringify(bad)}`)
  } finally {
    ws.terminate()
  }
}

// ---- the test -----------------------------------------------------------------------------------

describe(`JSON-RPC under ${CALLS} random and mutated calls (FUZZ_SEED=${SEED})`, () => {
  it('answers every call with a well-formed response, -32602 for bad params, never an internal error, and stays up', async () => {
    POOL = stringPool()
    expect(methods.length).toBeGreaterThan(20)
    for (const name of [...Object.keys(INVALID_PARAMS_ONLY), ...Object.keys(SANITIZE)]) {
      expect(methods.map(m => m.name), `${name} is excluded from valid params but no longer exists`).toContain(name)
    }
    const stats: Stats = { calls: 0, reachedHandler: {}, batches: 0, maxBatchMs: 0, slowest: '', codes: {}, failures: [] }
    const started = performance.now()

    // malformed bodies and invalid batch shapes
    let malformed = 0
    for (let i = 0; i < 300; i++) {
      const rng = Rng.forCase(SEED, 'rpc-malformed', i)
      const m = malformedBody(rng)
      const res = await post(m.body, m.headers)
      malformed++
      const problem = m.check(res)
      if (problem !== undefined) fail(stats, `malformed body ${i} [FUZZ_SEED=${SEED}] (${m.what}): ${problem}; body ${excerpt(typeof m.body === 'string' ? m.body : Buffer.from(m.body).toString('latin1'))}`)
    }

    // WebSocket: subscriptions and the rest, over one connection
    await websocketCampaign(stats, 40)

    // HTTP batches, a few in flight at once
    let index = 0
    const worker = async (): Promise<void> => {
      while (stats.calls < CALLS && performance.now() - started < BUDGET_MS) {
        const i = index++
        await httpBatch(stats, Rng.forCase(SEED, 'rpc-http', i), i)
      }
    }
    await Promise.all([worker(), worker(), worker()])
    const totalMs = performance.now() - started

    // the daemon is still there and well
    expect(processAlive(daemon.pid)).toBe(true)
    expect(daemon.child.exitCode).toBeNull()
    const info = (await post(JSON.stringify({ jsonrpc: '2.0', id: 'health', method: 'bitflow_nodeInfo' }))).json() as { result?: { peerId?: string } }
    expect(info.result?.peerId).toBe(peerId)

    const internal = daemon.output().split('\n').filter(l => /RPC method failed|RPC handling failed|uncaught|unhandled/i.test(l))
    console.log(`  ${stats.calls} calls in ${stats.batches} batches/frames + ${malformed} malformed bodies in ${(totalMs / 1000).toFixed(1)} s; ` +
      `slowest batch ${stats.maxBatchMs.toFixed(0)} ms (${stats.slowest.slice(0, 200)}); answers by code ${JSON.stringify(stats.codes)}; ${internal.length} internal-error log lines; ` +
      `schema-valid calls that reached a handler, by method: ${JSON.stringify(stats.reachedHandler)}`)
    expect(stats.failures, [...stats.failures, ...internal.slice(0, 5).map(l => `daemon log: ${l.slice(0, 500)}`)].join('\n\n')).toEqual([])
    expect(stats.calls).toBeGreaterThanOrEqual(CALLS)
    expect(totalMs).toBeLessThan(BUDGET_MS)
    expect(internal.slice(0, 5)).toEqual([])
  })
})
