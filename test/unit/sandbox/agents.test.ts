import { describe, expect, it } from 'vitest'
import { AGENT_SUITE, checkAnswers, jsonEqual, parseAgentOutput, taskInput } from '../../../sandbox/agents/suite.js'
import { checkAgentSource, AgentRejectedError, checkSubmitter } from '../../../sandbox/agents/store.js'
import { rank, scoreRun } from '../../../sandbox/agents/score.js'
import { GOOD_AGENT, NUMPY_AGENT, SOCKET_AGENT } from '../../integration/agents/fixtures.js'

async function rejection (p: Promise<unknown>): Promise<AgentRejectedError> {
  try { await p } catch (err) { if (err instanceof AgentRejectedError) return err; throw err }
  throw new Error('expected AgentRejectedError')
}

describe('agent suite', () => {
  it('has at least five tasks, each with hidden assertions that never reach the agent', () => {
    expect(AGENT_SUITE.length).toBeGreaterThanOrEqual(5)
    expect(new Set(AGENT_SUITE.map(t => t.id)).size).toBe(AGENT_SUITE.length)
    for (const t of AGENT_SUITE) {
      const cases = t.cases(1)
      expect(cases.length).toBeGreaterThanOrEqual(4)
      const given = JSON.stringify(taskInput(t, cases))
      expect(given).not.toContain('expected')
      expect(JSON.parse(given).cases).toEqual(cases.map(c => c.args))
    }
  })

  it('draws the same cases for a seed and different ones for another', () => {
    for (const t of AGENT_SUITE) expect(t.cases(42)).toEqual(t.cases(42))
    expect(AGENT_SUITE.map(t => t.cases(1))).not.toEqual(AGENT_SUITE.map(t => t.cases(2)))
  })

  it('compares JSON structurally and by type', () => {
    expect(jsonEqual({ a: [1, 'x', null, true] }, { a: [1, 'x', null, true] })).toBe(true)
    expect(jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true)
    expect(jsonEqual(1, '1')).toBe(false)
    expect(jsonEqual(true, 1)).toBe(false)
    expect(jsonEqual([1, 2], [2, 1])).toBe(false)
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false)
    expect(jsonEqual([], {})).toBe(false)
    expect(jsonEqual(null, {})).toBe(false)
    expect(jsonEqual('<__main__.Yes object at 0x7f>', 'olleh')).toBe(false)
  })

  it('parses {"results": [...]} or a list, whole or on the last line', () => {
    expect(parseAgentOutput('{"results": [1, 2]}\n')).toEqual({ ok: true, results: [1, 2] })
    expect(parseAgentOutput('debug\n[1]\n')).toEqual({ ok: true, results: [1] })
    expect(parseAgentOutput('')).toMatchObject({ ok: false })
    expect(parseAgentOutput('{"results": 3}')).toMatchObject({ ok: false, reason: expect.stringContaining('neither') })
    expect(parseAgentOutput('[1, 2')).toMatchObject({ ok: false, reason: expect.stringContaining('valid JSON') })
  })

  it('counts passed assertions and scores runs by outcome', () => {
    const task = AGENT_SUITE.find(t => t.id === 'reverse_string')!
    const cases = task.cases(3)
    const right = cases.map(c => c.expected)
    expect(checkAnswers(cases, right)).toEqual({ passed: cases.length, failed: [] })
    expect(checkAnswers(cases, [])).toEqual({ passed: 0, failed: cases.map((_, i) => i) })
    expect(checkAnswers(cases, right.slice(0, -1)).failed).toEqual([cases.length - 1])
    const res = { memoryBytes: 256 * 2 ** 20, timeoutMs: 10_000 } as never
    const run = (status: 'succeeded' | 'timeout' | 'failed', stdout: string, exitCode = 0): ReturnType<typeof scoreRun> =>
      scoreRun(task, cases, { status, exitCode, stdout: Buffer.from(stdout), stderr: Buffer.from('Traceback\nValueError: boom\n'), durationMs: 5, resources: res })
    expect(run('succeeded', JSON.stringify({ results: right }))).toMatchObject({ passed: cases.length, outcome: 'passed' })
    expect(run('timeout', '')).toMatchObject({ passed: 0, outcome: 'timeout', reason: 'timed out after 10 s' })
    expect(run('failed', JSON.stringify({ results: right }), 1)).toMatchObject({ passed: 0, outcome: 'error', reason: 'exited with 1: ValueError: boom' })
    expect(run('succeeded', 'not json')).toMatchObject({ passed: 0, outcome: 'bad-output' })
  })

  it('ranks by score with shared ranks for ties and splits the reward pool by score', () => {
    const a = (submitter: string, score: number, at: string): Parameters<typeof rank>[0][number] =>
      ({ submitter, sha256: '', score, passed: score, total: 100, disqualified: false, reason: '', tasks: [], submittedAt: at })
    const r = rank([a('c', 0, '3'), a('a', 100, '2'), a('b', 100, '1'), a('d', 50, '0')], 100)
    expect(r.map(x => [x.rank, x.submitter, x.reward])).toEqual([[1, 'b', 40], [1, 'a', 40], [3, 'd', 20], [4, 'c', 0]])
    expect(rank([a('z', 0, '1')], 100)[0]!.reward).toBe(0)
  })
})

describe('agent submission check (python3 ast)', () => {
  it('accepts a standard-library agent and lists its imports', async () => {
    const r = await checkAgentSource(GOOD_AGENT)
    expect(r.imports).toEqual(['argparse', 'json', 're'])
    expect(r.warnings).toEqual([])
  })

  it('refuses third-party, relative and dynamic imports, bad syntax, bad sizes and encodings', async () => {
    expect((await rejection(checkAgentSource(NUMPY_AGENT))).code).toBe('ERR_AGENT_IMPORT')
    expect((await rejection(checkAgentSource(NUMPY_AGENT))).message).toMatch(/line 1: numpy is not in the Python .* standard library/)
    // a regex would miss these; the syntax tree does not
    expect((await rejection(checkAgentSource('import json;import requests\n'))).message).toContain('requests')
    expect((await rejection(checkAgentSource('if True:\n    from \\\n  numpy import zeros\n'))).code).toBe('ERR_AGENT_IMPORT')
    expect((await rejection(checkAgentSource('from . import x\n'))).message).toContain('relative import')
    expect((await rejection(checkAgentSource('m = __import__("num" + "py")\n'))).code).toBe('ERR_AGENT_DYNAMIC_CODE')
    expect((await rejection(checkAgentSource('exec("import numpy")\n'))).code).toBe('ERR_AGENT_DYNAMIC_CODE')
    expect((await rejection(checkAgentSource('def f(:\n  pass\n'))).message).toMatch(/^agent\.py line 1: /)
    expect((await rejection(checkAgentSource(''))).code).toBe('ERR_AGENT_SIZE')
    expect((await rejection(checkAgentSource('#'.repeat(300 * 1024)))).code).toBe('ERR_AGENT_SIZE')
    expect((await rejection(checkAgentSource(new Uint8Array([0x66, 0xff, 0xfe])))).code).toBe('ERR_AGENT_ENCODING')
    // a string mentioning numpy is not an import
    expect((await checkAgentSource('print("import numpy")\n')).imports).toEqual([])
    // importlib of a standard-library literal is fine
    expect((await checkAgentSource('import importlib\nj = importlib.import_module("json")\n')).imports).toEqual(['importlib'])
  })

  it('accepts socket (standard library) with a warning that the validator scores it 0', async () => {
    const r = await checkAgentSource(SOCKET_AGENT)
    expect(r.warnings.join()).toMatch(/imports socket \(line 1\).*scores it 0/)
  })

  it('checks submitter ids', () => {
    expect(() => { checkSubmitter('alice-1') }).not.toThrow()
    for (const bad of ['', '../x', '.hidden', 'a/b', 'x'.repeat(65)]) expect(() => { checkSubmitter(bad) }).toThrow(/submitter id/)
  })
})
