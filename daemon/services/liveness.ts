import { freemem } from 'node:os'
import { readFileSync } from 'node:fs'
import { Type } from '@sinclair/typebox'
import { peerIdFromString } from '@libp2p/peer-id'
import { validateHeartbeat, encodeHeartbeat, type HeartbeatBody, type Hardware, type NodeStatus } from '../../protocols/liveness/heartbeat.js'
import { LivenessTable, PeerRateLimiter, type LivenessEntry, type LivenessChange } from '../../protocols/liveness/table.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import { writeAtomic } from '../datadir.js'
import { detectHardware } from '../hardware.js'
import { softwareVersion } from '../paths.js'
import type { DaemonService, ServiceContext } from './service.js'
import { LivenessEntrySchema, LivenessEventSchema } from '../rpc/types.js'

/** Public key embedded in an Ed25519 peer id (cached: the hot path of every gossip validation). */
const keyCache = new Map<string, Uint8Array | undefined>()
export function publicKeyOfPeer (peerId: string): Uint8Array | undefined {
  if (keyCache.has(peerId)) return keyCache.get(peerId)
  let key: Uint8Array | undefined
  try {
    const id = peerIdFromString(peerId)
    key = id.type === 'Ed25519' ? id.publicKey.raw : undefined
  } catch {
    key = undefined
  }
  if (keyCache.size > 10_000) keyCache.clear()
  keyCache.set(peerId, key)
  return key
}

const CLOCK_WINDOW_MS = 30_000

/**
 * The liveness table every daemon keeps from heartbeat gossip (oracles use it for their committee
 * views; any daemon uses it to confirm DHT providers). `bitflow_liveness` and the `liveness` topic.
 */
export class LivenessService implements DaemonService {
  readonly name = 'liveness'
  readonly table: LivenessTable
  readonly #ctx: ServiceContext
  readonly #limiter: PeerRateLimiter
  readonly #admitted: Set<string>
  readonly #admissionSources: Array<(peerId: string) => boolean> = []
  readonly #listeners = new Set<(c: LivenessChange) => void>()
  #timer: NodeJS.Timeout | undefined

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    const interval = ctx.preset.params.heartbeatIntervalMs
    this.table = new LivenessTable({ heartbeatIntervalMs: interval, missedBeats: 3, beatsToRecover: 2 })
    // a burst of 3, then one heartbeat per half interval: an honest node sends one per interval
    this.#limiter = new PeerRateLimiter(3, interval / 2)
    this.#admitted = new Set(ctx.genesis.admittedNodes.map(n => n.peerId))
    ctx.gossip.add<HeartbeatBody>({
      kind: 'liveness',
      validate: (data, from, nowMs) => validateHeartbeat(data, from, {
        genesisHash: ctx.genesisHash,
        nowMs,
        clockWindowMs: CLOCK_WINDOW_MS,
        publicKeyOf: publicKeyOfPeer,
        verify: ed25519Verify,
        isAdmitted: id => this.isAdmitted(id),
        lastSeen: id => this.table.lastSeen(id),
        takeRateToken: id => this.#limiter.take(id, nowMs),
        reorderToleranceMs: interval * 2
      }),
      handle: hb => { this.#emit(this.table.record(hb, Date.now())) }
    })
    this.#registerRpc()
  }

  /** Admitted: listed in the genesis, or accepted by a registered source (the chain registry). */
  isAdmitted (peerId: string): boolean {
    return this.#admitted.has(peerId) || this.#admissionSources.some(f => f(peerId))
  }

  addAdmissionSource (source: (peerId: string) => boolean): void {
    this.#admissionSources.push(source)
  }

  onChange (listener: (c: LivenessChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #emit (change: LivenessChange | undefined): void {
    if (change === undefined) return
    this.#ctx.log.info({ peer: change.peerId, from: change.from, to: change.to }, 'liveness changed')
    for (const l of this.#listeners) l(change)
  }

  start (): void {
    const interval = this.#ctx.preset.params.heartbeatIntervalMs
    this.#timer = setInterval(() => {
      const now = Date.now()
      for (const change of this.table.sweep(now)) this.#emit(change)
      this.table.prune(now, 600_000)
      const counts: Record<string, number> = { available: 0, busy: 0, draining: 0, offline: 0 }
      for (const e of this.table.entries()) counts[e.status] = (counts[e.status] ?? 0) + 1
      for (const [status, n] of Object.entries(counts)) this.#ctx.metrics.livenessNodes.set({ status }, n)
    }, Math.max(100, Math.floor(interval / 4)))
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#listeners.clear()
  }

  #registerRpc (): void {
    this.#ctx.registry.add({
      name: 'bitflow_liveness',
      summary: 'The liveness table this daemon keeps from heartbeats: every admitted node seen, with status, capacity, hardware and specializations',
      params: [],
      result: { name: 'liveness', schema: Type.Object({ heartbeatIntervalMs: Type.Integer(), nodes: Type.Array(LivenessEntrySchema) }) },
      mutating: false,
      handler: () => ({ heartbeatIntervalMs: this.#ctx.preset.params.heartbeatIntervalMs, nodes: this.table.entries().map(toRpcEntry) })
    })
    this.#ctx.hub.addTopic({
      name: 'liveness',
      description: 'liveness status changes (a node joins, goes offline, comes back, changes its reported status)',
      event: LivenessEventSchema,
      attach: (_params, emit) => this.onChange(c => { emit({ peerId: c.peerId, from: c.from, to: c.to, at: new Date(c.atMs).toISOString(), node: toRpcEntry(c.entry) }) })
    })
  }
}

export function toRpcEntry (e: LivenessEntry): LivenessEntry & { lastSeen: string } {
  return { ...e, lastSeen: new Date(e.lastSeenMs).toISOString() }
}

/**
 * Heartbeats of a node or validator: signed, every heartbeat interval, with a boot epoch that
 * grows at every start (persisted in the data dir) so a restarted node is not taken for a replay.
 */
export class HeartbeatService implements DaemonService {
  readonly name = 'heartbeat'
  readonly #ctx: ServiceContext
  #hardware: Hardware | undefined
  #bootEpoch = 0
  #seq = 0
  #status: NodeStatus = 'available'
  #busySlots = 0
  #timer: NodeJS.Timeout | undefined
  #last: Uint8Array | undefined
  readonly #datasetSources: Array<() => string[]> = []

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
  }

  get bootEpoch (): number { return this.#bootEpoch }
  /** the last heartbeat published, as sent (for diagnostics and replay tests) */
  get lastPublished (): Uint8Array | undefined { return this.#last }

  setStatus (status: NodeStatus): void { this.#status = status }
  setBusySlots (n: number): void { this.#busySlots = n }
  addDatasetSource (source: () => string[]): void { this.#datasetSources.push(source) }

  async start (): Promise<void> {
    // the content service (built after this one) knows which datasets this node holds
    const content = this.#ctx.services.find<DaemonService & { datasets: () => string[] }>('content')
    if (content !== undefined) this.addDatasetSource(() => content.datasets())
    this.#hardware = await detectHardware(this.#ctx.options.node.simulateGpu, this.#ctx.signal)
    this.#bootEpoch = nextBootEpoch(this.#ctx.dataDir.sub('boot-epoch'))
    await this.#publish()
    this.#timer = setInterval(() => { void this.#publish() }, this.#ctx.preset.params.heartbeatIntervalMs)
    this.#timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    // tell the committee we are leaving rather than letting it time us out
    this.#status = 'draining'
    await this.#publish().catch(() => {})
  }

  body (): HeartbeatBody {
    const o = this.#ctx.options.node
    return {
      v: 1,
      peerId: this.#ctx.identity.peerId.toString(),
      bootEpoch: this.#bootEpoch,
      seq: this.#seq,
      timestampMs: Date.now(),
      status: this.#status,
      capacity: { taskSlots: o.taskSlots, freeSlots: Math.max(0, o.taskSlots - this.#busySlots), freeMemoryBytes: freemem() },
      hardware: this.#hardware!,
      specializations: [...o.specializations],
      datasets: [...new Set(this.#datasetSources.flatMap(f => f()))].sort().slice(0, 256),
      software: softwareVersion(),
      roles: [...this.#ctx.options.roles].sort()
    }
  }

  async #publish (): Promise<void> {
    try {
      this.#seq++
      const data = encodeHeartbeat(this.body(), this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
      this.#last = data
      await this.#ctx.gossip.publish('liveness', data)
    } catch (err) {
      this.#ctx.log.warn({ err }, 'heartbeat not published')
    }
  }
}

function nextBootEpoch (path: string): number {
  let previous = 0
  try { previous = Number.parseInt(readFileSync(path, 'utf8').trim(), 10) || 0 } catch { /* first boot */ }
  const epoch = previous + 1
  writeAtomic(path, `${epoch}\n`, 0o644)
  return epoch
}
