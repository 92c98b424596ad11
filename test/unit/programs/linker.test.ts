import { beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LiteSVM } from 'litesvm'
import { Keypair, Transaction, TransactionInstruction } from '@solana/web3.js'
import {
  DT_REL, DT_RELENT, DT_RELSZ, DT_SYMTAB, DT_STRTAB, EM_BPF, ET_DYN, LinkError, R_BPF_64_32, R_BPF_64_RELATIVE,
  SHF_ALLOC, SHT_DYNAMIC, SHT_DYNSYM, SHT_REL, STT_FUNC, STT_NOTYPE, link, readElf, readRels, readSymbols,
  sectionByName, type ElfFile, type Section
} from '../../../programs/linker/link.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const SO = join(root, 'programs', 'settlement', 'build', 'bitflow_settlement.so')
const CFLAGS = ['-target', 'bpfel', '-mcpu=v2', '-O2', '-ffreestanding', '-fno-builtin', '-g0', '-Wall', '-Werror']
const tmp = mkdtempSync(join(tmpdir(), 'bitflow-linker-'))

/** Compiles C source to a BPF object with the program's compiler and flags. */
function compile (name: string, source: string): { name: string, bytes: Uint8Array } {
  const c = join(tmp, `${name}.c`)
  const o = join(tmp, `${name}.o`)
  writeFileSync(c, source)
  execFileSync('clang-19', [...CFLAGS, '-c', c, '-o', o])
  return { name: `${name}.o`, bytes: readFileSync(o) }
}

function section (elf: ElfFile, name: string): Section {
  const s = sectionByName(elf, name)
  if (s === undefined) throw new Error(`no section ${name}`)
  return s
}

function dynamicTable (elf: ElfFile): Map<number, bigint> {
  const d = elf.sections.find(s => s.type === SHT_DYNAMIC)!
  const v = new DataView(elf.bytes.buffer, elf.bytes.byteOffset)
  const out = new Map<number, bigint>()
  for (let o = d.offset; o < d.offset + d.size; o += 16) {
    const tag = Number(v.getBigUint64(o, true))
    if (tag === 0) break
    out.set(tag, v.getBigUint64(o + 8, true))
  }
  return out
}

/** Runs an SBPF program once in LiteSVM and returns its log lines. */
function run (so: Uint8Array): string[] {
  const svm = new LiteSVM()
  const programId = Keypair.generate().publicKey
  svm.addProgram(programId.toBase58() as never, so)
  const payer = Keypair.generate()
  svm.airdrop(payer.publicKey.toBase58() as never, 1_000_000_000n as never)
  const tx = new Transaction().add(new TransactionInstruction({ programId, keys: [], data: Buffer.alloc(0) }))
  tx.recentBlockhash = svm.latestBlockhash()
  tx.feePayer = payer.publicKey
  tx.sign(payer)
  const result = svm.sendTransaction({ messageBytes: tx.serializeMessage(), signatures: { [payer.publicKey.toBase58()]: tx.signature! } } as never)
  return 'logs' in result ? result.logs() : result.meta().logs()
}

let so: Uint8Array
let elf: ElfFile
beforeAll(() => {
  execFileSync('sh', [join(root, 'scripts', 'build-program.sh'), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] })
  so = readFileSync(SO)
  elf = readElf(so)
})

describe('linker output: the settlement program .so', () => {
  it('has an SBPFv0 header: ELF64 LE, EM_BPF, ET_DYN, flags 0, entry in .text', () => {
    expect([...so.subarray(0, 8)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])
    expect(elf.machine).toBe(EM_BPF)
    expect(elf.type).toBe(ET_DYN)
    expect(elf.flags).toBe(0)
    const text = section(elf, '.text')
    expect(elf.entry >= text.addr && elf.entry < text.addr + BigInt(text.size)).toBe(true)
    expect((elf.entry - text.addr) % 8n).toBe(0n)
    expect(elf.sections[elf.shstrndx]!.name).toBe('.shstrtab')
  })

  it('places every allocated section at address == file offset, in ascending order, without overlap', () => {
    expect(elf.sections.map(s => s.name)).toEqual(['', '.text', '.rodata', '.dynamic', '.dynsym', '.dynstr', '.rel.dyn', '.shstrtab'])
    let end = 64 + elf.phnum * 56
    for (const s of elf.sections.slice(1)) {
      if ((s.flags & BigInt(SHF_ALLOC)) !== 0n) expect(s.addr).toBe(BigInt(s.offset))
      expect(s.offset).toBeGreaterThanOrEqual(end)
      end = s.offset + s.size
    }
    expect(elf.shoff).toBeGreaterThanOrEqual(end)
    expect(elf.shoff % 8).toBe(0)
    for (const name of ['.text', '.dynamic', '.dynsym', '.rel.dyn']) expect(section(elf, name).offset % 8).toBe(0)
    // no writable data the loader would reject
    expect(elf.sections.some(s => s.name.startsWith('.data') || s.name.startsWith('.bss'))).toBe(false)
  })

  it('has a dynamic table pointing at .rel.dyn, .dynsym and .dynstr', () => {
    const dyn = dynamicTable(elf)
    const rel = section(elf, '.rel.dyn')
    expect(rel.type).toBe(SHT_REL)
    expect(dyn.get(DT_REL)).toBe(rel.addr)
    expect(dyn.get(DT_RELSZ)).toBe(BigInt(rel.size))
    expect(dyn.get(DT_RELENT)).toBe(16n)
    expect(dyn.get(DT_SYMTAB)).toBe(section(elf, '.dynsym').addr)
    expect(dyn.get(DT_STRTAB)).toBe(section(elf, '.dynstr').addr)
  })

  it('exports the entrypoint and imports the syscalls as undefined dynamic symbols', () => {
    const dynsym = section(elf, '.dynsym')
    expect(dynsym.type).toBe(SHT_DYNSYM)
    const syms = readSymbols(elf, dynsym)
    expect(syms[0]!.name).toBe('')
    const entry = syms.find(s => s.name === 'entrypoint')!
    expect(entry.type).toBe(STT_FUNC)
    expect(entry.value).toBe(elf.entry)
    const imports = syms.filter(s => s.shndx === 0 && s.name !== '')
    for (const s of imports) expect(s.type).toBe(STT_NOTYPE)
    expect(imports.map(s => s.name)).toEqual(expect.arrayContaining(['sol_log_', 'sol_invoke_signed_c', 'sol_memcpy_', 'sol_try_find_program_address', 'sol_get_clock_sysvar']))
  })

  it('relocates syscalls as R_BPF_64_32 on call -1 and data addresses as R_BPF_64_RELATIVE on lddw', () => {
    const rels = readRels(elf, section(elf, '.rel.dyn'))
    const syms = readSymbols(elf, section(elf, '.dynsym'))
    const text = section(elf, '.text')
    const rodata = section(elf, '.rodata')
    const v = new DataView(so.buffer, so.byteOffset)
    expect(rels.filter(r => r.type === R_BPF_64_32).length).toBeGreaterThan(0)
    expect(rels.filter(r => r.type === R_BPF_64_RELATIVE).length).toBeGreaterThan(0)
    const relocatedCalls = new Set<number>()
    for (const r of rels) {
      const at = Number(r.offset)
      expect(at >= text.offset && at < text.offset + text.size).toBe(true)
      if (r.type === R_BPF_64_32) {
        expect(so[at]).toBe(0x85) // call
        expect(v.getInt32(at + 4, true)).toBe(-1)
        expect(syms[r.sym]!.shndx).toBe(0)
        relocatedCalls.add(at)
      } else {
        expect(r.type).toBe(R_BPF_64_RELATIVE)
        expect(r.sym).toBe(0)
        expect(so[at]).toBe(0x18) // lddw
        const target = v.getUint32(at + 4, true) + v.getUint32(at + 12, true) * 2 ** 32
        const inRodata = target >= rodata.offset && target <= rodata.offset + rodata.size
        const inText = target >= text.offset && target < text.offset + text.size
        expect(inRodata || inText).toBe(true)
      }
    }
    // every other call is a resolved, in-range pc-relative call
    for (let at = text.offset; at < text.offset + text.size; at += 8) {
      if (so[at] === 0x18) { at += 8; continue }
      if (so[at] !== 0x85 || relocatedCalls.has(at)) continue
      const target = (at - text.offset) / 8 + 1 + v.getInt32(at + 4, true)
      expect(target >= 0 && target < text.size / 8).toBe(true)
    }
  })

  it('is read without complaint by an independent ELF reader (bpf-readelf)', () => {
    const out = execFileSync('bpf-readelf', ['-h', '-S', '-d', '-r', '--dyn-syms', '-W', SO], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    expect(out).toContain('DYN (Shared object file)')
    expect(out).toContain('sol_invoke_signed_c')
    expect(out.toLowerCase()).not.toContain('warning')
  })

  it('is reproducible: a forced rebuild gives the same bytes, and a second build is a no-op', () => {
    execFileSync('sh', [join(root, 'scripts', 'build-program.sh'), '--quiet', '--force'])
    expect(Buffer.compare(readFileSync(SO), so)).toBe(0)
    const again = execFileSync('sh', [join(root, 'scripts', 'build-program.sh')], { encoding: 'utf8' })
    expect(again).toMatch(/up to date/)
  })
})

describe('linker', () => {
  const a = `
    typedef unsigned long long u64;
    void sol_log_(const char *, u64);
    u64 helper(u64 i);
    static const char tag[] = "alpha";
    u64 entrypoint(const unsigned char *input) {
      (void)input;
      sol_log_(tag, sizeof tag - 1);
      return helper(1);
    }`
  const b = `
    typedef unsigned long long u64;
    void sol_log_(const char *, u64);
    static const char first[] = "beta";
    static const char *const names[2] = { "gamma", "delta" };
    u64 helper(u64 i) {
      sol_log_(first, sizeof first - 1);
      sol_log_("epsilon", 7);
      sol_log_(names[i & 1], 5);
      return 0;
    }`

  it('merges read-only data of several objects so each object reads its own constants and strings', () => {
    const out = link([compile('a', a), compile('b', b)])
    expect(out.syscalls).toEqual(['sol_log_'])
    expect(out.relocations.localCalls).toBe(1)
    const logs = run(out.bytes).filter(l => l.startsWith('Program log: ')).map(l => l.slice('Program log: '.length))
    expect(logs).toEqual(['alpha', 'beta', 'epsilon', 'delta'])
  })

  it('gives the same bytes for the same objects', () => {
    const objs = [compile('a', a), compile('b', b)]
    expect(Buffer.compare(link(objs).bytes, link(objs.map(o => ({ ...o, bytes: Uint8Array.from(o.bytes) }))).bytes)).toBe(0)
  })

  it('refuses writable globals, unknown external functions and a missing entrypoint', () => {
    const writable = compile('w', 'int counter = 1; int entrypoint(void) { return counter++; }')
    expect(() => link([writable])).toThrowError(/writable section \.data/)
    const unknown = compile('u', 'void printf(const char *); int entrypoint(void) { printf("x"); return 0; }')
    expect(() => link([unknown])).toThrowError(/undefined symbol 'printf'/)
    const noEntry = compile('n', 'int main(void) { return 0; }')
    expect(() => link([noEntry])).toThrowError(LinkError)
    expect(() => link([compile('a', a), compile('a2', a.replace('alpha', 'other'))])).toThrowError(/defined in both/)
  })
})
