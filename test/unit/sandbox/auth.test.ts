import { afterAll, describe, expect, it } from 'vitest'
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { authenticateTaskpack, defaultAuthPolicy, packageFindings, requireAuthenticated, TaskpackAuthError, type AuthPolicy } from '../../../sandbox/authenticate.js'
import { wipeDir } from '../../../sandbox/wipe.js'
import { stageRun } from '../../../sandbox/stage.js'
import { collectTaskpack } from '../../../protocols/taskpack/pack.js'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'

const GiB = 2 ** 30
const dir = mkdtempSync(join(tmpdir(), 'bitflow-auth-unit-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

let n = 0
async function scaffold (edit?: (d: string) => void): Promise<string> {
  const d = join(dir, `pack-${++n}`)
  await scaffoldTaskpack(d, { type: 'analysis' })
  edit?.(d)
  return d
}

const policy = (o: Partial<AuthPolicy> = {}): AuthPolicy => defaultAuthPolicy({
  capabilities: { memoryBytes: GiB, hasGpu: false, gpuMemoryBytes: 0 },
  allowList: ['publisher-a'],
  verifyPublisher: async () => ({ publisher: 'publisher-a', verified: true }),
  skipDryRun: 'unit test',
  ...o
})

describe('static package findings (pure)', () => {
  const file = (path: string, bytes: Uint8Array | string): { entry: { path: string, kind: 'file', size: number }, bytes: Uint8Array } => {
    const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
    return { entry: { path, kind: 'file', size: b.length }, bytes: b }
  }
  const listing = (files: ReturnType<typeof file>[]) => ({
    entries: files.map(f => f.entry),
    contents: new Map(files.map(f => [f.entry.path, f.bytes])),
    totalBytes: files.reduce((s, f) => s + f.bytes.length, 0)
  })
  const limits = { maxEntries: 3, maxTotalBytes: 100, maxFileBytes: 50 }

  it('refuses setuid bits, native binaries, oversize and too many files; warns on exec bits and Dockerfiles', () => {
    const files = [
      file('src/task.py', 'print(1)\n'),
      file('bin/tool', new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1])),
      file('lib/fast.so', 'x'),
      file('run.sh', '#!/bin/sh\n'),
      file('Dockerfile', 'FROM scratch\n'),
      file('big.bin', 'y'.repeat(60))
    ]
    const modes = new Map([['src/task.py', 0o104644], ['run.sh', 0o100755]])
    const f = packageFindings(listing(files), modes, { limits, dockerfile: 'ignore' })
    const by = (code: string): string[] => f.filter(x => x.code === code).map(x => `${x.severity}:${x.file ?? ''}`)
    expect(by('AUTH_STATIC_SETUID')).toEqual(['refuse:src/task.py'])
    expect(by('AUTH_STATIC_NATIVE_BINARY')).toEqual(['refuse:bin/tool', 'refuse:lib/fast.so'])
    expect(by('AUTH_STATIC_EXECUTABLE')).toEqual(['warn:run.sh'])
    expect(by('AUTH_STATIC_DOCKERFILE')).toEqual(['warn:Dockerfile'])
    expect(by('AUTH_STATIC_TOO_MANY_FILES')).toEqual(['refuse:'])
    expect(by('AUTH_STATIC_TOO_LARGE')).toEqual(['refuse:big.bin'])
    expect(f.every(x => x.check === 'static')).toBe(true)
    const strict = packageFindings(listing([file('Dockerfile', 'FROM x\n')]), new Map(), { limits, dockerfile: 'refuse' })
    expect(strict).toMatchObject([{ code: 'AUTH_STATIC_DOCKERFILE', severity: 'refuse', message: expect.stringContaining('requirements.txt') }])
  })
})

describe('authenticateTaskpack without a sandbox', () => {
  it('passes a fresh scaffold from an allow-listed publisher', async () => {
    const r = await authenticateTaskpack(await scaffold(), policy())
    expect(r.ok).toBe(true)
    expect(r.cid).toMatch(/^bafy/)
    expect(r.checks.publisher.status).toBe('passed')
    expect(r.checks.capabilities.status).toBe('passed')
    expect(r.checks.static.status).toBe('passed')
    expect(r.checks['dry-run']).toMatchObject({ status: 'skipped', note: 'unit test' })
    expect(requireAuthenticated(r)).toBe(r)
  })

  it('hands the verifier the CID of the package as checked', async () => {
    const seen: string[] = []
    const r = await authenticateTaskpack(await scaffold(), policy({ verifyPublisher: async cid => { seen.push(cid); return { publisher: 'publisher-a', verified: true } } }))
    expect(seen).toEqual([r.cid])
  })

  it('warn mode runs every check and downgrades refusals to warnings', async () => {
    const d = await scaffold(p => { writeFileSync(join(p, 'src', 'net.py'), 'import socket\n') })
    const r = await authenticateTaskpack(d, policy({ mode: 'warn', verifyPublisher: undefined, capabilities: { memoryBytes: 1, hasGpu: false, gpuMemoryBytes: 0 } }))
    expect(r.ok).toBe(true)
    expect(r.checks.publisher.status).toBe('warned')
    expect(r.checks.capabilities.status).toBe('warned')
    expect(r.checks.static.status).toBe('warned')
    expect(r.findings.every(f => f.severity === 'warn')).toBe(true)
    expect(r.findings.map(f => f.code)).toEqual(expect.arrayContaining(['AUTH_PUBLISHER_NO_VERIFIER', 'AUTH_CAPABILITY_SHORTFALL', 'AUTH_STATIC_FORBIDDEN_IMPORT']))
  })

  it('refuses a directory that is not a taskpack, naming the manifest check', async () => {
    const d = await scaffold(p => { writeFileSync(join(p, 'manifest.yaml'), readFileSync(join(p, 'manifest.yaml'), 'utf8').replace('type: analysis', 'type: mining')) })
    const r = await authenticateTaskpack(d, policy())
    expect(r).toMatchObject({ ok: false, refusedBy: 'manifest' })
    expect(r.findings[0]).toMatchObject({ code: 'AUTH_MANIFEST_INVALID', message: expect.stringContaining('spec.type') })
    expect(() => requireAuthenticated(r)).toThrow(TaskpackAuthError)
  })

  it('refuses links out of the package as a static finding', async () => {
    const d = await scaffold(p => { symlinkSync('/etc/passwd', join(p, 'src', 'passwd')) })
    const r = await authenticateTaskpack(d, policy())
    expect(r).toMatchObject({ ok: false, refusedBy: 'static' })
    expect(r.findings[0]!.code).toBe('AUTH_STATIC_LINK')
  })
})

describe('secure cleanup and staging', () => {
  it('overwrites files before unlinking them, never follows links, leaves shared inodes alone', async () => {
    const root = join(dir, 'wipe')
    mkdirSync(join(root, 'a', 'b'), { recursive: true })
    writeFileSync(join(root, 'a', 'b', 'secret'), 'top secret data')
    const outside = join(dir, 'outside.txt')
    writeFileSync(outside, 'keep me')
    symlinkSync(outside, join(root, 'link'))
    linkSync(outside, join(root, 'hard'))
    const r = await wipeDir(root)
    expect(existsSync(root)).toBe(false)
    expect(readFileSync(outside, 'utf8')).toBe('keep me')
    expect(r.files).toBe(1)
    expect(r.bytes).toBe(15)
    expect(await wipeDir(root)).toEqual({ files: 0, bytes: 0, failures: [] })
  })

  it('stages the checked snapshot world-readable with job.json and inputs, and wipes it', async () => {
    const d = await scaffold()
    const collected = await collectTaskpack(d)
    const input = join(dir, 'data.safetensors')
    writeFileSync(input, 'x')
    chmodSync(input, 0o600)
    const staged = await stageRun(collected, { inputs: { data: input }, seed: 5, taskId: 't', params: { a: 1 } }, { parent: join(dir, 'stage') })
    expect(JSON.parse(readFileSync(join(staged.taskDir, 'job.json'), 'utf8'))).toEqual({ inputs: { data: 'data/data.safetensors' }, params: { a: 1 }, seed: 5, task_id: 't', round: 0 })
    expect(readdirSync(join(staged.taskDir, 'pack')).sort()).toEqual(readdirSync(d).sort())
    const { statSync } = await import('node:fs')
    expect(statSync(join(staged.taskDir, 'inputs', 'data', 'data.safetensors')).mode & 0o777).toBe(0o644)
    expect(statSync(staged.taskDir).mode & 0o777).toBe(0o755)
    expect(staged.sandboxJob('j', {})).toMatchObject({ command: ['python3', '-m', 'bitflow_sdk.run'], seed: '5', taskDir: staged.taskDir })
    await staged.wipe()
    expect(existsSync(staged.root)).toBe(false)
  })

  it('stages a dataset directory as a tree of its listed files, and refuses a file that became a symlink', async () => {
    const collected = await collectTaskpack(await scaffold())
    const data = join(dir, 'dataset-tree')
    mkdirSync(join(data, 'a', 'b'), { recursive: true })
    writeFileSync(join(data, 'top.csv'), 'x,y\n1,2\n')
    writeFileSync(join(data, 'a', 'b', 'deep.bin'), Buffer.from([1, 2, 3]))
    writeFileSync(join(data, 'not-listed.txt'), 'left out')
    const staged = await stageRun(collected, { inputs: { data: { tree: data, files: ['a/b/deep.bin', 'top.csv'] } }, seed: 1, taskId: 't' }, { parent: join(dir, 'stage') })
    expect(JSON.parse(readFileSync(join(staged.taskDir, 'job.json'), 'utf8')).inputs).toEqual({ data: 'data/data' })
    const root = join(staged.taskDir, 'inputs', 'data', 'data')
    expect(readFileSync(join(root, 'top.csv'), 'utf8')).toBe('x,y\n1,2\n')
    expect([...readFileSync(join(root, 'a', 'b', 'deep.bin'))]).toEqual([1, 2, 3])
    expect(existsSync(join(root, 'not-listed.txt'))).toBe(false)
    await staged.wipe()
    // a listed path that escapes, or a file swapped for a link after the dataset was hashed, is refused
    await expect(stageRun(collected, { inputs: { data: { tree: data, files: ['../outside'] } }, seed: 1, taskId: 't' }, { parent: join(dir, 'stage') })).rejects.toThrow()
    rmSync(join(data, 'top.csv'))
    writeFileSync(join(dir, 'secret'), 'host file')
    symlinkSync(join(dir, 'secret'), join(data, 'top.csv'))
    await expect(stageRun(collected, { inputs: { data: { tree: data, files: ['top.csv'] } }, seed: 1, taskId: 't' }, { parent: join(dir, 'stage') })).rejects.toThrow(/regular files/)
  })
})
