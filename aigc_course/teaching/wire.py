"""Plain values between the grader and its isolated worker: JSON lines, tensors as raw bytes; never pickle.

A tensor travels as ``{"dtype": "float64", "shape": [5, 3], "data": "<base64 of
little-endian bytes>"}``; lists and tuples as ``{"seq": [...]}``; ``None``, bools,
ints, floats and short strings as themselves. Decoding checks everything it
reads (known dtype, shape matching the byte count, a size limit) and raises
:class:`WireError` otherwise, so a malformed message from the learner's process
fails that exercise instead of reaching the judge.
"""
from __future__ import annotations

import base64
import json
import math

DTYPES = ("float32", "float64", "int64", "int32", "bool")
MAX_ELEMENTS = 4_000_000      # one tensor: 32 MB as float64
MAX_DEPTH = 4


class WireError(ValueError):
    """A message that is not valid JSON of the agreed shape."""


def encode(value, depth: int = 0):
    """A JSON-ready form of ``value`` (tensors, sequences, numbers, None); TypeError for anything else."""
    import torch

    if depth > MAX_DEPTH:
        raise TypeError("nested too deeply")
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        if t.dtype.is_floating_point and t.dtype != torch.float32:
            t = t.double()
        name = str(t.dtype).removeprefix("torch.")
        if name not in DTYPES:
            raise TypeError(f"tensor of dtype {name}")
        return {"dtype": name, "shape": list(t.shape), "data": base64.b64encode(t.numpy().tobytes()).decode()}
    if isinstance(value, (list, tuple)):
        return {"seq": [encode(v, depth + 1) for v in value]}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__}")


def decode(obj, depth: int = 0):
    """The value ``encode`` made; :class:`WireError` on anything else."""
    import numpy as np
    import torch

    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if obj is None or isinstance(obj, (bool, int)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise WireError("a number that is not finite")
        return obj
    if not isinstance(obj, dict):
        raise WireError(f"unexpected {type(obj).__name__}")
    if set(obj) == {"seq"} and isinstance(obj["seq"], list):
        return [decode(v, depth + 1) for v in obj["seq"]]
    if set(obj) != {"dtype", "shape", "data"} or obj["dtype"] not in DTYPES:
        raise WireError(f"not a tensor record: keys {sorted(obj)[:5]}")
    shape = obj["shape"]
    if not (isinstance(shape, list) and len(shape) <= 8 and all(type(s) is int and 0 <= s for s in shape)):
        raise WireError(f"bad shape {str(shape)[:60]}")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise WireError(f"tensor of {count} elements (limit {MAX_ELEMENTS})")
    try:
        raw = base64.b64decode(obj["data"], validate=True)
    except (ValueError, TypeError) as err:
        raise WireError(f"bad tensor bytes ({err})") from None
    dtype = np.dtype(obj["dtype"]).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise WireError(f"{len(raw)} bytes do not make a {obj['dtype']} tensor of shape {tuple(shape)}")
    return torch.from_numpy(np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))).reshape(shape)


def dumps(message: dict) -> bytes:
    """One message as a JSON line (no NaN or infinity outside tensors)."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> dict:
    """Parse one JSON line into a dict; :class:`WireError` if it is not one."""
    def reject(token):
        raise WireError(f"{token} is not allowed")
    try:
        message = json.loads(line, parse_constant=reject)
    except (ValueError, RecursionError) as err:
        raise WireError(f"invalid JSON ({str(err)[:80]})") from None
    if not isinstance(message, dict):
        raise WireError("a message must be a JSON object")
    return message
