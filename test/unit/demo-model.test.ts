import { describe, expect, it } from 'vitest'
import { validateModel } from '../../protocols/model.js'
import { decodeSafetensors, tensorValues } from '../../protocols/tensor/safetensors.js'
import { DEMO_COMPUTE_UNITS, buildDemoModel, compareWithReference, demoParameters, demoTaskpackCid, denseForward, smallFileUri } from '../../scripts/lib/demo-model.js'

const PACK_A = 'bafybeie5bxarlf7psbmwa44bmbpew4p3r32n24mrcjbbsj2xxotukt63je'
const PACK_B = smallFileUri(new Uint8Array([1])).slice('ipfs://'.length) // any other CID

describe('the demo model', () => {
  it('is deterministic: same taskpack CID and seed, same bytes and model id', () => {
    const a = buildDemoModel(PACK_A)
    const b = buildDemoModel(PACK_A)
    expect(b.modelId).toBe(a.modelId)
    expect(b.input.uri).toBe(a.input.uri)
    expect(b.weights.map(w => w.uri)).toEqual(a.weights.map(w => w.uri))
    expect(Buffer.from(b.input.bytes).equals(Buffer.from(a.input.bytes))).toBe(true)
    expect(a.taskIds).toEqual([1, 2, 3].map(n => `${a.modelId}/${n}`))
  })

  it('changes id with the taskpack or the seed', () => {
    const a = buildDemoModel(PACK_A)
    expect(buildDemoModel(PACK_B).modelId).not.toBe(a.modelId)
    const other = buildDemoModel(PACK_A, 7)
    expect(other.modelId).not.toBe(a.modelId)
    expect(other.weights[0]!.uri).not.toBe(a.weights[0]!.uri)
  })

  it('validates as a three-task chain x -> h1 -> h2 -> y with weights and params', () => {
    const { model } = buildDemoModel(PACK_A)
    expect(validateModel(structuredClone(model))).toEqual(model)
    expect(model.inputs.map(i => i.name)).toEqual(['x'])
    expect(model.outputs.map(o => [o.name, o.shape])).toEqual([['y', [4, 3]]])
    expect(model.tasks.map(t => [t.id, t.inputs[0]!.name, t.outputs[0]!.name, t.params])).toEqual([
      [1, 'x', 'h1', { activation: 'relu', output: 'h1' }],
      [2, 'h1', 'h2', { activation: 'relu', output: 'h2' }],
      [3, 'h2', 'y', { activation: 'softmax', output: 'y' }]
    ])
    for (const t of model.tasks) {
      expect(t.taskpack).toBe(PACK_A)
      expect(t.weightUri).toMatch(/^ipfs:\/\/bafkrei/)
      expect(t.computeUnits).toBe(DEMO_COMPUTE_UNITS)
      expect(t.vramRequirement).toBe(0)
    }
  })

  it('stores W [in, out] and b [out] per task and x [4, 8], each file at its raw CID', () => {
    const demo = buildDemoModel(PACK_A)
    const shapes = demo.weights.map(w => {
      const { tensors } = decodeSafetensors(w.bytes)
      expect(w.uri).toBe(smallFileUri(w.bytes))
      return [tensors.get('W')!.shape, tensors.get('b')!.shape]
    })
    expect(shapes).toEqual([[[8, 16], [16]], [[16, 16], [16]], [[16, 3], [3]]])
    expect(decodeSafetensors(demo.input.bytes).tensors.get('x')!.shape).toEqual([4, 8])
  })

  it('has a float32 reference: h1 and h2 non-negative and not all zero, y [4, 3] rows summing to 1', () => {
    const { reference } = buildDemoModel(PACK_A)
    expect([...reference.keys()]).toEqual(['h1', 'h2', 'y'])
    for (const name of ['h1', 'h2']) {
      const v = tensorValues(reference.get(name)!) as Float32Array
      expect(v.every(z => z >= 0)).toBe(true)
      expect(v.filter(z => z > 0).length).toBeGreaterThan(v.length / 4)
    }
    const y = reference.get('y')!
    expect(y.dtype).toBe('float32')
    expect(y.shape).toEqual([4, 3])
    const v = tensorValues(y) as Float32Array
    for (let r = 0; r < 4; r++) expect(v[r * 3]! + v[r * 3 + 1]! + v[r * 3 + 2]!).toBeCloseTo(1, 6)
  })

  it('matches a float64 computation within the float32 tolerance, and a changed weight does not', () => {
    const { layers, x } = demoParameters()
    const demo = buildDemoModel(PACK_A)
    // the same network in float64, in another summation order
    let cur = Array.from(x)
    for (const l of layers) {
      const next: number[] = []
      for (let r = 0; r < 4; r++) {
        const z = Array.from({ length: l.outFeatures }, (_, j) => {
          let acc = l.b[j]!
          for (let k = l.inFeatures - 1; k >= 0; k--) acc += cur[r * l.inFeatures + k]! * l.W[k * l.outFeatures + j]!
          return acc
        })
        const a = l.activation === 'relu' ? z.map(v => Math.max(0, v)) : l.activation === 'softmax' ? softmax(z) : z
        next.push(...a)
      }
      cur = next
    }
    const y64 = { dtype: 'float32' as const, shape: [4, 3], data: new Uint8Array(Float32Array.from(cur).buffer) }
    expect(compareWithReference('y', y64, demo.reference.get('y')!).match).toBe(true)

    const wrong = layers.map(l => ({ ...l, b: Float32Array.from(l.b) }))
    wrong[2]!.b[0] = wrong[2]!.b[0]! + 0.5
    let h = x
    for (const l of wrong) h = denseForward(h, 4, l)
    const bad = { dtype: 'float32' as const, shape: [4, 3], data: new Uint8Array(h.buffer) }
    const verdict = compareWithReference('y', bad, demo.reference.get('y')!)
    expect(verdict.match).toBe(false)
    expect(verdict.reason).toMatch(/over tolerance|beyond/)
  })

  it('packs the example taskpack offline to a stable CID', async () => {
    const cid = await demoTaskpackCid()
    expect(cid).toMatch(/^bafybei/)
    expect(await demoTaskpackCid()).toBe(cid)
  })
})

function softmax (z: number[]): number[] {
  const m = Math.max(...z)
  const e = z.map(v => Math.exp(v - m))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map(v => v / s)
}
