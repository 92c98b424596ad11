import { canonicalBytes } from './canonical.js'

/**
 * Bytes that a signature over an application message covers. Domain-separated by the protocol
 * version, the message kind and the network's genesis hash, so a signature made for one kind of
 * message or one network is worthless for any other.
 */
export function signingBytes (kind: string, genesisHash: string, body: unknown): Uint8Array {
  const prefix = new TextEncoder().encode(`bitflow/1\n${kind}\n${genesisHash}\n`)
  const payload = canonicalBytes(body)
  const out = new Uint8Array(prefix.length + payload.length)
  out.set(prefix, 0)
  out.set(payload, prefix.length)
  return out
}
