/**
 * The demo model: a three-layer perceptron made of three tasks of the example taskpack
 * examples/taskpacks/dense, with deterministic weights, and its reference output computed here in
 * float32.
 *
 *   x [4, 8] -> task 1: dense + relu -> h1 [4, 16] -> task 2: dense + relu -> h2 [4, 16]
 *            -> task 3: dense + softmax -> y [4, 3]
 *
 * Each task stages its layer input under the task's input tensor name (x, h1, h2), its weightUri as
 * the input `weights` (tensors W and b), and its params `{activation, output}`; it writes
 * `<output>.safetensors` holding one tensor of that name.
 *
 * Everything but the taskpack CID is a pure function of a seed, so the model id is known before any
 * daemon runs (a test net registers its nodes as specialized in the model's tasks at start).
 */
import { prng } from '../../protocols/prng.js'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { projectRoot } from '../../daemon/paths.js'
import type { BitflowClient } from '../../daemon/rpc/client.js'
import type { PublishTaskpackResult, PutTensorResult, RegisterModelResult } from '../../daemon/content/types.js'
import { compareOutputs, type OutputComparison, type PrecisionClass } from '../../protocols/execution/compare.js'
import { modelTaskId } from '../../protocols/execution/ids.js'
import { MODEL_FORMAT, modelCid, validateModel, type ModelDefinition, type TensorSpec } from '../../protocols/model.js'
import { packTaskpack } from '../../protocols/taskpack/validate.js'
import { UNIXFS_CHUNK_SIZE } from '../../protocols/taskpack/pack.js'
import { createTensor, decodeSafetensors, encodeSafetensors, tensorValues, type Tensor } from '../../protocols/tensor/safetensors.js'

export const DEMO_SEED = 0xb17f10
export const DEMO_ROWS = 4
/** the example taskpack's manifest precision class: the tolerance outputs are compared with */
export const DEMO_PRECISION: PrecisionClass = 'standard'
/**
 * Compute units per task. On `local` a task's deadline is 5 s + 1 s per 100 units, and a node's
 * first run of a task (fetch, authenticate, stage, container) took 6-10 s on a busy 2-core machine
 * with the test net on it: 1000 units give 15 s.
 */
export const DEMO_COMPUTE_UNITS = 1000

export type Activation = 'none' | 'relu' | 'softmax'

export interface DenseLayer {
  /** model task number (1-based) */
  task: number
  /** the task's input and output tensor names */
  input: string
  output: string
  inFeatures: number
  outFeatures: number
  activation: Activation
  /** row-major [inFeatures, outFeatures] */
  W: Float32Array
  b: Float32Array
}

const LAYOUT: Array<{ input: string, output: string, inFeatures: number, outFeatures: number, activation: Activation }> = [
  { input: 'x', output: 'h1', inFeatures: 8, outFeatures: 16, activation: 'relu' },
  { input: 'h1', output: 'h2', inFeatures: 16, outFeatures: 16, activation: 'relu' },
  { input: 'h2', output: 'y', inFeatures: 16, outFeatures: 3, activation: 'softmax' }
]

export function demoTaskpackDir (): string {
  return join(projectRoot(), 'examples', 'taskpacks', 'dense')
}

export { prng }

const uniform = (rand: () => number, n: number, scale: number, offset = 0): Float32Array =>
  Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale + offset)

/** The demo's weights and input, all drawn from one seeded generator. */
export function demoParameters (seed = DEMO_SEED): { layers: DenseLayer[], x: Float32Array } {
  const rand = prng(seed)
  const x = uniform(rand, DEMO_ROWS * LAYOUT[0]!.inFeatures, 1)
  const layers = LAYOUT.map((l, i) => ({
    task: i + 1,
    ...l,
    W: uniform(rand, l.inFeatures * l.outFeatures, 1.5 / Math.sqrt(l.inFeatures)),
    b: uniform(rand, l.outFeatures, 0.1, 0.05)
  }))
  return { layers, x }
}

/** One dense layer in float32: every product, sum and activation step rounded to float32. */
export function denseForward (x: Float32Array, rows: number, layer: Pick<DenseLayer, 'inFeatures' | 'outFeatures' | 'activation' | 'W' | 'b'>): Float32Array {
  const f = Math.fround
  const { inFeatures: n, outFeatures: m, W, b } = layer
  if (x.length !== rows * n) throw new RangeError(`layer input has ${x.length} values, [${rows}, ${n}] needs ${rows * n}`)
  const out = new Float32Array(rows * m)
  for (let r = 0; r < rows; r++) {
    const z = new Float32Array(m)
    for (let j = 0; j < m; j++) {
      let acc = 0
      for (let k = 0; k < n; k++) acc = f(acc + f(x[r * n + k]! * W[k * m + j]!))
      z[j] = f(acc + b[j]!)
    }
    if (layer.activation === 'relu') for (let j = 0; j < m; j++) z[j] = z[j]! > 0 ? z[j]! : 0
    if (layer.activation === 'softmax') {
      let max = -Infinity
      for (let j = 0; j < m; j++) max = Math.max(max, z[j]!)
      let sum = 0
      for (let j = 0; j < m; j++) { z[j] = f(Math.exp(f(z[j]! - max))); sum = f(sum + z[j]!) }
      for (let j = 0; j < m; j++) z[j] = f(z[j]! / sum)
    }
    out.set(z, r * m)
  }
  return out
}

/** Every layer's output by tensor name (h1, h2, y), computed in float32. */
export function referenceForward (x: Float32Array, layers: readonly DenseLayer[], rows = DEMO_ROWS): Map<string, Tensor> {
  const out = new Map<string, Tensor>()
  let cur = x
  for (const l of layers) {
    cur = denseForward(cur, rows, l)
    out.set(l.output, createTensor('float32', [rows, l.outFeatures], cur))
  }
  return out
}

/**
 * The ipfs:// URI the content store gives a file under 1 MiB: one raw leaf (CIDv1, raw codec,
 * sha256), as daemon/content/store.ts imports it. prepareDemo checks the daemon agrees.
 */
export function smallFileUri (bytes: Uint8Array): string {
  if (bytes.length > UNIXFS_CHUNK_SIZE) throw new RangeError(`${bytes.length} bytes span several UnixFS chunks; only single-chunk files have a raw CID`)
  const digest = createHash('sha256').update(bytes).digest()
  return `ipfs://${CID.createV1(raw.code, Digest.create(0x12, new Uint8Array(digest))).toString()}`
}

export interface DemoFile { name: string, bytes: Uint8Array, uri: string }

export interface DemoModel {
  model: ModelDefinition
  modelId: string
  /** `<modelId>/<task>` of each task, what nodes specialize in */
  taskIds: string[]
  taskpackCid: string
  /** the model input x */
  input: DemoFile
  /** each task's weights file (W and b), by task number - 1 */
  weights: DemoFile[]
  layers: DenseLayer[]
  /** h1, h2 and y as computed here */
  reference: Map<string, Tensor>
}

const spec = (name: string, features: number): TensorSpec => ({ name, dimensions: ['batch', String(features)], shape: [DEMO_ROWS, features], dtype: 'float32' })

/** The demo model for a taskpack CID: definition, id, the files it needs, and its reference output. */
export function buildDemoModel (taskpackCid: string, seed = DEMO_SEED, computeUnits = DEMO_COMPUTE_UNITS): DemoModel {
  const { layers, x } = demoParameters(seed)
  const file = (name: string, tensors: Record<string, Tensor>): DemoFile => {
    const bytes = encodeSafetensors(tensors)
    return { name, bytes, uri: smallFileUri(bytes) }
  }
  const input = file('x', { x: createTensor('float32', [DEMO_ROWS, layers[0]!.inFeatures], x) })
  const weights = layers.map(l => file(`weights-${l.task}`, {
    W: createTensor('float32', [l.inFeatures, l.outFeatures], l.W),
    b: createTensor('float32', [l.outFeatures], l.b)
  }))
  const last = layers[layers.length - 1]!
  const model: ModelDefinition = {
    format: MODEL_FORMAT,
    name: 'bitflow-demo-mlp',
    description: 'x [4, 8] -> dense + relu -> h1 [4, 16] -> dense + relu -> h2 [4, 16] -> dense + softmax -> y [4, 3], float32, one bitflow-dense task per layer',
    creator: 'bitflow demo',
    inputs: [spec('x', layers[0]!.inFeatures)],
    outputs: [spec(last.output, last.outFeatures)],
    tasks: layers.map((l, i) => ({
      id: l.task,
      description: `dense ${l.inFeatures} -> ${l.outFeatures}, ${l.activation}`,
      taskpack: taskpackCid,
      computeUnits,
      vramRequirement: 0,
      inputs: [spec(l.input, l.inFeatures)],
      outputs: [spec(l.output, l.outFeatures)],
      weightUri: weights[i]!.uri,
      params: { activation: l.activation, output: l.output }
    })),
    connections: [
      { sourceTaskId: 0, destinationTaskId: 1, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('x', layers[0]!.inFeatures) },
      ...layers.slice(1).map(l => ({ sourceTaskId: l.task - 1, destinationTaskId: l.task, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec(l.input, l.inFeatures) })),
      { sourceTaskId: last.task, destinationTaskId: 0, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec(last.output, last.outFeatures) }
    ]
  }
  const valid = validateModel(model)
  const modelId = modelCid(valid).toString()
  return {
    model: valid,
    modelId,
    taskIds: layers.map(l => modelTaskId(modelId, l.task)),
    taskpackCid,
    input,
    weights,
    layers,
    reference: referenceForward(x, layers)
  }
}

/** The CID the example taskpack packs to (offline; the same CID publishing gives). */
export async function demoTaskpackCid (dir = demoTaskpackDir()): Promise<string> {
  return (await packTaskpack(dir)).packed.cidString
}

export interface PreparedDemo {
  modelId: string
  /** the execution request's inputs: model input name -> ipfs:// URI */
  inputs: Record<string, string>
  /** the model output y as computed here */
  reference: Tensor
  taskpackCid: string
  demo: DemoModel
}

/**
 * Publishes the example taskpack through `client`'s daemon, stores the weights and the input,
 * registers the model, and returns what an execution request needs with the reference output.
 * Throws if the daemon's CIDs differ from the ones computed here.
 */
export async function prepareDemo (client: BitflowClient, options: { taskpackDir?: string, seed?: number, computeUnits?: number } = {}): Promise<PreparedDemo> {
  const published = await client.call<PublishTaskpackResult>('bitflow_publishTaskpack', [options.taskpackDir ?? demoTaskpackDir()])
  const demo = buildDemoModel(published.record.cid, options.seed, options.computeUnits)
  for (const f of [...demo.weights, demo.input]) {
    const put = await client.call<PutTensorResult>('bitflow_putTensor', [{ safetensorsBase64: Buffer.from(f.bytes).toString('base64') }])
    if (put.uri !== f.uri) throw new Error(`the daemon stored ${f.name} as ${put.uri}, expected ${f.uri}`)
  }
  const registered = await client.call<RegisterModelResult>('bitflow_registerModel', [demo.model])
  if (registered.modelId !== demo.modelId) throw new Error(`the daemon registered the model as ${registered.modelId}, expected ${demo.modelId}`)
  const output = demo.model.outputs[0]!.name
  return { modelId: demo.modelId, inputs: { x: demo.input.uri }, reference: demo.reference.get(output)!, taskpackCid: demo.taskpackCid, demo }
}

/** The sole tensor of a safetensors file whatever its name (how one-tensor files are read). */
export function soleTensor (bytes: Uint8Array): Tensor {
  const { tensors } = decodeSafetensors(bytes, { copy: true })
  if (tensors.size !== 1) throw new Error(`expected one tensor, the file holds ${tensors.size} (${[...tensors.keys()].join(', ')})`)
  return [...tensors.values()][0]!
}

/** Tolerant comparison (Proof of Sampling's rule) of an output file with a reference tensor. */
export function compareWithReference (name: string, output: Uint8Array | Tensor, reference: Tensor, precision = DEMO_PRECISION): OutputComparison {
  const got = output instanceof Uint8Array ? soleTensor(output) : output
  return compareOutputs({ [name]: got }, { [name]: reference }, precision)
}

/** Rows of a [rows, cols] float tensor, for printing. */
export function tensorRows (t: Tensor): number[][] {
  const v = tensorValues(t) as Float32Array
  const cols = t.shape[1] ?? 1
  return Array.from({ length: t.shape[0] ?? 0 }, (_, r) => Array.from(v.subarray(r * cols, (r + 1) * cols)))
}
