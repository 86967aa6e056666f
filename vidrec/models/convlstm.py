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
- `W_x * X_t` does not depend on the recurrence: one convolution over all T steps (time folded
  into the batch). Only `W_h * H_{t-1}` runs step by step, and not at t = 0 where H_{-1} = 0.
- One convolution produces the four gates; gate order in the weights is (i, f, o, g) so that,
  without peepholes, a single in-place sigmoid covers i, f and o.
- The recurrence is a `torch.autograd.Function` on preallocated time-major buffers (gates,
  cells, hidden states: every step's slice is a dense tensor, so no operand is ever copied)
  with in-place kernels, 8 per step forward (10 with peepholes). Its hand-written backward
  batches the weight gradients of both convolutions over all steps (one call each), so only
  the input-gradient of `W_h` runs per step. Shapes are static (CUDA-graph friendly).
- Under autocast (the trainer's bf16 on CUDA) gates, cells and hidden states are all in the
  autocast dtype; parameter gradients come back in float32.
- Internally channels-last (NHWC): oneDNN/cuDNN convolutions are several times faster in it on
  this project's CPUs. Folding time in and out costs one copy each way; the output has the
  memory format of the input (channels_last_3d or contiguous).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["ConvLSTMCell", "ConvLSTM"]

_CL = torch.channels_last
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


def _scan(gates: Tensor, w_h: Tensor, peep: Tensor | None, hs: Tensor, cs: Tensor, padding: int) -> None:
    """Run the recurrence in place.

    gates: (T, N, 4C, H, W), on entry W_x * X_t + b, on exit the activations (i, f, o, g).
    hs: (T, N, C, H, W) receives H_t. cs: (T or 2, N, C, H, W) receives C_t (T: every step kept
    for backward; 2: ping-pong buffer for inference).
    """
    T = gates.shape[0]
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
        a[:, : (2 if peep is not None else 3) * C].sigmoid_()
        i, f, o, g = a[:, :C], a[:, C : 2 * C], a[:, 2 * C : 3 * C], a[:, 3 * C :]
        g.tanh_()
        torch.mul(i, g, out=c)
        if t > 0:
            c.addcmul_(f, c_prev)
        if peep is not None:
            o.addcmul_(peep[2], c).sigmoid_()
        h = hs[t]
        torch.tanh(c, out=h)
        h.mul_(o)


class _ConvLSTMFunction(torch.autograd.Function):
    """Whole-sequence ConvLSTM (time-major, xf is (T*N, C_in, H, W)) with a hand-written BPTT."""

    @staticmethod
    def forward(ctx, xf, w_x, b_x, w_h, peep, n: int, t: int, padding: int):  # type: ignore[override]
        gx = F.conv2d(xf, w_x, b_x, padding=padding)  # (T*N, 4C, H, W), channels-last
        _, c4, hh, ww = gx.shape
        gates = gx.view(t, n, c4, hh, ww)
        hs = _alloc(t, n, c4 // 4, hh, ww, gx)
        cs = _alloc(t, n, c4 // 4, hh, ww, gx)
        _scan(gates, w_h, peep, hs, cs, padding)
        ctx.save_for_backward(xf, w_x, w_h, peep, gates, cs, hs)
        ctx.dims = (padding, b_x is not None)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):  # type: ignore[override]
        xf, w_x, w_h, peep, gates, cs, hs = ctx.saved_tensors
        padding, has_bias = ctx.dims
        T, n, C, hh, ww = hs.shape
        pad, one, zero = [padding, padding], [1, 1], [0, 0]
        dgates = _alloc(T, n, 4 * C, hh, ww, gates)
        tc, dh, dc = _alloc(3, n, C, hh, ww, gates).unbind(0)
        # peephole gradients accumulated per step, summed over the batch at the end
        dpeep_acc = _alloc(1, n, 3 * C, hh, ww, gates)[0].zero_() if peep is not None else None
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
            torch.tanh(c, out=tc)
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
        dxf, dw_x, db_x = _conv_bw(
            dgates.view(T * n, 4 * C, hh, ww),
            xf,
            w_x,
            [4 * C] if has_bias else None,
            one,
            pad,
            one,
            False,
            zero,
            1,
            [need[0], need[1], need[2]],
        )
        dw_h = None
        if need[3]:
            if T > 1:  # one weight-gradient call over all steps (H_{-1} = 0 adds nothing at t = 0)
                dw_h = _conv_bw(
                    dgates[1:].reshape((T - 1) * n, 4 * C, hh, ww),
                    hs[:-1].reshape((T - 1) * n, C, hh, ww),
                    w_h,
                    None,
                    one,
                    pad,
                    one,
                    False,
                    zero,
                    1,
                    [False, True, False],
                )[1]
            else:
                dw_h = torch.zeros_like(w_h)
        dpeep = dpeep_acc.sum(0).view(3, C, hh, ww) if dpeep_acc is not None and need[4] else None
        return dxf, dw_x, db_x if has_bias else None, dw_h, dpeep, None, None, None


class ConvLSTM(nn.Module):
    """ConvLSTM layer over a clip: (N, C_in, T, H, W) -> hidden states of every step (N, C_h, T, H, W).

    Same arguments as `ConvLSTMCell` (whose parameters it holds as `self.cell`). Steps run in
    order t = 0..T-1 from zero state; the output keeps the input's memory format
    (channels_last_3d or contiguous).
    """

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
        self.cell = ConvLSTMCell(input_channels, hidden_channels, kernel_size, peephole, spatial_size, forget_bias)

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
                gx = F.conv2d(xf, w_x, b_x, padding=cell.padding)
                ch = cell.hidden_channels
                hs = _alloc(t, n, ch, h, w, gx)
                _scan(gx.view(t, n, 4 * ch, h, w), w_h, peep, hs, _alloc(min(t, 2), n, ch, h, w, gx), cell.padding)
        cl3d = x.is_contiguous(memory_format=torch.channels_last_3d)
        fmt = torch.channels_last_3d if cl3d else torch.contiguous_format
        return hs.permute(1, 2, 0, 3, 4).contiguous(memory_format=fmt)  # (N, C_h, T, H, W)
