import { join } from 'node:path'

/** Contents of `<dir>/ready.json`, written by the chain server once it answers. */
export interface ChainReady {
  chain: 'litesvm' | 'solana-test-validator'
  rpcUrl: string
  /** WebSocket on the RPC port + 1, where web3.js looks by default (the RPC port serves it too) */
  wsUrl: string
  programId: string
  genesisHash: string
  pid: number
  slotMs: number
  /** slots a blockhash stays valid */
  blockhashTtlSlots: number
  startedAt: string
}

export const readyPath = (dir: string): string => join(dir, 'ready.json')
