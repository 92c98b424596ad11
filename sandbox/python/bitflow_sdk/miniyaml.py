"""A strict reader for the YAML subset used by configs/default.yaml.

The sandbox image has no YAML library, and two YAML libraries can disagree, so parameters are read
by this small parser, which refuses anything outside its subset instead of guessing:
block mappings, block sequences of scalars or flow collections, flow collections [..] and {..},
plain / single-quoted / double-quoted scalars, comments. Scalars resolve as in YAML 1.2's core
schema (the daemon's parser uses the same). Anchors, aliases, tags, block scalars (| >),
multi-line scalars and multiple documents are refused with the line number.
"""

import json
import re

from .errors import ConfigError

_INT_DEC = re.compile(r'^[-+]?[0-9]+$')
_INT_OCT = re.compile(r'^0o[0-7]+$')
_INT_HEX = re.compile(r'^0x[0-9a-fA-F]+$')
_FLOAT = re.compile(r'^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$')
_INF = re.compile(r'^[-+]?\.(inf|Inf|INF)$')
_NAN = re.compile(r'^\.(nan|NaN|NAN)$')



def _fail(file, line, msg):
    raise ConfigError('%s line %d: %s' % (file, line, msg))


def resolve_plain(s):
    if s in ('', '~', 'null', 'Null', 'NULL'):
        return None
    if s in ('true', 'True', 'TRUE'):
        return True
    if s in ('false', 'False', 'FALSE'):
        return False
    if _INT_DEC.match(s):
        return int(s)
    if _INT_OCT.match(s):
        return int(s[2:], 8)
    if _INT_HEX.match(s):
        return int(s[2:], 16)
    if _FLOAT.match(s):
        return float(s)
    if _INF.match(s):
        return float('-inf') if s.startswith('-') else float('inf')
    if _NAN.match(s):
        return float('nan')
    return s


def _strip_comment(text):
    """Removes a trailing comment outside quotes."""
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == '\\' and quote == '"':
                i += 2
                continue
            if c == quote:
                if quote == "'" and i + 1 < len(text) and text[i + 1] == "'":
                    i += 2
                    continue
                quote = None
        elif c in ('"', "'") and (i == 0 or text[i - 1] in ' \t[{,:'):
            quote = c
        elif c == '#' and (i == 0 or text[i - 1] in ' \t'):
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


class _Flow:
    def __init__(self, text, file, line):
        self.t, self.i, self.file, self.line = text, 0, file, line

    def ws(self):
        while self.i < len(self.t) and self.t[self.i] in ' \t':
            self.i += 1

    def value(self, stops):
        self.ws()
        if self.i >= len(self.t):
            _fail(self.file, self.line, 'unexpected end of a flow collection')
        c = self.t[self.i]
        if c == '[':
            self.i += 1
            out = []
            self.ws()
            if self.t[self.i:self.i + 1] == ']':
                self.i += 1
                return out
            while True:
                out.append(self.value(',]'))
                self.ws()
                c = self.t[self.i:self.i + 1]
                self.i += 1
                if c == ']':
                    return out
                if c != ',':
                    _fail(self.file, self.line, "expected ',' or ']' in a flow sequence")
        if c == '{':
            self.i += 1
            out = {}
            self.ws()
            if self.t[self.i:self.i + 1] == '}':
                self.i += 1
                return out
            while True:
                key = self.value(':,}')
                self.ws()
                if self.t[self.i:self.i + 1] != ':':
                    _fail(self.file, self.line, "expected ':' in a flow mapping")
                self.i += 1
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    _fail(self.file, self.line, "duplicate key '%s'" % key)
                out[key] = self.value(',}')
                self.ws()
                c = self.t[self.i:self.i + 1]
                self.i += 1
                if c == '}':
                    return out
                if c != ',':
                    _fail(self.file, self.line, "expected ',' or '}' in a flow mapping")
        if c in ('"', "'"):
            return self.quoted()
        start = self.i
        while self.i < len(self.t) and self.t[self.i] not in stops:
            self.i += 1
        return _scalar(self.t[start:self.i].strip(), self.file, self.line)

    def quoted(self):
        q = self.t[self.i]
        if q == '"':
            j = self.i + 1
            while j < len(self.t):
                if self.t[j] == '\\':
                    j += 2
                    continue
                if self.t[j] == '"':
                    break
                j += 1
            if j >= len(self.t):
                _fail(self.file, self.line, 'unterminated double-quoted string')
            raw = self.t[self.i:j + 1]
            self.i = j + 1
            try:
                return json.loads(raw)
            except ValueError:
                _fail(self.file, self.line, 'unsupported escape in %s' % raw)
        j = self.i + 1
        out = []
        while j < len(self.t):
            if self.t[j] == "'":
                if self.t[j + 1:j + 2] == "'":
                    out.append("'")
                    j += 2
                    continue
                break
            out.append(self.t[j])
            j += 1
        if j >= len(self.t):
            _fail(self.file, self.line, 'unterminated single-quoted string')
        self.i = j + 1
        return ''.join(out)


def _scalar(text, file, line):
    if text[:1] in ('&', '*', '!', '|', '>', '%', '@', '`'):
        _fail(file, line, "'%s' (anchors, aliases, tags, block scalars) is not supported in this file" % text[:1])
    return resolve_plain(text)


def _value(text, file, line):
    text = text.strip()
    if text == '':
        return None
    if text[0] in '[{"\'':
        p = _Flow(text, file, line)
        v = p.value('')
        p.ws()
        if p.i != len(text):
            _fail(file, line, 'unexpected text after a value: %r' % text[p.i:])
        return v
    return _scalar(text, file, line)


_KEY = re.compile(r'''^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},:&*!|>%@`-][^#:]*?|-[^\s#:][^#:]*?)\s*:(?:\s+(.*))?$''')


def loads(text, file='configs/default.yaml'):
    lines = []
    for n, raw in enumerate(text.split('\n'), start=1):
        if '\t' in raw[:len(raw) - len(raw.lstrip())]:
            _fail(file, n, 'tabs are not allowed for indentation')
        body = _strip_comment(raw)
        if body.strip() == '':
            continue
        if body.strip() in ('---', '...'):
            if lines:
                _fail(file, n, 'only one YAML document is allowed')
            continue
        lines.append((n, len(body) - len(body.lstrip(' ')), body.strip()))
    if not lines:
        return {}
    pos = [0]

    def block(indent):
        n, ind, content = lines[pos[0]]
        if content.startswith('- ') or content == '-':
            out = []
            while pos[0] < len(lines):
                n, ind, content = lines[pos[0]]
                if ind < indent:
                    break
                if ind > indent:
                    _fail(file, n, 'unexpected indentation')
                if not (content.startswith('- ') or content == '-'):
                    _fail(file, n, 'expected a list item')
                item = content[1:].strip()
                if _KEY.match(item) and item[:1] not in '[{"\'':
                    _fail(file, n, 'mappings inside lists are not supported in this file; use a flow mapping {a: 1}')
                pos[0] += 1
                out.append(_value(item, file, n))
            return out
        out = {}
        while pos[0] < len(lines):
            n, ind, content = lines[pos[0]]
            if ind < indent:
                break
            if ind > indent:
                _fail(file, n, 'unexpected indentation')
            m = _KEY.match(content)
            if not m:
                _fail(file, n, 'expected "key: value"')
            key = m.group(1)
            if key[:1] in ('"', "'"):
                key = _Flow(key, file, n).quoted()
            else:
                key = key.strip()
            if key in out:
                _fail(file, n, "duplicate key '%s'" % key)
            rest = m.group(2)
            pos[0] += 1
            if rest is None or rest.strip() == '':
                if pos[0] < len(lines) and (lines[pos[0]][1] > ind or (lines[pos[0]][1] == ind and lines[pos[0]][2].startswith('-'))):
                    out[key] = block(lines[pos[0]][1])
                else:
                    out[key] = None
            else:
                out[key] = _value(rest, file, n)
        return out

    result = block(lines[0][1])
    if pos[0] < len(lines):
        _fail(file, lines[pos[0]][0], 'unexpected indentation')
    return result
