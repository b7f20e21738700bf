"""Reading `.npz` label files without running code from them: object arrays are unpickled by an unpickler
that admits only numpy arrays, dtypes, scalars and plain containers (no torch, no `np.load(allow_pickle=True)`)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from affectreason.errors import AffectReasonError

# Everything numpy's own pickles of object arrays, dtypes and scalars refer to, under numpy 1.x and 2.x names;
# `_codecs.encode` rebuilds bytes in protocol-2 pickles written by Python 2.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: label files hold only data")
        return super().find_class(module, name)


def _read_member(handle: Any) -> np.ndarray:
    fmt = np.lib.format
    version = fmt.read_magic(handle)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(handle)
    if not dtype.hasobject:
        handle.seek(0)
        return fmt.read_array(handle, allow_pickle=False)
    array = _Unpickler(handle, encoding="latin1").load()
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise pickle.UnpicklingError("the pickled array does not match its header")
    return array


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz` file by name; a one-line AffectReasonError for anything else in it."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as raw:
                    arrays[member[:-4]] = _read_member(io.BytesIO(raw.read()))
    except (pickle.UnpicklingError, zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AffectReasonError(f"cannot read {path}: {message}") from None
    except Exception as exc:  # a malformed pickle can raise nearly anything; the data file is at fault
        raise AffectReasonError(
            f"cannot read {path}: malformed pickled data ({type(exc).__name__})"
        ) from None
    return arrays
