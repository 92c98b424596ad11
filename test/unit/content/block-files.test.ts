import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { BlockFiles, BlockFilesError } from '../../../daemon/content/block-files.js'

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
/** bytes of `path` held in the page cache (util-linux fincore) */
const cachedBytes = (path: string): number => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim())

describe('BlockFiles (block reads and checked writes on worker threads)', () => {
  let dir: string
  let files: BlockFiles
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bf-blockfiles-'))
    files = new BlockFiles({ threads: 2 })
    await files.start()
  })
  afterEach(async () => {
    await files.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const request = (name: string, bytes: Uint8Array, digest = sha256(bytes)): Parameters<BlockFiles['store']>[0] => {
    const sub = join(dir, 'AB')
    const path = join(sub, name)
    return { dir: sub, path, tmp: `${path}.tmp-test`, sha256: digest, bytes }
  }

  it('stores bytes that match their digest, atomically, and hands the buffer back', async () => {
    const pool = new Uint8Array(1024 * 1024)
    const block = pool.subarray(0, 700_000)
    block.set(randomBytes(700_000))
    const expected = Buffer.from(block)
    const req = request('b1.data', block)
    const result = await files.store(req)
    expect(result.outcome).toBe('stored')
    // the same memory comes back, whole
    expect(result.bytes.buffer.byteLength).toBe(1024 * 1024)
    expect(result.bytes.length).toBe(700_000)
    expect(Buffer.compare(result.bytes, expected)).toBe(0)
    expect(Buffer.compare(readFileSync(req.path), expected)).toBe(0)
    // no temp file left behind
    expect(readdirSync(join(dir, 'AB'))).toEqual(['b1.data'])

    // a directory removed behind the worker's back is made again
    rmSync(join(dir, 'AB'), { recursive: true })
    expect((await files.store(request('b2.data', new Uint8Array(expected)))).outcome).toBe('stored')
    expect(Buffer.compare(readFileSync(join(dir, 'AB', 'b2.data')), expected)).toBe(0)

    // a second store of the same block finds it present and does not rewrite it
    const again = await files.store(request('b2.data', new Uint8Array(expected)))
    expect(again.outcome).toBe('present')
  })

  it('refuses bytes that do not match the digest and writes nothing', async () => {
    const bytes = new Uint8Array(randomBytes(4096))
    const req = request('bad.data', bytes, sha256(new Uint8Array(4096)))
    const result = await files.store(req)
    expect(result.outcome).toBe('mismatch')
    expect(existsSync(req.path)).toBe(false)
    expect(existsSync(req.tmp)).toBe(false)
    expect(result.bytes.length).toBe(4096)
  })

  it('reads a whole file into a buffer of its own', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    writeFileSync(join(dir, 'f'), data)
    const got = await files.read(join(dir, 'f'))
    expect(Buffer.compare(got, data)).toBe(0)
    expect(got.buffer.byteLength).toBe(data.length)
    writeFileSync(join(dir, 'tiny'), 'x')
    expect(Buffer.from(await files.read(join(dir, 'tiny'))).toString()).toBe('x')
  })

  it('reads a file into a given buffer when it fits, into a new one otherwise', async () => {
    const data = randomBytes(700_000)
    writeFileSync(join(dir, 'f'), data)
    const into = new ArrayBuffer(1024 * 1024)
    const got = await files.readInto(join(dir, 'f'), into)
    expect(got.reused).toBe(true)
    // moved to the worker and back: the caller's handle is empty, the result views the same memory
    expect(into.byteLength).toBe(0)
    expect(got.bytes.buffer.byteLength).toBe(1024 * 1024)
    expect(Buffer.compare(got.bytes, data)).toBe(0)
    const small = await files.readInto(join(dir, 'f'), new ArrayBuffer(1000))
    expect(small.reused).toBe(false)
    expect(Buffer.compare(small.bytes, data)).toBe(0)
  })

  it('a failed read or write rejects with the file system code; a failed write returns the buffer', async () => {
    await expect(files.read(join(dir, 'missing'))).rejects.toMatchObject({ name: 'BlockFilesError', code: 'ENOENT' })
    // a file where the block's directory should be (root may write anywhere else)
    writeFileSync(join(dir, 'notadir'), '')
    const bytes = new Uint8Array(1000)
    const err = await files.store({ dir: join(dir, 'notadir'), path: join(dir, 'notadir', 'x'), tmp: join(dir, 'notadir', 'x.tmp'), sha256: sha256(bytes), bytes }).catch(e => e as BlockFilesError)
    expect(err).toBeInstanceOf(BlockFilesError)
    expect(['EEXIST', 'ENOTDIR']).toContain((err as BlockFilesError).code)
    expect((err as BlockFilesError).bytes?.length).toBe(1000)
    // the workers keep serving
    const ok = await files.store(request('after.data', new Uint8Array(10)))
    expect(ok.outcome).toBe('stored')
  })

  it('many requests at once are all answered, each with its own result', async () => {
    const blocks = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(50_000 + i)))
    const copies = blocks.map(b => Buffer.from(b))
    const results = await Promise.all(blocks.map(async (b, i) => await files.store(request(`m${i}.data`, b, i % 5 === 0 ? sha256(new Uint8Array(1)) : sha256(b)))))
    results.forEach((r, i) => {
      expect(r.outcome).toBe(i % 5 === 0 ? 'mismatch' : 'stored')
      expect(Buffer.compare(r.bytes, copies[i]!)).toBe(0)
    })
    const reads = await Promise.all(copies.map(async (_, i) => i % 5 === 0 ? undefined : await files.read(join(dir, 'AB', `m${i}.data`))))
    reads.forEach((r, i) => { if (r !== undefined) expect(Buffer.compare(r, copies[i]!)).toBe(0) })
  })

  it('an aborted read rejects with the reason; a stopped instance refuses work', async () => {
    writeFileSync(join(dir, 'f'), randomBytes(1024))
    const ac = new AbortController()
    ac.abort(new Error('user gave up'))
    await expect(files.read(join(dir, 'f'), { signal: ac.signal })).rejects.toThrow('user gave up')
    await files.stop()
    await expect(files.read(join(dir, 'f'))).rejects.toMatchObject({ code: 'ERR_BLOCK_FILES_STOPPED' })
  })

  it('writes 4 KiB-multiple blocks past the page cache (O_DIRECT), others and opted-out ones through it', async () => {
    const mib = new Uint8Array(randomBytes(1024 * 1024))
    const expected = Buffer.from(mib)
    const direct = await files.store(request('direct.data', mib))
    expect(direct).toMatchObject({ outcome: 'stored', written: 'direct' })
    // nothing of it was copied into the page cache (a buffered write leaves all of it there)
    expect(cachedBytes(join(dir, 'AB', 'direct.data'))).toBe(0)
    expect(Buffer.compare(readFileSync(join(dir, 'AB', 'direct.data')), expected)).toBe(0)
    expect(Buffer.compare(direct.bytes, expected)).toBe(0)
    // a block larger than the worker's aligned buffer so far
    const big = new Uint8Array(randomBytes(3 * 1024 * 1024))
    const bigCopy = Buffer.from(big)
    expect((await files.store(request('big.data', big))).written).toBe('direct')
    expect(Buffer.compare(readFileSync(join(dir, 'AB', 'big.data')), bigCopy)).toBe(0)

    // a length O_DIRECT cannot write goes through the page cache
    const odd = new Uint8Array(randomBytes(1024 * 1024 - 100))
    const oddCopy = Buffer.from(odd)
    expect((await files.store(request('odd.data', odd))).written).toBe('buffered')
    expect(Buffer.compare(readFileSync(join(dir, 'AB', 'odd.data')), oddCopy)).toBe(0)

    const buffered = new BlockFiles({ threads: 1, directWrites: false })
    await buffered.start()
    try {
      const result = await buffered.store(request('buffered.data', new Uint8Array(expected)))
      expect(result).toMatchObject({ outcome: 'stored', written: 'buffered' })
      expect(cachedBytes(join(dir, 'AB', 'buffered.data'))).toBe(expected.length)
    } finally {
      await buffered.stop()
    }
  })
})
