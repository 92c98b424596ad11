import json
import math
import os
import shutil
from abc import ABC, abstractmethod
from typing import Any, Dict

import numpy as np

from .errors import BitflowSdkError
from .safetensors_io import read_safetensors, write_safetensors


def jsonable(value, path='metrics'):
    """numpy scalars and arrays to plain JSON values; NaN and infinity are refused (not JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise BitflowSdkError('%s is %r, which JSON cannot hold' % (path, value))
    if isinstance(value, dict):
        return {str(k): jsonable(v, '%s.%s' % (path, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, '%s[%d]' % (path, i)) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BitflowSdkError('%s is a %s, which JSON cannot hold' % (path, type(value).__name__))


class BitflowTask(ABC):
    """Base class for all BitFlow tasks.

    The runner builds the task with its validated parameters (plus task_id, round and seed), seeds
    `random` and numpy from the job's seed, and calls `run`. Use `self.rng` for randomness; the node
    identity is never given to a task (node_id is None), so results cannot depend on where they ran.
    """

    def __init__(self, config: Dict[str, Any]):
        self.config = config
        self.node_id = config.get('node_id')
        self.task_id = config.get('task_id')
        self.round = config.get('round', 0)
        self.seed = config.get('seed', 0)
        self.rng = np.random.default_rng(self.seed)
        self.output_dir = None

    @abstractmethod
    def validate_inputs(self, input_paths: Dict[str, str]) -> bool:
        """Validate input data meets requirements."""

    @abstractmethod
    def preprocess(self, input_paths: Dict[str, str]) -> Dict[str, Any]:
        """Preprocess data before main execution."""

    @abstractmethod
    def execute(self, preprocessed_data: Dict[str, Any]) -> Dict[str, Any]:
        """Main task execution. Put a 'metrics' mapping in the result to report metrics."""

    @abstractmethod
    def postprocess(self, results: Dict[str, Any]) -> Dict[str, str]:
        """Write outputs and return {output name: file path}."""

    def run(self, input_paths: Dict[str, str], output_dir: str) -> Dict[str, Any]:
        """Standard execution pipeline."""
        self.output_dir = output_dir
        if not self.validate_inputs(input_paths):
            raise ValueError('Input validation failed')
        preprocessed = self.preprocess(input_paths)
        results = self.execute(preprocessed)
        outputs = self.postprocess(results)
        saved = {}
        for name, path in outputs.items():
            saved[name] = self.save_output(path, output_dir, name)
        return {
            'status': 'success',
            'outputs': saved,
            'metrics': jsonable(results.get('metrics', {})),
        }

    # ---- helpers ----

    def save_output(self, path: str, output_dir: str, name: str) -> str:
        """Makes sure output `name` is a regular file in output_dir; returns its path there."""
        if not name or '/' in name or name.startswith('.'):
            raise BitflowSdkError('output name %r is not a plain file name' % name)
        real_out = os.path.realpath(output_dir)
        real = os.path.realpath(path)
        if os.path.islink(path) or not os.path.isfile(real):
            raise BitflowSdkError('output %r (%s) is not a regular file' % (name, path))
        if os.path.dirname(real) == real_out:
            return real
        dest = os.path.join(real_out, name + os.path.splitext(path)[1])
        shutil.copyfile(real, dest)
        return dest

    def load_tensors(self, path: str) -> Dict[str, np.ndarray]:
        return read_safetensors(path)

    def save_tensors(self, name: str, tensors: Dict[str, np.ndarray], metadata=None) -> str:
        """Writes output `name` as <output_dir>/<name>.safetensors and returns the path."""
        if self.output_dir is None:
            raise BitflowSdkError('save_tensors is for use inside run()')
        return write_safetensors(os.path.join(self.output_dir, name + '.safetensors'), tensors, metadata=metadata)

    def save_json(self, name: str, value) -> str:
        if self.output_dir is None:
            raise BitflowSdkError('save_json is for use inside run()')
        path = os.path.join(self.output_dir, name + '.json')
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(jsonable(value, name), f, sort_keys=True, separators=(',', ':'), allow_nan=False)
        return path
