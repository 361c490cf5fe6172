"""fastdl: Numba-accelerated CPU deep learning for the unsupervised pre-training toolbox."""
from fastdl._threads import get_num_threads, set_num_threads
from fastdl._warmup import warmup
from fastdl import optim  # noqa: F401  (fastdl.optim.Adam etc.)

__version__ = "0.1.0"

__all__ = ["get_num_threads", "set_num_threads", "warmup", "__version__"]
