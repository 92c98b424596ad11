import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { ChaosNet } from './lib.js'
import { startLocalChain, stopLocalChain } from '../../programs/chain/testnet.js'
import { eventually } from '../helpers/daemon.js'

/** The local chain restarted (same state, same port) while an execution runs. */
const c = new ChaosNet('chain')
beforeAll(async () => { await c.up() }, 240_000)
afterAll(async () => { await c.down() })

describe('chaos: chain', () => {
  it('the local chain restarted mid-execution: the execution completes correctly and the books balance', async () => {
    await c.request('chaos-chain')
    await eventually('a first assignment', async () => (await c.status('chaos-chain')).overallStatus === 'in-progress' ? true : undefined, 60_000)
    const dir = join(c.net.dir, 'chain')
    const port = Number(new URL(c.file.chain!.rpcUrl).port)
    expect(await stopLocalChain(dir)).not.toBe('not-running')
    const restarted = await startLocalChain({ dir, port, slotMs: 100, logLevel: 'warn' })
    expect(restarted.rpcUrl).toBe(c.file.chain!.rpcUrl)
    await c.expectCorrect('chaos-chain', 240_000)
    await c.expectBooksBalance(['chaos-chain'])
    await c.expectAllAnswer()
    await stopLocalChain(dir).catch(() => {})
  }, 360_000)
})
