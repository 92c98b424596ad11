/**
 * `bitflowd taskpack run` through the real CLI: a fresh scaffold (as `taskpack init` writes it) of
 * every type runs with no arguments on its sample inputs and prints its outputs; a hanging task shows the timeout event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { TASK_TYPES } from '../../../protocols/taskpack/manifest.js'
import { DEFAULT_SOCKET_PATH, defaultSandboxConfig } from '../../../sandbox/config.js'
import { LABEL_OWNER } from '../../../sandbox/policy.js'
import { removeRunDir } from '../../../sandbox/outputs.js'
import { CLI, cleanEnv, tempDir } from '../../helpers/daemon.js'
import { spawn } from 'node:child_process'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'

const dir = tempDir('taskpack-run')
const pids: number[] = []
const stagesBefore = new Set(readdirSync(tmpdir()).filter(n => n.startsWith('bitflow-stage-')))

interface Run { code: number | null, stdout: string, stderr: string }
/** Runs the CLI, remembering its pid (its sandbox owner is cli-<pid>) for cleanup. */
async function cli (args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  pids.push(child.pid!)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, stdout, stderr }
}

afterAll(async () => {
  // whatever a failed CLI run left: its containers and run dirs, by its pid's owner label
  const docker = new Docker({ socketPath: DEFAULT_SOCKET_PATH })
  for (const pid of pids) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=cli-${pid}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {})
    await removeRunDir(join(defaultSandboxConfig().workDir, `cli-${pid}`)).catch(() => {})
  }
  rmSync(dir, { recursive: true, force: true })
})

const types = [...TASK_TYPES]
const runs = new Map<string, Run>()
const hangPack = join(dir, 'hang')
const cfg = join(dir, 'params.yaml')

// the CLI runs are independent (each has its own sandbox owner): start them all at once
beforeAll(async () => {
  for (const type of types) await scaffoldTaskpack(join(dir, type), { type })
  await scaffoldTaskpack(hangPack, { type: 'analysis' })
  const task = join(hangPack, 'src', 'task.py')
  writeFileSync(task, readFileSync(task, 'utf8').replace('def execute(self, data):', 'def execute(self, data):\n        import sys\n        print("marker-before-loop", flush=True)\n        print("to-stderr", file=sys.stderr, flush=True)\n        while True:\n            pass'))
  writeFileSync(cfg, 'no_such_parameter: 1\n')
  const jobs: Array<[string, string[]]> = [
    ...types.map(t => [t, ['taskpack', 'run', join(dir, t), '--out', join(dir, `${t}-out`)]] as [string, string[]]),
    ['hang', ['taskpack', 'run', hangPack, '--timeout', '3', '--json']],
    ['bad-input', ['taskpack', 'run', join(dir, 'training'), '--input', 'nope=/etc/hostname']],
    ['bad-config', ['taskpack', 'run', join(dir, 'training'), '--config', cfg]]
  ]
  await Promise.all(jobs.map(async ([name, args]) => { runs.set(name, await cli(args)) }))
})

describe('bitflowd taskpack run', () => {
  it.each(types.map(t => [t]))('runs a fresh %s scaffold with no arguments and prints its outputs', type => {
    const out = join(dir, `${type}-out`)
    const r = runs.get(type)!
    expect(r.code, r.stderr + r.stdout).toBe(0)
    expect(r.stdout).toMatch(/status: succeeded \(exit 0\)/)
    expect(r.stdout).toContain(`outputs in ${out}:`)
    expect(r.stdout).toMatch(/^ {2}result\.json {2}\d+ B$/m)
    expect(r.stdout).toMatch(/^ {4}\w+ {2}float32 {2}\[\d+(, \d+)*\]$/m) // a tensor with dtype and shape
    expect(r.stdout).toMatch(/^metrics: \{.*\}$/m)
    expect(r.stdout).toMatch(/containment events: none/)
    expect(r.stdout).toMatch(/publisher +warned/) // the checks are warnings in a local run
    expect(r.stdout).toMatch(/cleanup +passed/)
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { status: string, outputs: Record<string, { file: string }> }
    expect(result.status).toBe('success')
    for (const o of Object.values(result.outputs)) expect(existsSync(join(out, o.file))).toBe(true)
    const memory = /memory (\d+)(Mi|Gi)/.exec(r.stdout)
    expect(memory).not.toBeNull()
    expect(Number(memory![1]) * (memory![2] === 'Gi' ? 1024 : 1)).toBeLessThanOrEqual(1024)
  })

  it('streams the task\'s output live and reports a timeout as a containment event', () => {
    const r = runs.get('hang')!
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('marker-before-loop') // --json: the task's stdout goes to stderr
    expect(r.stderr).toContain('to-stderr')
    expect(r.stderr).toMatch(/\[sandbox\] timeout: the task ran past its 3 s wall-clock limit and was killed/)
    expect(r.stderr).toMatch(/error \[ERR_TASK_TIMEOUT\]/)
    const summary = JSON.parse(r.stdout) as { status: string, events: Array<{ type: string }>, outDir: string, resources: { timeoutMs: number } }
    expect(summary.status).toBe('timeout')
    expect(summary.events.map(e => e.type)).toEqual(['started', 'timeout'])
    expect(summary.resources.timeoutMs).toBe(3000)
    rmSync(summary.outDir, { recursive: true, force: true })
  })

  it('refuses unknown inputs and bad parameters before running anything', () => {
    const bad = runs.get('bad-input')!
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/ERR_TASKPACK_INPUT.*no input 'nope'.*dataset/)
    const badCfg = runs.get('bad-config')!
    expect(badCfg.code).toBe(1)
    expect(badCfg.stderr).toMatch(/ERR_TASKPACK_CONFIG.*no_such_parameter/)
  })

  it('leaves no staged working directory behind', () => {
    expect(readdirSync(tmpdir()).filter(n => n.startsWith('bitflow-stage-') && !stagesBefore.has(n))).toEqual([])
  })
})
