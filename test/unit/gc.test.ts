import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { YoungGarbagePacer, exposedGc } from '../../daemon/gc.js'
import { DAEMON_NODE_FLAGS, projectRoot } from '../../daemon/paths.js'

describe('YoungGarbagePacer', () => {
  it('asks for one young collection per interval of bytes moved', () => {
    const calls: unknown[] = []
    const pacer = new YoungGarbagePacer(10, (o) => { calls.push(o) })
    pacer.add(4)
    pacer.add(5)
    expect(calls).toEqual([])
    pacer.add(1)
    expect(calls).toEqual([{ type: 'minor', execution: 'sync' }])
    for (let i = 0; i < 25; i++) pacer.add(1)
    expect(calls.length).toBe(3)
  })

  it('does nothing where gc is not exposed', () => {
    // vitest's workers run without --expose-gc
    expect(exposedGc()).toBeUndefined()
    expect(() => { new YoungGarbagePacer(1).add(100) }).not.toThrow()
  })

  it('the launcher passes the daemon flags', () => {
    const launcher = readFileSync(join(projectRoot(), 'bin', 'bitflowd'), 'utf8')
    expect(launcher).toContain(`"$root/scripts/node22" ${DAEMON_NODE_FLAGS.join(' ')} "$root/dist/daemon/cli.js"`)
    expect(DAEMON_NODE_FLAGS).toContain('--expose-gc')
  })
})
