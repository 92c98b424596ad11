import { describe, it, expect } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveOptions } from '../../daemon/options.js'
import { OptionError } from '../../daemon/errors.js'

const tmp = mkdtempSync(join(tmpdir(), 'bitflow-options-'))

function config (text: string): string {
  const p = join(tmp, `c${Math.random().toString(16).slice(2)}.yaml`)
  writeFileSync(p, text)
  return p
}

describe('options layering: defaults <- preset <- config file <- env <- flags', () => {
  it('takes built-in defaults, then the network preset', () => {
    const { options } = resolveOptions({ flags: {}, env: {} })
    expect(options.network).toBe('local')
    expect(options.roles).toEqual(['node'])
    expect(options.rpc.port).toBe(8645) // built-in default
    expect(options.listen).toEqual(['/ip4/127.0.0.1/tcp/0']) // local preset overrides the default
    expect(options.connections.maxInboundPerSecondPerIp).toBe(1000) // from the preset
    expect(options.connections.maxConnections).toBe(300) // default survives a partial preset section
  })

  it('config file beats preset, env beats config, flags beat env', () => {
    const file = config('roles: [oracle]\nrpc:\n  port: 7000\nlogLevel: debug\nsolanaRpc: http://file\n')
    const env = { BITFLOW_RPC_PORT: '7100', BITFLOW_SOLANA_RPC: 'http://env' }
    const { options } = resolveOptions({ flags: { solanaRpc: 'http://flag' }, env, configPath: file })
    expect(options.roles).toEqual(['oracle'])
    expect(options.logLevel).toBe('debug')
    expect(options.rpc.port).toBe(7100)
    expect(options.rpc.host).toBe('127.0.0.1')
    expect(options.solanaRpc).toBe('http://flag')
  })

  it('BITFLOW_CONFIG names the config file', () => {
    const file = config('roles: [validator]\n')
    const { options, configPath } = resolveOptions({ flags: {}, env: { BITFLOW_CONFIG: file } })
    expect(options.roles).toEqual(['validator'])
    expect(configPath).toBe(file)
  })

  it('the network chosen in a higher layer picks the preset', () => {
    const { options, preset } = resolveOptions({ flags: { network: 'devnet' }, env: {} })
    expect(preset.network).toBe('devnet')
    expect(options.listen).toEqual(['/ip4/0.0.0.0/tcp/4645'])
    expect(options.dataDir.endsWith(join('.bitflow', 'devnet'))).toBe(true)
  })

  it('names an unknown config key and its line', () => {
    const file = config('roles: [node]\nrpc:\n  port: 1\n  bogus: 2\n')
    expect(() => resolveOptions({ flags: {}, env: {}, configPath: file })).toThrowError(/unknown option 'rpc.bogus'.*line 4/)
  })

  it('names an invalid config value', () => {
    const file = config('rpc:\n  port: 99999\n')
    expect(() => resolveOptions({ flags: {}, env: {}, configPath: file })).toThrowError(/option 'rpc.port'.*line 2/)
  })

  it('rejects unknown and invalid environment variables by name', () => {
    expect(() => resolveOptions({ flags: {}, env: { BITFLOW_RPC_PROT: '1' } })).toThrowError(OptionError)
    expect(() => resolveOptions({ flags: {}, env: { BITFLOW_RPC_PROT: '1' } })).toThrowError(/BITFLOW_RPC_PROT/)
    expect(() => resolveOptions({ flags: {}, env: { BITFLOW_ROLE: 'miner' } })).toThrowError(/invalid role 'miner' in BITFLOW_ROLE/)
  })

  it('refuses an unknown network with the list of known ones', () => {
    expect(() => resolveOptions({ flags: { network: 'moon' }, env: {} })).toThrowError(/unknown network 'moon'.*devnet, local, mainnet/)
  })
})
