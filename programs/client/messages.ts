/**
 * Canonical messages of the settlement program, byte for byte as programs/settlement/src/message.c
 * rebuilds them, and the pure economic helpers that mirror the program's arithmetic. Shared by the
 * committee (which signs), the daemon (which checks) and the tests. No I/O, no chain access.
 *
 * A message is the concatenation of its fields without separators; integers are little-endian; each
 * starts with its own domain string and (for signed messages) the program id and the network's
 * genesis hash. Committee members sign the SHA-256 digest of the message with Ed25519.
 */
import { createHash } from 'node:crypto'
import type { PublicKey } from '@solana/web3.js'
import { BPS, PPM, type Params } from './settlement.js'

export const DOMAIN_ASSIGNMENT = 'bitflow/assignment/v1'
export const DOMAIN_COMMITTEE = 'bitflow/committee/v1'
export const DOMAIN_SLASH = 'bitflow/slash/v1'
export const DOMAIN_BLACKLIST = 'bitflow/blacklist/v1'
export const DOMAIN_SEED = 'bitflow/seed/v1'
export const DOMAIN_SAMPLE = 'bitflow/sample/v1'

export type Bytes32 = Uint8Array
type KeyLike = PublicKey | Uint8Array

const enc = new TextEncoder()
const bytes = (k: KeyLike): Uint8Array => (k instanceof Uint8Array ? k : k.toBytes())

function b32 (k: KeyLike, what: string): Uint8Array {
  const b = bytes(k)
  if (b.length !== 32) throw new RangeError(`${what} must be 32 bytes`)
  return b
}
function u8 (v: number): Uint8Array { return Uint8Array.of(v & 0xff) }
function u32 (v: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, v >>> 0, true)
  return b
}
function u64 (v: bigint): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true)
  return b
}
function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

export function sha256 (...parts: Uint8Array[]): Bytes32 {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** The asserter's (or verifier's) commitment H(outputRoot || salt). */
export function commitment (outputRoot: Bytes32, salt: Bytes32): Bytes32 {
  return sha256(b32(outputRoot, 'output root'), b32(salt, 'salt'))
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** A blacklist in the program's canonical order: operator keys, strictly ascending bytes, no repeats. */
export function canonicalBlacklist (keys: KeyLike[]): Uint8Array[] {
  const sorted = keys.map(k => b32(k, 'blacklisted key')).sort(compareBytes)
  return sorted.filter((k, i) => i === 0 || compareBytes(sorted[i - 1]!, k) !== 0)
}

/** H("bitflow/blacklist/v1" || count u8 || keys), keys in canonical order. */
export function blacklistHash (keys: KeyLike[]): Bytes32 {
  const list = keys.map(k => b32(k, 'blacklisted key'))
  return sha256(enc.encode(DOMAIN_BLACKLIST), u8(list.length), ...list)
}

export interface NetworkId {
  programId: PublicKey
  genesisHash: Bytes32
}

export interface AssignmentMessageFields extends NetworkId {
  committeeEpoch: bigint
  executionId: Bytes32
  taskId: Bytes32
  attempt: number
  /** the node's operator key (its daemon identity) */
  node: KeyLike
  /** 0 primary, 1 verification, 2 unverifiable primary */
  kind: number
  blacklistHash: Bytes32
  seed: Bytes32
  livenessRound: bigint
  computeUnits: bigint
  expirySlot: bigint
}

export function assignmentMessage (f: AssignmentMessageFields): Uint8Array {
  return concat([
    enc.encode(DOMAIN_ASSIGNMENT), f.programId.toBytes(), b32(f.genesisHash, 'genesis hash'), u64(f.committeeEpoch),
    b32(f.executionId, 'execution id'), b32(f.taskId, 'task id'), u32(f.attempt), b32(f.node, 'node'), u8(f.kind),
    b32(f.blacklistHash, 'blacklist hash'), b32(f.seed, 'seed'), u64(f.livenessRound), u64(f.computeUnits), u64(f.expirySlot)
  ])
}

/** The 32 bytes committee members sign for an assignment. */
export function assignmentDigest (f: AssignmentMessageFields): Bytes32 { return sha256(assignmentMessage(f)) }

export interface CommitteeMessageFields extends NetworkId {
  /** the current epoch (the change moves the network to epoch + 1) */
  committeeEpoch: bigint
  members: KeyLike[]
  expirySlot: bigint
}

export function committeeMessage (f: CommitteeMessageFields): Uint8Array {
  return concat([
    enc.encode(DOMAIN_COMMITTEE), f.programId.toBytes(), b32(f.genesisHash, 'genesis hash'), u64(f.committeeEpoch),
    u8(f.members.length), ...f.members.map(m => b32(m, 'member')), u64(f.expirySlot)
  ])
}

export function committeeDigest (f: CommitteeMessageFields): Bytes32 { return sha256(committeeMessage(f)) }

export interface SlashMessageFields extends NetworkId {
  committeeEpoch: bigint
  executionId: Bytes32
  taskId: Bytes32
  /** the primary attempt whose verification disagreed */
  attempt: number
  /** operator key of the accused node */
  accused: KeyLike
  asserterCommitment: Bytes32
  verifierCommitment: Bytes32
  asserterOutputRoot: Bytes32
  verifierOutputRoot: Bytes32
  /** token account receiving the bounty */
  bountyTo: KeyLike
  expirySlot: bigint
}

export function slashMessage (f: SlashMessageFields): Uint8Array {
  return concat([
    enc.encode(DOMAIN_SLASH), f.programId.toBytes(), b32(f.genesisHash, 'genesis hash'), u64(f.committeeEpoch),
    b32(f.executionId, 'execution id'), b32(f.taskId, 'task id'), u32(f.attempt), b32(f.accused, 'accused'),
    b32(f.asserterCommitment, 'commitment'), b32(f.verifierCommitment, 'commitment'),
    b32(f.asserterOutputRoot, 'output root'), b32(f.verifierOutputRoot, 'output root'), b32(f.bountyTo, 'bounty account'),
    u64(f.expirySlot)
  ])
}

export function slashDigest (f: SlashMessageFields): Bytes32 { return sha256(slashMessage(f)) }

export interface DrawFields {
  genesisHash: Bytes32
  executionId: Bytes32
  taskId: Bytes32
  attempt: number
  /** the seed slot S (trigger slot + K), or the decision slot (commit slot + K) */
  slot: bigint
  /** SlotHashes entry of the first slot >= `slot` that has one */
  slotHash: Bytes32
}

/**
 * Seed of an attempt: H("bitflow/seed/v1" || genesis || execution id || task id || attempt || S ||
 * SlotHashes[S]), S = trigger slot + K (request slot for attempt 0, sampling-decision slot for a
 * verification, failure slot for a reassignment).
 */
export function attemptSeed (f: DrawFields): Bytes32 {
  return sha256(enc.encode(DOMAIN_SEED), b32(f.genesisHash, 'genesis hash'), b32(f.executionId, 'execution id'),
    b32(f.taskId, 'task id'), u32(f.attempt), u64(f.slot), b32(f.slotHash, 'slot hash'))
}

/** Sampling decision: first 8 bytes (LE) of the draw hash, mod 1e6, below p in ppm. Anyone can check it. */
export function isSampled (f: DrawFields, assertionCommitment: Bytes32, samplingPpm: number): boolean {
  const h = sha256(enc.encode(DOMAIN_SAMPLE), b32(f.genesisHash, 'genesis hash'), b32(f.executionId, 'execution id'),
    b32(f.taskId, 'task id'), u32(f.attempt), u64(f.slot), b32(f.slotHash, 'slot hash'), b32(assertionCommitment, 'commitment'))
  const draw = new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0, true)
  return draw % BigInt(PPM) < BigInt(samplingPpm)
}

// ---- economics, exactly as the program computes them --------------------------------------------

const U64_MAX = (1n << 64n) - 1n

function mulDiv (a: bigint, num: bigint, den: bigint, roundUp: boolean): bigint {
  const q = a * num
  const r = q / den + (roundUp && q % den !== 0n ? 1n : 0n)
  if (r > U64_MAX) throw new RangeError('overflows u64')
  return r
}

/** What a verification of a task priced `price` pays: R x price, rounded down. */
export function verificationPayment (p: Params, price: bigint): bigint {
  return mulDiv(price, BigInt(p.validatorRewardBps), BigInt(BPS), false)
}

/** What a task puts in escrow: price + p x R x price (expected verification cost, rounded up). */
export function taskShare (p: Params, price: bigint): bigint {
  return price + mulDiv(verificationPayment(p, price), BigInt(p.samplingPpm), BigInt(PPM), true)
}

/** Seconds from assignment to deadline for a task of `computeUnits`. */
export function deadlineSeconds (p: Params, computeUnits: number): bigint {
  return BigInt(p.deadlineBaseSecs) + BigInt(p.deadlinePer100CuSecs) * BigInt(Math.ceil(computeUnits / 100))
}

/** Minimum stake for a node with `paymentsInFlight` (including the new one). */
export function stakeNeeded (p: Params, paymentsInFlight: bigint): bigint {
  return mulDiv(paymentsInFlight, BigInt(p.minStakeRatioBps), BigInt(BPS), true)
}
