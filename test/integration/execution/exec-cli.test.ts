/**
 * `bitflowd exec` without the execution pipeline: argument errors (exit 2, before any daemon call),
 * a missing daemon, an unknown model, inputs that do not fit a registered model, and the daemon's
 * refusals (no settlement here; unknown executions) surfaced with their codes. The end-to-end run
 * (request, follow, outputs) is exercised by the demo and comes with the pipeline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { prepareDemo, type PreparedDemo } from '../../../scripts/lib/demo-model.js'
import { cleanup, runCli, spawnDaemon, tempDir, type SpawnedDaemon } from '../../helpers/daemon.js'

const dir = tempDir('exec-cli')
const dataDir = join(dir, 'daemon')
const xFile = join(dir, 'x.safetensors')
let daemon: SpawnedDaemon | undefined
let demo: PreparedDemo
const UNKNOWN_MODEL = 'bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'

beforeAll(async () => {
  const genesisFile = join(dir, 'genesis.json')
  writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
  daemon = await spawnDaemon(dataDir, ['--genesis-file', genesisFile, '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn', '--no-metrics'])
  demo = await prepareDemo(daemon.client)
  writeFileSync(xFile, demo.demo.input.bytes)
}, 60_000)

afterAll(async () => {
  await daemon?.stop()
  cleanup(daemon !== undefined ? [daemon.pid] : [], [dir])
})

const exec = async (...args: string[]) => await runCli(['exec', ...args, '--data-dir', dataDir])

describe.concurrent('bitflowd exec: argument errors exit 2 before contacting a daemon', () => {
  it.for([
    [['run'], /missing required argument 'modelId'/],
    [['run', UNKNOWN_MODEL, '--input', 'x'], /--input 'x' must be name=path/],
    [['run', UNKNOWN_MODEL, '--input', '=a'], /must be name=path/],
    [['run', UNKNOWN_MODEL, '--input', 'x=/nonexistent/x.safetensors'], /--input x: \/nonexistent\/x.safetensors does not exist/],
    [['run', UNKNOWN_MODEL, '--input', `x=${dir}`], /is not a file/],
    [['run', UNKNOWN_MODEL, '--input', `x=${xFile}`, '--input', `x=${xFile}`], /--input x is given twice/],
    [['run', UNKNOWN_MODEL, '--input', 'x=dataset://not-an-id'], /--input x: 'dataset:\/\/not-an-id' is not a dataset id/],
    [['run', UNKNOWN_MODEL, '--input', 'x=ipfs://nope'], /--input x: ipfs:\/\/nope is not ipfs:\/\/<CID>/],
    [['run', UNKNOWN_MODEL, '--max-fee', '-1'], /--max-fee.*must be a whole number/],
    [['run', UNKNOWN_MODEL, '--max-fee', '12.5'], /--max-fee.*must be a whole number/],
    [['run', UNKNOWN_MODEL, '--wait', '--timeout', '0'], /--timeout.*positive number of seconds/],
    [['status'], /missing required argument 'executionId'/],
    [['cancel'], /missing required argument 'executionId'/]
  ] as Array<[string[], RegExp]>)('exec %j', async ([args, message], { expect }) => {
    const r = await runCli(['exec', ...args, '--data-dir', join(dir, 'no-daemon-here')])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  it('says when no daemon runs on the data dir', async ({ expect }) => {
    const r = await runCli(['exec', 'status', 'x-1', '--data-dir', join(dir, 'no-daemon-here')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/error \[ERR_NO_DAEMON\]: no bitflowd is running on/)
  })
})

describe('bitflowd exec against a daemon without the pipeline', () => {
  it('names an unknown model clearly, before storing anything', async () => {
    const r = await exec('run', UNKNOWN_MODEL, '--input', `x=${xFile}`)
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toMatch(new RegExp(`error \\[ERR_EXEC_UNKNOWN_MODEL\\]: unknown model ${UNKNOWN_MODEL}: .*register it first`))
    expect(r.stdout).toBe('')
  }, 60_000)

  it('refuses a model id that is not a CID', async () => {
    const r = await exec('run', 'not-a-model', '--input', `x=${xFile}`)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ERR_EXEC_UNKNOWN_MODEL.*not-a-model/)
  })

  it('checks the inputs against the registered model', async () => {
    const wrong = await exec('run', demo.modelId, '--input', `h1=${xFile}`)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain(`model ${demo.modelId} has no input 'h1' (its inputs: x)`)
    const missing = await exec('run', demo.modelId)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(`model ${demo.modelId} needs --input for 'x' (its inputs: x)`)
  })

  it('refuses to overwrite an existing output file before requesting anything', async () => {
    writeFileSync(join(dir, 'y.safetensors'), 'taken')
    const r = await exec('run', demo.modelId, '--input', `x=${xFile}`, '--out', dir)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ERR_OUT_EXISTS.*y\.safetensors exists/)
    expect(r.stderr).not.toMatch(/input x:/) // nothing was stored
  })

  it('surfaces the daemon\'s refusal: no settlement, so no escrow', async () => {
    const r = await exec('run', demo.modelId, '--input', `x=${xFile}`)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/input x: ipfs:\/\/bafkrei\w+ \(x float32 \[4, 8\]\)/)
    expect(r.stderr).toMatch(/error \[ERR_RPC_32002\]: settlement is not configured on this daemon/)
    expect(r.stdout).toBe('')
  })

  it('status and cancel of an unknown execution say so', async () => {
    const status = await exec('status', 'x-unknown')
    expect(status.code).toBe(1)
    expect(status.stderr).toMatch(/error \[ERR_RPC_32004\]: unknown execution 'x-unknown'/)
    const cancel = await exec('cancel', 'x-unknown', '--reason', 'test')
    expect(cancel.code).toBe(1)
    expect(cancel.stderr).toMatch(/error \[ERR_RPC_32004\]: unknown execution 'x-unknown'/)
  })
})
