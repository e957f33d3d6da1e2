"""PyTorch fixtures for the pre-norm transformer block and positional embedding
(tests/test_transformer.c), in evaluation mode (no dropout): outputs and gradients of a
weighted sum. Weights are stored in dagrad's layout ([in, out] for dense weights).
Run: /usr/bin/python3 tests/gen/gen_transformer.py"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

B, T, C, HEADS, MAXLEN = 2, 5, 8, 2, 7


def block(x, p, causal):
    def lin(v, name):
        return v @ p[name + ".weight"] + p[name + ".bias"]

    a = F.layer_norm(x, (C,), p["blk.ln1.weight"], p["blk.ln1.bias"], 1e-5)
    q, k, v = lin(a, "blk.attn.qkv").split(C, dim=2)
    d = C // HEADS

    def heads(t):
        return t.reshape(B, T, HEADS, d).permute(0, 2, 1, 3)

    q, k, v = heads(q), heads(k), heads(v)
    s = q @ k.transpose(-1, -2) / math.sqrt(d)
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    y = (s.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, T, C)
    h = x + lin(y, "blk.attn.proj")
    m = F.layer_norm(h, (C,), p["blk.ln2.weight"], p["blk.ln2.bias"], 1e-5)
    m = lin(F.gelu(lin(m, "blk.mlp.fc")), "blk.mlp.proj")
    return h + m


def main():
    torch.manual_seed(5)
    shapes = {
        "pos.weight": (MAXLEN, C),
        "blk.ln1.weight": (C,), "blk.ln1.bias": (C,),
        "blk.attn.qkv.weight": (C, 3 * C), "blk.attn.qkv.bias": (3 * C,),
        "blk.attn.proj.weight": (C, C), "blk.attn.proj.bias": (C,),
        "blk.ln2.weight": (C,), "blk.ln2.bias": (C,),
        "blk.mlp.fc.weight": (C, 4 * C), "blk.mlp.fc.bias": (4 * C,),
        "blk.mlp.proj.weight": (4 * C, C), "blk.mlp.proj.bias": (C,),
    }
    p = {}
    for name, shape in shapes.items():
        t = torch.randn(shape) * 0.5
        if name.endswith("ln1.weight") or name.endswith("ln2.weight"):
            t = 1 + 0.2 * torch.randn(shape)
        p[name] = t.requires_grad_(True)
    out = []
    for causal in (True, False):
        tag = "causal" if causal else "full"
        x = torch.randn(B, T, C, requires_grad=True)
        xp = x + p["pos.weight"][:T]
        y = block(xp, p, causal)
        w = torch.randn(B, T, C)
        for t in p.values():
            t.grad = None
        (y * w).sum().backward()
        out.append((tag + ".x", x.detach()))
        out.append((tag + ".y", y.detach()))
        out.append((tag + ".w", w))
        out.append((tag + ".grad_x", x.grad))
        for name, t in p.items():
            out.append((tag + ".grad_" + name, t.grad.clone()))
    for name, t in p.items():
        out.append(("param." + name, t.detach()))
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "transformer.dgfx")
    write_fixture(path, out)
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
