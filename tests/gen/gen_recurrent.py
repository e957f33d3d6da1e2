"""PyTorch fixtures for the recurrent layers (tests/test_recurrent.c): torch.nn.RNN, LSTM and
GRU (batch_first) over several steps, with given or zero initial states, their outputs, final
states and the gradients of a weighted sum of them; and the two-layer LSTM's state_dict as a
safetensors file (torch_lstm2_state_dict.safetensors, PyTorch's own key names). Run with Debian's /usr/bin/python3 from the
repository root: /usr/bin/python3 tests/gen/gen_recurrent.py"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from gen_checkpoint_interop import write_safetensors  # noqa: E402

B, T, F, H = 2, 5, 3, 4


def case(prefix, module_cls, layers, with_state, out, state_dict_path=None):
    torch.manual_seed(len(out) + 17)
    m = module_cls(F, H, num_layers=layers, batch_first=True)
    x = torch.randn(B, T, F, requires_grad=True)
    is_lstm = module_cls is torch.nn.LSTM
    h0 = torch.randn(layers, B, H, requires_grad=True) if with_state else None
    c0 = torch.randn(layers, B, H, requires_grad=True) if (with_state and is_lstm) else None
    if is_lstm:
        y, (hn, cn) = m(x, (h0, c0)) if with_state else m(x)
    else:
        y, hn = m(x, h0) if with_state else m(x)
        cn = None
    wy = torch.randn(y.shape)
    wh = torch.randn(hn.shape)
    loss = (y * wy).sum() + (hn * wh).sum()
    if cn is not None:
        wc = torch.randn(cn.shape)
        loss = loss + (cn * wc).sum()
    loss.backward()
    if state_dict_path:  # the module's own state_dict, keys as PyTorch names them
        write_safetensors(state_dict_path, [(k, "F32", v.detach().numpy().astype("<f4"))
                                            for k, v in m.state_dict().items()])
    out.append((prefix + ".x", x.detach()))
    out.append((prefix + ".y", y.detach()))
    out.append((prefix + ".wy", wy))
    out.append((prefix + ".wh", wh))
    out.append((prefix + ".grad_x", x.grad))
    for name, p in m.named_parameters():
        out.append((prefix + "." + name, p.detach()))
        out.append((prefix + ".grad_" + name, p.grad))
    for l in range(layers):
        out.append((prefix + ".h_n%d" % l, hn[l].detach()))
        if with_state:
            out.append((prefix + ".h0_%d" % l, h0[l].detach()))
            out.append((prefix + ".grad_h0_%d" % l, h0.grad[l]))
        if cn is not None:
            out.append((prefix + ".c_n%d" % l, cn[l].detach()))
            out.append((prefix + ".wc%d" % l, wc[l]))
            if with_state:
                out.append((prefix + ".c0_%d" % l, c0[l].detach()))
                out.append((prefix + ".grad_c0_%d" % l, c0.grad[l]))


def main():
    out = []
    fixtures = os.path.join(os.path.dirname(__file__), "..", "fixtures")
    case("lstm2", torch.nn.LSTM, 2, True, out,
         os.path.join(fixtures, "torch_lstm2_state_dict.safetensors"))
    case("lstm1z", torch.nn.LSTM, 1, False, out)
    case("gru2", torch.nn.GRU, 2, True, out)
    case("gru1z", torch.nn.GRU, 1, False, out)
    case("rnn2", torch.nn.RNN, 2, True, out)
    case("rnn1z", torch.nn.RNN, 1, False, out)
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "recurrent.dgfx")
    write_fixture(path, out)
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
