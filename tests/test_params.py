import json

import numpy as np
import pytest

from fastdl.params import ParamArena, ParamGroup


def _arena(dtype="float32"):
    arena = ParamArena(dtype)
    arena.add("enc0.W", (3, 4))
    arena.add("enc0.b", 4)
    arena.add("act.alpha", ())
    arena.add("dec0.W", (4, 3))
    arena.add("dec0.b", (3,))
    return arena.allocate()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_views_are_laid_out_back_to_back_in_both_buffers(dtype):
    arena = _arena(dtype)
    assert arena.size == len(arena) == 12 + 4 + 1 + 12 + 3
    assert arena.params.dtype == arena.grads.dtype == np.dtype(dtype)
    assert [s.offset for s in arena.specs] == [0, 12, 16, 17, 29]
    assert arena.params.ctypes.data % 64 == 0 and arena.grads.ctypes.data % 64 == 0
    np.testing.assert_array_equal(arena.params, 0)
    arena.param("dec0.W")[...] = np.arange(12).reshape(4, 3)
    arena.grad("act.alpha")[...] = 7
    np.testing.assert_array_equal(arena.params[17:29], np.arange(12))
    assert arena.grads[16] == 7 and arena.param("act.alpha").shape == ()
    assert np.count_nonzero(arena.grads) == 1
    arena.zero_grad()
    np.testing.assert_array_equal(arena.grads, 0)


def test_group_is_the_contiguous_slice_of_a_layer():
    arena = _arena()
    arena.params[...] = np.arange(arena.size)
    group = arena.group("enc0")
    assert isinstance(group, ParamGroup)
    np.testing.assert_array_equal(group.params, np.arange(16))
    group.grads[...] = 1
    np.testing.assert_array_equal(arena.grad("enc0.b"), 1)
    np.testing.assert_array_equal(arena.grads[16:], 0)
    np.testing.assert_array_equal(arena.group("act.alpha").params, [16])
    with pytest.raises(KeyError, match="enc"):
        arena.group("enc")  # a prefix matches whole name parts only


def test_group_refuses_interleaved_tensors():
    arena = ParamArena()
    arena.add("a.W", 2)
    arena.add("b.W", 2)
    arena.add("a.b", 2)
    arena.allocate()
    with pytest.raises(ValueError, match="not contiguous"):
        arena.group("a")


def test_layout_round_trips_through_json():
    arena = _arena("float64")
    arena.params[...] = np.linspace(-1, 1, arena.size)
    layout = json.loads(json.dumps(arena.layout))
    assert layout["dtype"] == "float64" and layout["size"] == arena.size
    assert layout["tensors"][1] == {"name": "enc0.b", "shape": [4], "offset": 12}
    copy = ParamArena.from_layout(layout, arena.params)
    np.testing.assert_array_equal(copy.params, arena.params)
    np.testing.assert_array_equal(copy.param("dec0.W"), arena.param("dec0.W"))
    layout["tensors"][1]["offset"] = 13
    with pytest.raises(ValueError, match="offset of 'enc0.b'"):
        ParamArena.from_layout(layout)
    with pytest.raises(ValueError, match=r"params has shape \(3,\)"):
        ParamArena.from_layout(arena.layout, np.zeros(3))


def test_building_errors_name_the_problem():
    with pytest.raises(TypeError, match="float32 or float64"):
        ParamArena("int32")
    arena = ParamArena()
    arena.add("x.W", (2, 2))
    with pytest.raises(ValueError, match="already in the arena"):
        arena.add("x.W", 3)
    with pytest.raises(ValueError, match="non-negative"):
        arena.add("x.b", (-1,))
    with pytest.raises(RuntimeError, match="not allocated"):
        arena.param("x.W")
    arena.allocate()
    with pytest.raises(RuntimeError, match="already allocated"):
        arena.add("y.W", 2)
    with pytest.raises(KeyError, match="no tensor named 'y.W'"):
        arena.grad("y.W")
