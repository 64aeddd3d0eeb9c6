"""The numpy a reward program sees: array math, and nothing that reaches outside it.

A reward program does not get numpy itself. `restricted_numpy()` builds a
stand-in module holding an allowlist of numpy's names: every ufunc (an
element-wise operation cannot touch a file), numpy's scalar types, a
reviewed list of array functions and classes, and three submodules
(`linalg`, `random`, `fft`) holding their own public names. Whatever is not
listed is absent, under any name or alias a program uses to reach it: file
input and output (`load`, `save`, `fromfile`, `fromregex`, `memmap`, ...),
submodules that hold other modules (`np.ma.core.builtins` is Python's
builtins, `np.lib`, `np.ctypeslib`, `np.testing`), and process-wide
settings (`seterr`, `set_printoptions`).

An allowlist fails closed: a name a future numpy adds stays out until
someone reviews it and adds it here. The static rules
(`autoreward.reward_program`) use the same lists to refuse `np.save` before
anything runs; the methods of arrays (`tofile`, `dump`, `ctypes`) are
refused there by name, since every array carries them.
"""

from __future__ import annotations

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
        and n not in UNUSED_TYPES
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


def restricted_numpy() -> types.ModuleType:
    """A fresh stand-in for `numpy` holding the allowed names only."""
    module = RestrictedModule("numpy")
    for name in SURFACE[""]:
        if name not in SUBMODULES:
            setattr(module, name, getattr(np, name))
    for name in SUBMODULES:
        submodule = RestrictedModule(f"numpy.{name}")
        source = getattr(np, name)
        for member in SURFACE[name]:
            setattr(submodule, member, getattr(source, member))
        setattr(module, name, submodule)
    return module
