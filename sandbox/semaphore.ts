/** A counting semaphore whose waiters can be aborted. */
export class Semaphore {
  private free: number
  private readonly waiters: Array<{ resolve: () => void }> = []

  constructor (readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`semaphore size must be a positive integer, got ${size}`)
    this.free = size
  }

  /** Slots currently taken. */
  get inUse (): number { return this.size - this.free }
  /** Callers waiting for a slot. */
  get waiting (): number { return this.waiters.length }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason if aborted first. */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    if (this.free > 0) {
      this.free--
      return this.releaser()
    }
    return await new Promise<() => void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(this.releaser())
        }
      }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  private releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      if (next !== undefined) next.resolve() // the slot passes straight to the next waiter
      else this.free++
    }
  }
}
