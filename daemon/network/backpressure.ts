import type { Stream } from '@libp2p/interface'

/** The stream stopped taking data while some of what was sent on it was still queued. */
export class StreamWriteClosedError extends Error {
  readonly code = 'ERR_STREAM_WRITE_CLOSED'
  constructor (status: string) {
    super(`the stream closed (${status}) while data sent on it was still queued; that data was not delivered`)
    this.name = 'StreamWriteClosedError'
  }
}

/**
 * Waits until at most `maxQueuedBytes` of what was sent on `stream` are still queued in it.
 *
 * libp2p's own `stream.onDrain()` cannot be used for this: after a stream's first 'drain' it
 * keeps returning that already-resolved promise, and a yamux stream dispatches 'drain' on every
 * window update even while megabytes are still queued, so a sender that trusts it queues
 * everything it has in memory.
 */
export async function waitForWriteRoom (stream: Stream, maxQueuedBytes: number, signal?: AbortSignal): Promise<void> {
  for (;;) {
    signal?.throwIfAborted()
    // an aborted stream drops what was queued (and says it is idle): that data went nowhere
    if (stream.writeStatus !== 'writable') throw new StreamWriteClosedError(stream.status)
    if (stream.writeBufferLength <= maxQueuedBytes) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        stream.removeEventListener('drain', onDrain)
        stream.removeEventListener('idle', onDrain)
        stream.removeEventListener('close', onClose)
        signal?.removeEventListener('abort', onAbort)
      }
      const onDrain = (): void => { done(); resolve() }
      const onClose = (): void => { done(); reject(new StreamWriteClosedError(stream.status)) }
      const onAbort = (): void => { done(); reject(signal?.reason ?? new Error('aborted')) }
      stream.addEventListener('drain', onDrain)
      stream.addEventListener('idle', onDrain)
      stream.addEventListener('close', onClose)
      signal?.addEventListener('abort', onAbort)
    })
    // the stream moves queued data on in a microtask queued before this continuation
  }
}
