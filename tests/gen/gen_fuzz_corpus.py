#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_safetensors.c: small valid safetensors files
covering every dtype, metadata, scalars, empty tensors, escaped names and dagrad's own keys,
and a few near-misses. Standard library only; the output is deterministic.

    /usr/bin/python3 tests/gen/gen_fuzz_corpus.py   # rewrites tests/fuzz/corpus_safetensors/
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus_safetensors")
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
         "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def pack(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes) -> file bytes."""
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def raw(header, data):
    return struct.pack("<Q", len(header)) + header + data


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def filled(dtype, shape, seed):
    n = numel(shape) * SIZES[dtype]
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n))


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "empty_header": pack([]),
        "one_f32": pack([("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6))]),
        "every_dtype": pack([("t_" + d.lower(), d, [3], filled(d, [3], i))
                             for i, d in enumerate(SIZES)]),
        "metadata": pack([("b", "F32", [1], struct.pack("<f", 0.5))],
                         {"format": "pt", "note": "x\"y\\z\n"}),
        "scalar_and_empty": pack([("s", "F64", [], struct.pack("<d", 3.25)),
                                  ("e", "F32", [0, 4], b""),
                                  ("h", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00))]),
        "escaped_names": pack([("a \"q\" \\ \u00e9", "BF16", [2], struct.pack("<2H", 0x3F80, 0)),
                               ("\u0001ctl", "U8", [1], b"\x07")]),
        "dagrad_checkpoint": pack(
            [("fc1.weight", "F32", [3, 4], filled("F32", [3, 4], 1)),
             ("fc1.bias", "F32", [4], filled("F32", [4], 2)),
             ("optimizer.state.0.exp_avg", "F32", [3, 4], filled("F32", [3, 4], 3)),
             ("optimizer.state.0.exp_avg_sq", "F32", [3, 4], filled("F32", [3, 4], 4)),
             ("optimizer.state.1.exp_avg", "F32", [4], filled("F32", [4], 5)),
             ("optimizer.state.1.exp_avg_sq", "F32", [4], filled("F32", [4], 6))],
            {"format": "dagrad", "optimizer": "adamw", "optimizer.step": "14",
             "optimizer.param_count": "2", "fit.epoch": "2", "fit.step": "14",
             "fit.seed": "99", "fit.best_loss": "0.5", "fit.best_epoch": "2",
             "fit.epochs_without_improvement": "0", "rng": "0" * 63 + "1"}),
        "unpadded_8d": pack([("r", "I32", [1, 1, 1, 1, 1, 1, 1, 2], filled("I32", [2], 9))],
                            pad=False),
        # Near misses: each is refused by one check.
        "bad_truncated": pack([("a", "F32", [1], b"\0" * 4)])[:-2],
        "bad_dup": raw(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                       b'"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}', b"\0" * 4),
    }
    for name, blob in sorted(files.items()):
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
