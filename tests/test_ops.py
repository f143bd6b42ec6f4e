"""Registry-wide tests of the layer library, then attention's behaviour.

Every registered op needs at least one row in `SAMPLES` (params plus symbolic
input shapes); a new op without one fails `test_every_op_has_a_sample`. For
each row: the shape rule, with symbolic dims replaced by numbers, equals the
real forward's output shape; `param_shapes` equals the built module's
`named_parameters`; `param_count` equals their numel; forward and backward run
and every parameter gets a finite gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from specc.ops import REGISTRY, KVCache
from specc.ops.base import OpRecord
from specc.ops.layers import Initialisable, release

DIMS = {"batch": 3, "seq": 6, "src": 5}
D = 16

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors run fastest on one thread


@dataclass(frozen=True)
class Sample:
    params: dict[str, Any]
    inputs: dict[str, tuple[int | str, ...]]  # symbolic shapes, e.g. ("batch", "seq", 16)
    id: str = ""
    vocab: int = 11  # upper bound of token ids for `ids` inputs
    train: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


X = ("batch", "seq", D)
IDS = ("batch", "seq")
SAMPLES: dict[str, list[Sample]] = {
    "attention": [
        Sample({"d_model": D, "heads": 4}, {"x": X}, "self"),
        Sample({"d_model": D, "heads": 4, "causal": True, "bias": False}, {"x": X, "mask": IDS}, "causal-masked"),
        Sample({"d_model": D, "heads": 4, "kv_heads": 2, "position": "rotary", "causal": True}, {"x": X}, "gqa-rotary"),
        Sample({"d_model": D, "heads": 4, "kv_heads": 1, "position": "alibi"}, {"x": X, "mask": IDS}, "mqa-alibi"),
        Sample({"d_model": D, "heads": 2, "head_dim": 5, "scale": 1.0}, {"x": X, "bias": (1, 2, "seq", "seq")}, "t5-bias"),
        Sample({"d_model": D, "heads": 4, "cross": True, "d_memory": 12},
               {"x": X, "memory": ("batch", "src", 12), "mask": ("batch", "src")}, "cross"),
    ],
    "linear": [
        Sample({"in_dim": D, "out_dim": 24}, {"x": X}),
        Sample({"in_dim": D, "out_dim": 8, "bias": False, "activation": "tanh"}, {"x": ("batch", D)}, "no-bias"),
    ],
    "layer_norm": [Sample({"dim": D}, {"x": X}), Sample({"dim": D, "bias": False}, {"x": X}, "no-bias")],
    "rms_norm": [Sample({"dim": D, "eps": 1e-6}, {"x": X})],
    "activation": [Sample({"fn": "gelu_tanh"}, {"x": X}), Sample({"fn": "gelu_new"}, {"x": X}, "gelu_new")],
    "add": [Sample({}, {"a": X, "b": (1, "seq", D)}, "broadcast")],
    "dropout": [Sample({"p": 0.5}, {"x": X}, train=True)],
    "scale": [Sample({"factor": 0.25}, {"x": X})],
    "pool": [
        Sample({"mode": "first"}, {"x": X}, "first"),
        Sample({"mode": "mean"}, {"x": X, "mask": IDS}, "mean"),
        Sample({"mode": "last"}, {"x": X, "mask": IDS}, "last"),
    ],
    "embedding": [Sample({"vocab": 11, "dim": D, "scale": 4.0}, {"ids": IDS})],
    "learned_positions": [
        Sample({"max_len": 8, "dim": D}, {"ids": IDS}),
        Sample({"max_len": 10, "dim": D, "offset": 2, "pad_id": 1}, {"ids": IDS}, "roberta-offset-pad"),
    ],
    "sinusoidal_positions": [Sample({"dim": D}, {"ids": IDS})],
    "t5_relative_bias": [
        Sample({"heads": 4, "buckets": 8, "max_distance": 16}, {"ids": IDS}, "bidirectional"),
        Sample({"heads": 2, "bidirectional": False}, {"ids": IDS}, "causal"),
    ],
    "feed_forward": [
        Sample({"d_model": D, "d_ff": 32, "activation": "relu"}, {"x": X}, "relu"),
        Sample({"d_model": D, "d_ff": 24, "activation": "swiglu", "bias": False}, {"x": X}, "swiglu"),
        Sample({"d_model": D, "d_ff": 24, "activation": "geglu_tanh", "dropout": 0.1}, {"x": X}, "geglu", train=True),
    ],
    "lm_head": [
        Sample({"d_model": D, "vocab": 13}, {"x": X}, "all"),
        Sample({"d_model": D, "vocab": 13, "bias": True}, {"x": X, "select": IDS}, "select"),
    ],
    "mlm_head": [Sample({"d_model": D, "vocab": 13}, {"x": X, "select": IDS})],
    "classification_head": [
        Sample({"d_model": D, "num_labels": 3}, {"x": X}, "tokens"),
        Sample({"d_model": D, "num_labels": 2, "hidden": True, "dropout": 0.1}, {"x": ("batch", D)}, "pooled", train=True),
    ],
    "span_head": [Sample({"d_model": D}, {"x": X})],
}
CASES = [pytest.param(op, s, id=f"{op}-{s.id}" if s.id else op) for op, samples in SAMPLES.items() for s in samples]


def _concrete(shape: tuple[int | str, ...]) -> tuple[int, ...]:
    return tuple(DIMS[d] if isinstance(d, str) else d for d in shape)


def _tensor(name: str, shape: tuple[int, ...], sample: Sample, gen: torch.Generator) -> torch.Tensor:
    if name == "ids":
        return torch.randint(0, sample.vocab, shape, generator=gen)
    if name == "mask":  # padding: each row keeps at least its first position
        mask = torch.ones(shape, dtype=torch.long)
        mask[-1, -2:] = 0
        return mask
    if name == "select":
        select = torch.rand(shape, generator=gen) < 0.4
        select[0, 0] = True
        return select
    return torch.randn(shape, generator=gen, requires_grad=True)


def _build(record: OpRecord[Any], params: Any, seed: int = 0) -> torch.nn.Module:
    module = record.build(params)
    if isinstance(module, Initialisable):
        module.initialize(0.2, torch.Generator().manual_seed(seed))
    for p in module.parameters():
        release(p)
    return module


def _forward(record: OpRecord[Any], module: torch.nn.Module, args: dict[str, torch.Tensor],
             cache: KVCache | None = None) -> torch.Tensor:
    ordered = [args.get(i.name) for i in record.inputs]
    return module(*ordered, cache=cache) if record.uses_cache else module(*ordered)


def test_every_op_has_a_sample() -> None:
    missing = sorted(set(REGISTRY) - set(SAMPLES))
    assert not missing, f"add rows to SAMPLES for: {', '.join(missing)}"
    assert not set(SAMPLES) - set(REGISTRY), "SAMPLES names an op that is not registered"


@pytest.mark.parametrize("op, sample", CASES)
def test_op_matches_its_record(op: str, sample: Sample) -> None:
    record = REGISTRY[op]
    params = record.params.model_validate(sample.params)
    gen = torch.Generator().manual_seed(1)
    args = {name: _tensor(name, _concrete(shape), sample, gen) for name, shape in sample.inputs.items()}

    # (a) the symbolic shape rule agrees with the real output
    symbolic = record.shape(params, sample.inputs)
    module = _build(record, params)
    module.train(sample.train)
    out = _forward(record, module, args)
    selected = int(args["select"].sum()) if "select" in args else None
    expected = tuple(selected if d == "selected" else DIMS[d] if isinstance(d, str) else d for d in symbolic)
    assert tuple(out.shape) == expected

    # (b) declared parameter names, shapes and count agree with the module
    declared = record.param_shapes(params)
    actual = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert actual == declared
    assert record.param_count(params) == sum(p.numel() for p in module.parameters())
    flops = record.flops(params, sample.inputs, DIMS["seq"])
    assert isinstance(flops, int) and flops >= 0

    # (c) forward and backward: finite values, every parameter gets a finite gradient
    assert torch.isfinite(out).all()
    if out.requires_grad:
        (out.float() * torch.randn(out.shape, generator=gen)).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{op}: parameter {name} got no gradient"
        assert torch.isfinite(p.grad).all()
    for name, t in args.items():
        if t.is_floating_point():
            assert t.grad is not None and torch.isfinite(t.grad).all(), f"{op}: input {name} got no gradient"


def test_the_two_tanh_gelus_are_one_function_rounded_two_ways() -> None:
    """`gelu_new` is transformers' `gelu_new` bit for bit, forward and backward; `gelu_tanh` is PyTorch's fused
    kernel of the same function."""
    from transformers.activations import NewGELUActivation

    from specc.ops.layers import ACTIVATIONS

    x = (torch.randn(64, 257, generator=torch.Generator().manual_seed(0)) * 4).requires_grad_()
    theirs = NewGELUActivation()(x)
    ours = ACTIVATIONS["gelu_new"](x)
    assert torch.equal(ours, theirs)
    g = torch.randn_like(x)
    (ours_grad,) = torch.autograd.grad(ours, x, g)
    assert torch.equal(ours_grad, torch.ops.aten.gelu_backward(g, x.detach(), approximate="tanh"))
    fused = ACTIVATIONS["gelu_tanh"](x)
    assert torch.equal(fused, torch.nn.functional.gelu(x, approximate="tanh"))
    torch.testing.assert_close(fused, theirs, rtol=1e-6, atol=1e-6)


def test_shape_rules_reject_wrong_widths() -> None:
    from specc.ops import ShapeError

    bad = [("layer_norm", {"dim": 8}, {"x": X}), ("linear", {"in_dim": 8, "out_dim": 4}, {"x": X}),
           ("add", {}, {"a": X, "b": ("batch", "seq", 8)}), ("attention", {"d_model": 8, "heads": 2}, {"x": X}),
           ("attention", {"d_model": D, "heads": 2, "cross": True}, {"x": X}),
           ("embedding", {"vocab": 5, "dim": 4}, {"ids": X}), ("pool", {}, {"x": ("batch", D)})]
    for op, params, shapes in bad:
        record = REGISTRY[op]
        with pytest.raises(ShapeError):
            record.shape(record.params.model_validate(params), shapes)


# -- attention behaviour -------------------------------------------------------------------------------
def _attention(seed: int = 0, **params: Any) -> torch.nn.Module:
    record = REGISTRY["attention"]
    module = _build(record, record.params.model_validate({"d_model": D, "heads": 4, **params}), seed)
    return module.eval()


@pytest.mark.parametrize("position", ["none", "rotary", "alibi"])
def test_causal_attention_does_not_look_ahead(position: str) -> None:
    attn = _attention(causal=True, position=position, kv_heads=2)
    x = torch.randn(2, 7, D)
    changed = x.clone()
    changed[:, 4:] = torch.randn(2, 3, D)  # rewrite the future from position 4 on
    a, b = attn(x), attn(changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("params", [{}, {"causal": True}, {"position": "alibi"}, {"position": "rotary"}])
def test_padding_mask_hides_pad_tokens(params: dict[str, Any]) -> None:
    attn = _attention(**params)
    x = torch.randn(2, 6, D)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])  # left padding: causal rows see the pads too
    changed = x.clone()
    changed[1, :2] = 100 * torch.randn(2, D)  # new content at the pad positions only
    a, b = attn(x, mask=mask), attn(changed, mask=mask)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1, 2:], b[1, 2:])
    assert torch.isfinite(a).all() and torch.isfinite(b).all()  # rows that see only pads stay finite
    # the mask matters: without it the pads' content reaches the real tokens
    assert not torch.allclose(attn(x)[1, 2:], attn(changed)[1, 2:])


def test_grouped_query_attention_equals_multi_head_with_shared_kv() -> None:
    """kv_heads = 2 of 4 heads: the same as 4-head attention whose k/v heads repeat in pairs."""
    gqa = _attention(kv_heads=2, causal=True)
    mha = _attention(causal=True)
    hd, h, kv = D // 4, 4, 2
    with torch.no_grad():
        q_w, k_w, v_w = gqa.qkv.weight.split([h * hd, kv * hd, kv * hd])
        q_b, k_b, v_b = gqa.qkv.bias.split([h * hd, kv * hd, kv * hd])
        def spread(t: torch.Tensor) -> torch.Tensor:  # (kv*hd, ...) → (h*hd, ...), head i uses kv head i // 2
            return t.reshape(kv, hd, *t.shape[1:]).repeat_interleave(h // kv, dim=0).reshape(h * hd, *t.shape[1:])
        mha.qkv.weight.copy_(torch.cat([q_w, spread(k_w), spread(v_w)]))
        mha.qkv.bias.copy_(torch.cat([q_b, spread(k_b), spread(v_b)]))
        mha.o.load_state_dict(gqa.o.state_dict())
    x = torch.randn(2, 5, D)
    torch.testing.assert_close(gqa(x), mha(x))
    assert gqa.qkv.weight.shape[0] == (h + 2 * kv) * hd < mha.qkv.weight.shape[0]


def test_rotary_attention_sees_relative_positions_only() -> None:
    """Shifting every position by the same amount (a cache offset, nothing cached) changes nothing;
    the rotation itself does change the output compared with no positions."""
    attn = _attention(position="rotary")
    x = torch.randn(1, 5, D)
    plain = attn(x)
    torch.testing.assert_close(attn(x, cache=KVCache(offset=11)), plain)
    assert not torch.allclose(_attention(position="none")(x), plain)
    assert not torch.allclose(_attention(position="none")(x), _attention(position="alibi")(x))


@pytest.mark.parametrize("params", [
    {"position": "none"}, {"position": "rotary", "kv_heads": 2}, {"position": "alibi", "kv_heads": 1},
])
def test_kv_cache_decoding_equals_full_causal_forward(params: dict[str, Any]) -> None:
    attn = _attention(causal=True, **params)
    x = torch.randn(2, 7, D)
    full = attn(x)
    cache = KVCache()
    steps = []
    for t in range(x.shape[1]):
        steps.append(attn(x[:, t : t + 1], cache=cache))
        cache.advance(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    # a prompt of 3 tokens at once, then one at a time
    cache = KVCache()
    parts = [attn(x[:, :3], cache=cache)]
    cache.advance(3)
    for t in range(3, x.shape[1]):
        parts.append(attn(x[:, t : t + 1], cache=cache))
        cache.advance(1)
    torch.testing.assert_close(torch.cat(parts, dim=1), full)


def test_cross_attention_caches_memory_projection() -> None:
    attn = _attention(cross=True, d_memory=12)
    attn.cache_key = "dec.cross"
    x, memory = torch.randn(2, 4, D), torch.randn(2, 5, 12)
    full = attn(x, memory)
    cache = KVCache()
    steps = []
    for t in range(4):
        steps.append(attn(x[:, t : t + 1], memory, cache=cache))
        cache.advance(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    assert set(cache.entries) == {"dec.cross"} and cache.entries["dec.cross"][0].shape[2] == 5


MODEL = """
format = 1
[init]
std = 0.3  # large enough that attention is sharp and positions change the logits
[params]
vocab = 23
d = 16
heads = 4
[blocks.layer]
inputs = ["x", "bias"]
output = "out"
[blocks.layer.nodes]
ln = {{ op = "rms_norm", in = "x", dim = "d" }}
attn = {{ op = "attention", in = {{ x = "ln", bias = "bias" }}, d_model = "d", heads = "heads", causal = true, {attn} }}
res = {{ op = "add", in = ["x", "attn"] }}
ff = {{ op = "feed_forward", in = "res", d_model = "d", d_ff = 32, activation = "swiglu" }}
out = {{ op = "add", in = ["res", "ff"] }}
[model.inputs]
tokens = "int[batch, seq]"
[model.outputs]
logits = "head"
[model.nodes]
wte = {{ op = "embedding", in = "tokens", vocab = "vocab", dim = "d" }}
{positions}
h = {{ block = "layer", in = ["x", "rel"], repeat = 2 }}
head = {{ op = "lm_head", in = "h", d_model = "d", vocab = "vocab", tie = "wte.weight" }}
"""
POSITIONS = {
    "learned": ('wpe = { op = "learned_positions", in = "tokens", max_len = 16, dim = "d" }\n'
                'x = { op = "add", in = ["wte", "wpe"] }', 'position = "none"'),
    "sinusoidal": ('wpe = { op = "sinusoidal_positions", in = "tokens", dim = "d" }\n'
                   'x = { op = "add", in = ["wte", "wpe"] }', 'position = "none"'),
    "rotary": ('x = { op = "scale", in = "wte", factor = 1.0 }', 'position = "rotary", kv_heads = 2'),
    "alibi": ('x = { op = "scale", in = "wte", factor = 1.0 }', 'position = "alibi"'),
}


@pytest.mark.parametrize("kind", [*POSITIONS, "t5-bias"])
def test_kv_cache_decoding_of_a_compiled_model(kind: str, tmp_path: Any) -> None:
    """Whole-model incremental decoding, one token at a time, equals one causal forward (each position kind)."""
    import specc

    if kind == "t5-bias":
        positions, attn = 'x = { op = "scale", in = "wte", factor = 1.0 }', 'bias = false'
        rel = 'rel = { op = "t5_relative_bias", in = "tokens", heads = "heads", bidirectional = false, buckets = 8 }'
    else:
        positions, attn = POSITIONS[kind]
        rel = None
    text = MODEL.format(positions=positions, attn=attn)
    if rel is None:  # no bias input: the block takes only x
        text = text.replace('inputs = ["x", "bias"]', 'inputs = ["x"]').replace(', bias = "bias"', "")
        text = text.replace('in = ["x", "rel"]', 'in = ["x"]')
    else:
        text = text.replace("h = {", rel + "\nh = {")
    spec = tmp_path / "model.toml"
    spec.write_text(text)
    model = specc.compile_model(specc.load_graph(spec)).eval()
    tokens = torch.randint(0, 23, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(tokens=tokens)["logits"]
        cache = KVCache()
        steps = []
        for t in range(tokens.shape[1]):
            steps.append(model(tokens=tokens[:, t : t + 1], cache=cache)["logits"])
            cache.advance(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    assert math.isfinite(float(full.abs().max()))


def test_query_init_std_from_a_zero_std_draw() -> None:
    """init_std 0 draws zeros, which no factor rescales to q_init_std: the query is drawn with q_init_std itself."""
    attn = _attention(init_std=0.0, q_init_std=0.5)
    q, kv = attn.qkv.weight.split([D, 2 * D])
    assert 0.3 < q.std().item() < 0.7 and not kv.any()


def test_init_stds_are_never_negative() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        REGISTRY["attention"].params.model_validate({"d_model": D, "heads": 4, "out_init_std": -0.1})
