import { describe, it, expect, afterEach } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import type { Libp2p } from 'libp2p'
import { PlaintextLeases } from '../../../daemon/network/plaintext-leases.js'
import { createNoiseCrypto } from '../../../daemon/network/noise-crypto.js'
import { waitForWriteRoom } from '../../../daemon/network/backpressure.js'
import { libp2pPair, drainStream } from '../../helpers/libp2p.js'

const PROTOCOL = '/bitflow-test/leases/1'

describe('PlaintextLeases', () => {
  it('releases a buffer once views covering all its leased bytes were sealed, once', () => {
    const leases = new PlaintextLeases()
    const buf = new Uint8Array(100)
    let released = 0
    leases.lease(buf.buffer, 100, () => { released++ })
    expect(() => { leases.lease(buf.buffer, 100, () => {}) }).toThrow('already leased')
    leases.sealed(new Uint8Array(10)) // another buffer: ignored
    leases.sealed(buf.subarray(0, 60))
    expect(released).toBe(0)
    expect(leases.leased(buf.buffer)).toBe(true)
    leases.sealed(buf.subarray(60))
    expect(released).toBe(1)
    expect(leases.leased(buf.buffer)).toBe(false)
    leases.sealed(buf.subarray(0, 50))
    expect(released).toBe(1)
  })

  describe('with the daemon noise crypto over real libp2p', () => {
    const nodes: Libp2p[] = []
    afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

    it('releases each sent buffer only after the encrypter has read all of it', async () => {
      const leases = new PlaintextLeases()
      const [sender, receiver] = await libp2pPair({}, createNoiseCrypto(leases))
      nodes.push(sender, receiver)
      let received: Promise<{ bytes: number, sha256: string }> | undefined
      await receiver.handle(PROTOCOL, (stream) => { received = drainStream(stream) })
      const out = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL)

      const sent = createHash('sha256')
      const buffers: Uint8Array[] = []
      let released = 0
      for (let i = 0; i < 24; i++) {
        // a 1 MiB buffer with a 1000-byte block in the middle of it, like a short last leaf
        const buf = new Uint8Array(1024 * 1024)
        const block = i % 8 === 7 ? buf.subarray(5000, 6000) : buf
        block.set(randomBytes(block.length))
        sent.update(block)
        buffers.push(buf)
        // a buffer released early is scribbled over at once, as a reused one would be: the
        // receiver's hash then differs
        leases.lease(buf.buffer, block.length, () => { released++; buf.fill(0xee) })
        out.send(block)
        await waitForWriteRoom(out, 2 * 1024 * 1024)
      }
      await out.close()
      expect(received).toBeDefined()
      const got = await received!
      expect(got.bytes).toBe(21 * 1024 * 1024 + 3 * 1000)
      expect(got.sha256).toBe(sent.digest('hex'))
      expect(released).toBe(24)
      expect(buffers.every(b => !leases.leased(b.buffer))).toBe(true)
    })
  })
})
