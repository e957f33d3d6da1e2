#!/usr/bin/python3
"""PyTorch peer of examples/charlm.c: the same character models, recipe, batch, steps and
thread count, for side-by-side validation loss and training tokens/s.

    /usr/bin/python3 bench/torch_charlm.py --model lstm|gru|gpt [--data kjv.txt] [--steps N]
        [--batch 32] [--seq 128] [--layers 1] [--lr LR] [--threads 1] [--seed 1]
        [--eval-every 100] [--val-batches 20] [--target-loss X]

Data as charlm: the text's distinct characters sorted by code point are the vocabulary; the
last 5% (by position) is validation; training windows are uniform random starts in the first
95% (numpy's generator, so not the same windows as charlm's, the same distribution);
validation is the first val_batches * batch consecutive windows of the held-out part (the
same windows as charlm's).
lstm: Embedding(V, 64) -> LSTM(64, 256, layers, batch_first) -> Linear(256, V); Adam lr 2e-3.
gru:  the same with nn.GRU.
gpt:  token + learned position embeddings (N(0, 0.02)), dropout 0.1, 4 pre-norm blocks
      (4 heads, width 128, GELU MLP of 512, dropout 0.1 on attention weights and both residual
      branches), final LayerNorm, Linear(128, V); AdamW lr 2e-3, weight decay 0.1 on every
      parameter, cosine schedule with a linear warm-up of steps/20 to lr/10 (dg_schedule_cosine).
Both: cross-entropy in nats/char, gradient norm clipped at 1.0.
Prints `step ...` progress, then `val_loss X` and `train_tokens_per_s N` (training steps only:
batch fetch, forward, backward, clip, optimizer step; evaluation excluded), as charlm does.
--target-loss X stops at the first evaluation with val_loss <= X and prints `steps_to_target N`
and `seconds_to_target S` (wall time since training started, evaluations included), as charlm.
OpenBLAS is forced to its SkylakeX kernel and given the same thread count (see torch_mlp.py).
"""
import argparse
import math
import sys
import time

from torch_util import find_openblas, loaded_blas, pin_openblas_core, set_blas_threads

pin_openblas_core()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def set_threads(n):
    """Sets torch's and OpenBLAS's threads; says which BLAS torch really uses (on a machine
    without Debian's OpenBLAS, python3-torch runs on the netlib reference BLAS, ~10x slower:
    such a run is no baseline)."""
    torch.set_num_threads(n)
    torch.ones(2, 2) @ torch.ones(2, 2)  # the BLAS library is mapped on first use
    blas = loaded_blas()
    print("# blas: %s" % (" ".join(blas) or "none found"))
    openblas = find_openblas()
    if openblas is None:
        print("torch_charlm: WARNING: torch is not using OpenBLAS (apt-get install "
              "libopenblas0-pthread); its tokens/s are not a fair baseline", file=sys.stderr)
    set_blas_threads(openblas, n)


class Block(nn.Module):
    def __init__(self, c, heads, dropout):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c)
        self.fc = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        d = c // self.heads
        q, k, v = (z.view(b, t, self.heads, d).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d) + mask[:t, :t]
        y = (self.drop(s.softmax(-1)) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.fc2(F.gelu(self.fc(self.ln2(x)))))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, c=128, heads=4, blocks=4, dropout=0.1):
        super().__init__()
        self.tok = nn.Embedding(vocab, c)
        self.pos = nn.Parameter(torch.zeros(ctx, c))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(c, heads, dropout) for _ in range(blocks))
        self.ln_f = nn.LayerNorm(c)
        self.head = nn.Linear(c, vocab)
        self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), -1e9), 1))
        for name, p in self.named_parameters():
            if name.startswith("head"):
                continue
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif "ln" not in name:
                nn.init.zeros_(p)

    def forward(self, x):
        h = self.drop(self.tok(x) + self.pos[: x.shape[1]])
        for blk in self.blocks:
            h = blk(h, self.mask)
        return self.head(self.ln_f(h))


class RecurrentLM(nn.Module):
    def __init__(self, vocab, layers, cell, embed=64, hidden=256):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = cell(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lstm", choices=["lstm", "gru", "gpt"])
    ap.add_argument("--data", default="kjv.txt")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--lr", type=float, default=-1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-batches", type=int, default=20)
    ap.add_argument("--target-loss", type=float, default=0)
    a, _ = ap.parse_known_args()  # sampling options of charlm are ignored here
    gpt = a.model == "gpt"
    lr = a.lr if a.lr > 0 else 2e-3  # charlm's default for both models
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.data, encoding="utf-8") as f:
        text = f.read()
    vocab = sorted(set(text))
    lookup = {ch: i for i, ch in enumerate(vocab)}
    data = torch.tensor([lookup[ch] for ch in text], dtype=torch.long)
    n = len(data)
    split = n - int(n * 0.05)
    print("torch_charlm: %d characters, vocabulary %d, train %d / validation %d"
          % (n, len(vocab), split, n - split))
    if gpt:
        model = GPT(len(vocab), a.seq)
    else:
        model = RecurrentLM(len(vocab), a.layers, nn.GRU if a.model == "gru" else nn.LSTM)
    if gpt:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
        warm, total, min_lr = a.steps // 20, a.steps, lr / 10

        def lr_at(t):
            if t < warm:
                return (t + 1) / warm
            if t >= total:
                return min_lr / lr
            return (min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (t - warm) / (total - warm))) / 2) / lr
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = None
    print("model %s: %d parameters, batch %d x %d, %d steps, lr %g, %d thread(s)"
          % (a.model, sum(p.numel() for p in model.parameters()), a.batch, a.seq, a.steps, lr,
             a.threads))
    rng = np.random.default_rng(a.seed)
    offsets = torch.arange(a.seq)

    def validate():
        model.eval()
        per = a.batch * a.seq
        batches = min(a.val_batches, (n - split - 1) // per)
        total = 0.0
        with torch.no_grad():
            for b in range(batches):
                starts = split + b * per + torch.arange(a.batch) * a.seq
                idx = starts[:, None] + offsets
                logits = model(data[idx])
                total += F.cross_entropy(logits.reshape(-1, len(vocab)),
                                         data[idx + 1].reshape(-1)).item()
        model.train()
        return total / batches

    train_seconds, recent, recent_n, val = 0.0, 0.0, 0, float("nan")
    wall = time.perf_counter()
    steps_done, reached = 0, False
    for step in range(1, a.steps + 1):
        t0 = time.perf_counter()
        starts = torch.from_numpy(rng.integers(0, split - a.seq, a.batch))
        idx = starts[:, None] + offsets
        logits = model(data[idx])
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), data[idx + 1].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if sched:
            sched.step()
        train_seconds += time.perf_counter() - t0
        recent += loss.item()
        recent_n += 1
        steps_done = step
        if step % a.eval_every == 0 or step == a.steps:
            val = validate()
            print("step %5d  train_loss %.4f  val_loss %.4f nats/char  %.0f tokens/s  %.1f s"
                  % (step, recent / recent_n, val, a.batch * a.seq * step / train_seconds,
                     time.perf_counter() - wall), flush=True)
            recent, recent_n = 0.0, 0
            if a.target_loss > 0 and val <= a.target_loss:
                reached = True
                print("steps_to_target %d" % step)
                print("seconds_to_target %.1f" % (time.perf_counter() - wall), flush=True)
                break
    if a.target_loss > 0 and not reached:
        print("target_not_reached %g" % a.target_loss)
    print("val_loss %.4f" % val)
    print("train_tokens_per_s %.0f" % (a.batch * a.seq * steps_done / train_seconds))


if __name__ == "__main__":
    main()
