import { Connection, PublicKey } from '@solana/web3.js'
import { Type } from '@sinclair/typebox'
import {
  CONFIG_SIZE, NODE_SIZE, BPS, PPM, configAddress, decodeConfig, decodeNode, NodeStatus,
  type ConfigAccount, type NodeAccount, type Params
} from '../../programs/client/index.js'
import { base58btc } from 'multiformats/bases/base58'
import { safetyCondition, safetyFromParams, type SafetyCheck } from '../../protocols/execution/sampling.js'
import type { SettlementParams } from '../preset.js'
import { publicKeyOfPeer } from './liveness.js'
import type { LivenessService } from './liveness.js'
import type { DaemonService, ServiceContext } from './service.js'
import { BitflowError } from '../errors.js'
import { RpcError, RpcErrorCode } from '../rpc/errors.js'
import { NetworkParamsResultSchema, RegistryEntrySchema } from '../rpc/types.js'


/** a chain JSON-RPC request that takes longer than this is abandoned (and retried by its loop) */
const CHAIN_REQUEST_TIMEOUT_MS = 15_000

export class ChainTimeoutError extends BitflowError {
  constructor (ms: number) {
    super('ERR_CHAIN_TIMEOUT', `the chain's JSON-RPC did not answer within ${ms / 1000} s; check that the chain at --solana-rpc is up and not overloaded`)
  }
}
export class UnsafeNetworkError extends BitflowError {
  constructor (report: SafetyCheck, source: string) {
    super('ERR_UNSAFE_NETWORK', `refusing to run: the network's ${source} parameters make cheating pay: ${report.explanation}`)
  }
}

export interface RegistryEntry {
  operator: string
  peerId: string | undefined
  node: NodeAccount
  address: string
}

/** Program parameters in the units people read. */
export function readableParams (p: Params): Record<string, number | string> {
  return {
    minStake: p.minStake.toString(),
    minFee: p.minFee.toString(),
    unbondingDelaySecs: Number(p.unbondingDelay),
    challengeDelaySecs: Number(p.challengeDelay),
    samplingProbability: p.samplingPpm / PPM,
    validatorRewardMultiple: p.validatorRewardBps / BPS,
    slashFraction: p.slashBps / BPS,
    bountyShare: p.bountyBps / BPS,
    computeCost: p.computeCostBps / BPS,
    collusion: p.collusionBps / BPS,
    minStakeRatio: p.minStakeRatioBps / BPS,
    seedDelaySlots: p.seedDelaySlots,
    deadlineBaseSecs: p.deadlineBaseSecs,
    deadlinePer100CuSecs: p.deadlinePer100CuSecs,
    unverifiablePay: p.unverifiablePayBps / BPS
  }
}

/** The safety condition of on-chain parameters, with the program's own integer verdict. */
export function safetyOf (p: Params): SafetyCheck {
  return safetyFromParams({ samplingPpm: p.samplingPpm, computeCostBps: p.computeCostBps, collusionBps: p.collusionBps, validatorRewardBps: p.validatorRewardBps, slashBps: p.slashBps, minStakeRatioBps: p.minStakeRatioBps })
}

/** The safety condition of a preset's parameters (S = slash fraction x minimum stake ratio). */
export function presetSafety (s: SettlementParams): SafetyCheck {
  return safetyCondition({ p: s.samplingProbability, computeCost: s.computeCost, collusion: s.collusion, reward: s.validatorRewardMultiple, slash: s.slashFraction * s.minStakeRatio })
}

/**
 * The daemon's view of the chain: the network's config account and the node registry, refreshed
 * on a timer. Registered, staked, non-slashed nodes are admitted to liveness. At start it checks the
 * on-chain parameters against the safety condition and refuses an unsafe network.
 */
export class SettlementService implements DaemonService {
  readonly name = 'settlement'
  readonly #ctx: ServiceContext
  readonly #programId: PublicKey | undefined
  #connection: Connection | undefined
  #config: ConfigAccount | undefined
  #configAddress: PublicKey | undefined
  #registry = new Map<string, RegistryEntry>()
  #timer: NodeJS.Timeout | undefined
  #lastError: string | undefined
  #refreshedAt: number | undefined

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    this.#programId = ctx.options.programId !== undefined ? new PublicKey(ctx.options.programId) : undefined
    this.#registerRpc()
    if (this.#programId !== undefined) {
      ctx.services.get<LivenessService>('liveness').addAdmissionSource(peerId => this.isStaked(peerId))
    }
  }

  get enabled (): boolean { return this.#programId !== undefined }
  get connection (): Connection | undefined { return this.#connection }
  get config (): ConfigAccount | undefined { return this.#config }
  get configAddress (): PublicKey | undefined { return this.#configAddress }
  registry (): RegistryEntry[] { return [...this.#registry.values()] }

  /** Registered on chain, active (not slashed) and staked at least the minimum. */
  isStaked (peerId: string): boolean {
    const key = publicKeyOfPeer(peerId)
    if (key === undefined || this.#config === undefined) return false
    const entry = this.#registry.get(base58btc.baseEncode(key))
    return entry !== undefined && entry.node.status === NodeStatus.Active && entry.node.stake >= this.#config.params.minStake
  }

  async start (): Promise<void> {
    const fromPreset = presetSafety(this.#ctx.preset.settlement)
    if (!fromPreset.safe) throw new UnsafeNetworkError(fromPreset, `preset (bootstrap/${this.#ctx.options.network}.yaml)`)
    if (this.#programId === undefined) {
      this.#ctx.log.info('no settlement program configured (--program-id): admission comes from the genesis only')
      return
    }
    // every chain request is bounded: one lost response must not stall the loops that await it
    // (a plain timer cleared on the response: AbortSignal.timeout/any per request cost measurable CPU)
    const boundedFetch: typeof fetch = async (input, init) => {
      const bound = new AbortController()
      const timer = setTimeout(() => { bound.abort(new ChainTimeoutError(CHAIN_REQUEST_TIMEOUT_MS)) }, CHAIN_REQUEST_TIMEOUT_MS)
      const outer = init?.signal
      const onOuter = (): void => { bound.abort(outer?.reason) }
      outer?.addEventListener('abort', onOuter, { once: true })
      try {
        return await fetch(input, { ...init, signal: bound.signal })
      } finally {
        clearTimeout(timer)
        outer?.removeEventListener('abort', onOuter)
      }
    }
    this.#connection = new Connection(this.#ctx.options.solanaRpc, { commitment: 'confirmed', disableRetryOnRateLimit: true, fetch: boundedFetch })
    this.#configAddress = configAddress(this.#programId, Buffer.from(this.#ctx.genesisHash, 'hex'))[0]
    // the safety check needs the on-chain config; a chain that is not reachable yet is retried
    await this.refresh().catch(err => { this.#lastError = (err as Error).message })
    if (this.#config !== undefined) {
      const safety = safetyOf(this.#config.params)
      if (!safety.safe) throw new UnsafeNetworkError(safety, 'on-chain')
      this.#ctx.log.info({ margin: safety.margin, nodes: this.#registry.size }, 'settlement config loaded; network parameters are safe')
    } else {
      this.#ctx.log.warn({ err: this.#lastError, rpc: this.#ctx.options.solanaRpc }, 'settlement config not readable yet; retrying')
    }
    const interval = Math.max(1000, this.#ctx.preset.params.heartbeatIntervalMs)
    this.#timer = setInterval(() => {
      this.refresh().catch(err => {
        const message = (err as Error).message
        if (message !== this.#lastError) this.#ctx.log.warn({ err: message }, 'settlement refresh failed')
        this.#lastError = message
      })
    }, interval)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  /** Re-reads the config and every node account of this network. */
  async refresh (): Promise<void> {
    const connection = this.#connection
    if (connection === undefined || this.#programId === undefined || this.#configAddress === undefined) return
    const info = await connection.getAccountInfo(this.#configAddress)
    if (info === null) throw new Error(`no network config at ${this.#configAddress.toBase58()} (program ${this.#programId.toBase58()})`)
    if (!info.owner.equals(this.#programId) || info.data.length !== CONFIG_SIZE) throw new Error('the config account is not owned by the settlement program')
    const config = decodeConfig(info.data)
    const accounts = await connection.getProgramAccounts(this.#programId, {
      filters: [{ dataSize: NODE_SIZE }, { memcmp: { offset: 8, bytes: this.#configAddress.toBase58() } }]
    })
    const registry = new Map<string, RegistryEntry>()
    for (const a of accounts) {
      try {
        const node = decodeNode(a.account.data)
        const operator = node.operator.toBase58()
        registry.set(operator, { operator, peerId: undefined, node, address: a.pubkey.toBase58() })
      } catch { /* not a node account */ }
    }
    this.#config = config
    this.#registry = registry
    this.#refreshedAt = Date.now()
    this.#lastError = undefined
  }

  #registerRpc (): void {
    this.#ctx.registry.add({
      name: 'bitflow_networkParams',
      summary: 'The network\'s settlement parameters (on chain when settlement is configured, else the preset) and the Proof-of-Sampling safety margin',
      params: [],
      result: { name: 'params', schema: NetworkParamsResultSchema },
      mutating: false,
      handler: () => {
        const source = this.#config !== undefined ? 'chain' : 'preset'
        const p = this.#config?.params
        const readable = p !== undefined ? readableParams(p) : { ...this.#ctx.preset.settlement }
        const safety = p !== undefined ? safetyOf(p) : presetSafety(this.#ctx.preset.settlement)
        return {
          source,
          network: this.#ctx.options.network,
          programId: this.#programId?.toBase58() ?? null,
          config: this.#configAddress?.toBase58() ?? null,
          committeeEpoch: this.#config !== undefined ? Number(this.#config.committeeEpoch) : null,
          threshold: this.#config?.threshold ?? null,
          params: readable,
          safety: { safe: safety.safe, margin: safety.margin, minSamplingProbability: safety.threshold, explanation: safety.explanation },
          lastError: this.#lastError ?? null,
          refreshedAt: this.#refreshedAt !== undefined ? new Date(this.#refreshedAt).toISOString() : null
        }
      }
    })
    this.#ctx.registry.add({
      name: 'bitflow_registry',
      summary: 'Nodes registered on chain for this network: owner, operator, stake, unbonding, payments in flight, status, specializations',
      params: [],
      result: { name: 'nodes', schema: Type.Array(RegistryEntrySchema) },
      mutating: false,
      handler: () => {
        if (!this.enabled) throw new RpcError(RpcErrorCode.Unavailable, 'settlement is not configured on this daemon (--program-id)')
        return this.registry().map(e => ({
          operator: e.operator,
          owner: e.node.owner.toBase58(),
          account: e.address,
          status: NodeStatus[e.node.status] ?? String(e.node.status),
          stake: e.node.stake.toString(),
          unbonding: e.node.unbonding.toString(),
          paymentsInFlight: e.node.paymentsInFlight.toString(),
          capacity: e.node.capacity,
          specializations: e.node.specializations.map(s => Buffer.from(s).toString('hex'))
        }))
      }
    })
  }
}
