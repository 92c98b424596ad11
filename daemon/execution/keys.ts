import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'

/** The libp2p peer id of a daemon from its 32-byte Ed25519 (Solana operator) key. */
export function peerIdOfKey (key: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(key)).toString()
}
