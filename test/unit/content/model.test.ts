import { describe, it, expect } from 'vitest'
import { CID } from 'multiformats/cid'
import { validateModel, modelCid, encodeModel, decodeModel, prepareModel, verifyModelReferences, ModelError, type ModelDefinition, type ContentRef } from '../../../protocols/model.js'

const PACK_A = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const PACK_B = 'bafybeibvp3kxpxbpzbvdyn6qbtjchvjqbgvnfdjrahnbnoayctibhzlxnm'
const WEIGHTS = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

function base (): ModelDefinition {
  return {
    format: 'bitflow-model/1',
    name: 'linear-pipeline',
    description: 'normalise then predict',
    creator: 'tester',
    inputs: [{ name: 'x', dimensions: ['batch', '4'], dtype: 'float32' }],
    outputs: [{ name: 'y', dimensions: ['batch'], dtype: 'float32' }],
    tasks: [
      { id: 1, description: 'normalise', taskpack: PACK_A, computeUnits: 10, vramRequirement: 0, inputs: [{ name: 'data', dimensions: ['n', 'd'], dtype: 'float32' }], outputs: [{ name: 'normalized', dimensions: ['n', 'd'], dtype: 'float32' }] },
      { id: 2, description: 'predict', taskpack: PACK_B, computeUnits: 20, vramRequirement: 0, weightUri: `ipfs://${WEIGHTS}`, inputs: [{ name: 'features', dimensions: ['n', '4'], dtype: 'float32' }], outputs: [{ name: 'y', dimensions: ['n'], dtype: 'float32' }] }
    ],
    connections: [
      { sourceTaskId: 0, sourceOutputIndex: 0, destinationTaskId: 1, destInputIndex: 0, tensorSpec: { name: 'x', dimensions: ['batch', '4'], dtype: 'float32' } },
      { sourceTaskId: 1, sourceOutputIndex: 0, destinationTaskId: 2, destInputIndex: 0, tensorSpec: { name: 'normalized', dimensions: ['batch', '4'], dtype: 'float32' } },
      { sourceTaskId: 2, sourceOutputIndex: 0, destinationTaskId: 0, destInputIndex: 0, tensorSpec: { name: 'y', dimensions: ['batch'], dtype: 'float32' } }
    ]
  }
}

function modelError (m: unknown): ModelError {
  try {
    validateModel(m)
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError)
    return err as ModelError
  }
  throw new Error('model accepted')
}

describe('model DAG validation', () => {
  it('accepts a valid DAG', () => {
    expect(validateModel(base()).tasks).toHaveLength(2)
  })

  it('rejects a cycle, naming the tasks and connections', () => {
    const m = base()
    // task 2 also feeds task 1's (new) second input: 1 -> 2 -> 1
    m.tasks[0]!.inputs.push({ name: 'feedback', dimensions: ['n'], dtype: 'float32' })
    m.connections.push({ sourceTaskId: 2, sourceOutputIndex: 0, destinationTaskId: 1, destInputIndex: 1, tensorSpec: { name: 'y', dimensions: ['batch'], dtype: 'float32' } })
    const e = modelError(m)
    expect(e.code).toBe('ERR_MODEL_INVALID')
    expect(e.issues.map(i => i.code)).toEqual(['ERR_MODEL_CYCLE'])
    expect(e.message).toBe('tasks form a cycle: task 1 -> task 2 -> task 1 (connections 1, 3)')
    expect(e.issues[0]!.taskId).toBe(1)
  })

  it('rejects a self-loop as a cycle', () => {
    const m = base()
    m.tasks[1]!.inputs.push({ name: 'state', dimensions: ['n'], dtype: 'float32' })
    m.connections.push({ sourceTaskId: 2, sourceOutputIndex: 0, destinationTaskId: 2, destInputIndex: 1, tensorSpec: { name: 'y', dimensions: ['n'], dtype: 'float32' } })
    expect(modelError(m).message).toBe('tasks form a cycle: task 2 -> task 2 (connections 3)')
  })

  it('rejects a dangling input, naming the task and input', () => {
    const m = base()
    m.tasks[1]!.inputs.push({ name: 'mask', dimensions: ['n'], dtype: 'bool' })
    const e = modelError(m)
    expect(e.issues.map(i => i.code)).toEqual(['ERR_MODEL_DANGLING_INPUT'])
    expect(e.message).toBe("task 2 input 1 'mask' has no incoming connection (dangling input)")
    expect(e.issues[0]!.taskId).toBe(2)
    const noOut = base()
    noOut.connections.pop()
    expect(modelError(noOut).issues.map(i => i.message)).toContain("model output 0 'y' has no incoming connection (dangling input)")
  })

  it('rejects a dtype mismatch, naming the edge', () => {
    const m = base()
    m.tasks[1]!.inputs[0]!.dtype = 'float16'
    const e = modelError(m)
    expect(e.issues.map(i => i.code)).toEqual(['ERR_MODEL_DTYPE_MISMATCH'])
    expect(e.message).toBe("connection 1 (task 1 output 0 'normalized' -> task 2 input 0 'features'): dtype mismatch: the source produces float32, the destination expects float16 (the connection declares float32)")
    expect(e.issues[0]!.connection).toBe(1)
  })

  it('rejects rank and dimension mismatches, following symbols through tasks', () => {
    const rank = base()
    rank.tasks[1]!.inputs[0]!.dimensions = ['n', '4', '1']
    expect(modelError(rank).issues[0]).toMatchObject({ code: 'ERR_MODEL_RANK_MISMATCH', connection: 1 })
    const direct = base()
    direct.tasks[1]!.inputs[0]!.dimensions = ['n', '5']
    const d = modelError(direct)
    expect(d.issues.map(i => i.code)).toEqual(['ERR_MODEL_DIMENSION_MISMATCH'])
    expect(d.message).toMatch(/^connection 1 \(task 1 output 0 'normalized' -> task 2 input 0 'features'\): dimension 1 mismatch: /)
    // the model input has 4 columns; task 1 keeps its width d, so its output has 4 columns too;
    // a task 2 declaring 8 conflicts only through task 1's symbol 'd'
    const indirect = base()
    indirect.tasks[1]!.inputs[0]!.dimensions = ['n', 'k']
    indirect.tasks[1]!.inputs[0]!.shape = [2, 8]
    indirect.connections[1]!.tensorSpec.dimensions = ['batch', '?']
    const i = modelError(indirect)
    expect(i.issues.map(x => x.code)).toContain('ERR_MODEL_DIMENSION_MISMATCH')
    expect(i.message).toMatch(/'d' of task 1 is 4 .* but .* is 8/)
  })

  it('rejects unknown tasks, bad indices, disconnected tasks, unused inputs and double feeds', () => {
    const unknown = base()
    unknown.connections[1]!.destinationTaskId = 9
    expect(modelError(unknown).issues.map(i => i.message)).toContain('connection 1: destination task 9 does not exist (tasks: 1, 2; 0 is the model itself)')
    const index = base()
    index.connections[1]!.sourceOutputIndex = 3
    expect(modelError(index).issues.map(i => i.message)).toContain('connection 1: sourceOutputIndex 3 is out of range: task 1 has 1 outputs')
    const dead = base()
    dead.tasks.push({ id: 3, description: 'orphan', taskpack: PACK_A, computeUnits: 1, vramRequirement: 0, inputs: [], outputs: [{ name: 'o', dimensions: [], dtype: 'int8' }] })
    expect(modelError(dead).issues).toEqual([expect.objectContaining({ code: 'ERR_MODEL_DISCONNECTED', taskId: 3 })])
    const unused = base()
    unused.inputs.push({ name: 'extra', dimensions: [], dtype: 'int8' })
    expect(modelError(unused).message).toBe("model input 1 'extra' is not used by any connection")
    const twice = base()
    twice.connections.push({ ...twice.connections[0]! })
    expect(modelError(twice).issues.map(i => i.code)).toContain('ERR_MODEL_MULTIPLE_SOURCES')
    const dup = base()
    dup.tasks[1]!.id = 1
    expect(modelError(dup).issues.map(i => i.code)).toContain('ERR_MODEL_DUPLICATE_TASK')
  })

  it('accepts taskpacks only by CID, never by name', () => {
    const byName = base()
    byName.tasks[0]!.taskpack = 'normalise@1.0.0'
    expect(modelError(byName).message).toMatch(/tasks\[0\]\.taskpack must be a CIDv1 in base32/)
    const v0 = base()
    v0.tasks[0]!.taskpack = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdx'
    expect(modelError(v0).issues[0]).toMatchObject({ code: 'ERR_MODEL_BAD_CID', taskId: 1 })
  })

  it('checks the schema and names the field', () => {
    const m = base() as unknown as Record<string, unknown>
    delete m.name
    expect(modelError(m).message).toMatch(/must have required property 'name'/)
    const t = base()
    ;(t.tasks[0]!.inputs[0] as { dtype: string }).dtype = 'complex64'
    expect(modelError(t).message).toMatch(/tasks\[0\]\.inputs\[0\]\.dtype must be one of float16/)
  })
})

describe('model content addressing and references', () => {
  it('modelId is the CID of the canonical definition, independent of key order', () => {
    const m = base()
    const cid = modelCid(m)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.toString()).toMatch(/^bafkrei/)
    const reverseKeys = (v: unknown): unknown => Array.isArray(v) ? v.map(reverseKeys) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)])) : v
    const shuffled = reverseKeys(m) as ModelDefinition
    expect(JSON.stringify(shuffled)).not.toBe(JSON.stringify(m))
    expect(modelCid(shuffled).toString()).toBe(cid.toString())
    const changed = base()
    changed.tasks[0]!.computeUnits = 11
    expect(modelCid(changed).toString()).not.toBe(cid.toString())
  })

  it('decodes stored bytes only when they match the id', () => {
    const m = base()
    const bytes = encodeModel(m)
    expect(decodeModel(bytes, modelCid(m)).model).toEqual(m)
    const tampered = new TextEncoder().encode(new TextDecoder().decode(bytes).replace('"computeUnits":10', '"computeUnits":99'))
    expect(() => decodeModel(tampered, modelCid(m))).toThrow(/hash to .* not /)
    expect(() => decodeModel(new TextEncoder().encode(JSON.stringify(m, null, 1)))).toThrow(/not in canonical form/)
  })

  it('checks every referenced taskpack and weights CID through the injected resolver', async () => {
    const m = base()
    const seen: ContentRef[] = []
    const have = new Set([PACK_A, WEIGHTS])
    const resolver = async (ref: ContentRef): Promise<boolean> => { seen.push(ref); return have.has(ref.cid.toString()) }
    await expect(verifyModelReferences(m, resolver)).rejects.toThrow(`task 2: taskpack ${PACK_B} cannot be resolved`)
    expect(seen.map(r => `${r.kind}:${r.cid.toString()}`).sort()).toEqual([`taskpack:${PACK_A}`, `taskpack:${PACK_B}`, `weights:${WEIGHTS}`].sort())
    have.add(PACK_B)
    const { modelId, bytes } = await prepareModel(m, resolver)
    expect(modelId.toString()).toBe(modelCid(m).toString())
    expect(CID.parse(modelId.toString()).equals(modelId)).toBe(true)
    expect(bytes).toEqual(encodeModel(m))
    const failing = async (): Promise<boolean> => { throw new Error('no providers') }
    await expect(verifyModelReferences(m, failing)).rejects.toThrow(/cannot be resolved: no providers/)
  })
})
