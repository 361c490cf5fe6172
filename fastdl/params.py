"""A model's parameters in one flat buffer, and their gradients in another of the same layout.

Every tensor (a layer's ``W`` and ``b``, PReLU's ``alpha``, Swish's ``beta``, ...) is a view with a
name, a shape and an offset into ``arena.params``; its gradient is the view with the same offset
into ``arena.grads``. An optimizer step is then one kernel over one buffer, ``zero_grad`` is one
fill, and saving a model is one array plus ``arena.layout`` (plain names, shapes, offsets, dtype).

Names are dotted, ``"<layer>.<tensor>"``. The tensors of a layer are declared one after the other,
so they form one contiguous slice: ``arena.group("enc0")`` gives that slice of both buffers, over
which an optimizer can train the layer alone (greedy layer-wise pre-training)::

    arena = ParamArena(dtype="float32")
    arena.add("enc0.W", (784, 500))
    arena.add("enc0.b", (500,))
    arena.add("dec0.b", (784,))
    arena.allocate()                        # both buffers, zero-filled, in host memory
    W, dW = arena.param("enc0.W"), arena.grad("enc0.W")
    opt = fastdl.optim.Adam(arena.group("enc0"), lr=1e-3)

The buffers are numpy arrays until :meth:`ParamArena.place` puts them on a kernel backend's
memory (a model's arena lives on the GPU with the cuda backend); the views handed out after that
are the backend's arrays.
"""
from collections import namedtuple
from math import prod

import numpy as np

from fastdl._kernels import host
from fastdl._validation import check_float_dtype

__all__ = ["ParamArena", "ParamGroup", "TensorSpec"]

#: one tensor of the arena: ``params[offset:offset + size].reshape(shape)``
TensorSpec = namedtuple("TensorSpec", "name shape offset size")

#: a contiguous slice of an arena: the flat parameters and the flat gradients, 1-D views
ParamGroup = namedtuple("ParamGroup", "params grads")

_ALIGN_BYTES = 64  # one cache line, one AVX-512 register


def _aligned_zeros(size, dtype):
    """A zero-filled 1-D array of ``size`` elements whose data starts on a cache line."""
    pad = _ALIGN_BYTES // dtype.itemsize
    raw = np.zeros(size + pad, dtype=dtype)
    start = (-raw.ctypes.data % _ALIGN_BYTES) // dtype.itemsize
    return raw[start:start + size]


class ParamArena:
    """Named tensors laid out in one parameter buffer and one gradient buffer.

    Declare tensors with :meth:`add`, then :meth:`allocate` once; views are handed out after that.
    """

    def __init__(self, dtype="float32"):
        self.dtype = check_float_dtype(dtype, "dtype")
        self.specs = []
        self._by_name = {}
        self.size = 0
        self.params = None
        self.grads = None
        self.ops = None  # the backend whose arrays the buffers are; None: numpy, until place()

    # --- building -------------------------------------------------------------------------
    def add(self, name, shape):
        """Declare tensor ``name`` of ``shape`` right after the previous one; returns its spec."""
        if self.params is not None:
            raise RuntimeError(f"cannot add {name!r}: the arena is already allocated")
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        if name in self._by_name:
            raise ValueError(f"a tensor named {name!r} is already in the arena")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
            raise ValueError(f"shape of {name!r} must be non-negative ints, got {shape}")
        shape = tuple(int(d) for d in shape)
        spec = TensorSpec(name, shape, self.size, prod(shape))
        self.specs.append(spec)
        self._by_name[name] = spec
        self.size += spec.size
        return spec

    def allocate(self):
        """Allocate the zero-filled parameter and gradient buffers; returns ``self``."""
        if self.params is not None:
            raise RuntimeError("the arena is already allocated")
        self.params = _aligned_zeros(self.size, self.dtype)
        self.grads = _aligned_zeros(self.size, self.dtype)
        return self

    def place(self, ops):
        """Move both buffers to the memory of kernel backend ``ops`` (the CPU backends keep the
        numpy arrays: nothing is copied); views taken before stay on the old buffers. Returns
        ``self``."""
        self._allocated()
        self.params, self.grads = ops.to_device(self.params), ops.to_device(self.grads)
        self.ops = ops
        return self

    @classmethod
    def from_layout(cls, layout, params=None):
        """An allocated arena with ``layout`` (as given by :attr:`layout`), its parameters copied
        from the flat array ``params`` when given."""
        arena = cls(layout["dtype"])
        for entry in layout["tensors"]:
            spec = arena.add(entry["name"], entry["shape"])
            if spec.offset != entry["offset"]:
                raise ValueError(f"layout offset of {spec.name!r} is {entry['offset']}, but the "
                                 f"tensors before it end at {spec.offset}")
        if "size" in layout and layout["size"] != arena.size:
            raise ValueError(f"layout size is {layout['size']}, but its tensors hold {arena.size}")
        arena.allocate()
        if params is not None:
            params = np.asarray(params)
            if params.shape != (arena.size,):
                raise ValueError(f"params has shape {params.shape}, but the layout needs "
                                 f"({arena.size},)")
            arena.params[...] = params
        return arena

    # --- using ----------------------------------------------------------------------------
    @property
    def layout(self):
        """A plain, JSON-able description: ``{"dtype", "size", "tensors": [{name, shape, offset}]}``."""
        return {"dtype": self.dtype.name, "size": self.size,
                "tensors": [{"name": s.name, "shape": list(s.shape), "offset": s.offset}
                            for s in self.specs]}

    def spec(self, name):
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no tensor named {name!r}; the arena holds "
                           f"{[s.name for s in self.specs]}") from None

    def param(self, name):
        """The parameter tensor ``name``, a view into :attr:`params`."""
        return self._view(self._allocated().params, self.spec(name))

    def grad(self, name):
        """The gradient of tensor ``name``, a view into :attr:`grads`."""
        return self._view(self._allocated().grads, self.spec(name))

    def group(self, prefix):
        """The contiguous slice of tensors named ``prefix`` or ``prefix.*``, as a
        :class:`ParamGroup` of flat views into both buffers."""
        self._allocated()
        members = [s for s in self.specs if s.name == prefix or s.name.startswith(prefix + ".")]
        if not members:
            raise KeyError(f"no tensor named {prefix!r} or {prefix + '.*'!r}; the arena holds "
                           f"{[s.name for s in self.specs]}")
        start, stop = members[0].offset, members[-1].offset + members[-1].size
        if sum(s.size for s in members) != stop - start:
            raise ValueError(f"the tensors of {prefix!r} are not contiguous in the arena: declare "
                             f"them one after the other")
        return ParamGroup(self.params[start:stop], self.grads[start:stop])

    def zero_grad(self):
        """Set every gradient to zero (one fill)."""
        (self.ops or host).fill(self._allocated().grads, 0)

    def __len__(self):
        return self.size

    def __repr__(self):
        state = "allocated" if self.params is not None else "not allocated"
        return f"ParamArena({len(self.specs)} tensors, {self.size} {self.dtype.name}, {state})"

    def _allocated(self):
        if self.params is None:
            raise RuntimeError("the arena is not allocated yet: call allocate() after add()")
        return self

    @staticmethod
    def _view(buffer, spec):
        return buffer[spec.offset:spec.offset + spec.size].reshape(spec.shape)
