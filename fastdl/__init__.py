"""fastdl: fast CPU deep learning for the unsupervised pre-training toolbox."""
from fastdl._kernels import available_backends, get_backend, set_backend
from fastdl._threads import get_num_threads, set_num_threads
from fastdl._warmup import warmup

__version__ = "0.1.0"

# Models, layers and save/load load on first use (PEP 562), so `import fastdl` stays light.
_LAZY = {"Dense": "layers", "Dropout": "layers", "Network": "models", "MLP": "models",
         "Autoencoder": "models", "StackedAutoencoder": "models", "save": "io", "load": "io",
         "optim": None, "datasets": None, "models": None, "layers": None, "training": None, "io": None}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'fastdl' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"fastdl.{_LAZY[name] or name}")
    return module if _LAZY[name] is None else getattr(module, name)


__all__ = ["get_num_threads", "set_num_threads", "get_backend", "set_backend", "available_backends",
           "warmup", "__version__", "Dense", "Dropout", "Network",
           "MLP", "Autoencoder", "StackedAutoencoder", "save", "load"]
