import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { cpSync, linkSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { packDirectory, checkRelativePath, listingText } from '../../../protocols/taskpack/pack.js'
import { PackError } from '../../../protocols/taskpack/errors.js'

const tmp = mkdtempSync(join(tmpdir(), 'bitflow-pack-'))
let n = 0
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

function tree (files: Record<string, string | Uint8Array>): string {
  const dir = join(tmp, `t${n++}`)
  mkdirSync(dir)
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true })
    writeFileSync(join(dir, rel), content)
  }
  return dir
}

const FILES = {
  'manifest.yaml': 'apiVersion: v1\n',
  'src/task.py': 'print("hi")\n',
  'src/util/helpers.py': '# helpers\n',
  'configs/default.yaml': 'a: 1\n',
  'tests/samples/big.bin': new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff)
}

async function packError (dir: string): Promise<PackError> {
  try {
    await packDirectory(dir)
  } catch (err) {
    expect(err).toBeInstanceOf(PackError)
    return err as PackError
  }
  throw new Error('packed')
}

describe('taskpack packing', () => {
  let first: Awaited<ReturnType<typeof packDirectory>>
  beforeAll(async () => { first = await packDirectory(tree(FILES)) })

  it('gives a CIDv1 in base32 for a UnixFS directory', () => {
    expect(first.cidString).toMatch(/^bafy[a-z2-7]+$/)
    const cid = CID.parse(first.cidString)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x70) // dag-pb: a UnixFS directory
    expect(first.checksum).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(first.entries.map(e => e.path)).toEqual(['configs', 'configs/default.yaml', 'manifest.yaml', 'src', 'src/task.py', 'src/util', 'src/util/helpers.py', 'tests', 'tests/samples', 'tests/samples/big.bin'])
  })

  it('is deterministic: same content, same CID, whatever the timestamps, modes or location', async () => {
    const again = await packDirectory(tree(FILES))
    expect(again.cidString).toBe(first.cidString)
    expect(again.checksum).toBe(first.checksum)
    const copy = join(tmp, 'copied')
    cpSync(tree(FILES), copy, { recursive: true })
    execFileSync('touch', ['-d', '2001-01-01', join(copy, 'src/task.py')])
    execFileSync('chmod', ['755', join(copy, 'src/task.py')])
    // caches that running the tests creates do not change the CID
    mkdirSync(join(copy, 'src/__pycache__'))
    writeFileSync(join(copy, 'src/__pycache__/task.cpython-311.pyc'), 'x')
    const copied = await packDirectory(copy)
    expect(copied.cidString).toBe(first.cidString)
    expect(copied.checksum).toBe(first.checksum)
  })

  it('changes with any byte, name or empty directory', async () => {
    expect((await packDirectory(tree({ ...FILES, 'src/task.py': 'print("hi!")\n' }))).cidString).not.toBe(first.cidString)
    expect((await packDirectory(tree({ ...FILES, 'src/Task.py': FILES['src/task.py'] }))).cidString).not.toBe(first.cidString)
    const withEmpty = tree(FILES)
    mkdirSync(join(withEmpty, 'empty'))
    expect((await packDirectory(withEmpty)).cidString).not.toBe(first.cidString)
  })

  it('writes the blocks to a caller-supplied blockstore', async () => {
    const bs = new MemoryBlockstore()
    const r = await packDirectory(tree(FILES), { blockstore: bs })
    expect(r.cidString).toBe(first.cidString)
    expect(await bs.has(r.cid)).toBe(true)
    let blocks = 0
    for await (const _ of bs.getAll()) blocks++
    expect(blocks).toBeGreaterThan(5) // the 3 MiB file alone is 4 raw leaves and a root
  })

  it('canonical listing covers paths, sizes and hashes', () => {
    expect(listingText(first.entries)).toMatch(/^bitflow-taskpack-listing\/1\nd configs\nf configs\/default\.yaml 5 [0-9a-f]{64}\n/)
  })

  it('refuses symlinks that escape, dangle or point at directories', async () => {
    const outside = tree({ 'secret.txt': 'key' })
    const a = tree(FILES)
    symlinkSync(join(outside, 'secret.txt'), join(a, 'src/leak.txt'))
    const e = await packError(a)
    expect(e.code).toBe('ERR_PACK_LINK')
    expect(e.message).toMatch(/src\/leak\.txt is a symlink to '.*secret\.txt', outside the taskpack/)

    const b = tree(FILES)
    symlinkSync('../../etc/passwd', join(b, 'src/passwd'))
    expect((await packError(b)).message).toMatch(/src\/passwd is a symlink to '..\/..\/etc\/passwd'/)

    const c = tree(FILES)
    symlinkSync('nowhere', join(c, 'dangling'))
    expect((await packError(c)).message).toMatch(/dangling is a symlink to 'nowhere', which does not exist/)

    const d = tree(FILES)
    symlinkSync('src', join(d, 'loop'))
    expect((await packError(d)).message).toMatch(/loop is a symlink to the directory 'src'/)
  })

  it('stores a symlink to a file inside the pack as that file', async () => {
    const a = tree(FILES)
    symlinkSync('task.py', join(a, 'src/main.py'))
    const b = tree({ ...FILES, 'src/main.py': FILES['src/task.py'] })
    const [ra, rb] = [await packDirectory(a), await packDirectory(b)]
    expect(ra.cidString).toBe(rb.cidString)
    expect(ra.entries.find(e => e.path === 'src/main.py')?.resolvedFrom).toBe('src/task.py')
  })

  it('refuses hard links shared with files outside the pack, accepts ones inside', async () => {
    const outside = tree({ 'secret.txt': 'key' })
    const a = tree(FILES)
    linkSync(join(outside, 'secret.txt'), join(a, 'stolen.txt'))
    const e = await packError(a)
    expect(e.code).toBe('ERR_PACK_LINK')
    expect(e.message).toMatch(/stolen\.txt is a hard link shared with 1 file\(s\) outside the taskpack/)
    const b = tree(FILES)
    linkSync(join(b, 'src/task.py'), join(b, 'src/same.py'))
    await expect(packDirectory(b)).resolves.toBeDefined()
  })

  it('refuses FIFOs and other special files', async () => {
    const a = tree(FILES)
    execFileSync('mkfifo', [join(a, 'pipe')])
    const e = await packError(a)
    expect(e.code).toBe('ERR_PACK_SPECIAL_FILE')
    expect(e.message).toMatch(/pipe is a FIFO/)
  })

  it('refuses oversize packs and files', async () => {
    const a = tree(FILES)
    await expect(packDirectory(a, { limits: { maxTotalBytes: 1024 * 1024 } })).rejects.toThrow(/taskpack is over 1048576 bytes/)
    await expect(packDirectory(a, { limits: { maxFileBytes: 1000 } })).rejects.toThrow(/tests\/samples\/big\.bin is \d+ bytes; the limit per file is 1000/)
    await expect(packDirectory(a, { limits: { maxEntries: 3 } })).rejects.toThrow(/more than 3 files/)
    await expect(packDirectory(a, { limits: { maxDepth: 1 } })).rejects.toThrow(/nested deeper than 1/)
  })

  it('refuses odd names and a missing or empty directory', async () => {
    await expect(packDirectory(tree({ 'a\\b.txt': 'x' }))).rejects.toThrow(/contains a control character, a slash, a backslash/)
    await expect(packDirectory(tree({ 'a\nb.txt': 'x' }))).rejects.toThrow(PackError)
    await expect(packDirectory(join(tmp, 'missing'))).rejects.toThrow(/cannot open taskpack directory/)
    await expect(packDirectory(tree({}))).rejects.toThrow(/holds no files/)
  })

  it('checks untrusted relative paths (tar entries, unpacked listings) for traversal', () => {
    expect(checkRelativePath('src/task.py')).toEqual(['src', 'task.py'])
    expect(() => checkRelativePath('../etc/passwd')).toThrow(/climbs out of the taskpack/)
    expect(() => checkRelativePath('src/../../x')).toThrow(/climbs out/)
    expect(() => checkRelativePath('/etc/passwd')).toThrow(/absolute path/)
    expect(() => checkRelativePath('C:/x')).toThrow(/absolute path/)
    expect(() => checkRelativePath('a//b')).toThrow(/not an allowed file name/)
    expect(() => checkRelativePath('a/./b')).toThrow(/not an allowed file name/)
  })
})

