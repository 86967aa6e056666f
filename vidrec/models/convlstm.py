"""Convolutional LSTM.

Paper: X. Shi, Z. Chen, H. Wang, D.-Y. Yeung, W.-K. Wong, W.-C. Woo, "Convolutional LSTM Network:
A Machine Learning Approach for Precipitation Nowcasting", NeurIPS 2015 (arXiv 1506.04214).

    i_t = sigmoid(W_xi * X_t + W_hi * H_{t-1} + W_ci o C_{t-1} + b_i)
    f_t = sigmoid(W_xf * X_t + W_hf * H_{t-1} + W_cf o C_{t-1} + b_f)
    C_t = f_t o C_{t-1} + i_t o tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = sigmoid(W_xo * X_t + W_ho * H_{t-1} + W_co o C_t + b_o)
    H_t = o_t o tanh(C_t)

`*` is a KxK convolution with same padding, `o` the element-wise product, W_c* the peepholes (one
weight per channel and position, as in the paper; switchable). H_0 = C_0 = 0.

Implementation (why it is fast):
- `W_x * X_t` does not depend on the recurrence: it runs ahead of it, batched over the steps (time
  folded into the batch), in as few calls as keep each call's output within `_HOIST_BYTES` (16 MB:
  one call over all 8 steps of a batch of 8 at 40x40x256 writes 105 MB, runs slower per FLOP
  than calls over 1-2 steps on this project's CPUs, and, being over glibc's 32 MB mmap threshold,
  is page-faulted in afresh at every call). Only `W_h * H_{t-1}` runs step by step, and not at
  t = 0 where H_{-1} = 0.
- One convolution produces the four gates, gate order (i, f, o, g) in the weights.
- Element-wise work in few, dense passes: PyTorch's CPU sigmoid and tanh fall back to a scalar loop
  on a gate's slice of a channels-last tensor, and its tanh is ~10x slower than its sigmoid. So
  one in-place sigmoid runs over all four gates at once (g pre-scaled by 2: tanh(g) =
  2 sigmoid(2g) - 1), tanh(C_t) goes through the same identity, and the peephole's output gate
  is finished in a dense scratch buffer once C_t is known (`_scan`).
- The recurrence is a `torch.autograd.Function` on preallocated time-major buffers (gates,
  cells, hidden states: every step's slice is a dense tensor, so no operand is ever copied)
  with in-place kernels. Its hand-written backward batches the weight gradients of both
  convolutions over the steps (one call per chunk of steps), so only the input-gradient of
  `W_h` runs per step. Shapes are static (CUDA-graph friendly).
- Under autocast (the trainer's bf16 on CUDA) gates, cells and hidden states are all in the
  autocast dtype; parameter gradients come back in float32.
- Internally channels-last (NHWC): oneDNN/cuDNN convolutions are several times faster in it on
  this project's CPUs. Folding time in and out costs one copy each way; the output has the
  memory format of the input (channels_last_3d or contiguous).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["ConvLSTMCell", "ConvLSTM"]

_CL = torch.channels_last
# most bytes one batched convolution over several steps writes (see the module docstring)
_HOIST_BYTES = 16 * 2**20
_conv_bw = torch.ops.aten.convolution_backward.default
_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input
_tanh_bw = torch.ops.aten.tanh_backward.grad_input


def _autocast_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype autocast would run convolutions in on x's device, or None outside autocast.

    The hand-written backward calls aten kernels that autocast does not cast, so the recurrence
    casts its operands once, up front (what `torch.amp.custom_fwd(cast_inputs=...)` does)."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class ConvLSTMCell(nn.Module):
    """Parameters of a ConvLSTM and a plain single-step forward.

    `forward(x_t, (h, c))` is one readable step with ordinary autograd (decoding loops, teaching);
    `ConvLSTM` runs whole sequences with the fast batched path on the same parameters.

    Args:
        input_channels, hidden_channels: channels of X_t and H_t.
        kernel_size: odd kernel of both convolutions (3 in the thesis), same padding.
        peephole: add the W_c* terms (one weight per channel and position).
        spatial_size: (H, W) of the planes; needed by the peepholes. None: created at the first
            forward from the input (lazy; run one forward before building the optimizer).
        forget_bias: initial bias of the forget gate (1: remember by default at init).
    """

    owns_init = True  # network-wide init loops must leave these weights to `reset_parameters`

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        peephole: bool = False,
        spatial_size: int | Sequence[int] | None = None,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd for same padding")
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.forget_bias = forget_bias
        self.peephole = peephole
        # gate order (i, f, o, g) along the output channels of both convolutions
        self.conv_x = nn.Conv2d(input_channels, 4 * hidden_channels, kernel_size, padding=self.padding, bias=True)
        self.conv_h = nn.Conv2d(hidden_channels, 4 * hidden_channels, kernel_size, padding=self.padding, bias=False)
        # weights (and peepholes) stored channels-last, the layout the recurrence computes in, so
        # no step and no forward reorders them
        for conv in (self.conv_x, self.conv_h):
            conv.weight.data = conv.weight.data.contiguous(memory_format=_CL)
        if not peephole:
            self.register_parameter("peephole_weight", None)
        elif spatial_size is None:
            self.peephole_weight = nn.UninitializedParameter()
        else:
            w = torch.empty(3, hidden_channels, *_pair(spatial_size)).contiguous(memory_format=_CL)
            self.peephole_weight = nn.Parameter(w)
        self.register_load_state_dict_pre_hook(_materialize_from_state_dict)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv_x.reset_parameters()
        self.conv_h.reset_parameters()
        with torch.no_grad():
            self.conv_x.bias.zero_()
            ch = self.hidden_channels
            self.conv_x.bias[ch : 2 * ch].fill_(self.forget_bias)
            if self.has_peephole_weights():
                self.peephole_weight.zero_()  # starts as a plain LSTM, learns the peepholes

    def has_peephole_weights(self) -> bool:
        """True when peepholes exist and are materialised."""
        w = self.peephole_weight
        return w is not None and not isinstance(w, nn.parameter.UninitializedParameter)

    def peephole_for(self, x: Tensor) -> Tensor | None:
        """The (3, C_h, H, W) peephole weights for input planes like `x` (..., H, W).

        Materialises lazy weights on first use; a plane size other than the one built for is an
        error (per-position weights cannot be reused at another size).
        """
        w = self.peephole_weight
        if w is None:
            return None
        size = tuple(x.shape[-2:])
        if isinstance(w, nn.parameter.UninitializedParameter):
            w.materialize((3, self.hidden_channels, *size), device=x.device, dtype=x.dtype)
            w.data = w.data.contiguous(memory_format=_CL)
            with torch.no_grad():
                w.zero_()
        elif tuple(w.shape[-2:]) != size:
            raise ValueError(
                f"ConvLSTM peepholes were built for {tuple(w.shape[-2:])} planes, got {size}; "
                "build the model for this clip size (input_size/spatial_size) or use peephole=False"
            )
        return self.peephole_weight

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """One step: x (N, C_in, H, W), state (h, c) or None (zeros) -> (h, c)."""
        if state is None:
            z = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[-2:])
            state = (z, z)
        h, c = state
        i, f, o, g = (self.conv_x(x) + self.conv_h(h)).chunk(4, dim=1)
        w = self.peephole_for(x)
        if w is not None:
            i = i + w[0] * c
            f = f + w[1] * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if w is not None:
            o = o + w[2] * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def extra_repr(self) -> str:
        return f"peephole={self.peephole}, forget_bias={self.forget_bias}"


def _materialize_from_state_dict(module: ConvLSTMCell, state_dict, prefix, *args) -> None:
    """Let a lazy cell load a checkpoint: take the peephole shape from the stored tensor."""
    w = module.peephole_weight
    key = prefix + "peephole_weight"
    if isinstance(w, nn.parameter.UninitializedParameter) and key in state_dict:
        src = state_dict[key]
        w.materialize(tuple(src.shape), device=w.device, dtype=src.dtype)
        w.data = w.data.contiguous(memory_format=_CL)


# ----------------------------------------------------------------------------------------------
# The recurrence on preallocated, time-major buffers: every per-step slice (N, C, H, W) is a dense
# channels-last tensor, so the per-step convolutions never copy their operands.
# ----------------------------------------------------------------------------------------------


def _alloc(steps: int, n: int, c: int, h: int, w: int, like: Tensor) -> Tensor:
    """(steps, n, c, h, w) buffer whose per-step slices are dense channels-last tensors."""
    return torch.empty((steps * n, c, h, w), dtype=like.dtype, device=like.device, memory_format=_CL).view(
        steps, n, c, h, w
    )


def _step_chunks(steps: int, n: int, out_channels: int, h: int, w: int, itemsize: int) -> list[tuple[int, int]]:
    """[t0, t1) ranges of steps whose batched convolution writes at most `_HOIST_BYTES`."""
    k = max(1, min(steps, _HOIST_BYTES // max(1, n * out_channels * h * w * itemsize)))
    return [(t0, min(steps, t0 + k)) for t0 in range(0, steps, k)]


def _input_gates(xf: Tensor, w_x: Tensor, b_x: Tensor | None, padding: int, steps: int) -> list[Tensor]:
    """W_x * X_t + b for every step: (n, 4C, H, W) tensors, views of a few batched convolutions."""
    n = xf.shape[0] // steps
    _, _, h, w = xf.shape
    out = []
    for t0, t1 in _step_chunks(steps, n, w_x.shape[0], h, w, xf.element_size()):
        out += list(F.conv2d(xf[t0 * n : t1 * n], w_x, b_x, padding=padding).unflatten(0, (t1 - t0, n)).unbind(0))
    return out


def _tanh(x: Tensor, out: Tensor) -> Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1 into the dense `out`: PyTorch's CPU sigmoid is ~10x faster than its
    tanh (same rounding level: absolute error ~1e-7 in float32)."""
    torch.mul(x, 2, out=out).sigmoid_()
    return out.mul_(2).sub_(1)


def _scan(
    gates: Sequence[Tensor],
    w_h: Tensor,
    peep: Tensor | None,
    hs: Tensor,
    cs: Tensor,
    padding: int,
    o_buf: Tensor | None = None,
    keep_o: bool = True,
) -> None:
    """Run the recurrence in place.

    gates: T tensors (N, 4C, H, W), on entry W_x * X_t + b, on exit the activations (i, f, o, g)
    (o only with keep_o: backward needs it). hs: (T, N, C, H, W) receives H_t. cs: (T or 2, N, C,
    H, W) receives C_t (T: every step kept for backward; 2: ping-pong buffer for inference).
    o_buf: dense (N, C, H, W) scratch for the peephole's output gate.

    Transcendentals only ever run on dense tensors: on a gate's slice of a channels-last tensor
    PyTorch's CPU sigmoid/tanh fall back to a scalar loop (3-6x slower per element), while products
    and sums stay vectorised. So one sigmoid covers all four gates, g pre-scaled by 2 (tanh(g) =
    2 sigmoid(2g) - 1), and the peephole's o is computed in a dense scratch once C_t is known.
    """
    T = len(gates)
    C = hs.shape[2]
    keep = cs.shape[0]
    for t in range(T):
        a = gates[t]
        c = cs[t % keep]
        if t > 0:
            c_prev = cs[(t - 1) % keep]
            a.add_(F.conv2d(hs[t - 1], w_h, padding=padding))
            if peep is not None:
                a[:, : 2 * C].unflatten(1, (2, C)).addcmul_(peep[:2], c_prev.unsqueeze(1))
        i, f, o, g = a[:, :C], a[:, C : 2 * C], a[:, 2 * C : 3 * C], a[:, 3 * C :]
        if peep is not None:
            o_pre = o_buf.copy_(o)
        g.mul_(2)
        a.sigmoid_()
        g.mul_(2).sub_(1)  # tanh of the g pre-activation
        torch.mul(i, g, out=c)
        if t > 0:
            c.addcmul_(f, c_prev)
        if peep is not None:
            o_act = o_pre.addcmul_(peep[2], c).sigmoid_()
            if keep_o:
                o.copy_(o_act)
        else:
            o_act = o
        h = hs[t]
        _tanh(c, h)
        h.mul_(o_act)


class _ConvLSTMFunction(torch.autograd.Function):
    """Whole-sequence ConvLSTM (time-major, xf is (T*N, C_in, H, W)) with a hand-written BPTT."""

    @staticmethod
    def forward(ctx, xf, w_x, b_x, w_h, peep, n: int, t: int, padding: int):  # type: ignore[override]
        gates = _input_gates(xf, w_x, b_x, padding, t)  # T x (N, 4C, H, W), channels-last
        _, c4, hh, ww = gates[0].shape
        hs = _alloc(t, n, c4 // 4, hh, ww, gates[0])
        cs = _alloc(t, n, c4 // 4, hh, ww, gates[0])
        o_buf = _alloc(1, n, c4 // 4, hh, ww, gates[0])[0] if peep is not None else None
        _scan(gates, w_h, peep, hs, cs, padding, o_buf)
        ctx.save_for_backward(xf, w_x, w_h, peep, cs, hs, *gates)
        ctx.dims = (padding, b_x is not None)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):  # type: ignore[override]
        xf, w_x, w_h, peep, cs, hs, *gates = ctx.saved_tensors
        padding, has_bias = ctx.dims
        T, n, C, hh, ww = hs.shape
        pad, one, zero = [padding, padding], [1, 1], [0, 0]
        # dL/d(pre-activations), in the forward's chunks of steps: each buffer small enough to be
        # reused from the heap (glibc maps allocations over 32 MB afresh, page faults and all)
        chunks = _step_chunks(T, n, 4 * C, hh, ww, cs.element_size())
        dg_chunks = [_alloc(t1 - t0, n, 4 * C, hh, ww, cs) for t0, t1 in chunks]
        dgates = [d for chunk in dg_chunks for d in chunk.unbind(0)]
        tc, dh, dc = _alloc(3, n, C, hh, ww, cs).unbind(0)
        # peephole gradients accumulated per step, summed over the batch at the end
        dpeep_acc = _alloc(1, n, 3 * C, hh, ww, cs)[0].zero_() if peep is not None else None
        dh_rec: Tensor | None = None
        sig = 2 * C if peep is not None else 3 * C
        for t in range(T - 1, -1, -1):
            a, d = gates[t], dgates[t]
            i, f, o, g = a[:, :C], a[:, C : 2 * C], a[:, 2 * C : 3 * C], a[:, 3 * C :]
            di, df, do, dg = d[:, :C], d[:, C : 2 * C], d[:, 2 * C : 3 * C], d[:, 3 * C :]
            c = cs[t]
            if dh_rec is None:
                dh.copy_(grad_hs[t])
            else:
                torch.add(grad_hs[t], dh_rec, out=dh)
            _tanh(c, tc)
            torch.mul(dh, tc, out=do)  # dL/do (post-activation)
            # dc: dL/dC_t; holds the part carried from step t+1, gets dh * o * (1 - tanh(c)^2)
            dh.mul_(o)
            if t == T - 1:
                _tanh_bw(dh, tc, grad_input=dc)
            else:
                dc.add_(_tanh_bw(dh, tc, grad_input=dh))
            if peep is not None:
                _sigmoid_bw(do, o, grad_input=do)
                dc.addcmul_(do, peep[2])
                dpeep_acc[:, 2 * C :].addcmul_(do, c)
            torch.mul(dc, g, out=di)
            if t > 0:
                torch.mul(dc, cs[t - 1], out=df)
            else:
                df.zero_()
            torch.mul(dc, i, out=dg)
            _tanh_bw(dg, g, grad_input=dg)
            _sigmoid_bw(d[:, :sig], a[:, :sig], grad_input=d[:, :sig])
            if t > 0:
                dc.mul_(f)
                if peep is not None:
                    dc.addcmul_(di, peep[0]).addcmul_(df, peep[1])
                    dpeep_acc[:, : 2 * C].unflatten(1, (2, C)).addcmul_(
                        d[:, : 2 * C].unflatten(1, (2, C)), cs[t - 1].unsqueeze(1)
                    )
                dh_rec = _conv_bw(d, hs[t - 1], w_h, None, one, pad, one, False, zero, 1, [True, False, False])[0]

        need = ctx.needs_input_grad
        # input and weight gradients batched over the steps of each chunk (see _HOIST_BYTES)
        dx_parts, dw_x, db_x = [], None, None
        dw_h = torch.zeros_like(w_h) if need[3] and T == 1 else None
        for (t0, t1), chunk in zip(chunks, dg_chunks):
            flat = chunk.view((t1 - t0) * n, 4 * C, hh, ww)
            dxc, dwc, dbc = _conv_bw(flat, xf[t0 * n : t1 * n], w_x, [4 * C] if has_bias else None, one, pad,
                                     one, False, zero, 1, [need[0], need[1], need[2]])
            dx_parts.append(dxc)
            dw_x = dwc if dw_x is None else dw_x + dwc
            db_x = dbc if db_x is None else db_x + dbc
            s0 = max(t0, 1)  # W_h's gradient pairs step s with H_{s-1}; H_{-1} = 0 adds nothing at t = 0
            if need[3] and s0 < t1:
                dwc = _conv_bw(flat[(s0 - t0) * n :], hs[s0 - 1 : t1 - 1].reshape((t1 - s0) * n, C, hh, ww), w_h,
                               None, one, pad, one, False, zero, 1, [False, True, False])[1]
                dw_h = dwc if dw_h is None else dw_h + dwc
        dxf = (dx_parts[0] if len(dx_parts) == 1 else torch.cat(dx_parts)) if need[0] else None
        dpeep = dpeep_acc.sum(0).view(3, C, hh, ww) if dpeep_acc is not None and need[4] else None
        return dxf, dw_x, db_x if has_bias else None, dw_h, dpeep, None, None, None


class ConvLSTM(nn.Module):
    """ConvLSTM layer over a clip: (N, C_in, T, H, W) -> hidden states of every step (N, C_h, T, H, W).

    Same arguments as `ConvLSTMCell` (whose parameters it holds as `self.cell`). Steps run in
    order t = 0..T-1 from zero state; the output keeps the input's memory format
    (channels_last_3d or contiguous).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(*args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"ConvLSTM expects (N, C, T, H, W), got {tuple(x.shape)}")
        n, cin, t, h, w = x.shape
        cell = self.cell
        peep = cell.peephole_for(x)
        # time folded into the batch, time-major and channels-last: (T*N, C_in, H, W)
        xf = x.permute(2, 0, 3, 4, 1).reshape(t * n, h, w, cin).permute(0, 3, 1, 2)
        if peep is not None:
            peep = peep.contiguous(memory_format=_CL)
        # no-ops for the channels-last parameters; a copy once per sequence if someone changed them
        w_x = cell.conv_x.weight.contiguous(memory_format=_CL)
        w_h = cell.conv_h.weight.contiguous(memory_format=_CL)
        b_x = cell.conv_x.bias
        dtype = _autocast_dtype(x)
        if dtype is not None:  # autocast: the whole recurrence in its dtype (the casts carry gradients back)
            xf, w_x, w_h = xf.to(dtype), w_x.to(dtype), w_h.to(dtype)
            b_x = b_x.to(dtype) if b_x is not None else None
            peep = peep.to(dtype) if peep is not None else None
        tensors = (xf, w_x, b_x, w_h) + ((peep,) if peep is not None else ())
        with torch.autocast(x.device.type, enabled=False):
            if torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in tensors):
                hs = _ConvLSTMFunction.apply(xf, w_x, b_x, w_h, peep, n, t, cell.padding)
            else:
                gates = _input_gates(xf, w_x, b_x, cell.padding, t)
                ch = cell.hidden_channels
                hs = _alloc(t, n, ch, h, w, gates[0])
                o_buf = _alloc(1, n, ch, h, w, gates[0])[0] if peep is not None else None
                _scan(gates, w_h, peep, hs, _alloc(min(t, 2), n, ch, h, w, gates[0]), cell.padding, o_buf, False)
        cl3d = x.is_contiguous(memory_format=torch.channels_last_3d)
        fmt = torch.channels_last_3d if cl3d else torch.contiguous_format
        return hs.permute(1, 2, 0, 3, 4).contiguous(memory_format=fmt)  # (N, C_h, T, H, W)
