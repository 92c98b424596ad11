/**
 * The demo model's three tasks run in the real sandbox the way a node runs an assignment
 * (daemon/execution/runner.ts): the example taskpack collected and authenticated, each task staged
 * with its layer input under the task's input name, its weightUri file as the input `weights` and
 * its params as the job params; its `<output>.safetensors` feeds the next task. The final y must
 * match the TypeScript float32 reference within the tolerance, and a wrong weight must not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import Docker from 'dockerode'
import { collectTaskpack, type CollectedTaskpack } from '../../../protocols/taskpack/pack.js'
import { createTensor, encodeSafetensors, decodeSafetensors, type Tensor } from '../../../protocols/tensor/safetensors.js'
import type { ModelTask } from '../../../protocols/model.js'
import { SandboxRunner } from '../../../sandbox/runner.js'
import { stageRun } from '../../../sandbox/stage.js'
import { authenticateTaskpack, defaultAuthPolicy, sandboxCapabilities, type AuthReport } from '../../../sandbox/authenticate.js'
import { LABEL_OWNER } from '../../../sandbox/policy.js'
import { buildDemoModel, compareWithReference, demoTaskpackCid, demoTaskpackDir, soleTensor, type DemoModel } from '../../../scripts/lib/demo-model.js'

const owner = `test-${process.pid}-${randomBytes(3).toString('hex')}`
const work = mkdtempSync(join(tmpdir(), 'bitflow-demo-taskpack-'))
let runner: SandboxRunner
let collected: CollectedTaskpack
let demo: DemoModel
let auth: AuthReport
const PUBLISHER = 'example-publisher'

/** Runs one model task as a node would; returns its output tensor (the sole tensor of <output>.safetensors). */
async function runTask (task: ModelTask, layerInput: Uint8Array, weights: Uint8Array): Promise<{ tensor: Tensor, names: string[], files: string[] }> {
  const input = task.inputs[0]!.name
  const output = task.outputs[0]!.name
  const staged = await stageRun(collected, {
    inputs: { [input]: { file: `${input}.safetensors`, bytes: layerInput }, weights: { file: 'weights.safetensors', bytes: weights } },
    params: task.params as Record<string, unknown>,
    seed: 0,
    taskId: `${demo.modelId}/${task.id}`
  }, { parent: work })
  try {
    const result = await runner.run(staged.sandboxJob(`demo-task-${task.id}`, { memoryBytes: auth.taskpack!.parsed.resources.memoryBytes, gpu: 'none', timeoutMs: 60_000 }))
    expect(result.status, result.stderr.toString()).toBe('succeeded')
    const bytes = new Uint8Array(await readFile(join(staged.outputDir, `${output}.safetensors`)))
    return { tensor: soleTensor(bytes), names: [...decodeSafetensors(bytes).tensors.keys()], files: result.outputs.map(o => o.path).sort() }
  } finally {
    await staged.wipe()
  }
}

beforeAll(async () => {
  runner = new SandboxRunner({ config: { owner, slots: 1 } })
  await runner.start()
  const dir = demoTaskpackDir()
  demo = buildDemoModel(await demoTaskpackCid(dir))
  auth = await authenticateTaskpack(dir, defaultAuthPolicy({
    capabilities: sandboxCapabilities(runner.config),
    allowList: [PUBLISHER],
    verifyPublisher: async () => ({ publisher: PUBLISHER, verified: true }),
    runner,
    dryRunRequired: true,
    workDir: work
  }))
  collected = await collectTaskpack(dir)
}, 120_000)

afterAll(async () => {
  await runner?.stop()
  const docker = new Docker({ socketPath: runner.config.socketPath })
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${owner}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})
  }
  await rm(runner.ownerDir, { recursive: true, force: true })
  await rm(work, { recursive: true, force: true })
})

describe('the demo model on the example taskpack, in the sandbox', () => {
  it('the example taskpack passes every check a node enforces, the dry run included', () => {
    expect(auth.ok, JSON.stringify(auth.findings)).toBe(true)
    expect(auth.cid).toBe(demo.taskpackCid)
    for (const check of ['manifest', 'publisher', 'capabilities', 'static', 'dry-run', 'cleanup'] as const) expect(auth.checks[check].status, check).toBe('passed')
    expect(auth.dryRun?.outputs.map(o => o.path)).toContain('y.safetensors')
  })

  it('chains x -> h1 -> h2 -> y and matches the TypeScript float32 reference', async () => {
    let current = demo.input.bytes
    for (const [i, task] of demo.model.tasks.entries()) {
      const { tensor, names, files } = await runTask(task, current, demo.weights[i]!.bytes)
      const name = task.outputs[0]!.name
      expect(names).toEqual([name]) // one tensor, named after the output
      expect(files).toEqual([`${name}.safetensors`, 'metrics.json', 'result.json'].sort())
      expect(tensor.shape).toEqual(task.outputs[0]!.shape)
      const verdict = compareWithReference(name, tensor, demo.reference.get(name)!)
      expect(verdict.match, verdict.reason).toBe(true)
      current = encodeSafetensors({ [name]: tensor })
    }
  })

  it('a wrong weight gives a y that does not match', async () => {
    const last = demo.model.tasks[2]!
    const layer = demo.layers[2]!
    const b = Float32Array.from(layer.b)
    b[0] = b[0]! + 0.5
    const wrong = encodeSafetensors({ W: createTensor('float32', [layer.inFeatures, layer.outFeatures], layer.W), b: createTensor('float32', [layer.outFeatures], b) })
    const h2 = encodeSafetensors({ h2: demo.reference.get('h2')! })
    const { tensor } = await runTask(last, h2, wrong)
    const verdict = compareWithReference('y', tensor, demo.reference.get('y')!)
    expect(verdict.match).toBe(false)
    // the right weights on the same input do match
    const { tensor: right } = await runTask(last, h2, demo.weights[2]!.bytes)
    expect(compareWithReference('y', right, demo.reference.get('y')!).match).toBe(true)
  })
})
