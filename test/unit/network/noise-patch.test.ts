import { describe, it, expect, afterEach } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise, type ICryptoInterface } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { Uint8ArrayList } from 'uint8arraylist'
import { yamuxOptions } from '../../../daemon/network/muxer.js'
import { noiseCrypto } from '../../../daemon/network/noise-crypto.js'
import { drainStream } from '../../helpers/libp2p.js'

const PROTOCOL = '/bitflow-test/noise-frames/1'

/** What the receiving node's noise handed to its decrypter, per frame. */
interface DecryptCall { list: boolean, pieces: number, bytes: number, dst: boolean }

describe('noise patch (patches/@libp2p+noise+17.0.3.patch)', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  it('decrypts frames that span socket reads without first concatenating their ciphertext', async () => {
    const calls: DecryptCall[] = []
    const recording: ICryptoInterface = {
      ...noiseCrypto,
      chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
        calls.push({ list: ciphertext instanceof Uint8ArrayList, pieces: ciphertext instanceof Uint8ArrayList ? [...ciphertext].length : 1, bytes: ciphertext.byteLength, dst: dst !== undefined })
        return noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
      }
    }
    const make = async (crypto: ICryptoInterface): Promise<Libp2p> => await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise({ crypto })],
      streamMuxers: [yamux(yamuxOptions)]
    })
    const sender = await make(noiseCrypto)
    const receiver = await make(recording)
    nodes.push(sender, receiver)
    let received: Promise<{ bytes: number, sha256: string }> | undefined
    await receiver.handle(PROTOCOL, (stream) => { received = drainStream(stream) })
    const out = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL)
    calls.length = 0

    // 8 MiB in 1 MiB sends: ~128 full-size noise frames
    const sent = createHash('sha256')
    for (let i = 0; i < 8; i++) {
      const chunk = randomBytes(1024 * 1024)
      sent.update(chunk)
      if (!out.send(chunk)) await out.onDrain()
    }
    await out.close()
    expect(received).toBeDefined()
    expect(await received).toEqual({ bytes: 8 * 1024 * 1024, sha256: sent.digest('hex') })

    const spanning = calls.filter(c => c.pieces > 1)
    // 64 KiB socket reads cannot hold a whole 65 537-byte frame, so most frames arrive in pieces
    expect(spanning.length).toBeGreaterThan(32)
    // unpatched, noise copies each of them into one buffer and passes it as dst
    expect(spanning.filter(c => c.dst)).toEqual([])
    // a frame that arrived as one buffer still gets its in-place destination (a view, no copy)
    expect(calls.filter(c => !c.list).every(c => c.dst)).toBe(true)
  })
})
