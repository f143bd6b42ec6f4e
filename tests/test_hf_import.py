"""Importing Hugging Face directories: specs from configs, weights, parity with `transformers`.

Every model is built by `transformers` from a config in code with random
weights, saved with `save_pretrained` to a temporary folder and imported with
`specc.hf.load_pretrained`; no downloads. Outputs must agree within 1e-5
(fp32) on batches with padding, parameter counts exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import specc
from specc.canonical import architecture_hash
from specc.frontend.formats import format_text
from specc.hf import HFFormatError, HFImportError, WeightMapError, load_pretrained, read_weights, spec_from_config
from specc.ops import KVCache

from hf_cases import BY_ID, PARAMS, TOL, V, Case, compare, max_diff, padded_batch, save, transformers

SPECS = Path(__file__).resolve().parent.parent / "specs"


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("case", PARAMS)
def test_import_matches_transformers(case: Case, tmp_path: Path) -> None:
    hf = case.build()
    pre = load_pretrained(save(hf, tmp_path))
    assert pre.imported.hf_class.name == case.cls
    assert count(pre.model) == count(hf)
    assert compare(case, hf, pre.model) <= TOL


@torch.no_grad()
def test_roberta_positions_skip_left_padding(tmp_path: Path) -> None:
    case = BY_ID["roberta-mlm"]
    hf = case.build()
    model = load_pretrained(save(hf, tmp_path)).model
    ids, mask = padded_batch(10, 0, pad=1)
    mask[1] = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # left padding: positions must count real tokens only
    ids[1, :3] = 1
    ref = hf(input_ids=ids, attention_mask=mask).logits
    out = model(tokens=ids, segments=torch.zeros_like(ids), attention_mask=mask)["mlm_logits"]
    keep = mask.bool()
    assert max_diff(out[keep], ref[keep]) <= TOL


@pytest.mark.parametrize("case", [BY_ID[i] for i in ("gpt2", "llama", "t5-v1_1", "bart")], ids=lambda c: c.id)
@torch.no_grad()
def test_kv_cache_decoding_equals_full_forward(case: Case, tmp_path: Path) -> None:
    hf = case.build()
    model = load_pretrained(save(hf, tmp_path)).model
    tgt, _ = padded_batch(10, 10, seed=3)
    if case.kind == "seq2seq":
        src, src_mask = padded_batch(12, 8, pad=case.pad)
        fixed: dict[str, Any] = {"src": src, "src_mask": src_mask}
        name, cache = "tgt", KVCache(incremental=frozenset({"tgt", "tgt_mask"}))
        ref = hf(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt).logits
    else:
        fixed, name, cache = {}, "tokens", KVCache()
        ref = hf(input_ids=tgt).logits
    full = model(**fixed, **{name: tgt})["logits"]
    steps = [model(**fixed, **{name: tgt[:, :4]}, cache=cache)["logits"]]  # the prompt at once, then token by token
    cache.advance(4)
    for t in range(4, tgt.shape[1]):
        steps.append(model(**fixed, **{name: tgt[:, t : t + 1]}, cache=cache)["logits"])
        cache.advance(1)
    assert max_diff(torch.cat(steps, dim=1), full) <= TOL
    assert max_diff(full, ref) <= TOL


# -- published configurations ------------------------------------------------------------------
# config.json of the published checkpoints, as they are on the Hub (trimmed of long generation tables).
PUBLISHED: dict[str, dict[str, Any]] = {
    "bert-base-uncased": {
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
        "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
    "roberta-base": {
        "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
        "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265},
    "distilbert-base-uncased": {
        "activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1, "dim": 768,
        "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02, "max_position_embeddings": 512,
        "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "tie_weights_": True,
        "transformers_version": "4.10.0.dev0", "vocab_size": 30522},
    "gpt2": {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256,
        "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}}, "vocab_size": 50257},
    "t5-small": {
        "architectures": ["T5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 512,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "initializer_factor": 1.0,
        "is_encoder_decoder": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512, "num_heads": 8,
        "num_layers": 6, "output_past": True, "pad_token_id": 0, "relative_attention_num_buckets": 32,
        "vocab_size": 32128},
    "google/t5-v1_1-small": {
        "architectures": ["T5ForConditionalGeneration"], "d_ff": 1024, "d_kv": 64, "d_model": 512,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0, "is_encoder_decoder": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
        "num_decoder_layers": 8, "num_heads": 6, "num_layers": 8, "output_past": True, "pad_token_id": 0,
        "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "vocab_size": 32128},
    "facebook/bart-base": {
        "activation_dropout": 0.1, "activation_function": "gelu", "add_bias_logits": False, "add_final_layer_norm": False,
        "architectures": ["BartModel"], "attention_dropout": 0.1, "bos_token_id": 0, "classif_dropout": 0.1,
        "classifier_dropout": 0.0, "d_model": 768, "decoder_attention_heads": 12, "decoder_ffn_dim": 3072,
        "decoder_layerdrop": 0.0, "decoder_layers": 6, "decoder_start_token_id": 2, "dropout": 0.1,
        "early_stopping": True, "encoder_attention_heads": 12, "encoder_ffn_dim": 3072, "encoder_layerdrop": 0.0,
        "encoder_layers": 6, "eos_token_id": 2, "forced_eos_token_id": 2, "gradient_checkpointing": False,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}, "init_std": 0.02, "is_encoder_decoder": True,
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}, "max_position_embeddings": 1024, "model_type": "bart",
        "no_repeat_ngram_size": 3, "normalize_before": False, "normalize_embedding": True, "num_beams": 4,
        "num_hidden_layers": 6, "pad_token_id": 1, "scale_embedding": False, "transformers_version": "4.12.0.dev0",
        "use_cache": True, "vocab_size": 50265},
    "HuggingFaceTB/SmolLM2-135M": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0,
        "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
        "intermediate_size": 1536, "is_llama_config": True, "max_position_embeddings": 8192, "model_type": "llama",
        "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None, "rope_theta": 100000,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.42.3", "use_cache": True,
        "vocab_size": 49152},
}
# (published config, class to import, reference spec with the same architecture, parameters)
REFERENCES = [
    ("bert-base-uncased", "BertModel", "bert-base.toml", 109_482_240),
    ("bert-base-uncased", "BertForPreTraining", "bert-base-pretraining.toml", 110_106_428),
    ("roberta-base", "RobertaModel", "roberta-base.toml", 124_645_632),
    ("distilbert-base-uncased", "DistilBertModel", "distilbert-base.toml", 66_362_880),
    ("distilbert-base-uncased", "DistilBertForMaskedLM", "distilbert-base-mlm.toml", 66_985_530),
    ("gpt2", "GPT2LMHeadModel", "gpt2-small.toml", 124_439_808),
    ("t5-small", "T5ForConditionalGeneration", "t5-small.toml", 60_506_624),
    ("google/t5-v1_1-small", "T5ForConditionalGeneration", "t5-v1_1-small.toml", 76_961_152),
    ("facebook/bart-base", "BartForConditionalGeneration", "bart-base.toml", 139_420_416),
    ("HuggingFaceTB/SmolLM2-135M", "LlamaForCausalLM", "smollm2-135m.toml", 134_515_008),
]


@pytest.mark.parametrize("name, cls, reference, params", REFERENCES, ids=[f"{r[0]}:{r[1]}" for r in REFERENCES])
def test_published_config_imports_as_its_reference_spec(name: str, cls: str, reference: str, params: int) -> None:
    allow = ("is_llama_config",) if "SmolLM" in name else ()
    imported = spec_from_config(PUBLISHED[name], cls, allow_unknown=allow)
    assert architecture_hash(imported.graph) == architecture_hash(specc.load_graph(SPECS / reference))
    assert imported.graph.param_count() == params


def test_imported_spec_keeps_the_reference_expressions_and_reads_back(tmp_path: Path) -> None:
    imported = spec_from_config(PUBLISHED["gpt2"])
    text = imported.text
    assert 'd_ff = "4 * d_model"' in text and 'std_resid = "std / sqrt(2 * layers)"' in text
    assert "structure of specs/gpt2-small.toml" in text
    assert format_text(text, "gpt2.toml") == text  # already in `specc fmt`'s layout
    path = tmp_path / "gpt2.toml"
    path.write_text(text)
    assert architecture_hash(specc.load_graph(path)) == architecture_hash(imported.graph)


def test_published_parameter_counts_equal_transformers() -> None:
    """The reference specs of the new families against transformers' own count of the same configs."""
    for name, cls, reference, params in REFERENCES:
        config = {k: v for k, v in PUBLISHED[name].items() if k not in ("architectures", "is_llama_config", "rope_interleaved")}
        hf_config = transformers.AutoConfig.for_model(**config)
        with torch.device("meta"):
            model = getattr(transformers, cls)(hf_config)
        if reference == "t5-v1_1-small.toml":  # transformers 5 ties T5's head when built from a config; v1.1's is its own
            model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.shared.weight))
        assert count(model) == params, f"{name} as {cls}"


# -- what is not supported is said by name ------------------------------------------------------------
def test_unsupported_and_unknown_fields_are_all_named() -> None:
    config = {**PUBLISHED["bert-base-uncased"], "position_embedding_type": "relative_key", "hidden_act": "mish",
              "adapter_size": 64}
    with pytest.raises(HFImportError) as err:
        spec_from_config(config)
    text = str(err.value)
    assert "field 'position_embedding_type' = 'relative_key' is not supported" in text
    assert "field 'hidden_act' = 'mish' is not supported" in text
    assert "unknown config field 'adapter_size' = 64 (pass --allow-unknown adapter_size" in text


def test_allow_unknown_lists_the_field_as_ignored() -> None:
    imported = spec_from_config({**PUBLISHED["gpt2"], "adapter_size": 64}, allow_unknown=["adapter_size"])
    assert "adapter_size" in imported.ignored and "n_ctx" in imported.ignored
    assert "adapter_size" in imported.text.split("format = 1")[0]  # named in the header comment


@pytest.mark.parametrize("config, message", [
    ({"model_type": "albert"}, "model_type 'albert' is not one specc imports"),
    ({**PUBLISHED["bert-base-uncased"], "architectures": ["BertForSequenceClassification"]},
     "class 'BertForSequenceClassification' is not one specc imports (known: BertModel, BertForMaskedLM, BertForPreTraining)"),
    ({**PUBLISHED["HuggingFaceTB/SmolLM2-135M"], "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
     "field 'rope_scaling' = {'rope_type': 'linear', 'factor': 2.0} is not supported"),
    ({**PUBLISHED["facebook/bart-base"], "normalize_before": True}, "field 'normalize_before' = True is not supported"),
    ({**PUBLISHED["t5-small"], "feed_forward_proj": "gated-relu"}, "field 'feed_forward_proj' = 'gated-relu'"),
    ({**PUBLISHED["gpt2"], "scale_attn_by_inverse_layer_idx": True}, "'scale_attn_by_inverse_layer_idx' = True"),
])
def test_unsupported_configs_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(HFImportError, match=None) as err:
        spec_from_config(config, allow_unknown=["is_llama_config"])
    assert message in str(err.value)


# -- weights files -----------------------------------------------------------------------------
def test_sharded_safetensors_and_weights_only_bin_load_the_same(tmp_path: Path) -> None:
    hf = BY_ID["gpt2"].build()
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "sharded" / "config.json").read_text())
    torch.save(hf.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    a, b = load_pretrained(tmp_path / "sharded").model, load_pretrained(tmp_path / "bin").model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert compare(BY_ID["gpt2"], hf, a) <= TOL


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pickled code ran",))


def test_bin_with_code_is_refused(tmp_path: Path) -> None:
    torch.save({"wte.weight": torch.zeros(2), "evil": _Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(HFFormatError, match="cannot load with weights_only=True"):
        read_weights(tmp_path)


def test_shard_index_may_not_point_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../elsewhere.safetensors"}}))
    with pytest.raises(HFFormatError, match="is not a file in"):
        read_weights(tmp_path)


def test_bart_logits_bias_must_be_zero(tmp_path: Path) -> None:
    hf = BY_ID["bart"].build()
    with torch.no_grad():
        hf.final_logits_bias.fill_(0.5)
    with pytest.raises(WeightMapError, match="final_logits_bias is not all zeros"):
        load_pretrained(save(hf, tmp_path))


def test_untied_t5_head_in_the_checkpoint_makes_an_untied_spec(tmp_path: Path) -> None:
    """transformers 5 builds T5 v1.1 tied from a config but keeps a checkpoint's own head untied."""
    case = BY_ID["t5-v1_1"]
    hf = case.build()
    hf.lm_head.weight = torch.nn.Parameter(torch.randn(V, 32))
    pre = load_pretrained(save(hf, tmp_path))
    assert "tie" not in pre.imported.tree.node("model", "lm_head")
    assert count(pre.model) == count(hf)
    assert compare(case, hf, pre.model) <= TOL


def test_task_head_tensors_are_named_unless_skipped(tmp_path: Path) -> None:
    config = BY_ID["bert"].config()
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(config).eval()
    save(hf, tmp_path)
    with pytest.raises(HFImportError, match="BertForSequenceClassification"):
        load_pretrained(tmp_path)
    with pytest.raises(WeightMapError, match=r"classifier\.weight"):
        load_pretrained(tmp_path, architecture="BertModel")
    model = load_pretrained(tmp_path, architecture="BertModel", skip=["classifier."]).model
    ids, mask = padded_batch()
    ref = hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    out = model(tokens=ids, segments=torch.zeros_like(ids), attention_mask=mask)["hidden"]
    assert max_diff(out[mask.bool()], ref[mask.bool()]) <= TOL


# -- full published size (slow) ---------------------------------------------------------------
FULL = [
    ("bert-base-uncased", "BertModel", "encoder"), ("bert-base-uncased", "BertForPreTraining", "encoder"),
    ("roberta-base", "RobertaForMaskedLM", "encoder"), ("distilbert-base-uncased", "DistilBertForMaskedLM", "encoder"),
    ("gpt2", "GPT2LMHeadModel", "decoder"), ("HuggingFaceTB/SmolLM2-135M", "LlamaForCausalLM", "decoder"),
    ("t5-small", "T5ForConditionalGeneration", "seq2seq"), ("google/t5-v1_1-small", "T5ForConditionalGeneration", "seq2seq"),
    ("facebook/bart-base", "BartForConditionalGeneration", "seq2seq"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, cls, kind", FULL, ids=[f"{n}:{c}" for n, c, _ in FULL])
def test_full_size_import_matches_transformers(name: str, cls: str, kind: str, tmp_path: Path) -> None:
    """The published configurations, random weights: parameter counts and outputs (printed with -s)."""
    config = {k: v for k, v in PUBLISHED[name].items() if k not in ("architectures", "is_llama_config", "rope_interleaved")}
    torch.manual_seed(0)
    hf = getattr(transformers, cls)(transformers.AutoConfig.for_model(**config)).eval()
    if name == "google/t5-v1_1-small":  # the published checkpoint has an LM head of its own
        hf.lm_head.weight = torch.nn.Parameter(torch.randn_like(hf.shared.weight))
    case = Case(name, cls, lambda: None, kind, segments=kind == "encoder" and "distilbert" not in name,
                pad=int(PUBLISHED[name].get("pad_token_id") or 0))
    pre = load_pretrained(save(hf, tmp_path), allow_unknown=["is_llama_config"])
    assert count(pre.model) == count(hf)
    diff = compare(case, hf, pre.model, vocab=PUBLISHED[name]["vocab_size"])
    print(f"\nparity {name} {cls}: {count(hf):,} parameters, max |Δ| = {diff:.2e}")
    assert diff <= TOL
