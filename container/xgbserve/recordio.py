"""SageMaker's RecordIO-wrapped protobuf ``Record`` format, read and written without a protobuf library.

Framing (MXNet RecordIO): each record is ``uint32 magic 0xCED7230A``, ``uint32 length`` (low 29 bits;
the top 3 bits flag multi-part records, which SageMaker does not send for inference), the payload,
then zero padding to a 4-byte boundary. The payload is ``aialgs.data.Record``:

    Record         { map<string, Value> features = 1; map<string, Value> label = 2; ... }
    Value          { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3; ... }
    Float32Tensor  { repeated float values = 1 [packed]; repeated uint64 keys = 2 [packed];
                     repeated uint64 shape = 3 [packed]; }   (Float64Tensor: double values)

Hand-written because the image should not carry protobuf for four message types; every malformed
byte raises :class:`RecordIOError` (a client error), never anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAGIC = 0xCED7230A
_LENGTH_MASK = (1 << 29) - 1
_HEADER = struct.Struct("<II")
_MAX_VARINT_BYTES = 10

# Wire types.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class RecordIOError(ValueError):
    """The payload is not valid RecordIO-protobuf; the message says where and why."""


@dataclass(frozen=True)
class Tensor:
    """One feature tensor: dense ``values``, or sparse ``values`` at ``keys`` in a vector of ``shape``."""

    values: npt.NDArray[np.float64]
    keys: tuple[int, ...]
    shape: tuple[int, ...]


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
        if pos >= end:
            raise RecordIOError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> 64:
                raise RecordIOError("varint larger than 64 bits")
            return result, pos
    raise RecordIOError("varint longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, value or payload start, payload end) for each field."""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise RecordIOError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
        elif wire == _FIXED64:
            if pos + 8 > end:
                raise RecordIOError("truncated 64-bit field")
            yield number, wire, pos, pos + 8
            pos += 8
        elif wire == _FIXED32:
            if pos + 4 > end:
                raise RecordIOError("truncated 32-bit field")
            yield number, wire, pos, pos + 4
            pos += 4
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise RecordIOError("length-delimited field runs past the end of its message")
            yield number, wire, pos, pos + length
            pos += length
        else:
            raise RecordIOError(f"unsupported protobuf wire type {wire}")


def _packed_varints(buf: bytes, start: int, end: int) -> list[int]:
    out: list[int] = []
    pos = start
    while pos < end:
        value, pos = _varint(buf, pos, end)
        out.append(value)
    return out


def _tensor(buf: bytes, start: int, end: int, double: bool) -> Tensor:
    width, fixed_wire, dtype = (8, _FIXED64, "<f8") if double else (4, _FIXED32, "<f4")
    chunks: list[npt.NDArray[np.float64]] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == _LEN:
            if (b - a) % width:
                raise RecordIOError("packed tensor values are not a whole number of floats")
            chunks.append(
                np.frombuffer(buf, dtype=dtype, count=(b - a) // width, offset=a).astype(np.float64)
            )
        elif number == 1 and wire == fixed_wire:
            chunks.append(np.frombuffer(buf, dtype=dtype, count=1, offset=a).astype(np.float64))
        elif number in (2, 3):
            target = keys if number == 2 else shape
            if wire == _LEN:
                target.extend(_packed_varints(buf, a, b))
            elif wire == _VARINT:
                target.append(a)
            else:
                raise RecordIOError("tensor keys/shape must be varints")
        elif number == 1:
            raise RecordIOError("tensor values have the wrong wire type")
    values = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
    return Tensor(values=values, keys=tuple(keys), shape=tuple(shape))


def _value(buf: bytes, start: int, end: int) -> Tensor:
    found: Tensor | None = None
    for number, wire, a, b in _fields(buf, start, end):
        if wire != _LEN:
            continue
        if number == 2:
            found = _tensor(buf, a, b, double=False)
        elif number == 3:
            found = _tensor(buf, a, b, double=True)
        elif number == 7:
            raise RecordIOError("Int32Tensor features are not supported: send Float32Tensor values")
        elif number == 9:
            raise RecordIOError("Bytes features are not supported: send Float32Tensor values")
    if found is None:
        raise RecordIOError("feature value holds no Float32Tensor")
    return found


def _map_entry(buf: bytes, start: int, end: int) -> tuple[str, Tensor]:
    key = ""
    tensor: Tensor | None = None
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == _LEN:
            try:
                key = buf[a:b].decode("utf-8")
            except UnicodeDecodeError:
                raise RecordIOError("feature name is not UTF-8") from None
        elif number == 2 and wire == _LEN:
            tensor = _value(buf, a, b)
    if tensor is None:
        raise RecordIOError(f"feature {key!r} has no value")
    return key, tensor


def _record_features(buf: bytes, start: int, end: int) -> dict[str, Tensor]:
    features: dict[str, Tensor] = {}
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == _LEN:
            key, tensor = _map_entry(buf, a, b)
            features[key] = tensor
    return features


def iter_payloads(data: bytes) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of each RecordIO record's payload in ``data``."""
    pos = 0
    index = 0
    while pos < len(data):
        index += 1
        if pos + _HEADER.size > len(data):
            raise RecordIOError(f"record {index}: truncated RecordIO header")
        magic, raw_length = _HEADER.unpack_from(data, pos)
        if magic != MAGIC:
            raise RecordIOError(f"record {index}: bad RecordIO magic number 0x{magic:08x}")
        if raw_length >> 29:
            raise RecordIOError(f"record {index}: multi-part RecordIO records are not supported")
        length = raw_length & _LENGTH_MASK
        start = pos + _HEADER.size
        if start + length > len(data):
            raise RecordIOError(f"record {index}: record runs past the end of the payload")
        yield start, start + length
        pos = start + length + (-length % 4)


def count_records(data: bytes) -> int:
    """How many RecordIO records ``data`` frames, reading only their headers."""
    return sum(1 for _ in iter_payloads(data))


def read_records(data: bytes) -> list[dict[str, Tensor]]:
    """The ``features`` map of every record in ``data``."""
    records: list[dict[str, Tensor]] = []
    for index, (start, end) in enumerate(iter_payloads(data), start=1):
        try:
            records.append(_record_features(data, start, end))
        except RecordIOError as error:
            raise RecordIOError(f"record {index}: {error}") from None
    return records


# Writing ------------------------------------------------------------------------------------------


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _float32_value(values: npt.NDArray[np.float32]) -> bytes:
    tensor = _len_field(1, np.ascontiguousarray(values, dtype="<f4").tobytes())
    return _len_field(2, tensor)  # Value.float32_tensor


def encode_record(tensors: Mapping[str, npt.NDArray[np.float32]], field: int) -> bytes:
    """One ``Record`` with ``tensors`` under ``features`` (field 1) or ``label`` (field 2)."""
    return b"".join(
        _len_field(field, _len_field(1, name.encode()) + _len_field(2, _float32_value(values)))
        for name, values in tensors.items()
    )


def frame(payloads: Sequence[bytes]) -> bytes:
    """Wrap each payload in a RecordIO header and padding."""
    parts: list[bytes] = []
    for payload in payloads:
        parts.append(_HEADER.pack(MAGIC, len(payload)))
        parts.append(payload)
        parts.append(b"\0" * (-len(payload) % 4))
    return b"".join(parts)


def write_dense_features(rows: npt.NDArray[np.float32], name: str = "values") -> bytes:
    """RecordIO-protobuf for dense float32 rows (what SageMaker's SDK serializer sends)."""
    return frame([encode_record({name: row}, field=1) for row in rows])
