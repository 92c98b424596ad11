/**
 * The engine multiplexes a non-TTY container's stdout and stderr on one attach stream: frames of an
 * 8-byte header (stream type, 3 zero bytes, big-endian payload length) and the payload. This splits
 * them and keeps at most a cap of each, discarding (and counting) the rest.
 */

export type StreamName = 'stdout' | 'stderr'

/** Keeps the first `cap` bytes of a stream; forwards kept bytes to `onData`. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = []
  private kept = 0
  /** bytes the task wrote to this stream, kept or not */
  total = 0

  constructor (readonly cap: number, private readonly onData?: (chunk: Buffer) => void) {}

  push (chunk: Buffer): void {
    this.total += chunk.length
    const room = this.cap - this.kept
    if (room <= 0) return
    const keep = chunk.length <= room ? chunk : chunk.subarray(0, room)
    this.chunks.push(Buffer.from(keep))
    this.kept += keep.length
    if (this.onData !== undefined) {
      try { this.onData(keep) } catch { /* a listener's failure does not affect the run */ }
    }
  }

  get truncated (): boolean { return this.total > this.kept }
  get bytes (): Buffer { return Buffer.concat(this.chunks, this.kept) }
}

/** Incremental parser of the engine's multiplexed stream. */
export class StreamDemuxer {
  private pending: Buffer = Buffer.alloc(0)

  constructor (private readonly sinks: Record<StreamName, CappedBuffer>) {}

  write (chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    while (buf.length >= 8) {
      const type = buf[0]
      const size = buf.readUInt32BE(4)
      if (buf.length < 8 + size) break
      const payload = buf.subarray(8, 8 + size)
      // 1 = stdout, 2 = stderr (0 = stdin is never sent back)
      if (type === 2) this.sinks.stderr.push(payload)
      else this.sinks.stdout.push(payload)
      buf = buf.subarray(8 + size)
    }
    // copy the remainder so the big chunk it came from can be freed
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf)
  }
}
