"""ConvLSTM (vidrec.models.convlstm) against a plain step-by-step reference of the gate equations."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from vidrec.models import convlstm
from vidrec.models.convlstm import ConvLSTM, ConvLSTMCell

from models import PlainConvLSTM  # benchmarks/models.py's plain per-step reference

torch.set_num_threads(1)


def reference(layer: ConvLSTM, x: torch.Tensor) -> torch.Tensor:
    """Shi et al. 2015, eq. (3), one step at a time, from the layer's weights (gate order i, f, o, g)."""
    cell = layer.cell
    n, _, steps, h, w = x.shape
    ch = cell.hidden_channels
    wx, bx, wh = cell.conv_x.weight, cell.conv_x.bias, cell.conv_h.weight
    W = lambda k, m: m[k * ch : (k + 1) * ch]  # noqa: E731  (gate k of a stacked weight)
    pad = cell.padding
    peep = cell.peephole_weight
    H = x.new_zeros(n, ch, h, w)
    C = x.new_zeros(n, ch, h, w)
    outs = []
    for t in range(steps):
        X = x[:, :, t]

        def pre(k):
            return F.conv2d(X, W(k, wx), W(k, bx), padding=pad) + F.conv2d(H, W(k, wh), padding=pad)

        i_pre, f_pre, o_pre, g_pre = pre(0), pre(1), pre(2), pre(3)
        if peep is not None:
            i_pre = i_pre + peep[0] * C
            f_pre = f_pre + peep[1] * C
        i = torch.sigmoid(i_pre)
        f = torch.sigmoid(f_pre)
        C = f * C + i * torch.tanh(g_pre)
        if peep is not None:
            o_pre = o_pre + peep[2] * C
        H = torch.sigmoid(o_pre) * torch.tanh(C)
        outs.append(H)
    return torch.stack(outs, dim=2)


def make(peephole: bool, cin=3, ch=4, size=(5, 6), kernel=3, seed=0) -> ConvLSTM:
    torch.manual_seed(seed)
    layer = ConvLSTM(cin, ch, kernel, peephole=peephole, spatial_size=size).double()
    with torch.no_grad():  # non-trivial values everywhere (peepholes start at 0, biases mostly 0)
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 6])
def test_matches_reference_outputs_and_gradients(peephole, steps):
    layer = make(peephole)
    x = torch.randn(2, 3, steps, 5, 6, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y_ref = reference(layer, x)
    assert y.shape == (2, 4, steps, 5, 6)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    inputs = [x, *layer.parameters()]
    grads = torch.autograd.grad((y * g).sum(), inputs)
    grads_ref = torch.autograd.grad((y_ref * g).sum(), inputs)
    names = ["x"] + [n for n, _ in layer.named_parameters()]
    for name, a, b in zip(names, grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.parametrize("steps_per_call", [1, 4])
@pytest.mark.parametrize("peephole", [False, True])
def test_input_convolution_in_chunks_of_steps(monkeypatch, peephole, steps_per_call):
    """Large layers run the input convolution (and its gradients) over a few steps per call
    (_HOIST_BYTES); uneven chunks give the same outputs and gradients as the reference."""
    layer = make(peephole)
    x = torch.randn(2, 3, 6, 5, 6, dtype=torch.float64, requires_grad=True)
    y_ref = reference(layer, x)
    step_bytes = 2 * 4 * 4 * 5 * 6 * 8  # batch x 4C x H x W x float64
    monkeypatch.setattr(convlstm, "_HOIST_BYTES", steps_per_call * step_bytes)
    counter = _ConvCounter()
    with counter:
        y = layer(x)
    k = steps_per_call  # input convs over k steps (the last over what is left), then one hidden conv per step
    assert counter.batches == [2 * min(k, 6 - t0) for t0 in range(0, 6, k)] + [2] * 5
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), y_ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(y)
    inputs = [x, *layer.parameters()]
    for a, b in zip(torch.autograd.grad((y * g).sum(), inputs), torch.autograd.grad((y_ref * g).sum(), inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("peephole", [False, True])
def test_gradcheck(peephole):
    layer = make(peephole, cin=2, ch=2, size=(3, 4))
    x = torch.randn(1, 2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(layer.parameters())

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip([n for n, _ in layer.named_parameters()], ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), fast_mode=True)


@pytest.mark.parametrize("peephole", [False, True])
def test_inference_path_and_memory_formats(peephole):
    layer = make(peephole)
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    y_ref = reference(layer, x).detach()
    with torch.no_grad():
        y = layer(x)
        assert y.is_contiguous()
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        x_cl = x.contiguous(memory_format=torch.channels_last_3d)
        y_cl = layer(x_cl)
    assert y_cl.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(y_cl, y_ref, rtol=1e-5, atol=1e-5)
    # training path with a channels_last_3d input
    x_cl.requires_grad_(True)
    y2 = layer(x_cl)
    torch.testing.assert_close(y2, y_ref, rtol=1e-5, atol=1e-5)
    y2.sum().backward()
    assert x_cl.grad is not None and x_cl.grad.shape == x.shape


@pytest.mark.parametrize("peephole", [False, True])
def test_autocast_bf16_training_and_inference(peephole):
    """Under autocast (the trainer's CUDA bf16, here the CPU's) both paths run in bfloat16 and agree
    with the float32 reference to bfloat16 precision; parameter gradients arrive in float32."""
    torch.manual_seed(0)
    layer = ConvLSTM(3, 4, 3, peephole=peephole, spatial_size=(5, 6))
    x = torch.randn(2, 3, 4, 5, 6, requires_grad=True)
    y_ref = reference(layer, x)
    ref_grads = torch.autograd.grad(y_ref.square().sum(), [x, *layer.parameters()])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        with torch.no_grad():
            y_infer = layer(x)
    assert y.dtype == y_infer.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y_ref, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y_infer.float(), y_ref, rtol=2e-2, atol=2e-2)
    grads = torch.autograd.grad(y.float().square().sum(), [x, *layer.parameters()])
    for g, r in zip(grads, ref_grads):
        assert g.dtype == torch.float32
        assert ((g - r).norm() / r.norm()).item() < 3e-2


@pytest.mark.parametrize("peephole", [False, True])
def test_equals_the_plain_per_step_form_of_the_benchmark(peephole):
    """benchmarks/models.py measures the layer against PlainConvLSTM (public code's cat + one conv per
    step) on the same weights: both must compute the same function, outputs and every gradient."""
    layer = make(peephole)
    plain = PlainConvLSTM(layer)
    x = torch.randn(2, 3, 5, 5, 6, dtype=torch.float64, requires_grad=True)
    y, y_plain = layer(x), plain(x)
    torch.testing.assert_close(y, y_plain, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    dx = x.grad.clone()
    x.grad = None
    (y_plain * g).sum().backward()
    torch.testing.assert_close(dx, x.grad, rtol=1e-10, atol=1e-10)
    cell = layer.cell
    torch.testing.assert_close(torch.cat([cell.conv_x.weight.grad, cell.conv_h.weight.grad], 1), plain.weight.grad)
    torch.testing.assert_close(cell.conv_x.bias.grad, plain.bias.grad)
    if peephole:
        torch.testing.assert_close(cell.peephole_weight.grad, plain.peephole.grad)
    with torch.no_grad():  # the inference path too, channels-last input as the network gives it
        y_cl = layer(x.detach().contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(y_cl, y_plain.detach(), rtol=1e-10, atol=1e-10)


def test_cell_step_equals_first_steps_of_layer():
    layer = make(True)
    x = torch.randn(2, 3, 3, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
        state = None
        for t in range(3):
            state = layer.cell(x[:, :, t], state)
            torch.testing.assert_close(state[0], y[:, :, t])


class _ConvCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.convolution, torch.ops.aten.mkldnn_convolution):
            self.batches.append(args[0].shape[0])
        return func(*args, **(kwargs or {}))


def test_input_convolution_runs_once_for_all_steps():
    layer = ConvLSTM(3, 4)
    x = torch.randn(2, 3, 5, 6, 6)
    counter = _ConvCounter()
    with torch.no_grad(), counter:
        layer(x)
    # one input-to-hidden conv over N*T = 10 frames, then one hidden conv per step t = 1..4
    assert counter.batches == [10, 2, 2, 2, 2]


def test_init_forget_bias_and_lazy_peepholes():
    cell = ConvLSTMCell(3, 4)
    b = cell.conv_x.bias.detach()
    assert torch.equal(b[4:8], torch.ones(4)) and b[:4].abs().sum() == 0 and b[8:].abs().sum() == 0
    assert cell.conv_x.kernel_size == (3, 3) and cell.conv_h.bias is None

    lazy = ConvLSTM(3, 4, peephole=True)  # no spatial size: created at the first forward
    assert isinstance(lazy.cell.peephole_weight, torch.nn.parameter.UninitializedParameter)
    lazy(torch.randn(1, 3, 2, 7, 9))
    assert lazy.cell.peephole_weight.shape == (3, 4, 7, 9)
    with pytest.raises(ValueError, match="peepholes were built for"):
        lazy(torch.randn(1, 3, 2, 8, 8))
    # a lazy layer loads a checkpoint of a materialised one
    fresh = ConvLSTM(3, 4, peephole=True)
    fresh.load_state_dict(lazy.state_dict())
    assert torch.equal(fresh.cell.peephole_weight, lazy.cell.peephole_weight)

    explicit = ConvLSTM(3, 4, peephole=True, spatial_size=(7, 9))
    assert explicit.cell.peephole_weight.shape == (3, 4, 7, 9)
    assert ConvLSTM(3, 4).cell.peephole_weight is None
