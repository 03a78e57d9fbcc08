"""Checkpoints: weights as safetensors, everything else as JSON. Never pickle.

A model directory has Hugging Face's file names, and :func:`save_pretrained` is its one
writer::

    model.safetensors       the weights, {dotted name: array}; a tied tensor once, under its
                            first name (as Hugging Face saves it)
    config.json             the model's configuration
    vocab.txt               the tokenizer's files (whatever its save_pretrained writes),
    tokenizer_config.json   with the caller's overrides (e.g. model_max_length)
    history.json, ...       the caller's extra files (JSON, text or bytes)
    minigrad_manifest.json  written last: format_version and, for every file above in the order
                            written, its name, size and sha256

Beside it, in the same parent, live only a writer's own files::

    .<name>.lock            the run's lock (flock), holding the writer's pid
    .<name>.staging-<pid>   the next version of the directory, being written
    .<name>.old-<pid>       the previous version, set aside during the swap
    .<name>.probe-<pid>.tmp check_writable's probe (inside: .minigrad-probe-<pid>.tmp)

How a directory is written, so that a crash at any instant (SIGKILL, power cut) leaves the old
version whole, the new version whole, or no directory at all (refused), never a mix:

1. **A lock per output directory.** A run enters :class:`OutputLock` at its start and leaves it
   at its end; ``save_pretrained`` takes it too (or finds this process already holds it). It is
   an exclusive ``flock`` on ``.<name>.lock``, refused at once (never waited on) while another
   process holds it, naming that process's pid. The kernel drops a flock when its process dies,
   so a killed run never blocks the next one (flock is advisory, and over NFS it may not hold
   between machines). Taking the lock first checks that the directory
   can be written (:func:`check_writable`) and refuses to replace anything that is not a model
   directory (a file, a symbolic link, a directory that holds files but neither
   ``config.json`` nor a manifest); then it removes what killed writers left behind (staging
   and set-aside directories, probes, and ``.*.tmp`` files inside the directory and its
   subdirectories). Readers never remove anything.
2. **Staging.** Every file is written into ``.<name>.staging-<pid>`` and fsynced, the manifest
   last, then the staging directory itself is fsynced.
3. **The swap.** Where Linux's ``renameat2(RENAME_EXCHANGE)`` works, the staging directory and
   the old one trade names in one atomic step (the staging name then holds the old version).
   Elsewhere two renames do it: the old directory to ``.<name>.old-<pid>``, then the staging
   directory to the target; a crash between the two leaves no target (a reader refuses it; the
   next writer removes both leftovers). The parent is fsynced, then the old version is removed.
   The directory is replaced whole: a file put into it by other means (say, during training)
   is gone after a save unless it was given as an extra file.

Loading checks before it reads (:func:`verify_manifest`): every file the manifest lists exists
with its recorded size and sha256, so a file cut short or edited after saving is refused, named.
A directory without a manifest (a Hugging Face checkpoint, such as the shipped MiniLM) is taken
as it is; one whose manifest is cut short or not JSON is refused. :func:`check_vocab_size`
refuses a ``vocab.txt`` whose size differs from ``config.json``'s ``vocab_size``.

A training checkpoint (``checkpoint-<step>/`` of a run) adds what resuming needs, so that
load-then-train continues exactly as if training had never stopped::

    model.safetensors       the weights
    optimizer.safetensors   the optimizer's arrays (Adam's moments, momentum buffers)
    trainer_state.json      step, epoch, history, the optimizer's hyperparameters and counters,
                            the scheduler, the random generators' states, and the sha256 of
                            both safetensors files

These files are written one by one, each atomically:

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
import ctypes
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

import minigrad
from minigrad import backend, dtypes

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
MANIFEST_FILE = "minigrad_manifest.json"
FORMAT_VERSION = 1  # of trainer_state.json
MANIFEST_FORMAT_VERSION = 1
RUN_CHECKPOINTS = "checkpoints"  # <out>/checkpoints/checkpoint-<step>/: a run's resume state


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


def _json_bytes(obj: Any, name: str) -> bytes:
    """``obj`` as indented JSON text; ``name`` is the file it is for, named in the error."""
    try:
        text = json.dumps(obj, indent=2, default=_json_default)
    except TypeError as exc:
        raise TypeError(f"cannot write {name}: {exc}") from exc
    return (text + "\n").encode()


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically. Floats round-trip exactly (repr)."""
    atomic_write_bytes(path, _json_bytes(obj, Path(path).name))


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


def _safetensors_blob(tensors: dict[str, Any]) -> bytes:
    """``{name: array}`` (NumPy or CuPy) as the bytes of a safetensors file.

    The header's metadata holds ``format: "pt"`` (so Hugging Face's loaders accept the file; the
    layout is the same for every framework) and the sha256 of the data section, which
    :func:`load_safetensors` checks.
    """
    arrays = {name: np.ascontiguousarray(backend.to_device(a, "cpu"))
              for name, a in tensors.items()}
    # The data section does not depend on the metadata, so hash it from a first serialization.
    data_sha = hashlib.sha256(_data_section(safetensors.numpy.save(arrays))).hexdigest()
    return safetensors.numpy.save(arrays, metadata={"format": "pt", "sha256": data_sha})


def save_safetensors(path: str | Path, tensors: dict[str, Any]) -> str:
    """Write ``{name: array}`` (NumPy or CuPy) to a safetensors file atomically, with the
    sha256 of its data in its header. Returns the sha256 of the whole file."""
    blob = _safetensors_blob(tensors)
    atomic_write_bytes(path, blob)
    return hashlib.sha256(blob).hexdigest()


# safetensors' dtype names -> NumPy; BF16 is ml_dtypes' bfloat16 (safetensors.numpy has no BF16)
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
                       "U64": np.uint64, "I32": np.int32, "U32": np.uint32, "I16": np.int16,
                       "U16": np.uint16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _arrays(views: list, path: Path) -> dict[str, np.ndarray]:
    """``{name: array}`` from ``safetensors.deserialize``'s (name, {dtype, shape, data}) list;
    a BF16 tensor becomes a bfloat16 array with the file's bits."""
    arrays = {}
    for name, view in views:
        code = view["dtype"]
        if code == "BF16":
            if dtypes.bfloat16 is None:
                raise CheckpointError(f"{path}: tensor {name!r} is BF16, and reading bfloat16 "
                                      "needs the ml_dtypes package: pip install ml_dtypes")
            dtype = dtypes.bfloat16
        elif code in _SAFETENSORS_DTYPES:
            dtype = np.dtype(_SAFETENSORS_DTYPES[code])
        else:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {code}, which minigrad "
                                  f"does not read (expected one of BF16, "
                                  f"{', '.join(_SAFETENSORS_DTYPES)})")
        arrays[name] = np.frombuffer(view["data"], dtype=dtype).reshape(view["shape"])
    return arrays


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
        tensors = _arrays(safetensors.deserialize(blob), path)
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

def load_config(directory: str | Path, name: str = CONFIG_FILE) -> dict:
    """The dict of a model directory's ``config.json`` (or of its JSON file ``name``)."""
    return _read_json(Path(directory) / name)


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


# --- a model directory: the one writer ---------------------------------------------------------

def _absolute(directory: str | Path) -> Path:
    """The directory as an absolute, normalized path (so that ``.`` has a name and a parent)."""
    return Path(os.path.abspath(directory))


def _beside(target: Path, kind: str) -> Path:
    """This process's ``.<name>.<kind>-<pid>`` next to ``target``: a writer's own file."""
    return target.parent / f".{target.name}.{kind}-{os.getpid()}"


LEFTOVER_KINDS = ("staging", "old", "probe")  # what _beside names; a killed writer leaves them


def _unwritable(what: str, exc: OSError) -> CheckpointError:
    return CheckpointError(f"{what}: {exc.strerror or exc}; choose a writable output directory")


def check_writable(directory: str | Path) -> None:
    """Prove, before any training, that ``directory`` can be written: create its parent if
    needed, then create, fsync and remove a file there (and in ``directory`` if it exists).

    Raises:
        CheckpointError: one line naming the directory and the OS error (a read-only
            filesystem, a missing permission, a full disk).
    """
    target = _absolute(directory)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(f"cannot create {target.parent}", exc) from None
    probes = [target.parent / f"{_beside(target, 'probe').name}.tmp"]
    if target.is_dir():
        probes.append(target / f".minigrad-probe-{os.getpid()}.tmp")
    for probe in probes:
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"minigrad")
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):  # a lock holder cleaned up first
                os.unlink(probe)
        except OSError as exc:
            raise _unwritable(f"cannot write in {probe.parent}", exc) from None


def _lock(path: Path, target: Path) -> int:
    """An exclusive flock on ``path`` (created if need be) holding this pid; the file's
    descriptor. Refused at once, naming the holder's pid, while another process holds it."""
    import fcntl  # POSIX only (Linux, macOS)

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointError(f"{target} is being written by another run (pid {holder}, "
                                  f"which holds {path}): wait for it to end or choose another "
                                  "output directory") from None
        # A holder removes the file when it lets go: if it did so between our open and our
        # flock, we hold a lock on a file no one else will open. Lock the file at the path.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _check_replaceable(target: Path) -> None:
    """Refuse a target that saving must not replace as a whole: anything but an absent path,
    an empty directory or a model directory (one that holds config.json or a manifest)."""
    if target.is_symlink():
        raise CheckpointError(f"{target} is a symbolic link; give the directory it points to")
    if not target.exists():
        return
    if not target.is_dir():
        raise CheckpointError(f"{target} exists and is not a directory")
    # a killed writer's temporary files (.<file>.<random>.tmp, probes) do not count, nor the
    # resume checkpoints of a run into this directory that was killed before its first save
    names = [n for n in os.listdir(target) if not (n.startswith(".") and n.endswith(".tmp"))
             and n != RUN_CHECKPOINTS]
    if names and CONFIG_FILE not in names and MANIFEST_FILE not in names:
        raise CheckpointError(f"{target} holds files but no model ({CONFIG_FILE} or "
                              f"{MANIFEST_FILE}); saving replaces the whole directory, so "
                              "choose a new or empty one, or one that holds an earlier model")


def _remove_leftovers(target: Path) -> None:
    """Remove what killed writers of ``target`` left: their staging, set-aside and probe
    files beside it, and the ``.*.tmp`` files of atomic writes inside it and its
    subdirectories (``checkpoint-<step>/``). Only a writer that holds the lock calls this."""
    prefixes = tuple(f".{target.name}.{kind}-" for kind in LEFTOVER_KINDS)
    for name in os.listdir(target.parent):
        path = target.parent / name
        if not name.startswith(prefixes):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)  # a probe its prober removed meanwhile
    if target.is_dir():
        for path in [*target.glob(".*.tmp"), *target.glob("*/.*.tmp"),
                     *target.glob("*/*/.*.tmp")]:
            path.unlink(missing_ok=True)


# the locks this process holds: lock file -> (its descriptor, how many times entered)
_held_locks: dict[Path, tuple[int, int]] = {}


class OutputLock:
    """A run's claim on its output directory, held from the run's start to its end::

        with checkpoint.OutputLock(out_dir):
            ...train...
            checkpoint.save_pretrained(model, tokenizer, out_dir, config)

    Entering checks that the directory can be written (:func:`check_writable`), takes an
    exclusive ``flock`` on ``.<name>.lock`` beside it and writes this pid there, refuses a
    target that is not a model directory (saving replaces it whole), and removes the leftovers
    of killed writers. Another process that holds the lock makes entering fail at once with a
    :class:`CheckpointError` naming the directory and that process's pid. Entering again in
    the process that holds it (``save_pretrained`` does) only nests. Leaving removes the lock
    file; a killed holder's flock is released by the kernel, so it never blocks the next run.
    """

    def __init__(self, directory: str | Path):
        self.target = _absolute(directory)
        self.path = self.target.parent / f".{self.target.name}.lock"

    def __enter__(self) -> OutputLock:
        if self.path in _held_locks:
            fd, depth = _held_locks[self.path]
            _held_locks[self.path] = (fd, depth + 1)
            return self
        check_writable(self.target)
        _held_locks[self.path] = (_lock(self.path, self.target), 1)
        try:
            _check_replaceable(self.target)
            _remove_leftovers(self.target)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        fd, depth = _held_locks.pop(self.path)
        if depth > 1:
            _held_locks[self.path] = (fd, depth - 1)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked: see _lock
        os.close(fd)  # releases the flock


def _load_renameat2() -> Any:
    """Linux's ``renameat2`` from the C library, or None (another system, an old glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()
AT_FDCWD, RENAME_EXCHANGE = -100, 2  # from <fcntl.h> and <linux/fs.h>


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names of ``a`` and ``b`` in one atomic step; False where the system or the
    filesystem cannot (then nothing was changed)."""
    if _renameat2 is None:
        return False
    if _renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _swap_in(staging: Path, target: Path) -> None:
    """Put the complete, fsynced ``staging`` directory in the place of ``target``."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        _fsync_directory(target.parent)
        return
    if _exchange(staging, target):
        aside = staging  # now holds the old version
    else:
        aside = _beside(target, "old")
        os.rename(target, aside)
        os.rename(staging, target)  # a crash before this line leaves no target
    _fsync_directory(target.parent)
    shutil.rmtree(aside, ignore_errors=True)  # what remains, the next writer removes


def _write_synced(path: Path, data: bytes) -> dict:
    """Create ``path`` with ``data``, fsynced; its manifest entry."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _sync_written(path: Path) -> dict:
    """fsync a file someone else wrote; its manifest entry."""
    with open(path, "rb") as f:
        data = f.read()
        os.fsync(f.fileno())
    return {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _extra_bytes(name: str, content: bytes | str | dict) -> bytes:
    """An extra file's bytes: a dict as JSON, a str as UTF-8 text, bytes as they are."""
    reserved = (MODEL_FILE, CONFIG_FILE, MANIFEST_FILE)
    if not name or name in (".", "..", *reserved) or name != os.path.basename(name):
        raise ValueError(f"save_pretrained: extra file name {name!r} must be a plain file name "
                         f"other than {', '.join(reserved)}")
    if isinstance(content, dict):
        return _json_bytes(content, name)
    if isinstance(content, str):
        return content.encode()
    if isinstance(content, bytes):
        return content
    raise TypeError(f"save_pretrained: extra file {name} holds a {type(content).__name__}; "
                    "give a dict (JSON), a str or bytes")


def save_pretrained(model: Any, tokenizer: Any, directory: str | Path, config: dict,
                    extra_files: Mapping[str, bytes | str | dict] | None = None,
                    tokenizer_config: dict | None = None, *,
                    tensors: Mapping[str, Any] | None = None,
                    weights_name: str = MODEL_FILE) -> Path:
    """Write a model directory as a whole: the only writer of one.

    Args:
        model: a module; each parameter is stored once, under the first name
            ``named_parameters`` gives it (a tied decoder shares the embeddings' tensor), and
            each buffer (``named_buffers``: a pruning mask) under its name.
        tokenizer: anything with ``save_pretrained(directory)``, such as ``BertTokenizer``, or
            None for a directory of the model alone.
        directory: the target; its parent is created if need be. It must be absent, empty or
            an earlier model directory, which is replaced.
        config: written as ``config.json``.
        extra_files: ``{file name: content}`` written beside: a dict as JSON, a str as UTF-8
            text, bytes as they are (e.g. ``history.json``, ``metrics.json``, ``curves.png``).
        tokenizer_config: keys that override those of the tokenizer's
            ``tokenizer_config.json`` (e.g. ``{"model_max_length": 128}``).
        tensors: ``{name: array}`` to write instead of ``model``'s parameters and buffers (such
            as a PEFT adapter's trainable tensors), under the file name ``weights_name``.

    Returns:
        the target, as an absolute path.

    The files go into a staging directory beside the target, each fsynced, the manifest last;
    then the staging directory takes the target's place (see the module's docstring). The whole
    happens under :class:`OutputLock`. A crash at any point leaves the previous directory, the
    new one, or none; never a mix. Bad extra files are refused before anything is written.
    """
    target = _absolute(directory)
    extras = {name: _extra_bytes(name, content) for name, content in (extra_files or {}).items()}
    if weights_name in extras or weights_name in (CONFIG_FILE, MANIFEST_FILE):
        raise ValueError(f"save_pretrained: {weights_name} is the weights file's name")
    if tensors is None:
        tensors = {**{name: p.data for name, p in model.named_parameters()},
                   **dict(model.named_buffers())}
    weights = _safetensors_blob(dict(tensors))
    config_bytes = _json_bytes(config, CONFIG_FILE)
    with OutputLock(target):
        staging = _beside(target, "staging")
        staging.mkdir()
        try:
            entries = [_write_synced(staging / weights_name, weights),
                       _write_synced(staging / CONFIG_FILE, config_bytes)]
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            if tokenizer_config:
                path = staging / TOKENIZER_CONFIG_FILE
                settings = json.loads(path.read_text(encoding="utf-8")) | tokenizer_config
                path.write_bytes(_json_bytes(settings, TOKENIZER_CONFIG_FILE))
            written = {entry["name"] for entry in entries}
            entries += [_sync_written(path) for path in sorted(staging.iterdir())
                        if path.name not in written]
            for name, data in extras.items():
                if (staging / name).exists():
                    raise ValueError(f"save_pretrained: extra file {name} would overwrite the "
                                     "tokenizer's file of that name")
                entries.append(_write_synced(staging / name, data))
            manifest = {"format_version": MANIFEST_FORMAT_VERSION, "files": entries}
            _write_synced(staging / MANIFEST_FILE, _json_bytes(manifest, MANIFEST_FILE))
            _fsync_directory(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _swap_in(staging, target)
    return target


def _manifest_entries(manifest: Any) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of each file a parsed manifest lists; KeyError or TypeError if it
    does not have the shape :func:`save_pretrained` writes."""
    entries = [(e["name"], e["size"], e["sha256"]) for e in manifest["files"]]
    for name, size, sha in entries:
        if not (isinstance(name, str) and isinstance(size, int) and isinstance(sha, str)):
            raise TypeError(f"bad entry {name!r}")
    return entries


def verify_manifest(directory: str | Path) -> dict | None:
    """Check a model directory before loading it; its manifest, or None if it has none.

    A directory without ``minigrad_manifest.json`` (a Hugging Face checkpoint such as the
    shipped MiniLM) is accepted as it is. Otherwise every file the manifest lists must exist
    with its recorded size and sha256 (files it does not list, written later, are ignored).

    Raises:
        CheckpointError: naming the directory and the first bad file: missing, cut short or
            changed after saving; or naming the manifest when it is cut short, empty, not JSON
            or of another format version.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory (a model directory holds "
                              f"{CONFIG_FILE} and {MODEL_FILE})")
    path = directory / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
        entries = _manifest_entries(manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is cut short or corrupted ({type(exc).__name__}: {exc}); "
                              "the directory was not written completely: save it again") \
            from None
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {manifest.get('format_version')!r}, "
                              f"expected {MANIFEST_FORMAT_VERSION}")
    for name, size, sha in entries:
        file = directory / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing, though {MANIFEST_FILE} lists it")
        actual = file.stat().st_size
        if actual != size:
            raise CheckpointError(f"{file} has {actual} bytes, {MANIFEST_FILE} records {size}: "
                                  "cut short or changed after saving")
        with open(file, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != sha:
                raise CheckpointError(f"{file} does not match the sha256 {MANIFEST_FILE} "
                                      "records: changed after saving")
    return manifest


def check_vocab_size(config: dict, vocab_size: int, directory: str | Path) -> None:
    """Refuse a tokenizer of ``vocab_size`` tokens for a model whose ``config.json`` (the dict
    ``config``) has another ``vocab_size``: one line naming both files and both numbers."""
    directory = Path(directory)
    expected = config.get("vocab_size")
    if expected != vocab_size:
        raise CheckpointError(f"{directory / VOCAB_FILE} has {vocab_size} tokens but "
                              f"{directory / CONFIG_FILE} has vocab_size {expected}: the "
                              "tokenizer does not belong to this model")


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
                        extra: dict | None = None, scaler: Any = None) -> None:
    """Save everything needed to resume training exactly.

    ``history`` and ``extra`` must be JSON-serializable (dicts, lists, numbers, strings).
    ``step`` counts optimizer steps taken and ``epoch`` the epochs completed. ``scaler``, an
    enabled :class:`minigrad.amp.GradScaler` (float16 training), keeps its scale and count of
    good steps.
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
        "grad_scaler": (scaler.state_dict() if scaler is not None and scaler.is_enabled()
                        else None),
        "history": history,
        "extra": extra or {},
    }
    atomic_write_json(directory / TRAINER_STATE_FILE, state)  # last: the commit record


def load_training_state(directory: str | Path, model: Any, optimizer: Any, scheduler: Any = None,
                        *, restore_rng: bool = True, scaler: Any = None) -> TrainingState:
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
    scaling = scaler is not None and scaler.is_enabled()
    if scaling != (state.get("grad_scaler") is not None):
        raise CheckpointError(f"{where} was saved {'without' if scaling else 'with'} a "
                              f"GradScaler (float16 loss scaling); resume it with the precision "
                              f"it was trained in")

    optimizer_arrays = load_safetensors(directory / OPTIMIZER_FILE,
                                        state["files"][OPTIMIZER_FILE]["sha256"])
    optimizer_state = _join_optimizer_state(optimizer_arrays, state["optimizer"])
    _load_into_model(directory / MODEL_FILE, model, strict=True,
                     expected_sha256=state["files"][MODEL_FILE]["sha256"])
    try:
        optimizer.load_state_dict(optimizer_state)
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"]["state"])
        if scaling:
            scaler.load_state_dict(state["grad_scaler"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{directory}: the saved optimizer or scheduler state does not "
                              f"fit: {exc}") from exc
    if restore_rng:
        _set_rng_states(state["rng"])
    return TrainingState(step=state["step"], epoch=state["epoch"], history=state["history"],
                         extra=state["extra"])
