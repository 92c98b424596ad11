import { describe, it, expect, beforeAll, afterAll, vi, afterEach } from 'vitest'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { registerTaskpackCommands, scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'
import { BitflowError } from '../../../daemon/errors.js'
import { TASK_TYPES } from '../../../protocols/taskpack/manifest.js'
import { validateTaskpackDir, requirementsProblems } from '../../../protocols/taskpack/validate.js'
import { packDirectory } from '../../../protocols/taskpack/pack.js'
import { parseConfigSchema, resolveParams } from '../../../protocols/taskpack/config.js'
import { decodeSafetensors, tensorValues } from '../../../protocols/tensor/safetensors.js'
import { checkNumpy, python, PYTHON, SDK_PATH } from './python.js'
import { spawnSync } from 'node:child_process'
import { parseYamlLocated } from '../../../protocols/taskpack/yaml.js'

const tmp = mkdtempSync(join(tmpdir(), 'bitflow-scaffold-'))

async function cli (...args: string[]): Promise<string> {
  const program = new Command('bitflowd').exitOverride().configureOutput({ writeErr: () => {} })
  registerTaskpackCommands(program)
  const lines: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')) })
  try {
    await program.parseAsync(args, { from: 'user' })
  } finally {
    spy.mockRestore()
  }
  return lines.join('\n')
}

afterEach(() => { vi.restoreAllMocks() })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

/** Runs `python3 -m bitflow_sdk.run` on the host with the scaffold's sample job. */
function runTask (pack: string, edit: (job: Record<string, unknown>) => void = () => {}): { status: number, out: string, stderr: string } {
  const work = mkdtempSync(join(tmp, 'run-'))
  const taskDir = join(work, 'task')
  const out = join(work, 'out')
  mkdirSync(join(taskDir, 'inputs'), { recursive: true })
  const job = JSON.parse(readFileSync(join(pack, 'tests/samples/job.json'), 'utf8')) as { inputs: Record<string, string> }
  for (const rel of Object.values(job.inputs)) copyFileSync(join(pack, 'tests/samples', rel), join(taskDir, 'inputs', rel))
  edit(job as Record<string, unknown>)
  writeFileSync(join(taskDir, 'job.json'), JSON.stringify(job))
  const r = spawnSync(PYTHON, ['-m', 'bitflow_sdk.run'], {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', PYTHONPATH: SDK_PATH, PYTHONHASHSEED: '0', PYTHONDONTWRITEBYTECODE: '1', BITFLOW_TASK_DIR: taskDir, BITFLOW_OUT_DIR: out, BITFLOW_PACK_DIR: pack }
  })
  return { status: r.status ?? -1, out, stderr: r.stderr }
}

describe('taskpack scaffold and CLI', () => {
  beforeAll(() => { checkNumpy() })

  it('init creates a scaffold of every type that validates cleanly', async () => {
    for (const type of TASK_TYPES) {
      const dir = join(tmp, `fresh-${type}`)
      const out = await cli('taskpack', 'init', dir, '--type', type, '--author', 'Test Author')
      expect(out).toMatch(new RegExp(`created ${type} taskpack 'fresh-${type}'`))
      const check = await validateTaskpackDir(dir)
      expect(check.warnings).toEqual([])
      expect(check.parsed.manifest.spec.type).toBe(type)
      expect(check.parsed.manifest.metadata.author).toBe('Test Author')
      expect(check.parsed.resources.memoryBytes).toBeLessThanOrEqual(2 ** 30)
      expect(['none', 'optional']).toContain(check.parsed.resources.gpu)
      for (const f of ['manifest.yaml', 'requirements.txt', 'src/task.py', 'src/__init__.py', 'configs/default.yaml', 'configs/schema.json', 'tests/test_task.py', 'README.md']) {
        expect(existsSync(join(dir, f)), f).toBe(true)
      }
      expect(readdirSync(join(dir, 'tests/samples')).some(f => f.endsWith('.safetensors'))).toBe(true)
      for (const rel of Object.values(check.parsed.manifest.spec.sample_inputs ?? {})) {
        expect(decodeSafetensors(readFileSync(join(dir, rel))).tensors.size).toBeGreaterThan(0)
      }
    }
  })

  it('validate reports success, and pack prints the CIDv1 that packing gives', async () => {
    const dir = join(tmp, 'fresh-training')
    expect(await cli('taskpack', 'validate', dir)).toMatch(/^ok: fresh-training@0\.1\.0 \(training, numpy\), \d+ files, \d+ bytes$/)
    const json = JSON.parse(await cli('taskpack', 'validate', dir, '--json')) as { valid: boolean, name: string }
    expect(json).toMatchObject({ valid: true, name: 'fresh-training' })
    const cid = await cli('taskpack', 'pack', dir)
    expect(cid).toMatch(/^bafy[a-z2-7]{50,}$/)
    expect(cid).toBe((await packDirectory(dir)).cidString)
    const packed = JSON.parse(await cli('taskpack', 'pack', dir, '--json')) as { cid: string, checksum: string }
    expect(packed.cid).toBe(cid)
    expect(packed.checksum).toMatch(/^sha256:/)
  })

  it('the same scaffold gives the same CID wherever it is created', async () => {
    await scaffoldTaskpack(join(tmp, 'a', 'same'), { type: 'analysis' })
    await scaffoldTaskpack(join(tmp, 'b', 'same'), { type: 'analysis' })
    expect((await packDirectory(join(tmp, 'a', 'same'))).cidString).toBe((await packDirectory(join(tmp, 'b', 'same'))).cidString)
  })

  it('errors carry codes the CLI prints', async () => {
    const dir = join(tmp, 'fresh-analysis')
    await expect(cli('taskpack', 'init', dir, '--type', 'analysis')).rejects.toMatchObject({ code: 'ERR_TASKPACK_EXISTS' })
    await expect(cli('taskpack', 'init', join(tmp, 'Bad Name!'), '--type', 'analysis')).resolves.toMatch(/created analysis taskpack 'bad-name'/)
    await expect(cli('taskpack', 'init', join(tmp, 'x'), '--type', 'bogus')).rejects.toThrow(/Allowed choices are training, analysis, preprocessing, inference/)
    const broken = join(tmp, 'broken')
    await scaffoldTaskpack(broken, { type: 'inference' })
    const manifest = readFileSync(join(broken, 'manifest.yaml'), 'utf8')
    writeFileSync(join(broken, 'manifest.yaml'), manifest.replace(/  version: 0\.1\.0\n/, ''))
    const err = await cli('taskpack', 'validate', broken).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BitflowError)
    expect(err).toMatchObject({ code: 'ERR_TASKPACK_MANIFEST', message: 'manifest.yaml line 3: metadata.version is required' })
    writeFileSync(join(broken, 'manifest.yaml'), manifest)
    writeFileSync(join(broken, 'configs/default.yaml'), 'activation: softmax\nbatch_size: 16\n')
    await expect(cli('taskpack', 'pack', broken)).rejects.toMatchObject({ code: 'ERR_TASKPACK_CONFIG', message: "configs/default.yaml line 1: activation must be one of none, relu, sigmoid (got 'softmax')" })
    writeFileSync(join(broken, 'configs/default.yaml'), 'activation: relu\nbatch_size: 16\n')
    writeFileSync(join(broken, 'requirements.txt'), 'numpy\n--index-url http://evil.example/simple\n')
    await expect(cli('taskpack', 'validate', broken)).rejects.toMatchObject({ code: 'ERR_TASKPACK_LAYOUT', message: "requirements.txt line 2: pip options such as '--index-url' are not allowed" })
    expect(requirementsProblems('numpy>=1.24\nscipy[all] ==1.11, <2 ; python_version > "3.8"\ngit+https://x/y\n./local\n')).toEqual([
      "requirements.txt line 3: URLs and local paths are not allowed ('git+https://x/y'); name a package, optionally with a version",
      "requirements.txt line 4: URLs and local paths are not allowed ('./local'); name a package, optionally with a version"
    ])
  })

  it('the Python SDK runner runs every scaffold on its samples, deterministically', () => {
    for (const type of TASK_TYPES) {
      const pack = join(tmp, `fresh-${type}`)
      const a = runTask(pack)
      expect(a.status, a.stderr).toBe(0)
      const b = runTask(pack)
      const result = JSON.parse(readFileSync(join(a.out, 'result.json'), 'utf8')) as { status: string, outputs: Record<string, { file: string, sha256: string }> }
      expect(result.status).toBe('success')
      expect(readFileSync(join(b.out, 'result.json'), 'utf8')).toBe(readFileSync(join(a.out, 'result.json'), 'utf8'))
      expect(readFileSync(join(b.out, 'metrics.json'), 'utf8')).toBe(readFileSync(join(a.out, 'metrics.json'), 'utf8'))
      for (const o of Object.values(result.outputs)) expect(decodeSafetensors(readFileSync(join(a.out, o.file))).tensors.size).toBeGreaterThan(0)
    }
    // the training scaffold actually learns: loss falls and the weights approach the generator's
    const train = runTask(join(tmp, 'fresh-training'), job => { job.params = { epochs: 400 } })
    const metrics = JSON.parse(readFileSync(join(train.out, 'metrics.json'), 'utf8')) as { loss_initial: number, loss_final: number, epochs: number }
    expect(metrics.epochs).toBe(400)
    expect(metrics.loss_final).toBeLessThan(metrics.loss_initial / 10)
    const w = tensorValues(decodeSafetensors(readFileSync(join(train.out, 'model_weights.safetensors'))).tensors.get('w')!) as Float32Array
    expect(Array.from(w).map(x => Math.round(x * 2) / 2)).toEqual([1.5, -2, 0.5, 3])
  })

  it('the runner refuses malformed jobs, bad parameters and inputs outside its directory', () => {
    const pack = join(tmp, 'fresh-preprocessing')
    const cases: Array<[(job: Record<string, unknown>) => void, RegExp]> = [
      [job => { job.seed = -1 }, /seed must be an integer from 0 to 2\^32-1/],
      [job => { delete job.seed }, /seed must be an integer/],
      [job => { job.params = { clip: -1 } }, /parameters: clip must be > 0/],
      [job => { job.params = { round: 3 } }, /params cannot set 'round'/],
      [job => { job.inputs = { data: '../../etc/passwd' } }, /must be a path inside the inputs directory/],
      [job => { job.inputs = { data: '/etc/passwd' } }, /must be a path inside the inputs directory/],
      [job => { job.surprise = 1 }, /unknown fields: surprise/]
    ]
    for (const [edit, pattern] of cases) {
      const r = runTask(pack, edit)
      expect(r.status).toBe(2)
      const error = JSON.parse(readFileSync(join(r.out, 'error.json'), 'utf8')) as { status: string, message: string }
      expect(error.status).toBe('error')
      expect(error.message).toMatch(pattern)
    }
  })

  it("the scaffold's own Python tests pass on the host", () => {
    const r = spawnSync(PYTHON, ['-m', 'unittest', 'discover', '-s', 'tests'], {
      cwd: join(tmp, 'fresh-inference'),
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', PYTHONPATH: SDK_PATH, PYTHONDONTWRITEBYTECODE: '1' }
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/Ran 3 tests/)
  })

  it('the SDK validates parameters exactly as the daemon does', () => {
    const schemaText = readFileSync(join(tmp, 'fresh-analysis/configs/schema.json'), 'utf8')
    const schema = parseConfigSchema(schemaText)
    const candidates: unknown[] = [
      { ddof: 1, percentiles: [5, 50], min_rows: 10 },
      { ddof: 1.0, percentiles: [5], min_rows: 2 },
      { ddof: 2, percentiles: [5], min_rows: 10 },
      { ddof: true, percentiles: [5], min_rows: 10 },
      { ddof: 0, percentiles: [], min_rows: 10 },
      { ddof: 0, percentiles: [101], min_rows: 10 },
      { ddof: 0, percentiles: ['5'], min_rows: 10 },
      { ddof: 0, percentiles: [5], min_rows: 10, extra: 1 },
      { ddof: 0, percentiles: [5] }
    ]
    const ts = candidates.map(c => { try { resolveParams(schema, {}, c); return true } catch { return false } })
    const py = JSON.parse(python(`
import json, sys
from bitflow_sdk import validate_schema
schema = json.load(open(sys.argv[1]))
print(json.dumps([not validate_schema(c, schema) for c in json.loads(sys.argv[2])]))
`, [join(tmp, 'fresh-analysis/configs/schema.json'), JSON.stringify(candidates)])) as boolean[]
    expect(ts).toEqual([true, true, false, false, false, false, false, false, false])
    expect(py).toEqual(ts)
  })


  it('the SDK reads configs/default.yaml like the daemon, and refuses YAML outside its subset', () => {
    const text = [
      '# parameters', 'lr: 0.05  # step', 'epochs: 20', 'neg: -3', 'exp: 1.0e-6', 'hex: 0x1F', 'octal: 0o17', 'nothing: ~', 'empty:',
      'yes_is_a_string: yes', 'flag: True', 'quoted: "a # not a comment"', "single: 'it''s'", 'version: 1.10',
      'nested:', '  kind: adam', '  betas: [0.9, 0.999]', '  inline: {a: 1, b: [x, y]}', 'items:', '  - 1', '  - two', '  - [3]', ''
    ].join('\n')
    const parsed = parseYamlLocated(text)
    expect(parsed.ok).toBe(true)
    const ts = parsed.ok ? parsed.doc.value : undefined
    const py = JSON.parse(python(`
import json, sys
from bitflow_sdk import miniyaml
print(json.dumps(miniyaml.loads(sys.argv[1])))
`, [text])) as unknown
    expect(py).toEqual(ts)
    const refused = python(`
import sys
from bitflow_sdk import miniyaml, ConfigError
for text in sys.argv[1:]:
    try:
        miniyaml.loads(text)
        print('accepted')
    except ConfigError as e:
        print(e)
`, ['a: &x 1\nb: *x\n', 'a: |\n  text\n', 'a: 1\na: 2\n', 'a:\n  - k: v\n'])
    expect(refused.trim().split('\n')).toEqual([
      "configs/default.yaml line 1: '&' (anchors, aliases, tags, block scalars) is not supported in this file",
      "configs/default.yaml line 1: '|' (anchors, aliases, tags, block scalars) is not supported in this file",
      "configs/default.yaml line 2: duplicate key 'a'",
      'configs/default.yaml line 2: mappings inside lists are not supported in this file; use a flow mapping {a: 1}'
    ])
  })
})
