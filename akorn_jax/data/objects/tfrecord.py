"""TFRecord files and tf.train.Example protos, decoded in pure Python (no TensorFlow)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterator

import numpy as np

def _crc32c_table() -> list[int]:
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC-32C (Castagnoli) of `data` (pure Python: use on short strings)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _read_at_most(f, length: int) -> bytes:
  """Up to `length` bytes of `f`, read in pieces of at most 16 MiB (nothing allocated up front)."""
  pieces, left = [], length
  while left > 0:
    piece = f.read(min(left, 1 << 24))
    if not piece:
      break
    pieces.append(piece)
    left -= len(piece)
  return b"".join(pieces)


def read_tfrecord(path: str) -> Iterator[bytes]:
  """Yields the records of a TFRecord file, GZIP-compressed or not (detected from the magic bytes).

  Framing: uint64 length, uint32 masked CRC of the length, data, uint32 masked CRC of the data. The
  length CRC is checked (it catches a wrong compression guess or a truncated file); the data CRC is
  not, since pure-Python CRC over megabyte records would dominate the conversion time.
  """
  with open(path, "rb") as raw:
    gzipped = raw.read(2) == b"\x1f\x8b"
  size = os.path.getsize(path)
  index = 0
  try:
    with (gzip.open if gzipped else open)(path, "rb") as f:
      while header := f.read(12):
        if len(header) < 12:
          raise ValueError(f"{path}: truncated header of record {index}; re-copy the file.")
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if masked_crc32c(length_bytes) != length_crc:
          raise ValueError(f"{path}: bad length CRC at record {index}; is this a TFRecord file?")
        (length,) = struct.unpack("<Q", length_bytes)
        # A crafted length must not allocate: uncompressed, a record fits in the file; compressed,
        # it is read in pieces, so a short stream ends as "truncated" below.
        if not gzipped and length > size - f.tell():
          raise ValueError(f"{path}: record {index} claims {length} bytes but only "
                           f"{size - f.tell()} remain in the file; it is corrupt or truncated.")
        data = _read_at_most(f, length)
        if len(data) < length or len(f.read(4)) < 4:
          raise ValueError(f"{path}: record {index} is truncated; re-copy the file.")
        yield data
        index += 1
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise ValueError(f"{path}: the gzip stream is damaged or truncated at record {index} "
                     f"({type(e).__name__}: {e}); re-copy the file.") from e


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = buf[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
  """Yields (field number, wire type, value) of a protobuf message; value is bytes for wire type 2."""
  pos = 0
  while pos < len(buf):
    key, pos = _varint(buf, pos)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 1:
      value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
    elif wire == 2:
      length, pos = _varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
    else:
      raise ValueError(f"Unsupported protobuf wire type {wire} (field {number}).")
    yield number, wire, value


def _bytes_list(buf: bytes) -> bytes:
  # The multi-object datasets store pixels as one 1-byte string per value: each is the 3 bytes
  # (tag 0x0A, length 1, value), so a numpy stride reads a whole image at once.
  arr = np.frombuffer(buf, np.uint8)
  if arr.size % 3 == 0 and (arr[0::3] == 0x0A).all() and (arr[1::3] == 1).all():
    return arr[2::3].tobytes()
  return b"".join(value for number, wire, value in _fields(buf) if number == 1 and wire == 2)


def _float_list(buf: bytes) -> np.ndarray:
  parts = [np.frombuffer(v, "<f4") if wire == 2 else np.array([v], "<u4").view("<f4")
           for number, wire, v in _fields(buf) if number == 1]
  return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _int64_list(buf: bytes) -> np.ndarray:
  values = []
  for number, wire, v in _fields(buf):
    if number != 1:
      continue
    if wire == 2:  # packed
      pos = 0
      while pos < len(v):
        x, pos = _varint(v, pos)
        values.append(x)
    else:
      values.append(v)
  return np.array([x - (1 << 64) if x >= 1 << 63 else x for x in values], np.int64)


def parse_example(data: bytes) -> dict[str, bytes | np.ndarray]:
  """Decodes a serialised tf.train.Example.

  Returns:
    feature name -> value: a bytes_list gives its strings concatenated (the multi-object datasets
    store raw pixel bytes either as one string or as one string per byte), a float_list a float32
    array, an int64_list an int64 array.
  """
  out = {}
  for number, _, features in _fields(data):
    if number != 1:  # Example.features
      continue
    for number, _, entry in _fields(features):
      if number != 1:  # Features.feature (map entries)
        continue
      name, feature = "", b""
      for number, _, value in _fields(entry):
        if number == 1:
          name = value.decode()
        elif number == 2:
          feature = value
      decoders = {1: _bytes_list, 2: _float_list, 3: _int64_list}
      out[name] = np.zeros(0, np.float32)  # a Feature with no kind set
      for number, _, value in _fields(feature):
        out[name] = decoders[number](value)
  return out
