/**
 * Ed25519 signing with Node's built-in crypto (about 20x faster than web3.js's JS signer, same
 * signatures). For the faucet, the benchmark and the test-net helpers.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto'
import type { Keypair, Transaction } from '@solana/web3.js'

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const cache = new WeakMap<Keypair, KeyObject>()

function keyObject (keypair: Keypair): KeyObject {
  let k = cache.get(keypair)
  if (k === undefined) {
    k = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, keypair.secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
    cache.set(keypair, k)
  }
  return k
}

export function signBytes (keypair: Keypair, message: Uint8Array): Buffer {
  return sign(null, message, keyObject(keypair))
}

/**
 * Signs a legacy transaction (recentBlockhash and feePayer set) like `tx.sign(...signers)` but with
 * Node's signer; keypairs the message does not require are skipped. Returns the wire bytes.
 */
export function signTransaction (tx: Transaction, signers: Keypair[]): Buffer {
  const message = tx.serializeMessage() // compiles: signature slots in the message's signer order
  for (const slot of tx.signatures) {
    const signer = signers.find(s => s.publicKey.equals(slot.publicKey))
    if (signer !== undefined) tx.addSignature(signer.publicKey, signBytes(signer, message))
  }
  return tx.serialize({ requireAllSignatures: true, verifySignatures: false }) // just signed: re-verifying in JS costs more than signing
}
