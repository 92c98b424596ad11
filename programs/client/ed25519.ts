/**
 * Ed25519 verify instructions for committee quorums: one native Ed25519 program instruction carrying
 * every signer's public key and signature over one 32-byte digest, all offsets pointing into that same
 * instruction (the settlement program refuses anything else). Signing uses Node's built-in crypto.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto'
import { Ed25519Program, type Keypair, type PublicKey, TransactionInstruction } from '@solana/web3.js'

export const ED25519_PROGRAM_ID = Ed25519Program.programId
/** instruction index meaning "this instruction" in Ed25519 signature offsets */
export const ED25519_SELF = 0xffff
const OFFSETS_START = 2
const OFFSETS_SIZE = 14

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Node crypto private key of a web3.js Keypair (its 32-byte seed). */
export function ed25519PrivateKey (k: Keypair): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(k.secretKey.subarray(0, 32))]), format: 'der', type: 'pkcs8' })
}

/** Ed25519 signature of `message` by `k`. */
export function signEd25519 (k: Keypair, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, ed25519PrivateKey(k)))
}

export interface SignatureEntry {
  publicKey: PublicKey
  signature: Uint8Array
}

/** Per-entry overrides of the offsets (tests build hostile instructions with them). */
export interface OffsetOverride {
  signatureOffset?: number
  signatureInstructionIndex?: number
  publicKeyOffset?: number
  publicKeyInstructionIndex?: number
  messageOffset?: number
  messageSize?: number
  messageInstructionIndex?: number
}

/**
 * One Ed25519 instruction verifying `entries` over `message`:
 * [count u8][0][count x 14-byte offsets][count x (public key 32, signature 64)][message].
 */
export function ed25519Instruction (message: Uint8Array, entries: SignatureEntry[], overrides: OffsetOverride[] = []): TransactionInstruction {
  const n = entries.length
  if (n === 0 || n > 255) throw new RangeError('1 to 255 signatures')
  const bodyAt = OFFSETS_START + OFFSETS_SIZE * n
  const messageAt = bodyAt + 96 * n
  const data = new Uint8Array(messageAt + message.length)
  const view = new DataView(data.buffer)
  data[0] = n
  entries.forEach((e, i) => {
    if (e.signature.length !== 64) throw new RangeError('an Ed25519 signature is 64 bytes')
    const at = bodyAt + 96 * i
    data.set(e.publicKey.toBytes(), at)
    data.set(e.signature, at + 32)
    const o = overrides[i] ?? {}
    const off = OFFSETS_START + OFFSETS_SIZE * i
    view.setUint16(off, o.signatureOffset ?? at + 32, true)
    view.setUint16(off + 2, o.signatureInstructionIndex ?? ED25519_SELF, true)
    view.setUint16(off + 4, o.publicKeyOffset ?? at, true)
    view.setUint16(off + 6, o.publicKeyInstructionIndex ?? ED25519_SELF, true)
    view.setUint16(off + 8, o.messageOffset ?? messageAt, true)
    view.setUint16(off + 10, o.messageSize ?? message.length, true)
    view.setUint16(off + 12, o.messageInstructionIndex ?? ED25519_SELF, true)
  })
  data.set(message, messageAt)
  return new TransactionInstruction({ programId: ED25519_PROGRAM_ID, keys: [], data: Buffer.from(data) })
}

/** The Ed25519 instruction for a quorum: each signer signs `digest` (32 bytes). */
export function quorumInstruction (digest: Uint8Array, signers: Keypair[]): TransactionInstruction {
  if (digest.length !== 32) throw new RangeError('committee members sign a 32-byte digest')
  return ed25519Instruction(digest, signers.map(k => ({ publicKey: k.publicKey, signature: signEd25519(k, digest) })))
}

/** Byte offset of entry `i`'s public key inside an instruction built by ed25519Instruction. */
export function ed25519PublicKeyOffset (count: number, i: number): number {
  return OFFSETS_START + OFFSETS_SIZE * count + 96 * i
}
