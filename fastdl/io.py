"""Save and load models: a documented ``.npz`` file, no pickle, written atomically.

The file is an uncompressed NumPy ``.npz`` archive (a zip; each member carries a CRC-32, so a
corrupted byte is detected on read) holding:

====================  ===================================================================
member                content
====================  ===================================================================
``fastdl_format``     the string ``"fastdl-model"`` (identifies the file)
``fastdl_version``    int64 format version, currently 1; a newer file is refused
``config``            JSON: ``{"class": <model class name>, "config": <model.get_config()>}``
``params``            the model's flat parameter arena (float32 or float64, 1-D)
``layout``            JSON: the arena's layout, ``{"dtype", "size", "tensors": [{name, shape, offset}]}``
``state``             JSON: fitted state that is not a parameter (e.g. class labels)
``optimizer``         JSON, optional: ``{"class", "step", "hyper"}`` of the optimizer's ``state_dict()``
``optimizer.<name>``  optional: its state buffers (e.g. Adam's ``exp_avg``, ``exp_avg_sq``)
====================  ===================================================================

Strings are stored as NumPy unicode arrays, so ``np.load(path, allow_pickle=False)`` reads every
member. ``load`` rebuilds the model from its config, checks that the rebuilt arena has the same
dtype, size and layout as the file, and copies the parameters in. Pickling or copying a model goes
through the same pieces (:func:`model_pieces`, :func:`model_from_pieces`).
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT_NAME = "fastdl-model"
FORMAT_VERSION = 1
_REQUIRED = ("fastdl_format", "fastdl_version", "config", "params", "layout", "state")


class ModelFileError(ValueError):
    """A file that is not a readable fastdl model (truncated, corrupted, foreign or too new)."""


def _json_array(obj):
    return np.array(json.dumps(obj, sort_keys=True))


def model_pieces(model, *, optimizer=True):
    """``model`` as plain data, what :func:`save` writes and what a pickled or copied model holds:
    ``{"class": type, "config", "params", "layout", "state", "optimizer"}``, the last being
    ``{"class": name, **state_dict}`` of the model's optimizer, or None (also with ``optimizer=False``).
    ``params`` (a host array) and the layout are the live arena's, not copies, on the CPU
    backends."""
    opt = getattr(model, "optimizer_", None) if optimizer else None
    return {"class": type(model), "config": model.get_config(),
            "params": model.ops.to_host(model.arena.params), "layout": model.arena.layout,
            "state": model.get_state(),
            "optimizer": None if opt is None else {"class": type(opt).__name__, **opt.state_dict()}}


def model_from_pieces(cls, config, params, layout, state, optimizer=None):
    """A new model of class ``cls`` built from :func:`model_pieces` (``params`` copied into its own
    arena). Raises ValueError when the pieces do not fit together, before returning anything."""
    try:
        model = cls.from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"the config does not build a {cls.__name__} ({exc})") from None
    params = np.asarray(params)
    arena = model.arena
    if params.dtype != arena.params.dtype or params.shape != arena.params.shape:
        raise ValueError(f"params are {params.dtype}{params.shape}, but the config builds "
                         f"{arena.params.dtype}{arena.params.shape}")
    if json.loads(json.dumps(layout)) != json.loads(json.dumps(arena.layout)):
        raise ValueError("the parameter layout does not match the model its config builds")
    model.ops.copy(params, arena.params)
    model.set_state(state)
    if optimizer is not None:
        try:
            model.restore_optimizer(optimizer["class"], optimizer)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the optimizer state does not fit the model ({exc})") from None
    return model


def check_save_path(path):
    """The directory a model saved to ``path`` is written in; an OSError naming ``path`` when that
    directory is missing or not writable (the CLI checks this before it trains)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"cannot save to {path}: {directory} is not writable")
    return directory


def save(model, path, *, optimizer=True):
    """Write ``model`` (and its optimizer's state, unless ``optimizer=False``) to ``path``.

    The file is written to a temporary file in the same directory and renamed over ``path``, so a
    crash never leaves a half-written model behind. ``path`` is used as given (no suffix added).
    """
    pieces = model_pieces(model, optimizer=optimizer)
    arrays = {
        "fastdl_format": np.array(FORMAT_NAME),
        "fastdl_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": _json_array({"class": pieces["class"].__name__, "config": pieces["config"]}),
        "params": pieces["params"],
        "layout": _json_array(pieces["layout"]),
        "state": _json_array(pieces["state"]),
    }
    opt = pieces["optimizer"]
    if opt is not None:
        arrays["optimizer"] = _json_array({"class": opt["class"], "step": opt["step"], "hyper": opt["hyper"]})
        arrays.update({f"optimizer.{name}": row for name, row in opt["state"].items()})
    fd, tmp = tempfile.mkstemp(prefix=".fastdl-", suffix=".tmp", dir=check_save_path(path))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_members(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{path}: not a fastdl model file (a bare .npy array)")
            missing = [name for name in _REQUIRED if name not in data.files]
            if missing:
                raise ModelFileError(f"{path}: not a fastdl model file (missing {', '.join(missing)})")
            return {name: data[name] for name in data.files}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable fastdl model file, truncated or corrupted ({exc})") from None


def _json_member(members, name, path):
    try:
        return json.loads(str(members[name][()]))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: member {name!r} is not valid JSON ({exc})") from None


def load(path):
    """Read a model written by :func:`save`; its optimizer state, if saved, is restored too."""
    from fastdl import models  # the model classes; imported here to keep io importable alone

    members = _read_members(path)
    if str(members["fastdl_format"][()]) != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a fastdl model file (format {members['fastdl_format'][()]!r})")
    version = int(members["fastdl_version"][()])
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version} is newer than this fastdl reads ({FORMAT_VERSION})")
    config = _json_member(members, "config", path)
    layout = _json_member(members, "layout", path)
    state = _json_member(members, "state", path)
    cls = models.MODEL_CLASSES.get(config.get("class")) if isinstance(config, dict) else None
    if cls is None:
        raise ModelFileError(f"{path}: unknown model class {config.get('class') if isinstance(config, dict) else config!r}")
    optimizer = None
    if "optimizer" in members:
        prefix = "optimizer."
        optimizer = {**_json_member(members, "optimizer", path),
                     "state": {k[len(prefix):]: v for k, v in members.items() if k.startswith(prefix)}}
    try:
        return model_from_pieces(cls, config.get("config"), members["params"], layout, state, optimizer)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
