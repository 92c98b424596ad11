import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ChaosNet } from './lib.js'
import { eventually } from '../helpers/daemon.js'

/** Oracles failing under executions: killed and restarted during a round, and restarted with their data mid-execution. */
const c = new ChaosNet('oracles')
beforeAll(async () => { await c.up() }, 240_000)
afterAll(async () => { await c.down() })

describe('chaos: oracles', () => {
  it('an oracle killed during a round and restarted: executions before, during and after complete', async () => {
    await c.request('chaos-o-before')
    await c.net.stopDaemon('oracle-2', 'SIGKILL')
    await c.request('chaos-o-during')
    await c.expectCorrect('chaos-o-before')
    await c.net.startDaemon('oracle-2')
    await c.request('chaos-o-after')
    await c.expectCorrect('chaos-o-during')
    await c.expectCorrect('chaos-o-after')
    // the restarted oracle caught up with the execution requested while it was down (from its peers)
    const seen = await eventually('oracle-2 to know chaos-o-during', async () => {
      const s = await c.status('chaos-o-during', c.client('oracle-2')).catch(() => undefined)
      return s?.overallStatus === 'completed' ? s : undefined
    }, 60_000)
    expect(seen.outputUris.y).toBe((await c.status('chaos-o-during')).outputUris.y)
    await c.expectBooksBalance(['chaos-o-before', 'chaos-o-during', 'chaos-o-after'])
    await c.expectAllAnswer()
  }, 420_000)

  it('an oracle restarted with its data dir mid-execution replays its log and follows the execution to the end', async () => {
    await c.request('chaos-o-restart')
    await eventually('a first assignment', async () => (await c.status('chaos-o-restart')).overallStatus === 'in-progress' ? true : undefined, 60_000)
    await c.net.stopDaemon('oracle-3', 'SIGTERM')
    await c.net.startDaemon('oracle-3')
    const s = await c.expectCorrect('chaos-o-restart')
    const seen = await c.finished('chaos-o-restart', 60_000, c.client('oracle-3'))
    expect(seen.overallStatus).toBe('completed')
    expect(seen.outputUris.y).toBe(s.outputUris.y)
    await c.expectBooksBalance(['chaos-o-restart'])
    await c.expectAllAnswer()
  }, 300_000)
})
