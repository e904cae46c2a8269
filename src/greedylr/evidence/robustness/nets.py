"""The neural families of the robustness study, written over batched weights.

Every weight carries a leading run axis ``R``, so that the R runs of one family (each with
its own weights) train as one model: a linear layer is one ``baddbmm`` over the runs, a
convolution one grouped ``conv2d``, attention a batched ``matmul``. The nets are small
classifiers of sklearn's 8x8 digits (the paper's Table 11 families).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["NEURAL", "Net", "Params"]

Params = dict[str, Tensor]


def _linear(x: Tensor, p: Params, name: str) -> Tensor:
    """``x @ W + b`` for every run: ``x`` is ``[R, ..., in]``, ``W`` ``[R, in, out]``."""
    w, b = p[name + ".w"], p[name + ".b"]
    shape = x.shape
    out = torch.baddbmm(b.unsqueeze(1), x.reshape(shape[0], -1, shape[-1]), w)
    return out.view(*shape[:-1], w.shape[-1])


def _layer_norm(x: Tensor, p: Params, name: str) -> Tensor:
    g, b = p[name + ".g"], p[name + ".b"]
    view = (g.shape[0],) + (1,) * (x.dim() - 2) + (g.shape[-1],)
    return F.layer_norm(x, x.shape[-1:]) * g.view(view) + b.view(view)


def _conv3x3(x: Tensor, p: Params, name: str, runs: int) -> Tensor:
    """A 3x3, padding-1 convolution of ``[R*B, C, H, W]`` with per-run weights.

    One grouped convolution: the runs become groups of channels. (``unfold`` plus
    ``baddbmm`` was 3x slower on the CPU: im2col/col2im loop over the images.)
    """
    n, c, h, w = x.shape
    b = n // runs
    weight = p[name + ".w"]  # [R, C*9, O]
    o = weight.shape[-1]
    kernel = weight.view(runs, c, 9, o).permute(0, 3, 1, 2).reshape(runs * o, c, 3, 3)
    grouped = x.view(runs, b, c, h, w).transpose(0, 1).reshape(b, runs * c, h, w)
    out = F.conv2d(grouped, kernel, p[name + ".b"].reshape(-1), padding=1, groups=runs)
    return out.view(b, runs, o, h, w).transpose(0, 1).reshape(n, o, h, w)


def _attention(x: Tensor, p: Params, name: str, heads: int) -> Tensor:
    """Multi-head self-attention of ``[R, B, n, d]`` token sequences, per run."""
    r, b, n, d = x.shape
    qkv = _linear(x, p, name + ".qkv").view(r, b, n, 3, heads, d // heads)
    q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)  # each [R, B, H, n, dh]
    att = torch.softmax(q @ k.transpose(-1, -2) * (d // heads) ** -0.5, dim=-1)
    out = (att @ v).transpose(2, 3).reshape(r, b, n, d)
    return _linear(out, p, name + ".o")


def _block(x: Tensor, p: Params, name: str, heads: int, mlp: bool = True) -> Tensor:
    """A pre-norm transformer block (attention, then a GELU MLP when ``mlp``)."""
    x = x + _attention(_layer_norm(x, p, name + ".ln1"), p, name + ".att", heads)
    if mlp:
        h = F.gelu(_linear(_layer_norm(x, p, name + ".ln2"), p, name + ".fc1"))
        x = x + _linear(h, p, name + ".fc2")
    return x


@dataclass(frozen=True)
class _Shape:
    """One parameter: shape, initialisation (``uniform`` with bound 1/sqrt(fan_in), as
    torch's Linear and Conv2d; ``ones``; ``zeros``; ``normal`` with std 0.1)."""

    shape: tuple[int, ...]
    init: str = "uniform"
    fan_in: int = 1


def _lin(i: int, o: int) -> dict[str, _Shape]:
    return {".w": _Shape((i, o), fan_in=i), ".b": _Shape((o,), fan_in=i)}


def _ln(d: int) -> dict[str, _Shape]:
    return {".g": _Shape((d,), "ones"), ".b": _Shape((d,), "zeros")}


def _block_shapes(d: int, mlp_dim: int | None) -> dict[str, _Shape]:
    out = {}
    for sub, parts in (("ln1", _ln(d)), ("att.qkv", _lin(d, 3 * d)), ("att.o", _lin(d, d))):
        out.update({sub + k: v for k, v in parts.items()})
    if mlp_dim:
        for sub, parts in (("ln2", _ln(d)), ("fc1", _lin(d, mlp_dim)), ("fc2", _lin(mlp_dim, d))):
            out.update({sub + k: v for k, v in parts.items()})
    return out


class Net:
    """A small classifier of 8x8 digit images, written over batched weights."""

    def __init__(self, shapes: dict[str, _Shape],
                 forward: Callable[[Params, Tensor], Tensor]) -> None:
        self.shapes = shapes
        self.forward = forward

    def init(self, generator: torch.Generator) -> Params:
        """One run's parameters (no run axis), drawn from ``generator``."""
        out = {}
        for name, s in self.shapes.items():
            if s.init == "uniform":
                bound = 1.0 / math.sqrt(s.fan_in)
                out[name] = (torch.rand(s.shape, generator=generator) * 2 - 1) * bound
            elif s.init == "normal":
                out[name] = torch.randn(s.shape, generator=generator) * 0.1
            elif s.init == "ones":
                out[name] = torch.ones(s.shape)
            else:
                out[name] = torch.zeros(s.shape)
        return out


def _prefixed(prefix: str, shapes: dict[str, _Shape]) -> dict[str, _Shape]:
    return {prefix + k: v for k, v in shapes.items()}


def _mlp() -> Net:
    shapes = {**_prefixed("fc1", _lin(64, 64)), **_prefixed("fc2", _lin(64, 10))}

    def forward(p: Params, x: Tensor) -> Tensor:
        return _linear(F.relu(_linear(x, p, "fc1")), p, "fc2")

    return Net(shapes, forward)


def _conv(i: int, o: int) -> dict[str, _Shape]:
    return {".w": _Shape((i * 9, o), fan_in=i * 9), ".b": _Shape((o,), fan_in=i * 9)}


def _cnn() -> Net:
    shapes = {**_prefixed("c1", _conv(1, 8)), **_prefixed("c2", _conv(8, 16)),
              **_prefixed("fc", _lin(64, 10))}

    def forward(p: Params, x: Tensor) -> Tensor:
        r, b = x.shape[:2]
        h = F.max_pool2d(F.relu(_conv3x3(x.reshape(r * b, 1, 8, 8), p, "c1", r)), 2)
        h = F.max_pool2d(F.relu(_conv3x3(h, p, "c2", r)), 2)  # [R*B, 16, 2, 2]
        return _linear(h.reshape(r, b, 64), p, "fc")

    return Net(shapes, forward)


def _resnet() -> Net:
    shapes = {**_prefixed("stem", _conv(1, 8))}
    for i in (1, 2):
        shapes.update(_prefixed(f"b{i}a", _conv(8, 8)))
        shapes.update(_prefixed(f"b{i}b", _conv(8, 8)))
    shapes.update(_prefixed("fc", _lin(32, 10)))

    def forward(p: Params, x: Tensor) -> Tensor:
        r, b = x.shape[:2]
        h = F.relu(_conv3x3(x.reshape(r * b, 1, 8, 8), p, "stem", r))
        h = F.max_pool2d(h, 2)  # the residual blocks run at 4x4: a quarter of the cost
        for i in (1, 2):
            inner = F.relu(_conv3x3(h, p, f"b{i}a", r))
            h = F.relu(h + _conv3x3(inner, p, f"b{i}b", r))
        h = F.avg_pool2d(h, 2)  # [R*B, 8, 2, 2]
        return _linear(h.reshape(r, b, 32), p, "fc")

    return Net(shapes, forward)


def _row_transformer(d: int, heads: int, layers: int, mlp_dim: int | None) -> Net:
    """Image rows as 8 tokens of 8 pixels: embed, ``layers`` blocks, mean-pool, classify."""
    shapes = {**_prefixed("emb", _lin(8, d)), "pos": _Shape((8, d), "normal")}
    for i in range(layers):
        shapes.update(_prefixed(f"l{i}.", _block_shapes(d, mlp_dim)))
    shapes.update(_prefixed("lnf", _ln(d)))
    shapes.update(_prefixed("fc", _lin(d, 10)))

    def forward(p: Params, x: Tensor) -> Tensor:
        r, b = x.shape[:2]
        h = _linear(x.reshape(r, b, 8, 8), p, "emb") + p["pos"].unsqueeze(1)
        for i in range(layers):
            h = _block(h, p, f"l{i}", heads, mlp=mlp_dim is not None)
        return _linear(_layer_norm(h.mean(dim=2), p, "lnf"), p, "fc")

    return Net(shapes, forward)


def _vit() -> Net:
    """4x4 patches (4 tokens of 16 pixels) plus a class token, one block, 2 heads."""
    d = 16
    shapes = {**_prefixed("emb", _lin(16, d)), "pos": _Shape((5, d), "normal"),
              "cls": _Shape((1, d), "normal"), **_prefixed("l0.", _block_shapes(d, 32)),
              **_prefixed("lnf", _ln(d)), **_prefixed("fc", _lin(d, 10))}

    def forward(p: Params, x: Tensor) -> Tensor:
        r, b = x.shape[:2]
        patches = x.reshape(r, b, 2, 4, 2, 4).permute(0, 1, 2, 4, 3, 5).reshape(r, b, 4, 16)
        h = _linear(patches, p, "emb")
        cls = p["cls"].unsqueeze(1).expand(r, b, 1, d)
        h = torch.cat([cls, h], dim=2) + p["pos"].unsqueeze(1)
        h = _block(h, p, "l0", 2)
        return _linear(_layer_norm(h[:, :, 0], p, "lnf"), p, "fc")

    return Net(shapes, forward)


NEURAL: dict[str, Callable[[], Net]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet": _resnet,
    "attention": lambda: _row_transformer(16, 1, 1, None),
    "multihead": lambda: _row_transformer(16, 4, 1, 32),
    "vit": _vit,
    "deep_transformer": lambda: _row_transformer(16, 2, 4, 32),
    "wide_transformer": lambda: _row_transformer(32, 4, 1, 64),
}
"""The neural families (the paper's Table 11), all on sklearn's digits."""
