"""relight-bench: train, evaluate and compare RGB-D fusion networks on depth-guided image relighting."""

from bench.registry import count_parameters, create_model, list_models, load_plugins, register_model

__all__ = ["register_model", "create_model", "list_models", "load_plugins", "count_parameters"]
__version__ = "0.1.0"
