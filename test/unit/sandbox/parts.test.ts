import { describe, expect, it } from 'vitest'
import { GiB, MiB, parseByteSize, resolveSandboxConfig } from '../../../sandbox/config.js'
import { EngineUnavailableError, SandboxConfigError, SandboxNotRunningError } from '../../../sandbox/errors.js'
import { SandboxRunner } from '../../../sandbox/runner.js'
import { Semaphore } from '../../../sandbox/semaphore.js'
import { CappedBuffer, StreamDemuxer } from '../../../sandbox/streams.js'

function frame (type: number, payload: string): Buffer {
  const body = Buffer.from(payload)
  const head = Buffer.alloc(8)
  head[0] = type
  head.writeUInt32BE(body.length, 4)
  return Buffer.concat([head, body])
}

describe('sandbox config', () => {
  it('defaults to 1 GiB per task, 64 pids, 2 slots', () => {
    const c = resolveSandboxConfig()
    expect(c.memory).toEqual({ defaultBytes: GiB, maxBytes: GiB })
    expect(c.pidsLimit).toBe(64)
    expect(c.slots).toBe(2)
    expect(c.gpus.count).toBe(0)
  })

  it('names invalid and unknown options', () => {
    expect(() => resolveSandboxConfig({ pidsLimit: 1000 })).toThrow(/'pidsLimit'/)
    expect(() => resolveSandboxConfig({ slots: 0 })).toThrow(SandboxConfigError)
    expect(() => resolveSandboxConfig({ owner: 'has space' })).toThrow(/'owner'/)
    expect(() => resolveSandboxConfig({ bogus: 1 } as never)).toThrow(/unknown sandbox option 'bogus'/)
    expect(() => resolveSandboxConfig({ memory: { defaultBytes: 2 * GiB } })).toThrow(/exceeds 'memory.maxBytes'/)
  })

  it('parses manifest sizes', () => {
    expect(parseByteSize('512Mi')).toBe(512 * MiB)
    expect(parseByteSize('1GiB')).toBe(GiB)
    expect(parseByteSize('2GB')).toBe(2e9)
    expect(parseByteSize('1.5g')).toBe(1.5e9)
    expect(parseByteSize(1024)).toBe(1024)
    expect(() => parseByteSize('lots')).toThrow(/invalid size 'lots'/)
  })
})

describe('stream demultiplexing with caps', () => {
  it('splits stdout and stderr frames across arbitrary chunk boundaries', () => {
    const out = new CappedBuffer(100)
    const err = new CappedBuffer(100)
    const d = new StreamDemuxer({ stdout: out, stderr: err })
    const all = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, 'world')])
    for (let i = 0; i < all.length; i += 3) d.write(all.subarray(i, i + 3))
    expect(out.bytes.toString()).toBe('hello world')
    expect(err.bytes.toString()).toBe('oops')
  })

  it('keeps the first `cap` bytes, counts the rest, forwards only kept bytes', () => {
    const seen: string[] = []
    const out = new CappedBuffer(8, c => seen.push(c.toString()))
    const d = new StreamDemuxer({ stdout: out, stderr: new CappedBuffer(8) })
    d.write(frame(1, 'abcdef'))
    d.write(frame(1, 'ghijkl'))
    d.write(frame(1, 'mnop'))
    expect(out.bytes.toString()).toBe('abcdefgh')
    expect(out.total).toBe(16)
    expect(out.truncated).toBe(true)
    expect(seen).toEqual(['abcdef', 'gh'])
  })
})

describe('semaphore', () => {
  it('bounds concurrency and hands slots over in order', async () => {
    const s = new Semaphore(2)
    const r1 = await s.acquire()
    await s.acquire()
    expect(s.inUse).toBe(2)
    const order: number[] = []
    const w3 = s.acquire().then(r => { order.push(3); return r })
    const w4 = s.acquire().then(r => { order.push(4); return r })
    expect(s.waiting).toBe(2)
    r1()
    r1() // releasing twice is harmless
    await w3
    expect(order).toEqual([3])
    expect(s.inUse).toBe(2)
    ;(await w3)()
    await w4
    expect(order).toEqual([3, 4])
  })

  it('an aborted waiter leaves the queue', async () => {
    const s = new Semaphore(1)
    const release = await s.acquire()
    const ac = new AbortController()
    const waiting = s.acquire(ac.signal)
    ac.abort(new Error('gave up'))
    await expect(waiting).rejects.toThrow('gave up')
    expect(s.waiting).toBe(0)
    release()
    expect(s.inUse).toBe(0)
  })
})

describe('SandboxRunner without an engine', () => {
  it('start() fails with a clear error naming `npm run setup`', async () => {
    const runner = new SandboxRunner({ config: { socketPath: '/nonexistent/bitflow-docker.sock' } })
    await expect(runner.start()).rejects.toBeInstanceOf(EngineUnavailableError)
    await expect(runner.start()).rejects.toThrow(/no Docker engine answers on \/nonexistent\/bitflow-docker.sock.*run: npm run setup/)
  })

  it('run() before start() says to start it', async () => {
    const runner = new SandboxRunner()
    await expect(runner.run({ id: 'x', taskDir: '/tmp', command: ['true'], seed: '1' })).rejects.toBeInstanceOf(SandboxNotRunningError)
  })
})
