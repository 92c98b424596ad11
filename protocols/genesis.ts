import { createHash } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { canonicalJson } from './canonical.js'

export const GenesisMember = Type.Object({
  peerId: Type.String({ minLength: 1, maxLength: 128 }),
  solanaAddress: Type.String({ minLength: 32, maxLength: 44 })
}, { additionalProperties: false })

export const Genesis = Type.Object({
  network: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }),
  createdAt: Type.String({ description: 'ISO-8601 time the genesis was made' }),
  committee: Type.Array(GenesisMember, { maxItems: 7, description: 'oracle committee members at epoch 0' }),
  admittedNodes: Type.Array(GenesisMember, { description: 'nodes admitted before settlement is wired in' })
}, { additionalProperties: false })

export type Genesis = Static<typeof Genesis>

/** The genesis hash identifies a network; every signed message is domain-separated by it. */
export function genesisHash (genesis: Genesis): string {
  return createHash('sha256').update(canonicalJson(genesis)).digest('hex')
}

/** The committee signature threshold: ceil(2n/3). */
export function committeeThreshold (members: number): number {
  return Math.ceil((2 * members) / 3)
}
