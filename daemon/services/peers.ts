import { randomBytes } from 'node:crypto'
import { KEEP_ALIVE, type PeerId, type IdentifyResult } from '@libp2p/interface'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { Logger } from '../logger.js'

export interface PeerMaintainerConfig {
  /** the network's private DHT protocol: peers that speak it belong to our swarm */
  networkProtocol: string
  /** keep at least this many swarm peers connected, dialling known ones when below */
  minPeers: number
  /** how often to check */
  intervalMs: number
}

/**
 * Keeps the daemon in its swarm: peers of our network (identified by our private DHT protocol) are
 * tagged keep-alive, up to `minPeers`, so libp2p redials them after a drop; and when fewer than
 * `minPeers` are connected, known swarm peers from the peer store are dialled. Without this a
 * daemon that bootstrapped from one address can end up with only that one peer.
 */
export class PeerMaintainer {
  readonly name = 'peers'
  readonly #libp2p: BitflowLibp2p
  readonly #config: PeerMaintainerConfig
  readonly #log: Logger
  readonly #kept = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #running = false
  /** DHT walks back off while they find nothing new: 2 s, 4 s, ... up to a minute */
  #walkBackoffMs = 0
  #nextWalkAt = 0
  readonly #controller = new AbortController()
  readonly #onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    if (evt.detail.protocols.includes(this.#config.networkProtocol)) void this.#keep(evt.detail.peerId)
  }

  constructor (libp2p: BitflowLibp2p, config: PeerMaintainerConfig, log: Logger) {
    this.#libp2p = libp2p
    this.#config = config
    this.#log = log
  }

  start (): void {
    this.#libp2p.addEventListener('peer:identify', this.#onIdentify)
    this.#timer = setInterval(() => { void this.#maintain() }, this.#config.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    this.#controller.abort()
    this.#libp2p.removeEventListener('peer:identify', this.#onIdentify)
    clearInterval(this.#timer)
  }

  async #keep (peerId: PeerId): Promise<void> {
    const key = peerId.toString()
    if (this.#kept.has(key) || this.#kept.size >= this.#config.minPeers) return
    this.#kept.add(key)
    try {
      await this.#libp2p.peerStore.merge(peerId, { tags: { [KEEP_ALIVE]: { value: 1 } } })
    } catch (err) {
      this.#kept.delete(key)
      this.#log.debug({ err, peer: key }, 'could not tag peer keep-alive')
    }
  }

  /** A DHT walk towards a random key: the peers met on the way land in the peer store. */
  async #discover (): Promise<void> {
    const signal = AbortSignal.any([this.#controller.signal, AbortSignal.timeout(5000)])
    try {
      for await (const _event of this.#libp2p.services.dht.getClosestPeers(randomBytes(32), { signal })) {
        // the walk's side effect (peer store entries) is what we want
      }
    } catch (err) {
      if (!this.#controller.signal.aborted) this.#log.debug({ err: (err as Error).message }, 'DHT walk ended early')
    }
  }

  async #maintain (): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      const connected = new Set(this.#libp2p.getPeers().map(p => p.toString()))
      const deficit = this.#config.minPeers - connected.size
      if (deficit <= 0) return
      const self = this.#libp2p.peerId.toString()
      const candidates = (await this.#libp2p.peerStore.all({
        // peers we only heard of through our private DHT have no protocols recorded yet
        filters: [p => p.addresses.length > 0 && (p.protocols.length === 0 || p.protocols.includes(this.#config.networkProtocol))]
      })).filter(p => !connected.has(p.id.toString()) && p.id.toString() !== self)
      if (candidates.length < deficit && Date.now() >= this.#nextWalkAt) {
        await this.#discover()
        this.#walkBackoffMs = Math.min(60_000, Math.max(this.#config.intervalMs, this.#walkBackoffMs * 2))
        this.#nextWalkAt = Date.now() + this.#walkBackoffMs
      }
      if (candidates.length >= deficit) this.#walkBackoffMs = 0
      for (const peer of shuffle(candidates).slice(0, deficit)) {
        try {
          await this.#libp2p.dial(peer.id, { signal: AbortSignal.any([this.#controller.signal, AbortSignal.timeout(5000)]) })
        } catch (err) {
          this.#log.debug({ peer: peer.id.toString(), err: (err as Error).message }, 'redial failed')
        }
      }
    } catch (err) {
      if (!this.#controller.signal.aborted) this.#log.debug({ err }, 'peer maintenance failed')
    } finally {
      this.#running = false
    }
  }
}

function shuffle<T> (items: T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
