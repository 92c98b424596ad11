import { kadProtocol } from '../../protocols/names.js'
import type { ServiceFactory } from './service.js'
import { SwarmService } from './swarm.js'
import { ProbeService } from './probe.js'
import { PeerMaintainer } from './peers.js'
import { LivenessService, HeartbeatService } from './liveness.js'
import { CommitteeService } from './committee.js'
import { DiscoveryService } from './discovery.js'
import { DebugService } from './debug.js'
import { SettlementService } from './settlement.js'
import { ContentService } from '../content/service.js'
import { AgentService } from './agents.js'
import { ExecutionService } from './execution.js'

/**
 * Every daemon service, in dependency order: built in this order before the network starts,
 * started in this order after, stopped in reverse.
 */
export const SERVICES: ServiceFactory[] = [
  {
    name: 'swarm',
    create: ctx => {
      const swarm = new SwarmService(ctx.libp2p, ctx.metrics, ctx.log)
      swarm.registerRpc(ctx.registry, ctx.hub)
      return swarm
    }
  },
  {
    name: 'probe',
    create: ctx => {
      const probes = new ProbeService(ctx.gossip, ctx.identity.peerId.toString(), ctx.metrics)
      probes.registerRpc(ctx.registry, ctx.hub)
      return probes
    }
  },
  {
    name: 'peers',
    create: ctx => new PeerMaintainer(ctx.libp2p, { networkProtocol: kadProtocol(ctx.options.network), minPeers: 8, intervalMs: 2000 }, ctx.log)
  },
  { name: 'liveness', create: ctx => new LivenessService(ctx) },
  {
    name: 'heartbeat',
    create: ctx => ctx.options.roles.includes('node') || ctx.options.roles.includes('validator') ? new HeartbeatService(ctx) : undefined
  },
  { name: 'settlement', create: ctx => new SettlementService(ctx) },
  { name: 'committee', create: ctx => new CommitteeService(ctx) },
  { name: 'discovery', create: ctx => new DiscoveryService(ctx) },
  { name: 'debug', create: ctx => ctx.preset.local ? new DebugService(ctx) : undefined },
  { name: 'content', create: ctx => { const content = new ContentService(ctx); content.registerRpc(ctx.registry, ctx.hub); return content } },
  { name: 'agents', create: ctx => new AgentService(ctx) },
  { name: 'execution', create: ctx => new ExecutionService(ctx) }
]
