"""relight-bench: train, evaluate and compare RGB-D fusion networks on depth-guided image relighting."""

from bench.registry import count_parameters, create_model, list_models, load_plugins, register_model


def prepare_for_inference(model, **options):
    """Every inference-only optimisation (eval, BatchNorm folding, channels_last) on a copy; see bench.inference_opt."""
    from bench.inference_opt import prepare_for_inference as _prepare

    return _prepare(model, **options)


__all__ = ["register_model", "create_model", "list_models", "load_plugins", "count_parameters", "prepare_for_inference"]
__version__ = "0.1.0"
