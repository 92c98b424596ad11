/**
 * The daemon's own small chain helpers for execution: the operator keypair (the daemon identity is
 * its Solana key), sending a transaction signed with Node's Ed25519, and reading execution accounts.
 */
import { Keypair, PublicKey, Transaction, type Connection, type TransactionInstruction } from '@solana/web3.js'
import { signTransaction } from '../../programs/chain/signer.js'
import { decodeExecution, type ExecutionAccount } from '../../programs/client/index.js'
import type { Identity } from '../identity.js'

const keypairs = new WeakMap<Identity, Keypair>()

/** The identity as a Solana keypair (built once: building one re-derives the public key) */
export function operatorKeypair (identity: Identity): Keypair {
  let k = keypairs.get(identity)
  if (k === undefined) {
    k = Keypair.fromSecretKey(Uint8Array.from([...identity.seed, ...identity.publicKey]))
    keypairs.set(identity, k)
  }
  return k
}

export class ChainSendError extends Error {
  readonly logs: string[] | undefined
  constructor (message: string, logs?: string[], options?: ErrorOptions) {
    super(message, options)
    this.name = 'ChainSendError'
    this.logs = logs
  }
}

/** a blockhash stays valid for far longer; reusing one saves a round trip on every send */
const BLOCKHASH_REUSE_MS = 1000
const blockhashes = new WeakMap<Connection, { blockhash: string, lastValidBlockHeight: number, at: number }>()

async function recentBlockhash (connection: Connection): Promise<{ blockhash: string, lastValidBlockHeight: number }> {
  const cached = blockhashes.get(connection)
  if (cached !== undefined && Date.now() - cached.at < BLOCKHASH_REUSE_MS) return cached
  const fresh = { ...await connection.getLatestBlockhash('confirmed'), at: Date.now() }
  blockhashes.set(connection, fresh)
  return fresh
}

/** Sends and confirms (commitment 'confirmed'); returns the signature and the slot it landed in. */
export async function sendTransaction (connection: Connection, instructions: TransactionInstruction[], payer: Keypair, signers: Keypair[] = []): Promise<{ signature: string, slot: number }> {
  const { blockhash, lastValidBlockHeight } = await recentBlockhash(connection)
  const tx = new Transaction({ feePayer: payer.publicKey, blockhash, lastValidBlockHeight })
  tx.add(...instructions)
  const wire = signTransaction(tx, [payer, ...signers])
  let signature: string
  try {
    signature = await connection.sendRawTransaction(wire)
  } catch (err) {
    blockhashes.delete(connection)
    const logs = (err as { logs?: string[] }).logs
    throw new ChainSendError(`transaction refused: ${(err as Error).message}`, logs, { cause: err })
  }
  const result = await connection.confirmTransaction({ signature, blockhash, lastValidBlockHeight }, 'confirmed')
  if (result.value.err !== null) throw new ChainSendError(`transaction ${signature} failed: ${JSON.stringify(result.value.err)}`)
  return { signature, slot: result.context.slot }
}

export async function readExecution (connection: Connection, programId: PublicKey, address: PublicKey): Promise<ExecutionAccount | undefined> {
  const info = await connection.getAccountInfo(address, 'confirmed')
  if (info === null || !info.owner.equals(programId)) return undefined
  try { return decodeExecution(info.data) } catch { return undefined }
}

/** The SlotHashes sysvar's id. */
export const SLOT_HASHES_SYSVAR = 'SysvarS1otHashes111111111111111111111111111'

/**
 * The SlotHashes entry the settlement program uses for `slot`: the entry of the smallest slot >=
 * `slot` (a skipped slot has none; its successor is just as unknowable beforehand). undefined while
 * `slot` is not in the sysvar yet (or fell out of it); the program also needs current slot > `slot`.
 */
export async function readSlotHash (connection: Connection, slot: bigint): Promise<SlotHashEntry | undefined> {
  const info = await connection.getAccountInfo(new PublicKey(SLOT_HASHES_SYSVAR), 'confirmed')
  return info === null ? undefined : slotHashIn(info.data, slot)
}

export interface SlotHashEntry { hash: Uint8Array, newest: bigint, entrySlot: bigint }

/** `readSlotHash` over SlotHashes account data already read (e.g. with other accounts in one request). */
export function slotHashIn (data: Uint8Array, slot: bigint): SlotHashEntry | undefined {
  if (data.length < 8) return undefined
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const count = Number(v.getBigUint64(0, true))
  if (count === 0) return undefined
  const entry = (i: number): { slot: bigint, hash: Uint8Array } => ({ slot: v.getBigUint64(8 + 40 * i, true), hash: new Uint8Array(data.subarray(16 + 40 * i, 48 + 40 * i)) })
  const newest = entry(0).slot
  if (slot > newest) return undefined
  // newest first, strictly decreasing: the last index whose slot is >= `slot`
  let found: { slot: bigint, hash: Uint8Array } | undefined
  for (let i = 0; i < count && 8 + 40 * (i + 1) <= data.length; i++) {
    const e = entry(i)
    if (e.slot < slot) break
    found = e
  }
  if (found === undefined) return undefined
  // the oldest entry is still above `slot`: the exact slot may have fallen out of the sysvar
  if (found.slot !== slot && found === entry(Math.min(count, Math.floor((data.length - 8) / 40)) - 1)) return undefined
  return { hash: found.hash, newest, entrySlot: found.slot }
}
