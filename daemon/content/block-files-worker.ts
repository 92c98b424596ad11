/**
 * Worker thread of {@link BlockFiles} (block-files.ts): reads block files, and hashes + writes
 * received blocks, with synchronous calls, one request at a time. Only node: imports, so Node can
 * also run this file as TypeScript (type stripping) when the daemon's modules run from source.
 */
import { parentPort } from 'node:worker_threads'
import { createHash } from 'node:crypto'
import { openSync, fstatSync, readSync, writeSync, closeSync, renameSync, unlinkSync, mkdirSync, existsSync } from 'node:fs'
import type { BlockFilesRequest, BlockFilesReply } from './block-files.js'

const port = parentPort
if (port === null) throw new Error('block-files-worker.js runs only as a worker thread')

const madeDirs = new Set<string>()

/** The whole file in a buffer of its own (transferable), read with as few calls as it takes. */
function readWhole (path: string): Uint8Array {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const out = new Uint8Array(size)
    let n = 0
    while (n < size) {
      const got = readSync(fd, out, n, size - n, n)
      if (got === 0) break
      n += got
    }
    return n === size ? out : out.slice(0, n)
  } finally {
    closeSync(fd)
  }
}

/** Writes `bytes` to `tmp` (created exclusively), then renames it to `path`: never a partial block file. */
function writeAtomic (dir: string, path: string, tmp: string, bytes: Uint8Array): void {
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true })
    madeDirs.add(dir)
  }
  let fd: number
  try {
    fd = openSync(tmp, 'wx', 0o644)
  } catch (err) {
    // the directory was removed since this worker made it
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    mkdirSync(dir, { recursive: true })
    fd = openSync(tmp, 'wx', 0o644)
  }
  try {
    let n = 0
    while (n < bytes.length) n += writeSync(fd, bytes, n, bytes.length - n)
    closeSync(fd)
  } catch (err) {
    try { closeSync(fd) } catch { /* closed */ }
    try { unlinkSync(tmp) } catch { /* gone */ }
    throw err
  }
  try {
    renameSync(tmp, path)
  } catch (err) {
    try { unlinkSync(tmp) } catch { /* gone */ }
    throw err
  }
}

function handle (req: BlockFilesRequest): { reply: BlockFilesReply, transfer: ArrayBuffer[] } {
  if (req.op === 'read') {
    const bytes = readWhole(req.path)
    return { reply: { id: req.id, ok: true, buffer: bytes.buffer as ArrayBuffer, offset: 0, length: bytes.length }, transfer: [bytes.buffer as ArrayBuffer] }
  }
  const bytes = new Uint8Array(req.buffer, req.offset, req.length)
  const back = { buffer: req.buffer, offset: req.offset, length: req.length }
  const digest = createHash('sha256').update(bytes).digest()
  if (Buffer.compare(digest, req.sha256) !== 0) return { reply: { id: req.id, ok: true, outcome: 'mismatch', ...back }, transfer: [req.buffer] }
  if (existsSync(req.path)) return { reply: { id: req.id, ok: true, outcome: 'present', ...back }, transfer: [req.buffer] }
  writeAtomic(req.dir, req.path, req.tmp, bytes)
  return { reply: { id: req.id, ok: true, outcome: 'stored', ...back }, transfer: [req.buffer] }
}

port.on('message', (req: BlockFilesRequest) => {
  try {
    const { reply, transfer } = handle(req)
    port.postMessage(reply, transfer)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // a failed store hands its buffer back too
    const back = req.op === 'store' ? { buffer: req.buffer, offset: req.offset, length: req.length } : {}
    port.postMessage({ id: req.id, ok: false, code: e.code ?? 'ERR_BLOCK_FILES', message: e.message, ...back } satisfies BlockFilesReply, req.op === 'store' ? [req.buffer] : [])
  }
})
