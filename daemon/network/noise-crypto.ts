import { createCipheriv } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import type { ICryptoInterface } from '@libp2p/noise'
import { Uint8ArrayList } from 'uint8arraylist'

/** Below this, the WebAssembly cipher of the default implementation is faster than OpenSSL's. */
const SMALL_MESSAGE = 1200

/**
 * Noise's default crypto, except that a large message is sealed without copying the ciphertext
 * and its tag into one new buffer: the default concatenates them, which at hundreds of MB/s of
 * bulk transfer doubles the bytes a sender allocates per frame, and every 64 MB of buffers
 * allocated costs the daemon a full V8 garbage collection.
 */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    if (plaintext.byteLength < SMALL_MESSAGE) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: 16 })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out = new Uint8ArrayList()
    if (plaintext instanceof Uint8Array) out.append(cipher.update(plaintext))
    else for (const part of plaintext) out.append(cipher.update(part))
    const final = cipher.final()
    if (final.byteLength > 0) out.append(final)
    out.append(cipher.getAuthTag())
    return out
  }
}
