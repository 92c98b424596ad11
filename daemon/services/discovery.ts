import { Type } from '@sinclair/typebox'
import { specializationCid } from '../../protocols/liveness/discovery.js'
import type { DaemonService, ServiceContext } from './service.js'
import type { LivenessService } from './liveness.js'
import { toRpcEntry } from './liveness.js'
import { param } from '../rpc/registry.js'
import { LivenessEntrySchema } from '../rpc/types.js'

const TASK_ID = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:/@-]+$' })

/**
 * DHT discovery of specialized nodes. A node or validator provides, for each of its
 * specializations, a key derived from the task id, and re-provides it well inside the record's
 * short validity so that records of dead nodes vanish. Providers found are only hints: a node is
 * returned only when the liveness table confirms it is online, specialized and has capacity.
 */
export class DiscoveryService implements DaemonService {
  readonly name = 'discovery'
  readonly #ctx: ServiceContext
  readonly #provides: boolean
  #timer: NodeJS.Timeout | undefined
  #controller = new AbortController()

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    this.#provides = (ctx.options.roles.includes('node') || ctx.options.roles.includes('validator')) && ctx.options.node.specializations.length > 0
    this.#registerRpc()
  }

  start (): void {
    if (!this.#provides) return
    void this.#provideAll()
    // re-provide at a third of the validity so a live node's record never lapses
    this.#timer = setInterval(() => { void this.#provideAll() }, Math.max(1000, Math.floor(this.#ctx.preset.params.providerRecordTtlMs / 3)))
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#controller.abort()
  }

  async #provideAll (): Promise<void> {
    for (const taskId of this.#ctx.options.node.specializations) {
      const signal = AbortSignal.any([this.#controller.signal, AbortSignal.timeout(10_000)])
      try {
        for await (const _event of this.#ctx.libp2p.services.dht.provide(specializationCid(this.#ctx.options.network, taskId), { signal })) {
          // drain the query
        }
        this.#ctx.metrics.dhtProvides.inc({ outcome: 'ok' })
      } catch (err) {
        if (this.#controller.signal.aborted) return
        this.#ctx.metrics.dhtProvides.inc({ outcome: 'error' })
        this.#ctx.log.debug({ taskId, err: (err as Error).message }, 'provide failed; will retry')
      }
    }
  }

  /** Providers of a task's key in the DHT (hints, not yet confirmed). */
  async providers (taskId: string, signal: AbortSignal): Promise<Set<string>> {
    const found = new Set<string>()
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(5000)])
    try {
      for await (const event of this.#ctx.libp2p.services.dht.findProviders(specializationCid(this.#ctx.options.network, taskId), { signal: timeout })) {
        if (event.name === 'PROVIDER') for (const p of event.providers) found.add(p.id.toString())
      }
    } catch (err) {
      if (signal.aborted) throw err
      // a timed-out query still yields the providers found so far
    }
    return found
  }

  async findNodes (taskId: string, signal: AbortSignal): Promise<ReturnType<typeof toRpcEntry>[]> {
    const providers = await this.providers(taskId, signal)
    const liveness = this.#ctx.services.get<LivenessService>('liveness')
    return liveness.table.entries()
      .filter(e => providers.has(e.peerId) && e.status !== 'offline' && e.status !== 'draining' &&
        e.specializations.includes(taskId) && e.capacity.freeSlots > 0)
      .map(toRpcEntry)
  }

  #registerRpc (): void {
    this.#ctx.registry.add({
      name: 'bitflow_findNodes',
      summary: 'Nodes specialized in a task: DHT providers that the liveness table confirms are online, specialized and have a free slot',
      params: [param('taskId', TASK_ID, { description: 'task id' })],
      result: { name: 'nodes', schema: Type.Array(LivenessEntrySchema) },
      mutating: false,
      handler: async (p, ctx) => await this.findNodes(p.taskId as string, ctx.signal)
    })
  }
}
