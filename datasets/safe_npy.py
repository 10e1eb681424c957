"""Loading a ``.npy`` file without running code and with bounded memory.

:func:`load_npy` reads the header with :mod:`numpy.lib.format` first.  A numeric array is refused from its
header when it promises more elements than the caller allows, before any data is read, and then read with
``allow_pickle`` off.  An object array (VIDIT's depth files: ``np.save`` of a 0-d object array holding a dict,
pickled) is refused when the file is larger than the caller allows, its pickle is scanned for opcodes a
numpy dict never needs, and it is unpickled by :class:`_NumpyOnlyUnpickler`, which resolves only numpy's
array, dtype and scalar constructors (wrapped so that each checks its arguments) and refuses every other
global, so no code from the file runs.  The result must be a dict with str keys and numeric values.

Every refusal is a :class:`datasets.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.lib import format as npy_format

from datasets.errors import DataError

try:  # numpy 2; ``numpy.core`` still imports there but warns
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_MAX_PICKLE_OPS = 1000  # a VIDIT depth dict pickles in about 120 operations, whatever the map's size
_REFUSED_OPCODES = {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"}
_NDARRAY = object()  # what ``numpy.ndarray`` resolves to: only :func:`_reconstruct`'s first argument uses it


def load_npy(path: Path, *, max_elements: int, max_bytes: int) -> np.ndarray | dict[str, Any]:
    """A numeric ``.npy`` array, or the dict of a pickled (object) ``.npy``, loaded without running code.

    ``max_elements`` caps the elements of any array (checked from the header, or from each pickled array's
    state, before its data is used); ``max_bytes`` caps the size of a pickled file (its header says nothing
    about its size).  Returns an ndarray of a numeric dtype (any shape), or a dict of str keys to numeric
    ndarrays and numbers.  A missing file, bad magic, a malformed header, truncated data, a non-numeric dtype,
    a disallowed pickle global or anything but such a dict raises :class:`DataError` naming the file.
    """
    try:
        with open(path, "rb") as handle:
            shape, fortran, dtype = _read_header(handle, path)
            if dtype == np.dtype(object):
                return _load_pickled(handle, path, shape, max_elements=max_elements, max_bytes=max_bytes)
            return _load_numeric(handle, path, shape, fortran, dtype, max_elements)
    except FileNotFoundError:
        raise DataError(f"{path}: depth file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a .npy depth file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def _read_header(handle: io.BufferedReader, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the magic string and header of an open ``.npy`` (versions 1-3)."""
    head = handle.read(6)
    handle.seek(0)
    try:
        version = npy_format.read_magic(handle)
    except ValueError:
        raise DataError(
            f"{path}: not a readable .npy depth file (no .npy signature: it starts with {head!r}); "
            "expected a NumPy .npy file such as VIDIT's ImageNNN.npy"
        ) from None
    reader = getattr(npy_format, f"read_array_header_{version[0]}_{version[1]}", None)
    if reader is None:
        raise DataError(f"{path}: .npy format version {version[0]}.{version[1]} is not supported (1.0 and 2.0 are)")
    try:
        shape, fortran, dtype = reader(handle)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise DataError(f"{path}: not a readable .npy depth file ({exc}); the file is corrupt or truncated") from None
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _counted(path: Path, shape: tuple[int, ...], max_elements: int, what: str, then: str = "") -> int:
    """The element count of ``shape``; a :class:`DataError` naming ``path`` when it is over ``max_elements``."""
    count = math.prod(shape)
    if count > max_elements:
        raise DataError(f"{path}: {what} of shape {shape} ({count:,} elements), more than the {max_elements:,} a "
                        f"depth map of its image may have{then}")
    return count


def _load_numeric(handle, path: Path, shape: tuple[int, ...], fortran: bool, dtype: np.dtype,
                  max_elements: int) -> np.ndarray:
    """Read the data of a non-object ``.npy`` (header already read): checks dtype, element count and file size first."""
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{path}: not a depth map: expected real numbers, found an array of dtype {dtype}")
    count = _counted(path, shape, max_elements, "its .npy header promises an array",
                     "; refused before reading its data")
    needed = count * dtype.itemsize
    available = os.fstat(handle.fileno()).st_size - handle.tell()
    if available < needed:
        raise DataError(
            f"{path}: not a readable .npy depth file (its header promises {needed:,} bytes of data, the file holds "
            f"{available:,}); the file is corrupt or truncated"
        )
    array = np.fromfile(handle, dtype=dtype, count=count)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def _load_pickled(handle, path: Path, shape: tuple[int, ...], *, max_elements: int, max_bytes: int) -> dict[str, Any]:
    """Unpickle the rest of an object ``.npy`` with :class:`_NumpyOnlyUnpickler`; returns its checked dict."""
    size = os.fstat(handle.fileno()).st_size
    data = handle.read(max(0, max_bytes - handle.tell())) if size <= max_bytes else b""
    if size > max_bytes or handle.read(1):  # the second test: a file that grew, or a special file
        shown = f"is {size:,} bytes" if size > max_bytes else f"holds more bytes than its size ({size:,}) says"
        raise DataError(
            f"{path}: pickled depth file {shown}, more than the {max_bytes:,} a depth map of its image may take; "
            "refused without unpickling it"
        )
    _scan_opcodes(data, path)
    try:
        loaded = _NumpyOnlyUnpickler(io.BytesIO(data), path=path, max_elements=max_elements).load()
    except DataError:
        raise
    except Exception as exc:  # a malformed pickle can raise nearly anything; nothing in it has run
        raise DataError(f"{path}: not a readable .npy depth file ({type(exc).__name__}: {exc})") from None
    return _checked_dict(loaded, path, shape)


def _scan_opcodes(data: bytes, path: Path) -> None:
    """Refuse a pickle of more than ``_MAX_PICKLE_OPS`` operations or with one a numpy dict never uses.

    Only reads the opcodes (:func:`pickletools.genops`); nothing is built.
    """
    try:
        for count, (opcode, _, _) in enumerate(pickletools.genops(data)):
            if count >= _MAX_PICKLE_OPS:
                raise DataError(
                    f"{path}: the pickled depth file has more than {_MAX_PICKLE_OPS} pickle operations (a VIDIT depth "
                    "dict has about 120); refused without unpickling it"
                )
            if opcode.name in _REFUSED_OPCODES:
                raise DataError(
                    f"{path}: the pickled depth file uses the pickle operation {opcode.name}, which a numpy depth "
                    "dict never needs; refused without unpickling it"
                )
    except ValueError as exc:
        raise DataError(f"{path}: not a readable .npy depth file (bad pickle data: {exc}); the file is corrupt "
                        "or truncated") from None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only numpy's array, dtype and scalar constructors (each wrapped to check its input); refuses the rest.

    Admitted globals: ``numpy.core.multiarray`` / ``numpy._core.multiarray`` ``_reconstruct`` and ``scalar``,
    ``numpy.ndarray``, ``numpy.dtype`` and the dtype classes of ``numpy.dtypes``.  The ``numpy.core`` names are
    resolved to the live numpy objects without importing ``numpy.core`` (no deprecation warning).
    """

    def __init__(self, file: io.BytesIO, *, path: Path, max_elements: int):
        super().__init__(file)
        self.path = path
        self.max_elements = max_elements

    def find_class(self, module: str, name: str) -> Any:
        if module in _MULTIARRAY_MODULES and name == "_reconstruct":
            return _Constructor(_reconstruct, self.path, self.max_elements)
        if module in _MULTIARRAY_MODULES and name == "scalar":
            return _Constructor(_scalar, self.path)
        if module == "numpy" and name == "ndarray":
            return _NDARRAY
        if module == "numpy" and name == "dtype":
            return _Constructor(_dtype, self.path)
        cls = getattr(np.dtypes, name, None) if module == "numpy.dtypes" and not name.startswith("_") else None
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            return _Constructor(_dtype_of_class, self.path, cls)
        raise DataError(
            f"{self.path}: refused to load {module}.{name} from the pickled depth map: only numpy arrays, dtypes and "
            "numbers are allowed (a pickle naming anything else could run code)"
        )


class _Constructor:
    """An admitted global: ``function(*bound, *args)`` when the pickle calls it; its state cannot be changed (BUILD)."""

    __slots__ = ("function", "bound")

    def __init__(self, function: Callable[..., Any], *bound: Any):
        self.function = function
        self.bound = bound

    def __call__(self, *args: Any) -> Any:
        return self.function(*self.bound, *args)

    def __setstate__(self, state: Any) -> None:
        raise DataError(f"{self.bound[0]}: the pickle tries to change numpy's {self.function.__name__.lstrip('_')}")


def _reconstruct(path: Path, max_elements: int, subtype: Any, shape: Any, typecode: Any) -> "_CheckedArray":
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array whose state (set by BUILD) is checked."""
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise DataError(f"{path}: pickled array is not built the way numpy pickles arrays")
    array = _multiarray._reconstruct(_CheckedArray, (0,), b"b")
    array.limits = (path, max_elements)
    return array


class _CheckedArray(np.ndarray):
    """An ndarray being unpickled: :meth:`__setstate__` checks shape, dtype and data before numpy uses them."""

    def __setstate__(self, state: Any) -> None:
        path, max_elements = self.__dict__.get("limits", ("a pickled array", 0))
        if not isinstance(state, tuple) or len(state) not in (4, 5) or (len(state) == 5 and state[0] != 1):
            raise DataError(f"{path}: pickled array state is not numpy's (version 1, shape, dtype, order, data)")
        shape, stub, fortran, data = state[-4:]
        if not (isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and n >= 0 for n in shape)):
            raise DataError(f"{path}: pickled array has an invalid shape {shape!r}")
        if not isinstance(stub, _DTypeStub) or type(fortran) is not bool:
            raise DataError(f"{path}: pickled array state is not numpy's (version 1, shape, dtype, order, data)")
        count = _counted(path, shape, max_elements, "the pickled depth map holds an array")
        dtype = stub.dtype
        if dtype == np.dtype(object):
            ok = type(data) is list and len(data) == count  # numpy reads past a short list
        else:
            ok = type(data) is bytes and len(data) == count * dtype.itemsize
        if not ok:
            raise DataError(f"{path}: pickled array of shape {shape} and dtype {dtype} has data of the wrong size")
        super().__setstate__((1, shape, dtype, fortran, data))


class _DTypeStub:
    """A dtype being unpickled (``numpy.dtype(spec, align, copy)``, then BUILD); ``dtype`` is the checked result."""

    __slots__ = ("path", "dtype")

    def __init__(self, path: Path, dtype: np.dtype):
        if dtype.kind not in _NUMERIC_KINDS + "O" or dtype.fields is not None or dtype.subdtype is not None:
            raise DataError(f"{path}: pickled dtype {dtype} is not allowed (only numbers and the depth dict's object)")
        self.path = path
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        """Accept only the state numpy itself writes for this dtype in some byte order (version 3)."""
        order = state[1] if isinstance(state, tuple) and len(state) == 8 and state[0] == 3 else None
        if order not in ("<", ">", "|", "="):
            raise DataError(f"{self.path}: pickled dtype state {state!r} is not numpy's")
        dtype = self.dtype.newbyteorder(order)
        if tuple(state[1:]) != dtype.__reduce__()[2][1:]:
            raise DataError(f"{self.path}: pickled dtype state {state!r} is not numpy's for {self.dtype}")
        self.dtype = dtype


def _dtype(path: Path, spec: Any, align: Any = False, copy: Any = True) -> _DTypeStub:
    """``numpy.dtype(spec)`` for a type-code string of a number or object (``'f4'``, ``'<f8'``, ``'O8'``)."""
    if not isinstance(spec, str) or len(spec) > 8 or type(align) is not bool:
        raise DataError(f"{path}: pickled dtype {spec!r} is not allowed (only numbers and the depth dict's object)")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise DataError(f"{path}: pickled dtype {spec!r} is not a numpy dtype") from None
    return _DTypeStub(path, dtype)


def _dtype_of_class(path: Path, cls: type, *args: Any) -> _DTypeStub:
    """An instance of a ``numpy.dtypes`` class (numpy 2 may pickle dtypes through them), if numeric or object."""
    try:
        dtype = cls(*args)
    except (TypeError, ValueError):
        raise DataError(f"{path}: pickled dtype {cls.__name__}{args!r} is not a numpy dtype") from None
    return _DTypeStub(path, dtype)


def _scalar(path: Path, stub: Any, data: Any) -> Any:
    """numpy's ``scalar(dtype, data)`` for a numeric dtype and exactly ``itemsize`` bytes of data."""
    if not isinstance(stub, _DTypeStub) or stub.dtype.kind not in _NUMERIC_KINDS or type(data) is not bytes \
            or len(data) != stub.dtype.itemsize:
        raise DataError(f"{path}: pickled number is not a numeric numpy scalar")
    return _multiarray.scalar(stub.dtype, data)


def _checked_dict(loaded: Any, path: Path, shape: tuple[int, ...]) -> dict[str, Any]:
    """The dict in a 0-d object array, with str keys and numeric ndarray / number values (plain ndarrays)."""
    if not isinstance(loaded, np.ndarray) or loaded.dtype != np.dtype(object):
        raise DataError(f"{path}: the pickled data is a {type(loaded).__name__}, not the object array its header says")
    if loaded.shape != shape:
        raise DataError(f"{path}: the pickled array has shape {loaded.shape} but its .npy header says {shape}")
    item = loaded.item() if loaded.shape == () else None
    if not isinstance(item, dict):
        found = f"an object array of shape {loaded.shape}" if loaded.shape != () else type(item).__name__
        raise DataError(
            f"{path}: expected a depth map (a dict with 'normalized_depth' or a 2-D numeric array), found {found}"
        )
    checked = {}
    for key, value in item.items():
        if not isinstance(key, str):
            raise DataError(f"{path}: depth dict has a key of type {type(key).__name__}; expected str keys")
        if isinstance(value, np.ndarray) and value.dtype.kind in _NUMERIC_KINDS:
            checked[key] = np.asarray(value)  # a plain ndarray, not the unpickling subclass
        elif isinstance(value, (np.number, np.bool_, bool, int, float, complex)):
            checked[key] = value
        else:
            found = f"an array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise DataError(f"{path}: depth dict entry {key!r} is {found}; expected a numeric array or a number")
    return checked
