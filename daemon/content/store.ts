import { open as openFile, mkdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { constants as fsc, existsSync } from 'node:fs'
import { createHeliaLight, type Helia, type Router, type Provider, type Peer } from 'helia'
import { withBitswap } from '@helia/bitswap'
import { unixfs, type UnixFS } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { peerIdFromCID } from '@libp2p/peer-id'
import type { Datastore } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { Logger } from '../logger.js'
import { blockLinks, verifyBlockAsync, CODEC_DAG_PB, CODEC_RAW, HASH_SHA2_256 } from '../../protocols/content/blocks.js'
import { BlockFiles, type StoreOutcome } from './block-files.js'
import { UNIXFS_CHUNK_SIZE } from '../../protocols/taskpack/pack.js'

/**
 * The daemon's content store: Helia built light on the daemon's own libp2p, with an on-disk
 * blockstore (<dataDir>/blocks) and the daemon's shared datastore (pins live there). None of
 * createHelia's public-network defaults: no mDNS, UPnP, public bootstrap, delegated routing, HTTP
 * gateways or autoTLS — routing is this network's private DHT, the block brokers are bitswap (the
 * fallback) and BitFlow's own block protocol (daemon/content/transfer.ts) which the fetch path tries
 * first.
 */

/** Importer settings for tensors and other single files, pinned (not library defaults) so a file
 * always gets the same CID: CIDv1, raw leaves, 1 MiB chunks, balanced layout. */
export const FILE_IMPORT_OPTIONS = {
  cidVersion: 1 as const,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: UNIXFS_CHUNK_SIZE }),
  layout: balanced({ maxChildrenPerNode: 1024 }),
  wrapWithDirectory: false
}

/** Helia's Router over libp2p's content and peer routing (here: the private Kademlia DHT only). */
class DhtRouter implements Router {
  readonly name = 'bitflow-dht'
  readonly #libp2p: BitflowLibp2p
  constructor (libp2p: BitflowLibp2p) { this.#libp2p = libp2p }
  async provide (cid: CID, options?: { signal?: AbortSignal }): Promise<void> {
    await this.#libp2p.contentRouting.provide(cid, options)
  }

  async cancelReprovide (cid: CID, options?: { signal?: AbortSignal }): Promise<void> {
    await this.#libp2p.contentRouting.cancelReprovide(cid, options)
  }

  async * findProviders (cid: CID, options?: { signal?: AbortSignal }): AsyncIterable<Provider> {
    for await (const p of this.#libp2p.contentRouting.findProviders(cid, options)) {
      yield { id: p.id.toCID(), multiaddrs: p.multiaddrs, router: this.name, fallback: false }
    }
  }

  async findPeer (peer: CID, options?: { signal?: AbortSignal }): Promise<Peer> {
    const info = await this.#libp2p.peerRouting.findPeer(peerIdFromCID(peer), options)
    return { id: info.id.toCID(), multiaddrs: info.multiaddrs, router: this.name }
  }

  async * getClosestPeers (key: Uint8Array, options?: { signal?: AbortSignal }): AsyncIterable<Peer> {
    for await (const p of this.#libp2p.peerRouting.getClosestPeers(key, options)) {
      yield { id: p.id.toCID(), multiaddrs: p.multiaddrs, router: this.name }
    }
  }
}

/**
 * A simple readers/writer gate: content operations that write blocks and then pin them hold it
 * shared, garbage collection holds it exclusively, so gc never deletes blocks between a write and
 * the pin that keeps them.
 */
class Gate {
  #shared = 0
  #exclusive: Promise<void> | undefined
  #drained: (() => void) | undefined

  async shared<T> (fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive !== undefined) await this.#exclusive
    this.#shared++
    try {
      return await fn()
    } finally {
      this.#shared--
      if (this.#shared === 0) this.#drained?.()
    }
  }

  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive !== undefined) await this.#exclusive
    let release!: () => void
    this.#exclusive = new Promise<void>(resolve => { release = resolve })
    try {
      if (this.#shared > 0) await new Promise<void>(resolve => { this.#drained = resolve })
      this.#drained = undefined
      return await fn()
    } finally {
      this.#exclusive = undefined
      release()
    }
  }
}

export interface PinInfo { cid: string, metadata: Record<string, string | number | boolean> }

export class ContentStore {
  readonly blocksDir: string
  readonly #libp2p: BitflowLibp2p
  readonly #datastore: Datastore
  readonly #log: Logger
  readonly #fs: FsBlockstore
  readonly gate = new Gate()
  readonly #dirs = new Set<string>()
  /** worker threads for the block protocol's reads and checked writes */
  readonly #files = new BlockFiles()
  #tmpSeq = 0
  #helia: Helia | undefined
  #unixfs: UnixFS | undefined

  constructor (init: { libp2p: BitflowLibp2p, datastore: Datastore, blocksDir: string, log: Logger }) {
    this.#libp2p = init.libp2p
    this.#datastore = init.datastore
    this.#log = init.log
    this.blocksDir = init.blocksDir
    this.#fs = new FsBlockstore(init.blocksDir)
  }

  get helia (): Helia {
    if (this.#helia === undefined) throw new Error('content store not started')
    return this.#helia
  }

  get unixfs (): UnixFS {
    if (this.#unixfs === undefined) throw new Error('content store not started')
    return this.#unixfs
  }

  async start (): Promise<void> {
    await this.#fs.open()
    await this.#files.start()
    const helia = createHeliaLight({
      blockstore: this.#fs,
      datastore: this.#datastore,
      routers: [new DhtRouter(this.#libp2p)],
      // this daemon is the only process using its store
      holdGcLock: true
    })
    // bitswap reads helia.libp2p: the daemon's own node, which the daemon starts and stops
    Object.defineProperty(helia, 'libp2p', { value: this.#libp2p, enumerable: true, configurable: true })
    withBitswap(helia as Helia & { libp2p: BitflowLibp2p }, { maxSizeReplaceHasWithBlock: 1024 })
    await helia.start()
    this.#helia = helia
    this.#unixfs = unixfs(helia)
    this.#log.info({ blocks: this.blocksDir }, 'content store started')
  }

  async stop (): Promise<void> {
    await this.#helia?.stop()
    this.#helia = undefined
    await this.#files.stop()
    await this.#fs.close()
  }

  // ---- local blocks (never reach the network) ----

  /** blockstore-fs's file layout (dir + file per CID), for the hot paths that bypass Helia */
  #sharding (): { encode: (cid: CID) => { dir: string, file: string } } | undefined {
    return (this.#fs as unknown as { shardingStrategy?: { encode: (cid: CID) => { dir: string, file: string } } }).shardingStrategy
  }

  async has (cid: CID): Promise<boolean> {
    return await this.helia.blockstore.has(cid)
  }

  /**
   * Whether the block file exists, checked with one stat on the calling thread: the block
   * protocol asks this for every block it receives, and the blockstore's own check costs a trip
   * through Helia's locks and the thread pool. Undefined when the blockstore's layout is unknown.
   */
  hasBlockFile (cid: CID): boolean | undefined {
    const sharding = this.#sharding()
    if (sharding === undefined) return undefined
    const { dir, file } = sharding.encode(cid)
    return existsSync(join(this.blocksDir, dir, file))
  }

  async getLocal (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const chunks: Uint8Array[] = []
    let n = 0
    for await (const c of this.helia.blockstore.get(cid, { offline: true, ...options })) { chunks.push(c); n += c.length }
    if (chunks.length === 1) return chunks[0]!
    return new Uint8Array(Buffer.concat(chunks, n))
  }

  /**
   * Reads a local block on a worker thread (the block protocol's hot path); falls back to the
   * blockstore's streaming read.
   */
  async readBlock (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return (await this.#readBlock(cid, undefined, options.signal)).bytes
  }

  /**
   * {@link readBlock} into `into` if the block fits (`reused`: the result views `into`'s memory,
   * moved back from the worker); `into` is moved away and not handed back otherwise.
   */
  async readBlockInto (cid: CID, into: ArrayBuffer, options: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array, reused: boolean }> {
    return await this.#readBlock(cid, into, options.signal)
  }

  async #readBlock (cid: CID, into: ArrayBuffer | undefined, signal: AbortSignal | undefined): Promise<{ bytes: Uint8Array, reused: boolean }> {
    const options = signal !== undefined ? { signal } : {}
    const sharding = this.#sharding()
    if (sharding !== undefined) {
      const { dir, file } = sharding.encode(cid)
      const path = join(this.blocksDir, dir, file)
      try {
        return into !== undefined ? await this.#files.readInto(path, into, options) : { bytes: await this.#files.read(path, options), reused: false }
      } catch { signal?.throwIfAborted() /* otherwise fall back */ }
    }
    return { bytes: await this.getLocal(cid, options), reused: false }
  }

  /**
   * Checks `bytes` against `cid` and stores them unless the block is already here, on a worker
   * thread: 'mismatch' (nothing stored), 'present' or 'stored'. Takes `bytes.buffer` (a buffer
   * the caller owns whole) and hands it back as the result's `bytes`, or as the `bytes` of the
   * BlockFilesError it throws. Callers hold {@link gate} shared so gc cannot interleave.
   */
  async putChecked (cid: CID, bytes: Uint8Array): Promise<{ outcome: StoreOutcome, bytes: Uint8Array }> {
    const sharding = this.#sharding()
    if (sharding === undefined || cid.multihash.code !== HASH_SHA2_256 || cid.multihash.digest.length !== 32 || !(bytes.buffer instanceof ArrayBuffer)) {
      if (!(await verifyBlockAsync(cid, bytes))) return { outcome: 'mismatch', bytes }
      if (await this.has(cid)) return { outcome: 'present', bytes }
      await this.putVerified(cid, bytes)
      return { outcome: 'stored', bytes }
    }
    const { dir, file } = sharding.encode(cid)
    const target = join(this.blocksDir, dir, file)
    // slice: the digest views the CID's bytes, whose whole buffer a message would otherwise copy
    return await this.#files.store({ dir: join(this.blocksDir, dir), path: target, tmp: `${target}.tmp-${process.pid}-${this.#tmpSeq++}`, sha256: cid.multihash.digest.slice(), bytes })
  }

  /**
   * Stores a block that the caller has already verified against its CID, straight into the
   * on-disk blockstore (atomic write). Callers hold {@link gate} shared so gc cannot interleave.
   */
  async putVerified (cid: CID, bytes: Uint8Array | Uint8Array[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const sharding = this.#sharding()
    if (sharding === undefined) {
      await this.#fs.put(cid, Array.isArray(bytes) ? new Uint8Array(Buffer.concat(bytes)) : bytes, options)
      return
    }
    if (!Array.isArray(bytes)) bytes = [bytes]
    // the blockstore's own layout, written atomically (temp file + rename) with one writev
    const { dir, file } = sharding.encode(cid)
    const target = join(this.blocksDir, dir, file)
    if (!this.#dirs.has(dir)) {
      await mkdir(join(this.blocksDir, dir), { recursive: true })
      this.#dirs.add(dir)
    }
    const tmp = `${target}.tmp-${process.pid}-${this.#tmpSeq++}`
    const fh = await openFile(tmp, 'wx', 0o644)
    try {
      let written = 0
      const total = bytes.reduce((n, b) => n + b.length, 0)
      let pending = bytes
      while (written < total) {
        const { bytesWritten } = await fh.writev(pending)
        written += bytesWritten
        if (written < total) {
          // a short write: continue after what was written
          let skip = bytesWritten
          const rest: Uint8Array[] = []
          for (const b of pending) {
            if (skip >= b.length) { skip -= b.length; continue }
            rest.push(skip > 0 ? b.subarray(skip) : b)
            skip = 0
          }
          pending = rest
        }
      }
      await fh.close()
      await rename(tmp, target)
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  async deleteBlock (cid: CID): Promise<void> {
    await this.#fs.delete(cid)
  }

  /**
   * The parts of a DAG this store lacks: walks what is present from `root` and returns the roots
   * of the missing sub-DAGs (up to `limit`; more means "ask for the root again").
   */
  async missing (root: CID, limit = 4096): Promise<CID[]> {
    const out: CID[] = []
    const stack: CID[] = [root]
    const seen = new Set<string>()
    while (stack.length > 0) {
      const cid = stack.pop()!
      const key = cid.toString()
      if (seen.has(key)) continue
      seen.add(key)
      if (cid.multihash.code === 0x00) continue // identity: inline
      if (!(this.hasBlockFile(cid) ?? await this.has(cid))) {
        out.push(cid)
        if (out.length > limit) return [root]
        continue
      }
      if (cid.code === CODEC_DAG_PB) stack.push(...blockLinks(cid, await this.getLocal(cid)).reverse())
      else if (cid.code !== CODEC_RAW) throw new Error(`${key} uses codec 0x${cid.code.toString(16)}, which the store does not walk`)
    }
    return out
  }

  /** True when the whole DAG under `root` is present locally. */
  async hasDag (root: CID): Promise<boolean> {
    return (await this.missing(root, 0)).length === 0
  }

  /** Every block CID of a DAG that is complete locally, root first. */
  async dagBlocks (root: CID): Promise<CID[]> {
    const out: CID[] = []
    const stack: CID[] = [root]
    const seen = new Set<string>()
    while (stack.length > 0) {
      const cid = stack.pop()!
      if (seen.has(cid.toString())) continue
      seen.add(cid.toString())
      out.push(cid)
      if (cid.code === CODEC_DAG_PB) stack.push(...blockLinks(cid, await this.getLocal(cid)).reverse())
    }
    return out
  }

  /** Total bytes of a local DAG's blocks. */
  async dagSize (root: CID): Promise<number> {
    let n = 0
    for (const cid of await this.dagBlocks(root)) {
      for await (const c of this.helia.blockstore.get(cid, { offline: true })) n += c.length
    }
    return n
  }

  // ---- files ----

  /** Imports bytes (or a local file read chunk by chunk) as a UnixFS file; pins it when asked. */
  async addFile (source: Uint8Array | { path: string, maxBytes: number }, options: { pin?: Record<string, string | number | boolean> | false, signal?: AbortSignal } = {}): Promise<{ cid: CID, bytes: number }> {
    return await this.gate.shared(async () => {
      let size = 0
      let content: AsyncIterable<Uint8Array> | Uint8Array
      if (source instanceof Uint8Array) {
        content = source
        size = source.length
      } else {
        const { path, maxBytes } = source
        content = (async function * () {
          // O_NOFOLLOW: a symlink swapped in is refused rather than followed
          const fh = await openFile(path, fsc.O_RDONLY | fsc.O_NOFOLLOW)
          try {
            const st = await fh.stat()
            if (!st.isFile()) throw new Error(`${path} is not a regular file`)
            if (st.size > maxBytes) throw new Error(`${path} is ${st.size} bytes; the limit is ${maxBytes}`)
            const buf = Buffer.allocUnsafe(UNIXFS_CHUNK_SIZE)
            for (;;) {
              options.signal?.throwIfAborted()
              const { bytesRead } = await fh.read(buf, 0, buf.length, null)
              if (bytesRead === 0) break
              size += bytesRead
              if (size > maxBytes) throw new Error(`${path} grew past ${maxBytes} bytes while it was read`)
              yield new Uint8Array(buf.subarray(0, bytesRead))
            }
          } finally {
            await fh.close()
          }
        })()
      }
      let root: CID | undefined
      for await (const entry of importer([{ content }], this.helia.blockstore, { ...FILE_IMPORT_OPTIONS, ...(options.signal !== undefined ? { signal: options.signal } : {}) })) root = entry.cid
      if (root === undefined) throw new Error('nothing was imported')
      if (options.pin !== false && options.pin !== undefined) await this.pin(root, options.pin)
      return { cid: root, bytes: size }
    })
  }

  /** Reads a complete local UnixFS file. */
  async * cat (cid: CID, options: { signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
    yield * this.unixfs.cat(cid, { offline: true, ...options })
  }

  // ---- pins and gc ----

  /** Pins a DAG that is complete locally (refuses to fetch anything). */
  async pin (cid: CID, metadata: Record<string, string | number | boolean> = {}): Promise<boolean> {
    if (await this.helia.pins.isPinned(cid)) return false
    if (!(await this.hasDag(cid))) throw new Error(`${cid.toString()} is not complete in the local store; fetch it first`)
    for await (const _ of this.helia.pins.add(cid, { metadata })) { /* walks the local DAG */ }
    return true
  }

  async unpin (cid: CID): Promise<boolean> {
    if (!(await this.helia.pins.isPinned(cid))) return false
    for await (const _ of this.helia.pins.rm(cid)) { /* */ }
    return true
  }

  async isPinned (cid: CID): Promise<boolean> {
    return await this.helia.pins.isPinned(cid)
  }

  async pins (): Promise<PinInfo[]> {
    const out: PinInfo[] = []
    for await (const p of this.helia.pins.ls()) out.push({ cid: p.cid.toString(), metadata: p.metadata })
    return out.sort((a, b) => a.cid.localeCompare(b.cid))
  }

  /** Deletes every block no pin reaches; returns how many were removed. */
  async gc (options: { signal?: AbortSignal } = {}): Promise<{ removed: number, bytesBefore: number, bytesAfter: number }> {
    return await this.gate.exclusive(async () => {
      const before = await this.#usage()
      let removed = 0
      await this.helia.gc({
        ...options,
        onProgress: (evt) => { if (evt.type === 'helia:gc:deleted') removed++ }
      })
      const after = await this.#usage()
      return { removed, bytesBefore: before, bytesAfter: after }
    })
  }

  async #usage (): Promise<number> {
    let n = 0
    for await (const { bytes } of this.#fs.getAll()) for await (const c of bytes) n += c.length
    return n
  }

  /** Usage of the blockstore: blocks and bytes. */
  async stats (): Promise<{ blocks: number, bytes: number }> {
    let blocks = 0
    let bytes = 0
    for await (const pair of this.#fs.getAll()) {
      blocks++
      for await (const c of pair.bytes) bytes += c.length
    }
    return { blocks, bytes }
  }

  /** Announces on the DHT that this node provides `cid` (best effort). */
  async provide (cid: CID, signal?: AbortSignal): Promise<void> {
    try {
      await this.#libp2p.contentRouting.provide(cid, { signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(signal !== undefined ? [signal] : [])]) })
    } catch (err) {
      this.#log.debug({ err, cid: cid.toString() }, 'provide failed')
    }
  }
}
