"""Atomic artifact writes: a killed process never leaves a file that looks complete.

Every artifact is written to a temporary name in the destination folder, flushed and fsynced,
then renamed into place with `os.replace` (atomic on POSIX within one file system). A full disk
(ENOSPC) or an exhausted quota (EDQUOT) while writing raises `DiskSpaceError` naming the file; the
temporary file is removed and the artifact it would have replaced is left untouched.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

from vidrec.core.errors import DiskSpaceError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# `.<name>.<pid>.tmp`, or `.<name>.<pid>.tmp<suffix>` for writers that pick a format from the extension
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?:\.[A-Za-z0-9]+)?$")


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it into place.

    keep_suffix: the temporary name ends in `path`'s suffix too (an encoder that picks the container
    from the extension, as OpenCV's VideoWriter does, writes the right format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix if keep_suffix else ''}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(path, err) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def is_disk_full(err: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also when a library wrapped the OSError in another exception."""
    return any(isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS for e in _chain(err))


def disk_full_error(path: str | Path, err: BaseException) -> DiskSpaceError:
    """The one-line error for a write that ran out of space: file, errno, free space and the fix."""
    path = Path(path)
    code = next((e.errno for e in _chain(err) if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS),
                errno.ENOSPC)
    folder = existing_folder(path.parent)
    free = shutil.disk_usage(folder).free
    return DiskSpaceError(
        f"{path}: {os.strerror(code)} ({errno.errorcode[code]}) while writing it; the partial file was removed "
        f"and earlier artifacts are untouched. {format_bytes(free)} free in {folder}: free space there "
        "(or point the output elsewhere) and rerun; the job starts again from its last complete artifact.")


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def existing_folder(path: str | Path) -> Path:
    """`path` or its nearest existing ancestor: the folder whose file system a new file would land on."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def format_bytes(n: float) -> str:
    """'1.2 GB' (decimal units, as `df -H` and the README's disk figures)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_path` made for `path` whose writer was killed.

    A SIGKILL skips `atomic_path`'s clean-up; the rerun of that job calls this so its folder holds
    only artifacts (a shard's temporary file is a few GB on UCF101). Only files whose writer process
    is gone (on this machine) are removed."""
    path = Path(path)
    return _remove_stale(path.parent, path.name)


def remove_stale_temporaries_in(folder: str | Path) -> list[Path]:
    """`remove_stale_temporaries` for every artifact of `folder` at once (a folder of many small files)."""
    return _remove_stale(Path(folder), None)


def _remove_stale(folder: Path, name: str | None) -> list[Path]:
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for tmp in folder.iterdir():
        match = _TEMPORARY.match(tmp.name)
        if match is None or (name is not None and match["name"] != name) or not tmp.is_file():
            continue
        try:
            os.kill(int(match["pid"]), 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # not ours to judge
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_csv(path: str | Path, frame: "Any", **kwargs: Any) -> None:
    """Write a pandas DataFrame atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, **kwargs)


def torch_save(obj: Any, path: str | Path) -> None:
    """torch.save, atomically. Serialised in memory first and written with a plain file write, so a
    full disk is an OSError (ENOSPC) naming the file, not torch's unspecific 'file write failed'."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
