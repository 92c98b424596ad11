/**
 * LiteSVM harness for the settlement program: builds the .so when needed, loads it, sends web3.js
 * transactions, fabricates SPL mints and token accounts, and reads program errors.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Clock, FailedTransactionMetadata, LiteSVM, TransactionMetadata, type SlotHash } from 'litesvm'
import { Keypair, PublicKey, Transaction, type TransactionInstruction } from '@solana/web3.js'
import { TOKEN_PROGRAM_ID, type Params } from '../../../programs/client/index.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const PROGRAM_SO = join(root, 'programs', 'settlement', 'build', 'bitflow_settlement.so')

/** Runs the program build (a no-op taking ~50 ms when nothing changed) and returns the .so bytes. */
export function buildProgram (): Uint8Array {
  execFileSync('sh', [join(root, 'scripts', 'build-program.sh'), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] })
  return readFileSync(PROGRAM_SO)
}

type KitTransaction = Parameters<LiteSVM['sendTransaction']>[0]
type KitAddress = Parameters<LiteSVM['getAccount']>[0]
type KitAccount = Parameters<LiteSVM['setAccount']>[0]

const addr = (k: PublicKey): KitAddress => k.toBase58() as KitAddress

export const DEFAULT_PARAMS: Params = {
  minStake: 1_000_000_000n, // 1000 units of a 6-decimal stablecoin
  unbondingDelay: 7n * 24n * 3600n,
  challengeDelay: 3600n,
  minFee: 1_000n,
  samplingPpm: 80_000, // 8%
  validatorRewardBps: 12_000, // 1.2x
  slashBps: 10_000,
  bountyBps: 5_000,
  computeCostBps: 5_000, // computing a task costs half its payment: 0.08 x 0.7 x (1.2 + 10) = 0.63 > 0.5
  collusionBps: 3_000,
  minStakeRatioBps: 100_000, // stake >= 10x payments in flight
  seedDelaySlots: 4,
  deadlineBaseSecs: 30,
  deadlinePer100CuSecs: 5,
  unverifiablePayBps: 5_000
}

/** How many recent slots the SlotHashes sysvar keeps. */
export const SLOT_HASHES_LEN = 512

export class Chain {
  readonly svm: LiteSVM
  readonly programId: PublicKey
  readonly payer: Keypair

  constructor (programBytes: Uint8Array) {
    this.svm = new LiteSVM()
    this.programId = Keypair.generate().publicKey
    this.svm.addProgram(addr(this.programId), programBytes)
    this.payer = this.funded()
    this.setTime(1_700_000_000n)
    this.warpToSlot(10_000n)
  }

  private slotHashPool: SlotHash[] = []
  /** Hashes the tests choose for given slots (e.g. to force a sampling decision either way). */
  readonly slotHashOverrides = new Map<bigint, Uint8Array>()

  /** The (fabricated, deterministic) hash SlotHashes holds for `slot`. */
  slotHashOf (slot: bigint): Uint8Array {
    return this.slotHashOverrides.get(slot) ?? new Uint8Array(createHash('sha256').update(`slot:${slot}`).digest())
  }

  /**
   * Moves the clock to `slot` and rewrites SlotHashes to hold the 512 slots before it, as a running
   * cluster would (LiteSVM does neither on its own). `skipped` slots get no entry.
   */
  warpToSlot (slot: bigint, skipped: ReadonlySet<bigint> = new Set()): void {
    this.svm.warpToSlot(slot)
    if (this.slotHashPool.length < SLOT_HASHES_LEN) {
      // SlotHash has no public constructor: grow a pool of instances by copying the sysvar's own
      let pool = this.svm.getSlotHashes()
      while (pool.length < SLOT_HASHES_LEN) {
        this.svm.setSlotHashes([...pool, ...pool])
        pool = this.svm.getSlotHashes()
      }
      this.slotHashPool = pool.slice(0, SLOT_HASHES_LEN)
    }
    const entries: SlotHash[] = []
    for (let s = slot - 1n; s >= 0n && s >= slot - BigInt(SLOT_HASHES_LEN); s--) {
      if (skipped.has(s)) continue
      const e = this.slotHashPool[entries.length]!
      e.slot = s
      e.hash = new PublicKey(this.slotHashOf(s)).toBase58()
      entries.push(e)
    }
    this.svm.setSlotHashes(entries)
  }

  slot (): bigint { return this.svm.getClock().slot }

  advanceSlots (n: number | bigint): void { this.warpToSlot(this.slot() + BigInt(n)) }

  funded (lamports = 10_000_000_000n): Keypair {
    const k = Keypair.generate()
    this.svm.airdrop(addr(k.publicKey), lamports as never)
    return k
  }

  setTime (unixTimestamp: bigint): void {
    const c = this.svm.getClock()
    // the Clock constructor takes (slot, epochStartTimestamp, epoch, leaderScheduleEpoch, unixTimestamp)
    this.svm.setClock(new Clock(c.slot, c.epochStartTimestamp, c.epoch, c.leaderScheduleEpoch, unixTimestamp))
  }

  now (): bigint { return this.svm.getClock().unixTimestamp }

  /** Signs with the payer (fee payer) and `signers`, sends, and returns the outcome. */
  send (ixs: TransactionInstruction[], signers: Keypair[] = []): Outcome {
    const tx = new Transaction()
    tx.add(...ixs)
    tx.recentBlockhash = this.svm.latestBlockhash()
    tx.feePayer = this.payer.publicKey
    const all = [this.payer, ...signers.filter(s => !s.publicKey.equals(this.payer.publicKey))]
    tx.sign(...all)
    const signatures: Record<string, Uint8Array> = {}
    for (const s of tx.signatures) {
      if (s.signature === null) throw new Error(`unsigned ${s.publicKey.toBase58()}`)
      signatures[s.publicKey.toBase58()] = s.signature
    }
    const result = this.svm.sendTransaction({ messageBytes: tx.serializeMessage(), signatures } as unknown as KitTransaction)
    this.svm.expireBlockhash() // a fresh blockhash next time: identical transactions stay distinct
    return new Outcome(result)
  }

  account (key: PublicKey): { data: Uint8Array, owner: PublicKey, lamports: bigint } | undefined {
    const a = this.svm.getAccount(addr(key))
    if (!a.exists) return undefined
    return { data: Uint8Array.from(a.data), owner: new PublicKey(a.programAddress), lamports: BigInt(a.lamports) }
  }

  setAccount (key: PublicKey, data: Uint8Array, owner: PublicKey, lamports?: bigint): void {
    const acc = {
      address: addr(key),
      lamports: lamports ?? this.svm.minimumBalanceForRentExemption(BigInt(data.length)),
      data,
      programAddress: owner.toBase58(),
      executable: false,
      space: BigInt(data.length)
    }
    this.svm.setAccount(acc as unknown as KitAccount)
  }

  /** A fabricated, initialized SPL mint (no mint authority needed: balances are fabricated too). */
  createMint (decimals = 6): PublicKey {
    const mint = Keypair.generate().publicKey
    const data = new Uint8Array(82)
    const v = new DataView(data.buffer)
    v.setBigUint64(36, 1n << 60n, true) // supply
    data[44] = decimals
    data[45] = 1 // initialized
    this.setAccount(mint, data, TOKEN_PROGRAM_ID)
    return mint
  }

  /** A fabricated, initialized SPL token account holding `amount`. */
  createTokenAccount (mint: PublicKey, owner: PublicKey, amount: bigint): PublicKey {
    const key = Keypair.generate().publicKey
    this.setAccount(key, tokenAccountData(mint, owner, amount), TOKEN_PROGRAM_ID)
    return key
  }

  tokenBalance (key: PublicKey): bigint {
    const a = this.account(key)
    if (a === undefined) return 0n
    return new DataView(a.data.buffer).getBigUint64(64, true)
  }
}

export function tokenAccountData (mint: PublicKey, owner: PublicKey, amount: bigint): Uint8Array {
  const data = new Uint8Array(165)
  data.set(mint.toBytes(), 0)
  data.set(owner.toBytes(), 32)
  new DataView(data.buffer).setBigUint64(64, amount, true)
  data[108] = 1 // AccountState::Initialized
  return data
}

export class Outcome {
  constructor (readonly result: TransactionMetadata | FailedTransactionMetadata) {}

  get ok (): boolean { return !(this.result instanceof FailedTransactionMetadata) }

  get logs (): string[] {
    return this.result instanceof FailedTransactionMetadata ? this.result.meta().logs() : this.result.logs()
  }

  get computeUnits (): bigint {
    return this.result instanceof FailedTransactionMetadata ? this.result.meta().computeUnitsConsumed() : this.result.computeUnitsConsumed()
  }

  /** The Custom error code of the failing instruction, or undefined. */
  get customError (): number | undefined {
    if (!(this.result instanceof FailedTransactionMetadata)) return undefined
    const e = this.result.err() as unknown
    if (typeof e !== 'object' || e === null || !('err' in e) || typeof e.err !== 'function') return undefined
    const inner = (e.err as () => unknown).call(e)
    if (typeof inner === 'object' && inner !== null && 'code' in inner && typeof inner.code === 'number') return inner.code
    return undefined
  }

  describe (): string { return `${this.result.toString().slice(0, 400)}\n${this.logs.join('\n')}` }
}
