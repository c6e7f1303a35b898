"""``tr.save`` / ``tr.load``: checkpoints as NumPy ``.npz`` archives, without pickle.

A checkpoint is any nesting of dicts, lists and tuples whose leaves are arrays, tensors,
numbers, strings, bools or None (a model's ``state_dict()``, an optimiser's, a step counter).
Arrays go into the archive as ``.npy`` members (``a0``, ``a1``, ...); the nesting goes into one
more member, ``__tinyrnn__``, as UTF-8 JSON (a flat table of nodes, described below). Loading
never unpickles (``allow_pickle=False``), so a checkpoint cannot run code.

Writes are atomic: the archive is written to a temporary file in the target's folder, flushed
to disk (``fsync``) and renamed over the target (``os.replace``), so an interrupted or failed
save leaves the previous file intact and never a partial one. A damaged, truncated or foreign
file raises ``CheckpointError`` (a ``ValueError``) naming the file, and the entry at fault.

>>> import os, tempfile, numpy as np, tinyrnn as tr
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
>>> tr.save({"step": 3, "w": np.arange(3.0), "name": "lstm", "betas": (0.9, 0.999)}, path)
>>> ck = tr.load(path)
>>> ck["step"], ck["w"].tolist(), ck["name"], ck["betas"]
(3, [0.0, 1.0, 2.0], 'lstm', (0.9, 0.999))
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from .nn.module import Parameter
from .tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]

FORMAT = "tinyrnn-checkpoint"
VERSION = 1
HEADER = "__tinyrnn__"
_ARRAY_KINDS = "biufc"  # numeric and bool arrays: all of them load without pickle


class CheckpointError(ValueError):
    """A file that is not a readable tinyrnn checkpoint (damaged, truncated or foreign)."""


def _where(path: str) -> str:
    return path or "the checkpoint"


# ---- encoding (object -> flat node table + arrays) ----
#
# The nesting is stored as a flat table of nodes rather than as nested JSON, so neither
# writing nor reading it recurses, however deep the object. Node 0 is the root; a container
# lists the indices of its children, which always come after it in the table:
#   ["v", value]                           None, bool, int, float or str
#   ["list", [i, ...]], ["tuple", [i, ...]]
#   ["dict", [[key, i], ...]], ["odict", [[key, i], ...]]    keys: str, int, float, bool, None
#   ["array", "a3"], ["scalar", "a4"]     an ndarray / a NumPy scalar, stored as member a3 / a4
#   ["tensor", "a5", requires_grad], ["parameter", "a6", requires_grad]


def _encode(obj: Any) -> tuple[list[list[Any]], dict[str, np.ndarray]]:
    """Turn ``obj`` into the node table and a dict of named arrays, without recursion."""
    arrays: dict[str, np.ndarray] = {}
    nodes: list[list[Any]] = []
    active: set[int] = set()  # containers on the current path, to refuse cycles
    # work items: ("enc", value, where, parent_slot) or ("exit", id); parent_slot is a
    # (list, index) pair that receives the new node's index
    sink: list[Any] = [None]
    stack: list[tuple[Any, ...]] = [("enc", obj, "obj", (sink, 0))]
    while stack:
        item = stack.pop()
        if item[0] == "exit":
            active.discard(item[1])
            continue
        _, v, where, (parent, slot) = item
        parent[slot] = len(nodes)
        if v is None or isinstance(v, (bool, str)):
            nodes.append(["v", v])
        elif isinstance(v, int):
            nodes.append(["v", int(v)])
        elif isinstance(v, float):
            nodes.append(["v", float(v)])
        elif isinstance(v, (Tensor, np.ndarray, np.generic)):
            nodes.append(_encode_array(v, where, arrays))
        elif isinstance(v, (dict, list, tuple)):
            if id(v) in active:
                raise ValueError(f"save: {where} contains itself; cyclic data cannot be saved")
            active.add(id(v))
            stack.append(("exit", id(v)))
            children: list[Any] = []
            if isinstance(v, dict):
                kind = "odict" if isinstance(v, OrderedDict) else "dict"
                work = []
                for k, child in v.items():
                    if not (k is None or isinstance(k, (bool, int, float, str))):
                        raise TypeError(
                            f"save: dict key {k!r} in {where} has type {type(k).__name__}; "
                            "keys must be str, int, float, bool or None"
                        )
                    pair = [k, None]
                    children.append(pair)
                    work.append(("enc", child, f"{where}[{k!r}]", (pair, 1)))
            else:
                kind = "tuple" if isinstance(v, tuple) else "list"
                children = [None] * len(v)
                work = [("enc", c, f"{where}[{i}]", (children, i)) for i, c in enumerate(v)]
            nodes.append([kind, children])
            stack.extend(reversed(work))  # first child gets the next index
        else:
            raise TypeError(
                f"save: cannot store a value of type {type(v).__name__} at {where}; a checkpoint "
                "holds dicts, lists and tuples of arrays, tensors, numbers, strings, bools and None"
            )
    return nodes, arrays


def _encode_array(v: Any, where: str, arrays: dict[str, np.ndarray]) -> list[Any]:
    if isinstance(v, Tensor):
        arr = np.asarray(v.data)
        node: list[Any] = ["parameter" if isinstance(v, Parameter) else "tensor", None]
        node.append(bool(v.requires_grad))
    else:
        arr = np.asarray(v)
        node = ["scalar" if isinstance(v, np.generic) else "array", None]
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(
            f"save: the array at {where} has dtype {arr.dtype}; only numeric and bool arrays "
            "can be saved without pickle"
        )
    key = f"a{len(arrays)}"
    arrays[key] = arr
    node[1] = key
    return node


# ---- decoding (node table + arrays -> object) ----

_ARRAY_NODES = ("array", "scalar", "tensor", "parameter")


def _decode(nodes: Any, archive: Any, path: str) -> Any:
    """Rebuild the object from the node table, reading each array member once.

    A forward pass checks the table and names every node (its place in the object, for error
    messages); a backward pass builds values, children (which come later) before parents.
    """

    def damaged(i: int, where: str) -> CheckpointError:
        return CheckpointError(f"load: {_where(path)}: damaged header at {where} (node {i})")

    if not isinstance(nodes, list) or not nodes:
        raise CheckpointError(f"load: {_where(path)}: damaged header (no object table)")
    n = len(nodes)
    wheres: list[str | None] = [None] * n
    wheres[0] = "obj"
    for i, node in enumerate(nodes):
        where = wheres[i]
        if where is None:
            raise damaged(i, "an unreferenced node")
        if not (isinstance(node, list) and node and isinstance(node[0], str)):
            raise damaged(i, where)
        kind = node[0]
        if kind in ("list", "tuple", "dict", "odict"):
            if len(node) != 2 or not isinstance(node[1], list):
                raise damaged(i, where)
            for pos, child in enumerate(node[1]):
                if kind in ("dict", "odict"):
                    if not (isinstance(child, list) and len(child) == 2) or isinstance(
                        child[0], (list, dict)
                    ):
                        raise damaged(i, where)
                    label, child = f"[{child[0]!r}]", child[1]
                else:
                    label = f"[{pos}]"
                ok = isinstance(child, int) and not isinstance(child, bool) and i < child < n
                if not ok or wheres[child] is not None:
                    raise damaged(i, where)
                wheres[child] = where + label
        elif kind == "v":
            if len(node) != 2 or isinstance(node[1], (list, dict)):
                raise damaged(i, where)
        elif kind not in _ARRAY_NODES or len(node) < 2 or not isinstance(node[1], str):
            raise damaged(i, where)

    names = set(archive.files)
    used: set[str] = set()
    values: list[Any] = [None] * n
    for i in range(n - 1, -1, -1):
        node, where = nodes[i], wheres[i]
        kind = node[0]
        if kind == "v":
            values[i] = node[1]
        elif kind == "list":
            values[i] = [values[c] for c in node[1]]
        elif kind == "tuple":
            values[i] = tuple(values[c] for c in node[1])
        elif kind in ("dict", "odict"):
            made: dict[Any, Any] = OrderedDict() if kind == "odict" else {}
            for k, c in node[1]:
                made[k] = values[c]
            values[i] = made
        else:
            key = node[1]
            if key not in names:
                raise CheckpointError(
                    f"load: {_where(path)}: the array for {where} (entry {key!r}) is missing; "
                    "the file is damaged or was not written by tinyrnn"
                )
            try:
                arr = archive[key]
            except Exception as e:  # noqa: BLE001 - zip/CRC/format errors all mean damage
                raise CheckpointError(
                    f"load: {_where(path)}: entry {key!r} (the array for {where}) is damaged: {e}"
                ) from None
            used.add(key)
            values[i] = _restore_array(node, arr, str(where), path)
    extra = sorted(names - used - {HEADER})
    if extra:
        raise CheckpointError(
            f"load: {_where(path)}: entries {extra} are not described by the header; the file "
            "is damaged or was not written by tinyrnn"
        )
    return values[0]


def _restore_array(node: list[Any], arr: np.ndarray, where: str, path: str) -> Any:
    kind = node[0]
    if kind == "array":
        return arr
    if kind == "scalar":
        if arr.shape != ():
            raise CheckpointError(f"load: {_where(path)}: damaged scalar at {where}")
        return arr[()]
    requires_grad = len(node) > 2 and node[2] is True and arr.dtype.kind == "f"
    try:
        if kind == "parameter":
            return Parameter(arr, requires_grad=requires_grad)
        return Tensor(arr, requires_grad=requires_grad)
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"load: {_where(path)}: cannot rebuild the tensor at {where}: {e}"
        ) from None


# ---- public API ----


def save(obj: Any, path: Any) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays, tensors, numbers, strings, bools and
    None) to ``path`` as an ``.npz`` archive, atomically.

    Args:
        obj: the object to save, for example ``{"model": model.state_dict(), "optimizer":
            opt.state_dict(), "step": step}``.
        path: the file to write, exactly as given (no suffix is added); a binary file object
            is written directly (then without the atomic rename).

    Raises ``TypeError`` for a value that cannot be stored (naming where it is in ``obj``).
    """
    nodes, arrays = _encode(obj)
    header = json.dumps({"format": FORMAT, "version": VERSION, "nodes": nodes}, allow_nan=True)
    members: dict[str, Any] = {
        HEADER: np.frombuffer(header.encode("utf-8"), dtype=np.uint8),
        **arrays,
    }
    if hasattr(path, "write"):
        np.savez(path, **members)
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder!r} for {path!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: Any) -> Any:
    """Read a checkpoint written by ``tr.save``; returns the saved object.

    Arrays come back as NumPy arrays, tensors as ``Tensor`` (parameters as ``Parameter``) with
    their ``requires_grad`` flag, tuples as tuples. Raises ``FileNotFoundError`` for a missing
    file and ``CheckpointError`` (a ``ValueError``) naming the file for a damaged, truncated or
    foreign one.
    """
    if hasattr(path, "read"):
        name = getattr(path, "name", "") or "the file object"
        source: Any = io.BytesIO(path.read())
    else:
        name = os.fspath(path)
        if not os.path.exists(name):
            raise FileNotFoundError(f"load: no such file: {name!r}")
        if os.path.isdir(name):
            raise IsADirectoryError(f"load: {name!r} is a folder, not a checkpoint file")
        source = name
    try:
        archive = np.load(source, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - every failure here means "not a readable archive"
        raise CheckpointError(
            f"load: {name} is not a tinyrnn checkpoint (not a readable .npz archive: {e})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(
            f"load: {name} is a single NumPy array (.npy), not a tinyrnn checkpoint (.npz)"
        )
    with archive:
        try:
            names = archive.files
        except (zipfile.BadZipFile, OSError) as e:  # pragma: no cover - np.load reads these
            raise CheckpointError(f"load: {name} is damaged: {e}") from None
        if HEADER not in names:
            raise CheckpointError(
                f"load: {name} is a NumPy archive but not a tinyrnn checkpoint (it has no "
                f"{HEADER!r} entry)"
            )
        try:
            header = json.loads(bytes(archive[HEADER]).decode("utf-8"))
        except Exception as e:  # noqa: BLE001 - CRC, truncation, bad UTF-8 or JSON
            raise CheckpointError(f"load: {name}: the header is damaged ({e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"load: {name}: the header is not a tinyrnn checkpoint header")
        if header.get("version") != VERSION:
            raise CheckpointError(
                f"load: {name}: checkpoint format version {header.get('version')!r} is not "
                f"supported (this tinyrnn reads version {VERSION})"
            )
        return _decode(header.get("nodes"), archive, name)
