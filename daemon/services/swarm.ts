import { Type } from '@sinclair/typebox'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, Connection } from '@libp2p/interface'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { BitflowMetrics } from '../metrics.js'
import type { Logger } from '../logger.js'
import type { RpcRegistry } from '../rpc/registry.js'
import { param } from '../rpc/registry.js'
import type { SubscriptionHub } from '../rpc/subscriptions.js'
import { RpcError, RpcErrorCode, invalidParams } from '../rpc/errors.js'
import { PeerInfo, PeerEvent, ConnectResult } from '../rpc/types.js'

type PeerListener = (event: PeerEvent) => void

/** The daemon's view of its libp2p peers: peer list, connect, and `peers` events. */
export class SwarmService {
  readonly name = 'swarm'
  readonly #libp2p: BitflowLibp2p
  readonly #metrics: BitflowMetrics
  readonly #log: Logger
  readonly #listeners = new Set<PeerListener>()
  readonly #onConnect = (evt: CustomEvent<PeerId>): void => { this.#emit('connect', evt.detail) }
  readonly #onDisconnect = (evt: CustomEvent<PeerId>): void => { this.#emit('disconnect', evt.detail) }

  constructor (libp2p: BitflowLibp2p, metrics: BitflowMetrics, log: Logger) {
    this.#libp2p = libp2p
    this.#metrics = metrics
    this.#log = log
  }

  start (): void {
    this.#libp2p.addEventListener('peer:connect', this.#onConnect)
    this.#libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
  }

  stop (): void {
    this.#libp2p.removeEventListener('peer:connect', this.#onConnect)
    this.#libp2p.removeEventListener('peer:disconnect', this.#onDisconnect)
    this.#listeners.clear()
  }

  #emit (event: 'connect' | 'disconnect', peerId: PeerId): void {
    const peers = this.#libp2p.getPeers().length
    this.#metrics.peers.set(peers)
    this.#metrics.peerEvents.inc({ event })
    this.#log.debug({ peer: peerId.toString(), peers }, `peer ${event}`)
    const record: PeerEvent = { event, peerId: peerId.toString(), peers, at: new Date().toISOString() }
    for (const l of this.#listeners) l(record)
  }

  onPeerEvent (listener: PeerListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async peers (): Promise<PeerInfo[]> {
    const byPeer = new Map<string, Connection[]>()
    for (const c of this.#libp2p.getConnections()) {
      const key = c.remotePeer.toString()
      byPeer.set(key, [...(byPeer.get(key) ?? []), c])
    }
    const out: PeerInfo[] = []
    for (const [peerId, conns] of byPeer) {
      let protocols: string[] = []
      try {
        protocols = (await this.#libp2p.peerStore.get(conns[0]!.remotePeer)).protocols
      } catch { /* not identified yet */ }
      out.push({
        peerId,
        addresses: conns.map(c => c.remoteAddr.toString()),
        direction: conns[0]!.direction,
        connectedAt: new Date(Math.min(...conns.map(c => c.timeline.open))).toISOString(),
        protocols: [...protocols].sort()
      })
    }
    return out.sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  async connect (address: string, signal: AbortSignal): Promise<ConnectResult> {
    let ma
    try {
      ma = multiaddr(address)
    } catch (err) {
      throw invalidParams(`'${address}' is not a multiaddr: ${(err as Error).message}`)
    }
    if (ma.getComponents().find(c => c.name === 'p2p') === undefined) throw invalidParams(`multiaddr '${address}' must end with /p2p/<peerId>`)
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(10_000)])
    let conn: Connection
    try {
      conn = await this.#libp2p.dial(ma, { signal: timeout })
    } catch (err) {
      throw new RpcError(RpcErrorCode.NetworkError, `cannot connect to ${address}: ${(err as Error).message}`)
    }
    let latencyMs: number | null = null
    try {
      latencyMs = await this.#libp2p.services.ping.ping(ma, { signal: timeout })
    } catch { /* ping is informative only */ }
    return { peerId: conn.remotePeer.toString(), address: conn.remoteAddr.toString(), latencyMs }
  }

  registerRpc (registry: RpcRegistry, hub: SubscriptionHub): void {
    registry.add({
      name: 'bitflow_peers',
      summary: 'Peers this daemon is connected to',
      params: [],
      result: { name: 'peers', schema: Type.Array(PeerInfo) },
      mutating: false,
      handler: async () => await this.peers()
    })
    registry.add({
      name: 'bitflow_connect',
      summary: 'Dial a peer by multiaddr (ending in /p2p/<peerId>)',
      params: [param('multiaddr', Type.String({ minLength: 1, maxLength: 1024 }), { description: 'e.g. /ip4/127.0.0.1/tcp/4645/p2p/12D3Koo...' })],
      result: { name: 'connection', schema: ConnectResult },
      mutating: true,
      handler: async (p, ctx) => await this.connect(p.multiaddr as string, ctx.signal)
    })
    hub.addTopic({
      name: 'peers',
      description: 'peer connect and disconnect events',
      event: PeerEvent,
      attach: (_params, emit) => this.onPeerEvent(emit)
    })
  }
}
