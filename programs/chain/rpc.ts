/**
 * Solana JSON-RPC methods and WebSocket subscriptions of the local chain, on json-rpc-2.0. Shapes
 * follow the Solana RPC documentation closely enough that an unmodified @solana/web3.js 1.98
 * `Connection` (which validates every response) works against them.
 */
import { JSONRPCErrorException, JSONRPCServer, createJSONRPCErrorResponse, type JSONRPCErrorResponse, type JSONRPCID } from 'json-rpc-2.0'
import { PublicKey, VersionedMessage, VersionedTransaction, type MessageV0 } from '@solana/web3.js'
import type { Logger } from '../../daemon/logger.js'
import { ChainRpcError, RpcErrorCode, invalidParams } from './errors.js'
import { base58Decode, base58Encode, base64Decode, base64Encode } from './codec.js'
import { feeForMessage, type AccountView, type Bank, type Commitment } from './bank.js'
import type { SlotFrame, TxRecord } from './ledger.js'
import { decodeMint, decodeTokenAccount, isTokenProgram, parseTokenAccountJson, uiTokenAmount, TOKEN_PROGRAM_ID } from './spl.js'

export const SOLANA_CORE_VERSION = '2.2.0'
const MAX_MULTIPLE_ACCOUNTS = 100
const MAX_SIGNATURE_STATUSES = 256
const MAX_FILTERS = 4
const MAX_BASE58_ACCOUNT_BYTES = 128

/** One WebSocket connection's subscriptions; `send` writes a JSON message to it. */
export class PubsubConnection {
  readonly subscriptions = new Map<number, Subscription>()
  /** notifications to send right after the subscribe response */
  deferred: Array<() => void> = []
  constructor (readonly send: (message: unknown) => void) {}
}

export interface RpcContext { connection?: PubsubConnection }

type Subscription =
  | { id: number, kind: 'signature', conn: PubsubConnection, signature: string, commitment: Commitment, received: boolean }
  | { id: number, kind: 'account', conn: PubsubConnection, key: string, encoding: string, commitment: Commitment }
  | { id: number, kind: 'program', conn: PubsubConnection, owner: string, encoding: string, filters: Filter[], commitment: Commitment }
  | { id: number, kind: 'slot' | 'root', conn: PubsubConnection }
  | { id: number, kind: 'logs', conn: PubsubConnection, mentions: string | undefined, commitment: Commitment }

type Filter = { dataSize: number } | { memcmp: { offset: number, bytes: Uint8Array } }

// ---- parameter parsing ----------------------------------------------------------------------------

function list (params: unknown): unknown[] {
  if (params === undefined || params === null) return []
  if (!Array.isArray(params)) throw invalidParams('Invalid params: expected an array of positional parameters')
  return params
}

function cfg (v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidParams('Invalid params: the configuration must be an object')
  return v as Record<string, unknown>
}

function pubkey (v: unknown, what = 'pubkey'): PublicKey {
  if (typeof v !== 'string') throw invalidParams(`Invalid param: ${what} must be a base-58 string`)
  let bytes: Uint8Array
  try { bytes = base58Decode(v) } catch { throw invalidParams(`Invalid param: ${what} ${JSON.stringify(v.slice(0, 64))} is not base-58`) }
  if (bytes.length !== 32) throw invalidParams(`Invalid param: WrongSize (${what} decodes to ${bytes.length} bytes, a public key has 32)`)
  return new PublicKey(bytes)
}

function commitment (c: Record<string, unknown>): Commitment {
  const v = c.commitment
  if (v === undefined || v === null) return 'finalized'
  if (v === 'processed' || v === 'recent') return 'processed'
  if (v === 'confirmed' || v === 'single' || v === 'singleGossip') return 'confirmed'
  if (v === 'finalized' || v === 'max' || v === 'root') return 'finalized'
  throw invalidParams(`Invalid param: commitment ${JSON.stringify(v)}; use processed, confirmed or finalized`)
}

function nonNegativeInt (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidParams(`Invalid param: ${what} must be a non-negative integer`)
  return v
}

function encodedBytes (v: unknown, encoding: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw invalidParams(`Invalid param: ${what} must be a string`)
  const enc = encoding ?? 'base58'
  try {
    if (enc === 'base58') return base58Decode(v)
    if (enc === 'base64') return base64Decode(v)
  } catch {
    throw invalidParams(`Invalid param: ${what} is not valid ${String(enc)}`)
  }
  throw invalidParams(`Invalid param: encoding ${JSON.stringify(enc)}; use base58 or base64`)
}

function filters (v: unknown): Filter[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw invalidParams('Invalid param: filters must be an array')
  if (v.length > MAX_FILTERS) throw invalidParams(`Too many filters provided; max ${MAX_FILTERS}`)
  return v.map((f: unknown): Filter => {
    const o = cfg(f)
    if ('dataSize' in o) return { dataSize: nonNegativeInt(o.dataSize, 'dataSize') }
    if ('memcmp' in o) {
      const m = cfg(o.memcmp)
      const offset = nonNegativeInt(m.offset, 'memcmp.offset')
      if (typeof m.bytes === 'string' && (m.encoding ?? 'base58') === 'base58' && m.bytes.length > 175) throw invalidParams('Invalid param: memcmp bytes longer than 128 bytes')
      return { memcmp: { offset, bytes: encodedBytes(m.bytes, m.encoding, 'memcmp.bytes') } }
    }
    throw invalidParams('Invalid param: a filter is { dataSize } or { memcmp: { offset, bytes } }')
  })
}

function matches (data: Uint8Array, fs: Filter[]): boolean {
  for (const f of fs) {
    if ('dataSize' in f) {
      if (data.length !== f.dataSize) return false
    } else {
      const { offset, bytes } = f.memcmp
      if (offset + bytes.length > data.length) return false
      for (let i = 0; i < bytes.length; i++) if (data[offset + i] !== bytes[i]) return false
    }
  }
  return true
}

function dataSlice (c: Record<string, unknown>): { offset: number, length: number } | undefined {
  if (c.dataSlice === undefined || c.dataSlice === null) return undefined
  const s = cfg(c.dataSlice)
  return { offset: nonNegativeInt(s.offset, 'dataSlice.offset'), length: nonNegativeInt(s.length, 'dataSlice.length') }
}

const statusOf = (err: unknown): unknown => err === null ? { Ok: null } : { Err: err }

// ---- the methods -----------------------------------------------------------------------------------

export class ChainRpc {
  readonly server = new JSONRPCServer<RpcContext>()
  private nextSubscription = 1
  private readonly bySignature = new Map<string, Set<Subscription>>()
  private readonly byAccount = new Map<string, Set<Subscription>>()
  private readonly byProgram = new Map<string, Set<Subscription>>()
  private readonly slotSubs = new Set<Subscription>()
  private readonly logsSubs = new Set<Subscription>()
  private readonly detach: () => void

  constructor (private readonly bank: Bank, private readonly log: Logger, private readonly urls: { rpcUrl: string, wsUrl: string }) {
    this.server.mapErrorToJSONRPCErrorResponse = (id: JSONRPCID, error: unknown): JSONRPCErrorResponse => {
      if (error instanceof ChainRpcError) return createJSONRPCErrorResponse(id, error.rpcCode, error.message, error.data)
      if (error instanceof JSONRPCErrorException) return createJSONRPCErrorResponse(id, error.code, error.message, error.data)
      this.log.error({ err: error }, 'internal error in an RPC method')
      return createJSONRPCErrorResponse(id, RpcErrorCode.InternalError, `Internal error: ${(error as Error)?.message ?? String(error)}`)
    }
    this.registerMethods()
    this.detach = bank.on({
      processed: tx => { this.onProcessed(tx) },
      durable: frame => { this.onDurable(frame) },
      slot: slot => { this.onSlot(slot) }
    })
  }

  close (): void { this.detach() }

  private context (): { slot: number, apiVersion: string } {
    return { slot: this.bank.slot, apiVersion: SOLANA_CORE_VERSION }
  }

  private checkMinContextSlot (c: Record<string, unknown>): void {
    if (c.minContextSlot === undefined || c.minContextSlot === null) return
    const min = nonNegativeInt(c.minContextSlot, 'minContextSlot')
    if (min > this.bank.slot) throw new ChainRpcError(-32016, 'Minimum context slot has not been reached', { contextSlot: this.bank.slot })
  }

  private add (name: string, handler: (params: unknown[], ctx: RpcContext) => unknown): void {
    this.server.addMethod(name, (params: unknown, ctx: RpcContext) => handler(list(params), ctx))
  }

  /** An account as the RPC renders it, or throws for an unusable encoding. */
  accountJson (a: AccountView, encoding: unknown, slice?: { offset: number, length: number }): Record<string, unknown> {
    const enc = encoding ?? 'base58'
    let bytes = a.data
    if (slice !== undefined) bytes = bytes.subarray(Math.min(slice.offset, bytes.length), Math.min(slice.offset + slice.length, bytes.length))
    let data: unknown
    if (enc === 'base64') data = [base64Encode(bytes), 'base64']
    else if (enc === 'base58' || enc === 'binary') {
      if (bytes.length > MAX_BASE58_ACCOUNT_BYTES) throw new ChainRpcError(RpcErrorCode.InvalidRequest, `Encoded binary (base 58) data should be less than ${MAX_BASE58_ACCOUNT_BYTES} bytes, please use Base64 encoding.`)
      data = enc === 'binary' ? base58Encode(bytes) : [base58Encode(bytes), 'base58']
    } else if (enc === 'jsonParsed') {
      const owner = new PublicKey(a.owner)
      const parsed = isTokenProgram(owner) && slice === undefined ? parseTokenAccountJson(a.data, mint => this.mintDecimals(mint)) : undefined
      data = parsed !== undefined ? { program: 'spl-token', parsed, space: a.data.length } : [base64Encode(bytes), 'base64']
    } else if (enc === 'base64+zstd') {
      throw invalidParams('base64+zstd is not supported by the local chain; use base64')
    } else {
      throw invalidParams(`Invalid param: encoding ${JSON.stringify(enc)}; use base64, base58 or jsonParsed`)
    }
    return { data, executable: a.executable, lamports: Number(a.lamports), owner: base58Encode(a.owner), rentEpoch: Number(a.rentEpoch), space: a.data.length }
  }

  private mintDecimals (mint: PublicKey): number | undefined {
    const m = this.bank.getAccount(mint)
    if (m === null || !isTokenProgram(new PublicKey(m.owner))) return undefined
    return decodeMint(m.data)?.decimals
  }

  private tokenAccount (key: PublicKey): { amount: bigint, decimals: number, mint: PublicKey } {
    const a = this.bank.getAccount(key)
    if (a === null) throw invalidParams('Invalid param: could not find account')
    const t = isTokenProgram(new PublicKey(a.owner)) ? decodeTokenAccount(a.data) : undefined
    if (t === undefined) throw invalidParams('Invalid param: not a Token account')
    const decimals = this.mintDecimals(t.mint)
    if (decimals === undefined) throw invalidParams('Invalid param: could not find mint')
    return { amount: t.amount, decimals, mint: t.mint }
  }

  private registerMethods (): void {
    const bank = this.bank
    const ctx = (): { slot: number, apiVersion: string } => this.context()

    this.add('getHealth', () => 'ok')
    this.add('getVersion', () => ({ 'solana-core': SOLANA_CORE_VERSION, 'feature-set': 0, 'bitflow-local-chain': 'litesvm' }))
    this.add('getGenesisHash', () => bank.genesis.genesisHash)
    this.add('getIdentity', () => ({ identity: bank.faucet.publicKey.toBase58() }))
    this.add('getClusterNodes', () => [{ pubkey: bank.faucet.publicKey.toBase58(), gossip: null, tpu: null, rpc: this.urls.rpcUrl.replace(/^http:\/\//, ''), pubsub: this.urls.wsUrl.replace(/^ws:\/\//, ''), version: SOLANA_CORE_VERSION, featureSet: 0, shredVersion: 0 }])
    this.add('getSlot', p => { this.checkMinContextSlot(cfg(p[0])); commitment(cfg(p[0])); return bank.slot })
    this.add('getBlockHeight', p => { this.checkMinContextSlot(cfg(p[0])); commitment(cfg(p[0])); return bank.slot })
    this.add('getSlotLeader', () => bank.faucet.publicKey.toBase58())
    this.add('getTransactionCount', () => bank.transactionCount)
    this.add('getFirstAvailableBlock', () => 0)
    this.add('getMinimumLedgerSlot', () => 0)
    this.add('getRecentPrioritizationFees', () => [])
    this.add('getEpochInfo', p => {
      commitment(cfg(p[0]))
      return { absoluteSlot: bank.slot, blockHeight: bank.slot, epoch: bank.epoch, slotIndex: bank.slot % bank.slotsPerEpoch, slotsInEpoch: bank.slotsPerEpoch, transactionCount: bank.transactionCount }
    })
    this.add('getEpochSchedule', () => ({ slotsPerEpoch: bank.slotsPerEpoch, leaderScheduleSlotOffset: bank.slotsPerEpoch, warmup: false, firstNormalEpoch: 0, firstNormalSlot: 0 }))
    this.add('getLatestBlockhash', p => {
      const c = cfg(p[0]); commitment(c); this.checkMinContextSlot(c)
      const { blockhash, lastValidBlockHeight } = bank.latestBlockhash
      return { context: ctx(), value: { blockhash, lastValidBlockHeight } }
    })
    this.add('isBlockhashValid', p => {
      if (typeof p[0] !== 'string') throw invalidParams('Invalid param: blockhash must be a base-58 string')
      const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      return { context: ctx(), value: bank.isBlockhashValid(p[0]) }
    })
    this.add('getFeeForMessage', p => {
      const bytes = encodedBytes(p[0], 'base64', 'message')
      let message: VersionedMessage
      try { message = VersionedMessage.deserialize(bytes) } catch (err) { throw invalidParams(`Invalid param: failed to deserialize the message: ${(err as Error).message}`) }
      return { context: ctx(), value: bank.isBlockhashValid(message.recentBlockhash) ? feeForMessage(message) : null }
    })
    this.add('getMinimumBalanceForRentExemption', p => {
      const size = nonNegativeInt(p[0] ?? 0, 'data length')
      if (size > 10 * 1024 * 1024) throw invalidParams('Invalid param: data length exceeds the 10 MiB account limit')
      return Number(bank.minimumBalanceForRentExemption(size))
    })
    this.add('getBalance', p => {
      const key = pubkey(p[0]); const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      return { context: ctx(), value: Number(bank.getAccount(key)?.lamports ?? 0n) }
    })
    this.add('getAccountInfo', p => {
      const key = pubkey(p[0]); const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      const a = bank.getAccount(key)
      return { context: ctx(), value: a === null ? null : this.accountJson(a, c.encoding, dataSlice(c)) }
    })
    this.add('getMultipleAccounts', p => {
      if (!Array.isArray(p[0])) throw invalidParams('Invalid param: expected an array of public keys')
      if (p[0].length > MAX_MULTIPLE_ACCOUNTS) throw invalidParams(`Too many inputs provided; max ${MAX_MULTIPLE_ACCOUNTS}`)
      const keys = p[0].map((k: unknown, i: number) => pubkey(k, `pubkey #${i}`))
      const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      const slice = dataSlice(c)
      return { context: ctx(), value: keys.map(k => { const a = bank.getAccount(k); return a === null ? null : this.accountJson(a, c.encoding, slice) }) }
    })
    this.add('getProgramAccounts', p => {
      const owner = pubkey(p[0], 'program id'); const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      const fs = filters(c.filters)
      const slice = dataSlice(c)
      const value = bank.getProgramAccounts(owner)
        .filter(e => matches(e.account.data, fs))
        .map(e => ({ pubkey: base58Encode(e.pubkey), account: this.accountJson(e.account, c.encoding, slice) }))
      return c.withContext === true ? { context: ctx(), value } : value
    })
    this.add('getTokenAccountBalance', p => {
      const key = pubkey(p[0], 'token account'); commitment(cfg(p[1]))
      const t = this.tokenAccount(key)
      return { context: ctx(), value: uiTokenAmount(t.amount, t.decimals) }
    })
    this.add('getTokenSupply', p => {
      const mint = pubkey(p[0], 'mint'); commitment(cfg(p[1]))
      const a = bank.getAccount(mint)
      const m = a !== null && isTokenProgram(new PublicKey(a.owner)) ? decodeMint(a.data) : undefined
      if (m === undefined) throw invalidParams('Invalid param: not a Token mint')
      return { context: ctx(), value: uiTokenAmount(m.supply, m.decimals) }
    })
    this.add('getTokenAccountsByOwner', p => {
      const owner = pubkey(p[0], 'owner'); const f = cfg(p[1]); const c = cfg(p[2]); commitment(c)
      const mint = f.mint !== undefined ? pubkey(f.mint, 'mint') : undefined
      const program = f.programId !== undefined ? pubkey(f.programId, 'programId') : TOKEN_PROGRAM_ID
      if (mint === undefined && f.programId === undefined) throw invalidParams('Invalid param: give { mint } or { programId }')
      if (!isTokenProgram(program)) throw invalidParams('Invalid param: unrecognized Token program id')
      const fs: Filter[] = [{ memcmp: { offset: 32, bytes: owner.toBytes() } }]
      if (mint !== undefined) fs.push({ memcmp: { offset: 0, bytes: mint.toBytes() } })
      const value = bank.getProgramAccounts(program)
        .filter(e => e.account.data.length >= 165 && matches(e.account.data, fs))
        .map(e => ({ pubkey: base58Encode(e.pubkey), account: this.accountJson(e.account, c.encoding, dataSlice(c)) }))
      return { context: ctx(), value }
    })
    this.add('getSignatureStatuses', p => {
      if (!Array.isArray(p[0])) throw invalidParams('Invalid param: expected an array of signatures')
      if (p[0].length > MAX_SIGNATURE_STATUSES) throw invalidParams(`Too many inputs provided; max ${MAX_SIGNATURE_STATUSES}`)
      cfg(p[1])
      const value = p[0].map((s: unknown) => {
        if (typeof s !== 'string') throw invalidParams('Invalid param: a signature must be a base-58 string')
        const st = bank.signatureStatus(s)
        if (st === undefined) return null
        return { slot: st.slot, confirmations: st.durable ? null : 0, err: st.err, status: statusOf(st.err), confirmationStatus: st.durable ? 'finalized' : 'processed' }
      })
      return { context: ctx(), value }
    })
    this.add('getTransaction', p => {
      if (typeof p[0] !== 'string') throw invalidParams('Invalid param: signature must be a base-58 string')
      const c = typeof p[1] === 'string' ? { encoding: p[1] } : cfg(p[1])
      if (commitment(c) === 'processed') throw invalidParams('Method does not support commitment below `confirmed`')
      const record = bank.history.get(p[0])
      if (record === undefined || bank.signatureStatus(p[0])?.durable !== true) return null
      return this.transactionJson(record, c)
    })
    this.add('sendTransaction', p => {
      const c = cfg(p[1]); this.checkMinContextSlot(c)
      if (c.preflightCommitment !== undefined) commitment({ commitment: c.preflightCommitment })
      const wire = encodedBytes(p[0], c.encoding, 'transaction')
      return bank.process(wire, { skipPreflight: c.skipPreflight === true })
    })
    this.add('simulateTransaction', p => {
      const c = cfg(p[1]); commitment(c); this.checkMinContextSlot(c)
      const wire = encodedBytes(p[0], c.encoding, 'transaction')
      const accounts = c.accounts !== undefined ? cfg(c.accounts) : undefined
      const addresses = accounts !== undefined ? list(accounts.addresses).map((k, i) => pubkey(k, `accounts.addresses #${i}`).toBase58()) : undefined
      const r = bank.simulate(wire, { sigVerify: c.sigVerify === true, replaceRecentBlockhash: c.replaceRecentBlockhash === true, accounts: addresses })
      const value: Record<string, unknown> = {
        err: r.err,
        logs: r.logs,
        accounts: r.accounts === null ? null : r.accounts.map(a => a === null ? null : this.accountJson(a, accounts?.encoding ?? 'base64')),
        unitsConsumed: r.unitsConsumed,
        returnData: r.returnData,
        innerInstructions: null
      }
      if (r.replacementBlockhash !== null) value.replacementBlockhash = r.replacementBlockhash
      return { context: ctx(), value }
    })
    this.add('requestAirdrop', p => {
      const to = pubkey(p[0]); commitment(cfg(p[2]))
      if (typeof p[1] !== 'number') throw invalidParams('Invalid param: lamports must be a number')
      return bank.airdrop(to, p[1])
    })

    // ---- subscriptions (WebSocket only) ----
    const conn = (c: RpcContext): PubsubConnection => {
      if (c.connection === undefined) throw new ChainRpcError(RpcErrorCode.MethodNotFound, `subscriptions need a WebSocket connection: connect to ${this.urls.wsUrl}`)
      return c.connection
    }
    this.add('signatureSubscribe', (p, c) => {
      const connection = conn(c)
      if (typeof p[0] !== 'string') throw invalidParams('Invalid param: signature must be a base-58 string')
      const o = cfg(p[1])
      const sub: Subscription = { id: this.nextSubscription++, kind: 'signature', conn: connection, signature: p[0], commitment: commitment(o), received: o.enableReceivedNotification === true }
      const st = bank.signatureStatus(p[0])
      if (st !== undefined && (st.durable || sub.commitment === 'processed')) {
        // already there: notify right after the subscribe response, then dispose (as validators do)
        connection.subscriptions.set(sub.id, sub)
        connection.deferred.push(() => { this.notifySignature(sub, st.slot, st.err) })
        return sub.id
      }
      return this.register(sub, this.bySignature, p[0])
    })
    this.add('accountSubscribe', (p, c) => {
      const connection = conn(c); const key = pubkey(p[0]); const o = cfg(p[1])
      const encoding = o.encoding ?? 'base58'
      if (!['base58', 'base64', 'jsonParsed', 'binary'].includes(encoding as string)) throw invalidParams(`Invalid param: encoding ${JSON.stringify(encoding)}`)
      return this.register({ id: this.nextSubscription++, kind: 'account', conn: connection, key: key.toBase58(), encoding: encoding as string, commitment: commitment(o) }, this.byAccount, key.toBase58())
    })
    this.add('programSubscribe', (p, c) => {
      const connection = conn(c); const owner = pubkey(p[0], 'program id'); const o = cfg(p[1])
      const encoding = o.encoding ?? 'base58'
      if (!['base58', 'base64', 'jsonParsed', 'binary'].includes(encoding as string)) throw invalidParams(`Invalid param: encoding ${JSON.stringify(encoding)}`)
      return this.register({ id: this.nextSubscription++, kind: 'program', conn: connection, owner: owner.toBase58(), encoding: encoding as string, filters: filters(o.filters), commitment: commitment(o) }, this.byProgram, owner.toBase58())
    })
    this.add('slotSubscribe', (_p, c) => this.register({ id: this.nextSubscription++, kind: 'slot', conn: conn(c) }, undefined, undefined, this.slotSubs))
    this.add('rootSubscribe', (_p, c) => this.register({ id: this.nextSubscription++, kind: 'root', conn: conn(c) }, undefined, undefined, this.slotSubs))
    this.add('logsSubscribe', (p, c) => {
      const connection = conn(c)
      let mentions: string | undefined
      if (p[0] === 'all' || p[0] === 'allWithVotes') mentions = undefined
      else {
        const f = cfg(p[0])
        if (!Array.isArray(f.mentions) || f.mentions.length !== 1) throw invalidParams('Invalid param: logsSubscribe takes "all", "allWithVotes" or { mentions: [one pubkey] }')
        mentions = pubkey(f.mentions[0], 'mentions').toBase58()
      }
      return this.register({ id: this.nextSubscription++, kind: 'logs', conn: connection, mentions, commitment: commitment(cfg(p[1])) }, undefined, undefined, this.logsSubs)
    })
    for (const kind of ['signature', 'account', 'program', 'slot', 'root', 'logs']) {
      this.add(`${kind}Unsubscribe`, (p, c) => {
        const connection = conn(c)
        const id = nonNegativeInt(p[0], 'subscription id')
        const sub = connection.subscriptions.get(id)
        if (sub === undefined || sub.kind !== kind) throw invalidParams('Invalid subscription id.')
        this.unregister(sub)
        return true
      })
    }
  }

  transactionJson (record: TxRecord, c: Record<string, unknown>): unknown {
    const wire = Buffer.from(record.wire, 'base64')
    const tx = VersionedTransaction.deserialize(wire)
    const version = tx.message.version
    const maxVersion = c.maxSupportedTransactionVersion
    if (version !== 'legacy' && (maxVersion === undefined || maxVersion === null || (typeof maxVersion === 'number' && maxVersion < version))) {
      throw new ChainRpcError(-32015, `Transaction version (${version}) is not supported by the requesting client. Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": ${version}`)
    }
    const encoding = c.encoding ?? 'json'
    let transaction: unknown
    if (encoding === 'base64') transaction = [record.wire, 'base64']
    else if (encoding === 'base58') transaction = [base58Encode(wire), 'base58']
    else if (encoding === 'json' || encoding === 'jsonParsed') {
      const m = tx.message
      const message: Record<string, unknown> = {
        accountKeys: m.staticAccountKeys.map(k => k.toBase58()),
        header: m.header,
        recentBlockhash: m.recentBlockhash,
        instructions: m.compiledInstructions.map(ix => ({ programIdIndex: ix.programIdIndex, accounts: ix.accountKeyIndexes, data: base58Encode(ix.data), stackHeight: null }))
      }
      if (version !== 'legacy') {
        message.addressTableLookups = (m as MessageV0).addressTableLookups.map(l => ({ accountKey: l.accountKey.toBase58(), writableIndexes: l.writableIndexes, readonlyIndexes: l.readonlyIndexes }))
      }
      transaction = { signatures: tx.signatures.map(s => base58Encode(s)), message }
    } else {
      throw invalidParams(`Invalid param: encoding ${JSON.stringify(encoding)}; use json, base64 or base58`)
    }
    const meta: Record<string, unknown> = {
      err: record.err,
      status: statusOf(record.err),
      fee: record.fee,
      preBalances: record.preBalances,
      postBalances: record.postBalances,
      innerInstructions: [],
      logMessages: record.logs,
      preTokenBalances: [],
      postTokenBalances: [],
      rewards: [],
      loadedAddresses: record.loadedAddresses,
      computeUnitsConsumed: record.unitsConsumed
    }
    if (record.returnData !== null) meta.returnData = { programId: record.returnData.programId, data: [record.returnData.data, 'base64'] }
    return { slot: record.slot, blockTime: record.blockTime, transaction, meta, version }
  }

  // ---- subscription plumbing -------------------------------------------------------------------------

  private register (sub: Subscription, index?: Map<string, Set<Subscription>>, key?: string, set?: Set<Subscription>): number {
    sub.conn.subscriptions.set(sub.id, sub)
    if (index !== undefined && key !== undefined) {
      let s = index.get(key)
      if (s === undefined) { s = new Set(); index.set(key, s) }
      s.add(sub)
    }
    set?.add(sub)
    return sub.id
  }

  private unregister (sub: Subscription): void {
    sub.conn.subscriptions.delete(sub.id)
    const drop = (index: Map<string, Set<Subscription>>, key: string): void => {
      const s = index.get(key)
      if (s === undefined) return
      s.delete(sub)
      if (s.size === 0) index.delete(key)
    }
    if (sub.kind === 'signature') drop(this.bySignature, sub.signature)
    else if (sub.kind === 'account') drop(this.byAccount, sub.key)
    else if (sub.kind === 'program') drop(this.byProgram, sub.owner)
    else if (sub.kind === 'logs') this.logsSubs.delete(sub)
    else this.slotSubs.delete(sub)
  }

  /** Drops every subscription of a closed connection. */
  disconnect (conn: PubsubConnection): void {
    for (const sub of [...conn.subscriptions.values()]) this.unregister(sub)
  }

  private notify (sub: Subscription, method: string, result: unknown): void {
    sub.conn.send({ jsonrpc: '2.0', method, params: { result, subscription: sub.id } })
  }

  private notifySignature (sub: Subscription & { kind: 'signature' }, slot: number, err: unknown): void {
    this.notify(sub, 'signatureNotification', { context: { slot }, value: { err } })
    this.unregister(sub)
  }

  private onProcessed (tx: TxRecord): void {
    const subs = this.bySignature.get(tx.signature)
    if (subs !== undefined) {
      for (const sub of [...subs]) {
        if (sub.kind !== 'signature') continue
        if (sub.commitment === 'processed') this.notifySignature(sub, tx.slot, tx.err)
        else if (sub.received) this.notify(sub, 'signatureNotification', { context: { slot: tx.slot }, value: 'receivedSignature' })
      }
    }
    this.notifyLogs(tx, 'processed')
  }

  private notifyLogs (tx: TxRecord, phase: 'processed' | 'durable'): void {
    if (this.logsSubs.size === 0) return
    let keys: Set<string> | undefined
    for (const sub of this.logsSubs) {
      if (sub.kind !== 'logs' || (sub.commitment === 'processed') !== (phase === 'processed')) continue
      if (sub.mentions !== undefined) {
        keys ??= new Set(VersionedTransaction.deserialize(Buffer.from(tx.wire, 'base64')).message.staticAccountKeys.map(k => k.toBase58()))
        if (!keys.has(sub.mentions)) continue
      }
      this.notify(sub, 'logsNotification', { context: { slot: tx.slot }, value: { signature: tx.signature, err: tx.err, logs: tx.logs } })
    }
  }

  private onDurable (frame: SlotFrame): void {
    for (const tx of frame.txs) {
      const subs = this.bySignature.get(tx.signature)
      if (subs !== undefined) for (const sub of [...subs]) if (sub.kind === 'signature') this.notifySignature(sub, tx.slot, tx.err)
      this.notifyLogs(tx, 'durable')
    }
    if (this.byAccount.size === 0 && this.byProgram.size === 0) return
    const context = { slot: frame.slot }
    for (const state of frame.accounts) {
      const accountSubs = this.byAccount.get(state.k)
      const view: AccountView | null = 'x' in state
        ? null
        : { lamports: BigInt(state.l), owner: base58Decode(state.o), executable: state.e, rentEpoch: BigInt(state.r), data: new Uint8Array(Buffer.from(state.d, 'base64')) }
      const rendered = (encoding: string): unknown => view === null
        ? { data: ['', 'base64'], executable: false, lamports: 0, owner: '11111111111111111111111111111111', rentEpoch: 0, space: 0 }
        : this.safeAccountJson(view, encoding)
      if (accountSubs !== undefined) for (const sub of accountSubs) if (sub.kind === 'account') this.notify(sub, 'accountNotification', { context, value: rendered(sub.encoding) })
      if (view === null) continue
      const programSubs = this.byProgram.get(base58Encode(view.owner))
      if (programSubs !== undefined) {
        for (const sub of programSubs) {
          if (sub.kind !== 'program' || !matches(view.data, sub.filters)) continue
          this.notify(sub, 'programNotification', { context, value: { pubkey: state.k, account: rendered(sub.encoding) } })
        }
      }
    }
  }

  private safeAccountJson (view: AccountView, encoding: string): unknown {
    try {
      return this.accountJson(view, encoding)
    } catch {
      return this.accountJson(view, 'base64') // too large for base58: send base64 rather than nothing
    }
  }

  private onSlot (slot: number): void {
    for (const sub of this.slotSubs) {
      if (sub.kind === 'slot') this.notify(sub, 'slotNotification', { parent: slot - 1, root: this.bank.durableSlot, slot })
      else this.notify(sub, 'rootNotification', this.bank.durableSlot)
    }
  }
}

