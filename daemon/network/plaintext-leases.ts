/**
 * Tells a sender when the connection encrypter has read the last byte of a buffer it sent, so
 * the buffer can be reused instead of left to the garbage collector.
 *
 * A buffer written to a libp2p stream is not copied: yamux queues it, frames it and hands views
 * of it to the encrypter, possibly much later (send windows, a full socket). Encryption is the
 * last read of plaintext, so the encrypter reports every view it has sealed here; once views
 * covering all `bytes` of a leased buffer have been sealed, its `release` runs. A buffer whose
 * stream dies first is never released and is simply collected (the map is weak).
 */
export class PlaintextLeases {
  readonly #leases = new WeakMap<ArrayBufferLike, { remaining: number, release: () => void }>()

  /** Leases `buffer` until `bytes` of it have been encrypted; it must not be leased already. */
  lease (buffer: ArrayBufferLike, bytes: number, release: () => void): void {
    if (this.#leases.has(buffer)) throw new Error('this buffer is already leased')
    if (bytes <= 0) { release(); return }
    this.#leases.set(buffer, { remaining: bytes, release })
  }

  /** Called by the encrypter after it has read `view`. */
  sealed (view: Uint8Array): void {
    const lease = this.#leases.get(view.buffer)
    if (lease === undefined) return
    lease.remaining -= view.byteLength
    if (lease.remaining > 0) return
    this.#leases.delete(view.buffer)
    lease.release()
  }

  /** whether `buffer` is still waiting to be encrypted */
  leased (buffer: ArrayBufferLike): boolean {
    return this.#leases.has(buffer)
  }
}
