import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { AssignmentKind } from '../../programs/client/settlement.js'
import type { AssignedKind } from '../../protocols/execution/state.js'

/** memoized: decoding the key checks the curve point, and the committee maps the whole registry per draw */
const KEY_CACHE_LIMIT = 10_000
const peerIds = new Map<string, string>()

/** The libp2p peer id of a daemon from its 32-byte Ed25519 (Solana operator) key. */
export function peerIdOfKey (key: Uint8Array): string {
  const hex = Buffer.from(key).toString('hex')
  let id = peerIds.get(hex)
  if (id === undefined) {
    id = peerIdFromPublicKey(publicKeyFromRaw(key)).toString()
    if (peerIds.size >= KEY_CACHE_LIMIT) peerIds.clear()
    peerIds.set(hex, id)
  }
  return id
}

/** An on-chain assignment's role as the execution state's kind. */
export function assignedKindOf (role: AssignmentKind): AssignedKind {
  return role === AssignmentKind.Verification ? 'verification' : role === AssignmentKind.Unverifiable ? 'unverifiable' : 'primary'
}
