/**
 * A small linker for Solana programs written in C: it turns relocatable BPF objects (clang-19
 * `-target bpfel -mcpu=v2`) into one SBPFv0 shared object that the Solana loader accepts.
 *
 * It merges the objects itself. `bpf-ld -r` (binutils 2.40) cannot be used for that: when it merges
 * `.rodata` or `.rodata.str1.1` of several objects it moves their contents but leaves the addends of
 * section-relative `lddw` relocations (REL: the addend lives in the instruction) unchanged, so every
 * object after the first reads the wrong constants and strings.
 *
 * What the SBPFv0 loader wants, and what this file therefore produces:
 * - ELF64 little-endian, `e_machine` EM_BPF (247), `ET_DYN`, `e_flags` 0 (SBPFv0);
 * - exactly one `.text`, whose address equals its file offset, and one `.rodata` (every read-only
 *   data section of the input merged), also at address == offset, placed right after `.text` so the
 *   loader can map both without copying;
 * - no writable data (`.data`, `.bss`): a global that the program writes cannot exist in SBPFv0;
 * - `.dynamic`, `.dynsym`, `.dynstr` and `.rel.dyn`: addresses of read-only data are left as
 *   `R_BPF_64_RELATIVE` relocations (the loader adds the program's base address), and calls to
 *   undefined symbols (syscalls such as `sol_log_`) stay `R_BPF_64_32` relocations against undefined
 *   dynamic symbols, which the loader resolves by the murmur3 hash of the name;
 * - calls between the program's own functions are resolved here to pc-relative offsets.
 *
 * The same input always gives the same bytes: nothing depends on time, paths or map iteration order.
 *
 * This file is self-contained (only node: imports) so that `node` can run it directly with
 * type stripping: `node programs/linker/link.ts out.so a.o [b.o …]`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { basename } from 'node:path'

// ---- ELF constants -------------------------------------------------------------------------------

export const EM_BPF = 247
export const ET_REL = 1
export const ET_DYN = 3
export const SHT_NULL = 0
export const SHT_PROGBITS = 1
export const SHT_SYMTAB = 2
export const SHT_STRTAB = 3
export const SHT_RELA = 4
export const SHT_DYNAMIC = 6
export const SHT_NOBITS = 8
export const SHT_REL = 9
export const SHT_DYNSYM = 11
export const SHF_WRITE = 0x1
export const SHF_ALLOC = 0x2
export const SHF_EXECINSTR = 0x4
export const PT_LOAD = 1
export const PT_DYNAMIC = 2
export const PF_X = 1
export const PF_W = 2
export const PF_R = 4
export const STB_LOCAL = 0
export const STB_GLOBAL = 1
export const STT_NOTYPE = 0
export const STT_OBJECT = 1
export const STT_FUNC = 2
export const STT_SECTION = 3
export const SHN_UNDEF = 0
export const SHN_ABS = 0xfff1
export const SHN_COMMON = 0xfff2
export const DT_NULL = 0
export const DT_STRTAB = 5
export const DT_SYMTAB = 6
export const DT_STRSZ = 10
export const DT_SYMENT = 11
export const DT_REL = 17
export const DT_RELSZ = 18
export const DT_RELENT = 19
export const DT_TEXTREL = 22
export const DT_FLAGS = 30
export const DF_TEXTREL = 0x4
export const DT_RELCOUNT = 0x6ffffffa

/** BPF relocation types (LLVM numbering; binutils prints them as R_BPF_INSN_64, R_BPF_INSN_DISP32 …). */
export const R_BPF_NONE = 0
export const R_BPF_64_64 = 1
export const R_BPF_64_ABS64 = 2
export const R_BPF_64_ABS32 = 3
export const R_BPF_64_NODYLD32 = 4
export const R_BPF_64_RELATIVE = 8
export const R_BPF_64_32 = 10

export const EHDR_SIZE = 64
export const PHDR_SIZE = 56
export const SHDR_SIZE = 64
export const SYM_SIZE = 24
export const REL_SIZE = 16
export const DYN_SIZE = 16
const INSN_SIZE = 8
const OP_LDDW = 0x18
const OP_CALL = 0x85

/**
 * Syscalls the Solana runtime registers for SBPFv0 programs. A call to any other undefined symbol is
 * a link error here rather than an `UnresolvedSymbol` when the program is deployed.
 */
export const KNOWN_SYSCALLS: readonly string[] = [
  'abort', 'sol_panic_', 'sol_log_', 'sol_log_64_', 'sol_log_compute_units_', 'sol_log_pubkey',
  'sol_log_data', 'sol_create_program_address', 'sol_try_find_program_address', 'sol_sha256',
  'sol_keccak256', 'sol_blake3', 'sol_secp256k1_recover', 'sol_get_clock_sysvar',
  'sol_get_epoch_schedule_sysvar', 'sol_get_fees_sysvar', 'sol_get_rent_sysvar',
  'sol_get_last_restart_slot', 'sol_get_epoch_rewards_sysvar', 'sol_get_sysvar', 'sol_memcpy_',
  'sol_memmove_', 'sol_memcmp_', 'sol_memset_', 'sol_invoke_signed_c', 'sol_invoke_signed_rust',
  'sol_set_return_data', 'sol_get_return_data', 'sol_get_stack_height',
  'sol_get_processed_sibling_instruction', 'sol_curve_validate_point', 'sol_curve_group_op',
  'sol_curve_multiscalar_mul', 'sol_alt_bn128_group_op', 'sol_alt_bn128_compression', 'sol_big_mod_exp',
  'sol_poseidon', 'sol_remaining_compute_units', 'sol_get_epoch_stake'
]

/** Section names the SBPFv0 loader reads as at most 16 bytes, symbol names as at most 64. */
const MAX_SECTION_NAME = 16
const MAX_SYMBOL_NAME = 64

export class LinkError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'LinkError'
  }
}

// ---- reading a relocatable object ----------------------------------------------------------------

export interface Section {
  index: number
  name: string
  type: number
  flags: bigint
  addr: bigint
  offset: number
  size: number
  link: number
  info: number
  align: number
  entsize: number
}

export interface ElfSymbol {
  index: number
  name: string
  info: number
  bind: number
  type: number
  shndx: number
  value: bigint
  size: bigint
}

export interface ElfRel {
  offset: bigint
  type: number
  sym: number
}

export interface ElfFile {
  bytes: Uint8Array
  type: number
  machine: number
  entry: bigint
  flags: number
  phoff: number
  phnum: number
  shoff: number
  shnum: number
  shstrndx: number
  sections: Section[]
}

function view (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function cString (bytes: Uint8Array, start: number, max: number): string {
  let end = start
  while (end < bytes.length && end - start < max && bytes[end] !== 0) end++
  return new TextDecoder().decode(bytes.subarray(start, end))
}

/** Parses the ELF64 little-endian header and section table of any ELF file (object or .so). */
export function readElf (bytes: Uint8Array): ElfFile {
  if (bytes.length < EHDR_SIZE || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new LinkError('not an ELF file')
  }
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new LinkError('not an ELF64 little-endian file')
  const v = view(bytes)
  const file: ElfFile = {
    bytes,
    type: v.getUint16(16, true),
    machine: v.getUint16(18, true),
    entry: v.getBigUint64(24, true),
    phoff: Number(v.getBigUint64(32, true)),
    shoff: Number(v.getBigUint64(40, true)),
    flags: v.getUint32(48, true),
    phnum: v.getUint16(56, true),
    shnum: v.getUint16(60, true),
    shstrndx: v.getUint16(62, true),
    sections: []
  }
  if (file.shoff + file.shnum * SHDR_SIZE > bytes.length) throw new LinkError('section header table out of bounds')
  const raw: Array<Omit<Section, 'name'> & { nameOff: number }> = []
  for (let i = 0; i < file.shnum; i++) {
    const o = file.shoff + i * SHDR_SIZE
    const s = {
      index: i,
      nameOff: v.getUint32(o, true),
      type: v.getUint32(o + 4, true),
      flags: v.getBigUint64(o + 8, true),
      addr: v.getBigUint64(o + 16, true),
      offset: Number(v.getBigUint64(o + 24, true)),
      size: Number(v.getBigUint64(o + 32, true)),
      link: v.getUint32(o + 40, true),
      info: v.getUint32(o + 44, true),
      align: Number(v.getBigUint64(o + 48, true)),
      entsize: Number(v.getBigUint64(o + 56, true))
    }
    if (s.type !== SHT_NOBITS && s.offset + s.size > bytes.length) throw new LinkError(`section ${i} out of bounds`)
    raw.push(s)
  }
  const strtab = raw[file.shstrndx]
  if (strtab === undefined) throw new LinkError('no section name string table')
  file.sections = raw.map(({ nameOff, ...s }) => ({ ...s, name: cString(bytes, strtab.offset + nameOff, 256) }))
  return file
}

export function sectionData (file: ElfFile, s: Section): Uint8Array {
  return s.type === SHT_NOBITS ? new Uint8Array(0) : file.bytes.subarray(s.offset, s.offset + s.size)
}

export function readSymbols (file: ElfFile, symtab: Section): ElfSymbol[] {
  const strtab = file.sections[symtab.link]
  if (strtab === undefined) throw new LinkError(`symbol table ${symtab.name} has no string table`)
  const v = view(file.bytes)
  const out: ElfSymbol[] = []
  for (let i = 0; i < symtab.size / SYM_SIZE; i++) {
    const o = symtab.offset + i * SYM_SIZE
    const info = v.getUint8(o + 4)
    out.push({
      index: i,
      name: cString(file.bytes, strtab.offset + v.getUint32(o, true), 1024),
      info,
      bind: info >> 4,
      type: info & 0xf,
      shndx: v.getUint16(o + 6, true),
      value: v.getBigUint64(o + 8, true),
      size: v.getBigUint64(o + 16, true)
    })
  }
  return out
}

export function readRels (file: ElfFile, rel: Section): ElfRel[] {
  const v = view(file.bytes)
  const out: ElfRel[] = []
  for (let i = 0; i < rel.size / REL_SIZE; i++) {
    const o = rel.offset + i * REL_SIZE
    const info = v.getBigUint64(o + 8, true)
    out.push({ offset: v.getBigUint64(o, true), type: Number(info & 0xffffffffn), sym: Number(info >> 32n) })
  }
  return out
}

export function sectionByName (file: ElfFile, name: string): Section | undefined {
  return file.sections.find(s => s.name === name)
}

// ---- linking -------------------------------------------------------------------------------------

export interface LinkOptions {
  /** name of the entry function; default `entrypoint` */
  entry?: string
  /** undefined symbols allowed as syscalls; default KNOWN_SYSCALLS */
  syscalls?: readonly string[]
}

export interface LinkResult {
  bytes: Uint8Array
  /** undefined symbols the program calls, resolved by the loader */
  syscalls: string[]
  textSize: number
  rodataSize: number
  relocations: { relative: number, syscall: number, localCalls: number }
}

interface Placement { out: 'text' | 'rodata', at: number }

interface Input { name: string, elf: ElfFile, symbols: ElfSymbol[], placement: Map<number, Placement> }

const align = (n: number, a: number): number => a <= 1 ? n : Math.ceil(n / a) * a

function isWritableData (s: Section): boolean {
  return (s.flags & BigInt(SHF_ALLOC)) !== 0n && (s.flags & BigInt(SHF_WRITE)) !== 0n && !s.name.startsWith('.data.rel.ro')
}

/**
 * Links relocatable BPF objects into an SBPFv0 shared object. Objects are laid out in the order
 * given; pass them in a fixed order (e.g. sorted by name) for reproducible output.
 */
export function link (objects: Uint8Array | Array<Uint8Array | { name: string, bytes: Uint8Array }>, options: LinkOptions = {}): LinkResult {
  const entryName = options.entry ?? 'entrypoint'
  const allowedSyscalls = new Set(options.syscalls ?? KNOWN_SYSCALLS)
  const list = objects instanceof Uint8Array ? [objects] : objects
  if (list.length === 0) throw new LinkError('no input objects')
  const inputs: Input[] = list.map((o, i) => {
    const { name, bytes } = o instanceof Uint8Array ? { name: `object #${i}`, bytes: o } : o
    let elf: ElfFile
    try { elf = readElf(bytes) } catch (err) { throw new LinkError(`${name}: ${(err as Error).message}`) }
    if (elf.type !== ET_REL) throw new LinkError(`${name}: must be a relocatable object (ET_REL), got e_type ${elf.type}`)
    if (elf.machine !== EM_BPF) throw new LinkError(`${name}: must be a BPF object (e_machine ${EM_BPF}), got ${elf.machine}`)
    if (elf.sections.some(s => s.type === SHT_RELA)) throw new LinkError(`${name}: RELA relocation sections are not supported (clang emits REL for BPF)`)
    const symtab = elf.sections.find(s => s.type === SHT_SYMTAB)
    if (symtab === undefined) throw new LinkError(`${name}: no symbol table`)
    return { name, elf, symbols: readSymbols(elf, symtab), placement: new Map() }
  })

  // 1. Place input sections into the two output sections.
  const textParts: Array<{ input: Input, s: Section }> = []
  const rodataParts: Array<{ input: Input, s: Section }> = []
  for (const input of inputs) {
    for (const s of input.elf.sections) {
      if ((s.flags & BigInt(SHF_ALLOC)) === 0n || s.size === 0) continue
      if (isWritableData(s)) {
        throw new LinkError(`${input.name}: writable section ${s.name} (${s.size} bytes): SBPFv0 programs cannot have writable globals; make the data const or keep it on the stack`)
      }
      if (s.type === SHT_NOBITS) throw new LinkError(`${input.name}: zero-initialized section ${s.name} is not supported`)
      if ((s.flags & BigInt(SHF_EXECINSTR)) !== 0n) textParts.push({ input, s })
      else rodataParts.push({ input, s })
    }
  }
  if (textParts.length === 0) throw new LinkError('input has no code')
  let textSize = 0
  for (const { input, s } of textParts) {
    textSize = align(textSize, Math.max(INSN_SIZE, s.align))
    input.placement.set(s.index, { out: 'text', at: textSize })
    textSize += s.size
  }
  let rodataSize = 0
  let rodataAlign = 8
  for (const { input, s } of rodataParts) {
    rodataSize = align(rodataSize, s.align)
    rodataAlign = Math.max(rodataAlign, s.align)
    input.placement.set(s.index, { out: 'rodata', at: rodataSize })
    rodataSize += s.size
  }

  // 2. File layout: header, program headers, .text, .rodata, .dynamic, .dynsym, .dynstr, .rel.dyn,
  //    .shstrtab, section headers. Every allocated section has address == file offset.
  const phnum = 3
  const textOff = align(EHDR_SIZE + phnum * PHDR_SIZE, 8)
  const rodataOff = align(textOff + textSize, rodataAlign)
  const text = new Uint8Array(textSize)
  const rodata = new Uint8Array(rodataSize)
  for (const { input, s } of textParts) text.set(sectionData(input.elf, s), input.placement.get(s.index)!.at)
  for (const { input, s } of rodataParts) rodata.set(sectionData(input.elf, s), input.placement.get(s.index)!.at)
  const textView = view(text)
  const rodataView = view(rodata)
  const addrOf = (p: Placement): number => (p.out === 'text' ? textOff : rodataOff) + p.at

  // 3. Symbols: global definitions are shared between objects, locals stay in their object.
  const globals = new Map<string, { input: Input, sym: ElfSymbol }>()
  for (const input of inputs) {
    for (const sym of input.symbols) {
      if (sym.bind === STB_LOCAL || sym.shndx === SHN_UNDEF || sym.name === '') continue
      const prior = globals.get(sym.name)
      if (prior !== undefined) throw new LinkError(`symbol '${sym.name}' is defined in both ${prior.input.name} and ${input.name}`)
      globals.set(sym.name, { input, sym })
    }
  }
  /** The defining object and symbol: the symbol itself, or the global definition of an undefined one. */
  const resolve = (input: Input, sym: ElfSymbol): { input: Input, sym: ElfSymbol } | undefined =>
    sym.shndx !== SHN_UNDEF ? { input, sym } : globals.get(sym.name)
  const symbolAddress = (input: Input, sym: ElfSymbol): number | undefined => {
    const def = resolve(input, sym)
    if (def === undefined) return undefined
    if (def.sym.shndx === SHN_ABS || def.sym.shndx === SHN_COMMON) throw new LinkError(`symbol ${def.sym.name}: absolute and common symbols are not supported`)
    const p = def.input.placement.get(def.sym.shndx)
    if (p === undefined) {
      const sec = def.input.elf.sections[def.sym.shndx]
      throw new LinkError(`${def.input.name}: symbol ${def.sym.name || `#${def.sym.index}`} lives in section ${sec?.name ?? def.sym.shndx}, which is not part of the program`)
    }
    return addrOf(p) + Number(def.sym.value)
  }
  const entryDef = globals.get(entryName)
  if (entryDef === undefined) throw new LinkError(`no global function '${entryName}'`)
  const entrySym = entryDef.sym
  const entryAddr = symbolAddress(entryDef.input, entrySym)!
  if (entryDef.input.placement.get(entrySym.shndx)?.out !== 'text') throw new LinkError(`'${entryName}' is not in executable code`)

  // 4. Relocations.
  const syscallNames: string[] = []
  const dynRels: Array<{ offset: number, type: number, name?: string }> = []
  let localCalls = 0
  for (const input of inputs) {
    const obj = input.elf
    for (const relSec of obj.sections) {
      if (relSec.type !== SHT_REL) continue
      const target = input.placement.get(relSec.info)
      if (target === undefined) continue // relocations of debug info, BTF, etc.
      const targetSec = obj.sections[relSec.info]!
      for (const r of readRels(obj, relSec)) {
        if (r.type === R_BPF_NONE) continue
        const sym = input.symbols[r.sym]
        if (sym === undefined) throw new LinkError(`${input.name}: relocation in ${targetSec.name} names symbol #${r.sym}, which does not exist`)
        const at = target.at + Number(r.offset) // offset inside the output section
        const outAddr = addrOf(target) + Number(r.offset)
        const where = `${input.name}:${targetSec.name}+0x${r.offset.toString(16)}`
        if (target.out === 'text') {
          if (at % INSN_SIZE !== 0 || at + INSN_SIZE > textSize) throw new LinkError(`misaligned relocation at ${where}`)
          const opcode = textView.getUint8(at)
          if (r.type === R_BPF_64_64) {
            if (opcode !== OP_LDDW || at + 2 * INSN_SIZE > textSize) throw new LinkError(`R_BPF_64_64 at ${where} is not on an lddw instruction`)
            const addend = BigInt(textView.getUint32(at + 4, true)) | (BigInt(textView.getUint32(at + 12, true)) << 32n)
            const base = symbolAddress(input, sym)
            if (base === undefined) throw new LinkError(`${where}: address of undefined symbol '${sym.name}'; only calls may name syscalls`)
            const value = BigInt(base) + BigInt.asIntN(64, addend)
            if (value <= 0n || value >= 0x100000000n) throw new LinkError(`${where}: address 0x${value.toString(16)} out of range`)
            textView.setUint32(at + 4, Number(value & 0xffffffffn), true)
            textView.setUint32(at + 12, Number(value >> 32n), true)
            dynRels.push({ offset: outAddr, type: R_BPF_64_RELATIVE })
          } else if (r.type === R_BPF_64_32) {
            if (opcode !== OP_CALL) throw new LinkError(`R_BPF_64_32 at ${where} is not on a call instruction`)
            const def = resolve(input, sym)
            if (def === undefined) {
              if (!allowedSyscalls.has(sym.name)) throw new LinkError(`undefined symbol '${sym.name}' called at ${where}: not a function of the program and not a Solana syscall`)
              if (sym.name.length > MAX_SYMBOL_NAME) throw new LinkError(`symbol name '${sym.name}' is longer than ${MAX_SYMBOL_NAME} bytes`)
              if (!syscallNames.includes(sym.name)) syscallNames.push(sym.name)
              textView.setInt32(at + 4, -1, true) // the loader skips imm == -1 when fixing pc-relative calls
              dynRels.push({ offset: outAddr, type: R_BPF_64_32, name: sym.name })
            } else {
              const base = symbolAddress(input, sym)!
              if (def.sym.type !== STT_FUNC) throw new LinkError(`call at ${where} targets '${def.sym.name || 'a section'}', which is not a function symbol`)
              if (def.input.placement.get(def.sym.shndx)?.out !== 'text' || (base - textOff) % INSN_SIZE !== 0) throw new LinkError(`call at ${where} targets '${def.sym.name}' outside the code`)
              const rel = (base - (outAddr + INSN_SIZE)) / INSN_SIZE
              textView.setInt32(at + 4, rel, true)
              // src = 1 marks a pc-relative (BPF_PSEUDO_CALL) call
              textView.setUint8(at + 1, (textView.getUint8(at + 1) & 0x0f) | 0x10)
              localCalls++
            }
          } else {
            throw new LinkError(`unsupported relocation type ${r.type} in ${where}`)
          }
        } else {
          // relocations inside read-only data: 64-bit pointers to other read-only data
          if (r.type !== R_BPF_64_ABS64) throw new LinkError(`unsupported relocation type ${r.type} in ${where}`)
          if (at + 8 > rodataSize) throw new LinkError(`relocation out of bounds at ${where}`)
          const base = symbolAddress(input, sym)
          if (base === undefined) throw new LinkError(`${where}: pointer to undefined symbol '${sym.name}'`)
          const value = BigInt(base) + rodataView.getBigInt64(at, true)
          if (value <= 0n || value >= 0x100000000n) throw new LinkError(`${where}: address out of range`)
          // SBPFv0 reads a data relocation's target from the upper 32 bits of the slot (a historical
          // toolchain quirk kept for compatibility) and writes back the full 64-bit address.
          rodataView.setUint32(at, 0, true)
          rodataView.setUint32(at + 4, Number(value), true)
          dynRels.push({ offset: outAddr, type: R_BPF_64_RELATIVE })
        }
      }
    }
  }
  // Sanity: every remaining call with imm -1 must have been relocated.
  const relocated = new Set(dynRels.map(d => d.offset - textOff))
  for (let at = 0; at + INSN_SIZE <= textSize; at += INSN_SIZE) {
    const op = textView.getUint8(at)
    if (op === OP_CALL && textView.getInt32(at + 4, true) === -1 && !relocated.has(at)) {
      throw new LinkError(`call at .text+0x${at.toString(16)} has no target`)
    }
    if (op === OP_LDDW) at += INSN_SIZE
  }

  // 5. Dynamic symbols: the null symbol, the entrypoint, then syscalls in alphabetical order.
  syscallNames.sort()
  const dynstrParts: number[] = [0]
  const dynstrOffsets = new Map<string, number>()
  const addDynstr = (name: string): number => {
    const known = dynstrOffsets.get(name)
    if (known !== undefined) return known
    const off = dynstrParts.length
    dynstrParts.push(...new TextEncoder().encode(name), 0)
    dynstrOffsets.set(name, off)
    return off
  }
  const dynsyms: Array<{ name: number, info: number, shndx: number, value: number, size: number }> = [
    { name: 0, info: 0, shndx: 0, value: 0, size: 0 },
    { name: addDynstr(entryName), info: (STB_GLOBAL << 4) | STT_FUNC, shndx: 1, value: entryAddr, size: Number(entrySym.size) }
  ]
  const syscallSymIndex = new Map<string, number>()
  for (const name of syscallNames) {
    syscallSymIndex.set(name, dynsyms.length)
    dynsyms.push({ name: addDynstr(name), info: (STB_GLOBAL << 4) | STT_NOTYPE, shndx: 0, value: 0, size: 0 })
  }
  const dynstr = Uint8Array.from(dynstrParts)
  // Relative relocations first (DT_RELCOUNT), each group by address.
  dynRels.sort((a, b) => (a.type === b.type ? a.offset - b.offset : a.type === R_BPF_64_RELATIVE ? -1 : 1))
  const relativeCount = dynRels.filter(d => d.type === R_BPF_64_RELATIVE).length

  // 6. Section names.
  const shstrParts: number[] = [0]
  const shname = (name: string): number => {
    if (name.length > MAX_SECTION_NAME) throw new LinkError(`section name ${name} too long`)
    const off = shstrParts.length
    shstrParts.push(...new TextEncoder().encode(name), 0)
    return off
  }

  // 7. Layout of the dynamic sections.
  const hasRodata = rodataSize > 0
  const rodataEnd = hasRodata ? rodataOff + rodataSize : textOff + textSize
  const dynamicEntries: Array<[number, number]> = []
  const dynamicOff = align(rodataEnd, 8)
  // entries are fixed in number; compute sizes first
  const hasRels = dynRels.length > 0
  const dynamicCount = (hasRels ? 5 : 0) + 5 + 1 // (REL, RELSZ, RELENT, RELCOUNT, TEXTREL) + (SYMTAB, SYMENT, STRTAB, STRSZ, FLAGS) + NULL
  const dynamicSize = dynamicCount * DYN_SIZE
  const dynsymOff = align(dynamicOff + dynamicSize, 8)
  const dynsymSize = dynsyms.length * SYM_SIZE
  const dynstrOff = dynsymOff + dynsymSize
  const relDynOff = align(dynstrOff + dynstr.length, 8)
  const relDynSize = dynRels.length * REL_SIZE
  if (hasRels) {
    dynamicEntries.push([DT_REL, relDynOff], [DT_RELSZ, relDynSize], [DT_RELENT, REL_SIZE], [DT_RELCOUNT, relativeCount], [DT_TEXTREL, 0])
  }
  dynamicEntries.push([DT_SYMTAB, dynsymOff], [DT_SYMENT, SYM_SIZE], [DT_STRTAB, dynstrOff], [DT_STRSZ, dynstr.length], [DT_FLAGS, hasRels ? DF_TEXTREL : 0], [DT_NULL, 0])

  interface OutSection { name: string, type: number, flags: number, off: number, size: number, link: number, info: number, align: number, entsize: number, alloc: boolean }
  const outSections: OutSection[] = []
  const textIdx = 1
  outSections.push({ name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, off: textOff, size: textSize, link: 0, info: 0, align: 8, entsize: 0, alloc: true })
  if (hasRodata) outSections.push({ name: '.rodata', type: SHT_PROGBITS, flags: SHF_ALLOC, off: rodataOff, size: rodataSize, link: 0, info: 0, align: rodataAlign, entsize: 0, alloc: true })
  const dynamicIdx = outSections.length + 1
  const dynsymIdx = dynamicIdx + 1
  const dynstrIdx = dynamicIdx + 2
  outSections.push({ name: '.dynamic', type: SHT_DYNAMIC, flags: SHF_ALLOC | SHF_WRITE, off: dynamicOff, size: dynamicSize, link: dynstrIdx, info: 0, align: 8, entsize: DYN_SIZE, alloc: true })
  outSections.push({ name: '.dynsym', type: SHT_DYNSYM, flags: SHF_ALLOC, off: dynsymOff, size: dynsymSize, link: dynstrIdx, info: 1, align: 8, entsize: SYM_SIZE, alloc: true })
  outSections.push({ name: '.dynstr', type: SHT_STRTAB, flags: SHF_ALLOC, off: dynstrOff, size: dynstr.length, link: 0, info: 0, align: 1, entsize: 0, alloc: true })
  if (hasRels) outSections.push({ name: '.rel.dyn', type: SHT_REL, flags: SHF_ALLOC, off: relDynOff, size: relDynSize, link: dynsymIdx, info: 0, align: 8, entsize: REL_SIZE, alloc: true })
  const allocEnd = hasRels ? relDynOff + relDynSize : dynstrOff + dynstr.length
  const shstrtabOff = allocEnd
  const names = outSections.map(s => shname(s.name))
  const shstrtabName = shname('.shstrtab')
  const shstrtab = Uint8Array.from(shstrParts)
  outSections.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, off: shstrtabOff, size: shstrtab.length, link: 0, info: 0, align: 1, entsize: 0, alloc: false })
  names.push(shstrtabName)
  const shoff = align(shstrtabOff + shstrtab.length, 8)
  const shnum = outSections.length + 1
  const total = shoff + shnum * SHDR_SIZE

  // 8. Write the file.
  const out = new Uint8Array(total)
  const ov = view(out)
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0) // magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
  ov.setUint16(16, ET_DYN, true)
  ov.setUint16(18, EM_BPF, true)
  ov.setUint32(20, 1, true)
  ov.setBigUint64(24, BigInt(entryAddr), true)
  ov.setBigUint64(32, BigInt(EHDR_SIZE), true)
  ov.setBigUint64(40, BigInt(shoff), true)
  ov.setUint32(48, 0, true) // e_flags 0: SBPFv0
  ov.setUint16(52, EHDR_SIZE, true)
  ov.setUint16(54, PHDR_SIZE, true)
  ov.setUint16(56, phnum, true)
  ov.setUint16(58, SHDR_SIZE, true)
  ov.setUint16(60, shnum, true)
  ov.setUint16(62, shnum - 1, true)

  const phdr = (i: number, type: number, flags: number, off: number, size: number): void => {
    const o = EHDR_SIZE + i * PHDR_SIZE
    ov.setUint32(o, type, true)
    ov.setUint32(o + 4, flags, true)
    ov.setBigUint64(o + 8, BigInt(off), true)
    ov.setBigUint64(o + 16, BigInt(off), true)
    ov.setBigUint64(o + 24, BigInt(off), true)
    ov.setBigUint64(o + 32, BigInt(size), true)
    ov.setBigUint64(o + 40, BigInt(size), true)
    ov.setBigUint64(o + 48, 8n, true)
  }
  phdr(0, PT_LOAD, PF_R | PF_X, textOff, rodataEnd - textOff)
  phdr(1, PT_LOAD, PF_R, dynamicOff, allocEnd - dynamicOff)
  phdr(2, PT_DYNAMIC, PF_R | PF_W, dynamicOff, dynamicSize)

  out.set(text, textOff)
  out.set(rodata, rodataOff)
  dynamicEntries.forEach(([tag, val], i) => {
    ov.setBigUint64(dynamicOff + i * DYN_SIZE, BigInt(tag), true)
    ov.setBigUint64(dynamicOff + i * DYN_SIZE + 8, BigInt(val), true)
  })
  dynsyms.forEach((s, i) => {
    const o = dynsymOff + i * SYM_SIZE
    ov.setUint32(o, s.name, true)
    ov.setUint8(o + 4, s.info)
    ov.setUint8(o + 5, 0)
    ov.setUint16(o + 6, s.shndx === 1 ? textIdx : s.shndx, true)
    ov.setBigUint64(o + 8, BigInt(s.value), true)
    ov.setBigUint64(o + 16, BigInt(s.size), true)
  })
  out.set(dynstr, dynstrOff)
  dynRels.forEach((r, i) => {
    const o = relDynOff + i * REL_SIZE
    const sym = r.name === undefined ? 0 : syscallSymIndex.get(r.name)!
    ov.setBigUint64(o, BigInt(r.offset), true)
    ov.setBigUint64(o + 8, (BigInt(sym) << 32n) | BigInt(r.type), true)
  })
  out.set(shstrtab, shstrtabOff)
  outSections.forEach((s, i) => {
    const o = shoff + (i + 1) * SHDR_SIZE
    ov.setUint32(o, names[i]!, true)
    ov.setUint32(o + 4, s.type, true)
    ov.setBigUint64(o + 8, BigInt(s.flags), true)
    ov.setBigUint64(o + 16, BigInt(s.alloc ? s.off : 0), true)
    ov.setBigUint64(o + 24, BigInt(s.off), true)
    ov.setBigUint64(o + 32, BigInt(s.size), true)
    ov.setUint32(o + 40, s.link, true)
    ov.setUint32(o + 44, s.info, true)
    ov.setBigUint64(o + 48, BigInt(s.align), true)
    ov.setBigUint64(o + 56, BigInt(s.entsize), true)
  })

  return {
    bytes: out,
    syscalls: syscallNames,
    textSize,
    rodataSize,
    relocations: { relative: relativeCount, syscall: dynRels.length - relativeCount, localCalls }
  }
}

// ---- command line --------------------------------------------------------------------------------

function main (argv: string[]): number {
  const [output, ...inputs] = argv
  if (output === undefined || inputs.length === 0) {
    process.stderr.write('usage: node programs/linker/link.ts <out.so> <a.o> [b.o …]\n')
    return 2
  }
  try {
    const result = link(inputs.map(name => ({ name: basename(name), bytes: readFileSync(name) })))
    writeFileSync(output, result.bytes)
    process.stdout.write(`linked ${output}: ${result.bytes.length} bytes, .text ${result.textSize}, .rodata ${result.rodataSize}, ` +
      `${result.relocations.relative} relative + ${result.relocations.syscall} syscall relocations, syscalls: ${result.syscalls.join(' ')}\n`)
    return 0
  } catch (err) {
    if (err instanceof LinkError) {
      process.stderr.write(`link: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2))
