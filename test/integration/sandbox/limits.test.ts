/**
 * Resource containment on the real engine: wall-clock timeout, pids, memory, stdout flood, /out cap.
 * Each test asserts the containment, that it is reported, and that the host is left unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { cleanHost, hostState, outputDir, pyJob, startFixture, type Fixture } from './helpers.js'

const MiB = 1024 * 1024
let fx: Fixture
beforeAll(async () => {
  fx = await startFixture({ slots: 2, memory: { defaultBytes: 256 * MiB, maxBytes: 512 * MiB }, outputBytes: 2 * MiB, stdoutBytes: 256 * 1024, stderrBytes: 64 * 1024, tmpBytes: 8 * MiB })
})
afterAll(async () => { await fx?.cleanup() })

describe('sandbox limits', () => {
  it('kills an infinite loop at the wall-clock timeout and reports it', async () => {
    const job = pyJob(fx, 'loop', 'print("spinning", flush=True)\nwhile True:\n    pass\n', { resources: { timeoutMs: 1500 } })
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.status).toBe('timeout')
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBe(137)
    expect(r.durationMs).toBeGreaterThanOrEqual(1500)
    expect(r.durationMs).toBeLessThan(10_000)
    expect(r.events.map(e => e.type)).toContain('timeout')
    expect(r.stdout.toString()).toBe('spinning\n')
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('a fork bomb stops at the pids limit (64) and is killed at the timeout', async () => {
    const code = `
import os, time
n = 0
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        n += 1
except OSError as e:
    print(f"forked {n} then errno {e.errno}", flush=True)
# now the real bomb: every process forks forever
while True:
    try:
        os.fork()
    except OSError:
        pass
`
    const job = pyJob(fx, 'forkbomb', code, { resources: { timeoutMs: 2500 } })
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    const m = /forked (\d+) then errno (\d+)/.exec(r.stdout.toString())
    expect(m).not.toBeNull()
    expect(Number(m![1])).toBeLessThan(64)       // python itself holds a pid and maybe threads
    expect(Number(m![1])).toBeGreaterThan(40)
    expect(Number(m![2])).toBe(11)               // EAGAIN from the pids cgroup
    expect(r.status).toBe('timeout')
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('a memory bomb is OOM-killed at the memory limit and reported as oom', async () => {
    const code = `
hold = []
while True:
    hold.append(bytearray(8 * 1024 * 1024))   # touched: bytearray zero-fills
`
    const job = pyJob(fx, 'membomb', code, { resources: { memoryBytes: 96 * MiB, timeoutMs: 30_000 } })
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.resources.memoryBytes).toBe(96 * MiB)
    expect(r.status).toBe('oom')
    expect(r.oomKilled).toBe(true)
    expect(r.exitCode).toBe(137)
    expect(r.timedOut).toBe(false)
    expect(r.events.map(e => e.type)).toContain('oom')
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('clamps a job\'s memory request to the node\'s maximum', async () => {
    const job = pyJob(fx, 'memcap', 'print(open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip(), open("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").read().strip() if __import__("os").path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") else "-")\n', { resources: { memoryBytes: 8 * 1024 * MiB } })
    const r = await fx.runner.run(job)
    expect(r.resources.memoryBytes).toBe(512 * MiB)
    expect(r.status).toBe('succeeded')
    const [limit] = r.stdout.toString().trim().split(' ')
    expect(Number(limit)).toBe(512 * MiB)
  })

  it('caps a stdout flood, keeps stderr separate, and the task still finishes', async () => {
    const code = `
import sys
chunk = b"x" * 65536
for _ in range(32 * 16):        # 32 MiB
    sys.stdout.buffer.write(chunk)
sys.stdout.flush()
print("stderr survives", file=sys.stderr)
`
    const job = pyJob(fx, 'flood', code, { resources: { timeoutMs: 60_000 } })
    const before = await hostState(fx)
    let streamed = 0
    const r = await fx.runner.run(job, { onStdout: c => { streamed += c.length } })
    expect(r.status).toBe('succeeded')
    expect(r.stdout.length).toBe(256 * 1024)
    expect(streamed).toBe(256 * 1024)
    expect(r.stdoutBytes).toBe(32 * MiB)
    expect(r.stdoutTruncated).toBe(true)
    expect(r.stderr.toString()).toBe('stderr survives\n')
    expect(r.stderrTruncated).toBe(false)
    expect(r.events).toContainEqual({ type: 'stdout-cap', capBytes: 256 * 1024 })
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('an oversized output file fails with ENOSPC while written, and the copy stays within the cap', async () => {
    const code = `
import errno
written = 0
try:
    with open("/out/big.bin", "wb") as f:
        for _ in range(64):
            f.write(b"y" * (256 * 1024))
            f.flush()
            written += 256 * 1024
except OSError as e:
    print("errno", e.errno, "after", written, flush=True)
with open("/out/small.txt", "w") as f:
    pass
try:
    with open("/tmp/big.bin", "wb") as f:
        f.write(b"z" * (16 * 1024 * 1024))
except OSError as e:
    print("tmp errno", e.errno, flush=True)
`
    const dest = outputDir(fx)
    const job = pyJob(fx, 'bigout', code, { outputDir: dest })
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.status).toBe('succeeded')
    const m = /errno (\d+) after (\d+)/.exec(r.stdout.toString())
    expect(m).not.toBeNull()
    expect(Number(m![1])).toBe(28) // ENOSPC
    expect(Number(m![2])).toBeLessThanOrEqual(2 * MiB)
    // a single file larger than the biggest writable file system hits RLIMIT_FSIZE first: EFBIG
    expect(r.stdout.toString()).toContain('tmp errno 27')
    expect(r.outputFull).toBe(true)
    expect(r.events).toContainEqual({ type: 'output-full', capBytes: 2 * MiB })
    expect(r.outputBytes).toBeLessThanOrEqual(2 * MiB)
    const copied = statSync(join(dest, 'big.bin')).size
    expect(copied).toBe(r.outputs.find(o => o.path === 'big.bin')!.bytes)
    expect(copied).toBeLessThanOrEqual(2 * MiB)
    expect(readdirSync(dest).sort()).toEqual(['big.bin', 'small.txt'])
    expect(await hostState(fx)).toEqual(cleanHost(before))
    expect(existsSync(join(fx.runner.ownerDir, r.runId))).toBe(false)
  })
})
