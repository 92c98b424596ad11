import { Type } from '@sinclair/typebox'
import type { DaemonService, ServiceContext } from './service.js'
import type { HeartbeatService } from './liveness.js'
import { param } from '../rpc/registry.js'
import { RpcError, RpcErrorCode, invalidParams } from '../rpc/errors.js'
import type { GossipTopicKind } from '../../protocols/names.js'

const TOPICS: GossipTopicKind[] = ['liveness', 'committee', 'execution', 'probe']

/**
 * Local networks only: raw gossip injection and the last heartbeat as sent, so that tests and
 * demos can play an attacker (forged, replayed, oversized, malformed messages) against real
 * daemons. Never registered on public networks.
 */
export class DebugService implements DaemonService {
  readonly name = 'debug'
  readonly #ctx: ServiceContext

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    ctx.registry.add({
      name: 'bitflow_debugPublish',
      summary: 'Local networks only: publish raw bytes on a gossip topic, bypassing every check this daemon would apply',
      params: [
        param('topic', Type.String({ enum: TOPICS }), { description: 'topic kind' }),
        param('dataBase64', Type.String({ maxLength: 2 * 1024 * 1024 }), { description: 'message bytes, base64' })
      ],
      result: { name: 'recipients', schema: Type.Integer() },
      mutating: true,
      handler: async p => {
        const data = Buffer.from(p.dataBase64 as string, 'base64')
        if (data.length === 0) throw invalidParams('dataBase64 decodes to no bytes')
        try {
          return await ctx.gossip.publish(p.topic as GossipTopicKind, data)
        } catch (err) {
          throw new RpcError(RpcErrorCode.NetworkError, `publish failed: ${(err as Error).message}`)
        }
      }
    })
    ctx.registry.add({
      name: 'bitflow_debugLastHeartbeat',
      summary: 'Local networks only: the last heartbeat this node published, exactly as sent (base64)',
      params: [],
      result: { name: 'heartbeat', schema: Type.Union([Type.String(), Type.Null()]) },
      mutating: false,
      handler: () => {
        const hb = ctx.services.find<HeartbeatService>('heartbeat')
        if (hb === undefined) throw new RpcError(RpcErrorCode.Unavailable, 'this daemon publishes no heartbeats (it has neither the node nor the validator role)')
        const last = hb.lastPublished
        return last === undefined ? null : Buffer.from(last).toString('base64')
      }
    })
  }
}
