import { describe, it, expect, afterEach } from 'vitest'
import { createHash } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { waitForWriteRoom } from '../../../daemon/network/backpressure.js'
import { eventually } from '../../helpers/daemon.js'
import { libp2pPair, drainStream } from '../../helpers/libp2p.js'

const PROTOCOL = '/bitflow-test/backpressure/1'
const CHUNK = 256 * 1024
const CHUNKS = 64 // 16 MiB
const MAX_QUEUED = 1024 * 1024
const WINDOW = 256 * 1024 // yamux's initial window; a paused reader never grants more

describe('waitForWriteRoom', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  it('holds a sender back while its peer reads nothing, then lets everything through', async () => {
    const [sender, receiver] = await libp2pPair()
    nodes.push(sender, receiver)
    let incoming: Stream | undefined
    await receiver.handle(PROTOCOL, (stream) => { stream.pause(); incoming = stream })
    const out = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL)

    const sent = createHash('sha256')
    let sentBytes = 0
    const sending = (async () => {
      for (let i = 0; i < CHUNKS; i++) {
        const c = new Uint8Array(CHUNK).fill(i)
        sent.update(c)
        out.send(c)
        sentBytes += CHUNK
        await waitForWriteRoom(out, MAX_QUEUED)
      }
      await out.close()
    })()

    // the reader's window is full and the sender has more queued than it allows: it must be waiting
    await eventually('the paused reader to fill its window and the sender to queue', async () =>
      incoming?.readBufferLength === WINDOW && out.writeBufferLength > MAX_QUEUED ? true : undefined)
    const before = sentBytes
    for (let i = 0; i < 20; i++) await nextTurn()
    expect(sentBytes).toBe(before)
    // libp2p's onDrain() resolved at once after the first drain and let the whole 16 MiB be queued
    expect(sentBytes).toBeLessThanOrEqual(WINDOW + MAX_QUEUED + CHUNK)
    expect(out.writeBufferLength).toBeLessThanOrEqual(MAX_QUEUED + CHUNK)

    const received = drainStream(incoming!)
    incoming!.resume()
    await sending
    expect(await received).toEqual({ bytes: CHUNK * CHUNKS, sha256: sent.digest('hex') })
  })

  it('gives up when the stream is aborted or the signal fires while data is queued', async () => {
    const [sender, receiver] = await libp2pPair()
    nodes.push(sender, receiver)
    await receiver.handle(PROTOCOL, (stream) => { stream.pause() })
    const out = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL)
    for (let i = 0; i < 8; i++) out.send(new Uint8Array(CHUNK))
    const controller = new AbortController()
    const waiting = waitForWriteRoom(out, 0, controller.signal)
    controller.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')

    const again = waitForWriteRoom(out, 0)
    out.abort(new Error('gone'))
    await expect(again).rejects.toThrow(/closed/)
  })
})
