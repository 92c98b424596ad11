import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from '@sinclair/typebox'
import { validateProbe, encodeProbe, type ProbeMessage } from '../../protocols/probe.js'
import type { GossipRouter } from '../network/gossip.js'
import type { BitflowMetrics } from '../metrics.js'
import type { RpcRegistry } from '../rpc/registry.js'
import { param } from '../rpc/registry.js'
import type { SubscriptionHub } from '../rpc/subscriptions.js'
import { ProbePublishResult, ProbeRecord } from '../rpc/types.js'

const MAX_RECORDS = 20_000

/**
 * Swarm probes: an operator publishes small signed gossip messages and every daemon records when
 * each arrived. Answers "does gossip reach everyone, and how fast" on a live swarm.
 */
export class ProbeService {
  readonly name = 'probe'
  readonly #gossip: GossipRouter
  readonly #metrics: BitflowMetrics
  readonly #peerId: string
  readonly #records: ProbeRecord[] = []
  readonly #listeners = new Set<(r: ProbeRecord) => void>()

  constructor (gossip: GossipRouter, peerId: string, metrics: BitflowMetrics) {
    this.#gossip = gossip
    this.#peerId = peerId
    this.#metrics = metrics
    gossip.add<ProbeMessage>({
      kind: 'probe',
      validate: validateProbe,
      handle: (probe) => { this.#record(probe) }
    })
  }

  #record (probe: ProbeMessage): void {
    const receivedAtMs = Date.now()
    const record: ProbeRecord = { id: probe.id, origin: probe.origin, sentAtMs: probe.sentAtMs, receivedAtMs, latencyMs: receivedAtMs - probe.sentAtMs }
    this.#records.push(record)
    if (this.#records.length > MAX_RECORDS) this.#records.splice(0, this.#records.length - MAX_RECORDS)
    this.#metrics.probeLatency.observe(Math.max(0, record.latencyMs) / 1000)
    for (const l of this.#listeners) l(record)
  }

  /** Publishes `count` probes at `ratePerSecond`, paced against the clock rather than by fixed sleeps. */
  async publish (count: number, ratePerSecond: number, payloadBytes: number, signal: AbortSignal): Promise<ProbePublishResult> {
    const ids: string[] = []
    let recipientsFirst = 0
    const started = performance.now()
    const payload = payloadBytes > 0 ? randomBytes(Math.ceil(payloadBytes / 2)).toString('hex').slice(0, payloadBytes) : undefined
    for (let i = 0; i < count; i++) {
      signal.throwIfAborted()
      const due = started + (i * 1000) / ratePerSecond
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait, undefined, { signal })
      const message: ProbeMessage = { v: 1, id: randomBytes(8).toString('hex'), origin: this.#peerId, sentAtMs: Date.now(), ...(payload !== undefined ? { payload } : {}) }
      const recipients = await this.#gossip.publish('probe', encodeProbe(message))
      if (i === 0) recipientsFirst = recipients
      ids.push(message.id)
    }
    return { ids, published: ids.length, recipientsFirst }
  }

  records (filter: { ids?: string[], origin?: string, sinceMs?: number }): ProbeRecord[] {
    const ids = filter.ids !== undefined ? new Set(filter.ids) : undefined
    return this.#records.filter(r =>
      (ids === undefined || ids.has(r.id)) &&
      (filter.origin === undefined || r.origin === filter.origin) &&
      (filter.sinceMs === undefined || r.receivedAtMs >= filter.sinceMs))
  }

  registerRpc (registry: RpcRegistry, hub: SubscriptionHub): void {
    registry.add({
      name: 'bitflow_publishProbe',
      summary: 'Publish swarm probes on the probe gossip topic (to check gossip reach and latency)',
      params: [
        param('count', Type.Integer({ minimum: 1, maximum: 10_000 }), { required: false, description: 'number of probes (default 1)' }),
        param('ratePerSecond', Type.Number({ minimum: 0.1, maximum: 1000 }), { required: false, description: 'publishing rate (default 50)' }),
        param('payloadBytes', Type.Integer({ minimum: 0, maximum: 1024 }), { required: false, description: 'padding per probe (default 0)' })
      ],
      result: { name: 'published', schema: ProbePublishResult },
      mutating: true,
      handler: async (p, ctx) => await this.publish((p.count as number | undefined) ?? 1, (p.ratePerSecond as number | undefined) ?? 50, (p.payloadBytes as number | undefined) ?? 0, ctx.signal)
    })
    registry.add({
      name: 'bitflow_probes',
      summary: 'Swarm probes this daemon received (most recent 20,000)',
      params: [
        param('filter', Type.Object({
          ids: Type.Optional(Type.Array(Type.String(), { maxItems: 10_000 })),
          origin: Type.Optional(Type.String()),
          sinceMs: Type.Optional(Type.Number())
        }, { additionalProperties: false }), { required: false })
      ],
      result: { name: 'probes', schema: Type.Array(ProbeRecord) },
      mutating: false,
      handler: (p) => this.records((p.filter ?? {}) as { ids?: string[], origin?: string, sinceMs?: number })
    })
    hub.addTopic({
      name: 'probes',
      description: 'swarm probes as they arrive',
      event: ProbeRecord,
      attach: (_params, emit) => {
        this.#listeners.add(emit)
        return () => this.#listeners.delete(emit)
      }
    })
  }
}
