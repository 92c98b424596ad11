import type { Message } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Verdict } from '../../protocols/validation.js'
import { gossipTopic, type GossipTopicKind } from '../../protocols/names.js'
import type { BitflowLibp2p } from './libp2p.js'
import type { BitflowMetrics } from '../metrics.js'
import type { Logger } from '../logger.js'

export interface GossipTopicHandler<T> {
  kind: GossipTopicKind
  /** pure validation; runs before any handler and decides accept/ignore/reject for peer scoring */
  validate: (data: Uint8Array, from: string, nowMs: number) => Verdict<T>
  /** `data` is the message as signed and sent (to keep or hand on) */
  handle: (value: T, from: string, data: Uint8Array) => void
}

/**
 * Routes gossip: every topic gets a validator that runs inside gossipsub (so a rejected message is
 * neither delivered nor forwarded, and costs its sender peer score) and a handler that only ever
 * sees accepted, decoded values.
 */
export class GossipRouter {
  readonly #libp2p: BitflowLibp2p
  readonly #network: string
  readonly #metrics: BitflowMetrics
  readonly #log: Logger
  readonly #handlers = new Map<string, GossipTopicHandler<unknown>>()
  readonly #accepted = new WeakMap<Uint8Array, unknown>()
  #onMessage: ((evt: CustomEvent<Message>) => void) | undefined

  constructor (libp2p: BitflowLibp2p, network: string, metrics: BitflowMetrics, log: Logger) {
    this.#libp2p = libp2p
    this.#network = network
    this.#metrics = metrics
    this.#log = log
  }

  topic (kind: GossipTopicKind): string {
    return gossipTopic(this.#network, kind)
  }

  add<T> (handler: GossipTopicHandler<T>): void {
    const topic = this.topic(handler.kind)
    if (this.#handlers.has(topic)) throw new Error(`gossip topic ${topic} has a handler already`)
    this.#handlers.set(topic, handler as GossipTopicHandler<unknown>)
  }

  start (): void {
    const pubsub = this.#libp2p.services.pubsub
    for (const [topic, handler] of this.#handlers) {
      pubsub.topicValidators.set(topic, (_peer, msg) => {
        if (msg.type !== 'signed') {
          this.#metrics.gossipMessages.inc({ topic: handler.kind, verdict: 'reject' })
          return TopicValidatorResult.Reject
        }
        let verdict: Verdict<unknown>
        try {
          verdict = handler.validate(msg.data, msg.from.toString(), Date.now())
        } catch (err) {
          // a validator must never throw; treat it as a reject and keep the daemon running
          this.#log.warn({ err, topic }, 'gossip validator threw')
          verdict = { result: 'reject', reason: 'validator error' }
        }
        this.#metrics.gossipMessages.inc({ topic: handler.kind, verdict: verdict.result })
        this.#metrics.gossipBytes.inc({ topic: handler.kind, direction: 'received' }, msg.data.length)
        if (verdict.result === 'accept') {
          this.#accepted.set(msg.data, verdict.value)
          return TopicValidatorResult.Accept
        }
        this.#log.debug({ topic, from: msg.from.toString(), reason: verdict.reason }, `gossip message ${verdict.result === 'ignore' ? 'ignored' : 'rejected'}`)
        return verdict.result === 'ignore' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
      })
      pubsub.subscribe(topic)
    }
    this.#onMessage = (evt) => {
      const msg = evt.detail
      const handler = this.#handlers.get(msg.topic)
      if (handler === undefined || msg.type !== 'signed') return
      if (!this.#accepted.has(msg.data)) return
      const value = this.#accepted.get(msg.data)
      try {
        handler.handle(value, msg.from.toString(), msg.data)
      } catch (err) {
        this.#log.error({ err, topic: msg.topic }, 'gossip handler failed')
      }
    }
    pubsub.addEventListener('message', this.#onMessage)
  }

  stop (): void {
    const pubsub = this.#libp2p.services.pubsub
    if (this.#onMessage !== undefined) pubsub.removeEventListener('message', this.#onMessage)
    for (const topic of this.#handlers.keys()) {
      pubsub.topicValidators.delete(topic)
      try { pubsub.unsubscribe(topic) } catch { /* already stopped */ }
    }
  }

  async publish (kind: GossipTopicKind, data: Uint8Array): Promise<number> {
    const result = await this.#libp2p.services.pubsub.publish(this.topic(kind), data)
    this.#metrics.gossipPublished.inc({ topic: kind })
    this.#metrics.gossipBytes.inc({ topic: kind, direction: 'published' }, data.length)
    return result.recipients.length
  }
}
