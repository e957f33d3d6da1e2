"""Op cases for the sequence ops (issue 12); the C rows with the same names are in
tests/cases_seq.c."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def embedding(table, indices):
    return F.embedding(indices, table)


def embedding_grad(grad, indices, table):
    d = table.shape[1]
    out = torch.zeros(table.shape, dtype=grad.dtype)
    return out.index_add(0, indices.reshape(-1), grad.reshape(-1, d))


def cmp(fn):
    return lambda a, b: fn(a, b).to(torch.float64)


def where(c, a, b):
    return torch.where(c != 0, a, b)


def where_compare(a, b):
    return torch.where(a > b, a, b * 0.5)


TIES_A = [0.5, -1.0, 2.0, 0.0, 1.5, -0.25]
TIES_B = [0.5, 1.0, 2.0, -3.0, 1.5, 0.75]


def causal_softmax(x):
    t = x.shape[-1]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    return torch.softmax(x.masked_fill(~mask, float("-inf")), -1)


def masked_softmax(x, mask):
    return torch.softmax(x.masked_fill(mask == 0, float("-inf")), 1)


def attention_ref(q, k, v, causal=False):
    """softmax(q k^T / sqrt(Dh)) v; causal: key j visible to query i when j <= i + S - T
    (bottom-right); a query with no visible key gives zeros."""
    t, s = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
    if not causal:
        return torch.softmax(scores, -1) @ v
    i = torch.arange(t)[:, None]
    j = torch.arange(s)[None, :]
    visible = j <= i + (s - t)
    p = torch.softmax(scores.masked_fill(~visible, -1e30), -1)
    p = p * visible.any(-1, keepdim=True).to(p.dtype)
    return p @ v


def attention_packed_ref(heads, causal):
    """qkv [B,T,3C] -> [B,T,C]: q, k, v side by side, each split into heads; heads merged."""
    def fn(qkv):
        b, t, c3 = qkv.shape
        c = c3 // 3
        d = c // heads
        q, k, v = (z.reshape(b, t, heads, d).transpose(1, 2) for z in qkv.split(c, -1))
        return attention_ref(q, k, v, causal).transpose(1, 2).reshape(b, t, c)
    return fn


def attention_grad_ref(which, causal):
    def fn(q, k, v, out, go):
        t, s = q.shape[-2], k.shape[-2]
        scale = 1.0 / (q.shape[-1] ** 0.5)
        scores = q @ k.transpose(-1, -2) * scale
        i = torch.arange(t)[:, None]
        j = torch.arange(s)[None, :]
        visible = (j <= i + (s - t)) if causal else torch.ones(t, s, dtype=torch.bool)
        p = torch.softmax(scores.masked_fill(~visible, -1e30), -1)
        p = p * visible.any(-1, keepdim=True).to(p.dtype)
        dp = go @ v.transpose(-1, -2)
        d = (go * out).sum(-1, keepdim=True)
        ds = p * (dp - d)
        if which == "q":
            return scale * ds @ k
        dk = scale * ds.transpose(-1, -2) @ q
        dv = p.transpose(-1, -2) @ go
        if which == "k":
            return dk
        if which == "kv":
            return torch.cat([dk, dv], -1)
        if which == "qkv":
            return torch.cat([scale * ds @ k, dk, dv], -1)
        return dv
    return fn


def lstm_seq_ref(xw, w_hh, bias=None, h0=None, c0=None):
    """The fused LSTM recurrence: per step [h | c | i | f | g | o] (gate order i, f, g, o)."""
    b, t, h4 = xw.shape
    hid = h4 // 4
    h = h0 if h0 is not None else torch.zeros(b, hid, dtype=xw.dtype)
    c = c0 if c0 is not None else torch.zeros(b, hid, dtype=xw.dtype)
    rows = []
    for s in range(t):
        a = xw[:, s] + h @ w_hh.t()
        if bias is not None:
            a = a + bias
        i, f = torch.sigmoid(a[:, :hid]), torch.sigmoid(a[:, hid:2 * hid])
        g, o = torch.tanh(a[:, 2 * hid:3 * hid]), torch.sigmoid(a[:, 3 * hid:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        rows.append(torch.cat([h, c, i, f, g, o], 1))
    return torch.stack(rows, 1)


def lstm_seq_grad_ref(gy, y, w_hh, c0=None):
    """lstm_seq_grad's formula in y's entries: rows t < T d a_t, then (with c0, whose gradient
    the case asks for) row T [dh0 | dc0 | 0 | 0]."""
    b, t, _ = y.shape
    hid = w_hh.shape[1]
    if gy.shape[2] == hid:  # h's part alone: the others are zero
        gy = torch.cat([gy, torch.zeros(b, t, 5 * hid, dtype=gy.dtype)], 2)
    dh_carry = torch.zeros(b, hid, dtype=y.dtype)
    dc_carry = torch.zeros(b, hid, dtype=y.dtype)
    out = torch.zeros(b, t + 1, 4 * hid, dtype=y.dtype)
    for s in reversed(range(t)):
        part = [y[:, s, k * hid:(k + 1) * hid] for k in range(6)]
        gp = [gy[:, s, k * hid:(k + 1) * hid] for k in range(6)]
        c, i, f, g, o = part[1:]
        c_prev = y[:, s - 1, hid:2 * hid] if s > 0 else (
            c0 if c0 is not None else torch.zeros(b, hid, dtype=y.dtype))
        tc = torch.tanh(c)
        dh = gp[0] + dh_carry
        dc = gp[1] + dc_carry + dh * o * (1 - tc * tc)
        d = torch.cat([(dc * g + gp[2]) * i * (1 - i), (dc * c_prev + gp[3]) * f * (1 - f),
                       (dc * i + gp[4]) * (1 - g * g), (dh * tc + gp[5]) * o * (1 - o)], 1)
        out[:, s] = d
        dc_carry = dc * f
        dh_carry = d @ w_hh
    if c0 is None:  # the case wants only w_hh's gradient: no state row
        return out[:, :t]
    out[:, t, :hid] = dh_carry
    out[:, t, hid:2 * hid] = dc_carry
    return out


def gru_seq_ref(xw, w_hh, b_ih=None, b_hh=None, h0=None):
    """The fused GRU recurrence (torch.nn.GRU's equations, gate order r, z, n): per step
    [h | r | z | n | hn], hn = h W_hn^T + b_hn."""
    b, t, h3 = xw.shape
    hid = h3 // 3
    h = h0 if h0 is not None else torch.zeros(b, hid, dtype=xw.dtype)
    rows = []
    for s in range(t):
        x = xw[:, s] + (b_ih if b_ih is not None else 0)
        hw = h @ w_hh.t() + (b_hh if b_hh is not None else 0)
        r = torch.sigmoid(x[:, :hid] + hw[:, :hid])
        z = torch.sigmoid(x[:, hid:2 * hid] + hw[:, hid:2 * hid])
        hn = hw[:, 2 * hid:]
        n = torch.tanh(x[:, 2 * hid:] + r * hn)
        h = (1 - z) * n + z * h
        rows.append(torch.cat([h, r, z, n, hn], 1))
    return torch.stack(rows, 1)


def gru_seq_grad_ref(gy, y, w_hh, h0=None):
    """gru_seq_grad's formula in y's entries: rows t < T [d a_r | d a_z | d a_n | d hn], then
    (with h0, whose gradient the case asks for) row T [dh0 | 0 | 0 | 0]."""
    b, t, _ = y.shape
    hid = w_hh.shape[1]
    if gy.shape[2] == hid:  # h's part alone: the others are zero
        gy = torch.cat([gy, torch.zeros(b, t, 4 * hid, dtype=gy.dtype)], 2)
    dh_carry = torch.zeros(b, hid, dtype=y.dtype)
    out = torch.zeros(b, t + 1, 4 * hid, dtype=y.dtype)
    for s in reversed(range(t)):
        _, r, z, n, hn = [y[:, s, k * hid:(k + 1) * hid] for k in range(5)]
        gp = [gy[:, s, k * hid:(k + 1) * hid] for k in range(5)]
        h_prev = y[:, s - 1, :hid] if s > 0 else (
            h0 if h0 is not None else torch.zeros(b, hid, dtype=y.dtype))
        dh = gp[0] + dh_carry
        dn = dh * (1 - z) + gp[3]
        dz = dh * (h_prev - n) + gp[2]
        da_n = dn * (1 - n * n)
        dhn = da_n * r + gp[4]
        da_r = (da_n * hn + gp[1]) * r * (1 - r)
        da_z = dz * z * (1 - z)
        out[:, s] = torch.cat([da_r, da_z, da_n, dhn], 1)
        dh_carry = dh * z + torch.cat([da_r, da_z, dhn], 1) @ w_hh
    if h0 is None:  # the case wants only w_hh's gradient: no state row
        return out[:, :t]
    out[:, t, :hid] = dh_carry
    return out


CASES = [
    Case("embedding_basic", "embedding",
         [Spec([7, 4]), Spec([2, 3], lo=0, hi=7, dtype="i32")], embedding),
    # repeated rows: the table's gradient adds them up
    Case("embedding_repeat", "embedding",
         [Spec([5, 3]), Spec([3, 4], dtype="i32", values=[0, 4, 4, 1, 0, 0, 2, 4, 1, 1, 3, 0])],
         embedding),
    Case("embedding_flat", "embedding",
         [Spec([11, 6]), Spec([9], lo=0, hi=11, dtype="i32")], embedding),
    Case("embedding_grad_basic", "embedding_grad",
         [Spec([2, 3, 4]), Spec([2, 3], dtype="i32", values=[1, 0, 5, 1, 1, 6]), Spec([7, 4])],
         embedding_grad),
    # comparisons: ties exercised with explicit equal elements; zero gradient
    Case("equal_public", "equal", [Spec([2, 3], values=TIES_A), Spec([2, 3], values=TIES_B)],
         cmp(torch.eq), grad=False),
    Case("not_equal_ties", "not_equal",
         [Spec([2, 3], values=TIES_A), Spec([2, 3], values=TIES_B)], cmp(torch.ne), grad=False),
    Case("greater_public", "greater", [Spec([3, 4]), Spec([4])], cmp(torch.gt), grad=False),
    Case("greater_equal_ties", "greater_equal",
         [Spec([2, 3], values=TIES_A), Spec([2, 3], values=TIES_B)], cmp(torch.ge), grad=False),
    Case("less_bcast", "less", [Spec([3, 1]), Spec([4])], cmp(torch.lt), grad=False),
    Case("less_equal_ties", "less_equal",
         [Spec([2, 3], values=TIES_A), Spec([2, 3], values=TIES_B)], cmp(torch.le), grad=False),
    Case("where_basic", "where",
         [Spec([2, 3], values=[1, 0, 0, 1, 1, 0]), Spec([2, 3]), Spec([2, 3])], where),
    # cond [2,1], a [3], b []: every operand broadcast, gradients summed back
    Case("where_bcast", "where",
         [Spec([2, 1], values=[0, 1]), Spec([3]), Spec([])], where),
    Case("where_compare", "where", [Spec([3, 4]), Spec([3, 4])], where_compare),
    Case("argmax_axis1", "argmax", [Spec([3, 5, 2])],
         lambda x: torch.argmax(x, 1).to(torch.float64), grad=False),
    # ties: the first index wins
    Case("argmax_ties", "argmax", [Spec([2, 4], values=[1, 3, 3, 0, 2, 2, 2, 2])],
         lambda x: torch.argmax(x, -1).to(torch.float64), grad=False),
    Case("argmin_axis0", "argmin", [Spec([4, 3])],
         lambda x: torch.argmin(x, 0).to(torch.float64), grad=False),
    Case("cast_round_trip", "cast", [Spec([2, 5], lo=-9.0, hi=9.0)],
         lambda x: x.trunc(), grad=False),
    Case("cast_from_i32", "cast", [Spec([7], lo=-100, hi=100, dtype="i32")],
         lambda x: x.to(torch.float64), grad=False),
    # composites: clamp kept away from its kinks at -0.5 and 0.75
    Case("clamp_basic", "where",
         [Spec([3, 4], values=[-1.5, -0.7, -0.3, 0.0, 0.2, 0.5, 0.7, 0.9, 1.2, -0.9, 0.3, 0.6])],
         lambda x: torch.clamp(x, -0.5, 0.75)),
    Case("min_axis1", "max", [Spec([3, 4])], lambda x: torch.amin(x, 1)),
    Case("min_all", "max", [Spec([2, 3])], lambda x: torch.amin(x, (0, 1), keepdim=True)),
    Case("logsumexp_last", "max", [Spec([3, 5])], lambda x: torch.logsumexp(x, -1)),
    Case("logsumexp_large", "max", [Spec([2, 4], lo=-500.0, hi=500.0)],
         lambda x: torch.logsumexp(x, -1)),
    Case("logsumexp_keep", "max", [Spec([4, 3])],
         lambda x: torch.logsumexp(x, 0, keepdim=True)),
    Case("variance_unbiased", "size_ratio", [Spec([3, 6])],
         lambda x: torch.var(x, -1, unbiased=True)),
    Case("variance_biased", "size_ratio", [Spec([2, 3, 4])],
         lambda x: torch.var(x, (0, 2), unbiased=False, keepdim=True)),
    Case("masked_softmax_causal", "softmax", [Spec([2, 4, 4])], causal_softmax),
    Case("masked_softmax_mask", "where",
         [Spec([3, 5]), Spec([3, 5], values=[1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1])],
         masked_softmax),
    Case("attention_basic", "attention",
         [Spec([2, 2, 3, 4]), Spec([2, 2, 5, 4]), Spec([2, 2, 5, 3])], attention_ref),
    Case("attention_2d", "attention", [Spec([3, 4]), Spec([5, 4]), Spec([5, 2])], attention_ref),
    Case("attention_causal", "attention",
         [Spec([1, 2, 6, 4]), Spec([1, 2, 6, 4]), Spec([1, 2, 6, 4])],
         lambda q, k, v: attention_ref(q, k, v, True)),
    # two new queries against five cached keys: query i sees keys j <= i + 3
    Case("attention_causal_cache", "attention",
         [Spec([1, 1, 2, 4]), Spec([1, 1, 5, 4]), Spec([1, 1, 5, 3])],
         lambda q, k, v: attention_ref(q, k, v, True)),
    # T > S: the first two queries see no key (zero output, zero gradient)
    Case("attention_causal_empty_rows", "attention",
         [Spec([1, 5, 3]), Spec([1, 3, 3]), Spec([1, 3, 2])],
         lambda q, k, v: attention_ref(q, k, v, True)),
    # several tiles of 64 keys, with scores large enough to move the running max
    Case("attention_long", "attention",
         [Spec([1, 150, 8], lo=-2.5, hi=2.5), Spec([1, 150, 8], lo=-2.5, hi=2.5),
          Spec([1, 150, 4])],
         lambda q, k, v: attention_ref(q, k, v, True)),
    # dropout 0.2 with the key in evaluation mode: no dropout
    Case("attention_eval_key", "attention",
         [Spec([2, 4, 3]), Spec([2, 4, 3]), Spec([2, 4, 3]),
          Spec([3], dtype="i32", values=[5, 7, 0])],
         lambda q, k, v, key: attention_ref(q, k, v, True)),
    Case("attention_grad_q", "attention_grad",
         [Spec([2, 3, 4]), Spec([2, 5, 4]), Spec([2, 5, 3]), Spec([2, 3, 3]), Spec([2, 3, 3])],
         attention_grad_ref("q", False), grad=False),
    Case("attention_grad_k", "attention_grad",
         [Spec([2, 4, 4]), Spec([2, 6, 4]), Spec([2, 6, 3]), Spec([2, 4, 3]), Spec([2, 4, 3])],
         attention_grad_ref("k", True), grad=False),
    Case("attention_grad_v", "attention_grad",
         [Spec([2, 4, 4]), Spec([2, 6, 4]), Spec([2, 6, 3]), Spec([2, 4, 3]), Spec([2, 4, 3])],
         attention_grad_ref("v", True), grad=False),
    # d k and d v side by side (what the rule builds when both are needed), several blocks
    Case("attention_grad_kv", "attention_grad",
         [Spec([1, 70, 4]), Spec([1, 130, 4]), Spec([1, 130, 3]), Spec([1, 70, 3]),
          Spec([1, 70, 3])],
         attention_grad_ref("kv", True), grad=False),
    Case("lstm_seq_basic", "lstm_seq", [Spec([2, 3, 8]), Spec([8, 2])], lstm_seq_ref),
    Case("lstm_seq_h0", "lstm_seq", [Spec([2, 2, 8]), Spec([8, 2]), Spec([2, 2])],
         lambda xw, w, h0: lstm_seq_ref(xw, w, h0=h0)),
    Case("lstm_seq_c0", "lstm_seq", [Spec([2, 2, 8]), Spec([8, 2]), Spec([2, 2])],
         lambda xw, w, c0: lstm_seq_ref(xw, w, c0=c0)),
    Case("lstm_seq_bias", "lstm_seq", [Spec([2, 3, 8]), Spec([8, 2]), Spec([8])],
         lambda xw, w, b: lstm_seq_ref(xw, w, bias=b)),
    Case("lstm_seq_states", "lstm_seq",
         [Spec([3, 4, 12]), Spec([12, 3]), Spec([12]), Spec([3, 3]), Spec([3, 3])],
         lstm_seq_ref),
    Case("lstm_seq_one_step", "lstm_seq",
         [Spec([2, 1, 8]), Spec([8, 2]), Spec([8]), Spec([2, 2]), Spec([2, 2])], lstm_seq_ref),
    # H = 20: vector bodies and tails of the gate kernels, several steps
    Case("lstm_seq_wide", "lstm_seq",
         [Spec([2, 5, 80]), Spec([80, 20], lo=-0.5, hi=0.5), Spec([80]), Spec([2, 20]),
          Spec([2, 20])],
         lstm_seq_ref),
    # differentiable again (src/ops/lstm_grad2.c): the gradients of the formula in gy, y, w_hh
    # and c0 are second derivatives of lstm_seq
    Case("lstm_seq_grad_basic", "lstm_seq_grad",
         [Spec([2, 3, 12]), Spec([2, 3, 12]), Spec([8, 2])], lstm_seq_grad_ref),
    Case("lstm_seq_grad_c0", "lstm_seq_grad",
         [Spec([3, 4, 18]), Spec([3, 4, 18]), Spec([12, 3]), Spec([3, 3])], lstm_seq_grad_ref),
    # gy [B,T,H]: the gradient of h alone (what lstm_seq's rule hands over for the h slice)
    Case("lstm_seq_grad_h", "lstm_seq_grad",
         [Spec([3, 4, 3]), Spec([3, 4, 18]), Spec([12, 3]), Spec([3, 3])], lstm_seq_grad_ref),
    Case("gru_seq_basic", "gru_seq", [Spec([2, 3, 6]), Spec([6, 2])], gru_seq_ref),
    Case("gru_seq_h0", "gru_seq", [Spec([2, 2, 6]), Spec([6, 2]), Spec([2, 2])],
         lambda xw, w, h0: gru_seq_ref(xw, w, h0=h0)),
    Case("gru_seq_bias", "gru_seq", [Spec([2, 3, 6]), Spec([6, 2]), Spec([6]), Spec([6])],
         gru_seq_ref),
    Case("gru_seq_states", "gru_seq",
         [Spec([3, 4, 9]), Spec([9, 3]), Spec([9]), Spec([9]), Spec([3, 3])], gru_seq_ref),
    Case("gru_seq_one_step", "gru_seq",
         [Spec([2, 1, 6]), Spec([6, 2]), Spec([6]), Spec([6]), Spec([2, 2])], gru_seq_ref),
    # H = 20: vector bodies and tails of the gate kernels, several steps
    Case("gru_seq_wide", "gru_seq",
         [Spec([2, 5, 60]), Spec([60, 20], lo=-0.5, hi=0.5), Spec([60]), Spec([60]),
          Spec([2, 20])],
         gru_seq_ref),
    # differentiable again (src/ops/gru_grad2.c): the gradients of the formula in gy, y, w_hh
    # and h0 are second derivatives of gru_seq (w_hh in [-0.5, 0.5): with arbitrary y the
    # carried dh grows ~|W_hh| per step, and float32 sums of terms ~1e3 drift past 1e-4)
    Case("gru_seq_grad_basic", "gru_seq_grad",
         [Spec([2, 3, 10]), Spec([2, 3, 10]), Spec([6, 2])], gru_seq_grad_ref),
    Case("gru_seq_grad_h0", "gru_seq_grad",
         [Spec([3, 4, 15]), Spec([3, 4, 15]), Spec([9, 3], lo=-0.5, hi=0.5), Spec([3, 3])],
         gru_seq_grad_ref),
    # gy [B,T,H]: the gradient of h alone (what gru_seq's rule hands over for the h slice)
    Case("gru_seq_grad_h", "gru_seq_grad",
         [Spec([3, 4, 3]), Spec([3, 4, 15]), Spec([9, 3], lo=-0.5, hi=0.5), Spec([3, 3])],
         gru_seq_grad_ref),
    # d q, d k and d v side by side (self-attention over a short context: the rule's one pass)
    Case("attention_grad_qkv", "attention_grad",
         [Spec([2, 70, 4]), Spec([2, 70, 4]), Spec([2, 70, 3]), Spec([2, 70, 3]),
          Spec([2, 70, 3])],
         attention_grad_ref("qkv", True), grad=False),
    # packed q, k, v (dg_attention_packed): 2 heads of 3, causal and not
    Case("attention_packed_causal", "attention", [Spec([2, 5, 18])],
         attention_packed_ref(2, True)),
    Case("attention_packed", "attention", [Spec([1, 4, 12])], attention_packed_ref(4, False)),
    # past the whole-head kernels' 256 rows: the streaming (online softmax) kernels
    Case("attention_tiled", "attention",
         [Spec([1, 260, 4], lo=-2.5, hi=2.5), Spec([1, 270, 4], lo=-2.5, hi=2.5),
          Spec([1, 270, 3])],
         lambda q, k, v: attention_ref(q, k, v, True)),
    Case("attention_grad_kv_tiled", "attention_grad",
         [Spec([1, 260, 4]), Spec([1, 270, 4]), Spec([1, 270, 3]), Spec([1, 260, 3]),
          Spec([1, 260, 3])],
         attention_grad_ref("kv", True), grad=False),
    Case("attention_grad_q_tiled", "attention_grad",
         [Spec([1, 260, 4]), Spec([1, 270, 4]), Spec([1, 270, 3]), Spec([1, 260, 3]),
          Spec([1, 260, 3])],
         attention_grad_ref("q", True), grad=False),
]
