"""Hugging Face `transformers` interop: configs to specs, checkpoints to compiled models, and back.

`load_pretrained(dir)` reads an HF directory (config.json, weights, tokenizer.json)
as a spec, a compiled model with the checkpoint's weights, and its tokenizer;
`spec_from_config` makes only the spec; `export_model` + `write_hf_dir` write a
compiled model where `transformers`' `from_pretrained` loads it. The weight
rules (`convert_state_dict`) map BERT, RoBERTa, DistilBERT, GPT-2, Llama, T5
and BART state dicts onto the reference specs. No `transformers` import here.
"""

from specc.hf.exporter import Exported, export_model, write_hf_dir
from specc.hf.heads import TaskHead, export_task_model
from specc.hf.family import FAMILIES, HFImportError, NotRepresentable
from specc.hf.files import HFFormatError, read_config, read_weights
from specc.hf.importer import ImportedSpec, Pretrained, load_pretrained, spec_from_config
from specc.hf.families import ARCHITECTURES, detect_architecture
from specc.hf.tokenizer import HFTokenizer
from specc.hf.weights import MapProblems, WeightMapError, convert_state_dict, export_state_dict, load_hf_state_dict

__all__ = ["ARCHITECTURES", "FAMILIES", "Exported", "HFFormatError", "HFImportError", "HFTokenizer", "ImportedSpec",
           "MapProblems", "NotRepresentable", "Pretrained", "WeightMapError", "convert_state_dict", "detect_architecture",
           "export_model", "export_state_dict", "load_hf_state_dict", "load_pretrained", "read_config", "read_weights",
           "spec_from_config", "write_hf_dir", "TaskHead", "export_task_model"]
