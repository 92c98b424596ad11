/**
 * Fuzzes every validator that sees bytes from other peers: the gossip topic validators (liveness
 * heartbeats, committee views/certification votes as routed by the committee topic, execution topic
 * messages, assignment votes, swarm probes), the taskpack registry's DHT records, and the decoders of
 * the block-transfer protocol.
 *
 * Each target gets CASES inputs (10,000 by default): random bytes, random JSON, byte-level
 * mutations of valid signed messages (bit flips, truncation, extension, insertion, deletion,
 * splicing two messages), structural JSON mutations inside a validly framed message (type swaps,
 * edge and huge numbers, raw number tokens such as 1e999, deep nesting, long strings, missing and
 * extra fields), and mutations whose body is re-signed with a real key, so the signature is valid but
 * the content is hostile.
 *
 * Every call must return a verdict (never throw), give a non-empty reason when it does not accept,
 * finish within SLOW_MS, and accept nothing whose signature does not match: a mutation that is not
 * re-signed may only be accepted when its signed body is still one of the original bodies, and an
 * accepted re-signed message must satisfy its target's invariants (independently checked signature,
 * consistency, safe integers).
 *
 * Reproduce a run with FUZZ_SEED=<seed> (printed at the start); FUZZ_CASES changes the count.
 */
import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { PublicKey } from '@solana/web3.js'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { MemoryDatastore } from 'datastore-core'
import { assignmentDigest, blacklistHash, canonicalBlacklist } from '../../programs/client/index.js'
import { Identity } from '../../daemon/identity.js'
import { publicKeyOfPeer } from '../../daemon/services/liveness.js'
import { publisherPublicKey, RegistryRecords } from '../../daemon/content/registry.js'
import { canonicalBytes, canonicalJson } from '../../protocols/canonical.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import { signingBytes } from '../../protocols/envelope.js'
import { accept, ignore, reject, type Verdict } from '../../protocols/validation.js'
import { validateProbe, encodeProbe, PROBE_MAX_BYTES, PROBE_CLOCK_WINDOW_MS, type ProbeMessage } from '../../protocols/probe.js'
import { validateHeartbeat, encodeHeartbeat, HEARTBEAT_KIND, HEARTBEAT_MAX_BYTES, type HeartbeatBody } from '../../protocols/liveness/heartbeat.js'
import {
  validateCommitteeMessage, encodeCommitteeMessage, tableHash, VIEW_KIND, CERT_KIND, COMMITTEE_MAX_BYTES,
  type CommitteeMessage, type TableEntry
} from '../../protocols/liveness/committee.js'
import {
  validateExecutionMessage, validateAssignmentVote, encodeExecutionMessage, encodeAssignmentVote, withDigest, outputRoot, peekMessageType,
  voteDigestInput, ASSIGNMENT_VOTE_KIND, EXECUTION_MESSAGE_MAX_BYTES, VOTE_MAX_BYTES,
  type AssignmentDigestFn, type AssignmentVote, type AssignmentVoteBody, type ExecutionMessage, type ExecutionTopicContext
} from '../../protocols/execution/messages.js'
import {
  decodeRecord, encodeRecord, recordSigningBytes, registryKey, RegistryRecordError, REGISTRY_RECORD_FORMAT, MAX_REGISTRY_RECORD_BYTES,
  type RegistryRecord
} from '../../protocols/content/registry.js'
import {
  BlockProtocolError, decodeRequest, decodeBlock, decodeBlockParts, encodeRequest, encodeBlock, FrameDecoder, blockLinks, unixfsFileSize, unixfsType
} from '../../protocols/content/blocks.js'
import {
  Rng, fuzzSeed, mutateBytes, mutateJsonMany, mutateJsonText, randomJsonText, stringsOf, timed, excerpt
} from './lib.js'

const SEED = fuzzSeed()
const CASES = Number(process.env.FUZZ_CASES ?? 10_000)
/** a call slower than this (fastest of three runs) counts as a hang or a super-linear path */
const SLOW_MS = 50
/** bound on one target's whole campaign */
const TARGET_BUDGET_MS = 30_000

console.log(`gossip fuzz: FUZZ_SEED=${SEED} (0x${SEED.toString(16)}), ${CASES} cases per target`)

// ---- a small world: keys, ids, a genesis -----------------------------------------------------------

const GENESIS = createHash('sha256').update('fuzz-genesis').digest('hex')
const NOW = 1_700_000_000_000
const ROUND_MS = 10_000
const identities = new Map<string, Identity>()
function ident (name: string): Identity {
  let id = identities.get(name)
  if (id === undefined) {
    id = new Identity(new Uint8Array(createHash('sha256').update(`fuzz-key-${name}`).digest()))
    identities.set(name, id)
  }
  return id
}
const peer = (name: string): string => ident(name).peerId.toString()
/** peer id -> identity, for re-signing a mutated body as whoever it names */
const byPeer = (): Map<string, Identity> => new Map([...identities.values()].map(i => [i.peerId.toString(), i]))

const A = peer('nodeA')
const B = peer('nodeB')
const R = peer('requester')
const N1 = peer('node1')
const N2 = peer('node2')
const N3 = peer('node3')
const O1 = peer('oracle1')
const O2 = peer('oracle2')
const O3 = peer('oracle3')
const P = peer('publisher')
const COMMITTEE = new Set([O1, O2, O3])
const ADMITTED = new Set([A, B, N1, N2, N3])
const MODEL = 'bafkreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const TASKPACK = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const OUT1 = 'ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const OUT2 = 'ipfs://bafkreidivzimqfqtoqxkrpge6bjyhlvxqs3rhe73owtmdulaxr5do5in7u'

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
/** the `sig` text of a message (JSON.parse keeps the last of duplicate keys, as the validators do) */
const sigText = (data: Uint8Array): unknown => (JSON.parse(new TextDecoder().decode(data)) as { sig?: unknown }).sig
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
/** canonical JSON, or undefined for values it cannot encode (deep nesting beyond the stack) */
const canon = (v: unknown): string | undefined => { try { return canonicalJson(v) } catch { return undefined } }

/** every number in an accepted value must be a non-negative safe integer (no 1e300, no 2^53 + 1, no fractions) */
function unsafeNumber (value: unknown, path = ''): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? undefined : `number ${value} at ${path || '/'} is not a non-negative safe integer`
  if (Array.isArray(value)) { for (let i = 0; i < value.length; i++) { const e = unsafeNumber(value[i], `${path}/${i}`); if (e !== undefined) return e } }
  else if (isObj(value)) for (const [k, v] of Object.entries(value)) { const e = unsafeNumber(v, `${path}/${k}`); if (e !== undefined) return e }
  return undefined
}

function verifiedBy (peerId: string, message: Uint8Array, sigB64: unknown): boolean {
  const key = publicKeyOfPeer(peerId)
  return key !== undefined && typeof sigB64 === 'string' && ed25519Verify(key, message, new Uint8Array(Buffer.from(sigB64, 'base64')))
}

// ---- the campaign -----------------------------------------------------------------------------------

type Kind = 'seed' | 'random-bytes' | 'random-json' | 'bytes' | 'json' | 'resigned'

interface Target<V> {
  name: string
  maxBytes: number
  /** valid messages (each accepted as is) */
  seeds: Uint8Array[]
  /** extra strings for cross-pollination (other peers' ids, other message types) */
  pool?: string[]
  /** the validator as the daemon wires it; `variant` picks a context (fixed per case so a re-run is identical) */
  validate: (data: Uint8Array, variant: number) => Verdict<V>
  /**
   * What a non-re-signed mutation may only be accepted with: the signed body of one of the seeds, and
   * (where the validator insists on the canonical signature text) the seed's signature text too.
   */
  signedPart?: (value: V, data: Uint8Array) => unknown
  /** re-signs a mutated (parsed) message with the key of whoever it names; undefined when it cannot */
  resign?: (wire: unknown, rng: Rng) => Uint8Array | undefined
  /** a violation in an accepted value, or undefined */
  invariant: (value: V, data: Uint8Array, variant: number) => string | undefined
  /** shape of a random message (type field, envelope keys) to get random bodies past the first checks */
  frame?: (rng: Rng, body: unknown) => unknown
}

interface Report {
  verdicts: Record<string, number>
  byKind: Record<string, Record<string, number>>
  reasons: number
  maxMs: number
  slowest: string
  totalMs: number
  failures: string[]
}

function generate<V> (t: Target<V>, rng: Rng, pool: string[]): { data: Uint8Array, kind: Kind, op: string } {
  const seed = rng.pick(t.seeds)
  const other = rng.pick(t.seeds)
  const r = rng.float()
  if (r < 0.03) {
    const text = new TextDecoder().decode(seed)
    const m = mutateJsonText(rng, text)
    return { data: new TextEncoder().encode(m.text), kind: 'seed', op: m.op }
  }
  if (r < 0.14) {
    const n = rng.chance(0.02) ? t.maxBytes + rng.int(1, 2048) : rng.size(Math.min(t.maxBytes, 8192))
    return { data: rng.bytes(n), kind: 'random-bytes', op: `${n}B` }
  }
  if (r < 0.24) {
    const frame = t.frame !== undefined && rng.chance(0.6) ? (body: unknown) => t.frame!(rng, body) : undefined
    let text = randomJsonText(rng, t.maxBytes, frame)
    if (rng.chance(0.2)) text = mutateJsonText(rng, text).text
    return { data: new TextEncoder().encode(text), kind: 'random-json', op: frame !== undefined ? 'framed' : 'bare' }
  }
  if (r < 0.52) {
    const m = mutateBytes(rng, seed, other)
    return { data: m.data, kind: 'bytes', op: m.op }
  }
  const wire = JSON.parse(new TextDecoder().decode(seed)) as unknown
  if (r < 0.78 || t.resign === undefined) {
    const m = mutateJsonMany(rng, wire, pool, t.maxBytes)
    let text = JSON.stringify(m.value) ?? 'null'
    let op = m.op
    if (rng.chance(0.25)) { const x = mutateJsonText(rng, text); text = x.text; op += `+${x.op}` }
    return { data: new TextEncoder().encode(text), kind: 'json', op }
  }
  // re-signed: mutate the body (sometimes the type too), then sign it with a real key
  let op: string
  let mutated: unknown
  if (isObj(wire) && 'body' in wire && rng.chance(0.9)) {
    const m = mutateJsonMany(rng, wire.body, pool, t.maxBytes)
    mutated = { ...wire, body: m.value }
    op = `body:${m.op}`
    if (rng.chance(0.1)) { (mutated as Record<string, unknown>).type = rng.pick(pool.filter(s => /^[a-z-]+$/.test(s)).concat(['view', 'cert', ASSIGNMENT_VOTE_KIND])); op += ',type' }
  } else {
    const m = mutateJsonMany(rng, wire, pool, t.maxBytes)
    mutated = m.value
    op = m.op
  }
  const data = t.resign(mutated, rng)
  if (data === undefined) return { data: new TextEncoder().encode(JSON.stringify(mutated) ?? 'null'), kind: 'json', op: `${op} (unsignable)` }
  return { data, kind: 'resigned', op }
}

function campaign<V> (t: Target<V>): Report {
  const report: Report = { verdicts: { accept: 0, ignore: 0, reject: 0 }, byKind: {}, reasons: 0, maxMs: 0, slowest: '', totalMs: 0, failures: [] }
  const fail = (msg: string): void => { if (report.failures.length < 20) report.failures.push(msg) }
  const seedBodies = new Set<string>()
  const pool = [...new Set([...t.seeds.flatMap(s => stringsOf(JSON.parse(new TextDecoder().decode(s)))), ...(t.pool ?? [])])]
  // every seed is accepted as is: the fuzzer starts from messages that reach the deepest checks
  for (const [i, s] of t.seeds.entries()) {
    const v = t.validate(s, 0)
    if (v.result !== 'accept') fail(`${t.name}: seed ${i} is not accepted (${v.result}: ${v.reason}): the harness is broken`)
    else if (t.signedPart !== undefined) seedBodies.add(canon(t.signedPart(v.value, s))!)
  }
  const reasons = new Set<string>()
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < CASES; i++) {
    const rng = Rng.forCase(SEED, t.name, i)
    const { data, kind, op } = generate(t, rng, pool)
    const variant = rng.u32()
    const where = `${t.name} case ${i} [FUZZ_SEED=${SEED}] (${kind}: ${op}) input ${excerpt(data)}`
    let v: Verdict<V>
    try {
      const r = timed(() => t.validate(data, variant), SLOW_MS)
      v = r.value
      if (r.ms > report.maxMs) { report.maxMs = r.ms; report.slowest = `case ${i} (${kind}: ${op}, ${data.length} bytes)` }
      if (r.ms > SLOW_MS) fail(`${where}: took ${r.ms.toFixed(1)} ms`)
    } catch (err) {
      fail(`${where}: threw ${String((err as Error)?.stack ?? err).slice(0, 600)}`)
      continue
    }
    if (v === null || typeof v !== 'object' || !['accept', 'ignore', 'reject'].includes(v.result)) { fail(`${where}: returned ${String(v)}`); continue }
    report.verdicts[v.result]!++
    const k = (report.byKind[kind] ??= { accept: 0, ignore: 0, reject: 0 })
    k[v.result] = (k[v.result] ?? 0) + 1
    if (v.result !== 'accept') {
      if (typeof v.reason !== 'string' || v.reason.trim() === '') fail(`${where}: ${v.result} without a reason`)
      else reasons.add(v.reason.replace(/\d+/g, 'N').slice(0, 60))
      continue
    }
    if (kind !== 'resigned' && t.signedPart !== undefined && !seedBodies.has(canon(t.signedPart(v.value, data)) ?? '')) {
      fail(`${where}: accepted a mutated message whose signature does not cover it: ${excerpt(canon(t.signedPart(v.value, data)) ?? '?')}`)
    }
    const problem = t.invariant(v.value, data, variant)
    if (problem !== undefined) fail(`${where}: accepted garbage: ${problem}`)
  }
  report.totalMs = performance.now() - started
  report.reasons = reasons.size
  const cpu = process.cpuUsage(cpu0)
  console.log(`  ${t.name}: ${CASES} inputs in ${(report.totalMs / 1000).toFixed(1)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s), max ${report.maxMs.toFixed(2)} ms per call (${report.slowest}); ` +
    `accept ${report.verdicts.accept} / ignore ${report.verdicts.ignore} / reject ${report.verdicts.reject}; ${report.reasons} distinct reasons; by kind ${JSON.stringify(report.byKind)}`)
  return report
}

function check (r: Report, minResignedAccepts = 1): void {
  expect(r.failures, r.failures.join('\n\n')).toEqual([])
  expect(r.maxMs).toBeLessThan(SLOW_MS)
  expect(r.totalMs).toBeLessThan(TARGET_BUDGET_MS)
  // the fuzzer got past parsing and schemas into the semantic checks
  expect(r.reasons).toBeGreaterThan(5)
  expect(r.byKind.resigned?.accept ?? 0).toBeGreaterThanOrEqual(minResignedAccepts)
}

// ---- re-signing helpers -------------------------------------------------------------------------

function signAs (peerId: unknown, fallback: string): Identity {
  return (typeof peerId === 'string' ? byPeer().get(peerId) : undefined) ?? ident(fallback)
}

function trySigningBytes (kind: string, body: unknown): Uint8Array | undefined {
  try { return signingBytes(kind, GENESIS, body) } catch { return undefined }
}

// ---- targets ------------------------------------------------------------------------------------

function heartbeatBody (over: Partial<HeartbeatBody> = {}): HeartbeatBody {
  return {
    v: 1, peerId: A, bootEpoch: 3, seq: 17, timestampMs: NOW - 1000, status: 'available',
    capacity: { taskSlots: 2, freeSlots: 1, freeMemoryBytes: 8 * 1024 ** 3 },
    hardware: { cpuModel: 'AMD EPYC 7B13', cpuCores: 8, ramBytes: 32 * 1024 ** 3, gpus: [] },
    specializations: ['task-a', `${MODEL}/1`], datasets: [], software: '0.1.0', ...over
  }
}

const heartbeatTarget: Target<HeartbeatBody> = {
  name: 'heartbeat (liveness topic)',
  maxBytes: HEARTBEAT_MAX_BYTES,
  seeds: [
    heartbeatBody(),
    heartbeatBody({ status: 'busy', seq: 0, capacity: { taskSlots: 4, freeSlots: 0, freeMemoryBytes: 0 }, hardware: { cpuModel: '', cpuCores: 64, ramBytes: 0, gpus: [{ model: 'NVIDIA H100 80GB HBM3', vramBytes: 85_899_345_920 }, { model: 'RTX 4090', vramBytes: 25_757_220_864, simulated: true }] }, datasets: ['d'.repeat(64)] }),
    heartbeatBody({ status: 'draining', bootEpoch: 0, timestampMs: NOW + 20_000, specializations: [], datasets: ['ds-1', 'ds-2', 'ds-3'] })
  ].map(b => encodeHeartbeat(b, GENESIS, m => ident('nodeA').sign(m))),
  pool: [B, N1, O1, 'offline', 'available'],
  validate: (data, variant) => validateHeartbeat(data, variant % 5 === 4 ? B : A, {
    genesisHash: GENESIS,
    nowMs: NOW,
    clockWindowMs: 30_000,
    publicKeyOf: publicKeyOfPeer,
    verify: ed25519Verify,
    isAdmitted: id => ADMITTED.has(id),
    // some cases run against a peer with history, to reach the replay/reorder checks
    lastSeen: () => variant % 3 === 1 ? { bootEpoch: 3, seq: 10, timestampMs: NOW - 5000 } : undefined,
    takeRateToken: () => variant % 7 !== 6,
    reorderToleranceMs: 2000
  }),
  signedPart: (v, data) => ({ body: v, sig: sigText(data) }),
  resign: wire => {
    if (!isObj(wire)) return undefined
    const bytes = trySigningBytes(HEARTBEAT_KIND, wire.body)
    if (bytes === undefined) return undefined
    return enc({ ...wire, sig: b64(signAs(isObj(wire.body) ? wire.body.peerId : undefined, 'nodeA').sign(bytes)) })
  },
  invariant: (hb, data, variant) => {
    const from = variant % 5 === 4 ? B : A
    if (hb.peerId !== from) return 'heartbeat about another peer than its publisher'
    const wire = JSON.parse(new TextDecoder().decode(data)) as { sig?: unknown }
    if (!verifiedBy(from, signingBytes(HEARTBEAT_KIND, GENESIS, hb), wire.sig)) return 'signature does not verify'
    if (Math.abs(NOW - hb.timestampMs) > 30_000) return 'timestamp outside the clock window'
    if (hb.capacity.freeSlots > hb.capacity.taskSlots) return `more free slots (${hb.capacity.freeSlots}) than task slots (${hb.capacity.taskSlots})`
    if (new Set(hb.specializations).size !== hb.specializations.length) return 'duplicate specializations'
    return unsafeNumber(hb)
  },
  frame: (rng, body) => ({ body: rng.chance(0.5) ? { ...heartbeatBody(), ...(isObj(body) ? body : { x: body }) } : body, sig: 'A'.repeat(86) + '==' })
}

function tableEntry (peerId: string, i: number): TableEntry {
  return {
    peerId, status: i % 4 === 3 ? 'offline' : 'available', bootEpoch: 1 + (i % 3), seq: 10 + i,
    capacity: { taskSlots: 2, freeSlots: i % 3, freeMemoryBytes: 1024 * i },
    hardware: { cpuModel: `cpu-${i}`, cpuCores: 1 + (i % 16), ramBytes: 2 ** 30, gpus: i % 5 === 0 ? [{ model: 'T4', vramBytes: 16 * 2 ** 30 }] : [] },
    specializations: [`${MODEL}/${1 + (i % 3)}`], datasets: [], software: '0.1.0'
  }
}

const CURRENT_ROUND = Math.floor(NOW / ROUND_MS)
const smallTable = [A, B, N1].map((p, i) => tableEntry(p, i))
const bigTable = Array.from({ length: 60 }, (_, i) => tableEntry(ident(`table-${i}`).peerId.toString(), i))

type Routed = { routed: typeof ASSIGNMENT_VOTE_KIND, value: AssignmentVote }
type CommitteeTopicValue = CommitteeMessage | Routed

const committeeTarget: Target<CommitteeTopicValue> = {
  name: 'committee topic (views, certification votes; assignment votes routed)',
  maxBytes: COMMITTEE_MAX_BYTES,
  seeds: ([
    { type: 'view', body: { v: 1, round: CURRENT_ROUND, oracle: O1, entries: smallTable } },
    { type: 'view', body: { v: 1, round: CURRENT_ROUND - 3, oracle: O1, entries: [] } },
    { type: 'cert', body: { v: 1, round: CURRENT_ROUND, oracle: O1, tableHash: tableHash(CURRENT_ROUND, GENESIS, smallTable), merged: [O1, O2, O3], table: smallTable } },
    { type: 'cert', body: { v: 1, round: CURRENT_ROUND + 1, oracle: O1, tableHash: tableHash(CURRENT_ROUND + 1, GENESIS, bigTable), merged: [O2], table: bigTable } }
  ] as CommitteeMessage[]).map(m => encodeCommitteeMessage(m, GENESIS, b => ident('oracle1').sign(b))),
  pool: [O2, O3, A, 'offline', ASSIGNMENT_VOTE_KIND, 'view', 'cert'],
  // mirrors daemon/services/committee.ts: votes are peeked and routed, everything else is a view or a cert
  validate: (data, variant) => {
    const from = variant % 4 === 3 ? O2 : O1
    if (peekMessageType(data) === ASSIGNMENT_VOTE_KIND) {
      const v = voteTarget.validate(data, variant)
      return v.result === 'accept' ? accept({ routed: ASSIGNMENT_VOTE_KIND, value: v.value }) : v
    }
    return validateCommitteeMessage(data, from, { genesisHash: GENESIS, members: COMMITTEE, currentRound: CURRENT_ROUND, publicKeyOf: publicKeyOfPeer, verify: ed25519Verify })
  },
  // (a routed vote: see voteTarget.signedPart)
  signedPart: (v, data) => 'routed' in v ? v.value.body : { body: v.body, sig: sigText(data) },
  resign: (wire, rng) => {
    if (!isObj(wire)) return undefined
    const body = wire.body
    if (wire.type === 'cert' && isObj(body) && Array.isArray(body.table) && typeof body.round === 'number' && rng.chance(0.7)) {
      try { body.tableHash = tableHash(body.round, GENESIS, body.table as TableEntry[]) } catch { /* not hashable: leave it */ }
    }
    const bytes = trySigningBytes(wire.type === 'cert' ? CERT_KIND : VIEW_KIND, body)
    if (bytes === undefined) return undefined
    return enc({ ...wire, sig: b64(signAs(isObj(body) ? body.oracle : undefined, 'oracle1').sign(bytes)) })
  },
  invariant: (m, data, variant) => {
    if ('routed' in m) return voteTarget.invariant(m.value, data, variant)
    const from = variant % 4 === 3 ? O2 : O1
    const wire = JSON.parse(new TextDecoder().decode(data)) as { sig?: unknown }
    if (m.body.oracle !== from || !COMMITTEE.has(from)) return 'not from its committee member publisher'
    if (!verifiedBy(from, signingBytes(m.type === 'cert' ? CERT_KIND : VIEW_KIND, GENESIS, m.body), wire.sig)) return 'signature does not verify'
    if (m.body.round < CURRENT_ROUND - 3 || m.body.round > CURRENT_ROUND + 1) return 'round outside the window'
    if (m.type === 'cert' && tableHash(m.body.round, GENESIS, m.body.table) !== m.body.tableHash) return 'table does not hash to tableHash'
    return unsafeNumber(m.body)
  },
  frame: (rng, body) => ({ type: rng.pick(['view', 'cert', ASSIGNMENT_VOTE_KIND, 'x']), body, sig: 'A'.repeat(86) + '==' })
}

// execution topic

const requestMsg: ExecutionMessage = { type: 'execution-request', body: { v: 1, executionId: 'exec-1', modelId: MODEL, inputs: { x: OUT1, y: 'dataset://ds-1' }, requester: R, fee: '18446744073709551615', requestSlot: 990, timestampMs: NOW } }
const noticeMsg: ExecutionMessage = { type: 'assignment-notice', body: { v: 1, oracle: O2, executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, kind: 'primary', node: N1, taskpack: TASKPACK, inputs: { in: OUT1 }, computeUnits: 100, assignedSlot: 1000, deadlineMs: NOW + 6000, timestampMs: NOW } }
const outputs = { y: OUT1, z: OUT2 }
const completionMsg: ExecutionMessage = { type: 'task-completion', body: { v: 1, node: N1, executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, outputs, outputRoot: outputRoot(outputs), startedAtMs: NOW - 500, completedAtMs: NOW - 10, timestampMs: NOW } }
const failureMsg: ExecutionMessage = { type: 'task-failure', body: { v: 1, node: N2, executionId: 'exec-1', taskId: `${MODEL}/2`, attempt: 3, reason: 'exit 1: out of memory', timestampMs: NOW - 5 } }
const signerField: Record<string, string> = { 'execution-request': 'requester', 'assignment-notice': 'oracle', 'task-completion': 'node', 'task-failure': 'node' }

function executionCtx (variant: number): ExecutionTopicContext {
  // as daemon/services/execution.ts builds it: before the first slot read, nothing is too old or ahead
  const fresh = variant % 3 === 0
  const slot = fresh ? 0 : 1000
  return {
    genesisHash: GENESIS, nowMs: NOW, clockWindowMs: 30_000, currentSlot: slot,
    maxRequestAgeSlots: fresh ? Number.MAX_SAFE_INTEGER : 2000, maxSlotsAhead: fresh ? Number.MAX_SAFE_INTEGER : 100,
    committee: COMMITTEE, publicKeyOf: publicKeyOfPeer, verify: ed25519Verify
  }
}

const executionTarget: Target<ExecutionMessage> = {
  name: 'execution topic (requests, notices, completions, failures)',
  maxBytes: EXECUTION_MESSAGE_MAX_BYTES,
  seeds: [
    encodeExecutionMessage(requestMsg, GENESIS, b => ident('requester').sign(b)),
    encodeExecutionMessage(noticeMsg, GENESIS, b => ident('oracle2').sign(b)),
    encodeExecutionMessage(completionMsg, GENESIS, b => ident('node1').sign(b)),
    encodeExecutionMessage(failureMsg, GENESIS, b => ident('node2').sign(b))
  ],
  pool: [O1, O3, N3, A, 'execution-request', 'assignment-notice', 'task-completion', 'task-failure', 'verification'],
  validate: (data, variant) => validateExecutionMessage(data, executionCtx(variant)),
  // the body and the canonical signature text: a re-spelled signature is refused
  signedPart: (m, data) => ({ type: m.type, body: m.body, sig: sigText(data) }),
  resign: (wire, rng) => {
    if (!isObj(wire) || !isObj(wire.body)) return undefined
    const body = wire.body
    if (wire.type === 'task-completion' && isObj(body.outputs) && rng.chance(0.7)) {
      try { body.outputRoot = outputRoot(body.outputs as Record<string, string>) } catch { /* leave it */ }
    }
    const kind = typeof wire.type === 'string' ? wire.type : 'execution-request'
    const bytes = trySigningBytes(kind, body)
    if (bytes === undefined) return undefined
    return enc({ ...wire, sig: b64(signAs(body[signerField[kind] ?? 'node'], 'node1').sign(bytes)) })
  },
  invariant: (m, data, variant) => {
    const ctx = executionCtx(variant)
    const signer = (m.body as unknown as Record<string, string>)[signerField[m.type]!]!
    const wire = JSON.parse(new TextDecoder().decode(data)) as { sig?: unknown }
    if (!verifiedBy(signer, signingBytes(m.type, GENESIS, m.body), wire.sig)) return `${m.type} signature does not verify for ${signer}`
    const inWindow = (ts: number): boolean => Math.abs(NOW - ts) <= ctx.clockWindowMs
    switch (m.type) {
      case 'execution-request':
        if (Object.keys(m.body.inputs).length === 0) return 'request without inputs'
        if (!/^(0|[1-9][0-9]*)$/.test(m.body.fee)) return 'fee is not a decimal'
        break
      case 'assignment-notice':
        if (!COMMITTEE.has(m.body.oracle)) return 'notice from a non-member'
        if (!inWindow(m.body.timestampMs)) return 'notice outside the clock window'
        break
      case 'task-completion':
        if (m.body.completedAtMs < m.body.startedAtMs) return 'completed before started'
        if (outputRoot(m.body.outputs) !== m.body.outputRoot) return 'output root mismatch'
        if (Object.keys(m.body.outputs).length === 0) return 'completion without outputs'
        if (!inWindow(m.body.timestampMs)) return 'completion outside the clock window'
        break
      case 'task-failure':
        if (!inWindow(m.body.timestampMs)) return 'failure outside the clock window'
        break
    }
    return unsafeNumber(m.body)
  },
  frame: (rng, body) => ({ type: rng.pick(['execution-request', 'assignment-notice', 'task-completion', 'task-failure']), body, sig: 'A'.repeat(86) + '==' })
}

// assignment votes

const programId = new PublicKey(createHash('sha256').update('fuzz-program').digest())
const genesisBytes = new Uint8Array(Buffer.from(GENESIS, 'hex'))
/** the daemon's adapter over programs/client (daemon/execution/coordinator.ts digestOf) */
const digestOf: AssignmentDigestFn = f => assignmentDigest({ ...f, programId, genesisHash: genesisBytes, blacklistHash: blacklistHash(canonicalBlacklist(f.blacklist)) })
const VOTE_EPOCH = 2n
const VOTE_SLOT = 1000
const voteFields: Omit<AssignmentVoteBody, 'digest'> = {
  v: 1, oracle: O1, committeeEpoch: '2', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 1, ballot: 0, kind: 'primary',
  node: N1, blacklist: [N3, N2], seedSlot: 995, seed: 'cd'.repeat(32), livenessRound: CURRENT_ROUND, computeUnits: 250, expirySlot: 1100,
  selection: { ranked: [N1, A], eligible: 4 }
}
const voteBody = (over: Partial<Omit<AssignmentVoteBody, 'digest'>>): AssignmentVoteBody => withDigest({ ...voteFields, ...over }, publicKeyOfPeer, digestOf)

const voteTarget: Target<AssignmentVote> = {
  name: 'assignment votes (committee topic)',
  maxBytes: VOTE_MAX_BYTES,
  seeds: [
    encodeAssignmentVote(voteBody({}), GENESIS, b => ident('oracle1').sign(b)),
    encodeAssignmentVote(voteBody({ oracle: O2, kind: 'verification', blacklist: [], attempt: 0, ballot: 7, selection: { ranked: [N2], eligible: 1 }, node: N2 }), GENESIS, b => ident('oracle2').sign(b)),
    encodeAssignmentVote(voteBody({ oracle: O3, expirySlot: 1300, computeUnits: 0xffffffff, attempt: 0xfffffffe, selection: { ranked: [A, B, N1, N2], eligible: 100 }, node: B, blacklist: [N3] }), GENESIS, b => ident('oracle3').sign(b))
  ],
  pool: [O2, O3, A, B, N3, 'verification', 'primary', '18446744073709551615', '99999999999999999999'],
  validate: (data) => validateAssignmentVote(data, {
    genesisHash: GENESIS, committee: COMMITTEE, committeeEpoch: VOTE_EPOCH, currentSlot: VOTE_SLOT, maxExpiryAheadSlots: 300,
    publicKeyOf: publicKeyOfPeer, verify: ed25519Verify, digestOf
  }),
  // the body and the canonical signature texts: a re-spelled signature is refused
  signedPart: (v, data) => ({ body: v.body, sig: sigText(data), digestSig: (JSON.parse(new TextDecoder().decode(data)) as { digestSig?: unknown }).digestSig }),
  resign: (wire, rng) => {
    if (!isObj(wire) || !isObj(wire.body)) return undefined
    const body = wire.body
    if (rng.chance(0.7)) {
      // recompute the digest from the (hostile) fields, so the vote gets past the digest check
      try {
        const input = voteDigestInput(body as unknown as AssignmentVoteBody, publicKeyOfPeer)
        if (input !== undefined) body.digest = Buffer.from(digestOf(input)).toString('hex')
      } catch { /* fields the digest cannot take: keep the old digest */ }
    }
    const bytes = trySigningBytes(ASSIGNMENT_VOTE_KIND, body)
    if (bytes === undefined) return undefined
    const signer = signAs(body.oracle, 'oracle1')
    const digestSig = typeof body.digest === 'string' && /^[0-9a-f]{64}$/.test(body.digest) ? b64(signer.sign(new Uint8Array(Buffer.from(body.digest, 'hex')))) : wire.digestSig
    return enc({ ...wire, sig: b64(signer.sign(bytes)), digestSig })
  },
  invariant: (vote, data) => {
    const b = vote.body
    const wire = JSON.parse(new TextDecoder().decode(data)) as { sig?: unknown }
    if (!COMMITTEE.has(b.oracle)) return 'vote from a non-member'
    if (!verifiedBy(b.oracle, signingBytes(ASSIGNMENT_VOTE_KIND, GENESIS, b), wire.sig)) return 'envelope signature does not verify'
    const digest = digestOf(voteDigestInput(b, publicKeyOfPeer)!)
    if (Buffer.from(digest).toString('hex') !== b.digest) return 'digest does not match the fields'
    if (!ed25519Verify(publicKeyOfPeer(b.oracle)!, digest, vote.digestSig)) return 'digest signature does not verify'
    if (!b.selection.ranked.includes(b.node)) return 'node not ranked'
    if (b.selection.ranked.some(n => b.blacklist.includes(n))) return 'ranks a blacklisted node'
    if (b.selection.eligible < b.selection.ranked.length) return 'more ranked than eligible'
    if (BigInt(b.committeeEpoch) !== VOTE_EPOCH) return 'another committee epoch'
    if (b.expirySlot < VOTE_SLOT || b.expirySlot > VOTE_SLOT + 300) return 'expiry outside the window'
    return unsafeNumber(b)
  },
  frame: (_rng, body) => ({ type: ASSIGNMENT_VOTE_KIND, body, sig: 'A'.repeat(86) + '==', digestSig: 'A'.repeat(86) + '==' })
}

// probes (signed by gossipsub itself; the validator checks the origin against the authenticated publisher)

const probeTarget: Target<ProbeMessage> = {
  name: 'swarm probes (probe topic)',
  maxBytes: PROBE_MAX_BYTES,
  seeds: ([
    { v: 1, id: '0123456789abcdef', origin: A, sentAtMs: NOW - 1500 },
    { v: 1, id: 'f'.repeat(64), origin: A, sentAtMs: NOW + 59_000, payload: 'p'.repeat(1024) },
    { v: 1, id: 'deadbeef', origin: A, sentAtMs: NOW, payload: '' }
  ] as ProbeMessage[]).map(encodeProbe),
  pool: [B, O1],
  validate: (data, variant) => validateProbe(data, variant % 5 === 4 ? B : A, NOW),
  resign: wire => enc(wire), // nothing to sign: a hostile publisher can send any content as itself
  invariant: (p, _data, variant) => {
    const from = variant % 5 === 4 ? B : A
    if (p.origin !== from) return 'origin is not the publisher'
    if (p.v !== 1 || !/^[0-9a-f]{8,64}$/.test(p.id)) return 'bad version or id'
    if (!Number.isSafeInteger(p.sentAtMs) || Math.abs(NOW - p.sentAtMs) > PROBE_CLOCK_WINDOW_MS) return 'sentAtMs outside the window'
    if (p.payload !== undefined && typeof p.payload !== 'string') return 'payload is not a string'
    if (Object.keys(p).some(k => !['v', 'id', 'origin', 'sentAtMs', 'payload'].includes(k))) return 'unknown field in the accepted value'
    return undefined
  },
  frame: (rng, body) => rng.chance(0.5) ? { v: 1, id: '0123456789abcdef', origin: A, sentAtMs: NOW, payload: body } : body
}

// taskpack registry records (DHT values; decodeRecord throws RegistryRecordError by contract)

const rawCid = (text: string): CID => CID.createV1(raw.code, Digest.create(0x12, createHash('sha256').update(text).digest()))
const CID_A = rawCid('taskpack-a').toString()
function record (publisher: Identity, name: string, version: string, cid: string, publishedAt: string): RegistryRecord {
  const body = { format: REGISTRY_RECORD_FORMAT, publisher: publisher.peerId.toString(), name, version, cid, sha256: `sha256:${'ab'.repeat(32)}`, publishedAt } as const
  return { ...body, signature: b64(publisher.sign(recordSigningBytes(GENESIS, body))) }
}
const registrySeeds = [
  record(ident('publisher'), 'linear-regression', '1.0.0', TASKPACK, '2026-01-01T00:00:00.000Z'),
  record(ident('publisher'), 'x', '0.0.1-rc.1', CID_A, '2026-03-04T05:06:07Z'),
  record(ident('nodeB'), 'a.b_c-d', '10.20.30', TASKPACK, '2025-12-31T23:59:59.999Z')
]
const registryKeyOf = (variant: number, data: Uint8Array): string | undefined => {
  if (variant % 3 === 0) return undefined
  const r = registrySeeds[variant % registrySeeds.length]!
  if (variant % 3 === 1) return registryKey(r.publisher, r.name, r.version)
  // the key as the record claims it (a DHT PUT names its own key): parse leniently
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>
    return registryKey(String(v.publisher), String(v.name), String(v.version))
  } catch { return '/bitflow-registry/garbage' }
}

const registryTarget: Target<RegistryRecord> = {
  name: 'taskpack registry records (DHT)',
  maxBytes: MAX_REGISTRY_RECORD_BYTES,
  seeds: registrySeeds.map(encodeRecord),
  pool: [A, O1, 'bitflow-registry/2', '1.0', '01.0.0', 'sha256:', 'Linear', '2026-13-01T00:00:00Z', 'not a date'],
  validate: (data, variant) => {
    try {
      return accept(decodeRecord(data, GENESIS, publisherPublicKey, registryKeyOf(variant, data)))
    } catch (err) {
      if (err instanceof RegistryRecordError) return err.message === '' ? reject('') : (err.code === 'ERR_REGISTRY_KEY_MISMATCH' ? ignore(err.message) : reject(err.message))
      throw err
    }
  },
  signedPart: r => r,
  resign: (wire, rng) => {
    if (!isObj(wire)) return undefined
    const bytes = (() => { try { return recordSigningBytes(GENESIS, wire as unknown as RegistryRecord) } catch { return undefined } })()
    if (bytes === undefined) return undefined
    const signed = { ...wire, signature: b64(signAs(wire.publisher, 'publisher').sign(bytes)) }
    try { return rng.chance(0.8) ? canonicalBytes(signed) : enc(signed) } catch { return undefined }
  },
  invariant: (r, data, variant) => {
    if (Buffer.compare(Buffer.from(encodeRecord(r)), Buffer.from(data)) !== 0) return 'not canonical'
    if (!verifiedBy(r.publisher, recordSigningBytes(GENESIS, r), r.signature)) return 'signature does not verify'
    const key = registryKeyOf(variant, data)
    if (key !== undefined && key !== registryKey(r.publisher, r.name, r.version)) return 'stored under another key'
    if (Number.isNaN(Date.parse(r.publishedAt))) return 'publishedAt does not parse'
    return undefined
  }
}

// ---- the tests ----------------------------------------------------------------------------------

describe(`gossip and DHT validators under ${CASES} random and mutated inputs each (FUZZ_SEED=${SEED})`, () => {
  it('liveness heartbeats', () => { check(campaign(heartbeatTarget)) })
  it('committee topic: views and certification votes (and the routing of assignment votes)', () => { check(campaign(committeeTarget)) })
  it('execution topic: requests, notices, completions, failures', () => { check(campaign(executionTarget)) })
  it('assignment votes', () => { check(campaign(voteTarget)) })
  it('swarm probes', () => { check(campaign(probeTarget)) })
  it('taskpack registry records (decodeRecord)', () => { check(campaign(registryTarget)) })

  it('the registry DHT validator and selector (RegistryRecords.validate/select) only ever fail with RegistryRecordError', async () => {
    const records = new RegistryRecords(GENESIS, new MemoryDatastore())
    const pool = [...new Set(registrySeeds.flatMap(r => stringsOf(r)))]
    const failures: string[] = []
    let maxMs = 0
    let accepted = 0
    const n = Math.ceil(CASES / 2)
    for (let i = 0; i < n; i++) {
      const rng = Rng.forCase(SEED, 'registry-dht', i)
      const { data, kind, op } = generate(registryTarget, rng, pool)
      const key = new TextEncoder().encode(registryKeyOf(rng.u32(), data) ?? registryKey(P, 'linear-regression', '1.0.0'))
      let outcome: unknown
      const once = async (): Promise<number> => {
        const t0 = performance.now()
        const cpu0 = process.cpuUsage()
        try {
          await records.validate(key, data)
          outcome = 'accept'
        } catch (err) {
          outcome = err
        }
        try {
          const pick = records.select(key, [data, ...registrySeeds.map(encodeRecord)])
          if (!Number.isInteger(pick) || pick < 0 || pick > registrySeeds.length) failures.push(`registry-dht case ${i}: select returned ${pick}`)
        } catch (err) {
          failures.push(`registry-dht case ${i} (${kind}: ${op}): select threw ${String(err)}`)
        }
        const cpu = process.cpuUsage(cpu0)
        return Math.min(performance.now() - t0, (cpu.user + cpu.system) / 1000)
      }
      let ms = await once()
      const first = outcome
      for (let retry = 0; retry < 2 && ms > SLOW_MS; retry++) ms = Math.min(ms, await once())
      if (first === 'accept') accepted++
      else if (!(first instanceof RegistryRecordError) || first.message === '') failures.push(`registry-dht case ${i} (${kind}: ${op}): ${String(first)} input ${excerpt(data)}`)
      if (ms > SLOW_MS) failures.push(`registry-dht case ${i} (${kind}: ${op}): took ${ms.toFixed(1)} ms`)
      maxMs = Math.max(maxMs, ms)
    }
    console.log(`  registry DHT validator+selector: ${n} inputs, ${accepted} accepted, max ${maxMs.toFixed(2)} ms`)
    expect(failures.slice(0, 20), failures.slice(0, 20).join('\n')).toEqual([])
    expect(accepted).toBeGreaterThan(0)
    expect(maxMs).toBeLessThan(SLOW_MS)
  })

  it('block-transfer decoders (frames, requests, blocks) only ever fail with BlockProtocolError', () => {
    const cidRaw = rawCid('block')
    const flat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts))
    const seeds = [
      flat(encodeRequest([cidRaw, CID.parse(TASKPACK)])),
      flat(encodeBlock(cidRaw, new TextEncoder().encode('block'))),
      flat(encodeBlock(CID.parse(TASKPACK), Uint8Array.of(0x0a, 0x02, 0x08, 0x02, 0x12, 0x00)))
    ]
    const failures: string[] = []
    let maxMs = 0
    for (let i = 0; i < CASES; i++) {
      const rng = Rng.forCase(SEED, 'blocks', i)
      const r = rng.float()
      const data = r < 0.3 ? rng.bytes(rng.size(2048)) : mutateBytes(rng, rng.pick(seeds), rng.pick(seeds)).data
      const run = (what: string, fn: () => unknown): void => {
        try {
          const { ms } = timed(fn, SLOW_MS)
          if (ms > SLOW_MS) failures.push(`blocks case ${i} ${what}: took ${ms.toFixed(1)} ms`)
          maxMs = Math.max(maxMs, ms)
        } catch (err) {
          if (!(err instanceof BlockProtocolError) || err.message === '') failures.push(`blocks case ${i} ${what}: ${String(err)} input ${excerpt(data)}`)
        }
      }
      // as the transfer code feeds them: whole frames from a chunked stream, then the payload decoders
      const chunks: number[] = []
      for (let off = 0; off < data.length; off += chunks[chunks.length - 1]!) chunks.push(rng.int(1, 64))
      const parts = rng.chance(0.5)
      run('FrameDecoder', () => {
        const dec = new FrameDecoder(64 * 1024)
        let off = 0
        for (const n of chunks) {
          dec.push(data.subarray(off, off + n))
          off += n
          for (let f = parts ? dec.nextParts() : dec.next(); f !== undefined; f = parts ? dec.nextParts() : dec.next()) void f
        }
      })
      const payload = data.subarray(Math.min(5, data.length))
      const cut = rng.int(0, payload.length)
      run('decodeRequest', () => decodeRequest(payload))
      run('decodeBlock', () => decodeBlock(payload))
      run('decodeBlockParts', () => {
        const b = decodeBlockParts([payload.subarray(0, cut), payload.subarray(cut)], payload.length)
        blockLinks(b.cid, flat(b.data))
      })
      // never throw at all
      try { unixfsFileSize(CID.parse(TASKPACK), payload); unixfsType(payload) } catch (err) { failures.push(`blocks case ${i} unixfs: ${String(err)}`) }
    }
    console.log(`  block-transfer decoders: ${CASES} inputs, max ${maxMs.toFixed(2)} ms`)
    expect(failures.slice(0, 20), failures.slice(0, 20).join('\n')).toEqual([])
    expect(maxMs).toBeLessThan(SLOW_MS)
  })
})
