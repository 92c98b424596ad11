/**
 * Slash votes (issue 8): a committee oracle's signed statement that one party of a verified attempt
 * committed fraud, carried on the committee topic (`/bitflow/<network>/committee/1`) next to the
 * assignment votes.
 *
 * Wire: UTF-8 JSON `{type: 'slash-vote', body, sig, digestSig}`.
 *  - `sig`: the oracle's Ed25519 signature over signingBytes('slash-vote', genesisHash, body)
 *    (envelope.ts: domain-separated by protocol version, message kind and genesis hash);
 *  - `digestSig`: its Ed25519 signature over the raw 32-byte slash digest of the settlement program
 *    (programs/client slashDigest: "bitflow/slash/v1" || program id || genesis hash || committee epoch
 *    || execution || task || attempt || accused || both commitments || both output roots || bounty
 *    account || expiry slot) — exactly what the program's Ed25519 instruction checks, so a quorum of
 *    matching votes goes on chain as is (RecordSlash).
 *
 * The body carries every field of that digest, plus what the digest does not need but a submitter
 * and a reader do (the verifier's attempt, the prover, a reason). Replays are useless: another
 * network has another genesis hash (both signatures), a vote expires with its expiry slot (the program
 * refuses it after that slot) and belongs to one committee epoch, and the program creates the slash
 * record of (execution, task, attempt, accused) once.
 *
 * Ballots. The oracles of a dispute derive the expiry slot from the chain (an anchor slot of the
 * disputed attempt plus a window per ballot), so matching votes share a digest. When a ballot
 * expires before it reaches a quorum, they vote again in the next; different ballots are not
 * equivocation. Two different digests from one oracle in one ballot are: that oracle's votes in the
 * ballot are dropped.
 *
 * Pure: no I/O, no clocks; everything about the world comes in a context. Validation returns
 * accept / ignore / reject (validation.ts): forged, malformed or lying votes are rejected; stale ones
 * (another epoch, expired, too far ahead) are ignored.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { signingBytes } from '../envelope.js'
import { accept, ignore, reject, type Verdict } from '../validation.js'
import { ExecutionError } from './errors.js'
import { ID_PATTERN, executionKey, taskKey } from './ids.js'

export const SLASH_VOTE_KIND = 'slash-vote'
export const SLASH_VOTE_MAX_BYTES = 4 * 1024

const Sig = Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' })
const Id = Type.String({ minLength: 1, maxLength: 128, pattern: ID_PATTERN })
const Peer = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9]+$' })
const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' })
const U64 = Type.String({ pattern: '^(0|[1-9][0-9]{0,19})$', description: 'unsigned 64-bit integer, decimal' })
const Int = (description?: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...(description !== undefined ? { description } : {}) })
const Attempt = Type.Integer({ minimum: 0, maximum: 0xfffffffe })

export const SlashVoteBody = Type.Object({
  v: Type.Literal(1),
  oracle: Peer,
  committeeEpoch: U64,
  executionId: Id,
  taskId: Id,
  /** the primary attempt whose verification disagreed (the slash key's attempt) */
  attempt: Attempt,
  /** the verification attempt of `attempt` */
  verifierAttempt: Attempt,
  ballot: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  /** the party found at fault (its operator peer id) */
  accused: Peer,
  /** the other party, whose owner receives the bounty */
  prover: Peer,
  asserterCommitment: Hex32,
  verifierCommitment: Hex32,
  asserterOutputRoot: Hex32,
  verifierOutputRoot: Hex32,
  /** the prover owner's token account of the stake mint (32 bytes, hex) */
  bountyTo: Hex32,
  expirySlot: Int(),
  /** why (the comparison that decided); for people, not covered by the digest */
  reason: Type.String({ maxLength: 500 }),
  digest: Hex32
}, { additionalProperties: false })
export type SlashVoteBody = Static<typeof SlashVoteBody>

export interface SlashVote {
  body: SlashVoteBody
  /** Ed25519 over the raw 32-byte slash digest, for the program's Ed25519 instruction */
  digestSig: Uint8Array
}

const SlashVoteWire = Type.Object({ type: Type.Literal(SLASH_VOTE_KIND), body: SlashVoteBody, sig: Sig, digestSig: Sig }, { additionalProperties: false })
const ajv = new Ajv({ strict: false, allErrors: false })
const checkWire = ajv.compile(SlashVoteWire)

/**
 * What programs/client `slashDigest` needs besides the network id (program id and genesis hash,
 * which the daemon's adapter adds). Plain bytes, so protocols/ does not depend on @solana/web3.js.
 */
export interface SlashDigestInput {
  committeeEpoch: bigint
  executionId: Uint8Array
  taskId: Uint8Array
  attempt: number
  /** the accused node's operator key */
  accused: Uint8Array
  asserterCommitment: Uint8Array
  verifierCommitment: Uint8Array
  asserterOutputRoot: Uint8Array
  verifierOutputRoot: Uint8Array
  bountyTo: Uint8Array
  expirySlot: bigint
}

/** The daemon supplies e.g. `f => slashDigest({ ...f, programId, genesisHash })`. */
export type SlashDigestFn = (fields: SlashDigestInput) => Uint8Array

type Signer = (bytes: Uint8Array) => Uint8Array
const U64_MAX = (1n << 64n) - 1n
const isCanonicalBase64 = (s: string): boolean => Buffer.from(s, 'base64').toString('base64') === s
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** The digest input of a vote body; undefined when the accused peer id carries no Ed25519 key. */
export function slashDigestInput (body: Omit<SlashVoteBody, 'digest'>, publicKeyOf: (peerId: string) => Uint8Array | undefined): SlashDigestInput | undefined {
  const accused = publicKeyOf(body.accused)
  if (accused === undefined) return undefined
  return {
    committeeEpoch: BigInt(body.committeeEpoch),
    executionId: executionKey(body.executionId),
    taskId: taskKey(body.taskId),
    attempt: body.attempt,
    accused,
    asserterCommitment: fromHex(body.asserterCommitment),
    verifierCommitment: fromHex(body.verifierCommitment),
    asserterOutputRoot: fromHex(body.asserterOutputRoot),
    verifierOutputRoot: fromHex(body.verifierOutputRoot),
    bountyTo: fromHex(body.bountyTo),
    expirySlot: BigInt(body.expirySlot)
  }
}

/** Fills in `digest` of a slash vote body from its fields. */
export function withSlashDigest (body: Omit<SlashVoteBody, 'digest'>, publicKeyOf: (peerId: string) => Uint8Array | undefined, digestOf: SlashDigestFn): SlashVoteBody {
  const input = slashDigestInput(body, publicKeyOf)
  if (input === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'the accused peer id carries no Ed25519 key')
  const digest = digestOf(input)
  if (digest.length !== 32) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'the slash digest is 32 bytes')
  return { ...body, digest: toHex(digest) }
}

/** Encodes and signs a slash vote: the envelope signature and the signature over the raw digest. */
export function encodeSlashVote (body: SlashVoteBody, genesisHash: string, sign: Signer): Uint8Array {
  if (!checkWire({ type: SLASH_VOTE_KIND, body, sig: 'A'.repeat(86) + '==', digestSig: 'A'.repeat(86) + '==' })) {
    throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', `slash vote does not match its schema: ${checkWire.errors?.[0]?.instancePath ?? ''} ${checkWire.errors?.[0]?.message ?? ''}`)
  }
  const sig = b64(sign(signingBytes(SLASH_VOTE_KIND, genesisHash, body)))
  const digestSig = b64(sign(fromHex(body.digest)))
  return new TextEncoder().encode(JSON.stringify({ type: SLASH_VOTE_KIND, body, sig, digestSig }))
}

export interface SlashVoteContext {
  genesisHash: string
  committee: ReadonlySet<string>
  /** the committee epoch the chain is in; votes for another epoch cannot settle */
  committeeEpoch: bigint
  currentSlot: number
  /** a vote whose expiry slot is further ahead than this is ignored */
  maxExpiryAheadSlots: number
  publicKeyOf: (peerId: string) => Uint8Array | undefined
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
  digestOf: SlashDigestFn
}

/**
 * Validates a slash vote from the committee topic. Order: size, JSON, schema, signature encoding,
 * membership, the envelope signature, the vote's own consistency (two distinct parties, different
 * output roots — the program's evidence — and different commitments), the digest recomputed from the
 * fields, the signature over the digest, then freshness (epoch, expiry).
 */
export function validateSlashVote (data: Uint8Array, ctx: SlashVoteContext): Verdict<SlashVote> {
  if (data.length > SLASH_VOTE_MAX_BYTES) return reject(`slash vote of ${data.length} bytes exceeds ${SLASH_VOTE_MAX_BYTES}`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    return reject('slash vote is not UTF-8 JSON')
  }
  if (!checkWire(value)) {
    const e = checkWire.errors?.[0]
    return reject(`slash vote does not match the schema at '${e?.instancePath ?? ''}': ${e?.message ?? ''}`)
  }
  const wire = value as { body: SlashVoteBody, sig: string, digestSig: string }
  const b = wire.body
  if (!isCanonicalBase64(wire.sig) || !isCanonicalBase64(wire.digestSig)) return reject('slash vote signature is not canonical base64')
  if (BigInt(b.committeeEpoch) > U64_MAX) return reject('slash vote committeeEpoch exceeds 2^64 - 1')
  if (!ctx.committee.has(b.oracle)) return reject('slash vote from a peer that is not a committee member')
  const key = ctx.publicKeyOf(b.oracle)
  if (key === undefined || !ctx.verify(key, signingBytes(SLASH_VOTE_KIND, ctx.genesisHash, b), fromB64(wire.sig))) {
    return reject('slash vote signature is invalid for this network')
  }
  if (b.accused === b.prover) return reject('slash vote names the accused as its own prover')
  if (b.verifierAttempt === b.attempt) return reject('slash vote names the disputed attempt as its own verification')
  if (b.asserterOutputRoot === b.verifierOutputRoot) return reject('slash vote without evidence: the two output roots are equal')
  if (b.asserterCommitment === b.verifierCommitment) return reject('slash vote with equal commitments (the program refuses a copied commitment)')
  if (ctx.publicKeyOf(b.prover) === undefined) return reject('slash vote names a prover without an Ed25519 key')
  const input = slashDigestInput(b, ctx.publicKeyOf)
  if (input === undefined) return reject('slash vote names an accused peer id without an Ed25519 key')
  const digest = ctx.digestOf(input)
  if (toHex(digest) !== b.digest) return reject('slash vote digest does not match its fields')
  const digestSig = fromB64(wire.digestSig)
  if (!ctx.verify(key, digest, digestSig)) return reject('slash vote signature over the digest is invalid')
  if (BigInt(b.committeeEpoch) !== ctx.committeeEpoch) return ignore(`slash vote for committee epoch ${b.committeeEpoch}, the chain is at ${ctx.committeeEpoch}`)
  if (b.expirySlot < ctx.currentSlot) return ignore('slash vote expired')
  if (b.expirySlot > ctx.currentSlot + ctx.maxExpiryAheadSlots) return ignore(`slash vote expires more than ${ctx.maxExpiryAheadSlots} slots ahead of the current slot`)
  return accept({ body: b, digestSig })
}

// ---- collecting ---------------------------------------------------------------------------------

/** Key of one slash: the program's PDA key (execution, task, attempt, accused). Ids cannot contain '|'. */
export function slashKey (executionId: string, taskId: string, attempt: number, accused: string): string {
  return `${executionId}|${taskId}|${attempt}|${accused}`
}

export const slashKeyOf = (b: Pick<SlashVoteBody, 'executionId' | 'taskId' | 'attempt' | 'accused'>): string => slashKey(b.executionId, b.taskId, b.attempt, b.accused)

export type AddSlashVoteResult = 'added' | 'duplicate' | 'equivocation' | 'not-member'

export interface SlashQuorum {
  key: string
  ballot: number
  digest: string
  /** the first matching vote's body in committee order */
  body: SlashVoteBody
  /** matching signatures over the digest, in committee order: the Ed25519 instruction's entries */
  signatures: Array<{ oracle: string, signature: Uint8Array }>
}

interface Ballot { votes: Map<string, SlashVote>, equivocators: Set<string> }

/** Slash votes per slash key and ballot; a quorum is `threshold` votes over one digest in one ballot. */
export class SlashVoteCollector {
  readonly members: readonly string[]
  readonly threshold: number
  readonly #index: Map<string, number>
  readonly #slashes = new Map<string, Map<number, Ballot>>()

  constructor (members: readonly string[], threshold: number) {
    if (new Set(members).size !== members.length) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'committee members must be distinct')
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > members.length) {
      throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', `threshold ${threshold} is not within 1..${members.length}`)
    }
    this.members = [...members]
    this.threshold = threshold
    this.#index = new Map(members.map((m, i) => [m, i]))
  }

  /** Adds a validated vote. */
  add (vote: SlashVote): AddSlashVoteResult {
    const b = vote.body
    if (!this.#index.has(b.oracle)) return 'not-member'
    const key = slashKeyOf(b)
    let ballots = this.#slashes.get(key)
    if (ballots === undefined) { ballots = new Map(); this.#slashes.set(key, ballots) }
    let ballot = ballots.get(b.ballot)
    if (ballot === undefined) { ballot = { votes: new Map(), equivocators: new Set() }; ballots.set(b.ballot, ballot) }
    if (ballot.equivocators.has(b.oracle)) return 'equivocation'
    const existing = ballot.votes.get(b.oracle)
    if (existing !== undefined) {
      if (existing.body.digest === b.digest) return 'duplicate'
      ballot.votes.delete(b.oracle)
      ballot.equivocators.add(b.oracle)
      return 'equivocation'
    }
    ballot.votes.set(b.oracle, vote)
    return 'added'
  }

  /** Slash keys with any vote. */
  keys (): string[] { return [...this.#slashes.keys()] }

  /** Ballots of a slash key, ascending, with the voters of each. */
  ballots (key: string): Array<{ ballot: number, voters: string[], expirySlot: number }> {
    const out: Array<{ ballot: number, voters: string[], expirySlot: number }> = []
    for (const [ballot, b] of this.#slashes.get(key) ?? []) {
      const first = [...b.votes.values()][0]
      out.push({ ballot, voters: [...b.votes.keys()].sort((x, y) => this.#index.get(x)! - this.#index.get(y)!), expirySlot: first?.body.expirySlot ?? 0 })
    }
    return out.sort((a, b) => a.ballot - b.ballot)
  }

  /** The quorum of the lowest ballot that has one and (given `minExpirySlot`) expires no earlier. */
  quorum (key: string, minExpirySlot?: number): SlashQuorum | undefined {
    const ballots = this.#slashes.get(key)
    if (ballots === undefined) return undefined
    for (const ballot of [...ballots.keys()].sort((a, b) => a - b)) {
      const votes = ballots.get(ballot)!.votes
      const byDigest = new Map<string, string[]>()
      for (const [oracle, v] of votes) byDigest.set(v.body.digest, [...(byDigest.get(v.body.digest) ?? []), oracle])
      for (const [digest, oracles] of byDigest) {
        if (oracles.length < this.threshold) continue
        oracles.sort((x, y) => this.#index.get(x)! - this.#index.get(y)!)
        const body = votes.get(oracles[0]!)!.body
        if (minExpirySlot !== undefined && body.expirySlot < minExpirySlot) continue
        return { key, ballot, digest, body, signatures: oracles.map(o => ({ oracle: o, signature: votes.get(o)!.digestSig })) }
      }
    }
    return undefined
  }

  /** Oracles that equivocated in any ballot of the slash key. */
  equivocators (key: string): string[] {
    const out = new Set<string>()
    for (const b of this.#slashes.get(key)?.values() ?? []) for (const o of b.equivocators) out.add(o)
    return [...out]
  }

  forget (key: string): void { this.#slashes.delete(key) }

  get size (): number { return this.#slashes.size }
}
