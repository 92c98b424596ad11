import type { PeerId, Stream, Connection, StreamMessageEvent, StreamCloseEvent } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { BitflowLibp2p } from '../network/libp2p.js'
import { waitForWriteRoom } from '../network/backpressure.js'
import { YoungGarbagePacer } from '../gc.js'
import type { PlaintextLeases } from '../network/plaintext-leases.js'
import type { BitflowMetrics } from '../metrics.js'
import type { Logger } from '../logger.js'
import type { ContentStore } from './store.js'
import type { BlockFilesError } from './block-files.js'
import {
  FrameDecoder, encodeFrame, encodeRequest, decodeRequest, encodeBlock, decodeBlockParts, verifyBlock, blockLinks, unixfsFileSize, CODEC_RAW,
  FRAME_REQUEST, FRAME_BLOCK, FRAME_DONE, FRAME_ERROR, MAX_BLOCK_BYTES, BlockProtocolError
} from '../../protocols/content/blocks.js'

/**
 * Bulk content transfer over `/bitflow/<network>/blocks/1.0.0` (wire format in
 * protocols/content/blocks.ts), and the daemon's fetch path for every DAG:
 * local store → this protocol from providers (DHT providers, then connected peers) → bitswap.
 *
 * A requester accepts only blocks it asked for and stores a block only after checking it against
 * its CID. A provider that sends a block it was not asked for, a block that does not hash to its
 * CID, or garbage is a liar: every block it sent in that session is deleted, its connections are
 * closed, it is banned from this daemon's provider lists for a while, and it is tagged in the peer
 * store. Then the next provider is tried.
 */

export type TransferSource = 'local' | 'blocks' | 'bitswap'

export interface TransferEvent {
  /** the caller's transfer id (or a generated one) */
  id: string
  cid: string
  phase: 'start' | 'provider' | 'progress' | 'provider-failed' | 'provider-lied' | 'fallback' | 'done' | 'failed'
  source: TransferSource
  peer?: string
  blocks: number
  bytes: number
  /** file size when the root says it (UnixFS files) */
  totalBytes?: number
  message?: string
  at: number
}

export interface FetchOptions {
  signal?: AbortSignal
  /** transfer id for progress events */
  id?: string
  /** peers to ask first (e.g. the peer that told us about the content) */
  providers?: string[]
  onProgress?: (event: TransferEvent) => void
  /** refuse DAGs larger than this */
  maxBytes?: number
  /** how long the bitswap fallback may take */
  bitswapTimeoutMs?: number
  /** skip the bitswap fallback (tests, benchmarks) */
  noBitswap?: boolean
  /** use only bitswap (benchmarks) */
  bitswapOnly?: boolean
}

export interface FetchResult {
  cid: string
  source: TransferSource
  blocks: number
  bytes: number
  ms: number
  providersTried: string[]
  liars: string[]
}

export class TransferError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'TransferError'
    this.code = code
  }
}

/** A provider broke the protocol or sent bad content. */
class LieError extends Error {
  readonly reason: string
  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}

const BAN_MS = 10 * 60_000
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024 * 1024
const PROGRESS_INTERVAL_MS = 200
const MAX_PENDING_WRITES = 32
/**
 * Blocks a provider reads ahead of the one it sends. Few: a block read from the page cache takes
 * well under the ~4 ms that sending it takes, and every block read early lives longer, which at
 * hundreds of MB/s gets the buffers promoted to V8's old generation (a full GC every ~100 ms).
 */
const READ_AHEAD = 3

/** Read buffers a provider keeps for reuse between transfers. */
const SEND_BUFFERS = 8

/** Bytes a provider lets wait in a stream before it reads and sends the next block. */
const MAX_QUEUED_BYTES = 2 * 1024 * 1024

/**
 * Reusable block buffers of the usual UnixFS leaf size for one transfer session; larger blocks
 * get a buffer of their own.
 */
class BlockPool {
  static readonly SIZE = 1024 * 1024
  readonly #free: Uint8Array[] = []
  readonly #max: number
  constructor (max: number) { this.#max = max }
  /** a buffer of exactly n bytes */
  take (n: number): Uint8Array {
    if (n > BlockPool.SIZE) return new Uint8Array(n)
    return (this.#free.pop() ?? new Uint8Array(BlockPool.SIZE)).subarray(0, n)
  }

  /** a whole pool buffer, to be handed back with {@link give}; `reused` if it had been before */
  takeWhole (): { buffer: ArrayBuffer, reused: boolean } {
    const free = this.#free.pop()
    return { buffer: (free ?? new Uint8Array(BlockPool.SIZE)).buffer as ArrayBuffer, reused: free !== undefined }
  }

  give (buf: Uint8Array): void {
    if (buf.buffer.byteLength === BlockPool.SIZE && this.#free.length < this.#max) this.#free.push(new Uint8Array(buf.buffer, 0, BlockPool.SIZE))
  }
}

export interface BlockTransferInit {
  libp2p: BitflowLibp2p
  /** the connection encrypter's report of sent buffers it has read; without it none are reused */
  plaintextLeases?: PlaintextLeases
  store: ContentStore
  protocol: string
  metrics: BitflowMetrics
  log: Logger
}

export class BlockTransfer {
  readonly protocol: string
  readonly #libp2p: BitflowLibp2p
  readonly #leases: PlaintextLeases | undefined
  /** read buffers of the provider side, back here once the encrypter has read them */
  readonly #sendBuffers = new BlockPool(SEND_BUFFERS)
  readonly #store: ContentStore
  readonly #metrics: BitflowMetrics
  readonly #log: Logger
  readonly #banned = new Map<string, number>()
  /** one for both directions: what matters is the bytes this process moves */
  readonly #youngGc = new YoungGarbagePacer()
  readonly #inflight = new Map<string, Promise<FetchResult>>()
  #nextId = 1

  constructor (init: BlockTransferInit) {
    this.protocol = init.protocol
    this.#libp2p = init.libp2p
    this.#leases = init.plaintextLeases
    this.#store = init.store
    this.#metrics = init.metrics
    this.#log = init.log
  }

  async start (): Promise<void> {
    await this.#libp2p.handle(this.protocol, (stream, connection) => { void this.#serve(stream, connection) }, {
      maxInboundStreams: 16,
      maxOutboundStreams: 16,
      runOnLimitedConnection: false
    })
  }

  async stop (): Promise<void> {
    await this.#libp2p.unhandle(this.protocol)
  }

  banned (peer: string): boolean {
    const until = this.#banned.get(peer)
    if (until === undefined) return false
    if (until < Date.now()) { this.#banned.delete(peer); return false }
    return true
  }

  bannedPeers (): string[] {
    return [...this.#banned.keys()].filter(p => this.banned(p))
  }

  // ---- provider side ----

  async #serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(10 * 60_000)
    let sentBytes = 0
    try {
      const decoder = new FrameDecoder(256 * 1024)
      let request: CID[] | undefined
      for await (const chunk of stream) {
        decoder.push(chunk.subarray())
        const frame = decoder.next()
        if (frame === undefined) continue
        if (frame.type !== FRAME_REQUEST) throw new BlockProtocolError('ERR_BLOCKS_REQUEST', 'expected a request frame')
        request = decodeRequest(frame.payload)
        break
      }
      if (request === undefined) { stream.abort(new Error('no request')); return }
      // Blocks are read into pool buffers that come back once the connection's encrypter has
      // read them (PlaintextLeases); at most a few blocks wait in the stream.
      const send = async (parts: Uint8Array[]): Promise<void> => {
        for (const p of parts) stream.send(p)
        await waitForWriteRoom(stream, MAX_QUEUED_BYTES, signal)
      }
      const leases = this.#leases
      const pooled = new WeakSet<ArrayBufferLike>()
      const sent = new Set<string>()
      const read = async (cid: CID): Promise<Uint8Array | undefined> => {
        try {
          // only raw leaves: the links decoded from other blocks view their bytes, which a reused
          // buffer would overwrite
          if (leases === undefined || cid.code !== CODEC_RAW) return await this.#store.readBlock(cid, { signal })
          const into = this.#sendBuffers.takeWhole()
          this.#metrics.contentSendBuffers.inc({ kind: into.reused ? 'reused' : 'new' })
          const { bytes, reused } = await this.#store.readBlockInto(cid, into.buffer, { signal })
          if (reused) pooled.add(bytes.buffer)
          return bytes
        } catch { return undefined }
      }
      for (const root of request) {
        // depth-first, reading a few blocks ahead of the one being sent
        const order: CID[] = [root]
        const reads = new Map<string, Promise<Uint8Array | undefined>>()
        const ahead = (): void => {
          for (let i = order.length - 1, n = 0; i >= 0 && n < READ_AHEAD; i--, n++) {
            const c = order[i]!
            const k = c.toString()
            if (!reads.has(k) && !sent.has(k)) reads.set(k, read(c))
          }
        }
        while (order.length > 0) {
          const cid = order.pop()!
          const key = cid.toString()
          if (sent.has(key)) continue
          sent.add(key)
          ahead()
          const bytes = await (reads.get(key) ?? read(cid))
          reads.delete(key)
          if (bytes === undefined) {
            await send(encodeFrame(FRAME_ERROR, new TextEncoder().encode(`this peer does not hold ${key}`)))
            await stream.close({ signal })
            return
          }
          const links = blockLinks(cid, bytes)
          for (let i = links.length - 1; i >= 0; i--) order.push(links[i]!)
          ahead()
          const size = bytes.length
          // leased before it is sent: the encrypter may read it within send(); after that, the
          // buffer may already be reading the next block
          if (leases !== undefined && pooled.has(bytes.buffer)) leases.lease(bytes.buffer, size, () => { this.#sendBuffers.give(bytes) })
          await send(encodeBlock(cid, bytes))
          sentBytes += size
          this.#youngGc.add(size)
        }
      }
      await send(encodeFrame(FRAME_DONE))
      await stream.close({ signal })
      this.#metrics.contentTransferBytes.inc({ source: 'blocks', direction: 'out' }, sentBytes)
      this.#log.debug({ peer, blocks: sent.size, bytes: sentBytes }, 'served blocks')
    } catch (err) {
      this.#metrics.contentTransferBytes.inc({ source: 'blocks', direction: 'out' }, sentBytes)
      this.#log.debug({ err, peer }, 'serving blocks failed')
      stream.abort(err as Error)
    }
  }

  // ---- requester side ----

  /**
   * Makes the whole DAG under `root` present in the local store: local store, then this protocol
   * from providers, then bitswap. Concurrent fetches of one root share one transfer.
   */
  async fetch (root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    const key = root.toString()
    const running = this.#inflight.get(key)
    if (running !== undefined) return await running
    // gc waits for running fetches, so it never deletes blocks a fetch stored but nobody pinned yet
    const p = this.#store.gate.shared(async () => await this.#fetch(root, options)).finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, p)
    return await p
  }

  async #fetch (root: CID, options: FetchOptions): Promise<FetchResult> {
    const id = options.id ?? `t${this.#nextId++}`
    const started = performance.now()
    const signal = options.signal ?? new AbortController().signal
    const emit = (e: Omit<TransferEvent, 'id' | 'cid' | 'at'>): void => {
      options.onProgress?.({ id, cid: root.toString(), at: Date.now(), ...e })
    }
    const result = (source: TransferSource, blocks: number, bytes: number, tried: string[], liars: string[]): FetchResult => ({ cid: root.toString(), source, blocks, bytes, ms: performance.now() - started, providersTried: tried, liars })

    if (await this.#store.hasDag(root)) {
      emit({ phase: 'done', source: 'local', blocks: 0, bytes: 0 })
      this.#metrics.contentFetches.inc({ source: 'local', outcome: 'ok' })
      return result('local', 0, 0, [], [])
    }
    emit({ phase: 'start', source: 'blocks', blocks: 0, bytes: 0 })
    const tried: string[] = []
    const liars: string[] = []
    const counters = { blocks: 0, bytes: 0, totalBytes: undefined as number | undefined }
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    const failures: string[] = []

    if (options.bitswapOnly !== true) {
      for await (const peer of this.#candidates(root, options.providers ?? [], signal)) {
        signal.throwIfAborted()
        const peerKey = peer.toString()
        if (tried.includes(peerKey) || this.banned(peerKey)) continue
        const wanted = await this.#store.missing(root)
        if (wanted.length === 0) break
        tried.push(peerKey)
        emit({ phase: 'provider', source: 'blocks', peer: peerKey, ...counters })
        try {
          const t0 = performance.now()
          await this.#fetchFrom(peer, wanted, { signal, maxBytes, counters, emit })
          this.#log.debug({ peer: peerKey, ms: performance.now() - t0, bytes: counters.bytes }, 'provider stream finished')
          if (await this.#store.hasDag(root)) break
          failures.push(`${peerKey}: ended without sending everything`)
        } catch (err) {
          if (signal.aborted) throw signal.reason ?? err
          if (err instanceof LieError) {
            liars.push(peerKey)
            failures.push(`${peerKey} lied: ${err.message}`)
            emit({ phase: 'provider-lied', source: 'blocks', peer: peerKey, message: err.message, ...counters })
            await this.#penalize(peer, err)
          } else {
            failures.push(`${peerKey}: ${(err as Error).message}`)
            emit({ phase: 'provider-failed', source: 'blocks', peer: peerKey, message: (err as Error).message, ...counters })
          }
        }
      }
    }

    if (await this.#store.hasDag(root)) {
      const ms = performance.now() - started
      this.#metrics.contentFetches.inc({ source: 'blocks', outcome: 'ok' })
      this.#metrics.contentFetchDuration.observe(ms / 1000)
      this.#log.debug({ cid: root.toString(), ms, bytes: counters.bytes, mbps: counters.bytes / 1e3 / ms }, 'fetched over the block protocol')
      emit({ phase: 'done', source: 'blocks', ...counters })
      return result('blocks', counters.blocks, counters.bytes, tried, liars)
    }

    if (options.noBitswap !== true) {
      emit({ phase: 'fallback', source: 'bitswap', message: failures.length > 0 ? failures.join('; ') : 'no provider answered on the blocks protocol', ...counters })
      try {
        await this.#bitswap(root, { signal: AbortSignal.any([signal, AbortSignal.timeout(options.bitswapTimeoutMs ?? 30_000)]), maxBytes, counters, emit })
        if (await this.#store.hasDag(root)) {
          this.#metrics.contentFetches.inc({ source: 'bitswap', outcome: 'ok' })
          this.#metrics.contentFetchDuration.observe((performance.now() - started) / 1000)
          emit({ phase: 'done', source: 'bitswap', ...counters })
          return result('bitswap', counters.blocks, counters.bytes, tried, liars)
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err
        failures.push(`bitswap: ${(err as Error).message}`)
      }
    }
    this.#metrics.contentFetches.inc({ source: 'blocks', outcome: 'failed' })
    const message = `cannot fetch ${root.toString()}: ${tried.length === 0 ? 'no provider found' : `tried ${tried.length} provider(s)`}${failures.length > 0 ? ` (${failures.join('; ')})` : ''}`
    emit({ phase: 'failed', source: 'blocks', message, ...counters })
    throw new TransferError('ERR_CONTENT_UNAVAILABLE', message)
  }

  /** Hinted peers, then DHT providers, then connected peers that speak the protocol. */
  async * #candidates (root: CID, hints: string[], signal: AbortSignal): AsyncGenerator<PeerId> {
    const self = this.#libp2p.peerId.toString()
    const seen = new Set<string>([self])
    for (const h of hints) {
      if (seen.has(h)) continue
      seen.add(h)
      try { yield peerIdFromString(h) } catch { /* not a peer id */ }
    }
    const found: PeerId[] = []
    try {
      const query = AbortSignal.any([signal, AbortSignal.timeout(5000)])
      for await (const p of this.#libp2p.contentRouting.findProviders(root, { signal: query })) {
        if (seen.has(p.id.toString())) continue
        seen.add(p.id.toString())
        if (p.multiaddrs.length > 0) await this.#libp2p.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {})
        found.push(p.id)
        yield p.id
        if (found.length >= 16) break
      }
    } catch (err) {
      signal.throwIfAborted()
      this.#log.debug({ err }, 'findProviders ended')
    }
    for (const c of this.#libp2p.getConnections()) {
      const key = c.remotePeer.toString()
      if (seen.has(key)) continue
      seen.add(key)
      try {
        const peer = await this.#libp2p.peerStore.get(c.remotePeer)
        if (!peer.protocols.includes(this.protocol)) continue
      } catch { continue }
      yield c.remotePeer
    }
  }

  async #fetchFrom (peer: PeerId, wanted: CID[], ctx: { signal: AbortSignal, maxBytes: number, counters: { blocks: number, bytes: number, totalBytes: number | undefined }, emit: (e: Omit<TransferEvent, 'id' | 'cid' | 'at'>) => void }): Promise<void> {
    const { signal, counters, emit } = ctx
    const peerKey = peer.toString()
    const stream = await this.#libp2p.dialProtocol(peer, this.protocol, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) })
    const onAbort = (): void => { stream.abort(new Error('transfer aborted')) }
    signal.addEventListener('abort', onAbort, { once: true })
    const expected = new Set(wanted.map(c => c.toString()))
    const rootKey = wanted.length === 1 ? wanted[0]!.toString() : undefined
    /** blocks this session stored (deleted again if the peer lies) */
    const stored: CID[] = []
    const pending = new Set<Promise<void>>()
    const pool = new BlockPool(MAX_PENDING_WRITES + 1)
    const decoder = new FrameDecoder()
    let lastEmit = 0
    let done = false
    let paused = false

    /** Handles one complete frame; throws LieError / TransferError. Returns true on DONE. */
    const onFrame = (frame: { type: number, parts: Uint8Array[], length: number }): boolean => {
      if (frame.type === FRAME_BLOCK) {
        let block
        try { block = decodeBlockParts(frame.parts, frame.length) } catch (err) { throw new LieError('bad-frame', (err as Error).message) }
        const { cid, data } = block
        const key = cid.toString()
        if (!expected.has(key)) { this.#metrics.contentBlocksRejected.inc({ reason: 'unrequested' }); throw new LieError('unrequested', `sent block ${key}, which was not asked for`) }
        if (block.length > MAX_BLOCK_BYTES) { this.#metrics.contentBlocksRejected.inc({ reason: 'too-large' }); throw new LieError('too-large', `sent a ${block.length}-byte block`) }
        // one copy of the block into a buffer of its own (pooled for raw leaves), so the received
        // chunks die young instead of living until the write ends (V8 would promote them to the
        // old generation and run a full GC every ~100 ms); the block is hashed and written whole
        const pooled = cid.code === CODEC_RAW ? pool.take(block.length) : undefined
        const whole = pooled ?? new Uint8Array(block.length)
        let off = 0
        for (const p of data) { whole.set(p, off); off += p.length }
        const mismatch = (): LieError => {
          this.#metrics.contentBlocksRejected.inc({ reason: 'hash-mismatch' })
          return new LieError('hash-mismatch', `sent block ${key} whose bytes do not match its CID`)
        }
        // a raw leaf links nowhere, so it is hashed with its write; an interior node is
        // verified here because the blocks it links to are accepted only once it is
        let links: CID[] = []
        if (pooled === undefined) {
          if (!verifyBlock(cid, whole)) throw mismatch()
          try { links = blockLinks(cid, whole) } catch (err) { this.#metrics.contentBlocksRejected.inc({ reason: 'codec' }); throw new LieError('codec', (err as Error).message) }
        }
        expected.delete(key)
        for (const l of links) if (l.multihash.code !== 0x00) expected.add(l.toString())
        if (key === rootKey && counters.totalBytes === undefined) counters.totalBytes = unixfsFileSize(cid, whole)
        counters.blocks++
        counters.bytes += block.length
        this.#youngGc.add(block.length)
        if (counters.bytes > ctx.maxBytes) throw new TransferError('ERR_CONTENT_TOO_LARGE', `content is larger than the ${ctx.maxBytes}-byte limit`)
        // store in the background, a bounded number at a time (reading pauses while it is full)
        let returned: Uint8Array | undefined
        const write: Promise<void> = (async () => {
          if (pooled !== undefined) {
            // hashed and written on a worker thread, which hands the pool buffer back
            let put
            try {
              put = await this.#store.putChecked(cid, whole)
            } catch (err) {
              returned = (err as BlockFilesError).bytes
              throw err
            }
            returned = put.bytes
            if (put.outcome === 'mismatch') throw mismatch()
            if (put.outcome === 'stored') stored.push(cid)
            return
          }
          if (this.#store.hasBlockFile(cid) ?? await this.#store.has(cid)) return
          stored.push(cid)
          await this.#store.putVerified(cid, whole)
        })().finally(() => {
          pending.delete(write)
          if (returned !== undefined) pool.give(returned)
          if (paused && pending.size < MAX_PENDING_WRITES / 2 && !settled) { paused = false; stream.resume() }
        })
        write.catch(err => { fail(err) })
        pending.add(write)
        if (pending.size >= MAX_PENDING_WRITES && !paused) { paused = true; stream.pause() }
        const now = Date.now()
        if (now - lastEmit >= PROGRESS_INTERVAL_MS) {
          lastEmit = now
          emit({ phase: 'progress', source: 'blocks', peer: peerKey, ...counters })
        }
        return false
      }
      if (frame.type === FRAME_DONE) return true
      if (frame.type === FRAME_ERROR) throw new TransferError('ERR_PROVIDER', new TextDecoder().decode(Buffer.concat(frame.parts).subarray(0, 512)))
      throw new LieError('bad-frame', `sent an unknown frame type ${frame.type}`)
    }

    // frames are handled synchronously as the chunks arrive: nothing queues up in memory behind
    // a slow consumer (the backlog stays in the kernel's socket buffers and yamux's window)
    let settled = false
    let resolveRead!: () => void
    let rejectRead!: (err: unknown) => void
    const reading = new Promise<void>((resolve, reject) => { resolveRead = resolve; rejectRead = reject })
    const fail = (err: unknown): void => {
      if (settled) return
      settled = true
      rejectRead(err)
    }
    const onMessage = (evt: StreamMessageEvent): void => {
      if (settled || done) return
      try {
        try {
          if (evt.data instanceof Uint8Array) decoder.push(evt.data)
          else for (const b of evt.data) decoder.push(b)
        } catch (err) { throw new LieError('bad-frame', (err as Error).message) }
        for (;;) {
          let frame
          try {
            frame = decoder.nextParts()
          } catch (err) { throw new LieError('bad-frame', (err as Error).message) }
          if (frame === undefined) break
          if (onFrame(frame)) {
            done = true
            if (!settled) { settled = true; resolveRead() }
            break
          }
        }
      } catch (err) { fail(err) }
    }
    const onEnd = (): void => {
      // an abort or a reset ends the readable side first, then reports its cause as a close event
      if (stream.status === 'aborted' || stream.status === 'reset') return
      if (!done) fail(new TransferError('ERR_PROVIDER', 'the stream ended before the provider finished'))
    }
    const onClose = (evt: StreamCloseEvent): void => { if (!done) fail(evt.error ?? new TransferError('ERR_PROVIDER', 'the stream ended before the provider finished')) }
    try {
      for (const part of encodeRequest(wanted)) stream.send(part)
      stream.addEventListener('message', onMessage)
      stream.addEventListener('end', onEnd)
      stream.addEventListener('close', onClose)
      if (stream.status === 'aborted' || stream.status === 'reset') fail(new TransferError('ERR_PROVIDER', `the stream was ${stream.status} before the provider answered`))
      else if (stream.readableEnded || stream.status !== 'open') onEnd()
      await reading
      await Promise.all(pending)
      this.#metrics.contentTransferBytes.inc({ source: 'blocks', direction: 'in' }, counters.bytes)
      if (expected.size > 0) throw new LieError('incomplete', `said it was done with ${expected.size} block(s) still missing`)
      if (paused) stream.resume()
      await stream.close().catch(() => {})
    } catch (err) {
      settled = true
      stream.abort(err as Error)
      await Promise.allSettled(pending)
      if (err instanceof LieError) {
        // nothing a liar sent is kept
        for (const cid of stored) {
          try {
            if (!(await this.#store.isPinned(cid))) await this.#store.deleteBlock(cid)
          } catch { /* gone */ }
        }
      }
      throw err
    } finally {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
    }
  }

  async #penalize (peer: PeerId, err: LieError): Promise<void> {
    const key = peer.toString()
    this.#banned.set(key, Date.now() + BAN_MS)
    this.#metrics.contentPeersPenalized.inc({ reason: err.reason })
    this.#log.warn({ peer: key, reason: err.reason, message: err.message }, 'provider sent bad content: dropped and banned')
    try {
      await this.#libp2p.peerStore.merge(peer, { tags: { 'bitflow-content-liar': { value: 0, ttl: BAN_MS } } })
    } catch { /* peer store */ }
    try {
      await this.#libp2p.hangUp(peer)
    } catch { /* already gone */ }
  }

  /** Bitswap fallback: walks the DAG through Helia's networked blockstore (which verifies hashes). */
  async #bitswap (root: CID, ctx: { signal: AbortSignal, maxBytes: number, counters: { blocks: number, bytes: number, totalBytes: number | undefined }, emit: (e: Omit<TransferEvent, 'id' | 'cid' | 'at'>) => void }): Promise<void> {
    const helia = this.#store.helia
    let frontier = await this.#store.missing(root)
    let lastEmit = 0
    let bytes = 0
    try {
      while (frontier.length > 0) {
        const next: CID[] = []
        await Promise.all(frontier.map(async cid => {
          const chunks: Uint8Array[] = []
          for await (const c of helia.blockstore.get(cid, { signal: ctx.signal })) chunks.push(c)
          const block = chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks))
          if (cid.toString() === root.toString() && ctx.counters.totalBytes === undefined) ctx.counters.totalBytes = unixfsFileSize(cid, block)
          ctx.counters.blocks++
          ctx.counters.bytes += block.length
          bytes += block.length
          if (ctx.counters.bytes > ctx.maxBytes) throw new TransferError('ERR_CONTENT_TOO_LARGE', `content is larger than the ${ctx.maxBytes}-byte limit`)
          for (const l of blockLinks(cid, block)) if (!(await this.#store.has(l))) next.push(l)
          const now = Date.now()
          if (now - lastEmit >= PROGRESS_INTERVAL_MS) { lastEmit = now; ctx.emit({ phase: 'progress', source: 'bitswap', ...ctx.counters }) }
        }))
        frontier = next
      }
    } finally {
      this.#metrics.contentTransferBytes.inc({ source: 'bitswap', direction: 'in' }, bytes)
    }
  }
}
