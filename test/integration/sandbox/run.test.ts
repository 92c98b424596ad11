/**
 * The sandbox on the real engine: a normal task, determinism, streaming, concurrency, abort.
 * Every test also checks that nothing is left on the host (containers, mounts, run dirs, host files).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ImageUnavailableError, SandboxAbortedError, SandboxJobError } from '../../../sandbox/errors.js'
import { mountOutputTmpfs, mountsUnder } from '../../../sandbox/outputs.js'
import { LABEL_OWNER, LABEL_ROLE } from '../../../sandbox/policy.js'
import { readImageRecord } from '../../../sandbox/engine.js'
import { SandboxRunner, type SandboxResult } from '../../../sandbox/runner.js'
import { cleanHost, hostState, outputDir as newOutputDir, pyJob, startFixture, type Fixture } from './helpers.js'

let fx: Fixture
beforeAll(async () => { fx = await startFixture({ slots: 2 }) })
afterAll(async () => { await fx?.cleanup() })

const NORMAL = `
import hashlib, json, os, random, socket, sys, threading
import numpy as np
seed = int(os.environ["BITFLOW_SEED"])
rng = np.random.default_rng(seed)
a = rng.standard_normal((200, 200))
product = a @ a.T                           # BLAS, possibly threaded
done = []
t = threading.Thread(target=lambda: done.append(sum(range(1000))))
t.start(); t.join()
random.seed(seed)
result = {
  "checksum": hashlib.sha256(product.tobytes()).hexdigest(),
  "draw": random.random(),
  "hash": hash("bitflow"),                  # fixed by PYTHONHASHSEED=0
  "hostname": socket.gethostname(),
  "uid": os.getuid(), "gid": os.getgid(),
  "cwd": os.getcwd(),
  "env": sorted(os.environ),
  "thread": done[0],
  "cgroup": sorted(set(line.split(":", 2)[2] for line in open("/proc/self/cgroup").read().splitlines())),
}
os.makedirs("/out/sub", exist_ok=True)
with open("/out/result.json", "w") as f: json.dump(result, f)
np.save("/out/sub/matrix.npy", product[:4, :4])
print(json.dumps(result))
print("to stderr", file=sys.stderr)
`

describe('sandbox: a normal task', () => {
  it('runs python3 + numpy as uid 65534 with a fixed identity, streams stdout/stderr separately and copies /out', async () => {
    const outputDir = newOutputDir(fx)
    const job = pyJob(fx, 'normal', NORMAL, { outputDir, seed: '7' })
    const before = await hostState(fx)
    const streamed: string[] = []
    const events: string[] = []
    const r = await fx.runner.run(job, {
      onStdout: c => streamed.push(c.toString()),
      onEvent: e => events.push(e.type)
    })
    expect(r.stderr.toString()).toBe('to stderr\n')
    expect(r.status).toBe('succeeded')
    expect(r.exitCode).toBe(0)
    expect(r.timedOut || r.oomKilled).toBe(false)
    const out = JSON.parse(r.stdout.toString()) as Record<string, unknown>
    expect(streamed.join('')).toBe(r.stdout.toString())
    expect(events).toEqual(['started'])
    expect(out.uid).toBe(65534)
    expect(out.gid).toBe(65534)
    expect(out.hostname).toBe('task')
    expect(out.cwd).toBe('/task')
    expect(out.thread).toBe(499500)
    expect(out.cgroup).toEqual(['/']) // no container id visible
    // only the fixed environment: the image's PATH/LANG, the engine's HOSTNAME/HOME, the seeds
    expect(out.env).toEqual(['BITFLOW_SEED', 'HOME', 'HOSTNAME', 'LANG', 'PATH', 'PYTHONHASHSEED'])
    expect(r.outputs.map(o => o.path).sort()).toEqual(['result.json', 'sub/matrix.npy'])
    expect(JSON.parse(readFileSync(join(outputDir, 'result.json'), 'utf8'))).toEqual(out)
    expect(statSync(join(outputDir, 'sub', 'matrix.npy')).size).toBe(r.outputs.find(o => o.path === 'sub/matrix.npy')!.bytes)
    expect(r.skippedOutputs).toEqual([])
    expect(r.outputFull).toBe(false)
    expect(r.resources.memoryBytes).toBe(1024 * 1024 * 1024)
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('is deterministic: two runs with the same seed agree, another seed differs', async () => {
    const jobs = ['11', '11', '12'].map(seed => pyJob(fx, `det-${seed}`, NORMAL, { seed }))
    const before = await hostState(fx)
    const [a, b, c] = await Promise.all(jobs.map(async j => await fx.runner.run(j))) as [SandboxResult, SandboxResult, SandboxResult]
    expect(a.status).toBe('succeeded')
    expect(a.stdout.toString()).toBe(b.stdout.toString())
    const pa = JSON.parse(a.stdout.toString()) as { checksum: string, draw: number, hash: number }
    const pc = JSON.parse(c.stdout.toString()) as { checksum: string, draw: number, hash: number }
    expect(pc.checksum).not.toBe(pa.checksum)
    expect(pc.draw).not.toBe(pa.draw)
    expect(pc.hash).toBe(pa.hash)
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('reports a failing task\'s exit code and stderr', async () => {
    const r = await fx.runner.run(pyJob(fx, 'fails', 'import sys\nprint("bad input", file=sys.stderr)\nsys.exit(3)\n'))
    expect(r.status).toBe('failed')
    expect(r.exitCode).toBe(3)
    expect(r.stderr.toString()).toBe('bad input\n')
  })

  it('runs at most `slots` tasks at once', async () => {
    let current = 0
    let max = 0
    const jobs = [0, 1, 2, 3].map(i => pyJob(fx, `slot-${i}`, 'import time\ntime.sleep(0.7)\n'))
    const before = await hostState(fx)
    const results = await Promise.all(jobs.map(async job => {
      let started = false
      const r = await fx.runner.run(job, { onEvent: e => { if (e.type === 'started') { started = true; current++; max = Math.max(max, current) } } })
      if (started) current--
      return r
    }))
    expect(results.map(r => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded'])
    expect(max).toBeLessThanOrEqual(2)
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('aborting a run kills and removes its container', async () => {
    const job = pyJob(fx, 'abort', 'import sys\nprint("up", flush=True)\nwhile True: pass\n')
    const before = await hostState(fx)
    const ac = new AbortController()
    const run = fx.runner.run(job, {
      signal: ac.signal,
      onStdout: () => { ac.abort(new Error('caller gave up')) }
    })
    await expect(run).rejects.toBeInstanceOf(SandboxAbortedError)
    await expect(run).rejects.toThrow(/caller gave up/)
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('refuses a task dir that uid 65534 cannot read, naming the fix', async () => {
    const dir = mkdtempSync(join(fx.scratch, 'private-')) // mode 0700
    await expect(fx.runner.run({ id: 'private', taskDir: dir, command: ['python3', '-c', 'pass'], seed: '1' }))
      .rejects.toThrow(SandboxJobError)
    await expect(fx.runner.run({ id: 'private', taskDir: dir, command: ['python3', '-c', 'pass'], seed: '1' }))
      .rejects.toThrow(/chmod o\+rx/)
    expect(readdirSync(fx.runner.ownerDir).filter(n => n !== 'etc')).toEqual([])
  })

  it('start() removes containers and mounted run dirs that an earlier runner of the same owner left behind', async () => {
    const owner = `${fx.owner}-stale`
    const docker = fx.docker
    const leftover = await docker.createContainer({ Image: fx.runner.image, Cmd: ['true'], Labels: { [LABEL_ROLE]: 'task', [LABEL_OWNER]: owner }, HostConfig: { NetworkMode: 'none' } })
    const other = await docker.createContainer({ Image: fx.runner.image, Cmd: ['true'], Labels: { [LABEL_ROLE]: 'task', [LABEL_OWNER]: `${owner}-other` }, HostConfig: { NetworkMode: 'none' } })
    const staleDir = join(fx.runner.config.workDir, owner, 'deadbeefdeadbeef')
    await mountOutputTmpfs(join(staleDir, 'out'), 1024 * 1024, 16)
    const runner = new SandboxRunner({ config: { owner } })
    try {
      await runner.start()
      await expect(docker.getContainer(leftover.id).inspect()).rejects.toMatchObject({ statusCode: 404 })
      expect((await docker.getContainer(other.id).inspect()).Id).toBe(other.id) // another owner's container is left alone
      expect(await mountsUnder(join(fx.runner.config.workDir, owner))).toEqual([])
      expect(readdirSync(runner.ownerDir)).toEqual(['etc'])
    } finally {
      await runner.stop()
      await docker.getContainer(other.id).remove({ force: true })
      await docker.getContainer(leftover.id).remove({ force: true }).catch(() => {})
      rmSync(runner.ownerDir, { recursive: true, force: true })
    }
  })

  it('names `npm run setup` when the runtime image is missing', async () => {
    const runner = new SandboxRunner({ config: { owner: `${fx.owner}-noimage`, imageRecord: join(fx.outputs, 'no-such-record.json') } })
    await expect(runner.start()).rejects.toBeInstanceOf(ImageUnavailableError)
    await expect(runner.start()).rejects.toThrow(/run: npm run setup/)
    const bogus = new SandboxRunner({ config: { owner: `${fx.owner}-noimage`, image: `sha256:${'0'.repeat(64)}` } })
    await expect(bogus.start()).rejects.toThrow(/is not in the engine.*npm run setup/)
  })

  it('the image carries the BitFlow Python SDK when sandbox/python has it', async () => {
    const record = await readImageRecord(fx.runner.config.imageRecord)
    if (record.sdkHash === 'none') return // built before the SDK existed; the next setup adds it
    const r = await fx.runner.run(pyJob(fx, 'sdk', 'import bitflow_sdk, os\nprint(os.path.dirname(bitflow_sdk.__file__))\n'))
    expect(r.stderr.toString()).toBe('')
    expect(r.stdout.toString()).toBe('/usr/lib/python3/dist-packages/bitflow_sdk\n')
  })

  it('gives the task private namespaces (network with only lo, IPC with its own /dev/shm) where multiprocessing works', async () => {
    const code = `
import json, multiprocessing as mp, os
with mp.Pool(2) as p:
    squares = p.starmap(pow, [(2, 2), (3, 2)])
ifaces = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:])
print(json.dumps({"squares": squares, "ifaces": ifaces, "ns": {n: os.readlink("/proc/self/ns/" + n) for n in ("net", "ipc", "pid", "uts", "mnt", "cgroup")}}))
`
    const job = pyJob(fx, 'namespaces', code)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    const out = JSON.parse(r.stdout.toString()) as { squares: number[], ifaces: string[], ns: Record<string, string> }
    expect(out.squares).toEqual([4, 9])
    expect(out.ifaces).toEqual(['lo'])
    for (const [name, link] of Object.entries(out.ns)) expect({ name, same: link === readlinkSync(`/proc/self/ns/${name}`) }).toEqual({ name, same: false })
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })
})
