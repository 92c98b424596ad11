type GcFunction = (options: { type: 'minor', execution: 'sync' }) => void

/** V8's `gc()`, present when the process runs with `--expose-gc` (bitflowd does). */
export function exposedGc (): GcFunction | undefined {
  const gc = (globalThis as { gc?: unknown }).gc
  return typeof gc === 'function' ? gc as GcFunction : undefined
}

/**
 * Asks V8 for a young-generation collection after every `everyBytes` of bulk data moved.
 *
 * Buffers that node:crypto and sockets create count toward V8's external memory; when tens of
 * MB of them pile up between young collections, V8 starts a full mark-compact of the whole heap
 * (~50-100 ms on one thread). A young collection (~1.5 ms) frees the ones already dropped first.
 * Without `--expose-gc` this does nothing.
 */
export class YoungGarbagePacer {
  readonly #everyBytes: number
  readonly #gc: GcFunction | undefined
  #bytes = 0

  constructor (everyBytes = 32 * 1024 * 1024, gc: GcFunction | undefined = exposedGc()) {
    this.#everyBytes = everyBytes
    this.#gc = gc
  }

  /** Counts `bytes` moved; collects when another `everyBytes` have passed. */
  add (bytes: number): void {
    if (this.#gc === undefined) return
    this.#bytes += bytes
    if (this.#bytes < this.#everyBytes) return
    this.#bytes = 0
    this.#gc({ type: 'minor', execution: 'sync' })
  }
}
