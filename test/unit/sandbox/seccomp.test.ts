import { describe, expect, it } from 'vitest'
import { ALLOWED_SYSCALLS, buildSeccompProfile, CLONE_NAMESPACE_FLAGS, DENIED_SYSCALLS, seccompSecurityOpt } from '../../../sandbox/seccomp.js'

describe('seccomp profile', () => {
  const profile = buildSeccompProfile('x64')
  const allowed = new Set(profile.syscalls.filter(r => r.action === 'SCMP_ACT_ALLOW').flatMap(r => r.names))

  it('is an allow-list: everything else fails with EPERM, native architecture only', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO')
    expect(profile.defaultErrnoRet).toBe(1)
    expect(profile.architectures).toEqual(['SCMP_ARCH_X86_64'])
    expect(buildSeccompProfile('arm64').architectures).toEqual(['SCMP_ARCH_AARCH64'])
    expect(() => buildSeccompProfile('mips')).toThrow(/no seccomp profile/)
  })

  it('allows socket() and socketpair() only for AF_UNIX', () => {
    const rules = profile.syscalls.filter(r => r.names.includes('socket') || r.names.includes('socketpair'))
    expect(rules).toEqual([{ names: ['socket', 'socketpair'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }], comment: 'AF_UNIX only' }])
    expect(ALLOWED_SYSCALLS).not.toContain('socket')
    expect(ALLOWED_SYSCALLS).not.toContain('socketcall')
  })

  it('allows clone() only without namespace flags, and sends clone3 to ENOSYS', () => {
    expect(profile.syscalls.find(r => r.names.includes('clone'))).toMatchObject({ action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] })
    expect(CLONE_NAMESPACE_FLAGS).toBe(0x7e020000)
    expect(profile.syscalls.find(r => r.names.includes('clone3'))).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 })
  })

  it('never allows the dangerous calls', () => {
    for (const name of ['io_uring_setup', 'io_uring_enter', 'io_uring_register', 'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'chroot',
      'bpf', 'ptrace', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'userfaultfd', 'init_module', 'finit_module',
      'delete_module', 'kexec_load', 'kexec_file_load', 'open_by_handle_at', 'process_vm_readv', 'process_vm_writev', 'fsopen', 'move_mount']) {
      expect(allowed.has(name), name).toBe(false)
      expect(DENIED_SYSCALLS, name).toContain(name)
    }
    for (const name of DENIED_SYSCALLS) expect(allowed.has(name), name).toBe(false)
  })

  it('lists each allowed syscall once', () => {
    expect(new Set(ALLOWED_SYSCALLS).size).toBe(ALLOWED_SYSCALLS.length)
  })

  it('is passed inline to the engine', () => {
    const opt = seccompSecurityOpt(profile)
    expect(opt.startsWith('seccomp=')).toBe(true)
    expect(JSON.parse(opt.slice('seccomp='.length))).toEqual(profile)
  })
})
