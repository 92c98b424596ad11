/** Agents for the scoring tests: a correct one, a partly wrong one, cheaters and misbehavers. */

export const GOOD_AGENT = `import argparse, json, re

def reverse_string(s): return s[::-1]
def fizzbuzz(n): return ['FizzBuzz' if k % 15 == 0 else 'Fizz' if k % 3 == 0 else 'Buzz' if k % 5 == 0 else str(k) for k in range(1, n + 1)]
def is_palindrome(s):
    t = re.sub(r'[^a-z0-9]', '', s.lower())
    return t == t[::-1]
def word_count(text):
    out = {}
    for w in re.findall(r'[a-z0-9]+', text.lower()):
        out[w] = out.get(w, 0) + 1
    return out
def two_sum(nums, target):
    seen = {}
    for i, v in enumerate(nums):
        if target - v in seen: return [seen[target - v], i]
        seen[v] = i
    return []
def primes_up_to(n):
    return [k for k in range(2, n + 1) if all(k % p for p in range(2, int(k ** 0.5) + 1))]
def run_length(s):
    out = []
    for c in s:
        if out and out[-1][0] == c: out[-1][1] += 1
        else: out.append([c, 1])
    return out

p = argparse.ArgumentParser()
p.add_argument('--task'); p.add_argument('--input')
a = p.parse_args()
with open(a.input) as f:
    spec = json.load(f)
print('debug: solving', spec['task'])
print(json.dumps({'results': [globals()[spec['function']](*args) for args in spec['cases']]}))
`

/** Gets reverse_string and is_palindrome wrong, the rest right. */
export const PARTIAL_AGENT = GOOD_AGENT
  .replace('def reverse_string(s): return s[::-1]', 'def reverse_string(s): return s')
  .replace('return t == t[::-1]', 'return True')

export const LOOP_AGENT = 'while True:\n    pass\n'

export const SOCKET_AGENT = `import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
print(json.dumps({"results": []}))
`

/** Answers every case with an object whose __eq__ always says yes. */
export const ALWAYS_EQUAL_AGENT = `import json, sys
class Yes:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = object.__hash__
with open(sys.argv[sys.argv.index('--input') + 1]) as f:
    spec = json.load(f)
print(json.dumps({"results": [Yes() for _ in spec['cases']]}, default=str))
`

export const NUMPY_AGENT = 'import numpy as np\nprint(np.zeros(1))\n'
