import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { signingBytes } from '../envelope.js'
import { accept, ignore, reject, type Verdict } from '../validation.js'

export const HEARTBEAT_KIND = 'heartbeat'
export const HEARTBEAT_MAX_BYTES = 8 * 1024
export const NODE_STATUSES = ['available', 'busy', 'draining'] as const
export type NodeStatus = typeof NODE_STATUSES[number]

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:/@-]+$' })
/**
 * A non-negative integer that a double holds exactly. Bounded so that a peer cannot send 1e300 or
 * 2^64 (which JSON numbers allow and an unbounded integer schema accepts): such a value does not
 * round-trip, and `seq + 1 === seq` would break ordering.
 */
export const SafeUint = (options: { description?: string } = {}) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...options })

export const Gpu = Type.Object({
  model: Type.String({ minLength: 1, maxLength: 128 }),
  vramBytes: SafeUint(),
  simulated: Type.Optional(Type.Boolean({ description: 'advertised with --simulate-gpu on a local network' }))
}, { additionalProperties: false })
export type Gpu = Static<typeof Gpu>

export const Hardware = Type.Object({
  cpuModel: Type.String({ maxLength: 256 }),
  cpuCores: Type.Integer({ minimum: 1, maximum: 4096 }),
  ramBytes: SafeUint(),
  gpus: Type.Array(Gpu, { maxItems: 64 })
}, { additionalProperties: false })
export type Hardware = Static<typeof Hardware>

export const Capacity = Type.Object({
  taskSlots: Type.Integer({ minimum: 0, maximum: 4096 }),
  freeSlots: Type.Integer({ minimum: 0, maximum: 4096 }),
  freeMemoryBytes: SafeUint()
}, { additionalProperties: false })
export type Capacity = Static<typeof Capacity>

export const HeartbeatBody = Type.Object({
  v: Type.Literal(1),
  peerId: Type.String({ minLength: 1, maxLength: 128 }),
  bootEpoch: SafeUint({ description: 'increases at every daemon start' }),
  seq: SafeUint({ description: 'increases at every heartbeat within a boot epoch' }),
  timestampMs: SafeUint(),
  status: Type.Union(NODE_STATUSES.map(s => Type.Literal(s))),
  capacity: Capacity,
  hardware: Hardware,
  specializations: Type.Array(Id, { maxItems: 64, uniqueItems: true }),
  datasets: Type.Array(Id, { maxItems: 256, uniqueItems: true }),
  software: Type.String({ maxLength: 64 }),
  roles: Type.Optional(Type.Array(Type.Union([Type.Literal('oracle'), Type.Literal('node'), Type.Literal('validator')]), { maxItems: 3, uniqueItems: true, description: 'the daemon\'s roles (verification is assigned to validators)' }))
}, { additionalProperties: false })
export type HeartbeatBody = Static<typeof HeartbeatBody>

const SignedHeartbeat = Type.Object({
  body: HeartbeatBody,
  sig: Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' })
}, { additionalProperties: false })
type SignedHeartbeat = Static<typeof SignedHeartbeat>

const checkSigned = new Ajv({ strict: false, allErrors: false }).compile(SignedHeartbeat)

/**
 * True when `sig` is the one canonical base64 text of its 64 bytes. The schema's pattern admits 16
 * spellings of each signature (the last character carries 4 unused bits); only the canonical one is
 * accepted, so a relay cannot make "new" copies of a signed message.
 */
export function isCanonicalSignature (sig: string): boolean {
  return Buffer.from(sig, 'base64').toString('base64') === sig
}

export function encodeHeartbeat (body: HeartbeatBody, genesisHash: string, sign: (bytes: Uint8Array) => Uint8Array): Uint8Array {
  const sig = Buffer.from(sign(signingBytes(HEARTBEAT_KIND, genesisHash, body))).toString('base64')
  return new TextEncoder().encode(JSON.stringify({ body, sig }))
}

/** What validation needs to know about the world; passed in so validation stays pure. */
export interface HeartbeatContext {
  genesisHash: string
  nowMs: number
  clockWindowMs: number
  /** public key of a peer id, or undefined when it does not embed an Ed25519 key */
  publicKeyOf: (peerId: string) => Uint8Array | undefined
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
  isAdmitted: (peerId: string) => boolean
  /** newest (bootEpoch, seq, timestampMs) accepted from this peer */
  lastSeen: (peerId: string) => { bootEpoch: number, seq: number, timestampMs: number } | undefined
  /** consumes one token from the peer's heartbeat budget; false when over the rate limit */
  takeRateToken: (peerId: string) => boolean
  /** how far behind the newest accepted heartbeat an older one may be and still count as reordering */
  reorderToleranceMs: number
}

/**
 * Validates a heartbeat received over gossip. `from` is the peer gossipsub authenticated as the
 * publisher. Order: size, JSON, schema (with free slots <= task slots and the canonical signature
 * text), signer == subject, signature, clock window, admission, replay, rate limit. A forged, oversized, malformed or replayed heartbeat is rejected so that
 * gossipsub scoring penalizes whoever sent it; a heartbeat that is merely stale, from the future,
 * reordered or from an identity that is not admitted is ignored.
 */
export function validateHeartbeat (data: Uint8Array, from: string, ctx: HeartbeatContext): Verdict<HeartbeatBody> {
  if (data.length > HEARTBEAT_MAX_BYTES) return reject(`heartbeat of ${data.length} bytes exceeds ${HEARTBEAT_MAX_BYTES}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    return reject('heartbeat is not UTF-8 JSON')
  }
  if (!checkSigned(parsed)) {
    const e = checkSigned.errors?.[0]
    return reject(`heartbeat does not match the schema at '${e?.instancePath ?? ''}': ${e?.message ?? ''}`)
  }
  const { body, sig } = parsed as SignedHeartbeat
  if (body.capacity.freeSlots > body.capacity.taskSlots) return reject('heartbeat claims more free slots than task slots')
  if (!isCanonicalSignature(sig)) return reject('heartbeat signature is not canonical base64')
  if (body.peerId !== from) return reject('heartbeat is about another peer than its publisher')
  const publicKey = ctx.publicKeyOf(body.peerId)
  if (publicKey === undefined) return reject('heartbeat peer id carries no Ed25519 key')
  if (!ctx.verify(publicKey, signingBytes(HEARTBEAT_KIND, ctx.genesisHash, body), Buffer.from(sig, 'base64'))) {
    return reject('heartbeat signature is invalid for this network')
  }
  if (Math.abs(ctx.nowMs - body.timestampMs) > ctx.clockWindowMs) return ignore('heartbeat timestamp is outside the clock window')
  if (!ctx.isAdmitted(body.peerId)) return ignore('heartbeat from a node that is not admitted')
  const last = ctx.lastSeen(body.peerId)
  if (last !== undefined) {
    const newer = body.bootEpoch > last.bootEpoch || (body.bootEpoch === last.bootEpoch && body.seq > last.seq)
    if (!newer) {
      const duplicate = body.bootEpoch === last.bootEpoch && body.seq === last.seq
      if (duplicate) return ignore('heartbeat already seen')
      if (body.bootEpoch === last.bootEpoch && last.timestampMs - body.timestampMs <= ctx.reorderToleranceMs) {
        return ignore('heartbeat arrived after a newer one (reordered)')
      }
      return reject('replayed heartbeat: an older (boot epoch, sequence) than one already accepted')
    }
  }
  if (!ctx.takeRateToken(body.peerId)) return reject('heartbeat rate limit exceeded')
  return accept(body)
}
