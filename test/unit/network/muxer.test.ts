import { describe, it, expect, afterEach } from 'vitest'
import { createHash } from 'node:crypto'
import type { Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { yamuxOptions, MAX_STREAM_WINDOW_BYTES } from '../../../daemon/network/muxer.js'
import { eventually } from '../../helpers/daemon.js'
import { libp2pPair, drainStream } from '../../helpers/libp2p.js'

const PROTOCOL = '/bitflow-test/paused/1'
const CHUNK = 64 * 1024

const chunkOf = (i: number): Uint8Array => new Uint8Array(CHUNK).fill(i & 0xff)

describe('yamux settings', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  it('a paused reader holds a whole window of data without its stream being aborted', async () => {
    // every stream starts at the largest window
    const [sender, receiver] = await libp2pPair({ initialStreamWindowSize: MAX_STREAM_WINDOW_BYTES })
    nodes.push(sender, receiver)
    let incoming: Stream | undefined
    await receiver.handle(PROTOCOL, (stream) => { stream.pause(); incoming = stream })
    const out = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL)

    // exactly one window: the paused reader grants no more, so all of it waits in its read buffer
    const total = MAX_STREAM_WINDOW_BYTES / CHUNK
    const sent = createHash('sha256')
    for (let i = 0; i < total; i++) {
      const c = chunkOf(i)
      sent.update(c)
      if (!out.send(c)) await out.onDrain()
    }
    const paused = await eventually('the window to arrive at the paused reader', async () =>
      incoming !== undefined && (incoming.readBufferLength === MAX_STREAM_WINDOW_BYTES || incoming.status !== 'open') ? incoming : undefined)
    // yamux's default read buffer limit (4 MiB) aborted the stream here
    expect(paused.status).toBe('open')
    expect(paused.readBufferLength).toBeGreaterThan(4 * 1024 * 1024)

    // resumed, it delivers everything, then whatever follows
    const received = drainStream(paused)
    paused.resume()
    for (let i = total; i < total + 16; i++) {
      const c = chunkOf(i)
      sent.update(c)
      if (!out.send(c)) await out.onDrain()
    }
    await out.close()
    expect(await received).toEqual({ bytes: MAX_STREAM_WINDOW_BYTES + 16 * CHUNK, sha256: sent.digest('hex') })
  })

  it('the read buffer limit is never below the largest window', () => {
    const s = yamuxOptions.streamOptions!
    expect(s.maxReadBufferLength).toBeGreaterThanOrEqual(s.maxStreamWindowSize!)
  })
})
