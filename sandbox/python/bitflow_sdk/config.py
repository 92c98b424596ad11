import json
import os

from .errors import ConfigError
from . import miniyaml
from .schema import validate_schema, check_schema_subset


def load_schema(pack_dir):
    path = os.path.join(pack_dir, 'configs', 'schema.json')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            schema = json.load(f)
    except FileNotFoundError:
        raise ConfigError('configs/schema.json is missing') from None
    except ValueError as e:
        raise ConfigError('configs/schema.json is not valid JSON: %s' % e) from None
    problems = check_schema_subset(schema)
    if problems:
        raise ConfigError('configs/schema.json: ' + '; '.join(problems))
    return schema


def load_defaults(pack_dir):
    path = os.path.join(pack_dir, 'configs', 'default.yaml')
    if not os.path.exists(path):
        return {}
    with open(path, 'r', encoding='utf-8') as f:
        value = miniyaml.loads(f.read())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError('configs/default.yaml must be a mapping of parameter names to values')
    return value


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(out.get(k), dict) and isinstance(v, dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(pack_dir, params=None):
    """Parameters for a run: `params` layered over configs/default.yaml, checked against configs/schema.json."""
    schema = load_schema(pack_dir)
    defaults = load_defaults(pack_dir)
    problems = validate_schema(defaults, schema)
    if problems:
        raise ConfigError('configs/default.yaml: ' + '; '.join(problems))
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError('parameters must be an object of parameter names to values')
    merged = _merge(defaults, params)
    problems = validate_schema(merged, schema)
    if problems:
        raise ConfigError('parameters: ' + '; '.join(problems))
    return merged
