/**
 * Escape attempts on the real engine: sockets of every family but AF_UNIX, dangerous syscalls issued
 * raw through ctypes, writes outside /tmp and /out, links planted in /out, reads of host paths,
 * privilege gain. Each is refused inside the container, reported, and leaves the host unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { cleanHost, hostState, outputDir, pyJob, startFixture, type Fixture } from './helpers.js'

let fx: Fixture
beforeAll(async () => { fx = await startFixture({ slots: 2 }) })
afterAll(async () => { await fx?.cleanup() })

const EPERM = 1
const ENOSYS = 38

/** syscall numbers by architecture */
const NR: Record<string, Record<string, number>> = {
  x64: {
    socket: 41, socketpair: 53, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, unshare: 272, mount: 165, umount2: 166,
    bpf: 321, ptrace: 101, keyctl: 250, add_key: 248, request_key: 249, perf_event_open: 298, userfaultfd: 323,
    init_module: 175, finit_module: 313, delete_module: 176, kexec_load: 246, kexec_file_load: 320, pivot_root: 155, chroot: 161,
    setns: 308, clone: 56, clone3: 435, open_by_handle_at: 304, process_vm_readv: 310, fsopen: 430
  },
  arm64: {
    socket: 198, socketpair: 199, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, unshare: 97, mount: 40, umount2: 39,
    bpf: 280, ptrace: 117, keyctl: 219, add_key: 217, request_key: 218, perf_event_open: 241, userfaultfd: 282,
    init_module: 105, finit_module: 273, delete_module: 106, kexec_load: 104, kexec_file_load: 294, pivot_root: 41, chroot: 51,
    setns: 268, clone: 220, clone3: 435, open_by_handle_at: 265, process_vm_readv: 270, fsopen: 430
  }
}

const PRELUDE = `
import ctypes, json, os
NR = json.loads('${JSON.stringify(NR[process.arch] ?? NR.x64)}')
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sys_(name, *args):
    conv = []
    for a in args:
        if isinstance(a, int): conv.append(ctypes.c_long(a))
        elif isinstance(a, bytes): conv.append(ctypes.c_char_p(a))
        else: conv.append(a)
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *conv)
    e = ctypes.get_errno()
    if r >= 0 and name in ("clone", "clone3"):
        if r == 0: os._exit(0)            # a child must never get here; leave quietly if it did
    elif r >= 0 and name not in ("clone", "clone3"):
        try: os.close(r)
        except OSError: pass
    return [r, e]
`

describe('sandbox: escape attempts', () => {
  it('refuses sockets of every family but AF_UNIX (AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK, ...)', async () => {
    const code = PRELUDE + `
import socket
raw = {}
for fam in range(0, 46):
    for typ in (1, 2, 3, 5):
        raw[f"{fam}/{typ}"] = sys_("socket", fam, typ, 0)
pair = {fam: sys_("socketpair", fam, 1, 0, ctypes.byref((ctypes.c_int * 2)())) for fam in (2, 10, 16, 40)}
named = {}
for name, fam, typ in [("AF_INET", socket.AF_INET, socket.SOCK_STREAM), ("AF_INET6", socket.AF_INET6, socket.SOCK_DGRAM),
                       ("AF_NETLINK", socket.AF_NETLINK, socket.SOCK_RAW), ("AF_PACKET", socket.AF_PACKET, socket.SOCK_RAW),
                       ("AF_VSOCK", socket.AF_VSOCK, socket.SOCK_STREAM)]:
    try:
        socket.socket(fam, typ).close()
        named[name] = "created"
    except OSError as e:
        named[name] = e.errno
a, b = socket.socketpair(socket.AF_UNIX)
a.sendall(b"ping"); unix = b.recv(4).decode()
print(json.dumps({"raw": raw, "pair": pair, "named": named, "unix": unix}))
`
    const job = pyJob(fx, 'sockets', code)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    expect(r.status).toBe('succeeded')
    const out = JSON.parse(r.stdout.toString()) as { raw: Record<string, [number, number]>, pair: Record<string, [number, number]>, named: Record<string, unknown>, unix: string }
    expect(out.named).toEqual({ AF_INET: EPERM, AF_INET6: EPERM, AF_NETLINK: EPERM, AF_PACKET: EPERM, AF_VSOCK: EPERM })
    for (const [key, [ret, errno]] of Object.entries(out.raw)) {
      if (key.startsWith('1/')) continue // AF_UNIX is allowed (some types unsupported by the kernel)
      expect({ key, ret, errno }).toEqual({ key, ret: -1, errno: EPERM })
    }
    expect(out.raw['1/1']![0]).toBeGreaterThanOrEqual(0)
    for (const [fam, [ret, errno]] of Object.entries(out.pair)) expect({ fam, ret, errno }).toEqual({ fam, ret: -1, errno: EPERM })
    expect(out.unix).toBe('ping')
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('refuses io_uring, unshare, mount, bpf, ptrace and other dangerous syscalls issued raw via ctypes', async () => {
    const code = PRELUDE + `
params = ctypes.create_string_buffer(120)
perf_attr = ctypes.create_string_buffer(128)
clone_args = ctypes.create_string_buffer(88)
res = {
  "io_uring_setup": sys_("io_uring_setup", 8, ctypes.byref(params)),
  "io_uring_enter": sys_("io_uring_enter", 0, 1, 0, 0, 0, 0),
  "io_uring_register": sys_("io_uring_register", 0, 0, 0, 0),
  "unshare(NEWUSER)": sys_("unshare", 0x10000000),
  "unshare(NEWNET)": sys_("unshare", 0x40000000),
  "mount": sys_("mount", b"none", b"/tmp", b"tmpfs", 0, None),
  "umount2": sys_("umount2", b"/task", 2),
  "bpf": sys_("bpf", 5, None, 0),
  "ptrace": sys_("ptrace", 0, 0, 0, 0),
  "keyctl": sys_("keyctl", 0, -3, 0),
  "add_key": sys_("add_key", b"user", b"k", b"v", 1, -3),
  "request_key": sys_("request_key", b"user", b"k", None, 0),
  "perf_event_open": sys_("perf_event_open", ctypes.byref(perf_attr), 0, -1, -1, 0),
  "userfaultfd": sys_("userfaultfd", 0),
  "init_module": sys_("init_module", None, 0, b""),
  "finit_module": sys_("finit_module", 0, b"", 0),
  "delete_module": sys_("delete_module", b"x", 0),
  "kexec_load": sys_("kexec_load", 0, 0, None, 0),
  "kexec_file_load": sys_("kexec_file_load", 0, 0, 0, None, 0),
  "pivot_root": sys_("pivot_root", b"/tmp", b"/tmp"),
  "chroot": sys_("chroot", b"/tmp"),
  "setns": sys_("setns", 0, 0),
  "clone(NEWUSER)": sys_("clone", 0x10000000 | 17, 0, 0, 0, 0),
  "clone(NEWNS)": sys_("clone", 0x00020000 | 17, 0, 0, 0, 0),
  "open_by_handle_at": sys_("open_by_handle_at", 0, None, 0),
  "process_vm_readv": sys_("process_vm_readv", 1, None, 0, None, 0, 0),
  "fsopen": sys_("fsopen", b"tmpfs", 0),
  "clone3": sys_("clone3", ctypes.byref(clone_args), 88),
}
print(json.dumps(res))
`
    const job = pyJob(fx, 'syscalls', code)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    expect(r.status).toBe('succeeded')
    const out = JSON.parse(r.stdout.toString()) as Record<string, [number, number]>
    expect(Object.keys(out)).toHaveLength(28)
    for (const [name, [ret, errno]] of Object.entries(out)) {
      // clone3 answers ENOSYS so that glibc falls back to clone(), whose flags the filter checks
      expect({ name, ret, errno }).toEqual({ name, ret: -1, errno: name === 'clone3' ? ENOSYS : EPERM })
    }
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('refuses writes outside /tmp, /out and /dev/shm, and execution from them', async () => {
    const code = `
import json, os, stat
res = {}
for path in ["/x", "/etc/passwd", "/etc/new", "/usr/lib/x", "/bin/python3", "/task/main.py", "/task/new", "/in/x",
             "/var/tmp/x", "/root/x", "/home/x", "/dev/x", "/proc/sys/kernel/hostname", "/sys/fs/cgroup/x", "/run/x"]:
    try:
        with open(path, "a") as f:
            f.write("pwned")
        res[path] = "written"
    except OSError as e:
        res[path] = e.errno
for d in ["/tmp", "/out", "/dev/shm"]:
    p = d + "/script.sh"
    with open(p, "w") as f:
        f.write("#!/bin/sh\\necho ran\\n")
    os.chmod(p, 0o755)
    res[d] = "written"
    try:
        os.execv(p, [p])
    except OSError as e:
        res[d + " exec"] = e.errno
print(json.dumps(res))
`
    const job = pyJob(fx, 'writes', code)
    // world-writable on the host: only the read-only mount stands between the task and its code
    chmodSync(job.taskDir, 0o777)
    chmodSync(join(job.taskDir, 'main.py'), 0o666)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    const out = JSON.parse(r.stdout.toString()) as Record<string, unknown>
    for (const [path, v] of Object.entries(out)) {
      if (['/tmp', '/out', '/dev/shm'].includes(path)) expect(v).toBe('written') // private, size-capped tmpfs
      else if (path.endsWith(' exec')) expect({ path, v }).toEqual({ path, v: 13 }) // EACCES: noexec
      else expect({ path, refused: typeof v === 'number' && [2, 13, 30].includes(v) }).toEqual({ path, refused: true }) // ENOENT, EACCES, EROFS
    }
    expect(out['/task/main.py']).toBe(30) // EROFS: task code is mounted read-only
    expect(out['/task/new']).toBe(30)
    expect(out['/var/tmp/x']).toBe(30) // world-writable in the image: only the read-only root refuses it
    expect(await hostState(fx)).toEqual(cleanHost(before)) // the task dir on the host is untouched
  })

  it('does not follow a symlink or copy a hardlink (or fifo) planted in /out', async () => {
    const code = `
import os
with open("/out/ok.txt", "w") as f: f.write("fine")
os.symlink(${JSON.stringify(fx.secretPath)}, "/out/secret-link")
os.symlink("/etc/passwd", "/out/passwd-link")
os.symlink("/", "/out/rootdir")
os.mkdir("/out/d")
os.symlink(${JSON.stringify(fx.scratch)}, "/out/d/scratch-link")
with open("/out/data.txt", "w") as f: f.write("data")
os.link("/out/data.txt", "/out/hard.txt")
os.mkfifo("/out/fifo")
with open("/out/suid.bin", "w") as f: f.write("x")
os.chmod("/out/suid.bin", 0o6755)
try:
    os.link("/task/main.py", "/out/task-main")
except OSError as e:
    print("cross-device link", e.errno)
`
    const dest = outputDir(fx)
    const job = pyJob(fx, 'links', code, { outputDir: dest })
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    expect(r.status).toBe('succeeded')
    expect(r.stdout.toString()).toBe('cross-device link 18\n') // EXDEV: /out cannot link to anything outside it
    expect(r.outputs.map(o => o.path).sort()).toEqual(['ok.txt', 'suid.bin'])
    expect([...r.skippedOutputs].sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'd/scratch-link', reason: 'symlink' },
      { path: 'data.txt', reason: 'hardlink' },
      { path: 'fifo', reason: 'special' },
      { path: 'hard.txt', reason: 'hardlink' },
      { path: 'passwd-link', reason: 'symlink' },
      { path: 'rootdir', reason: 'symlink' },
      { path: 'secret-link', reason: 'symlink' }
    ])
    expect(r.events.filter(e => e.type === 'output-skipped')).toHaveLength(7)
    expect(readdirSync(dest).sort()).toEqual(['d', 'ok.txt', 'suid.bin'])
    expect(readdirSync(join(dest, 'd'))).toEqual([])
    expect(readFileSync(join(dest, 'ok.txt'), 'utf8')).toBe('fine')
    expect(statSync(join(dest, 'suid.bin')).mode & 0o7777).toBe(0o644) // no setuid/setgid carried out
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('cannot read host paths: the host file system, the engine socket, devices', async () => {
    const code = `
import json, os, stat
res = {}
for path in [${JSON.stringify(fx.secretPath)}, ${JSON.stringify(fx.scratch)}, "/proc/1/root" + ${JSON.stringify(fx.secretPath)},
             "/run/bitflow-docker/docker.sock", "/var/run/docker.sock", "/var/lib/bitflow-docker", "/var/lib/bitflow-sandbox",
             "/etc/shadow", "/root", "/proc/kcore", "/proc/sysrq-trigger", "/sys/kernel/debug", "/dev/vda", "/dev/mem", "/host"]:
    try:
        if os.path.isdir(path):
            res[path] = ["listed", os.listdir(path)]
        else:
            with open(path, "rb") as f:
                res[path] = ["read", f.read(64).decode("latin-1")]
    except OSError as e:
        res[path] = e.errno
devs = sorted(n for n in os.listdir("/dev") if stat.S_ISBLK(os.lstat("/dev/" + n).st_mode))
print(json.dumps({"paths": res, "block_devices": devs}))
`
    const job = pyJob(fx, 'hostread', code)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    expect(r.stdout.toString()).not.toContain(fx.secret)
    const out = JSON.parse(r.stdout.toString()) as { paths: Record<string, unknown>, block_devices: string[] }
    for (const [path, v] of Object.entries(out.paths)) {
      const refused = typeof v === 'number' || (Array.isArray(v) && v[0] === 'listed' && (v[1] as unknown[]).length === 0)
      expect({ path, v, refused }).toEqual({ path, v, refused: true })
    }
    expect(out.block_devices).toEqual([])
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })

  it('cannot gain privileges: setuid/setgid fail, no capabilities, setuid binaries do not elevate', async () => {
    const code = `
import json, os, subprocess
res = {}
for name, f in [("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)), ("seteuid", lambda: os.seteuid(0)),
                ("setresuid", lambda: os.setresuid(0, 0, 0)), ("setgroups", lambda: os.setgroups([0]))]:
    try:
        f(); res[name] = "ok"
    except OSError as e:
        res[name] = e.errno
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
res["caps"] = [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
res["nnp"] = status["NoNewPrivs"].strip()
res["seccomp"] = status["Seccomp"].strip()
suid = []
for d in ("/bin", "/usr/bin", "/sbin", "/usr/sbin"):
    for n in os.listdir(d):
        p = os.path.join(d, n)
        if os.path.isfile(p) and os.stat(p).st_mode & 0o4000 and os.stat(p).st_uid == 0:
            suid.append(p)
res["suid_found"] = len(suid)
res["suid_euid"] = []
for p in suid:
    if os.path.basename(p) == "su":
        out = subprocess.run([p, "-s", "/bin/sh", "-c", "id -u", "root"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=10)
        res["suid_euid"].append([p, out.returncode, out.stdout.strip()])
print(json.dumps(res))
`
    const job = pyJob(fx, 'setuid', code)
    const before = await hostState(fx)
    const r = await fx.runner.run(job)
    expect(r.stderr.toString()).toBe('')
    const out = JSON.parse(r.stdout.toString()) as Record<string, unknown>
    expect(out).toMatchObject({ setuid: EPERM, setgid: EPERM, seteuid: EPERM, setresuid: EPERM, setgroups: EPERM })
    expect(out.caps).toEqual(Array(5).fill('0000000000000000'))
    expect(out.nnp).toBe('1')
    expect(out.seccomp).toBe('2')
    for (const [path, code, stdout] of out.suid_euid as Array<[string, number, string]>) {
      expect({ path, code: code !== 0, stdout }).toEqual({ path, code: true, stdout: '' })
    }
    expect(await hostState(fx)).toEqual(cleanHost(before))
  })
})
