import { Worker } from 'node:worker_threads'

/**
 * Block-file I/O for the bulk transfer paths, on worker threads.
 *
 * Reading a block with fs/promises takes four trips through libuv's thread pool (open, fstat,
 * read, close); storing a received one took five (hash, open, writev, close, rename). Each trip
 * wakes a pool thread that, on a 2-core machine, preempts the event loop that is decrypting the
 * stream. A worker does the same calls synchronously, so a block costs the event loop one
 * message each way, and its bytes cross threads by transfer, not by copy (WebCrypto's digest
 * copied every block first).
 */

export type StoreOutcome = 'stored' | 'present' | 'mismatch'
/** how a stored block reached the file: with O_DIRECT past the page cache, or through it */
export type WriteMode = 'direct' | 'buffered'

export interface BlockFilesWorkerData { directWrites: boolean }

export type BlockFilesRequest =
  | { op: 'read', id: number, path: string, into?: ArrayBuffer }
  | { op: 'store', id: number, dir: string, path: string, tmp: string, sha256: Uint8Array, buffer: ArrayBuffer, offset: number, length: number }

export type BlockFilesReply =
  | { id: number, ok: true, outcome?: StoreOutcome, written?: WriteMode, reused?: boolean, buffer: ArrayBuffer, offset: number, length: number }
  | { id: number, ok: false, code: string, message: string, buffer?: ArrayBuffer, offset?: number, length?: number }

/** A block-file operation failed; `code` is the file system's (ENOENT, ENOSPC, ...) where it said one. */
export class BlockFilesError extends Error {
  readonly code: string
  /** for a failed {@link BlockFiles.store}: the caller's bytes, handed back */
  readonly bytes: Uint8Array | undefined
  constructor (code: string, message: string, bytes?: Uint8Array) {
    super(message)
    this.name = 'BlockFilesError'
    this.code = code
    this.bytes = bytes
  }
}

interface Pending {
  resolve: (reply: BlockFilesReply) => void
  reject: (err: Error) => void
}

class BlockWorker {
  readonly #worker: Worker
  readonly #pending = new Map<number, Pending>()
  #dead: Error | undefined

  constructor (url: URL, workerData: BlockFilesWorkerData, onExit: () => void) {
    this.#worker = new Worker(url, { workerData })
    // idle workers do not keep the process alive
    this.#worker.unref()
    this.#worker.on('message', (reply: BlockFilesReply) => {
      const p = this.#pending.get(reply.id)
      if (p === undefined) return
      this.#pending.delete(reply.id)
      p.resolve(reply)
    })
    const die = (err: Error): void => {
      if (this.#dead !== undefined) return
      this.#dead = err
      for (const p of this.#pending.values()) p.reject(err)
      this.#pending.clear()
      onExit()
    }
    this.#worker.on('error', (err) => { die(new BlockFilesError('ERR_BLOCK_FILES_WORKER', `block-file worker failed: ${err.message}`)) })
    this.#worker.on('exit', (code) => { die(new BlockFilesError('ERR_BLOCK_FILES_WORKER', `block-file worker exited (code ${code})`)) })
  }

  get load (): number { return this.#pending.size }
  get dead (): boolean { return this.#dead !== undefined }

  async request (req: BlockFilesRequest, transfer: ArrayBuffer[]): Promise<BlockFilesReply> {
    if (this.#dead !== undefined) throw this.#dead
    const reply = new Promise<BlockFilesReply>((resolve, reject) => { this.#pending.set(req.id, { resolve, reject }) })
    this.#worker.ref()
    try {
      this.#worker.postMessage(req, transfer)
    } catch (err) {
      this.#pending.delete(req.id)
      throw err
    }
    try {
      return await reply
    } finally {
      if (this.#pending.size === 0) this.#worker.unref()
    }
  }

  async terminate (): Promise<void> {
    await this.#worker.terminate()
  }
}

/** The compiled worker next to this module, or its TypeScript source when this module runs from source (tests). */
function workerUrl (): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './block-files-worker.ts' : './block-files-worker.js', import.meta.url)
}

export class BlockFiles {
  readonly #threads: number
  readonly #workerData: BlockFilesWorkerData
  readonly #url: URL
  #workers: BlockWorker[] = []
  #nextId = 1
  #stopped = false

  /**
   * `directWrites` (default on): stored blocks whose length is a multiple of 4 KiB are written
   * with O_DIRECT, past the page cache, where the file system allows it (see the worker).
   */
  constructor (options: { threads?: number, directWrites?: boolean } = {}) {
    this.#threads = Math.max(1, options.threads ?? 2)
    this.#workerData = { directWrites: options.directWrites ?? true }
    this.#url = workerUrl()
  }

  /** Workers start on first use; this only allows use again after {@link stop}. */
  async start (): Promise<void> {
    this.#stopped = false
  }

  async stop (): Promise<void> {
    this.#stopped = true
    const workers = this.#workers
    this.#workers = []
    await Promise.all(workers.map(async w => { await w.terminate() }))
  }

  /** The least busy live worker, starting one while fewer than `threads` run. */
  #worker (): BlockWorker {
    if (this.#stopped) throw new BlockFilesError('ERR_BLOCK_FILES_STOPPED', 'the content store is stopped')
    this.#workers = this.#workers.filter(w => !w.dead)
    let best = this.#workers[0]
    for (const w of this.#workers) if (w.load < best!.load) best = w
    if (best === undefined || (best.load > 0 && this.#workers.length < this.#threads)) {
      const w: BlockWorker = new BlockWorker(this.#url, this.#workerData, () => { this.#workers = this.#workers.filter(x => x !== w) })
      this.#workers.push(w)
      return w
    }
    return best
  }

  async #call (req: BlockFilesRequest, transfer: ArrayBuffer[], signal?: AbortSignal): Promise<BlockFilesReply> {
    signal?.throwIfAborted()
    const reply = this.#worker().request(req, transfer)
    if (signal === undefined) return await reply
    // after an abort nobody awaits the reply: its late failure (a worker that died) must not
    // become an unhandled rejection, which would end the daemon
    reply.catch(() => {})
    let onAbort!: () => void
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason ?? new Error('aborted')) }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([reply, aborted])
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** The whole file at `path`, in a buffer of its own. */
  async read (path: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return (await this.#read(path, undefined, options.signal)).bytes
  }

  /**
   * The whole file at `path` in `into` if it fits (`reused`), otherwise in a new buffer. `into` is
   * moved to the worker (empty meanwhile) and comes back as the result's buffer when reused; it
   * is not handed back when the read fails.
   */
  async readInto (path: string, into: ArrayBuffer, options: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array, reused: boolean }> {
    return await this.#read(path, into, options.signal)
  }

  async #read (path: string, into: ArrayBuffer | undefined, signal: AbortSignal | undefined): Promise<{ bytes: Uint8Array, reused: boolean }> {
    const reply = await this.#call({ op: 'read', id: this.#nextId++, path, ...(into !== undefined ? { into } : {}) }, into !== undefined ? [into] : [], signal)
    if (!reply.ok) throw new BlockFilesError(reply.code, reply.message)
    return { bytes: new Uint8Array(reply.buffer, reply.offset, reply.length), reused: reply.reused === true }
  }

  /**
   * Stores `bytes` at `path` (via `tmp`, created exclusively, then renamed; `dir` is created if
   * needed) if they hash to `sha256` and `path` does not exist yet.
   *
   * Takes `bytes.buffer` (it must be an ArrayBuffer the caller owns whole, e.g. a pool buffer):
   * it is moved to the worker and back, so `bytes` is empty meanwhile, and the result's `bytes`
   * views the returned buffer, also when the store failed ({@link BlockFilesError.bytes}).
   */
  async store (req: { dir: string, path: string, tmp: string, sha256: Uint8Array, bytes: Uint8Array }): Promise<{ outcome: StoreOutcome, written?: WriteMode, bytes: Uint8Array }> {
    const { bytes } = req
    if (!(bytes.buffer instanceof ArrayBuffer)) throw new TypeError('BlockFiles.store needs bytes backed by an ArrayBuffer')
    const buffer = bytes.buffer
    const reply = await this.#call({ op: 'store', id: this.#nextId++, dir: req.dir, path: req.path, tmp: req.tmp, sha256: req.sha256, buffer, offset: bytes.byteOffset, length: bytes.byteLength }, [buffer])
    if (!reply.ok) {
      throw new BlockFilesError(reply.code, `storing ${req.path} failed: ${reply.message}`, reply.buffer !== undefined ? new Uint8Array(reply.buffer, reply.offset, reply.length) : undefined)
    }
    return { outcome: reply.outcome ?? 'stored', ...(reply.written !== undefined ? { written: reply.written } : {}), bytes: new Uint8Array(reply.buffer, reply.offset, reply.length) }
  }
}
