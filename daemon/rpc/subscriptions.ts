import { randomBytes } from 'node:crypto'
import { Type, type TSchema } from '@sinclair/typebox'
import { Ajv, type ValidateFunction } from 'ajv'
import type { BitflowMetrics } from '../metrics.js'
import { RpcError, RpcErrorCode, invalidParams } from './errors.js'
import { param, type RpcRegistry } from './registry.js'

export const SUBSCRIPTION_NOTIFICATION = 'bitflow_subscription'

export interface TopicSpec {
  name: string
  description: string
  /** schema of the optional params object given to bitflow_subscribe */
  params?: TSchema
  /** schema of each event, for the OpenRPC document */
  event: TSchema
  /** starts delivering events to `emit`; returns the function that stops it */
  attach: (params: Record<string, unknown>, emit: (event: unknown) => void) => () => void
}

/**
 * WebSocket subscriptions: `bitflow_subscribe(topic, params)` returns an id, events arrive as
 * `bitflow_subscription` notifications `{subscription, topic, result}`, `bitflow_unsubscribe(id)`
 * stops them. Services add topics; a closed connection drops its subscriptions.
 */
export class SubscriptionHub {
  readonly #topics = new Map<string, { spec: TopicSpec, validate?: ValidateFunction }>()
  readonly #active = new Map<string, { sessionId: string, detach: () => void }>()
  readonly #ajv = new Ajv({ strict: false })
  readonly #metrics: BitflowMetrics

  constructor (metrics: BitflowMetrics) {
    this.#metrics = metrics
  }

  addTopic (spec: TopicSpec): void {
    if (this.#topics.has(spec.name)) throw new Error(`subscription topic ${spec.name} added twice`)
    this.#topics.set(spec.name, { spec, ...(spec.params !== undefined ? { validate: this.#ajv.compile(spec.params) } : {}) })
  }

  topics (): TopicSpec[] {
    return [...this.#topics.values()].map(t => t.spec)
  }

  /** Registers bitflow_subscribe / bitflow_unsubscribe. Call after every service added its topics. */
  register (registry: RpcRegistry): void {
    const topicNames = (): string[] => [...this.#topics.keys()].sort()
    registry.add({
      name: 'bitflow_subscribe',
      summary: 'Subscribe to a stream of events over this WebSocket connection',
      description: `Topics: ${this.topics().map(t => `${t.name} (${t.description})`).join('; ')}. Events arrive as '${SUBSCRIPTION_NOTIFICATION}' notifications with params {subscription, topic, result}.`,
      params: [
        param('topic', Type.String({ enum: topicNames() }) as TSchema, { description: 'event topic' }),
        param('params', Type.Object({}, { additionalProperties: true }), { required: false, description: 'topic-specific filter' })
      ],
      result: { name: 'subscriptionId', schema: Type.String() },
      mutating: false,
      websocketOnly: true,
      handler: (p, ctx) => {
        const topic = this.#topics.get(p.topic as string)
        if (topic === undefined) throw invalidParams(`unknown topic '${String(p.topic)}'; topics: ${topicNames().join(', ')}`)
        const topicParams = (p.params ?? {}) as Record<string, unknown>
        if (topic.validate !== undefined && !topic.validate(topicParams)) {
          throw invalidParams(`params for topic ${topic.spec.name} ${topic.validate.errors?.[0]?.message ?? 'are invalid'}`)
        }
        const session = ctx.session!
        const id = randomBytes(8).toString('hex')
        const detach = topic.spec.attach(topicParams, event => {
          session.notify(SUBSCRIPTION_NOTIFICATION, { subscription: id, topic: topic.spec.name, result: event })
        })
        this.#active.set(id, { sessionId: session.id, detach })
        this.#metrics.subscriptions.set(this.#active.size)
        session.onClose(() => { this.#drop(id) })
        return id
      }
    })
    registry.add({
      name: 'bitflow_unsubscribe',
      summary: 'Stop a subscription made on this WebSocket connection',
      params: [param('subscriptionId', Type.String(), { description: 'id returned by bitflow_subscribe' })],
      result: { name: 'unsubscribed', schema: Type.Boolean() },
      mutating: false,
      websocketOnly: true,
      handler: (p, ctx) => {
        const entry = this.#active.get(p.subscriptionId as string)
        if (entry === undefined || entry.sessionId !== ctx.session!.id) {
          throw new RpcError(RpcErrorCode.NotFound, `no subscription '${String(p.subscriptionId)}' on this connection`)
        }
        this.#drop(p.subscriptionId as string)
        return true
      }
    })
  }

  #drop (id: string): void {
    const entry = this.#active.get(id)
    if (entry === undefined) return
    this.#active.delete(id)
    entry.detach()
    this.#metrics.subscriptions.set(this.#active.size)
  }

  stop (): void {
    for (const id of [...this.#active.keys()]) this.#drop(id)
  }
}
