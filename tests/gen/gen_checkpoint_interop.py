#!/usr/bin/python3
"""PyTorch <-> dagrad checkpoint interop fixtures (tests/test_checkpoint_interop.c).

The safetensors format is read and written here by hand (struct + json + numpy), without the
safetensors package, so that the test also checks our reading of the specification.

    /usr/bin/python3 tests/gen/gen_checkpoint_interop.py
        PyTorch -> dagrad: writes tests/fixtures/
          torch_mlp.safetensors        a torch MLP's state_dict, F32, names "mlp.fc1.weight",
                                       ..., weights in torch's [out, in] layout
          torch_mlp_mixed.safetensors  the same weights rounded to and stored as F16 (fc1.weight),
                                       BF16 (fc1.bias), F64 (fc2.weight), F32 (fc2.bias)
          interop_io.safetensors       fixed inputs x [4, 5]; outputs y of the first model and
                                       y_mixed of the rounded one

    /usr/bin/python3 tests/gen/gen_checkpoint_interop.py --from-c build/tests/dagrad_mlp.safetensors
        dagrad -> PyTorch: loads the file the C test wrote (dagrad's MLP saved with
        transpose_2d and prefix "mlp."), strictly, into the same torch MLP, runs it on x and
        writes tests/fixtures/dagrad_mlp_torch_out.safetensors (y), and copies the C file to
        tests/fixtures/dagrad_mlp.safetensors, which the C test compares its output against
        byte for byte.

Layouts: dagrad's dense weight is [in, out] (y = x @ W); torch.nn.Linear's is [out, in]
(y = x @ W.T). The files hold torch's layout; the C side loads and saves with
transpose_2d = true. The MLP is y = fc2(tanh(fc1(x))), 5 -> 8 -> 3.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
NP_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, numpy array already of that dtype, or for BF16 a
    uint16 array of the bit patterns)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, array in tensors:
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """-> (dict name -> float32 numpy array, metadata dict); F32 and F64 only (what dagrad
    writes is F32)."""
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    metadata = header.pop("__metadata__", {})
    data = blob[8 + length:]
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=NP_DTYPES[entry["dtype"]])
        out[name] = array.reshape(entry["shape"]).astype(np.float32)
    return out, metadata


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class Wrapper(torch.nn.Module):
    """So that the state_dict names carry a prefix ("mlp.fc1.weight") the C test strips."""

    def __init__(self):
        super().__init__()
        self.mlp = MLP()

    def forward(self, x):
        return self.mlp(x)


def inputs():
    rng = np.random.default_rng(20240610)
    return rng.uniform(-2, 2, size=(4, 5)).astype(np.float32)


def bf16_bits(array):
    """float32 -> bfloat16 bit patterns, rounded to nearest even (as torch does)."""
    bits = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(torch.bfloat16)
    return bits.view(torch.int16).numpy().view(np.uint16)


def torch_to_dagrad():
    torch.manual_seed(0)
    model = Wrapper()
    x = inputs()
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(FIXTURES, "torch_mlp.safetensors"),
                      [(k, "F32", v) for k, v in state.items()], {"format": "pt"})

    # The same weights stored in other dtypes; the reference model uses the rounded values.
    w1 = state["mlp.fc1.weight"].astype(np.float16)
    b1 = bf16_bits(state["mlp.fc1.bias"])
    w2 = state["mlp.fc2.weight"].astype(np.float64)
    b2 = state["mlp.fc2.bias"]
    rounded = {
        "mlp.fc1.weight": torch.from_numpy(w1.astype(np.float32)),
        "mlp.fc1.bias": torch.from_numpy(b1.astype(np.int16)).view(torch.bfloat16).float(),
        "mlp.fc2.weight": torch.from_numpy(w2.astype(np.float32)),
        "mlp.fc2.bias": torch.from_numpy(b2),
    }
    model.load_state_dict(rounded)
    with torch.no_grad():
        y_mixed = model(torch.from_numpy(x)).numpy()
    write_safetensors(os.path.join(FIXTURES, "torch_mlp_mixed.safetensors"),
                      [("mlp.fc1.weight", "F16", w1), ("mlp.fc1.bias", "BF16", b1),
                       ("mlp.fc2.weight", "F64", w2), ("mlp.fc2.bias", "F32", b2)],
                      {"format": "pt"})
    write_safetensors(os.path.join(FIXTURES, "interop_io.safetensors"),
                      [("x", "F32", x), ("y", "F32", y), ("y_mixed", "F32", y_mixed)])


def dagrad_to_torch(c_file):
    state, metadata = read_safetensors(c_file)
    assert metadata.get("format") == "pt", metadata
    model = Wrapper()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        y = model(torch.from_numpy(inputs())).numpy()
    write_safetensors(os.path.join(FIXTURES, "dagrad_mlp_torch_out.safetensors"),
                      [("y", "F32", y)])
    shutil.copyfile(c_file, os.path.join(FIXTURES, "dagrad_mlp.safetensors"))
    print("torch ran dagrad's checkpoint: y[0] =", y[0])


def main():
    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--from-c":
        dagrad_to_torch(sys.argv[2])
    elif len(sys.argv) == 1:
        torch_to_dagrad()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
