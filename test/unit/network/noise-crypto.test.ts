import { describe, it, expect } from 'vitest'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto } from '../../../daemon/network/noise-crypto.js'

const flat = (x: Uint8Array | Uint8ArrayList): Uint8Array => x instanceof Uint8Array ? x : x.subarray()

describe('noise crypto', () => {
  const k = randomBytes(32)
  const nonce = Buffer.concat([Buffer.alloc(4), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])])
  const ad = randomBytes(32)

  it('seals exactly what the default implementation seals, as one buffer or as pieces', () => {
    for (const size of [0, 100, 1199, 1200, 4096, 65519]) {
      const plaintext = randomBytes(size)
      const expected = flat(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k))
      expect(Buffer.compare(flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)), expected), `size ${size}`).toBe(0)
      const pieces = new Uint8ArrayList(plaintext.subarray(0, size >> 1), plaintext.subarray(size >> 1))
      expect(Buffer.compare(flat(noiseCrypto.chaCha20Poly1305Encrypt(pieces, nonce, ad, k)), expected), `pieces ${size}`).toBe(0)
    }
  })

  it('what it seals opens with the default implementation, and tampering is detected', () => {
    const plaintext = randomBytes(65519)
    const sealed = new Uint8Array(flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)))
    expect(sealed.length).toBe(plaintext.length + 16)
    expect(Buffer.compare(flat(defaultCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)), plaintext)).toBe(0)
    sealed[1000] = sealed[1000]! ^ 1
    expect(() => defaultCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)).toThrow()
  })
})
