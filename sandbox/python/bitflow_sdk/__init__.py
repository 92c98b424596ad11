"""BitFlow task SDK: the interface every taskpack implements and the runner that drives it.

Standard library and numpy only, so it runs in the minimal sandbox image.
"""

from .errors import BitflowSdkError, ConfigError, JobError, SafetensorsError
from .safetensors_io import read_safetensors, write_safetensors, encode_safetensors, decode_safetensors
from .schema import validate_schema, check_schema_subset
from .config import load_config, load_defaults
from .task import BitflowTask

__all__ = [
    'BitflowTask', 'BitflowSdkError', 'ConfigError', 'JobError', 'SafetensorsError',
    'read_safetensors', 'write_safetensors', 'encode_safetensors', 'decode_safetensors',
    'validate_schema', 'check_schema_subset', 'load_config', 'load_defaults',
]

__version__ = '0.1.0'
