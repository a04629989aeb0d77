"""SemanticFeatures messages <-> semantic conditions (torch).

Inline transport carries every tensor's raw bytes in the message (any dtype, bfloat16 included, with
no conversion); in-process transport sends the same metadata with empty payloads and leaves the tensors
in a shared `LatestSemantics` store, so a GPU-sized cache is handed over without a copy.
"""

from __future__ import annotations

import numpy as np
import torch

from asyncvla_ros.msg import SemanticFeatures, TensorBlob
from asyncvla_ros.nodes.conversions import MessageError, from_time, to_time
from asyncvla_ros.policy.backbone import SemanticCondition

FEATURE_KIND = "prefix_kv_cache"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "int64": torch.int64, "bool": torch.bool}


def to_message(cond: SemanticCondition, seq: int, model_id: str, encode_ms: float, inline: bool,
               state_stamp_ns: int = 0, frame_stamps_ns=(), trigger: str = "") -> SemanticFeatures:
    msg = SemanticFeatures()
    msg.header.stamp = to_time(cond.stamp_ns)
    msg.state_stamp = to_time(state_stamp_ns)
    msg.frame_stamps = [to_time(s) for s in frame_stamps_ns]
    msg.seq = int(seq)
    msg.instruction = cond.instruction
    msg.model_id = model_id
    msg.feature_kind = FEATURE_KIND
    msg.num_prefix_tokens = int(cond.num_prefix_tokens[0])
    msg.encode_time_ms = float(encode_ms)
    msg.trigger = trigger
    msg.transport = SemanticFeatures.TRANSPORT_INLINE if inline else SemanticFeatures.TRANSPORT_IN_PROCESS
    blobs = []
    for name, tensor in cond.tensors().items():
        blob = TensorBlob(name=name, dtype=str(tensor.dtype).removeprefix("torch."), shape=list(tensor.shape))
        if inline:
            raw = tensor.detach().contiguous().cpu().view(torch.uint8).numpy().reshape(-1)
            blob.data = raw.tobytes()
        blobs.append(blob)
    msg.tensors = blobs
    return msg


def from_message(msg: SemanticFeatures, device: str | torch.device = "cpu") -> SemanticCondition:
    """Rebuild the condition from an inline message.

    Raises:
        MessageError: not inline, an unknown dtype, or a payload whose size does not match its shape.
    """
    if msg.transport != SemanticFeatures.TRANSPORT_INLINE:
        raise MessageError(f"semantic features seq {msg.seq} use transport {msg.transport!r}: no inline payload")
    if msg.feature_kind != FEATURE_KIND:
        raise MessageError(f"semantic features kind {msg.feature_kind!r}, expected {FEATURE_KIND!r}")
    tensors = {}
    for blob in msg.tensors:
        if blob.dtype not in DTYPES:
            raise MessageError(f"tensor {blob.name!r}: unknown dtype {blob.dtype!r}; known {sorted(DTYPES)}")
        dtype = DTYPES[blob.dtype]
        shape = tuple(int(s) for s in blob.shape)
        expected = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
        raw = bytes(blob.data) if not isinstance(blob.data, (bytes, bytearray)) else blob.data
        if len(raw) != expected:
            raise MessageError(f"tensor {blob.name!r}: {len(raw)} bytes for shape {shape} {blob.dtype} ({expected} expected)")
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        tensors[blob.name] = flat.view(dtype).reshape(shape).to(device)
    try:
        return SemanticCondition.from_tensors(tensors, from_time(msg.header.stamp), msg.instruction)
    except ValueError as err:
        raise MessageError(str(err)) from err
