"""Saving and loading networks as a single ``.npz`` file, never with pickle.

The file holds the architecture as JSON text under the key ``__config__`` and
every array under ``"<path>.<name>"`` (e.g. ``"0.weight"``). Loading uses
``allow_pickle=False`` and builds only the layer types of the table in
:mod:`lrp_ref.registry`, so a file can describe a network but never run code.

Loading is bounded (docs/security.md): before anything is decompressed or
allocated, every member's declared size (the zip directory) and its ``.npy``
header (dtype and shape) are read and checked against each other and against
the limits below; the architecture is checked for depth, size and sane window
geometry before its arrays are read. Every failure is a ValueError that says
what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import numpy as np

from .layers.base import Layer, build, where
from .registry import LAYER_TYPES

CONFIG_KEY = "__config__"
FORMAT = "lrp_ref-network-1"

#: The most bytes of array data a model file may declare (all members together).
MAX_BYTES = 2**31
#: The most bytes of JSON text the architecture may take.
MAX_CONFIG_BYTES = 2**24
#: The most layers a network may have (containers count), and how deeply they may nest
#: (a plain Sequential of layers is depth 2).
MAX_LAYERS = 10_000
MAX_DEPTH = 64
#: The most arrays (zip members) a file may hold.
MAX_MEMBERS = 8 * MAX_LAYERS
#: The largest ``.npy`` header read (NumPy's own default limit).
MAX_HEADER_BYTES = 10_000

#: The zip compression methods NumPy writes (``savez``, ``savez_compressed``).
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
#: The array kinds a parameter may have: bool, integers, floats (no complex, objects,
#: strings, dates or structures).
PARAMETER_KINDS = "biuf"

#: What numpy's header parser and zipfile's readers raise on malformed bytes.
MALFORMED = (ValueError, SyntaxError, TypeError, KeyError, EOFError, OverflowError,
             UnicodeDecodeError, tokenize.TokenError, zipfile.BadZipFile, zlib.error, OSError,
             NotImplementedError)


def save(net: Layer, path: str | os.PathLike) -> None:
    """Write ``net`` (any layer or Sequential) to ``path`` (a ``.npz`` file).

    Raises
    ------
    ValueError
        When a layer's class is not one of the registered types (``LAYER_TYPES``),
        e.g. a user's subclass: the file would load as another class, or not at all;
        or for a network whose structure :func:`load` would refuse
        (:func:`check_architecture`, :func:`check_network`). A network with more
        than :data:`MAX_BYTES` of arrays is saved, and loads with a larger ``max_bytes``.
    """
    for layer_path, layer in (("", net), *net.named_layers()):
        if LAYER_TYPES.get(type(layer).__name__) is not type(layer):
            raise ValueError(f"cannot save {where(layer_path, layer)}: "
                             f"{type(layer).__qualname__} is not "
                             f"one of the layer types a model file may name "
                             f"({', '.join(sorted(LAYER_TYPES))}; lrp_ref.registry)")
    check_network(net)
    arrays = net.state()
    if CONFIG_KEY in arrays:
        raise ValueError(f"a layer path collides with the reserved key {CONFIG_KEY!r}")
    config = json.dumps({"format": FORMAT, "network": net.config()})
    check_architecture(json.loads(config)["network"])
    with open(path, "wb") as f:
        np.savez(f, **{CONFIG_KEY: np.array(config)}, **arrays)


def load(path: str | os.PathLike | IO[bytes], max_bytes: int = MAX_BYTES) -> Layer:
    """Read a network written by :func:`save`, within the limits of docs/security.md.

    Parameters
    ----------
    path : str, PathLike or binary file
        The ``.npz`` file.
    max_bytes : int
        The most bytes of array data the file may declare (:data:`MAX_BYTES`).

    Raises
    ------
    ValueError
        When the file is not a valid lrp_ref model file (malformed, truncated,
        tampered with, too large, naming unknown layer types or arrays), with
        the reason.
    """
    try:
        return _load(path, max_bytes)
    except RecursionError as error:  # a limit was missed; still one clear error
        raise ValueError(f"{path}: malformed lrp_ref model file (nested too deeply: "
                         f"layers may nest at most MAX_DEPTH = {MAX_DEPTH} deep)") from error


def _load(path: str | os.PathLike | IO[bytes], max_bytes: int) -> Layer:
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError(not_a_zip(path))
        check_member_count(path)
        archive = zipfile.ZipFile(path)
    except MALFORMED as error:
        raise ValueError(f"{path}: not a readable lrp_ref model file ({error})") from error
    with archive:
        try:
            members = Members(archive, max_bytes)
        except MALFORMED as error:
            raise ValueError(f"{path}: not a readable lrp_ref model file ({error})") from error
        try:
            network = read_config(members)
            check_architecture(network)
            net = build(network, members)
            check_network(net)
        except MALFORMED as error:              # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}: malformed lrp_ref model file ({error})") from error
        unused = sorted(set(members) - members.read - {CONFIG_KEY})
        if unused:
            raise ValueError(f"{path}: malformed lrp_ref model file (unused arrays {unused})")
    return net


@contextmanager
def opened(path: str | os.PathLike | IO[bytes]) -> Iterator[IO[bytes]]:
    """``path`` opened for reading, or an open binary file itself from its start (its
    position restored afterwards)."""
    if hasattr(path, "read"):
        start = path.tell()
        path.seek(0)
        try:
            yield path
        finally:
            path.seek(start)
    else:
        with open(path, "rb") as f:
            yield f


def not_a_zip(path: str | os.PathLike | IO[bytes]) -> str:
    """Why ``path`` is not an ``.npz`` archive: a plain ``.npy`` array, or not NumPy at all."""
    with opened(path) as f:
        magic = f.read(len(np.lib.format.MAGIC_PREFIX))
    if magic == np.lib.format.MAGIC_PREFIX:
        return "a single array, not an .npz archive"
    return "not an .npz archive"


def check_member_count(path: str | os.PathLike | IO[bytes]) -> None:
    """Refuse more than :data:`MAX_MEMBERS` entries before zipfile reads its directory
    (one object per entry: millions of tiny entries would take gigabytes). The count is
    the zip's end-of-central-directory record, read by zipfile's own helper."""
    with opened(path) as f:
        end = zipfile._EndRecData(f)
    if end is None:
        raise ValueError("not an .npz archive (no zip directory)")
    if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
        raise ValueError(f"{end[zipfile._ECD_ENTRIES_TOTAL]} arrays (at most {MAX_MEMBERS})")


def load_array(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """A numeric array (bool, integer or float) from an ``.npy`` file, read within
    ``max_bytes``: the header is checked before the data is allocated.

    Raises
    ------
    ValueError
        For an ``.npz`` archive, a malformed or truncated file, a header larger
        than the file, or more than ``max_bytes`` of data.
    TypeError
        For complex, object, string, date or structured arrays.
    """
    try:
        if zipfile.is_zipfile(path):
            raise ValueError("an .npz archive, not an .npy array")
        with open(path, "rb") as f:
            shape, fortran_order, dtype = read_header(f, "array")
            if is_parameter_dtype(dtype):
                size = math.prod(shape) * dtype.itemsize
                available = os.fstat(f.fileno()).st_size - f.tell()
                if size > max_bytes or size > available:
                    raise ValueError(f"the header declares shape {shape} of {dtype} ({size:,} "
                                     f"bytes), the file holds {available:,} (at most "
                                     f"{max_bytes:,})")
                return read_data(f, "array", shape, fortran_order, dtype)
    except MALFORMED as error:
        raise ValueError(f"{path}: not a readable .npy array ({error})") from error
    raise TypeError(f"{path}: expected a real numeric array (bool, integer or float), "
                    f"got dtype {dtype}")


# -- members: declared sizes and headers before any data ----------------------------------


def read_header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype of the ``.npy`` stream ``f``, its data not read.

    Only versions 1.0 and 2.0 (what ``np.save`` writes for plain dtypes) are read, and
    headers of at most :data:`MAX_HEADER_BYTES`.
    """
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER_BYTES)
    elif version == (2, 0):
        header = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER_BYTES)
    else:
        raise ValueError(f"{name}: unsupported .npy format version {version}")
    shape, fortran_order, dtype = header
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"{name}: invalid shape {shape}")
    return shape, fortran_order, dtype


def read_data(f: IO[bytes], name: str, shape: tuple[int, ...], fortran_order: bool,
              dtype: np.dtype) -> np.ndarray:
    """The array data following the header in ``f`` (shape and dtype checked by the caller)."""
    count = math.prod(shape)
    flat = np.empty(count, dtype)
    view = memoryview(flat).cast("B")
    done = 0
    while done < flat.nbytes:
        n = f.readinto(view[done:])
        if not n:
            raise ValueError(f"{name}: truncated array data ({done} of {flat.nbytes} bytes)")
        done += n
    array = flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def is_parameter_dtype(dtype: np.dtype) -> bool:
    """Whether a parameter (or an input) may have ``dtype``: bool, integer or float."""
    return dtype.kind in PARAMETER_KINDS and dtype.fields is None and dtype.subdtype is None


class Members(Mapping):
    """The arrays of an ``.npz`` archive, checked up front and read when first asked for.

    On construction every member's zip entry (name, compression, encryption,
    declared size) and ``.npy`` header are checked: the declared size must be
    the header's plus ``prod(shape) * itemsize``, and the declared sizes
    together at most ``max_bytes``. Nothing else is decompressed. ``read``
    collects the keys that were read, so unused members are found without
    ever decompressing them.
    """

    def __init__(self, archive: zipfile.ZipFile, max_bytes: int) -> None:
        self.archive = archive
        self.read: set[str] = set()
        self.headers: dict[str, tuple[zipfile.ZipInfo, tuple, bool, np.dtype]] = {}
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ValueError(f"{len(infos)} arrays (at most {MAX_MEMBERS})")
        total = sum(info.file_size for info in infos)
        if total > max_bytes:
            raise ValueError(f"the arrays declare {total:,} bytes (at most {max_bytes:,}; "
                             "load(path, max_bytes=...) raises the limit)")
        for info in infos:
            self._check(info)

    def _check(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise ValueError(f"member {name!r} is not an .npy array")
        key = name[:-len(".npy")]
        if key in self.headers:
            raise ValueError(f"the array {key!r} appears twice")
        if info.flag_bits & 0x1:
            raise ValueError(f"{name}: encrypted members are not supported")
        if info.compress_type not in COMPRESSIONS:
            raise ValueError(f"{name}: unsupported compression method {info.compress_type} "
                             f"(only {', '.join(COMPRESSIONS.values())})")
        with self.archive.open(info) as f:
            shape, fortran_order, dtype = read_header(f, name)
            header_bytes = f.tell()
        if key == CONFIG_KEY and (shape != () or dtype.kind != "U"):
            raise ValueError(f"{name}: the architecture must be a single string")
        if key != CONFIG_KEY and not is_parameter_dtype(dtype):
            raise ValueError(f"{name}: arrays of dtype {dtype} are not allowed (only bool, "
                             "integer and float)")
        data_bytes = math.prod(shape) * dtype.itemsize
        if header_bytes + data_bytes != info.file_size:
            raise ValueError(f"{name}: declares {info.file_size:,} bytes but its header "
                             f"(shape {shape}, dtype {dtype}) needs "
                             f"{header_bytes + data_bytes:,}")
        self.headers[key] = (info, shape, fortran_order, dtype)

    def __getitem__(self, key: str) -> np.ndarray:
        info, shape, fortran_order, dtype = self.headers[key]
        self.read.add(key)
        with self.archive.open(info) as f:
            read_header(f, info.filename)
            return read_data(f, info.filename, shape, fortran_order, dtype)

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def read_config(members: Members) -> Any:
    """The ``"network"`` entry of the JSON architecture, its format checked."""
    if CONFIG_KEY not in members:
        raise ValueError(f"no architecture ({CONFIG_KEY!r})")
    _, shape, _, dtype = members.headers[CONFIG_KEY]
    if dtype.itemsize > MAX_CONFIG_BYTES:
        raise ValueError(f"the architecture takes {dtype.itemsize:,} bytes "
                         f"(at most {MAX_CONFIG_BYTES:,})")
    header = json.loads(str(members[CONFIG_KEY][()]))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"format must be {FORMAT!r}")
    if "network" not in header:
        raise ValueError("no 'network' entry")
    return header["network"]


# -- the architecture: depth, size, registered types -------------------------------------


def check_architecture(network: Any) -> None:
    """Raise ValueError when a JSON architecture nests deeper than :data:`MAX_DEPTH`, has
    more than :data:`MAX_LAYERS` layers, or names a type that is not in the table of
    :mod:`lrp_ref.registry` (every type there is concrete; abstract bases are not listed).

    A layer is any JSON object with a ``"type"`` entry; the walk is iterative, so
    no nesting overflows the interpreter's stack.
    """
    if not isinstance(network, dict):
        raise ValueError("the network must be a layer description (a JSON object)")
    layers = 0
    stack = [(network, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if "type" in node:
                kind, layers, depth = node["type"], layers + 1, depth + 1
                if not isinstance(kind, str) or kind not in LAYER_TYPES:
                    raise ValueError(f"unknown layer type {kind!r}: a model file may name "
                                     f"only {', '.join(map(repr, sorted(LAYER_TYPES)))}")
                if depth > MAX_DEPTH:
                    raise ValueError(f"layers nest deeper than MAX_DEPTH = {MAX_DEPTH}")
                if layers > MAX_LAYERS:
                    raise ValueError(f"more than MAX_LAYERS = {MAX_LAYERS} layers")
            stack.extend((value, depth) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth) for value in node)


def check_network(net: Layer) -> None:
    """Raise ValueError for window geometry that could only exhaust memory: a Conv2d
    padding must be smaller than its kernel (every output sees at least one input).
    Windows given by index tables (an adaptive pool's) have no padding to check."""
    for layer in [net, *(layer for _, layer in net.named_layers())]:
        window = getattr(layer, "window", None)
        padding = getattr(window, "padding", None)
        if padding is not None and any(p >= k for p, k in zip(padding, window.kernel)):
            raise ValueError(f"{layer.where}: padding {window.padding} must be smaller than "
                             f"the kernel {window.kernel}")
