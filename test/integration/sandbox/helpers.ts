/** Shared fixtures of the sandbox integration tests: a runner on the real engine, task dirs, host checks. */
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { SandboxRunner } from '../../../sandbox/runner.js'
import type { SandboxConfigInput } from '../../../sandbox/config.js'
import { LABEL_OWNER, LABEL_ROLE } from '../../../sandbox/policy.js'
import { mountsUnder, removeRunDir } from '../../../sandbox/outputs.js'
import type { SandboxJob } from '../../../sandbox/policy.js'

export interface Fixture {
  runner: SandboxRunner
  owner: string
  docker: Docker
  /** host directory holding task code and the secret; its digest must not change while tasks run */
  scratch: string
  /** host directory for output dirs (outside scratch) */
  outputs: string
  /** a host file with a secret the task must never see */
  secretPath: string
  secret: string
  cleanup: () => Promise<void>
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Containers and run dirs of test runs whose process died (killed mid-test) are removed here. */
async function sweepDeadTestRuns (docker: Docker, workDir: string): Promise<void> {
  const deadOwner = (owner: string | undefined): boolean => {
    const m = /^test-(\d+)-/.exec(owner ?? '')
    return m !== null && !alive(Number(m[1]))
  }
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL_ROLE}=task`] } })) {
    if (deadOwner(c.Labels[LABEL_OWNER])) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})
  }
  for (const name of existsSync(workDir) ? readdirSync(workDir) : []) {
    if (deadOwner(name)) await removeRunDir(join(workDir, name))
  }
}

/** A runner with its own owner label (so parallel runners never touch each other's containers). */
export async function startFixture (config: SandboxConfigInput = {}): Promise<Fixture> {
  const owner = `test-${process.pid}-${randomBytes(3).toString('hex')}`
  const runner = new SandboxRunner({ config: { owner, slots: 2, ...config } })
  await runner.start()
  const docker = new Docker({ socketPath: runner.config.socketPath })
  await sweepDeadTestRuns(docker, runner.config.workDir)
  const scratch = mkdtempSync(join(tmpdir(), 'bitflow-sandbox-test-'))
  chmodSync(scratch, 0o755)
  const outputs = mkdtempSync(join(tmpdir(), 'bitflow-sandbox-out-'))
  const secret = `host-secret-${randomBytes(8).toString('hex')}`
  const secretPath = join(scratch, 'host-secret.txt')
  writeFileSync(secretPath, secret, { mode: 0o644 })
  const cleanup = async (): Promise<void> => {
    await runner.stop()
    // belt and braces: whatever a failed test left behind
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${owner}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})
    }
    rmSync(scratch, { recursive: true, force: true })
    rmSync(outputs, { recursive: true, force: true })
    rmSync(runner.ownerDir, { recursive: true, force: true })
  }
  return { runner, owner, docker, scratch, outputs, secretPath, secret, cleanup }
}

let taskCounter = 0

/** A task directory (world-readable, as the runner requires) holding `files`. */
export function makeTask (fx: Fixture, files: Record<string, string>): string {
  const dir = join(fx.scratch, `task-${++taskCounter}`)
  mkdirSync(dir, { mode: 0o755 })
  chmodSync(dir, 0o755)
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text, { mode: 0o644 })
  }
  return dir
}

let outCounter = 0
/** A fresh (not yet existing) output directory path outside the scratch tree. */
export function outputDir (fx: Fixture): string {
  return join(fx.outputs, `out-${++outCounter}`)
}

/** A python job running `code` as /task/main.py (create jobs before taking the `before` host state). */
export function pyJob (fx: Fixture, id: string, code: string, extra: Partial<SandboxJob> = {}): SandboxJob {
  return { id, taskDir: makeTask(fx, { 'main.py': code }), command: ['python3', '/task/main.py'], seed: '42', ...extra }
}

export interface HostState {
  containers: string[]
  runDirs: string[]
  mounts: string[]
  scratch: string
}

function treeDigest (dir: string): string {
  const h = createHash('sha256')
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const st = statSync(p, { throwIfNoEntry: false })
      if (st === undefined) continue
      h.update(`${rel}/${name} ${st.mode} ${st.size} ${st.mtimeMs}\n`)
      if (st.isDirectory()) walk(p, `${rel}/${name}`)
      else if (st.isFile()) h.update(readFileSync(p))
    }
  }
  walk(dir, '')
  return h.digest('hex')
}

/** What a task could change on the host if containment failed. */
export async function hostState (fx: Fixture): Promise<HostState> {
  const containers = (await fx.docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${fx.owner}`] } })).map(c => c.Id)
  const runDirs = readdirSync(fx.runner.ownerDir).filter(n => n !== 'etc')
  const mounts = await mountsUnder(fx.runner.ownerDir)
  return { containers, runDirs, mounts, scratch: treeDigest(fx.scratch) }
}

/** No container, run dir or mount left behind, and the host scratch tree (task code, secret) untouched. */
export function cleanHost (before: HostState): HostState {
  return { containers: [], runDirs: [], mounts: [], scratch: before.scratch }
}
