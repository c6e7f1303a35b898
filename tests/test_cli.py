"""The ``tinyrnn`` command: every subcommand runs (quick settings) and every user error gives
one line on stderr naming the problem, exit status 2, and no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import cli
from tinyrnn.charmodel import CHECKPOINT_KIND, Trainer, load_checkpoint
from tinyrnn.data import load_text

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--steps", "6", "--hidden", "16", "--seq-len", "16", "--batch-size", "4", "--every", "3"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(result: tuple[int, str, str], *needles: str) -> None:
    status, _, err = result
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text(load_text("sonnets")[:4000], encoding="utf-8")
    return path


@pytest.fixture
def trained(tmp_path, text_file, capsys):
    """A tiny checkpoint made by `tinyrnn train` (6 steps)."""
    out = tmp_path / "model"
    status, _, err = run(capsys, "train", text_file, "--out", out, *TINY)
    assert status == 0, err
    return out / "checkpoint.npz"


# ---- help and option errors ----


@pytest.mark.parametrize("command", ["demo", "seed-example", "train", "sample", "render"])
def test_every_subcommand_has_help(capsys, command):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: tinyrnn {command}")


def test_no_arguments_prints_the_overview(capsys):
    status, out, _ = run(capsys)
    assert status == 0
    for command in ("demo", "seed-example", "train", "sample", "render"):
        assert command in out


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"tinyrnn {tr.__version__}"


@pytest.mark.parametrize(
    "argv, needles",
    [
        (
            ["demo", "--cell", "transformer"],
            ["tinyrnn demo: error: argument --cell", "'transformer'"],
        ),
        (["demo", "--steps", "0"], ["tinyrnn demo:", "--steps", "positive integer", "'0'"]),
        (["demo", "--steps", "many"], ["--steps", "positive integer", "'many'"]),
        (["demo", "--hidden", "-4"], ["--hidden", "positive integer"]),
        (["demo", "--seed", "-1"], ["--seed", "integer >= 0"]),
        (["demo", "--bogus"], ["tinyrnn demo: error: unrecognized arguments: --bogus"]),
        (["dance"], ["tinyrnn: error:", "invalid choice: 'dance'"]),
        (["train"], ["tinyrnn train: error:", "required: TEXT_FILE"]),
        (["sample", "x.npz", "--temperature", "0"], ["--temperature", "positive number"]),
        (["sample", "x.npz", "--temperature", "nan"], ["--temperature", "positive number"]),
        (["sample", "x.npz", "--length", "0"], ["--length", "positive integer"]),
        (["render", "x.npz", "--steps", "0"], ["tinyrnn render:", "positive integer"]),
    ],
)
def test_bad_options_give_one_line_and_status_2(capsys, argv, needles):
    assert_user_error(run(capsys, *argv), *needles)


# ---- train: bad text files ----


def test_train_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.txt"
    assert_user_error(run(capsys, "train", missing), "no such file", "nope.txt")


def test_train_directory(capsys, tmp_path):
    assert_user_error(run(capsys, "train", tmp_path), "is a directory")


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "is empty"),
        (b"  \n\n\t ", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "binary file (it contains NUL bytes)"),
        (b"caf\xe9 au lait " * 20, "is not UTF-8 text"),
        (b"short", "has only 5 characters; need at least 65"),
        (b"a" * 200, "only one distinct character"),
    ],
)
def test_train_unusable_text(capsys, tmp_path, content, needle):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    assert_user_error(run(capsys, "train", path, "--out", tmp_path / "o"), needle, "bad.txt")


def test_train_output_folder_is_a_file(capsys, tmp_path, text_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(run(capsys, "train", text_file, "--out", blocker), "not a folder")


# ---- train: checkpoints, resume, interrupt ----


def test_train_writes_a_checkpoint_that_resumes_exactly(capsys, tmp_path, text_file):
    # 6 steps, then resumed to 9, equals 9 steps in one run: same batches, same Adam state.
    a, b = tmp_path / "a", tmp_path / "b"
    status, out, _ = run(capsys, "train", text_file, "--out", a, *TINY)
    assert status == 0 and "held-out" in out
    first = tr.load(a / "checkpoint.npz")
    assert first["kind"] == CHECKPOINT_KIND and first["progress"]["step"] == 6
    status, out, _ = run(capsys, "train", text_file, "--out", a, "--resume", "--steps", "9")
    assert status == 0 and "Resuming from step 6" in out
    tiny9 = [v if v != "6" else "9" for v in TINY]
    assert run(capsys, "train", text_file, "--out", b, *tiny9)[0] == 0
    resumed, straight = tr.load(a / "checkpoint.npz"), tr.load(b / "checkpoint.npz")
    assert resumed["progress"]["step"] == straight["progress"]["step"] == 9
    assert np.allclose(resumed["progress"]["losses"], straight["progress"]["losses"], rtol=1e-5)
    for key, value in straight["model"].items():
        np.testing.assert_allclose(resumed["model"][key], value, rtol=1e-5, atol=1e-6)


def test_train_refuses_to_overwrite_without_resume(capsys, trained, text_file):
    result = run(capsys, "train", text_file, "--out", trained.parent, *TINY)
    assert_user_error(result, "exists; pass --resume")


def test_train_resume_without_checkpoint(capsys, tmp_path, text_file):
    result = run(capsys, "train", text_file, "--out", tmp_path / "empty", "--resume")
    assert_user_error(result, "--resume: no checkpoint at")


def test_train_resume_with_other_cell(capsys, trained, text_file):
    result = run(capsys, "train", text_file, "--out", trained.parent, "--resume", "--cell", "gru")
    assert_user_error(result, "--cell gru does not match the checkpoint's lstm")


def test_train_resume_on_text_with_new_characters(capsys, trained, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("Zebras & jaguars {quietly} vexed 1234567890 wizards. " * 4)
    result = run(capsys, "train", other, "--out", trained.parent, "--resume")
    assert_user_error(result, "characters the checkpoint's model does not know")


def test_train_resume_when_already_done(capsys, trained, text_file):
    result = run(capsys, "train", text_file, "--out", trained.parent, "--resume", "--steps", "6")
    assert_user_error(result, "--steps 6", "already done 6 steps")


def test_ctrl_c_during_train_saves_a_resumable_checkpoint(capsys, tmp_path, text_file, monkeypatch):
    # The SIGINT arrives in the middle of step 4; the step completes, then training stops.
    real_step = Trainer.train_step

    def step_with_interrupt(self):
        if self.state.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_with_interrupt)
    out = tmp_path / "m"
    status, _, err = run(capsys, "train", text_file, "--out", out, *TINY[:-2], "--every", "100")
    assert status == 130
    assert "interrupted at step 4; checkpoint saved" in err and "--resume" in err
    assert tr.load(out / "checkpoint.npz")["progress"]["step"] == 4
    monkeypatch.setattr(Trainer, "train_step", real_step)
    status, _, err = run(capsys, "train", text_file, "--out", out, "--resume", "--steps", "6")
    assert status == 0, err
    assert tr.load(out / "checkpoint.npz")["progress"]["step"] == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.mark.slow
def test_ctrl_c_on_a_real_process(tmp_path, text_file):
    out = tmp_path / "m"
    cmd = [sys.executable, "-m", "tinyrnn", "train", str(text_file), "--out", str(out)]
    cmd += ["--steps", "100000", "--hidden", "16", "--seq-len", "16", "--batch-size", "4"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    assert line.startswith("Training a character-level LSTM"), line
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err
    step = tr.load(out / "checkpoint.npz")["progress"]["step"]
    assert step >= 1
    model, _ = load_checkpoint(out)
    assert model.cell == "lstm" and model.hidden_size == 16


# ---- sample ----


def test_sample_from_checkpoint(capsys, trained):
    status, out, _ = run(
        capsys, "sample", trained, "--length", "40", "--prime", "Thy", "--seed", "3"
    )
    assert status == 0
    assert out.startswith("Thy") and len(out) == 3 + 40 + 1
    model, _ = load_checkpoint(trained)
    assert set(out[:-1]) <= set(model.vocab)
    again = run(capsys, "sample", trained.parent, "--length", "40", "--prime", "Thy", "--seed", "3")
    assert again[1] == out  # a folder holding checkpoint.npz works too; seeded: same text


def test_sample_missing_checkpoint(capsys, tmp_path):
    assert_user_error(run(capsys, "sample", tmp_path / "none.npz"), "no such checkpoint")


def test_sample_unreadable_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("this is not an npz archive")
    assert_user_error(run(capsys, "sample", bad), "cannot read checkpoint", "bad.npz")


def test_sample_checkpoint_of_another_model(capsys, tmp_path):
    other = tmp_path / "linear.npz"
    tr.save(tr.nn.Linear(3, 2).state_dict(), other)
    result = run(capsys, "sample", other)
    assert_user_error(result, "linear.npz", "is not a tinyrnn character-model checkpoint")


def test_sample_checkpoint_with_mismatched_weights(capsys, trained, tmp_path):
    ckpt = tr.load(trained)
    ckpt["config"]["hidden_size"] = 32  # the weights are for 16 units
    broken = tmp_path / "broken.npz"
    tr.save(ckpt, broken)
    assert_user_error(run(capsys, "sample", broken), "does not match a character model")


def test_sample_prime_outside_vocabulary(capsys, trained):
    result = run(capsys, "sample", trained, "--prime", "~~")
    assert_user_error(result, "--prime", "'~'", "not in the model's vocabulary")


def test_sample_empty_prime(capsys, trained):
    assert_user_error(run(capsys, "sample", trained, "--prime", ""), "--prime")


# ---- render ----


def test_render_unrolled_and_rolled(capsys, trained, tmp_path):
    status, out, _ = run(capsys, "render", trained, "--steps", "4", "--out", tmp_path / "u.dot")
    assert status == 0 and "u.dot" in out
    unrolled = (tmp_path / "u.dot").read_text()
    assert unrolled.count("subgraph cluster_lstm_l0_t") == 4
    status, _, _ = run(
        capsys, "render", trained, "--steps", "4", "--rolled", "--out", tmp_path / "r.dot"
    )
    rolled = (tmp_path / "r.dot").read_text()
    assert status == 0 and "×4" in rolled and "cluster_lstm_l0_t" not in rolled
    status, _, _ = run(
        capsys, "render", trained, "--steps", "2", "--gates", "--out", tmp_path / "g.dot"
    )
    gates = (tmp_path / "g.dot").read_text()
    assert status == 0 and "Sigmoid" in gates and "Sigmoid" not in unrolled


def test_render_default_path_is_svg_next_to_checkpoint(capsys, trained):
    status, out, _ = run(capsys, "render", trained, "--steps", "2")
    assert status == 0
    written = Path(out.strip().split(" to ")[-1])
    assert written.parent == trained.parent and written.name.startswith("checkpoint-unrolled-2")
    assert written.exists() and written.stat().st_size > 0


def test_render_bad_format_and_too_many_steps(capsys, trained, tmp_path):
    result = run(capsys, "render", trained, "--out", tmp_path / "g.jpg")
    assert_user_error(result, "unsupported picture format '.jpg'")
    assert_user_error(run(capsys, "render", trained, "--steps", "5000"), "at most 200 steps")


def test_render_checkpoint_of_another_model(capsys, tmp_path):
    other = tmp_path / "other.npz"
    tr.save({"weights": np.zeros(3)}, other)
    assert_user_error(run(capsys, "render", other), "not a tinyrnn character-model checkpoint")


# ---- seed-example and demo ----


def test_seed_example_prints_the_corrected_computation(capsys, tmp_path):
    status, out, _ = run(capsys, "seed-example", "--out", tmp_path)
    assert status == 0
    assert "h1 = tanh(...) = (0.5370, 0.4621)" in out
    assert "= (0.2386, 0.6457)" in out and "(0.1854, 0.7552): an arithmetic slip" in out
    assert "h2 = tanh(...) = (0.4919, 0.9283)" in out
    assert "dL/dW_h = dpre2 x2^T + dpre1 x1^T = [0.1130 0.7580; 0.3146 0.1383]" in out
    assert "equal the hand-derived ones: yes" in out
    for name in ("seed_neurons", "seed_unrolled"):
        files = list(tmp_path.glob(f"{name}.*"))
        assert files and files[0].stat().st_size > 1000


def test_demo_quick_learns_and_draws(capsys, tmp_path):
    status, out, _ = run(capsys, "demo", "--quick", "--out", tmp_path)
    assert status == 0
    losses = tr.load(tmp_path / "checkpoint.npz")["progress"]["losses"]
    # from about ln(62) = 4.13 (uniform guessing) to well below it
    assert losses[0] > 3.9
    assert np.mean(losses[-10:]) < 0.7 * losses[0]
    for temperature in cli.TEMPERATURES:
        assert f"--- temperature {temperature} ---" in out
    for name in ("unrolled", "rolled"):
        picture = next(tmp_path.glob(f"{name}.*"))
        assert picture.stat().st_size > 1000
    if shutil.which("graphviz-pure") or shutil.which("dot"):
        assert "cluster" in (tmp_path / "unrolled.svg").read_text()
    if (tmp_path / "loss.png").exists():
        assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    else:
        assert "no loss plot" in out
    assert str(tmp_path) in out


def test_ctrl_c_during_demo_stops_training_and_shows_results(capsys, tmp_path, monkeypatch):
    real_step = Trainer.train_step

    def step_with_interrupt(self):
        if self.state.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_with_interrupt)
    status, out, _ = run(capsys, "demo", "--quick", "--out", tmp_path)
    assert status == 0
    assert "Stopped at step 4 (Ctrl-C)" in out and "--- temperature 1.0 ---" in out
    assert tr.load(tmp_path / "checkpoint.npz")["progress"]["step"] == 4


def test_python_dash_m_and_console_script(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinyrnn", "sample", str(tmp_path / "missing.npz")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tinyrnn sample: error: no such checkpoint: '{tmp_path / 'missing.npz'}'"
    )
    script = shutil.which("tinyrnn", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("the tinyrnn console script is not installed in this environment")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "seed-example" in result.stdout
