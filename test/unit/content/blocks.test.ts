import { describe, it, expect } from 'vitest'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'
import { FILE_IMPORT_OPTIONS } from '../../../daemon/content/store.js'
import {
  FrameDecoder, encodeBlock, decodeBlock, encodeRequest, decodeRequest, verifyBlock, verifyBlockAsync, blockLinks, unixfsFileSize, encodeFrame,
  FRAME_BLOCK, FRAME_REQUEST, FRAME_DONE, MAX_FRAME_BYTES
} from '../../../protocols/content/blocks.js'

/** A UnixFS file's blocks in depth-first order, with their real CIDs. */
async function dag (size: number): Promise<{ root: CID, blocks: Map<string, { cid: CID, bytes: Uint8Array }> }> {
  const store = new MemoryBlockstore()
  let root: CID | undefined
  for await (const e of importer([{ content: new Uint8Array(size).map((_, i) => i & 0xff) }], store, FILE_IMPORT_OPTIONS)) root = e.cid
  const blocks = new Map<string, { cid: CID, bytes: Uint8Array }>()
  const walk = async (cid: CID): Promise<void> => {
    const parts: Uint8Array[] = []
    for await (const p of store.get(cid)) parts.push(p)
    const bytes = new Uint8Array(Buffer.concat(parts))
    blocks.set(cid.toString(), { cid, bytes })
    for (const l of blockLinks(cid, bytes)) await walk(l)
  }
  await walk(root!)
  return { root: root!, blocks }
}

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))

describe('block protocol wire format', () => {
  it('frames survive any chunking and blocks verify against their CIDs', async () => {
    const { root, blocks } = await dag(2.5 * 1024 * 1024)
    const wire = concat([...encodeRequest([root]), ...[...blocks.values()].flatMap(b => encodeBlock(b.cid, b.bytes)), ...encodeFrame(FRAME_DONE)])
    for (const step of [1, 7, 65536, wire.length]) {
      const d = new FrameDecoder()
      const frames: Array<{ type: number, payload: Uint8Array }> = []
      for (let i = 0; i < wire.length; i += step) {
        d.push(wire.subarray(i, i + step))
        for (let f = d.next(); f !== undefined; f = d.next()) frames.push(f)
      }
      expect(frames.map(f => f.type)).toEqual([FRAME_REQUEST, ...[...blocks.keys()].map(() => FRAME_BLOCK), FRAME_DONE])
      expect(decodeRequest(frames[0]!.payload).map(String)).toEqual([root.toString()])
      for (const f of frames.slice(1, -1)) {
        const { cid, bytes } = decodeBlock(f.payload)
        expect(verifyBlock(cid, bytes)).toBe(true)
        const flipped = new Uint8Array(bytes); flipped[0] = flipped[0]! ^ 1
        expect(verifyBlock(cid, flipped)).toBe(false)
        expect(await verifyBlockAsync(cid, bytes)).toBe(true)
        expect(await verifyBlockAsync(cid, flipped)).toBe(false)
        expect(await verifyBlockAsync(cid, bytes.subarray(1))).toBe(false)
      }
    }
    expect(blockLinks(root, blocks.get(root.toString())!.bytes)).toHaveLength(3)
    expect(unixfsFileSize(root, blocks.get(root.toString())!.bytes)).toBe(2.5 * 1024 * 1024)
  })

  it('refuses oversized frames before buffering them, and garbage requests', () => {
    const d = new FrameDecoder()
    const head = new Uint8Array(4); new DataView(head.buffer).setUint32(0, MAX_FRAME_BYTES + 1)
    d.push(head)
    expect(() => d.next()).toThrow(/exceeds/)
    expect(() => decodeRequest(new TextEncoder().encode('{"cids":[]}'))).toThrow(/1-8192 CIDs/)
    expect(() => decodeRequest(new TextEncoder().encode('{"cids":["nope"]}'))).toThrow(/not a CID/)
    expect(() => decodeBlock(new Uint8Array([40, 1, 2]))).toThrow(/truncated/)
  })
})
