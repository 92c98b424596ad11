import { describe, it, expect } from 'vitest'
import { parseManifest, parseSize, formatSize, capabilityShortfalls } from '../../../protocols/taskpack/manifest.js'
import { ManifestError } from '../../../protocols/taskpack/errors.js'

const GOOD = `apiVersion: v1
kind: TaskPackage
metadata:
  name: fedavg-demo
  version: 1.2.0
  author: BitFlow Team
  description: Federated demo
spec:
  type: training
  framework: pytorch
  precision: low
  requirements:
    python: ">=3.8"
    gpu: required
    memory: 1Gi
    gpu_memory: 24GB
    storage: 50GB
  inputs:
    - name: images
      type: wsi
      format: [".svs", ".tiff"]
    - name: labels
      type: annotations
      format: .json
  outputs:
    - name: model_updates
      type: model_weights
      format: .pth
  federated:
    protocol: fedprox
    aggregation_compatible: true
    differential_privacy: optional
    mu: 0.01
  llm_config:
    base_model: meta-llama/Llama-2-7b-hf
    training_method: lora
    lora_config:
      r: 16
      lora_alpha: 32
      target_modules: [q_proj, v_proj]
  analysis_config:
    methods: [spatial_statistics]
    statistical_significance: 0.05
  sample_inputs:
    labels: tests/samples/labels.json
`

function issuesOf (text: string): ManifestError {
  try {
    parseManifest(text)
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError)
    return err as ManifestError
  }
  throw new Error('manifest was accepted')
}

describe('manifest.yaml', () => {
  it('accepts every field of the design and parses sizes to bytes', () => {
    const p = parseManifest(GOOD)
    expect(p.manifest.metadata.name).toBe('fedavg-demo')
    expect(p.manifest.spec.federated?.protocol).toBe('fedprox')
    expect(p.resources).toEqual({ memoryBytes: 2 ** 30, gpu: 'required', gpuMemoryBytes: 24e9, storageBytes: 50e9 })
    expect(p.precision).toBe('low')
    expect(p.entrypoint).toEqual({ file: 'src/task.py' })
  })

  it('names the missing field and the line of its parent', () => {
    const e = issuesOf(GOOD.replace('  version: 1.2.0\n', ''))
    expect(e.code).toBe('ERR_TASKPACK_MANIFEST')
    expect(e.message).toBe('manifest.yaml line 3: metadata.version is required')
    expect(e.issues).toEqual([{ path: 'metadata.version', line: 3, message: 'metadata.version is required' }])
  })

  it('names a bad enum value with the allowed values and its line', () => {
    const e = issuesOf(GOOD.replace('type: training', 'type: trainer'))
    expect(e.message).toBe("manifest.yaml line 9: spec.type must be one of training, analysis, preprocessing, inference (got 'trainer')")
    expect(issuesOf(GOOD.replace('gpu: required', 'gpu: maybe')).message).toMatch(/line 14: spec\.requirements\.gpu must be one of required, optional, none/)
    expect(issuesOf(GOOD.replace('protocol: fedprox', 'protocol: fedsgd')).message).toMatch(/line 30: spec\.federated\.protocol must be one of fedavg, fedprox, scaffold/)
    expect(issuesOf(GOOD.replace('precision: low', 'precision: exact')).message).toMatch(/line 11: spec\.precision must be one of high, standard, low/)
  })

  it('names wrong types, and says to quote a number meant as a string', () => {
    const e = issuesOf(GOOD.replace('version: 1.2.0', 'version: 1.2'))
    expect(e.message).toBe('manifest.yaml line 5: metadata.version must be a semantic version such as 1.0.0 (got number 1.2; quote it to make it a string)')
    expect(issuesOf(GOOD.replace('  inputs:\n    - name: images', '  inputs: 3\n  xinputs:\n    - name: images')).issues[0]!.message).toBe('spec.inputs must be a list (got number 3)')
    expect(issuesOf(GOOD.replace('aggregation_compatible: true', 'aggregation_compatible: "yes"')).message).toMatch(/line 31: spec\.federated\.aggregation_compatible must be true or false \(got 'yes'\)/)
    expect(issuesOf(GOOD.replace('r: 16', 'r: 0')).message).toMatch(/line 38: spec\.llm_config\.lora_config\.r must be >= 1 \(got number 0\)/)
  })

  it('names bad sizes, patterns and list items', () => {
    expect(issuesOf(GOOD.replace('memory: 1Gi', 'memory: lots')).message).toMatch(/line 15: spec\.requirements\.memory must be a size such as 512Mi, 1Gi or 16GB \(got 'lots'\)/)
    expect(issuesOf(GOOD.replace('format: [".svs", ".tiff"]', 'format: [".svs", "tiff"]')).message).toMatch(/line 21: spec\.inputs\[0\]\.format\[1\] must be a string matching/)
    expect(issuesOf(GOOD.replace('name: labels', 'name: Labels!')).message).toMatch(/line 22: spec\.inputs\[1\]\.name must be a lower-case identifier/)
  })

  it('reports unknown fields with a suggestion', () => {
    const e = issuesOf(GOOD.replace('gpu_memory: 24GB', 'gpu_memroy: 24GB'))
    expect(e.message).toBe("manifest.yaml line 16: unknown field 'spec.requirements.gpu_memroy' (did you mean 'gpu_memory'?)")
  })

  it('reports malformed YAML with its line', () => {
    expect(issuesOf('apiVersion: v1\nkind: [TaskPackage\nmetadata: {}\n').message).toMatch(/^manifest\.yaml line \d: not valid YAML: /)
    expect(issuesOf(GOOD.replace('  author: BitFlow Team\n', '  author: BitFlow Team\n  author: Again\n')).message).toMatch(/line 7: not valid YAML: Map keys must be unique/)
    expect(issuesOf('').message).toMatch(/line 1: is empty/)
    expect(issuesOf('- a\n- b\n').message).toMatch(/must be a YAML mapping/)
  })

  it('lists several problems at once, in line order', () => {
    const e = issuesOf(GOOD.replace('kind: TaskPackage', 'kind: Package').replace('  version: 1.2.0\n', ''))
    expect(e.issues.map(i => i.line)).toEqual([2, 3])
    expect(e.issues[0]!.message).toBe('kind must be "TaskPackage" (got \'Package\')')
  })

  it('checks the rules a schema cannot say', () => {
    expect(issuesOf(GOOD.replace('name: labels', 'name: images')).message).toMatch(/line 22: spec\.inputs\[1\]\.name 'images' is already used by spec\.inputs\[0\]/)
    expect(issuesOf(GOOD.replace('gpu: required', 'gpu: none')).message).toMatch(/line 16: spec\.requirements\.gpu_memory is set but spec\.requirements\.gpu is 'none'/)
    expect(issuesOf(GOOD.replace('protocol: fedprox', 'protocol: fedavg')).message).toMatch(/spec\.federated\.mu is the FedProx proximal term/)
    expect(issuesOf(GOOD.replace('labels: tests/samples/labels.json', 'masks: tests/samples/labels.json')).message).toMatch(/spec\.sample_inputs\.masks names no input/)
    expect(issuesOf(GOOD.replace('memory: 1Gi', 'memory: 0')).message).toMatch(/spec\.requirements\.memory must be more than 0/)
  })

  it('refuses oversized manifests', () => {
    expect(issuesOf(GOOD + `# ${'x'.repeat(70_000)}\n`).message).toMatch(/larger than 65536 bytes/)
  })
})

describe('sizes', () => {
  it('parses binary and decimal units', () => {
    expect(parseSize('512Mi')).toBe(512 * 2 ** 20)
    expect(parseSize('1Gi')).toBe(2 ** 30)
    expect(parseSize('1GiB')).toBe(2 ** 30)
    expect(parseSize('16GB')).toBe(16e9)
    expect(parseSize('1.5Ki')).toBe(1536)
    expect(parseSize('100')).toBe(100)
    expect(parseSize(4096)).toBe(4096)
    expect(() => parseSize('12 parsecs')).toThrow(/invalid size/)
    expect(formatSize(2 ** 30)).toBe('1Gi')
  })

  it('compares requirements with what a node offers', () => {
    const { resources } = parseManifest(GOOD)
    expect(capabilityShortfalls(resources, { memoryBytes: 2 ** 31, gpuMemoryBytes: 32e9, hasGpu: true })).toEqual([])
    expect(capabilityShortfalls(resources, { memoryBytes: 2 ** 29, gpuMemoryBytes: 0, hasGpu: false })).toEqual([
      'needs 1Gi memory, node offers 512Mi', 'needs a GPU, node has none', 'needs 24GB GPU memory, node offers 0'
    ])
  })
})
