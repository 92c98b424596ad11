import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import * as raw from 'multiformats/codecs/raw'

const SHA2_256 = 0x12

/**
 * The DHT key under which nodes specialized in a task announce themselves: the CID of a
 * domain-separated string, so it can never collide with real content or another network's key.
 */
export function specializationCid (network: string, taskId: string): CID {
  const bytes = createHash('sha256').update(`bitflow/1/specialization\n${network}\n${taskId}`).digest()
  return CID.createV1(raw.code, Digest.create(SHA2_256, bytes))
}
