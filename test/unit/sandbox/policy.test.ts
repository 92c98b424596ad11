import { describe, expect, it } from 'vitest'
import { GiB, MiB, resolveSandboxConfig } from '../../../sandbox/config.js'
import { GpuUnavailableError, SandboxJobError } from '../../../sandbox/errors.js'
import { buildCreateOptions, resolveResources, type RunContext, type SandboxJob } from '../../../sandbox/policy.js'

const job = (extra: Partial<SandboxJob> = {}): SandboxJob => ({ id: 'exec1:task2:0', taskDir: '/srv/tasks/t', command: ['python3', '/task/src/main.py'], seed: 'abc123', ...extra })
const ctx: RunContext = { image: `sha256:${'a'.repeat(64)}`, name: 'bitflow-n1-0011', owner: 'n1', runId: '0011', outMount: '/var/lib/bitflow-sandbox/runs/n1/0011/out' }

describe('sandbox policy: the create request', () => {
  it('applies the full containment policy', () => {
    const o = buildCreateOptions(job(), resolveSandboxConfig(), ctx)
    const h = o.HostConfig!
    expect(o.Image).toBe(ctx.image)
    expect(o.User).toBe('65534:65534')
    expect(o.Hostname).toBe('task')
    expect(o.WorkingDir).toBe('/task')
    expect(o.Cmd).toEqual(['python3', '/task/src/main.py'])
    expect(o.Env).toEqual(['PYTHONHASHSEED=0', 'BITFLOW_SEED=abc123'])
    expect(o.Tty).toBe(false)
    expect(o.Labels).toMatchObject({ 'org.bitflow.sandbox': 'task', 'org.bitflow.sandbox.owner': 'n1', 'org.bitflow.sandbox.run': '0011', 'org.bitflow.sandbox.job': 'exec1:task2:0' })
    expect(h.ReadonlyRootfs).toBe(true)
    expect(h.CapDrop).toEqual(['ALL'])
    expect(h.CapAdd).toEqual([])
    expect(h.Privileged).toBe(false)
    expect(h.NetworkMode).toBe('none')
    expect(h.IpcMode).toBe('none')
    expect((h as { CgroupnsMode?: string }).CgroupnsMode).toBe('private')
    expect(h.SecurityOpt![0]).toBe('no-new-privileges:true')
    expect(h.SecurityOpt![1]).toMatch(/^seccomp=\{"defaultAction":"SCMP_ACT_ERRNO"/)
    expect(h.PidsLimit).toBe(64)
    expect(h.Memory).toBe(GiB)
    expect(h.MemorySwap).toBe(h.Memory)
    expect(h.NanoCpus).toBe(1e9)
    expect(h.Tmpfs).toEqual({
      '/tmp': `rw,noexec,nosuid,nodev,size=${64 * MiB},nr_inodes=4096,mode=1777`,
      '/dev/shm': `rw,noexec,nosuid,nodev,size=${16 * MiB},nr_inodes=1024,mode=1777`
    })
    expect(buildCreateOptions(job(), resolveSandboxConfig({ shmBytes: 0 }), ctx).HostConfig!.Tmpfs).not.toHaveProperty('/dev/shm')
    expect(h.Mounts).toEqual([
      { Type: 'bind', Source: '/srv/tasks/t', Target: '/task', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } },
      { Type: 'bind', Source: ctx.outMount, Target: '/out', ReadOnly: false, BindOptions: { Propagation: 'rprivate' } }
    ])
    expect(h.LogConfig).toEqual({ Type: 'none', Config: {} })
    expect(h.DeviceRequests).toBeUndefined()
    expect(h.Ulimits).toContainEqual({ Name: 'fsize', Soft: 64 * MiB, Hard: 64 * MiB })
  })

  it('mounts inputs read-only and fixed /etc files when given', () => {
    const o = buildCreateOptions(job({ inputDir: '/srv/in' }), resolveSandboxConfig(), { ...ctx, etcFiles: { hosts: '/e/hosts', hostname: '/e/hostname', resolvConf: '/e/resolv.conf' } })
    const mounts = o.HostConfig!.Mounts!
    expect(mounts).toContainEqual({ Type: 'bind', Source: '/srv/in', Target: '/in', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } })
    expect(mounts.filter(m => m.Target.startsWith('/etc/')).every(m => m.ReadOnly === true)).toBe(true)
    expect(mounts.map(m => m.Target)).toEqual(['/task', '/out', '/in', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf'])
  })

  it('clamps the manifest\'s requests by the node\'s config', () => {
    const config = resolveSandboxConfig({ memory: { defaultBytes: 512 * MiB, maxBytes: 2 * GiB }, cpus: { default: 1, max: 2 }, timeout: { defaultMs: 10_000, maxMs: 60_000 }, outputBytes: 8 * MiB })
    const big = resolveResources(job({ resources: { memoryBytes: 64 * GiB, cpus: 16, timeoutMs: 3_600_000, outputBytes: GiB } }), config)
    expect(big).toMatchObject({ memoryBytes: 2 * GiB, nanoCpus: 2e9, timeoutMs: 60_000, outputBytes: 8 * MiB, pidsLimit: 64 })
    const small = resolveResources(job({ resources: { memoryBytes: 100 * MiB, cpus: 0.5, timeoutMs: 1500, outputBytes: MiB } }), config)
    expect(small).toMatchObject({ memoryBytes: 100 * MiB, nanoCpus: 5e8, timeoutMs: 1500, outputBytes: MiB })
    const none = resolveResources(job(), config)
    expect(none).toMatchObject({ memoryBytes: 512 * MiB, nanoCpus: 1e9, timeoutMs: 10_000, outputBytes: 8 * MiB })
    const o = buildCreateOptions(job({ resources: { memoryBytes: 64 * GiB } }), config, ctx)
    expect(o.HostConfig!.Memory).toBe(2 * GiB)
    expect(o.HostConfig!.MemorySwap).toBe(2 * GiB)
  })

  it('defaults to at most 1 GiB per task', () => {
    expect(resolveResources(job({ resources: { memoryBytes: 8 * GiB } }), resolveSandboxConfig()).memoryBytes).toBe(GiB)
  })

  it('rejects invalid requests by field', () => {
    expect(() => resolveResources(job({ resources: { memoryBytes: -1 } }), resolveSandboxConfig())).toThrow(/resources.memoryBytes/)
    expect(() => resolveResources(job({ resources: { cpus: Number.NaN } }), resolveSandboxConfig())).toThrow(SandboxJobError)
    expect(() => resolveResources(job({ resources: { gpu: 'maybe' as never } }), resolveSandboxConfig())).toThrow(/resources.gpu/)
  })

  it('checks the job: absolute paths, argv, id and seed', () => {
    const config = resolveSandboxConfig()
    expect(() => buildCreateOptions(job({ taskDir: 'relative/dir' }), config, ctx)).toThrow(/taskDir must be an absolute host path/)
    expect(() => buildCreateOptions(job({ command: [] }), config, ctx)).toThrow(/command must be a non-empty list/)
    expect(() => buildCreateOptions(job({ id: 'bad id with spaces' }), config, ctx)).toThrow(/invalid job id/)
    expect(() => buildCreateOptions(job({ seed: 'x\nEVIL=1' }), config, ctx)).toThrow(/seed must be/)
  })
})

describe('sandbox policy: GPUs', () => {
  const gpuNode = resolveSandboxConfig({ gpus: { count: 2 } })
  const cpuNode = resolveSandboxConfig()

  it('requests the node\'s NVIDIA GPUs through the engine for gpu: required and optional', () => {
    for (const gpu of ['required', 'optional'] as const) {
      const o = buildCreateOptions(job({ resources: { gpu } }), gpuNode, ctx)
      expect(o.HostConfig!.DeviceRequests).toEqual([{ Driver: 'nvidia', Count: 2, Capabilities: [['gpu']], Options: {} }])
    }
  })

  it('exposes specific devices when the node lists them', () => {
    const o = buildCreateOptions(job({ resources: { gpu: 'required' } }), resolveSandboxConfig({ gpus: { count: 0, deviceIds: ['GPU-1234'] } }), ctx)
    expect(o.HostConfig!.DeviceRequests).toEqual([{ Driver: 'nvidia', DeviceIDs: ['GPU-1234'], Capabilities: [['gpu']], Options: {} }])
  })

  it('gives no GPU to gpu: none, even on a GPU node', () => {
    expect(buildCreateOptions(job({ resources: { gpu: 'none' } }), gpuNode, ctx).HostConfig!.DeviceRequests).toBeUndefined()
    expect(buildCreateOptions(job(), gpuNode, ctx).HostConfig!.DeviceRequests).toBeUndefined()
  })

  it('runs gpu: optional without GPUs on a CPU node', () => {
    expect(buildCreateOptions(job({ resources: { gpu: 'optional' } }), cpuNode, ctx).HostConfig!.DeviceRequests).toBeUndefined()
  })

  it('refuses gpu: required on a node without GPUs, saying why', () => {
    expect(() => buildCreateOptions(job({ resources: { gpu: 'required' } }), cpuNode, ctx)).toThrow(GpuUnavailableError)
    expect(() => resolveResources(job({ resources: { gpu: 'required' } }), cpuNode)).toThrow(/requires a GPU.*no NVIDIA GPU configured/)
    try {
      resolveResources(job({ resources: { gpu: 'required' } }), cpuNode)
    } catch (err) {
      expect((err as GpuUnavailableError).code).toBe('ERR_SANDBOX_GPU_UNAVAILABLE')
    }
  })
})
