"""The numpy a reward program sees: array math, and nothing that reaches outside it.

A reward program does not get numpy itself. `restricted_numpy()` builds a
stand-in module holding an allowlist of numpy's names: every ufunc (an
element-wise operation cannot touch a file), numpy's scalar types, a
reviewed list of array functions and classes, and three submodules
(`linalg`, `random`, `fft`) holding their own public names. Whatever is not
listed is absent, under any name or alias a program uses to reach it: file
input and output (`load`, `save`, `fromfile`, `fromregex`, `memmap`, ...),
submodules that hold other modules (`np.ma.core.builtins` is Python's
builtins, `np.lib`, `np.ctypeslib`, `np.testing`), process-wide
settings (`seterr`, `set_printoptions`), and the makers of arrays over raw
memory (`frombuffer`, `lib.stride_tricks.as_strided`).

Two names are there but not as numpy has them. `np.ndarray` is a stand-in
that answers `isinstance(x, np.ndarray)` and refuses to be called: numpy's
constructor lays an array over any buffer at any offset and, with dtype
"O", reads its bytes as pointers to Python objects, so a program could
forge one (Python's real builtins, `os`). And the array makers (`np.zeros`,
`np.array`, ...) refuse an object dtype (`"O"`, `object`, a structured
dtype with an object field), however the program spelled it; numpy's type
for such arrays, `object_`, is absent.

An allowlist fails closed: a name a future numpy adds stays out until
someone reviews it and adds it here. The static rules
(`autoreward.contract.reward_program`) use the same lists to refuse `np.save` before
anything runs; the methods of arrays (`tofile`, `dump`, `ctypes`) are
refused there by name, since every array carries them.
"""

from __future__ import annotations

import functools
import inspect
import types
from types import MappingProxyType

import numpy as np

# Reviewed: each computes on arrays and returns arrays, numbers or views; none reads or writes a file,
# imports, or changes process-wide state. Names missing from the installed numpy are skipped.
ARRAY_FUNCTIONS = """
    all allclose amax amin angle any append apply_along_axis arange argmax argmin argpartition argsort argwhere
    around array array_equal array_equiv array_split asanyarray asarray ascontiguousarray astype atleast_1d
    atleast_2d atleast_3d average bincount block broadcast_arrays broadcast_shapes broadcast_to clip column_stack
    concat concatenate convolve copy copyto corrcoef correlate count_nonzero cov cross cumprod cumsum
    cumulative_prod cumulative_sum deg2rad delete diag diagonal diff digitize dot dsplit dstack ediff1d einsum
    empty empty_like expand_dims extract eye flatnonzero flip fliplr flipud fromfunction full full_like geomspace
    gradient histogram hsplit hstack identity imag indices inner insert interp isclose iscomplex isin isneginf
    isposinf isreal isscalar issubdtype kron lexsort linspace logspace matrix_transpose max mean median meshgrid
    min moveaxis nan_to_num nanargmax nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin
    nanpercentile nanprod nanquantile nanstd nansum nanvar ndim nonzero ones ones_like outer pad partition
    percentile permute_dims piecewise polyval prod ptp put_along_axis quantile ravel real repeat reshape
    result_type roll rot90 round searchsorted select shape sinc size sort split squeeze stack std sum swapaxes
    take take_along_axis tensordot tile trace transpose trapezoid trapz tri tril triu unique unstack unwrap var
    vdot vsplit vstack where zeros zeros_like
""".split()
CLASSES = (
    "ndarray",
    "dtype",
    "finfo",
    "iinfo",
    "errstate",
    "vectorize",
    "generic",
    "number",
    "integer",
    "signedinteger",
    "unsignedinteger",
    "inexact",
    "floating",
    "complexfloating",
    "bool_",
)
UNUSED_TYPES = ("record",)  # structured-array records: printing helpers, no arithmetic
REFUSED_TYPES = ("object_",)  # arrays of pointers to Python objects: see `ArrayType`
# The array makers whose dtype argument is checked for Python objects (`refusing_object_dtypes`).
ARRAY_MAKERS = """
    array asarray asanyarray ascontiguousarray astype zeros ones empty full zeros_like ones_like empty_like
    full_like arange eye identity tri linspace logspace geomspace indices fromfunction
""".split()
CONSTANTS = ("pi", "e", "inf", "nan", "newaxis", "euler_gamma")
SUBMODULES = ("linalg", "random", "fft")


def _top_level_names() -> frozenset[str]:
    names = {n for n in dir(np) if not n.startswith("_") and isinstance(getattr(np, n), np.ufunc)}
    names |= {
        n
        for n in dir(np)
        if not n.startswith("_")
        and isinstance(getattr(np, n), type)
        and issubclass(getattr(np, n), np.generic)
        and n not in UNUSED_TYPES + REFUSED_TYPES
    }
    names |= {n for n in (*ARRAY_FUNCTIONS, *CLASSES, *CONSTANTS) if hasattr(np, n)}
    return frozenset(names | set(SUBMODULES))


def _submodule_names(name: str) -> frozenset[str]:
    module = getattr(np, name)
    return frozenset(n for n in getattr(module, "__all__", ()) if not n.startswith("_") and hasattr(module, n))


# What a program may name: "" for numpy's top level, then each submodule. Derived from the installed numpy.
SURFACE: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {"": _top_level_names(), **{name: _submodule_names(name) for name in SUBMODULES}}
)


class RestrictedModule(types.ModuleType):
    """A module holding only allowed names; any other name fails with a message a program's author can act on."""

    def __getattr__(self, name: str):
        raise AttributeError(
            f"{self.__name__}.{name} is not available to a reward program: it may use numpy's array math "
            "(ufuncs, array functions, linalg, random, fft), not numpy's file, process or introspection functions"
        )


class ArrayType:
    """`np.ndarray` as a reward program sees it: the type, for `isinstance(x, np.ndarray)` and annotations, but
    not its constructor, which makes an array over raw memory (`buffer=`, `offset=`, `strides=`; with dtype "O"
    its bytes are taken as object pointers). It is no class, so it has no attributes to patch."""

    __slots__ = ()

    def __instancecheck__(self, value) -> bool:
        return isinstance(value, np.ndarray)

    def __subclasscheck__(self, cls) -> bool:
        return issubclass(cls, np.ndarray)

    def __or__(self, other):  # `np.ndarray | float` in an annotation or an isinstance test
        return (self, other)

    __ror__ = __or__

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "np.ndarray(...) is not available to a reward program: it makes an array over raw memory; make arrays "
            "with np.zeros, np.full, np.array or np.asarray (np.ndarray may still name the type, as in "
            "isinstance(x, np.ndarray))"
        )

    def __repr__(self) -> str:
        return "<class 'numpy.ndarray'>"


def holds_objects(dtype) -> bool:
    """Whether `dtype` (anything numpy takes for one) holds pointers to Python objects: "O", object, "f8,O", ..."""
    try:
        return bool(np.dtype(dtype).hasobject)
    except (TypeError, ValueError):  # not a dtype: numpy says so itself when the array is made
        return False


def refusing_object_dtypes(name: str):
    """numpy's array maker `name`, refusing an object dtype whether given by keyword or by position."""
    function = getattr(np, name)
    # Its place in the signature, keyword-only or not: numpy's C makers take more by position than their
    # signatures say (`np.arange(0, 3, 1, "O")`), and a Python one given too many fails by itself.
    names = list(inspect.signature(function).parameters)
    position = names.index("dtype") if "dtype" in names else None

    @functools.wraps(function)
    def checked(*args, **kwargs):
        dtype = kwargs.get("dtype", args[position] if position is not None and len(args) > position else None)
        if dtype is not None and holds_objects(dtype):
            raise TypeError(
                f"np.{name}(..., dtype={dtype!r}) is not available to a reward program: that dtype holds pointers "
                "to Python objects; use a numeric dtype: float (the default, np.float64), int or bool"
            )
        return function(*args, **kwargs)

    return checked


def restricted_numpy() -> types.ModuleType:
    """A fresh stand-in for `numpy` holding the allowed names only."""
    module = RestrictedModule("numpy")
    for name in SURFACE[""]:
        if name not in SUBMODULES:
            setattr(module, name, getattr(np, name))
    for name in ARRAY_MAKERS:
        if name in SURFACE[""]:
            setattr(module, name, refusing_object_dtypes(name))
    module.ndarray = ArrayType()
    for name in SUBMODULES:
        submodule = RestrictedModule(f"numpy.{name}")
        source = getattr(np, name)
        for member in SURFACE[name]:
            setattr(submodule, member, getattr(source, member))
        setattr(module, name, submodule)
    return module
