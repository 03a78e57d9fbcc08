"""Checkpoints: weights as safetensors, everything else as JSON. Never pickle.

A model directory has Hugging Face's file names::

    model.safetensors   the weights, {dotted name: array}
    config.json         the model's configuration

A training checkpoint adds what resuming needs, so that load-then-train continues exactly as if
training had never stopped::

    optimizer.safetensors   the optimizer's arrays (Adam's moments, momentum buffers)
    trainer_state.json      step, epoch, history, the optimizer's hyperparameters and counters,
                            the scheduler, the random generators' states, and the sha256 of
                            both safetensors files

Three guarantees:

- **Atomic writes.** Each file is written to a temporary file in the same directory, flushed,
  fsynced, then renamed over the old one with ``os.replace`` (atomic on POSIX), and the
  directory is fsynced so the rename itself survives a power cut. A crash leaves either the old
  file or the new one, never half of one. ``trainer_state.json`` is written last: it is the
  commit record of a training checkpoint, and it names the exact weight files it belongs to.
- **Refusing bad files.** safetensors checks that the header parses and that the tensors cover
  the file exactly, which catches any truncation. Every safetensors file minigrad writes also
  records the sha256 of its data in its header (``__metadata__``), which catches corrupted
  bytes. Loading compares names, shapes and dtypes with the model, and every error names the
  file and the tensor or key that is wrong.
- **Exact resume.** The optimizer's state, the scheduler's, minigrad's generator (dropout,
  ``randn``) and NumPy's global generator are restored with the weights. (CuPy's generator,
  used for dropout on a GPU, is not saved: a GPU resume is not bit-exact.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

import minigrad
from minigrad import backend

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupted or does not fit what loads it."""


# --- atomic writes ----------------------------------------------------------------------------

def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (POSIX; Windows cannot open a directory)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new, never a mix.

    temp file in the same directory -> write -> flush -> fsync -> os.replace -> fsync directory.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _json_default(value: Any) -> Any:
    """NumPy scalars become Python numbers; anything else JSON cannot hold is refused."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically. Floats round-trip exactly (repr)."""
    try:
        text = json.dumps(obj, indent=2, default=_json_default)
    except TypeError as exc:
        raise TypeError(f"cannot write {Path(path).name}: {exc}") from exc
    atomic_write_bytes(path, (text + "\n").encode())


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON (truncated or corrupted?): {exc}") \
            from exc


# --- safetensors files with a checksum --------------------------------------------------------

def _data_section(blob: bytes) -> bytes:
    """The tensor bytes of a safetensors file: after the 8-byte header length and the header."""
    header_len = int.from_bytes(blob[:8], "little")
    return blob[8 + header_len:]


def _header(blob: bytes) -> dict:
    header_len = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + header_len])


def save_safetensors(path: str | Path, tensors: dict[str, Any]) -> str:
    """Write ``{name: array}`` (NumPy or CuPy) to a safetensors file atomically.

    The header's metadata holds ``format: "pt"`` (so Hugging Face's loaders accept the file; the
    layout is the same for every framework) and the sha256 of the data section, which
    :func:`load_safetensors` checks. Returns the sha256 of the whole file.
    """
    arrays = {name: np.ascontiguousarray(backend.to_device(a, "cpu"))
              for name, a in tensors.items()}
    # The data section does not depend on the metadata, so hash it from a first serialization.
    data_sha = hashlib.sha256(_data_section(safetensors.numpy.save(arrays))).hexdigest()
    blob = safetensors.numpy.save(arrays, metadata={"format": "pt", "sha256": data_sha})
    atomic_write_bytes(path, blob)
    return hashlib.sha256(blob).hexdigest()


def load_safetensors(path: str | Path, expected_sha256: str | None = None,
                     ) -> dict[str, np.ndarray]:
    """Read a safetensors file into ``{name: numpy array}``, refusing a damaged one.

    Refused: a missing file; one that safetensors cannot parse or whose tensors do not cover it
    exactly (truncated, or bytes appended); one whose data does not match the sha256 in its
    header; one whose bytes do not match ``expected_sha256`` (the whole file's hash, recorded
    elsewhere, e.g. in ``trainer_state.json``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    blob = path.read_bytes()
    try:
        tensors = safetensors.numpy.load(blob)
    except safetensors.SafetensorError as exc:
        raise CheckpointError(f"{path} is not a complete safetensors file ({len(blob)} bytes; "
                              f"truncated or corrupted?): {exc}") from exc
    recorded = _header(blob).get("__metadata__", {}).get("sha256")
    if recorded is not None and hashlib.sha256(_data_section(blob)).hexdigest() != recorded:
        raise CheckpointError(f"{path} is corrupted: its tensor data does not match the sha256 "
                              f"recorded in its header ({recorded[:12]}...)")
    if expected_sha256 is not None and hashlib.sha256(blob).hexdigest() != expected_sha256:
        raise CheckpointError(f"{path} is not the file this checkpoint recorded (sha256 "
                              f"{expected_sha256[:12]}...): it was replaced or half-saved")
    return tensors


# --- model: weights and config ----------------------------------------------------------------

def save_model(directory: str | Path, model: Any, config: Any = None) -> None:
    """Save ``model.state_dict()`` as ``model.safetensors`` and ``config`` as ``config.json``.

    ``config`` is a dict or a dataclass (such as a model's config); None writes no config.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_safetensors(directory / MODEL_FILE, model.state_dict())
    if config is not None:
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            config = dataclasses.asdict(config)
        atomic_write_json(directory / CONFIG_FILE, config)


def load_config(directory: str | Path) -> dict:
    """The dict that :func:`save_model` wrote as ``config.json``."""
    return _read_json(Path(directory) / CONFIG_FILE)


def _load_into_model(path: Path, model: Any, strict: bool,
                     expected_sha256: str | None = None) -> Any:
    tensors = load_safetensors(path, expected_sha256)
    try:
        return model.load_state_dict(tensors, strict=strict)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: {exc}") from exc


def load_weights(directory: str | Path, model: Any, strict: bool = True) -> Any:
    """Load ``model.safetensors`` from ``directory`` into ``model``, in place.

    A reshaped tensor (or a dtype that differs) is always refused; with ``strict`` so is any
    missing or unexpected name, which is how a renamed tensor shows. The error names the file
    and the tensors. Returns what ``model.load_state_dict`` returns (missing and unexpected
    keys).
    """
    return _load_into_model(Path(directory) / MODEL_FILE, model, strict)


# --- training state ---------------------------------------------------------------------------

@dataclasses.dataclass
class TrainingState:
    """What :func:`load_training_state` gives back besides the restored objects."""

    step: int
    epoch: int
    history: Any
    extra: dict


def _split_optimizer_state(state_dict: dict) -> tuple[dict[str, Any], dict]:
    """Optimizer state_dict -> ({"state.<index>.<key>": array}, everything else as JSON).

    Arrays (moments, momentum buffers) go to safetensors; counts (Adam's step), the
    hyperparameters and the group layout go to JSON.
    """
    arrays, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        scalars[str(index)] = {}
        for key, value in entry.items():
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                arrays[f"state.{index}.{key}"] = value
            else:
                scalars[str(index)][key] = value
    return arrays, {"state": scalars, "param_groups": state_dict["param_groups"]}


def _join_optimizer_state(arrays: dict[str, np.ndarray], saved: dict) -> dict:
    state: dict[int, dict[str, Any]] = {int(i): dict(entry) for i, entry in saved["state"].items()}
    for name, array in arrays.items():
        _, index, key = name.split(".", 2)
        if int(index) not in state:
            raise CheckpointError(f"{OPTIMIZER_FILE} holds tensor {name!r} for parameter "
                                  f"{index}, which {TRAINER_STATE_FILE} does not list")
        state[int(index)][key] = array
    return {"state": state, "param_groups": saved["param_groups"]}


def _rng_states() -> dict:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {"minigrad": minigrad.get_rng_state(), "numpy": numpy_state}


def _set_rng_states(states: dict) -> None:
    minigrad.set_rng_state(states["minigrad"])
    numpy_state = states["numpy"]
    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)


def save_training_state(directory: str | Path, model: Any, optimizer: Any, scheduler: Any = None,
                        *, step: int, epoch: int, history: Any = None,
                        extra: dict | None = None) -> None:
    """Save everything needed to resume training exactly.

    ``history`` and ``extra`` must be JSON-serializable (dicts, lists, numbers, strings).
    ``step`` counts optimizer steps taken and ``epoch`` the epochs completed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_arrays, optimizer_json = _split_optimizer_state(optimizer.state_dict())
    files = {
        MODEL_FILE: save_safetensors(directory / MODEL_FILE, model.state_dict()),
        OPTIMIZER_FILE: save_safetensors(directory / OPTIMIZER_FILE, optimizer_arrays),
    }
    state = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "epoch": epoch,
        "files": {name: {"sha256": sha} for name, sha in files.items()},
        "optimizer": {"class": type(optimizer).__name__, **optimizer_json},
        "scheduler": None if scheduler is None else {"class": type(scheduler).__name__,
                                                     "state": scheduler.state_dict()},
        "rng": _rng_states(),
        "history": history,
        "extra": extra or {},
    }
    atomic_write_json(directory / TRAINER_STATE_FILE, state)  # last: the commit record


def load_training_state(directory: str | Path, model: Any, optimizer: Any, scheduler: Any = None,
                        *, restore_rng: bool = True) -> TrainingState:
    """Restore a :func:`save_training_state` checkpoint into fresh objects, in place.

    ``model``, ``optimizer`` and ``scheduler`` must be built as they were when saved (same
    parameters, same kinds); the random generators are reset to their saved states unless
    ``restore_rng`` is False. Both safetensors files are checked (complete, uncorrupted, the
    ones ``trainer_state.json`` recorded) before anything is changed.
    """
    directory = Path(directory)
    state = _read_json(directory / TRAINER_STATE_FILE)
    where = directory / TRAINER_STATE_FILE
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{where}: format_version {state.get('format_version')!r}, "
                              f"expected {FORMAT_VERSION}")
    for kind, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        saved = state[kind]
        saved_class = None if saved is None else saved["class"]
        own_class = None if obj is None else type(obj).__name__
        if saved_class != own_class:
            raise CheckpointError(f"{where} holds a {kind} of class {saved_class}, but "
                                  f"{own_class} was given to load it into")

    optimizer_arrays = load_safetensors(directory / OPTIMIZER_FILE,
                                        state["files"][OPTIMIZER_FILE]["sha256"])
    optimizer_state = _join_optimizer_state(optimizer_arrays, state["optimizer"])
    _load_into_model(directory / MODEL_FILE, model, strict=True,
                     expected_sha256=state["files"][MODEL_FILE]["sha256"])
    try:
        optimizer.load_state_dict(optimizer_state)
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"]["state"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{directory}: the saved optimizer or scheduler state does not "
                              f"fit: {exc}") from exc
    if restore_rng:
        _set_rng_states(state["rng"])
    return TrainingState(step=state["step"], epoch=state["epoch"], history=state["history"],
                         extra=state["extra"])
