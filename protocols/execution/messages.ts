/**
 * Wire messages of the execution protocol.
 *
 * On `/bitflow/<network>/execution/1` (gossipTopic(network, 'execution')):
 *   - `execution-request`: a requester announces an execution it opened on chain (escrow + request slot);
 *   - `assignment-notice`: an oracle tells nodes about an assignment settled on chain;
 *   - `task-completion`: the assigned node's signed result (output URIs, output root, timing);
 *   - `task-failure`: the assigned node reports that its run failed, with the reason.
 * On `/bitflow/<network>/committee/1`, next to the liveness views and certification votes:
 *   - `assignment-vote`: an oracle's selection for one (execution, task, attempt, ballot) and its
 *     Ed25519 signature over the settlement program's assignment digest.
 *
 * Each message is UTF-8 JSON `{type, body, sig}`: `sig` is the signer's Ed25519 signature over
 * signingBytes(kind, genesisHash, body) (envelope.ts: domain-separated by protocol version, kind and
 * genesis hash). An assignment vote also carries `digestSig`, the oracle's Ed25519 signature over
 * the raw 32-byte assignment digest — exactly what the program's Ed25519 instruction checks — so a
 * quorum of matching votes can be submitted as is. The digest (programs/client assignmentDigest)
 * already starts with its own domain, the program id and the genesis hash.
 *
 * Validators are pure: everything about the world (keys, committee, clock, slot, digest function)
 * comes in a context. They return accept / ignore / reject (validation.ts): forged, malformed,
 * oversized or lying messages are rejected (peer scoring penalizes the sender); stale or early ones
 * are ignored.
 *
 * Ids are strings here (see ids.ts for their 32-byte on-chain form). Amounts and u64 fields that may
 * exceed 2^53 are decimal strings.
 */
import { createHash } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { canonicalJson } from '../canonical.js'
import { signingBytes } from '../envelope.js'
import { accept, ignore, reject, type Verdict } from '../validation.js'
import { ExecutionError } from './errors.js'
import { ID_PATTERN, executionKey, taskKey } from './ids.js'

export { executionKey, taskKey, modelTaskId, parseModelTaskId, DOMAIN_EXECUTION_ID, DOMAIN_TASK_ID } from './ids.js'

export const EXECUTION_REQUEST_KIND = 'execution-request'
export const ASSIGNMENT_VOTE_KIND = 'assignment-vote'
export const ASSIGNMENT_NOTICE_KIND = 'assignment-notice'
export const COMPLETION_KIND = 'task-completion'
export const FAILURE_KIND = 'task-failure'

export const EXECUTION_MESSAGE_MAX_BYTES = 32 * 1024
export const VOTE_MAX_BYTES = 8 * 1024
/** at most this many ranked nodes (primary + backups) in a vote */
export const MAX_RANKED = 16
/** the settlement program's blacklist limit */
export const MAX_BLACKLIST = 8
/** An assignment vote's kind as the program's role byte (ROLE_* in programs/settlement/src/settlement.h). */
export const ASSIGNMENT_ROLE = { primary: 0, verification: 1, unverifiable: 2 } as const

const Sig = Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' })
const Id = Type.String({ minLength: 1, maxLength: 128, pattern: ID_PATTERN })
const Peer = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9]+$' })
const Cid = Type.String({ pattern: '^b[a-z2-7]{20,200}$' })
const Uri = Type.String({ pattern: '^(ipfs|dataset)://[A-Za-z0-9._:/@-]{1,256}$' })
const IpfsUri = Type.String({ pattern: '^ipfs://b[a-z2-7]{20,200}$' })
const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' })
const U64 = Type.String({ pattern: '^(0|[1-9][0-9]{0,19})$', description: 'unsigned 64-bit integer, decimal' })
const Int = (description?: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...(description !== undefined ? { description } : {}) })
const TensorName = Type.String({ minLength: 1, maxLength: 128 })
const UriMap = (uri: typeof Uri | typeof IpfsUri) => Type.Record(TensorName, uri, { maxProperties: 64 })
const Attempt = Type.Integer({ minimum: 0, maximum: 0xfffffffe })
const Kind = Type.Union([Type.Literal('primary'), Type.Literal('verification'), Type.Literal('unverifiable')])

// ---- bodies ------------------------------------------------------------------------------------

export const ExecutionRequestBody = Type.Object({
  v: Type.Literal(1),
  executionId: Id,
  modelId: Cid,
  inputs: UriMap(Uri),
  requester: Peer,
  fee: U64,
  requestSlot: Int('slot at which the escrow (and request) was recorded on chain'),
  timestampMs: Int()
}, { additionalProperties: false })
export type ExecutionRequestBody = Static<typeof ExecutionRequestBody>

export const AssignmentVoteBody = Type.Object({
  v: Type.Literal(1),
  oracle: Peer,
  committeeEpoch: U64,
  executionId: Id,
  taskId: Id,
  attempt: Attempt,
  /** ballot within the attempt: a new ballot opens when the previous one expired or split */
  ballot: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  kind: Kind,
  node: Peer,
  /** nodes excluded for this task (failed attempts; the asserter for a verification), any order */
  blacklist: Type.Array(Peer, { maxItems: MAX_BLACKLIST, uniqueItems: true }),
  seedSlot: Int('request/trigger slot + K'),
  seed: Hex32,
  livenessRound: Int('the certified liveness round the selection used'),
  computeUnits: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  expirySlot: Int(),
  selection: Type.Object({
    ranked: Type.Array(Peer, { minItems: 1, maxItems: MAX_RANKED, uniqueItems: true }),
    eligible: Int('how many nodes were eligible')
  }, { additionalProperties: false }),
  digest: Hex32
}, { additionalProperties: false })
export type AssignmentVoteBody = Static<typeof AssignmentVoteBody>

export const AssignmentNoticeBody = Type.Object({
  v: Type.Literal(1),
  oracle: Peer,
  executionId: Id,
  taskId: Id,
  attempt: Attempt,
  kind: Kind,
  node: Peer,
  taskpack: Cid,
  inputs: UriMap(Uri),
  computeUnits: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  assignedSlot: Int(),
  deadlineMs: Int('unix time (ms) of the deadline recorded on chain'),
  timestampMs: Int()
}, { additionalProperties: false })
export type AssignmentNoticeBody = Static<typeof AssignmentNoticeBody>

export const CompletionBody = Type.Object({
  v: Type.Literal(1),
  node: Peer,
  executionId: Id,
  taskId: Id,
  attempt: Attempt,
  outputs: UriMap(IpfsUri),
  outputRoot: Hex32,
  startedAtMs: Int(),
  completedAtMs: Int(),
  timestampMs: Int()
}, { additionalProperties: false })
export type CompletionBody = Static<typeof CompletionBody>

export const FailureBody = Type.Object({
  v: Type.Literal(1),
  node: Peer,
  executionId: Id,
  taskId: Id,
  attempt: Attempt,
  reason: Type.String({ minLength: 1, maxLength: 1000 }),
  timestampMs: Int()
}, { additionalProperties: false })
export type FailureBody = Static<typeof FailureBody>

export type ExecutionMessage =
  | { type: typeof EXECUTION_REQUEST_KIND, body: ExecutionRequestBody }
  | { type: typeof ASSIGNMENT_NOTICE_KIND, body: AssignmentNoticeBody }
  | { type: typeof COMPLETION_KIND, body: CompletionBody }
  | { type: typeof FAILURE_KIND, body: FailureBody }

export interface AssignmentVote {
  body: AssignmentVoteBody
  /** Ed25519 over the raw 32-byte digest, for the program's Ed25519 instruction */
  digestSig: Uint8Array
}

const ExecutionWire = Type.Union([
  Type.Object({ type: Type.Literal(EXECUTION_REQUEST_KIND), body: ExecutionRequestBody, sig: Sig }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal(ASSIGNMENT_NOTICE_KIND), body: AssignmentNoticeBody, sig: Sig }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal(COMPLETION_KIND), body: CompletionBody, sig: Sig }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal(FAILURE_KIND), body: FailureBody, sig: Sig }, { additionalProperties: false })
])
const VoteWire = Type.Object({ type: Type.Literal(ASSIGNMENT_VOTE_KIND), body: AssignmentVoteBody, sig: Sig, digestSig: Sig }, { additionalProperties: false })

const ajv = new Ajv({ strict: false, allErrors: false })
const checkExecutionWire = ajv.compile(ExecutionWire)
const checkVoteWire = ajv.compile(VoteWire)

// ---- helpers -----------------------------------------------------------------------------------

export const DOMAIN_OUTPUT_ROOT = 'bitflow/output-root/v1'

/**
 * The output root a node commits to: SHA-256("bitflow/output-root/v1\n" || canonical JSON of
 * {name: uri}) as hex. It binds the completion to exactly these output URIs (content ids), so the
 * on-chain commitment H(outputRoot || salt) commits to the outputs.
 */
export function outputRoot (outputs: Readonly<Record<string, string>>): string {
  return createHash('sha256').update(`${DOMAIN_OUTPUT_ROOT}\n`).update(canonicalJson(outputs)).digest('hex')
}

type Signer = (bytes: Uint8Array) => Uint8Array
const U64_MAX = (1n << 64n) - 1n
/** base64 has 16 spellings of a 64-byte signature (unused low bits); only the canonical one is accepted */
const isCanonicalBase64 = (s: string): boolean => Buffer.from(s, 'base64').toString('base64') === s
/** the decimal u64 fields the schema's pattern cannot bound */
function outOfRangeU64 (msg: ExecutionMessage): string | undefined {
  if (msg.type === EXECUTION_REQUEST_KIND && BigInt(msg.body.fee) > U64_MAX) return 'fee'
  return undefined
}
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

function parse (data: Uint8Array, max: number, what: string): { ok: true, value: unknown } | { ok: false, verdict: Verdict<never> } {
  if (data.length > max) return { ok: false, verdict: reject(`${what} of ${data.length} bytes exceeds ${max}`) }
  try {
    return { ok: true, value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) }
  } catch {
    return { ok: false, verdict: reject(`${what} is not UTF-8 JSON`) }
  }
}

/** The `type` of a message without validating it (for routing on the committee topic); undefined if unreadable. */
export function peekMessageType (data: Uint8Array): string | undefined {
  if (data.length > EXECUTION_MESSAGE_MAX_BYTES) return undefined
  try {
    const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as unknown
    return v !== null && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string' ? (v as { type: string }).type : undefined
  } catch {
    return undefined
  }
}

function signerOf (m: ExecutionMessage): string {
  switch (m.type) {
    case EXECUTION_REQUEST_KIND: return m.body.requester
    case ASSIGNMENT_NOTICE_KIND: return m.body.oracle
    case COMPLETION_KIND: case FAILURE_KIND: return m.body.node
  }
}

// ---- encoding ----------------------------------------------------------------------------------

/** Encodes and signs a message of the execution topic; `sign` is the signer's Ed25519 (its identity must be the body's signer). */
export function encodeExecutionMessage (msg: ExecutionMessage, genesisHash: string, sign: Signer): Uint8Array {
  if (!checkExecutionWire({ type: msg.type, body: msg.body, sig: 'A'.repeat(86) + '==' })) {
    throw new ExecutionError('ERR_EXECUTION_BAD_EVENT', `${msg.type} does not match its schema: ${checkExecutionWire.errors?.[0]?.instancePath ?? ''} ${checkExecutionWire.errors?.[0]?.message ?? ''}`)
  }
  const sig = b64(sign(signingBytes(msg.type, genesisHash, msg.body)))
  return json({ type: msg.type, body: msg.body, sig })
}

/** Encodes an assignment vote: the envelope signature and the signature over the raw digest. */
export function encodeAssignmentVote (body: AssignmentVoteBody, genesisHash: string, sign: Signer): Uint8Array {
  if (!checkVoteWire({ type: ASSIGNMENT_VOTE_KIND, body, sig: 'A'.repeat(86) + '==', digestSig: 'A'.repeat(86) + '==' })) {
    throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', `assignment vote does not match its schema: ${checkVoteWire.errors?.[0]?.instancePath ?? ''} ${checkVoteWire.errors?.[0]?.message ?? ''}`)
  }
  const sig = b64(sign(signingBytes(ASSIGNMENT_VOTE_KIND, genesisHash, body)))
  const digestSig = b64(sign(fromHex(body.digest)))
  return json({ type: ASSIGNMENT_VOTE_KIND, body, sig, digestSig })
}

// ---- the assignment digest ---------------------------------------------------------------------

/**
 * What programs/client `assignmentDigest` needs besides the network id (program id and genesis
 * hash, which the daemon's adapter adds). Plain bytes, so protocols/ does not depend on
 * @solana/web3.js. `blacklist` is in any order: the adapter passes it through `canonicalBlacklist`
 * before `blacklistHash`, as the program requires.
 */
export interface AssignmentDigestInput {
  committeeEpoch: bigint
  executionId: Uint8Array
  taskId: Uint8Array
  attempt: number
  node: Uint8Array
  /** 0 primary, 1 verification */
  kind: 0 | 1 | 2
  blacklist: Uint8Array[]
  seed: Uint8Array
  livenessRound: bigint
  computeUnits: bigint
  expirySlot: bigint
}

/**
 * The daemon supplies this, e.g.
 * `f => assignmentDigest({ ...f, programId, genesisHash, blacklistHash: blacklistHash(canonicalBlacklist(f.blacklist)) })`.
 */
export type AssignmentDigestFn = (fields: AssignmentDigestInput) => Uint8Array

/** The digest input of a vote body; undefined when a peer id carries no Ed25519 key. */
export function voteDigestInput (body: Omit<AssignmentVoteBody, 'digest' | 'selection' | 'oracle' | 'ballot' | 'v'>, publicKeyOf: (peerId: string) => Uint8Array | undefined): AssignmentDigestInput | undefined {
  const node = publicKeyOf(body.node)
  if (node === undefined) return undefined
  const blacklist: Uint8Array[] = []
  for (const p of body.blacklist) {
    const k = publicKeyOf(p)
    if (k === undefined) return undefined
    blacklist.push(k)
  }
  return {
    committeeEpoch: BigInt(body.committeeEpoch),
    executionId: executionKey(body.executionId),
    taskId: taskKey(body.taskId),
    attempt: body.attempt,
    node,
    kind: ASSIGNMENT_ROLE[body.kind],
    blacklist,
    seed: fromHex(body.seed),
    livenessRound: BigInt(body.livenessRound),
    computeUnits: BigInt(body.computeUnits),
    expirySlot: BigInt(body.expirySlot)
  }
}

/** Fills in `digest` of a vote body from its fields. */
export function withDigest (body: Omit<AssignmentVoteBody, 'digest'>, publicKeyOf: (peerId: string) => Uint8Array | undefined, digestOf: AssignmentDigestFn): AssignmentVoteBody {
  const input = voteDigestInput(body, publicKeyOf)
  if (input === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'the node or a blacklisted peer id carries no Ed25519 key')
  const digest = digestOf(input)
  if (digest.length !== 32) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'the assignment digest is 32 bytes')
  return { ...body, digest: Buffer.from(digest).toString('hex') }
}

// ---- validation --------------------------------------------------------------------------------

export interface ExecutionTopicContext {
  genesisHash: string
  nowMs: number
  /** how far a timestamp may be from now (either way) */
  clockWindowMs: number
  /** the chain's current slot, as last seen */
  currentSlot: number
  /** a request whose slot is older than this many slots is ignored (the execution is then learned from the chain) */
  maxRequestAgeSlots: number
  /** a request slot this far ahead of the current slot is ignored */
  maxSlotsAhead: number
  committee: ReadonlySet<string>
  publicKeyOf: (peerId: string) => Uint8Array | undefined
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
}

/**
 * Validates a message of the execution topic. Order: size, JSON, schema, signer (key from its peer
 * id), signature, the message's own consistency, committee membership (notices), freshness. Any
 * peer may relay a message: the signature, not the gossip publisher, authenticates its author.
 */
export function validateExecutionMessage (data: Uint8Array, ctx: ExecutionTopicContext): Verdict<ExecutionMessage> {
  const p = parse(data, EXECUTION_MESSAGE_MAX_BYTES, 'execution message')
  if (!p.ok) return p.verdict
  if (!checkExecutionWire(p.value)) {
    const e = checkExecutionWire.errors?.[0]
    return reject(`execution message does not match the schema at '${e?.instancePath ?? ''}': ${e?.message ?? ''}`)
  }
  const wire = p.value as ExecutionMessage & { sig: string }
  const msg = { type: wire.type, body: wire.body } as ExecutionMessage
  const signer = signerOf(msg)
  const key = ctx.publicKeyOf(signer)
  if (key === undefined) return reject(`${msg.type} signer ${signer} carries no Ed25519 key`)
  if (!isCanonicalBase64(wire.sig)) return reject(`${msg.type} signature is not canonical base64`)
  const bad = outOfRangeU64(msg)
  if (bad !== undefined) return reject(`${msg.type} ${bad} exceeds 2^64 - 1`)
  if (!ctx.verify(key, signingBytes(msg.type, ctx.genesisHash, msg.body), fromB64(wire.sig))) {
    return reject(`${msg.type} signature is invalid for this network`)
  }
  const inWindow = (ts: number): boolean => Math.abs(ctx.nowMs - ts) <= ctx.clockWindowMs
  switch (msg.type) {
    case EXECUTION_REQUEST_KIND: {
      const b = msg.body
      if (Object.keys(b.inputs).length === 0) return reject('execution request without inputs')
      if (b.requestSlot + ctx.maxRequestAgeSlots < ctx.currentSlot) return ignore(`execution request from slot ${b.requestSlot} is older than ${ctx.maxRequestAgeSlots} slots`)
      if (b.requestSlot > ctx.currentSlot + ctx.maxSlotsAhead) return ignore(`execution request slot ${b.requestSlot} is ahead of the chain (${ctx.currentSlot})`)
      break
    }
    case ASSIGNMENT_NOTICE_KIND: {
      const b = msg.body
      if (!ctx.committee.has(b.oracle)) return reject('assignment notice from a peer that is not a committee member')
      if (!inWindow(b.timestampMs)) return ignore('assignment notice timestamp is outside the clock window')
      if (b.deadlineMs + ctx.clockWindowMs < ctx.nowMs) return ignore('assignment notice for an attempt whose deadline passed')
      break
    }
    case COMPLETION_KIND: {
      const b = msg.body
      if (b.completedAtMs < b.startedAtMs) return reject('completion finished before it started')
      if (outputRoot(b.outputs) !== b.outputRoot) return reject('completion output root does not match its outputs')
      if (Object.keys(b.outputs).length === 0) return reject('completion without outputs')
      if (!inWindow(b.timestampMs)) return ignore('completion timestamp is outside the clock window')
      break
    }
    case FAILURE_KIND: {
      if (!inWindow(msg.body.timestampMs)) return ignore('failure report timestamp is outside the clock window')
      break
    }
  }
  return accept(msg)
}

export interface VoteContext {
  genesisHash: string
  committee: ReadonlySet<string>
  /** the committee epoch the chain is in; votes for another epoch cannot settle */
  committeeEpoch: bigint
  currentSlot: number
  /** a vote whose expiry slot is further ahead than this is ignored (an oracle sets a short expiry) */
  maxExpiryAheadSlots: number
  publicKeyOf: (peerId: string) => Uint8Array | undefined
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
  digestOf: AssignmentDigestFn
}

/**
 * Validates an assignment vote from the committee topic: size, schema, membership, the envelope
 * signature, the digest recomputed from the fields, the signature over the digest, the selection's
 * consistency (the node is among the ranked, none of them blacklisted) and freshness (epoch, expiry).
 */
export function validateAssignmentVote (data: Uint8Array, ctx: VoteContext): Verdict<AssignmentVote> {
  const p = parse(data, VOTE_MAX_BYTES, 'assignment vote')
  if (!p.ok) return p.verdict
  if (!checkVoteWire(p.value)) {
    const e = checkVoteWire.errors?.[0]
    return reject(`assignment vote does not match the schema at '${e?.instancePath ?? ''}': ${e?.message ?? ''}`)
  }
  const wire = p.value as { body: AssignmentVoteBody, sig: string, digestSig: string }
  const b = wire.body
  if (!isCanonicalBase64(wire.sig) || !isCanonicalBase64(wire.digestSig)) return reject('assignment vote signature is not canonical base64')
  if (BigInt(b.committeeEpoch) > U64_MAX) return reject('assignment vote committeeEpoch exceeds 2^64 - 1')
  if (!ctx.committee.has(b.oracle)) return reject('assignment vote from a peer that is not a committee member')
  const key = ctx.publicKeyOf(b.oracle)
  if (key === undefined || !ctx.verify(key, signingBytes(ASSIGNMENT_VOTE_KIND, ctx.genesisHash, b), fromB64(wire.sig))) {
    return reject('assignment vote signature is invalid for this network')
  }
  const input = voteDigestInput(b, ctx.publicKeyOf)
  if (input === undefined) return reject('assignment vote names a peer id without an Ed25519 key')
  const digest = ctx.digestOf(input)
  if (Buffer.from(digest).toString('hex') !== b.digest) return reject('assignment vote digest does not match its fields')
  const digestSig = fromB64(wire.digestSig)
  if (!ctx.verify(key, digest, digestSig)) return reject('assignment vote signature over the digest is invalid')
  if (!b.selection.ranked.includes(b.node)) return reject('assignment vote assigns a node its own selection does not rank')
  if (b.selection.ranked.some(n => b.blacklist.includes(n))) return reject('assignment vote ranks a blacklisted node')
  if (b.selection.eligible < b.selection.ranked.length) return reject('assignment vote ranks more nodes than were eligible')
  if (BigInt(b.committeeEpoch) !== ctx.committeeEpoch) return ignore(`assignment vote for committee epoch ${b.committeeEpoch}, the chain is at ${ctx.committeeEpoch}`)
  if (b.expirySlot < ctx.currentSlot) return ignore('assignment vote expired')
  if (b.expirySlot > ctx.currentSlot + ctx.maxExpiryAheadSlots) return ignore(`assignment vote expires more than ${ctx.maxExpiryAheadSlots} slots ahead of the current slot`)
  return accept({ body: b, digestSig })
}
