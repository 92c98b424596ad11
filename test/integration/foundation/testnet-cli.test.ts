import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../../../daemon/paths.js'
import { processAlive } from '../../../daemon/datadir.js'
import type { TestnetFile } from '../../../scripts/lib/testnet.js'
import { tempDir, cleanup, eventually, cleanEnv } from '../../helpers/daemon.js'

const SCRIPT = join(projectRoot(), 'dist', 'scripts', 'testnet.js')
const dir = tempDir('testnet-cli')
const pids: number[] = []

afterAll(() => { cleanup(pids, [dir]) })

async function run (args: string[]): Promise<{ code: number | null, out: string }> {
  const child = spawn(process.execPath, [SCRIPT, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, out }
}

describe('npm run testnet', () => {
  it('up, status and down work from the command line', async () => {
    const net = join(dir, 'a')
    const up = await run(['--dir', net, 'up', '--oracles', '1', '--nodes', '1', '--validators', '1', '--log-level', 'warn'])
    expect(up.code, up.out).toBe(0)
    const file = JSON.parse(readFileSync(join(net, 'testnet.json'), 'utf8')) as TestnetFile
    pids.push(...file.daemons.map(d => d.pid))
    expect(file.daemons.map(d => d.role)).toEqual(['oracle', 'node', 'validator'])
    const again = await run(['--dir', net, 'up', '--oracles', '1', '--nodes', '0', '--validators', '0'])
    expect(again.code).toBe(1)
    expect(again.out).toMatch(/already running/)
    const status = await run(['--dir', net, 'status'])
    expect(status.code).toBe(0)
    expect(status.out.match(/running/g)).toHaveLength(3)
    const down = await run(['--dir', net, 'down'])
    expect(down.code).toBe(0)
    expect(down.out).toMatch(/stopped 3 daemons/)
    for (const d of file.daemons) expect(processAlive(d.pid)).toBe(false)
    // data and logs are kept
    for (const d of file.daemons) {
      expect(existsSync(d.log)).toBe(true)
      expect(existsSync(join(d.dataDir, 'identity.json'))).toBe(true)
    }
  })

  it('without a verb it stays in the foreground and stops the daemons on SIGINT', async () => {
    const net = join(dir, 'b')
    const child = spawn(process.execPath, [SCRIPT, '--dir', net, '--oracles', '1', '--nodes', '1', '--validators', '0', '--log-level', 'warn'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    pids.push(child.pid!)
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    child.stderr.on('data', d => { out += String(d) })
    const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
    await eventually('the foreground test net to be up', async () => out.includes('Ctrl-C stops it') ? true : undefined, 60_000)
    const file = JSON.parse(readFileSync(join(net, 'testnet.json'), 'utf8')) as TestnetFile
    pids.push(...file.daemons.map(d => d.pid))
    expect(child.exitCode).toBeNull()
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    for (const d of file.daemons) expect(processAlive(d.pid)).toBe(false)
  })
})
