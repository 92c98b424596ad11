/**
 * The local chain's state machine around LiteSVM: slots, Clock, blockhashes with a 150-slot
 * lifetime, the SlotHashes sysvar, transaction processing with Solana's RPC semantics (preflight,
 * duplicates, dropped vs committed failures), signature statuses and the per-slot frames that the
 * ledger persists. No I/O here: the server closes slots on a timer and persists the frames.
 */
import { createHash } from 'node:crypto'
import {
  Account, Clock, EpochSchedule, FailedTransactionMetadata, LiteSvm, SimulatedTransactionInfo,
  TransactionErrorDuplicateInstruction, TransactionErrorInstructionError, TransactionErrorInsufficientFundsForRent,
  TransactionErrorProgramExecutionTemporarilyRestricted, InstructionErrorCustom, InstructionErrorBorshIo,
  type TransactionMetadata
} from 'litesvm/dist/internal.js'
import {
  Keypair, PublicKey, SystemProgram, Transaction, TransactionInstruction, VersionedTransaction,
  type MessageV0, type VersionedMessage
} from '@solana/web3.js'
import { ChainRpcError, RpcErrorCode, invalidParams } from './errors.js'
import { base58Decode, base58Encode, base64Encode, u64le } from './codec.js'
import type { AccountState, GenesisFile, Head, SlotFrame, TxRecord } from './ledger.js'
import { signTransaction } from './signer.js'

import { BLOCKHASH_TTL_SLOTS, SLOT_HASHES_ENTRIES } from './constants.js'
export { BLOCKHASH_TTL_SLOTS, SLOT_HASHES_ENTRIES, defaultBlockhashTtlSlots } from './constants.js'
export const LAMPORTS_PER_SIGNATURE = 5000
/** Largest transaction on the wire (PACKET_DATA_SIZE). */
export const MAX_TRANSACTION_SIZE = 1232
export const FAUCET_LAMPORTS = 1_000_000_000_000_000n // 1M SOL: below 2^53, so JSON numbers stay exact
export const MAX_AIRDROP_LAMPORTS = 10_000_000_000_000 // 10,000 SOL per request

const SYSTEM_PROGRAM = SystemProgram.programId.toBytes()
const MEMO_PROGRAM = new PublicKey('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr')
const COMPUTE_BUDGET_PROGRAM = 'ComputeBudget111111111111111111111111111111'
const ED25519_PROGRAM = 'Ed25519SigVerify111111111111111111111111111'
const SECP256K1_PROGRAM = 'KeccakSecp256k11111111111111111111111111111'
/** Address lookup table: 56-byte header, then 32-byte addresses. */
const LOOKUP_TABLE_META_SIZE = 56

const TX_ERRORS = ['AccountInUse', 'AccountLoadedTwice', 'AccountNotFound', 'ProgramAccountNotFound', 'InsufficientFundsForFee',
  'InvalidAccountForFee', 'AlreadyProcessed', 'BlockhashNotFound', 'CallChainTooDeep', 'MissingSignatureForFee',
  'InvalidAccountIndex', 'SignatureFailure', 'InvalidProgramForExecution', 'SanitizeFailure', 'ClusterMaintenance',
  'AccountBorrowOutstanding', 'WouldExceedMaxBlockCostLimit', 'UnsupportedVersion', 'InvalidWritableAccount',
  'WouldExceedMaxAccountCostLimit', 'WouldExceedAccountDataBlockLimit', 'TooManyAccountLocks', 'AddressLookupTableNotFound',
  'InvalidAddressLookupTableOwner', 'InvalidAddressLookupTableData', 'InvalidAddressLookupTableIndex',
  'InvalidRentPayingAccount', 'WouldExceedMaxVoteCostLimit', 'WouldExceedAccountDataTotalLimit',
  'MaxLoadedAccountsDataSizeExceeded', 'ResanitizationNeeded', 'InvalidLoadedAccountsDataSizeLimit',
  'UnbalancedTransaction', 'ProgramCacheHitMaxLimit', 'CommitCancelled']
const INSTRUCTION_ERRORS = ['GenericError', 'InvalidArgument', 'InvalidInstructionData', 'InvalidAccountData',
  'AccountDataTooSmall', 'InsufficientFunds', 'IncorrectProgramId', 'MissingRequiredSignature',
  'AccountAlreadyInitialized', 'UninitializedAccount', 'UnbalancedInstruction', 'ModifiedProgramId',
  'ExternalAccountLamportSpend', 'ExternalAccountDataModified', 'ReadonlyLamportChange', 'ReadonlyDataModified',
  'DuplicateAccountIndex', 'ExecutableModified', 'RentEpochModified', 'NotEnoughAccountKeys', 'AccountDataSizeChanged',
  'AccountNotExecutable', 'AccountBorrowFailed', 'AccountBorrowOutstanding', 'DuplicateAccountOutOfSync', 'InvalidError',
  'ExecutableDataModified', 'ExecutableLamportChange', 'ExecutableAccountNotRentExempt', 'UnsupportedProgramId',
  'CallDepth', 'MissingAccount', 'ReentrancyNotAllowed', 'MaxSeedLengthExceeded', 'InvalidSeeds', 'InvalidRealloc',
  'ComputationalBudgetExceeded', 'PrivilegeEscalation', 'ProgramEnvironmentSetupFailure', 'ProgramFailedToComplete',
  'ProgramFailedToCompile', 'Immutable', 'IncorrectAuthority', 'AccountNotRentExempt', 'InvalidAccountOwner',
  'ArithmeticOverflow', 'UnsupportedSysvar', 'IllegalOwner', 'MaxAccountsDataAllocationsExceeded', 'MaxAccountsExceeded',
  'MaxInstructionTraceLengthExceeded', 'BuiltinProgramsMustConsumeComputeUnits', 'BorshIoError']

/** LiteSVM's transaction error as Solana's JSON `TransactionError`. */
export function transactionErrorJson (e: unknown): unknown {
  if (typeof e === 'number') return TX_ERRORS[e] ?? `TransactionError(${e})`
  if (e instanceof TransactionErrorInstructionError) {
    const inner = e.err() as unknown
    let ie: unknown
    if (typeof inner === 'number') ie = INSTRUCTION_ERRORS[inner] ?? `InstructionError(${inner})`
    else if (inner instanceof InstructionErrorCustom) ie = { Custom: inner.code }
    else if (inner instanceof InstructionErrorBorshIo) ie = { BorshIoError: inner.msg }
    else ie = String(inner)
    return { InstructionError: [e.index, ie] }
  }
  if (e instanceof TransactionErrorDuplicateInstruction) return { DuplicateInstruction: e.index }
  if (e instanceof TransactionErrorInsufficientFundsForRent) return { InsufficientFundsForRent: { account_index: e.accountIndex } }
  if (e instanceof TransactionErrorProgramExecutionTemporarilyRestricted) return { ProgramExecutionTemporarilyRestricted: { account_index: e.accountIndex } }
  return String(e)
}

/** Human text for a preflight failure message, as validators print it. */
function describeError (err: unknown): string {
  if (err === 'BlockhashNotFound') return 'Blockhash not found'
  if (err === 'AlreadyProcessed') return 'This transaction has already been processed'
  if (err === 'AccountNotFound') return 'Attempt to debit an account but found no record of a prior credit.'
  if (err === 'InsufficientFundsForFee') return 'Insufficient funds for fee'
  if (typeof err === 'object' && err !== null && 'InstructionError' in err) {
    const [index, ie] = (err as { InstructionError: [number, unknown] }).InstructionError
    const what = typeof ie === 'object' && ie !== null && 'Custom' in ie ? `custom program error: 0x${(ie as { Custom: number }).Custom.toString(16)}` : JSON.stringify(ie)
    return `Error processing Instruction ${index}: ${what}`
  }
  return JSON.stringify(err)
}

/** A Map that forgets its oldest entries beyond `capacity`. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor (readonly capacity: number) { super() }
  override set (key: K, value: V): this {
    super.set(key, value)
    if (this.size > this.capacity) {
      const oldest = this.keys().next()
      if (oldest.done !== true) this.delete(oldest.value)
    }
    return this
  }
}

export type Commitment = 'processed' | 'confirmed' | 'finalized'

export interface SignatureStatus { slot: number, err: unknown, durable: boolean }

export interface ProcessOptions {
  skipPreflight?: boolean
}

export interface SimulateOptions {
  sigVerify?: boolean
  replaceRecentBlockhash?: boolean
  /** addresses whose post-simulation state to return */
  accounts?: string[]
}

export interface SimulationResult {
  err: unknown
  logs: string[]
  unitsConsumed: number
  returnData: { programId: string, data: [string, 'base64'] } | null
  accounts: Array<AccountView | null> | null
  replacementBlockhash: { blockhash: string, lastValidBlockHeight: number } | null
}

export interface AccountView {
  lamports: bigint
  owner: Uint8Array
  executable: boolean
  rentEpoch: bigint
  data: Uint8Array
}

export interface BankListener {
  processed?: (tx: TxRecord) => void
  slot?: (slot: number) => void
  durable?: (frame: SlotFrame) => void
}

export interface BankOptions {
  genesis: GenesisFile
  faucet: Keypair
  program: Uint8Array
  /** how many transactions' full records (getTransaction: logs, balances) to keep in memory */
  historyCapacity?: number
  /** how many signature statuses (getSignatureStatuses, duplicate detection) to keep in memory */
  statusCapacity?: number
  /** slots a blockhash stays valid (default BLOCKHASH_TTL_SLOTS) */
  blockhashTtlSlots?: number
  now?: () => number
}

interface ParsedTransaction {
  tx: VersionedTransaction
  signature: string
  keys: PublicKey[]
  writable: boolean[]
  loaded: { writable: string[], readonly: string[] }
  legacy: boolean
}

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** Blockhash of slot s: sha256(blockhash(s-1) || s || signatures of the slot's transactions in order). */
export function nextBlockhash (parent: Uint8Array, slot: number, signatures: Uint8Array[]): Uint8Array {
  return sha256(parent, u64le(slot), ...signatures)
}

export class Bank {
  readonly svm: LiteSvm
  readonly genesis: GenesisFile
  readonly programId: PublicKey
  readonly faucet: Keypair
  readonly slotsPerEpoch: number
  readonly blockhashTtlSlots: number
  /** recent blockhashes kept: SlotHashes' 512, or more for a longer blockhash lifetime */
  private readonly window: number
  /** the open slot, which transactions land in; also the block height (no slot is ever skipped) */
  slot = 1
  unixTime: number
  /** highest slot whose frame is durable */
  durableSlot = 0
  transactionCount = 0
  /** recent (slot, blockhash), oldest first, up to `window` entries */
  private recent: Array<{ slot: number, hash: Uint8Array, b58: string }> = []
  private blockhashSlots = new Map<string, number>()
  private pendingTxs: TxRecord[] = []
  private pendingTouched = new Set<string>()
  readonly statuses: BoundedMap<string, SignatureStatus>
  readonly history: BoundedMap<string, TxRecord>
  private readonly listeners: BankListener[] = []
  private airdropCounter = 0
  private readonly now: () => number
  private epochStartUnix: number

  constructor (options: BankOptions) {
    this.genesis = options.genesis
    this.programId = new PublicKey(options.genesis.programId)
    this.faucet = options.faucet
    this.slotsPerEpoch = options.genesis.slotsPerEpoch
    this.now = options.now ?? Date.now
    this.blockhashTtlSlots = options.blockhashTtlSlots ?? BLOCKHASH_TTL_SLOTS
    if (!Number.isInteger(this.blockhashTtlSlots) || this.blockhashTtlSlots < 1) throw new RangeError('blockhashTtlSlots must be a positive integer')
    this.window = Math.max(SLOT_HASHES_ENTRIES, this.blockhashTtlSlots + 1)
    this.statuses = new BoundedMap(options.statusCapacity ?? 500_000)
    this.history = new BoundedMap(options.historyCapacity ?? 50_000)

    const svm = new LiteSvm()
    svm.setBlockhashCheck(false) // blockhash lifetimes are this bank's (150 slots, not just the latest)
    svm.setTransactionHistory(0n) // duplicates are detected here, across restarts too
    svm.setSigverify(true)
    svm.setEpochSchedule(new EpochSchedule(BigInt(this.slotsPerEpoch), BigInt(this.slotsPerEpoch), false, 0n, 0n))
    svm.addProgram(this.programId.toBytes(), options.program)
    svm.setAccount(this.faucet.publicKey.toBytes(), new Account(FAUCET_LAMPORTS, new Uint8Array(0), SYSTEM_PROGRAM, false, 0n))
    this.svm = svm

    const genesisHash = base58Decode(options.genesis.genesisHash)
    this.pushRecent(0, genesisHash)
    this.unixTime = options.genesis.startUnix
    this.epochStartUnix = options.genesis.startUnix
    this.applySysvars()
  }

  on (listener: BankListener): () => void {
    this.listeners.push(listener)
    return () => { const i = this.listeners.indexOf(listener); if (i >= 0) this.listeners.splice(i, 1) }
  }

  // ---- restore -----------------------------------------------------------------------------------

  /** Applies one persisted frame (in ledger order) during restore. */
  restoreFrame (frame: SlotFrame): void {
    for (const a of frame.accounts) this.writeAccount(a)
    for (const tx of frame.txs) {
      this.history.set(tx.signature, tx)
      this.statuses.set(tx.signature, { slot: tx.slot, err: tx.err, durable: true })
    }
    this.transactionCount += frame.txs.length
    this.restoredFrames.push({ slot: frame.slot, blockhash: frame.blockhash, unixTime: frame.unixTime })
  }

  private restoredFrames: Array<{ slot: number, blockhash: string, unixTime: number }> = []

  /**
   * After every frame was restored: rebuilds the blockhash window and SlotHashes up to the last
   * closed slot (the head's, or the last frame's) and reopens the next slot. Returns a warning
   * when the head's blockhash disagrees with the recomputed chain.
   */
  finishRestore (head: Head | undefined): string | undefined {
    const frames = this.restoredFrames
    this.restoredFrames = []
    const lastFrame = frames.at(-1)
    const last = Math.max(head?.slot ?? 0, lastFrame?.slot ?? 0)
    const windowStart = Math.max(0, last - this.window + 1)
    // start from the latest known hash before the window (a frame, or genesis)
    let i = frames.length - 1
    while (i >= 0 && frames[i]!.slot >= windowStart) i--
    let slot = i >= 0 ? frames[i]!.slot : 0
    let hash = i >= 0 ? base58Decode(frames[i]!.blockhash) : base58Decode(this.genesis.genesisHash)
    const byslot = new Map(frames.slice(i + 1).map(f => [f.slot, f.blockhash]))
    this.recent = []
    this.blockhashSlots.clear()
    if (slot >= windowStart) this.pushRecent(slot, hash)
    while (slot < last) {
      slot++
      const known = byslot.get(slot)
      hash = known !== undefined ? base58Decode(known) : nextBlockhash(hash, slot, [])
      if (slot >= windowStart) this.pushRecent(slot, hash)
    }
    this.slot = last + 1
    this.durableSlot = last
    const headUnix = head !== undefined && head.slot === last ? head.unixTime : lastFrame?.unixTime ?? this.genesis.startUnix
    this.unixTime = Math.max(headUnix, Math.floor(this.now() / 1000))
    this.epochStartUnix = this.unixTime
    this.applySysvars()
    if (head !== undefined && head.slot === last && head.blockhash !== base58Encode(hash)) {
      return `head.bin blockhash of slot ${last} differs from the recomputed chain (a slot with unconfirmed transactions was lost); continuing with the recomputed chain`
    }
    return undefined
  }

  // ---- time --------------------------------------------------------------------------------------

  get latestBlockhash (): { blockhash: string, slot: number, lastValidBlockHeight: number } {
    const last = this.recent.at(-1)!
    return { blockhash: last.b58, slot: last.slot, lastValidBlockHeight: last.slot + this.blockhashTtlSlots }
  }

  /** Whether a transaction with this recent blockhash would be accepted now. */
  isBlockhashValid (blockhash: string): boolean {
    const s = this.blockhashSlots.get(blockhash)
    return s !== undefined && this.slot <= s + this.blockhashTtlSlots
  }

  get epoch (): number { return Math.floor(this.slot / this.slotsPerEpoch) }

  /** The SlotHashes sysvar's entries, newest first. */
  slotHashes (): Array<{ slot: number, hash: string }> {
    return this.recent.slice(-SLOT_HASHES_ENTRIES).map(r => ({ slot: r.slot, hash: r.b58 })).reverse()
  }

  private pushRecent (slot: number, hash: Uint8Array): void {
    const b58 = base58Encode(hash)
    this.recent.push({ slot, hash, b58 })
    this.blockhashSlots.set(b58, slot)
    while (this.recent.length > this.window) {
      const old = this.recent.shift()!
      if (this.blockhashSlots.get(old.b58) === old.slot) this.blockhashSlots.delete(old.b58)
    }
  }

  private applySysvars (): void {
    const epoch = BigInt(this.epoch)
    this.svm.setClock(new Clock(BigInt(this.slot), BigInt(this.epochStartUnix), epoch, epoch + 1n, BigInt(this.unixTime)))
    this.svm.setSlotHashes(this.slotHashes().map(r => ({ slot: BigInt(r.slot), hash: r.hash })))
  }

  /**
   * Closes the open slot: computes its blockhash, enters it into the blockhash window and
   * SlotHashes, captures the post-slot state of every account its transactions could write, and
   * opens the next slot with a fresh Clock. Returns the frame to persist.
   */
  closeSlot (): SlotFrame {
    const slot = this.slot
    const txs = this.pendingTxs
    const parent = this.recent.at(-1)!.hash
    const hash = nextBlockhash(parent, slot, txs.map(t => base58Decode(t.signature)))
    const accounts = [...this.pendingTouched].map(k => this.readAccountState(k))
    this.pendingTxs = []
    this.pendingTouched = new Set()
    this.pushRecent(slot, hash)
    const frame: SlotFrame = { slot, blockhash: base58Encode(hash), unixTime: this.unixTime, txs, accounts }
    const previousEpoch = this.epoch
    this.slot = slot + 1
    this.unixTime = Math.max(this.unixTime, Math.floor(this.now() / 1000))
    if (this.epoch !== previousEpoch) this.epochStartUnix = this.unixTime
    this.applySysvars()
    for (const l of this.listeners) l.slot?.(this.slot)
    return frame
  }

  /** Called by the server once a frame is durable (in slot order). */
  markDurable (frame: SlotFrame): void {
    for (const tx of frame.txs) {
      const st = this.statuses.get(tx.signature)
      if (st !== undefined) st.durable = true
    }
    this.durableSlot = Math.max(this.durableSlot, frame.slot)
    for (const l of this.listeners) l.durable?.(frame)
  }

  // ---- accounts ----------------------------------------------------------------------------------

  getAccount (key: PublicKey | Uint8Array): AccountView | null {
    const a = this.svm.getAccount(key instanceof PublicKey ? key.toBytes() : key)
    if (a === null || a.lamports() === 0n) return null
    return { lamports: a.lamports(), owner: a.owner(), executable: a.executable(), rentEpoch: a.rentEpoch(), data: a.data() }
  }

  getProgramAccounts (owner: PublicKey): Array<{ pubkey: Uint8Array, account: AccountView }> {
    const out: Array<{ pubkey: Uint8Array, account: AccountView }> = []
    for (const entry of this.svm.getProgramAccounts(owner.toBytes())) {
      const a = entry.account()
      if (a.lamports() === 0n) continue
      out.push({ pubkey: entry.address, account: { lamports: a.lamports(), owner: a.owner(), executable: a.executable(), rentEpoch: a.rentEpoch(), data: a.data() } })
    }
    return out
  }

  minimumBalanceForRentExemption (dataLength: number): bigint {
    return this.svm.minimumBalanceForRentExemption(BigInt(dataLength))
  }

  private readAccountState (key: string): AccountState {
    const a = this.getAccount(new PublicKey(key))
    if (a === null) return { k: key, x: true }
    return { k: key, l: a.lamports.toString(), o: base58Encode(a.owner), e: a.executable, r: a.rentEpoch.toString(), d: base64Encode(a.data) }
  }

  private writeAccount (a: AccountState): void {
    const key = new PublicKey(a.k).toBytes()
    if ('x' in a) {
      this.svm.setAccount(key, new Account(0n, new Uint8Array(0), SYSTEM_PROGRAM, false, 0n))
    } else {
      this.svm.setAccount(key, new Account(BigInt(a.l), new Uint8Array(Buffer.from(a.d, 'base64')), base58Decode(a.o), a.e, BigInt(a.r)))
    }
  }

  // ---- transactions ------------------------------------------------------------------------------

  /** Deserializes wire bytes and resolves every account key (lookup tables included). */
  parse (wire: Uint8Array): ParsedTransaction {
    if (wire.length > MAX_TRANSACTION_SIZE) throw invalidParams(`transaction is ${wire.length} bytes, the limit is ${MAX_TRANSACTION_SIZE}`)
    let tx: VersionedTransaction
    try {
      tx = VersionedTransaction.deserialize(wire)
    } catch (err) {
      throw invalidParams(`failed to deserialize the transaction: ${(err as Error).message}`)
    }
    const message = tx.message
    if (tx.signatures.length === 0 || tx.signatures.length !== message.header.numRequiredSignatures) {
      throw invalidParams(`transaction has ${tx.signatures.length} signatures, its message requires ${message.header.numRequiredSignatures}`)
    }
    const loaded = this.resolveLookups(message)
    const keys = [...message.staticAccountKeys, ...loaded.writable.map(k => new PublicKey(k)), ...loaded.readonly.map(k => new PublicKey(k))]
    const writable = keys.map((_, i) => message.isAccountWritable(i))
    return { tx, signature: base58Encode(tx.signatures[0]!), keys, writable, loaded, legacy: message.version === 'legacy' }
  }

  private resolveLookups (message: VersionedMessage): { writable: string[], readonly: string[] } {
    const out = { writable: [] as string[], readonly: [] as string[] }
    if (message.version === 'legacy') return out
    for (const lookup of (message as MessageV0).addressTableLookups) {
      const table = this.getAccount(lookup.accountKey)
      // an unresolvable lookup fails in LiteSVM too; nothing then needs persisting
      if (table === null) continue
      const at = (i: number): string | undefined => {
        const off = LOOKUP_TABLE_META_SIZE + 32 * i
        return off + 32 <= table.data.length ? base58Encode(table.data.subarray(off, off + 32)) : undefined
      }
      for (const i of lookup.writableIndexes) { const k = at(i); if (k !== undefined) out.writable.push(k) }
      for (const i of lookup.readonlyIndexes) { const k = at(i); if (k !== undefined) out.readonly.push(k) }
    }
    return out
  }

  /**
   * Processes a transaction in the open slot, with sendTransaction's semantics: with preflight, a
   * failing transaction is refused (JSON-RPC error, nothing charged); without, a failure that
   * LiteSVM charges a fee for is recorded with its error, and one it does not (bad signature,
   * unknown blockhash, unfunded fee payer) is dropped. Returns the signature.
   */
  process (wire: Uint8Array, options: ProcessOptions = {}): string {
    const p = this.parse(wire)
    const preflight = options.skipPreflight !== true
    const refuse = (err: unknown, logs: string[] = [], unitsConsumed = 0): string => {
      if (!preflight) return p.signature // dropped, as a validator drops it
      if (err === 'SignatureFailure') throw new ChainRpcError(RpcErrorCode.SignatureVerificationFailure, 'Transaction signature verification failure')
      throw new ChainRpcError(RpcErrorCode.PreflightFailure, `Transaction simulation failed: ${describeError(err)}`,
        { err, logs, accounts: null, unitsConsumed, returnData: null, innerInstructions: null })
    }
    if (this.statuses.has(p.signature)) return refuse('AlreadyProcessed')
    if (!this.isBlockhashValid(p.tx.message.recentBlockhash)) return refuse('BlockhashNotFound')

    const feePayer = p.keys[0]!.toBytes()
    const payerBefore = this.svm.getAccount(feePayer)
    const preBalances = p.keys.map(k => this.svm.getBalance(k.toBytes()) ?? 0n)
    const result = p.legacy ? this.svm.sendLegacyTransaction(wire) : this.svm.sendVersionedTransaction(wire)
    const failed = result instanceof FailedTransactionMetadata
    const meta: TransactionMetadata = failed ? result.meta() : result
    const err = failed ? transactionErrorJson(result.err()) : null
    const logs = meta.logs()
    const unitsConsumed = Number(meta.computeUnitsConsumed())
    if (failed) {
      const payerAfter = this.svm.getBalance(feePayer) ?? 0n
      const charged = payerBefore !== null && payerAfter < payerBefore.lamports()
      if (!charged || preflight) {
        if (charged) this.svm.setAccount(feePayer, payerBefore) // preflight refusals cost nothing
        return refuse(err, logs, unitsConsumed)
      }
    }
    const postBalances = p.keys.map(k => this.svm.getBalance(k.toBytes()) ?? 0n)
    const rd = meta.returnData()
    const returnData = rd.data().length > 0 ? { programId: base58Encode(rd.programId()), data: base64Encode(rd.data()) } : null
    const fee = failed ? Number(preBalances[0]! - postBalances[0]!) : feeForMessage(p.tx.message)
    const record: TxRecord = {
      signature: p.signature,
      slot: this.slot,
      blockTime: this.unixTime,
      wire: base64Encode(wire),
      err,
      logs,
      unitsConsumed,
      fee,
      preBalances: preBalances.map(Number),
      postBalances: postBalances.map(Number),
      returnData,
      loadedAddresses: p.loaded
    }
    this.pendingTxs.push(record)
    p.keys.forEach((k, i) => { if (p.writable[i] === true) this.pendingTouched.add(k.toBase58()) })
    this.statuses.set(p.signature, { slot: this.slot, err, durable: false })
    this.history.set(p.signature, record)
    this.transactionCount++
    for (const l of this.listeners) l.processed?.(record)
    return p.signature
  }

  /** simulateTransaction: runs against the current state and commits nothing. */
  simulate (wire: Uint8Array, options: SimulateOptions = {}): SimulationResult {
    const p = this.parse(wire)
    const latest = this.latestBlockhash
    if (options.replaceRecentBlockhash === true && options.sigVerify === true) {
      throw invalidParams('sigVerify may not be used with replaceRecentBlockhash')
    }
    const base = { logs: [] as string[], unitsConsumed: 0, returnData: null, accounts: null }
    if (options.replaceRecentBlockhash !== true && !this.isBlockhashValid(p.tx.message.recentBlockhash)) {
      return { ...base, err: 'BlockhashNotFound', replacementBlockhash: null }
    }
    const sigVerify = options.sigVerify === true
    this.svm.setSigverify(sigVerify)
    let result: FailedTransactionMetadata | SimulatedTransactionInfo
    try {
      result = p.legacy ? this.svm.simulateLegacyTransaction(wire) : this.svm.simulateVersionedTransaction(wire)
    } finally {
      this.svm.setSigverify(true)
    }
    const failed = result instanceof FailedTransactionMetadata
    const meta = result.meta()
    const rd = meta.returnData()
    let accounts: Array<AccountView | null> | null = null
    if (options.accounts !== undefined) {
      const post = new Map<string, AccountView>()
      if (!failed) {
        for (const entry of (result as SimulatedTransactionInfo).postAccounts()) {
          const a = entry.account()
          post.set(base58Encode(entry.address), { lamports: a.lamports(), owner: a.owner(), executable: a.executable(), rentEpoch: a.rentEpoch(), data: a.data() })
        }
      }
      accounts = options.accounts.map(k => {
        const a = post.get(k) ?? this.getAccount(new PublicKey(k))
        return a === null || a.lamports === 0n ? null : a
      })
    }
    return {
      err: result instanceof FailedTransactionMetadata ? transactionErrorJson(result.err()) : null,
      logs: meta.logs(),
      unitsConsumed: Number(meta.computeUnitsConsumed()),
      returnData: rd.data().length > 0 ? { programId: base58Encode(rd.programId()), data: [base64Encode(rd.data()), 'base64'] } : null,
      accounts,
      replacementBlockhash: options.replaceRecentBlockhash === true ? { blockhash: latest.blockhash, lastValidBlockHeight: latest.lastValidBlockHeight } : null
    }
  }

  /** Faucet: a System transfer signed by the faucet key, processed like any transaction. */
  airdrop (to: PublicKey, lamports: number): string {
    if (!Number.isSafeInteger(lamports) || lamports <= 0) throw invalidParams('airdrop lamports must be a positive integer')
    if (lamports > MAX_AIRDROP_LAMPORTS) {
      throw new ChainRpcError(RpcErrorCode.FaucetRefused, `airdrop of ${lamports} lamports exceeds the faucet limit of ${MAX_AIRDROP_LAMPORTS} per request; ask for less`)
    }
    const tx = new Transaction()
    tx.add(SystemProgram.transfer({ fromPubkey: this.faucet.publicKey, toPubkey: to, lamports }))
    // a memo with a counter keeps two equal airdrops in one slot distinct transactions
    tx.add(new TransactionInstruction({ programId: MEMO_PROGRAM, keys: [], data: Buffer.from(`airdrop ${this.slot}/${this.airdropCounter++}`) }))
    tx.recentBlockhash = this.latestBlockhash.blockhash
    tx.feePayer = this.faucet.publicKey
    const wire = signTransaction(tx, [this.faucet])
    try {
      return this.process(wire)
    } catch (err) {
      if (err instanceof ChainRpcError) throw new ChainRpcError(RpcErrorCode.FaucetRefused, `airdrop failed: ${err.message}`, err.data)
      throw err
    }
  }

  signatureStatus (signature: string): SignatureStatus | undefined {
    return this.statuses.get(signature)
  }
}

/** The fee LiteSVM charges: 5000 lamports per signature (precompile signatures included) plus the priority fee. */
export function feeForMessage (message: VersionedMessage): number {
  const keys = message.staticAccountKeys
  let signatures = message.header.numRequiredSignatures
  let unitLimit: number | undefined
  let microLamports = 0n
  let otherInstructions = 0
  for (const ix of message.compiledInstructions) {
    const program = keys[ix.programIdIndex]?.toBase58()
    const data = ix.data
    if (program === ED25519_PROGRAM || program === SECP256K1_PROGRAM) {
      signatures += data[0] ?? 0
      otherInstructions++
    } else if (program === COMPUTE_BUDGET_PROGRAM) {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
      if (data[0] === 2 && data.length >= 5) unitLimit = view.getUint32(1, true)
      if (data[0] === 3 && data.length >= 9) microLamports = view.getBigUint64(1, true)
    } else {
      otherInstructions++
    }
  }
  const limit = BigInt(Math.min(unitLimit ?? 200_000 * otherInstructions, 1_400_000))
  const priority = (microLamports * limit + 999_999n) / 1_000_000n
  return signatures * LAMPORTS_PER_SIGNATURE + Number(priority)
}
