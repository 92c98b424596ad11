import { createHash } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'

/**
 * Wire format of the bulk block-transfer protocol (`/bitflow/<network>/blocks/1.0.0`).
 *
 * Every frame is a 4-byte big-endian length L then L bytes: a type byte and its payload.
 * - REQUEST (requester → provider, once): UTF-8 JSON `{"cids": ["bafy...", ...]}`, the roots of
 *   the sub-DAGs wanted; the provider walks each one depth-first and sends every block.
 * - BLOCK: a 1-byte CID length, the CID bytes, then the block bytes.
 * - DONE: the provider sent everything it was asked for.
 * - ERROR: UTF-8 reason (e.g. it does not hold a block).
 *
 * The requester verifies every block against its CID and accepts only blocks it asked for (a
 * requested root, or a link of a block it already verified), so nothing unverified is ever stored.
 */

export const FRAME_REQUEST = 1
export const FRAME_BLOCK = 2
export const FRAME_DONE = 3
export const FRAME_ERROR = 4

/** Largest block accepted (UnixFS chunks are 1 MiB; importer-made interior nodes are smaller). */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024
export const MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 256
export const MAX_REQUEST_CIDS = 8192

export const CODEC_RAW = 0x55
export const CODEC_DAG_PB = 0x70
export const HASH_SHA2_256 = 0x12

export class BlockProtocolError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'BlockProtocolError'
    this.code = code
  }
}

export function encodeFrame (type: number, payload: Uint8Array | Uint8Array[] = []): Uint8Array[] {
  const parts = Array.isArray(payload) ? payload : [payload]
  const len = 1 + parts.reduce((s, p) => s + p.length, 0)
  const head = new Uint8Array(5)
  new DataView(head.buffer).setUint32(0, len)
  head[4] = type
  return [head, ...parts]
}

export function encodeRequest (cids: readonly CID[]): Uint8Array[] {
  return encodeFrame(FRAME_REQUEST, new TextEncoder().encode(JSON.stringify({ cids: cids.map(c => c.toString()) })))
}

export function decodeRequest (payload: Uint8Array): CID[] {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch {
    throw new BlockProtocolError('ERR_BLOCKS_REQUEST', 'request is not UTF-8 JSON')
  }
  const cids = (value as { cids?: unknown } | null)?.cids
  if (!Array.isArray(cids) || cids.length === 0 || cids.length > MAX_REQUEST_CIDS) throw new BlockProtocolError('ERR_BLOCKS_REQUEST', `request must list 1-${MAX_REQUEST_CIDS} CIDs`)
  return cids.map(c => {
    if (typeof c !== 'string' || c.length > 200) throw new BlockProtocolError('ERR_BLOCKS_REQUEST', 'request CIDs must be strings')
    try { return CID.parse(c) } catch { throw new BlockProtocolError('ERR_BLOCKS_REQUEST', `'${c.slice(0, 80)}' is not a CID`) }
  })
}

export function encodeBlock (cid: CID, bytes: Uint8Array): Uint8Array[] {
  const c = cid.bytes
  return encodeFrame(FRAME_BLOCK, [Uint8Array.of(c.length), c, bytes])
}

export function decodeBlock (payload: Uint8Array): { cid: CID, bytes: Uint8Array } {
  if (payload.length < 1) throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'empty block frame')
  const n = payload[0]!
  if (n < 4 || payload.length < 1 + n) throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'block frame has a truncated CID')
  let cid: CID
  try {
    cid = CID.decode(payload.subarray(1, 1 + n))
  } catch {
    throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'block frame CID does not decode')
  }
  return { cid, bytes: payload.subarray(1 + n) }
}

/** A BLOCK payload given as pieces: its CID and the block bytes as views of the pieces. */
export function decodeBlockParts (parts: readonly Uint8Array[], length: number): { cid: CID, data: Uint8Array[], length: number } {
  const headLen = Math.min(length, 80)
  const head = new Uint8Array(headLen)
  let off = 0
  for (const p of parts) {
    if (off >= headLen) break
    const take = Math.min(p.length, headLen - off)
    head.set(p.subarray(0, take), off)
    off += take
  }
  const n = head[0] ?? 0
  if (n < 4 || n > 78 || length < 1 + n) throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'block frame has a truncated CID')
  let cid: CID
  try {
    cid = CID.decode(head.subarray(1, 1 + n))
  } catch {
    throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'block frame CID does not decode')
  }
  // drop the CID prefix from the pieces
  let skip = 1 + n
  const data: Uint8Array[] = []
  for (const p of parts) {
    if (skip >= p.length) { skip -= p.length; continue }
    data.push(skip > 0 ? p.subarray(skip) : p)
    skip = 0
  }
  return { cid, data, length: length - 1 - n }
}

/** {@link verifyBlock} over a block given as pieces. */
export function verifyBlockParts (cid: CID, parts: readonly Uint8Array[]): boolean {
  if (cid.multihash.code !== HASH_SHA2_256 || cid.multihash.digest.length !== 32) return false
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return Buffer.compare(h.digest(), Buffer.from(cid.multihash.digest)) === 0
}

/** True when `bytes` hash (sha2-256) to `cid`. Other hash functions are not accepted. */
export function verifyBlock (cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== HASH_SHA2_256 || cid.multihash.digest.length !== 32) return false
  const digest = createHash('sha256').update(bytes).digest()
  return Buffer.compare(digest, Buffer.from(cid.multihash.digest)) === 0
}

/**
 * {@link verifyBlock} off the event loop: WebCrypto hashes in libuv's thread pool, so a receiver
 * keeps decrypting the next frames while the previous block is hashed.
 */
export async function verifyBlockAsync (cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (cid.multihash.code !== HASH_SHA2_256 || cid.multihash.digest.length !== 32) return false
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  return Buffer.compare(digest, cid.multihash.digest) === 0
}

/** The CIDs a block links to (dag-pb), none for raw blocks; throws for other codecs. */
export function blockLinks (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code === CODEC_RAW) return []
  if (cid.code === CODEC_DAG_PB) {
    try {
      return dagPb.decode(bytes).Links.map(l => l.Hash as CID)
    } catch (err) {
      throw new BlockProtocolError('ERR_BLOCKS_CODEC', `block ${cid.toString()} is not valid dag-pb: ${(err as Error).message}`)
    }
  }
  throw new BlockProtocolError('ERR_BLOCKS_CODEC', `block ${cid.toString()} uses codec 0x${cid.code.toString(16)}; only raw and dag-pb are transferred`)
}

/**
 * Incremental frame parser: push chunks as they arrive, take whole frames out. Refuses frames
 * larger than `maxFrameBytes` before buffering them.
 */
export class FrameDecoder {
  /** queued chunks; those before #head are consumed (indexing, not shift(), keeps many tiny chunks linear) */
  #chunks: Uint8Array[] = []
  #head = 0
  #buffered = 0
  readonly #max: number

  constructor (maxFrameBytes = MAX_FRAME_BYTES) {
    this.#max = maxFrameBytes
  }

  get buffered (): number { return this.#buffered }

  push (chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** Copies the next n buffered bytes out; consumes them when `consume`. */
  #read (n: number, consume: boolean): Uint8Array {
    const first = this.#chunks[this.#head]!
    if (first.length >= n) {
      const out = first.subarray(0, n)
      if (consume) this.#advance(n)
      return out
    }
    const out = new Uint8Array(n)
    let off = 0
    for (let i = this.#head; off < n; i++) {
      const c = this.#chunks[i]!
      const take = Math.min(c.length, n - off)
      out.set(take === c.length ? c : c.subarray(0, take), off)
      off += take
    }
    if (consume) this.#advance(n)
    return out
  }

  #advance (n: number): void {
    this.#buffered -= n
    while (n > 0) {
      const c = this.#chunks[this.#head]!
      if (c.length <= n) {
        n -= c.length
        this.#head++
      } else {
        this.#chunks[this.#head] = c.subarray(n)
        n = 0
      }
    }
    if (this.#head > 1024 || this.#head === this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head)
      this.#head = 0
    }
  }

  /**
   * Like {@link next}, but the payload comes as views of the received chunks (no copy), for
   * large frames that are hashed and written piecewise.
   */
  nextParts (): { type: number, parts: Uint8Array[], length: number } | undefined {
    if (this.#buffered < 5) return undefined
    const head = this.#read(5, false)
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0)
    if (len < 1) throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'empty frame')
    if (len > this.#max) throw new BlockProtocolError('ERR_BLOCKS_FRAME', `frame of ${len} bytes exceeds ${this.#max}`)
    if (this.#buffered < 4 + len) return undefined
    this.#advance(5)
    const parts: Uint8Array[] = []
    let want = len - 1
    while (want > 0) {
      const c = this.#chunks[this.#head]!
      const take = Math.min(c.length, want)
      parts.push(take === c.length ? c : c.subarray(0, take))
      this.#advance(take)
      want -= take
    }
    return { type: head[4]!, parts, length: len - 1 }
  }

  /** The next whole frame, or undefined when more bytes are needed. */
  next (): { type: number, payload: Uint8Array } | undefined {
    if (this.#buffered < 4) return undefined
    const head = this.#read(4, false)
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0)
    if (len < 1) throw new BlockProtocolError('ERR_BLOCKS_FRAME', 'empty frame')
    if (len > this.#max) throw new BlockProtocolError('ERR_BLOCKS_FRAME', `frame of ${len} bytes exceeds ${this.#max}`)
    if (this.#buffered < 4 + len) return undefined
    this.#advance(4)
    const body = this.#read(len, true)
    return { type: body[0]!, payload: body.subarray(1) }
  }
}

/**
 * Size in bytes of the file a UnixFS root block describes, for progress reporting: a raw block's
 * length, or the dag-pb node's UnixFS `filesize` (or the sum of its `blocksizes`). Undefined when
 * the block says nothing usable (directories, odd nodes).
 */
export function unixfsFileSize (cid: CID, bytes: Uint8Array): number | undefined {
  if (cid.code === CODEC_RAW) return bytes.length
  if (cid.code !== CODEC_DAG_PB) return undefined
  let data: Uint8Array | undefined
  try {
    data = dagPb.decode(bytes).Data
  } catch {
    return undefined
  }
  if (data === undefined) return undefined
  let pos = 0
  const varint = (): number => {
    let v = 0
    let mul = 1
    for (let i = 0; i < 10; i++) {
      if (pos >= data.length) throw new Error('truncated')
      const b = data[pos++]!
      v += (b & 0x7f) * mul
      if ((b & 0x80) === 0) return v
      mul *= 128
    }
    throw new Error('varint too long')
  }
  let fileSize: number | undefined
  let sum = 0
  let type: number | undefined
  try {
    while (pos < data.length) {
      const tag = varint()
      const field = Math.floor(tag / 8)
      const wire = tag & 7
      if (wire === 0) {
        const v = varint()
        if (field === 1) type = v
        else if (field === 3) fileSize = v
        else if (field === 4) sum += v
      } else if (wire === 2) {
        const len = varint()
        if (field === 4) { const end = pos + len; while (pos < end) sum += varint() } else pos += len
      } else if (wire === 1) pos += 8
      else if (wire === 5) pos += 4
      else return undefined
    }
  } catch {
    return undefined
  }
  // 2 = File, 0 = Raw
  if (type !== 2 && type !== 0) return undefined
  return fileSize ?? sum
}

/** The UnixFS node type of a dag-pb block (0 raw, 1 directory, 2 file, 5 HAMT shard, ...), or undefined. */
export function unixfsType (bytes: Uint8Array): number | undefined {
  let data: Uint8Array | undefined
  try { data = dagPb.decode(bytes).Data } catch { return undefined }
  if (data === undefined || data.length < 2 || data[0] !== 0x08) return undefined
  return data[1]! < 0x80 ? data[1] : undefined
}
