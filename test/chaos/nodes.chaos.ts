import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ChaosNet } from './lib.js'
import { eventually } from '../helpers/daemon.js'

/** Nodes failing under an execution: killed mid-task, and stalled (SIGSTOP) past the deadline then resumed. */
const c = new ChaosNet('nodes')
beforeAll(async () => { await c.up() }, 240_000)
afterAll(async () => { await c.down() })

interface Transition { executionId: string, scope: string, to: string, taskId?: string, node?: string | null }

/** Runs an execution and does `act` to the node first assigned task 1; returns that node's name. */
async function withFirstNode (executionId: string, act: (name: string) => Promise<void>): Promise<string> {
  let victim: string | undefined
  const sub = await c.requester.subscribe<Transition>('execution', { executionId }, e => {
    if (victim === undefined && e.scope === 'task' && e.to === 'ASSIGNED') {
      victim = c.net.load()!.daemons.find(d => d.peerId === e.node)?.name
      if (victim !== undefined) void act(victim)
    }
  })
  try {
    await c.request(executionId)
    await eventually('a first assignment', async () => victim, 60_000)
  } finally {
    await sub.close()
  }
  return victim!
}

describe('chaos: nodes', () => {
  it('a node killed mid-task: its task is reassigned after the deadline and the execution completes correctly', async () => {
    const victim = await withFirstNode('chaos-kill', async name => { await c.net.stopDaemon(name, 'SIGKILL') })
    const s = await c.expectCorrect('chaos-kill', 240_000)
    const t = s.taskStatuses.find(x => x.failures.length > 0)!
    expect(t.blacklist).toContain(c.byName(victim).peerId)
    await c.net.startDaemon(victim)
    await c.expectBooksBalance(['chaos-kill'])
    await c.expectAllAnswer()
  }, 300_000)

  it('a node stalled past its deadline (SIGSTOP) then resumed: the late node cannot settle, the task is redone elsewhere', async () => {
    let stopped: number | undefined
    const victim = await withFirstNode('chaos-stall', async name => {
      stopped = c.byName(name).pid
      process.kill(stopped, 'SIGSTOP')
    })
    try {
      // past the deadline (15 s for the demo's 1000 compute units) and the reassignment
      await eventually('the stalled attempt to fail', async () => {
        const s = await c.status('chaos-stall')
        return s.taskStatuses.some(t => t.failures.some(f => f.node === c.byName(victim).peerId)) ? true : undefined
      }, 90_000)
    } finally {
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT')
    }
    const s = await c.expectCorrect('chaos-stall', 240_000)
    const failed = s.taskStatuses.find(t => t.failures.length > 0)!
    expect(failed.failures[0]!.reason).toMatch(/deadline missed/)
    // the resumed node follows the same, correct state
    const seen = await c.finished('chaos-stall', 60_000, c.client(victim))
    expect(seen.outputUris.y).toBe(s.outputUris.y)
    await c.expectBooksBalance(['chaos-kill', 'chaos-stall'])
    await c.expectAllAnswer()
  }, 360_000)
})
