"""Numerical parity with Hugging Face `transformers` (random init from configs, no downloads).

Weights go from the reference implementation into the compiled spec through
`specc.hf`; outputs must agree within 1e-5 (fp32, eval mode). Tiny variants
use the tiny specs' parameters; full-size ones the published configurations.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest
import torch
from torch import nn

import specc
from specc.compiler import SpecModel
from specc.hf import WeightMapError, convert_state_dict, detect_architecture, load_hf_state_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

transformers = pytest.importorskip("transformers")

SPECS = Path(__file__).resolve().parent.parent / "specs"
TOL = 1e-5
Params = Mapping[str, Any]


def tiny_sets(spec: str) -> list[str]:
    """`--set` overrides reproducing a tiny spec's [params] on a full-size spec (e.g. a tiny BertModel)."""
    params = tomllib.loads((SPECS / spec).read_text())["params"]
    return [f"params.{k}={v}" for k, v in params.items()]


# -- configs matching a spec's params ----------------------------------------------
def bert_config(p: Params) -> Any:
    return transformers.BertConfig(
        vocab_size=p["vocab"], hidden_size=p["d_model"], num_hidden_layers=p["layers"], num_attention_heads=p["heads"],
        intermediate_size=p["d_ff"], max_position_embeddings=p["max_seq"], type_vocab_size=p["type_vocab"],
        layer_norm_eps=p["eps"], hidden_act="gelu",
    )


def gpt2_config(p: Params) -> Any:
    return transformers.GPT2Config(
        vocab_size=p["vocab"], n_embd=p["d_model"], n_layer=p["layers"], n_head=p["heads"], n_inner=p["d_ff"],
        n_positions=p["max_seq"], layer_norm_epsilon=p["eps"], activation_function="gelu_new",
    )


def t5_config(p: Params) -> Any:
    return transformers.T5Config(
        vocab_size=p["vocab"], d_model=p["d_model"], d_kv=p["head_dim"], num_heads=p["heads"], d_ff=p["d_ff"],
        num_layers=p["layers"], relative_attention_num_buckets=p["buckets"],
        relative_attention_max_distance=p["max_distance"], layer_norm_epsilon=p["eps"], feed_forward_proj="relu",
        tie_word_embeddings=True,
    )


@dataclass
class Pair:
    """A `transformers` model and the compiled spec holding the same weights, both in eval mode."""

    hf: nn.Module
    ours: SpecModel
    params: Params


def make_pair(spec: str, sets: list[str], hf_class: Callable[[Any], nn.Module], config: Callable[[Params], Any]) -> Pair:
    torch.manual_seed(0)
    graph = specc.load_graph(SPECS / spec, sets)
    hf = hf_class(config(graph.spec.params)).eval()
    ours = specc.compile_model(graph).eval()
    load_hf_state_dict(ours, hf.state_dict())
    return Pair(hf, ours, graph.spec.params)


SIZES = ["tiny", "full"]  # full size: a few seconds each on a laptop CPU


def padded_batch(vocab: int, length: int = 12, pad_from: int = 7, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (2, length) and a mask whose second row is padding from `pad_from` on."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, length), generator=gen)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[1, pad_from:] = 0
    return ids, mask


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"{tuple(a.shape)} vs {tuple(b.shape)}"
    return (a - b).abs().max().item()


# -- BERT ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=SIZES)
def bert(request: pytest.FixtureRequest) -> Pair:
    sets = tiny_sets("bert-tiny.toml") if request.param == "tiny" else []
    return make_pair("bert-base.toml", sets, transformers.BertModel, bert_config)


@pytest.fixture(scope="module", params=SIZES)
def bert_pretraining(request: pytest.FixtureRequest) -> Pair:
    spec = "bert-tiny.toml" if request.param == "tiny" else "bert-base-pretraining.toml"
    return make_pair(spec, [], transformers.BertForPreTraining, bert_config)


def bert_inputs(p: Params) -> dict[str, torch.Tensor]:
    ids, mask = padded_batch(p["vocab"])
    segments = (torch.arange(ids.shape[1]) >= 5).long().expand_as(ids)  # sentence A, then sentence B
    return {"tokens": ids, "segments": segments, "attention_mask": mask}


@torch.no_grad()
def test_bert_model_parity_on_padded_batch(bert: Pair) -> None:
    x = bert_inputs(bert.params)
    ref = bert.hf(input_ids=x["tokens"], token_type_ids=x["segments"], attention_mask=x["attention_mask"])
    out = bert.ours(**x)
    keep = x["attention_mask"].bool()  # pad positions attend to nothing useful; compare real tokens
    assert max_diff(out["hidden"][keep], ref.last_hidden_state[keep]) <= TOL
    assert max_diff(out["pooled"], ref.pooler_output) <= TOL


@torch.no_grad()
def test_bert_pretraining_parity(bert_pretraining: Pair) -> None:
    x = bert_inputs(bert_pretraining.params)
    ref = bert_pretraining.hf(input_ids=x["tokens"], token_type_ids=x["segments"], attention_mask=x["attention_mask"])
    out = bert_pretraining.ours(**x)
    keep = x["attention_mask"].bool()
    assert max_diff(out["mlm_logits"][keep], ref.prediction_logits[keep]) <= TOL
    assert max_diff(out["nsp_logits"], ref.seq_relationship_logits) <= TOL


@torch.no_grad()
def test_bert_mlm_select_scores_only_the_selected_positions() -> None:
    pair = make_pair("bert-tiny.toml", [], transformers.BertForPreTraining, bert_config)
    x = bert_inputs(pair.params)
    select = torch.zeros_like(x["tokens"], dtype=torch.bool)
    select[0, [1, 4]], select[1, 2] = True, True
    ref = pair.hf(input_ids=x["tokens"], token_type_ids=x["segments"], attention_mask=x["attention_mask"])
    out = pair.ours(**x, mlm_select=select)
    assert out["mlm_logits"].shape == (3, pair.params["vocab"])
    assert max_diff(out["mlm_logits"], ref.prediction_logits[select]) <= TOL


# -- GPT-2 ---------------------------------------------------------------------------
@pytest.fixture(scope="module", params=SIZES)
def gpt2(request: pytest.FixtureRequest) -> Pair:
    spec = "gpt-tiny.toml" if request.param == "tiny" else "gpt2-small.toml"
    return make_pair(spec, [], transformers.GPT2LMHeadModel, gpt2_config)


@torch.no_grad()
def test_gpt2_lm_logits_parity(gpt2: Pair) -> None:
    ids, _ = padded_batch(gpt2.params["vocab"], length=16)
    assert max_diff(gpt2.ours(tokens=ids)["logits"], gpt2.hf(input_ids=ids).logits) <= TOL


@torch.no_grad()
def test_gpt2_parity_on_right_padded_batch(gpt2: Pair) -> None:
    ids, mask = padded_batch(gpt2.params["vocab"], length=16, pad_from=9)
    keep = mask.bool()
    ours = gpt2.ours(tokens=ids, attention_mask=mask)["logits"]
    assert max_diff(ours[keep], gpt2.hf(input_ids=ids, attention_mask=mask).logits[keep]) <= TOL


CAUSAL = {  # spec → (the decoder's input, other inputs)
    "gpt-tiny.toml": ("tokens", {}),
    "t5-tiny.toml": ("tgt", {"src": torch.arange(10).view(1, 10).repeat(2, 1)}),
    "transformer-tiny.toml": ("tgt", {"src": torch.arange(10).view(1, 10).repeat(2, 1)}),
}


@pytest.mark.parametrize("spec", CAUSAL)
@torch.no_grad()
def test_decoder_is_causal(spec: str) -> None:
    model = specc.compile_file(SPECS / spec).eval()
    name, others = CAUSAL[spec]
    ids, _ = padded_batch(2048, length=16)
    changed = ids.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 2048
    before, after = model(**{name: ids}, **others)["logits"], model(**{name: changed}, **others)["logits"]
    assert torch.equal(before[:, :10], after[:, :10])  # the past never sees the future
    assert max_diff(before[:, 10:], after[:, 10:]) > 1e-3  # and the changed token does matter


# -- T5 ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=SIZES)
def t5(request: pytest.FixtureRequest) -> Pair:
    spec = "t5-tiny.toml" if request.param == "tiny" else "t5-small.toml"
    return make_pair(spec, [], transformers.T5ForConditionalGeneration, t5_config)


@torch.no_grad()
def test_t5_parity_on_padded_source(t5: Pair) -> None:
    src, src_mask = padded_batch(t5.params["vocab"], length=14, pad_from=9)
    tgt, _ = padded_batch(t5.params["vocab"], length=8, seed=2)
    ref = t5.hf(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt)
    out = t5.ours(src=src, src_mask=src_mask, tgt=tgt)
    assert max_diff(out["logits"], ref.logits) <= TOL
    keep = src_mask.bool()
    assert max_diff(out["memory"][keep], ref.encoder_last_hidden_state[keep]) <= TOL


# -- the mapping refuses what does not fit -------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gpt2_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    params = specc.load_graph(SPECS / "gpt-tiny.toml").spec.params
    return dict(transformers.GPT2LMHeadModel(gpt2_config(params)).state_dict())


def tiny_model(spec: str, sets: list[str] | None = None) -> SpecModel:
    return specc.compile_model(specc.load_graph(SPECS / spec, sets or []), device="meta", init=False)


def test_missing_checkpoint_tensor_is_named(tiny_gpt2_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in tiny_gpt2_state.items() if k != "transformer.h.2.mlp.c_fc.bias"}
    with pytest.raises(WeightMapError, match=r"transformer\.h\.2\.mlp\.c_fc\.bias \(for h\.2\.mlp\.fc_in\.bias\)"):
        convert_state_dict(state, tiny_model("gpt-tiny.toml"))


def test_extra_checkpoint_tensor_is_named(tiny_gpt2_state: dict[str, torch.Tensor]) -> None:
    state = {**tiny_gpt2_state, "transformer.adapter.weight": torch.zeros(3)}
    with pytest.raises(WeightMapError, match=r"no place in the model \(1\):\n  transformer\.adapter\.weight"):
        convert_state_dict(state, tiny_model("gpt-tiny.toml"))


def test_layer_count_mismatch_names_the_missing_layer(tiny_gpt2_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(WeightMapError, match=r"model tensors the checkpoint does not fill .*\n  h\.4\.ln_1\.weight"):
        convert_state_dict(tiny_gpt2_state, tiny_model("gpt-tiny.toml", ["params.layers=5"]))


def test_width_mismatch_is_a_shape_error(tiny_gpt2_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(WeightMapError, match=r"transformer\.wpe\.weight → wpe\.weight: checkpoint \[256, 128\], model \[512, 128\]"):
        convert_state_dict(tiny_gpt2_state, tiny_model("gpt-tiny.toml", ["params.max_seq=512"]))


def test_untied_checkpoint_cannot_fill_a_tied_spec() -> None:
    torch.manual_seed(0)
    params = specc.load_graph(SPECS / "t5-tiny.toml").spec.params
    state = dict(transformers.T5ForConditionalGeneration(t5_config(params)).state_dict())
    state["lm_head.weight"] = torch.randn_like(state["shared.weight"])  # as a T5 v1.1 checkpoint has
    with pytest.raises(WeightMapError, match=r"tensors the spec ties but the checkpoint does not \(1\):\n  lm_head\.weight"):
        convert_state_dict(state, tiny_model("t5-tiny.toml"))


def test_pretraining_checkpoint_loads_into_bare_encoder_only_when_heads_are_skipped() -> None:
    torch.manual_seed(0)
    sets = tiny_sets("bert-tiny.toml")
    hf = transformers.BertForPreTraining(bert_config(specc.load_graph(SPECS / "bert-tiny.toml").spec.params))
    model = tiny_model("bert-base.toml", sets)
    with pytest.raises(WeightMapError, match=r"cls\.seq_relationship\.weight"):
        convert_state_dict(hf.state_dict(), model, arch="bert")
    converted = convert_state_dict(hf.state_dict(), model, arch="bert", skip=["cls."])
    assert torch.equal(converted["layer.0.attention.qkv.weight"][:128], hf.bert.encoder.layer[0].attention.self.query.weight)


def test_detect_architecture(tiny_gpt2_state: dict[str, torch.Tensor]) -> None:
    assert detect_architecture(tiny_gpt2_state) == "gpt2"
    assert detect_architecture(["bert.encoder.layer.0.attention.self.query.weight", "cls.predictions.bias"]) == "bert-pretraining"
    assert detect_architecture(["encoder.layer.0.attention.self.query.weight"]) == "bert"
    assert detect_architecture(["decoder.block.0.layer.1.EncDecAttention.q.weight"]) == "t5"
    with pytest.raises(ValueError, match="cannot tell the architecture"):
        detect_architecture(["foo.weight"])
