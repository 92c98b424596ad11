import { readFileSync, writeFileSync, statSync, existsSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { base58btc } from 'multiformats/bases/base58'
import { Ed25519Signer } from '../protocols/ed25519.js'
import { IdentityError } from './errors.js'

/**
 * The operator identity: one Ed25519 key that is both the libp2p PeerId and the Solana address
 * that signs the daemon's transactions. Stored as a Solana keypair JSON file (64 numbers: the
 * 32-byte seed then the 32-byte public key), mode 0600, so keys made by solana-keygen work.
 */
export class Identity {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly signer: Ed25519Signer
  readonly privateKey: PrivateKey
  readonly peerId: PeerId
  readonly solanaAddress: string

  constructor (seed: Uint8Array) {
    this.signer = new Ed25519Signer(seed)
    this.seed = seed
    this.publicKey = this.signer.publicKey
    const secret = new Uint8Array(64)
    secret.set(seed, 0)
    secret.set(this.publicKey, 32)
    this.privateKey = privateKeyFromRaw(secret)
    this.peerId = peerIdFromPrivateKey(this.privateKey)
    this.solanaAddress = base58btc.baseEncode(this.publicKey)
  }

  static generate (): Identity {
    return new Identity(new Uint8Array(randomBytes(32)))
  }

  /** The Solana keypair JSON form: [seed..., publicKey...] */
  toKeypairJson (): string {
    return JSON.stringify([...this.seed, ...this.publicKey])
  }

  sign (message: Uint8Array): Uint8Array {
    return this.signer.sign(message)
  }
}

export function parseKeypairJson (text: string, source: string): Identity {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new IdentityError(`${source} is not a Solana keypair file: it is not JSON`)
  }
  if (!Array.isArray(raw) || raw.length !== 64 || !raw.every(b => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new IdentityError(`${source} is not a Solana keypair file: expected a JSON array of 64 bytes`)
  }
  const bytes = Uint8Array.from(raw as number[])
  const identity = new Identity(bytes.slice(0, 32))
  if (!Buffer.from(identity.publicKey).equals(Buffer.from(bytes.slice(32)))) {
    throw new IdentityError(`${source} is corrupt: its public key does not match its secret key`)
  }
  return identity
}

export function loadIdentity (path: string): Identity {
  if (!existsSync(path)) throw new IdentityError(`no identity at ${path}; run \`bitflowd init\` first`)
  const mode = statSync(path).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new IdentityError(`identity ${path} is accessible by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`)
  }
  return parseKeypairJson(readFileSync(path, 'utf8'), path)
}

/** Writes the key atomically with mode 0600. Refuses to overwrite an existing key. */
export function writeIdentity (path: string, identity: Identity): void {
  if (existsSync(path)) throw new IdentityError(`refusing to overwrite the existing identity at ${path}`)
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, identity.toKeypairJson(), { mode: 0o600, flag: 'wx' })
  renameSync(tmp, path)
}
