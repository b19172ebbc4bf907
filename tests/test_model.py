"""The model is the lecture's, layer by layer, with TensorFlow's SAME/VALID semantics.

The TensorFlow semantics are checked against an independent computation: SAME convs as plain
convolutions of an explicitly padded input (TF's padding formula written out here), and every
transposed conv as the autograd gradient (adjoint) of the forward conv it transposes.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cae.model import CAE, CAEConfig, decode_images, reconstruction_loss


def tf_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def tf_conv_same(x, w, b, stride=1):
    top, bottom = tf_pads(x.shape[-2], w.shape[-2], stride)
    left, right = tf_pads(x.shape[-1], w.shape[-1], stride)
    return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=stride)


def tf_conv_transpose(y, w, b, out_size, stride, padding):
    """conv2d_transpose as TF defines it: the gradient of conv2d w.r.t. its input."""
    x = torch.zeros(y.shape[0], w.shape[1], out_size, out_size, dtype=y.dtype, requires_grad=True)
    if padding == "SAME":
        fwd = tf_conv_same(x, w, None, stride)
    else:
        fwd = F.conv2d(x, w, None, stride=stride)
    assert fwd.shape == y.shape, (fwd.shape, y.shape)
    (grad,) = torch.autograd.grad((fwd * y).sum(), x)
    return grad + b.view(1, -1, 1, 1)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = CAE().double()
    for p in m.parameters():  # non-zero biases so their placement is tested too
        torch.nn.init.normal_(p, std=0.1)
    return m


def test_shapes_after_every_layer(model):
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    expected_enc = [(32, 28, 28), (32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 14, 14),
                    (64, 7, 7), (2, 1, 1)]
    h = x
    for layer, shape in zip(model.encoder, expected_enc, strict=True):
        h = layer(h)
        assert tuple(h.shape[1:]) == shape, layer
    expected_dec = [(64, 7, 7), (64, 7, 7), (32, 14, 14), (32, 14, 14), (1, 28, 28)]
    for layer, shape in zip(model.decoder, expected_dec, strict=True):
        h = layer(h)
        assert tuple(h.shape[1:]) == shape, layer
    assert model.encode(x).shape == (2, 2)
    assert model.decode(torch.zeros(5, 2, dtype=torch.float64)).shape == (5, 1, 28, 28)


def test_architecture_is_the_lectures():
    m = CAE()
    conv_types = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    convs = [layer for layer in [*m.encoder, *m.decoder] if isinstance(layer, conv_types)]
    kinds = [(type(c).__name__, c.kernel_size, c.out_channels, c.stride, c.bias is not None)
             for c in convs]
    assert kinds == [
        ("Conv2d", (3, 3), 32, (1, 1), True),
        ("Conv2d", (3, 3), 64, (1, 1), True),
        ("Conv2d", (7, 7), 2, (1, 1), False),
        ("ConvTranspose2d", (7, 7), 64, (1, 1), True),
        ("ConvTranspose2d", (14, 14), 32, (2, 2), True),
        ("ConvTranspose2d", (28, 28), 1, (2, 2), True),
    ]
    assert not any(isinstance(layer, torch.nn.Linear) for layer in m.modules())
    pools = [layer for layer in m.encoder if isinstance(layer, torch.nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2), (2, 2)]


def np_conv_same_tf(x: np.ndarray, k: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """TF's conv2d, stride 1, SAME, NHWC input and a (kh, kw, in, out) kernel, in plain numpy."""
    kh, kw = k.shape[:2]
    (top, bottom), (left, right) = tf_pads(x.shape[1], kh, 1), tf_pads(x.shape[2], kw, 1)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out = np.zeros((*x.shape[:3], k.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += xp[:, dy:dy + x.shape[1], dx:dx + x.shape[2], :] @ k[dy, dx]
    return out if b is None else out + b


def np_conv_transpose_tf(y: np.ndarray, k: np.ndarray, b: np.ndarray, out_size: int, stride: int,
                         same: bool) -> np.ndarray:
    """TF's conv2d_transpose from its definition: every input pixel scatters the (kh, kw, out, in)
    kernel times its value onto a canvas, cropped by the forward conv's SAME padding."""
    n, h, w, _ = y.shape
    kh = k.shape[0]
    canvas = np.zeros((n, (h - 1) * stride + kh, (w - 1) * stride + kh, k.shape[2]))
    for u in range(h):
        for v in range(w):
            canvas[:, u * stride:u * stride + kh, v * stride:v * stride + kh, :] += np.einsum(
                "nc,yxoc->nyxo", y[:, u, v, :], k)
    top = tf_pads(out_size, kh, stride)[0] if same else 0
    return canvas[:, top:top + out_size, top:top + out_size, :] + b


def np_max_pool(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def test_tensorflow_kernels_map_by_plain_transpose():
    """A TF conv kernel (kh, kw, in, out) and a TF conv2d_transpose kernel (kh, kw, out, in) both
    become the PyTorch weight by transposing axes (3, 2, 0, 1): checked by value, each layer with
    random non-symmetric TF kernels against TF's definition computed in numpy."""
    rng = np.random.default_rng(0)
    m = CAE().double()
    layers = [(m.encoder[0], 28, None), (m.encoder[3], 14, None), (m.decoder[0], 7, (1, False)),
              (m.decoder[2], 14, (2, True)), (m.decoder[4], 28, (2, True))]
    for layer, size, transposed in layers:
        # TF's layout: (kh, kw, in, out) for a conv, (kh, kw, out, in) for a transposed one.
        k_tf = rng.normal(size=tuple(np.array(layer.weight.shape)[[2, 3, 1, 0]]))
        bias = rng.normal(size=layer.bias.shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(k_tf.transpose(3, 2, 0, 1)))
            layer.bias.copy_(torch.from_numpy(bias))
        if transposed is None:
            x = rng.random((2, size, size, k_tf.shape[2]))
            expected = np_conv_same_tf(x, k_tf, bias)
        else:
            stride, same = transposed
            x = rng.random((2, 1 if size == 7 else size // 2, 1 if size == 7 else size // 2,
                            k_tf.shape[3]))
            expected = np_conv_transpose_tf(x, k_tf, bias, size, stride, same)
        got = layer(nchw(x)).detach()
        torch.testing.assert_close(got, nchw(expected), rtol=1e-9, atol=1e-9)


def test_pools_and_the_code_layer_by_value(model):
    """The layers the per-layer test reaches only through compositions, each on its own."""
    x = torch.rand(2, 32, 28, 28, dtype=torch.float64) - 0.5
    torch.testing.assert_close(model.encoder[2](x), torch.from_numpy(np_max_pool(x.numpy())))
    x = torch.rand(2, 64, 14, 14, dtype=torch.float64) - 0.5
    torch.testing.assert_close(model.encoder[5](x), torch.from_numpy(np_max_pool(x.numpy())))
    p2 = torch.rand(2, 64, 7, 7, dtype=torch.float64)
    w = model.encoder[6].weight.detach().numpy()  # VALID 7x7 over a 7x7 map: one dot product each
    expected = np.einsum("nchw,ochw->no", p2.numpy(), w)
    torch.testing.assert_close(model.encoder[6](p2).flatten(1), torch.from_numpy(expected))


def test_each_layer_matches_tensorflow_semantics(model):
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    e, d = model.encoder, model.decoder
    h1 = torch.relu(tf_conv_same(x, e[0].weight, e[0].bias))
    torch.testing.assert_close(e[1](e[0](x)), h1)
    p1 = F.max_pool2d(h1, 2, 2)
    h2 = torch.relu(tf_conv_same(p1, e[3].weight, e[3].bias))
    torch.testing.assert_close(e[4](e[3](p1)), h2)
    p2 = F.max_pool2d(h2, 2, 2)
    z = F.conv2d(p2, e[6].weight)  # VALID, no bias
    torch.testing.assert_close(model.encode(x), z.flatten(1))

    g3 = torch.relu(tf_conv_transpose(z, d[0].weight, d[0].bias, 7, 1, "VALID"))
    torch.testing.assert_close(d[1](d[0](z)), g3)
    g2 = torch.relu(tf_conv_transpose(g3, d[2].weight, d[2].bias, 14, 2, "SAME"))
    torch.testing.assert_close(d[3](d[2](g3)), g2)
    g1 = tf_conv_transpose(g2, d[4].weight, d[4].bias, 28, 2, "SAME")
    torch.testing.assert_close(d[4](g2), g1)
    torch.testing.assert_close(model(x), g1)


def test_same_padding_reference_is_not_trivial():
    """The stride-2 transposed convs pad 6 and 13 pixels per side: an off-by-one would show."""
    assert tf_pads(14, 14, 2) == (6, 6)
    assert tf_pads(28, 28, 2) == (13, 13)
    m = CAE()
    assert m.decoder[2].padding == (6, 6) and m.decoder[4].padding == (13, 13)


def test_loss_and_display_clamp():
    x = torch.rand(4, 1, 28, 28)
    assert reconstruction_loss(x, x).item() == 0.0
    assert math.isclose(reconstruction_loss(x + 0.5, x).item(), 0.25, rel_tol=1e-5)
    m = CAE()
    with torch.no_grad():
        m.decoder[4].bias.fill_(5.0)
    img = decode_images(m, torch.zeros(3, 2))
    assert img.max().item() == 1.0 and img.min().item() >= 0.0
    assert not m.training


def test_config_round_trip_and_validation():
    cfg = CAEConfig()
    assert CAEConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        CAEConfig.from_dict({"image_size": 28, "bogus": 1})
    with pytest.raises(ValueError):
        CAEConfig(image_size=30)
