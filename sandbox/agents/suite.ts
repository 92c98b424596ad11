/**
 * The agent-scoring suite: coding tasks an agent solves, each with hidden assertions. The agent only
 * ever sees a task's prompt and the arguments of its cases; the expected values stay in this process
 * and are compared with the JSON the agent prints, structurally (only JSON crosses the container
 * boundary, so nothing the agent defines — an object whose `__eq__` always says yes — takes part in
 * the comparison). Cases mix fixed edge cases with ones drawn from the round's seed, so answers
 * cannot be memorized from an earlier round.
 */
import { prng } from '../../protocols/prng.js'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface AgentCase {
  /** positional arguments passed to the function */
  args: Json[]
  expected: Json
}

export interface AgentTask {
  id: string
  /** the function the agent implements */
  function: string
  signature: string
  prompt: string
  cases: (seed: number) => AgentCase[]
}

export { prng }

const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
const word = (rand: () => number, alphabet = 'abcdefghijklmnopqrstuvwxyz', min = 1, max = 8): string =>
  Array.from({ length: int(rand, min, max) }, () => alphabet[int(rand, 0, alphabet.length - 1)]!).join('')
/** a per-task stream so adding a task does not change the others' cases */
const streamFor = (seed: number, id: string): () => number => prng((seed ^ [...id].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261)) >>> 0)

// ---- reference implementations (the hidden answers) ----

const reverseString = (s: string): string => [...s].reverse().join('')

const fizzbuzz = (n: number): string[] => Array.from({ length: n }, (_, i) => {
  const k = i + 1
  return k % 15 === 0 ? 'FizzBuzz' : k % 3 === 0 ? 'Fizz' : k % 5 === 0 ? 'Buzz' : String(k)
})

const isPalindrome = (s: string): boolean => {
  const t = s.toLowerCase().replace(/[^a-z0-9]/g, '')
  return t === [...t].reverse().join('')
}

const wordCount = (text: string): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) out[w] = (out[w] ?? 0) + 1
  return out
}

const twoSum = (nums: number[], target: number): number[] => {
  for (let i = 0; i < nums.length; i++) for (let j = i + 1; j < nums.length; j++) if (nums[i]! + nums[j]! === target) return [i, j]
  return []
}

const primesUpTo = (n: number): number[] => {
  const out: number[] = []
  for (let k = 2; k <= n; k++) if (out.every(p => p * p > k || k % p !== 0)) out.push(k)
  return out
}

const runLength = (s: string): Array<[string, number]> => {
  const out: Array<[string, number]> = []
  for (const c of s) {
    const last = out[out.length - 1]
    if (last !== undefined && last[0] === c) last[1]++
    else out.push([c, 1])
  }
  return out
}

/** nums with exactly one pair summing to target (distinct values, a planted pair) */
function twoSumCase (rand: () => number): AgentCase {
  const n = int(rand, 4, 9)
  const nums: number[] = []
  while (nums.length < n) {
    const v = int(rand, -50, 50)
    if (!nums.includes(v)) nums.push(v)
  }
  const i = int(rand, 0, n - 2)
  const j = int(rand, i + 1, n - 1)
  const target = nums[i]! + nums[j]!
  // keep the planted pair the only one
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if ((a !== i || b !== j) && nums[a]! + nums[b]! === target) return twoSumCase(rand)
  return { args: [nums, target], expected: [i, j] }
}

export const AGENT_SUITE: readonly AgentTask[] = [
  {
    id: 'reverse_string',
    function: 'reverse_string',
    signature: 'reverse_string(s: str) -> str',
    prompt: 'Implement reverse_string(s: str) -> str, returning s reversed (by code point).',
    cases: seed => {
      const r = streamFor(seed, 'reverse_string')
      return ['hello', '', 'a', 'héllo wörld', word(r, 'abcXYZ 019', 5, 20), word(r, 'abcXYZ 019', 5, 20)].map(s => ({ args: [s], expected: reverseString(s) }))
    }
  },
  {
    id: 'fizzbuzz',
    function: 'fizzbuzz',
    signature: 'fizzbuzz(n: int) -> list[str]',
    prompt: 'Implement fizzbuzz(n: int) -> list[str] for 1..n: "Fizz" for multiples of 3, "Buzz" for multiples of 5, "FizzBuzz" for both, else the number as a string.',
    cases: seed => {
      const r = streamFor(seed, 'fizzbuzz')
      return [1, 0, 15, int(r, 16, 40), int(r, 41, 100)].map(n => ({ args: [n], expected: fizzbuzz(n) }))
    }
  },
  {
    id: 'is_palindrome',
    function: 'is_palindrome',
    signature: 'is_palindrome(s: str) -> bool',
    prompt: 'Implement is_palindrome(s: str) -> bool: true when s reads the same backwards, ignoring case and every character that is not an ASCII letter or digit.',
    cases: seed => {
      const r = streamFor(seed, 'is_palindrome')
      const half = word(r, 'abcde', 3, 8)
      const pal = `${half.toUpperCase()}, ${[...half].reverse().join('')}!`
      return ['A man, a plan, a canal: Panama', 'race a car', '', 'ab', pal, `${pal}x`].map(s => ({ args: [s], expected: isPalindrome(s) }))
    }
  },
  {
    id: 'word_count',
    function: 'word_count',
    signature: 'word_count(text: str) -> dict[str, int]',
    prompt: 'Implement word_count(text: str) -> dict[str, int]: lower-case the text, split it into words made of ASCII letters and digits (anything else separates words), and count each word.',
    cases: seed => {
      const r = streamFor(seed, 'word_count')
      const words = Array.from({ length: 12 }, () => word(r, 'abc', 1, 3))
      const text = words.map((w, i) => i % 3 === 0 ? w.toUpperCase() : w).join([' ', ', ', '--', '\n'][int(r, 0, 3)])
      return ['the cat and the hat', '', 'Hello, hello HELLO!', text].map(s => ({ args: [s], expected: wordCount(s) }))
    }
  },
  {
    id: 'two_sum',
    function: 'two_sum',
    signature: 'two_sum(nums: list[int], target: int) -> list[int]',
    prompt: 'Implement two_sum(nums: list[int], target: int) -> list[int]: the indices [i, j] with i < j of the only two numbers that add up to target.',
    cases: seed => {
      const r = streamFor(seed, 'two_sum')
      return [{ args: [[2, 7, 11, 15], 9], expected: [0, 1] }, { args: [[3, 2, 4], 6], expected: [1, 2] }, twoSumCase(r), twoSumCase(r)]
    }
  },
  {
    id: 'primes_up_to',
    function: 'primes_up_to',
    signature: 'primes_up_to(n: int) -> list[int]',
    prompt: 'Implement primes_up_to(n: int) -> list[int]: every prime p with 2 <= p <= n, in increasing order.',
    cases: seed => {
      const r = streamFor(seed, 'primes_up_to')
      return [1, 2, 30, int(r, 31, 200), int(r, 201, 1000)].map(n => ({ args: [n], expected: primesUpTo(n) }))
    }
  },
  {
    id: 'run_length',
    function: 'run_length',
    signature: 'run_length(s: str) -> list[list]',
    prompt: 'Implement run_length(s: str) -> list of [char, count] pairs: the run-length encoding of s, e.g. "aab" -> [["a", 2], ["b", 1]].',
    cases: seed => {
      const r = streamFor(seed, 'run_length')
      return ['aab', '', 'abc', word(r, 'aab', 6, 20)].map(s => ({ args: [s], expected: runLength(s) as Json }))
    }
  }
]

/** What the agent is given for one task (written to /task/task.json); expected values are not in it. */
export function taskInput (task: AgentTask, cases: readonly AgentCase[]): { task: string, function: string, signature: string, prompt: string, cases: Json[][] } {
  return { task: task.id, function: task.function, signature: task.signature, prompt: task.prompt, cases: cases.map(c => c.args) }
}

/** Structural equality of two JSON values: same types, same array order, same object keys. */
export function jsonEqual (a: unknown, b: unknown): boolean {
  if (a === null || b === null) return a === b
  if (typeof a !== typeof b) return false
  switch (typeof a) {
    case 'string':
    case 'boolean':
      return a === b
    case 'number':
      return Number.isFinite(a) && a === b
    case 'object': {
      if (Array.isArray(a) !== Array.isArray(b)) return false
      if (Array.isArray(a)) {
        const bb = b as unknown[]
        return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]))
      }
      const ao = a as Record<string, unknown>
      const bo = b as Record<string, unknown>
      const ak = Object.keys(ao)
      if (ak.length !== Object.keys(bo).length) return false
      return ak.every(k => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k]))
    }
    default:
      return false
  }
}

export type ParsedOutput = { ok: true, results: unknown[] } | { ok: false, reason: string }

/**
 * The agent's answers from its stdout: a JSON object {"results": [...]} or a JSON list, either as the
 * whole output or as its last non-empty line (so debug prints before it are fine).
 */
export function parseAgentOutput (stdout: string): ParsedOutput {
  const text = stdout.trim()
  if (text === '') return { ok: false, reason: 'printed nothing (expected JSON: {"results": [...]})' }
  const candidates = [text, text.split('\n').map(l => l.trim()).filter(l => l !== '').pop() ?? '']
  for (const c of candidates) {
    let v: unknown
    try { v = JSON.parse(c) } catch { continue }
    if (Array.isArray(v)) return { ok: true, results: v }
    if (v !== null && typeof v === 'object' && Array.isArray((v as { results?: unknown }).results)) return { ok: true, results: (v as { results: unknown[] }).results }
    return { ok: false, reason: 'printed JSON that is neither {"results": [...]} nor a list' }
  }
  return { ok: false, reason: 'did not print valid JSON (expected {"results": [...]} on its last line)' }
}

/** Counts the assertions an agent's answers pass, in order. */
export function checkAnswers (cases: readonly AgentCase[], results: readonly unknown[]): { passed: number, failed: number[] } {
  const failed: number[] = []
  cases.forEach((c, i) => { if (!(i < results.length && jsonEqual(results[i], c.expected))) failed.push(i) })
  return { passed: cases.length - failed.length, failed }
}
