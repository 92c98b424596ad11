import { describe, it, expect, afterAll } from 'vitest'
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Keypair } from '@solana/web3.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { processAlive } from '../../../daemon/datadir.js'
import { tempDir, runCli, spawnDaemon, cleanup, childPids, type SpawnedDaemon } from '../../helpers/daemon.js'

const dir = tempDir('cli')
const genesisFile = join(dir, 'genesis.json')
writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
const spawned: SpawnedDaemon[] = []

afterAll(() => { cleanup(spawned.map(d => d.pid), [dir]) })

describe('bitflowd command line', () => {
  it('--version and --help exit 0', async () => {
    const v = await runCli(['--version'])
    expect(v.code).toBe(0)
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    const h = await runCli(['--help'])
    expect(h.code).toBe(0)
    for (const flag of ['--role', '--network', '--data-dir', '--config', '--listen', '--bootstrap', '--rpc-port', '--metrics-port', '--solana-rpc', '--log-level', '--announce']) {
      expect(h.stdout).toContain(flag)
    }
  })

  it('unknown and invalid options exit 2 with a message naming the option', async () => {
    for (const [args, name] of [
      [['--bogus'], '--bogus'],
      [['--rpc-port', 'http'], '--rpc-port'],
      [['--role', 'miner'], "'miner'"],
      [['--log-level', 'loud'], '--log-level'],
      [['--network', 'moon', '--data-dir', join(dir, 'x')], "'moon'"]
    ] as const) {
      const r = await runCli([...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(name)
    }
    const env = await runCli(['config', 'show'], { BITFLOW_RPC_PROT: '1' })
    expect(env.code).toBe(2)
    expect(env.stderr).toContain('BITFLOW_RPC_PROT')
    const cfg = join(dir, 'bad.yaml')
    writeFileSync(cfg, 'rpc:\n  prot: 1\n')
    const file = await runCli(['config', 'show', '--config', cfg])
    expect(file.code).toBe(2)
    expect(file.stderr).toMatch(/unknown option 'rpc\.prot'.*line 2/)
  })

  it('layers config file, environment and flags end to end', async () => {
    const cfg = join(dir, 'layers.yaml')
    writeFileSync(cfg, 'roles: [oracle]\nrpc:\n  port: 7001\nsolanaRpc: http://from-file\nlogLevel: debug\n')
    const r = await runCli(['config', 'show', '--config', cfg, '--role', 'oracle,validator'], { BITFLOW_RPC_PORT: '7002', BITFLOW_LOG_LEVEL: 'warn' })
    expect(r.code).toBe(0)
    const o = JSON.parse(r.stdout)
    expect(o.roles).toEqual(['oracle', 'validator'])
    expect(o.rpc.port).toBe(7002)
    expect(o.logLevel).toBe('warn')
    expect(o.solanaRpc).toBe('http://from-file')
    expect(o.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
  })

  it('init writes an identity that is both a Solana keypair and a libp2p PeerId', async () => {
    const dataDir = join(dir, 'init')
    const r = await runCli(['init', '--data-dir', dataDir, '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    const keyFile = join(dataDir, 'identity.json')
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const keypair = Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(keyFile, 'utf8'))))
    const peerId = peerIdFromString(out.peerId)
    expect(keypair.publicKey.toBase58()).toBe(out.solanaAddress)
    expect(Buffer.from(peerId.publicKey!.raw).equals(keypair.publicKey.toBuffer())).toBe(true)
    expect(readFileSync(join(dataDir, 'config.yaml'), 'utf8')).toMatch(/^# bitflowd configuration/)
    expect(JSON.parse(readFileSync(join(dataDir, 'DATADIR.json'), 'utf8')).format).toBe(1)
    // a second init keeps the identity
    const again = JSON.parse((await runCli(['init', '--data-dir', dataDir, '--json'])).stdout)
    expect(again.peerId).toBe(out.peerId)
    expect(again.createdIdentity).toBe(false)
  })

  it('init imports a key made elsewhere (solana-keygen format)', async () => {
    const keypair = Keypair.generate()
    const keyFile = join(dir, 'imported.json')
    writeFileSync(keyFile, JSON.stringify([...keypair.secretKey]))
    const r = await runCli(['init', '--data-dir', join(dir, 'imported'), '--import-key', keyFile, '--json'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).solanaAddress).toBe(keypair.publicKey.toBase58())
  })

  it('refuses an identity file other users can read', async () => {
    const dataDir = join(dir, 'loose')
    await runCli(['init', '--data-dir', dataDir])
    const { chmodSync } = await import('node:fs')
    chmodSync(join(dataDir, 'identity.json'), 0o644)
    const r = await runCli(['keys', 'show', '--data-dir', dataDir])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/chmod 600/)
  })
})

describe('bitflowd process', () => {
  it('a second daemon on a locked data dir fails cleanly; offline commands still work beside it', async () => {
    const dataDir = join(dir, 'locked')
    const first = await spawnDaemon(dataDir, ['--genesis-file', genesisFile])
    spawned.push(first)
    const second = await runCli(['--data-dir', dataDir, '--genesis-file', genesisFile, '--rpc-port', '0', '--metrics-port', '0'])
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(`in use by another bitflowd (pid ${first.pid})`)
    // the first is untouched: still answering, its runtime files still there
    expect((await first.client.nodeInfo()).peerId).toBe(first.runtime.peerId)
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(true)
    const keys = await runCli(['keys', 'show', '--data-dir', dataDir, '--json'])
    expect(keys.code).toBe(0)
    expect(JSON.parse(keys.stdout).peerId).toBe(first.runtime.peerId)
    const stopped = await first.stop()
    expect(stopped.code).toBe(0)
  })

  it('SIGTERM stops a daemon within 5 s, releases the lock and leaves no child processes', async () => {
    const dataDir = join(dir, 'term')
    const d = await spawnDaemon(dataDir, ['--genesis-file', genesisFile])
    spawned.push(d)
    expect(childPids(d.pid)).toEqual([])
    const { code, ms } = await d.stop()
    expect(code).toBe(0)
    expect(ms).toBeLessThan(5000)
    expect(processAlive(d.pid)).toBe(false)
    expect(existsSync(join(dataDir, 'bitflowd.lock'))).toBe(false)
    expect(existsSync(join(dataDir, 'rpc.cookie'))).toBe(false)
    // the lock is free again
    const again = await spawnDaemon(dataDir, ['--genesis-file', genesisFile])
    spawned.push(again)
    expect(again.runtime.peerId).toBe(d.runtime.peerId)
    expect((await again.stop()).code).toBe(0)
  })

  it('a stale lock left by a killed daemon is taken over', async () => {
    const dataDir = join(dir, 'stale')
    const d = await spawnDaemon(dataDir, ['--genesis-file', genesisFile])
    spawned.push(d)
    d.child.kill('SIGKILL')
    await new Promise(resolve => d.child.once('exit', resolve))
    expect(existsSync(join(dataDir, 'bitflowd.lock'))).toBe(true)
    const again = await spawnDaemon(dataDir, ['--genesis-file', genesisFile])
    spawned.push(again)
    expect((await again.stop()).code).toBe(0)
  })

  it('refuses to start without a genesis on a network that has none', async () => {
    const r = await runCli(['--data-dir', join(dir, 'nogenesis'), '--rpc-port', '0', '--metrics-port', '0'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/--genesis-file/)
  })
})
