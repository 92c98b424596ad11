/**
 * Catch-up for executions over `/bitflow/<network>/execution-sync/1.0.0`: a daemon that was down (or
 * joined late) asks a few peers for the signed gossip messages of the executions they have not
 * finished — each request and the completions announced for it — and feeds them through the same
 * validators and chain checks as live gossip. Nothing is trusted because a peer sent it: requests
 * are taken only when the chain holds their escrow, completions only when the chain shows their
 * revealed output root.
 *
 * Wire: the asker writes one length-prefixed JSON frame {"v":1}; the answer is one length-prefixed
 * JSON frame {"v":1,"messages":[<base64 of a signed execution-topic message>, ...]}.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { Logger } from '../logger.js'

/** at most this many messages in one answer */
export const SYNC_MAX_MESSAGES = 2048
const MAX_ANSWER_BYTES = 8 * 1024 * 1024
const MAX_ASK_BYTES = 256
const TIMEOUT_MS = 10_000

export interface ExecutionSyncDeps {
  libp2p: BitflowLibp2p
  protocol: string
  log: Logger
  /** the signed messages this daemon can vouch for (unfinished executions first) */
  snapshot: () => Uint8Array[]
  /** a message from a peer: validated and handled like gossip */
  ingest: (data: Uint8Array, from: string) => void
}

export class ExecutionSync {
  readonly #deps: ExecutionSyncDeps

  constructor (deps: ExecutionSyncDeps) {
    this.#deps = deps
  }

  async start (): Promise<void> {
    await this.#deps.libp2p.handle(this.#deps.protocol, (stream) => {
      void (async () => {
        const lp = lpStream(stream, { maxDataLength: MAX_ASK_BYTES })
        const signal = AbortSignal.timeout(TIMEOUT_MS)
        try {
          const ask = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as { v?: unknown }
          if (ask.v !== 1) throw new Error('unknown sync request version')
          const messages = this.#deps.snapshot().slice(0, SYNC_MAX_MESSAGES).map(m => Buffer.from(m).toString('base64'))
          await lp.write(new TextEncoder().encode(JSON.stringify({ v: 1, messages })), { signal })
          await stream.close({ signal })
        } catch (err) {
          stream.abort(err as Error)
        }
      })()
    }, { maxInboundStreams: 4, maxOutboundStreams: 4, runOnLimitedConnection: false })
  }

  async stop (): Promise<void> {
    await this.#deps.libp2p.unhandle(this.#deps.protocol)
  }

  /** Asks up to `peers` connected peers; returns how many messages were ingested. */
  async pull (options: { peers?: number, signal?: AbortSignal } = {}): Promise<number> {
    const connected = this.#deps.libp2p.getPeers()
    let ingested = 0
    for (const peer of connected.slice(0, options.peers ?? 3)) {
      try {
        ingested += await this.#pullFrom(peer, options.signal)
      } catch (err) {
        this.#deps.log.debug({ err, peer: peer.toString() }, 'execution sync with a peer failed')
      }
    }
    return ingested
  }

  /**
   * Asks one peer by id: the node that revealed a result holds its own signed completion even when
   * the gossip carrying it never reached this daemon (a peer that scored the node down drops it).
   */
  async pullFromPeer (peerId: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    return await this.#pullFrom(peerIdFromString(peerId), options.signal)
  }

  async #pullFrom (peer: PeerId, outer?: AbortSignal): Promise<number> {
    const signal = AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), ...(outer !== undefined ? [outer] : [])])
    const stream = await this.#deps.libp2p.dialProtocol(peer, this.#deps.protocol, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_ANSWER_BYTES })
      await lp.write(new TextEncoder().encode(JSON.stringify({ v: 1 })), { signal })
      const answer = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as { v?: unknown, messages?: unknown }
      if (answer.v !== 1 || !Array.isArray(answer.messages)) throw new Error('malformed sync answer')
      let n = 0
      for (const m of answer.messages.slice(0, SYNC_MAX_MESSAGES)) {
        if (typeof m !== 'string') continue
        this.#deps.ingest(new Uint8Array(Buffer.from(m, 'base64')), peer.toString())
        // an answer holds up to thousands of signed messages: let the event loop turn between batches
        if (++n % 16 === 0) await new Promise(resolve => setImmediate(resolve))
      }
      await stream.close({ signal }).catch(() => {})
      return n
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}
