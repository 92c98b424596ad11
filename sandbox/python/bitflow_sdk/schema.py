"""The JSON Schema subset configs/schema.json may use, validated the same way as the daemon does.

Keywords: type, properties, required, enum, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
minLength, maxLength, minItems, maxItems, items, additionalProperties (plus annotations).
"""

import math

SUPPORTED_KEYWORDS = (
    'type', 'properties', 'required', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
    'minLength', 'maxLength', 'minItems', 'maxItems', 'items', 'additionalProperties',
    'title', 'description', 'default', 'examples', '$schema', '$comment',
)
_TYPES = ('object', 'array', 'string', 'number', 'integer', 'boolean', 'null')
MAX_DEPTH = 16


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and not math.isfinite(v))


def _is_type(v, t):
    if t == 'object':
        return isinstance(v, dict)
    if t == 'array':
        return isinstance(v, list)
    if t == 'string':
        return isinstance(v, str)
    if t == 'boolean':
        return isinstance(v, bool)
    if t == 'null':
        return v is None
    if t == 'number':
        return _is_number(v)
    if t == 'integer':
        # JSON has one number type: 3.0 is an integer, as it is for the daemon's validator
        return _is_number(v) and float(v).is_integer()
    return False


def _json_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a == b


def _show(v):
    if v is None:
        return 'nothing'
    if isinstance(v, bool):
        return 'boolean %s' % ('true' if v else 'false')
    if isinstance(v, str):
        return "'%s'" % (v if len(v) <= 60 else v[:57] + '...')
    if _is_number(v):
        return 'number %s' % (int(v) if isinstance(v, float) and v.is_integer() else v)
    if isinstance(v, list):
        return 'a list'
    return 'a mapping'


_WORDS = {'string': 'a string', 'number': 'a number', 'integer': 'an integer', 'boolean': 'true or false',
          'object': 'a mapping', 'array': 'a list', 'null': 'null'}


def _join(path, key):
    if isinstance(key, int):
        return '%s[%d]' % (path, key)
    return key if path == '' else '%s.%s' % (path, key)


def validate_schema(value, schema, path=''):
    """Returns a list of problems, each naming the field; empty when `value` is valid."""
    errors = []
    _validate(value, schema, path, errors)
    return errors


def _validate(v, s, path, errors):
    if s is True:
        return
    if s is False:
        errors.append('%s is not allowed' % (path or 'the document'))
        return
    here = path or 'the document'
    types = s.get('type')
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(_is_type(v, t) for t in types):
            errors.append('%s must be %s (got %s)' % (here, ' or '.join(_WORDS.get(t, t) for t in types), _show(v)))
            return
    if 'enum' in s and not any(_json_equal(v, e) for e in s['enum']):
        errors.append('%s must be one of %s (got %s)' % (here, ', '.join(str(e) for e in s['enum']), _show(v)))
    if _is_number(v):
        for key, ok, word in (('minimum', lambda x, l: x >= l, '>='), ('maximum', lambda x, l: x <= l, '<='),
                              ('exclusiveMinimum', lambda x, l: x > l, '>'), ('exclusiveMaximum', lambda x, l: x < l, '<')):
            if key in s and not ok(v, s[key]):
                errors.append('%s must be %s %s (got %s)' % (here, word, s[key], _show(v)))
    if isinstance(v, str):
        if 'minLength' in s and len(v) < s['minLength']:
            errors.append('%s must have at least %d characters' % (here, s['minLength']))
        if 'maxLength' in s and len(v) > s['maxLength']:
            errors.append('%s must have at most %d characters' % (here, s['maxLength']))
    if isinstance(v, list):
        if 'minItems' in s and len(v) < s['minItems']:
            errors.append('%s must have at least %d items' % (here, s['minItems']))
        if 'maxItems' in s and len(v) > s['maxItems']:
            errors.append('%s must have at most %d items' % (here, s['maxItems']))
        if 'items' in s:
            for i, item in enumerate(v):
                _validate(item, s['items'], _join(path, i), errors)
    if isinstance(v, dict):
        props = s.get('properties', {})
        for name in s.get('required', []):
            if name not in v:
                errors.append('%s is required' % _join(path, name))
        for name, item in v.items():
            if name in props:
                _validate(item, props[name], _join(path, name), errors)
            else:
                extra = s.get('additionalProperties', True)
                if extra is False:
                    errors.append("unknown field '%s'" % _join(path, name))
                elif isinstance(extra, dict):
                    _validate(item, extra, _join(path, name), errors)


def check_schema_subset(schema, path='', depth=0):
    """Problems with a schema that uses keywords outside the supported subset."""
    problems = []
    where = path or 'the top-level schema'
    if isinstance(schema, bool):
        return problems
    if depth > MAX_DEPTH:
        return ['%s nests deeper than %d levels' % (where, MAX_DEPTH)]
    if not isinstance(schema, dict):
        return ['%s must be a schema object' % where]
    for k in schema:
        if k not in SUPPORTED_KEYWORDS:
            problems.append("%s uses '%s', which configs/schema.json does not support" % (where, k))
    t = schema.get('type')
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not ts or not all(x in _TYPES for x in ts):
            problems.append('%s has an unknown type %r' % (where, t))
    for name, sub in (schema.get('properties') or {}).items():
        problems += check_schema_subset(sub, _join(_join(path, 'properties'), name), depth + 1)
    if 'items' in schema:
        problems += check_schema_subset(schema['items'], _join(path, 'items'), depth + 1)
    if isinstance(schema.get('additionalProperties'), dict):
        problems += check_schema_subset(schema['additionalProperties'], _join(path, 'additionalProperties'), depth + 1)
    return problems
