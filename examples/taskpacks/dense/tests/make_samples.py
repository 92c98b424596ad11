"""Writes tests/samples/ (the inputs of the tests and of the dry run nodes perform).

Small exact values (multiples of 1/8), so the expected outputs are exact in float32 too:
  PYTHONPATH=<bitflow>/sandbox/python python3 tests/make_samples.py
"""

import json
import os

import numpy as np

from bitflow_sdk import write_safetensors

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'samples')


def samples():
    x = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5) / 8
    w = (np.arange(8, dtype=np.float32).reshape(4, 2) - 3) / 4
    b = np.array([0.5, -0.25], dtype=np.float32)
    return x, w, b


def main():
    x, w, b = samples()
    os.makedirs(SAMPLES, exist_ok=True)
    meta = {'bitflow.sample': 'true'}
    write_safetensors(os.path.join(SAMPLES, 'x.safetensors'), {'x': x}, metadata=meta)
    write_safetensors(os.path.join(SAMPLES, 'weights.safetensors'), {'W': w, 'b': b}, metadata=meta)
    job = {'inputs': {'x': 'x.safetensors', 'weights': 'weights.safetensors'}, 'params': {}, 'seed': 0, 'task_id': 'sample', 'round': 0}
    with open(os.path.join(SAMPLES, 'job.json'), 'w') as f:
        json.dump(job, f)
        f.write('\n')


if __name__ == '__main__':
    main()
