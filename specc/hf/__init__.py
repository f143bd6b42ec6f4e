"""Hugging Face `transformers` interop: weight mapping onto compiled reference specs."""

from specc.hf.rules import ARCHITECTURES, detect_architecture
from specc.hf.weights import MapProblems, WeightMapError, convert_state_dict, load_hf_state_dict

__all__ = ["ARCHITECTURES", "detect_architecture", "MapProblems", "WeightMapError", "convert_state_dict",
           "load_hf_state_dict"]
