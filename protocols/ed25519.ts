import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'

// DER prefixes that wrap a raw 32-byte Ed25519 seed / public key into PKCS#8 / SPKI.
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/** An Ed25519 signer built from a 32-byte seed, using Node's native implementation. */
export class Ed25519Signer {
  readonly publicKey: Uint8Array
  readonly #key: KeyObject

  constructor (seed: Uint8Array) {
    if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes')
    this.#key = createPrivateKey({ key: Buffer.from(concat(PKCS8_PREFIX, seed)), format: 'der', type: 'pkcs8' })
    const spki = createPublicKey(this.#key).export({ format: 'der', type: 'spki' })
    this.publicKey = new Uint8Array(spki.subarray(SPKI_PREFIX.length))
  }

  sign (message: Uint8Array): Uint8Array {
    return new Uint8Array(nodeSign(null, message, this.#key))
  }
}

const publicKeyCache = new Map<string, KeyObject>()

export function ed25519Verify (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  const cacheKey = Buffer.from(publicKey).toString('hex')
  let key = publicKeyCache.get(cacheKey)
  if (key === undefined) {
    try {
      key = createPublicKey({ key: Buffer.from(concat(SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' })
    } catch {
      return false
    }
    if (publicKeyCache.size > 4096) publicKeyCache.clear()
    publicKeyCache.set(cacheKey, key)
  }
  try {
    return nodeVerify(null, message, key, signature)
  } catch {
    return false
  }
}
