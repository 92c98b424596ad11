import { createCipheriv } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import type { ICryptoInterface } from '@libp2p/noise'
import { Uint8ArrayList } from 'uint8arraylist'
import type { PlaintextLeases } from './plaintext-leases.js'

/** Below this, the WebAssembly cipher of the default implementation is faster than OpenSSL's. */
const SMALL_MESSAGE = 1200

/**
 * Noise's default crypto, except that a large message is sealed without copying the ciphertext
 * and its tag into one new buffer: the default concatenates them, which at hundreds of MB/s of
 * bulk transfer doubles the bytes a sender allocates per frame, and every 64 MB of buffers
 * allocated costs the daemon a full V8 garbage collection.
 *
 * With `leases`, every plaintext view is reported to them once it has been sealed (see
 * {@link PlaintextLeases}).
 */
export function createNoiseCrypto (leases?: PlaintextLeases): ICryptoInterface {
  const sealed = (plaintext: Uint8Array | Uint8ArrayList): void => {
    if (leases === undefined) return
    if (plaintext instanceof Uint8Array) leases.sealed(plaintext)
    else for (const part of plaintext) leases.sealed(part)
  }
  return {
    ...defaultCrypto,
    chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
      if (plaintext.byteLength < SMALL_MESSAGE) {
        const out = defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
        sealed(plaintext)
        return out
      }
      const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: 16 })
      cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
      const out = new Uint8ArrayList()
      if (plaintext instanceof Uint8Array) out.append(cipher.update(plaintext))
      else for (const part of plaintext) out.append(cipher.update(part))
      const final = cipher.final()
      if (final.byteLength > 0) out.append(final)
      out.append(cipher.getAuthTag())
      sealed(plaintext)
      return out
    }
  }
}

export const noiseCrypto: ICryptoInterface = createNoiseCrypto()
