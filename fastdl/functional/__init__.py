"""The public functional layer, like ``torch.nn.functional``: validates once, calls a kernel,
returns arrays. Each concern lives in its own module; this package re-exports them."""
from fastdl.functional.activations import *  # noqa: F401,F403
from fastdl.functional.dense import *  # noqa: F401,F403
from fastdl.functional.losses import *  # noqa: F401,F403
from fastdl.functional.noise import *  # noqa: F401,F403
