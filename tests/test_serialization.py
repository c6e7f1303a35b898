"""tr.save / tr.load: round trips (bit for bit), atomic writes, and clear errors for damaged,
truncated, foreign or mismatched files."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.serialization import CheckpointError


@pytest.fixture(autouse=True)
def _seed():
    tr.manual_seed(0)


def _same(a, b):
    """Deep equality with exact arrays (dtype and bits), tuples vs lists and key types."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        assert type(x) is type(y), (x, y)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()
        elif isinstance(x, tr.Tensor):
            assert x.requires_grad == y.requires_grad
            stack.append((x.data, y.data))
        elif isinstance(x, dict):
            assert list(x) == list(y)
            assert [type(k) for k in x] == [type(k) for k in y]
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y)
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, float) and math.isnan(x):
            assert math.isnan(y)
        else:
            assert x == y


def test_round_trip_of_every_supported_kind(tmp_path):
    obj = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "f64": np.random.default_rng(0).standard_normal((3, 1)),
        "ints": np.array([1, -2, 3], dtype=np.int64),
        "i32": np.array([[7]], dtype=np.int32),
        "bools": np.array([True, False]),
        "empty": np.zeros((0, 4)),
        "scalar0d": np.array(2.5),
        "np_scalar": np.float32(1.25),
        "np_int": np.int64(9),
        "tensor": tr.randn(2, 2, dtype=tr.float64, requires_grad=True),
        "plain_tensor": tr.tensor([1, 2, 3]),
        "param": nn.Parameter(tr.ones(3)),
        "numbers": [1, 2.5, -0.0, float("inf"), float("nan"), 10**30],
        "strings": ("a", "", "ünïcode ✓", '"quoted"'),
        "flags": [True, False, None],
        "nested": {"deeper": [{"x": (np.ones(1), [])}], 3: "int key", 1.5: "float key"},
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "__array__": "a user key that looks like a tag",
        "t": {"t": "array", "key": "a0"},
    }
    path = tmp_path / "all.npz"
    tr.save(obj, path)
    back = tr.load(path)
    _same(obj, back)
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert type(back["tensor"]) is tr.Tensor and back["tensor"].requires_grad
    assert isinstance(back["np_scalar"], np.float32)
    assert back["nested"][3] == "int key"
    assert isinstance(back["ordered"], OrderedDict)


def test_top_level_values_and_exact_path(tmp_path):
    for obj in (None, 3, "text", [1, [2, [3]]], (), np.arange(3)):
        path = tmp_path / "x.ckpt"
        tr.save(obj, str(path))
        _same(obj, tr.load(str(path)))
    assert sorted(os.listdir(tmp_path)) == ["x.ckpt"]  # no suffix added, no temp file left


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    tr.save({"w": np.ones(2)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(tr.load(buf)["w"], np.ones(2))


def test_no_pickle_in_the_archive(tmp_path):
    path = tmp_path / "m.npz"
    tr.save({"model": nn.Linear(3, 2).state_dict(), "step": 4}, path)
    with np.load(path, allow_pickle=False) as z:  # loads fine without pickle
        header = json.loads(bytes(z["__tinyrnn__"]).decode())
        assert header["format"] == "tinyrnn-checkpoint" and header["version"] == 1
        assert all(z[k].dtype != object for k in z.files)


def test_model_and_optimizer_checkpoint_round_trip_bit_for_bit(tmp_path):
    def make():
        tr.manual_seed(1)
        model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
        opt = tr.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
        sched = tr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return model, opt, sched

    x = tr.randn(16, 4)
    y = tr.tensor(np.arange(16) % 3)

    def train(model, opt, sched, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()

    model, opt, sched = make()
    train(model, opt, sched, 3)
    path = tmp_path / "ckpt.npz"
    tr.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": 3,
        },
        path,
    )
    ck = tr.load(path)
    _same(ck["model"], model.state_dict())
    _same(ck["optimizer"], opt.state_dict())

    model2, opt2, sched2 = make()
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert ck["step"] == 3
    train(model, opt, sched, 4)
    train(model2, opt2, sched2, 4)
    _same(model.state_dict(), model2.state_dict())
    _same(opt.state_dict(), opt2.state_dict())
    assert sched.get_last_lr() == sched2.get_last_lr()


# ---- atomic writes ----


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "ckpt.npz"
    tr.save({"w": np.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(
        TypeError,
        match=r"save: cannot store a value of type object at "
        r"obj\['bad'\]\[1\]",
    ):
        tr.save({"w": np.zeros(3), "bad": [1, object()]}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tr.save({"w": np.ones(3)}, path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        tr.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    np.testing.assert_array_equal(tr.load(path)["w"], np.ones(3))


def test_save_uses_fsync_and_replace(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    tr.save({"w": np.ones(2)}, tmp_path / "c.npz")
    assert calls[:2] == ["fsync", "replace"]


def test_save_errors(tmp_path):
    with pytest.raises(TypeError, match=r"save: the array at obj\['s'\] has dtype object"):
        tr.save({"s": np.array([{}], dtype=object)}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match=r"save: dict key \(1, 2\) in obj\['d'\] has type tuple"):
        tr.save({"d": {(1, 2): 3}}, tmp_path / "a.npz")
    cyclic = [1]
    cyclic.append(cyclic)
    with pytest.raises(
        ValueError,
        match=r"save: obj\[1\] contains itself; cyclic data cannot be "
        r"saved",
    ):
        tr.save(cyclic, tmp_path / "a.npz")
    with pytest.raises(FileNotFoundError, match=r"save: folder .*nowhere.* does not exist"):
        tr.save({}, tmp_path / "nowhere" / "a.npz")
    shared = [1, 2]
    tr.save({"a": shared, "b": shared}, tmp_path / "ok.npz")  # shared, not cyclic: fine
    assert tr.load(tmp_path / "ok.npz") == {"a": [1, 2], "b": [1, 2]}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


# ---- damaged, truncated and foreign files ----


def _checkpoint(tmp_path):
    path = tmp_path / "good.npz"
    tr.save({"model": {"w": np.arange(1000, dtype=np.float64), "b": np.ones(3)}}, path)
    return path


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load: no such file: .*nope.npz"):
        tr.load(tmp_path / "nope.npz")
    with pytest.raises(IsADirectoryError, match=r"load: .* is a folder, not a checkpoint file"):
        tr.load(tmp_path)


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9, -1])
def test_truncated_file(tmp_path, keep):
    path = _checkpoint(tmp_path)
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) - 1)
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match=r"load: .*truncated.npz"):
        tr.load(bad)


def test_corrupted_array_names_the_entry_and_key(tmp_path):
    path = _checkpoint(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a0.npy")
    start = info.header_offset + 30 + len(info.filename) + 200  # inside a0's float data
    data[start : start + 8] = b"\xff" * 8
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError,
        match=r"load: .*flipped.npz: entry 'a0' \(the array for "
        r"obj\['model'\]\['w'\]\) is damaged",
    ):
        tr.load(bad)


def _write_header(path, header):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    np.savez(path, __tinyrnn__=np.frombuffer(raw, dtype=np.uint8))


def _header(nodes, version=1):
    return {"format": "tinyrnn-checkpoint", "version": version, "nodes": nodes}


def test_corrupted_header(tmp_path):
    path = tmp_path / "h.npz"
    _write_header(path, b"{not json")
    with pytest.raises(CheckpointError, match=r"load: .*h.npz: the header is damaged"):
        tr.load(path)
    _write_header(path, _header([["dict", [["w", 1]]], ["array", "a7"]]))
    with pytest.raises(
        CheckpointError,
        match=r"load: .*h.npz: the array for obj\['w'\] \(entry "
        r"'a7'\) is missing",
    ):
        tr.load(path)
    damaged = [
        ([["dict", "oops"]], r"damaged header at obj \(node 0\)"),
        ([["mystery"]], r"damaged header at obj \(node 0\)"),
        ([["list", [0]]], r"damaged header at obj \(node 0\)"),  # a cycle
        ([["list", [1, 1]], ["v", 1]], r"damaged header at obj \(node 0\)"),  # shared child
        ([["list", [5]]], r"damaged header at obj \(node 0\)"),  # dangling index
        ([["list", []], ["v", 1]], r"damaged header at an unreferenced node \(node 1\)"),
        ([["dict", [["a", 1]]], ["v", [1, 2]]], r"damaged header at obj\['a'\] \(node 1\)"),
        ([["dict", [[["k"], 1]]], ["v", 1]], r"damaged header at obj \(node 0\)"),
        ([], r"damaged header \(no object table\)"),
    ]
    for nodes, message in damaged:
        _write_header(path, _header(nodes))
        with pytest.raises(CheckpointError, match=r"load: .*h.npz: " + message):
            tr.load(path)
    _write_header(path, _header([["v", None]], version=99))
    with pytest.raises(CheckpointError, match=r"checkpoint format version 99 is not supported"):
        tr.load(path)
    _write_header(path, b'{"format": "other"}')
    with pytest.raises(CheckpointError, match=r"the header is not a tinyrnn checkpoint header"):
        tr.load(path)


def test_extra_entries_are_refused(tmp_path):
    path = _checkpoint(tmp_path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("a9.npy", b"junk")
    with pytest.raises(CheckpointError, match=r"entries \['a9'\] are not described by the header"):
        tr.load(path)


def test_foreign_files(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello, not a checkpoint")
    with pytest.raises(
        CheckpointError,
        match=r"load: .*notes.txt is not a tinyrnn checkpoint "
        r"\(not a readable .npz archive",
    ):
        tr.load(txt)
    npy = tmp_path / "arr.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(
        CheckpointError,
        match=r"load: .*arr.npy is a single NumPy array \(.npy\), "
        r"not a tinyrnn checkpoint",
    ):
        tr.load(npy)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(
        CheckpointError,
        match=r"load: .*plain.npz is a NumPy archive but not a "
        r"tinyrnn checkpoint \(it has no '__tinyrnn__' entry\)",
    ):
        tr.load(plain)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match=r"pickled.npy is not a tinyrnn checkpoint"):
        tr.load(pickled)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.npz is not a tinyrnn checkpoint"):
        tr.load(empty)
    assert issubclass(CheckpointError, ValueError)


def test_mismatched_checkpoint_leaves_model_untouched(tmp_path):
    path = tmp_path / "other.npz"
    tr.save(nn.Linear(5, 2).state_dict(), path)
    model = nn.Linear(3, 2)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(
        RuntimeError,
        match=r"weight: shape \(2, 5\) in the state dict, \(2, 3\) "
        r"in the model",
    ):
        model.load_state_dict(tr.load(path))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_deeply_nested_structure_has_no_recursion_limit(tmp_path):
    obj: list = []
    node = obj
    for _ in range(5000):
        child: list = []
        node.append(child)
        node = child
    node.append(np.ones(1))
    path = tmp_path / "deep.npz"
    tr.save(obj, path)
    back = tr.load(path)
    for _ in range(5000):
        back = back[0]
    np.testing.assert_array_equal(back[0], np.ones(1))


def test_saved_file_gets_the_usual_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "ckpt.npz"
    mask = os.umask(0o022)
    try:
        tr.save({"a": np.ones(2)}, path)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
