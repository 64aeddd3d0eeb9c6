"""The attribute names the reward contract refuses on any object, in one place for its two users.

The static rules (`contract/reward_program.static_check`) refuse a program that reads them; the State
(`sim/state.py`) gives a model's body, joint or site that bears one of these names a trailing underscore
(a body called `system` is `state.bodies.system_`), so every field of the State stays reachable. Kept
here, below both, so that neither imports the other for it.
"""

from __future__ import annotations

# Attributes refused on any object. Numpy's file functions and the methods every array carries
# (`tofile`, `dump`, `ctypes`); and the public doors to frames, code and module globals, which need
# no underscore: generator frames (`gi_frame.f_back.f_globals`), Cython functions (`func_globals`),
# class walks (`mro`), format strings that read attributes (`"{0.x}".format`). Then the doors to raw
# memory (`REFUSED_FOR_MEMORY`).
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "loadtxt",
        "savetxt",
        "genfromtxt",
        "fromregex",
        "fromfile",
        "tofile",
        "dump",
        "dumps",
        "memmap",
        "open_memmap",
        "lib",
        "ctypeslib",
        "ctypes",
        "cffi",
        "distutils",
        "f2py",
        "testing",
        "os",
        "sys",
        "builtins",
        "DataSource",
        "show_config",
        "show_runtime",
        "info",
        "source",
        "who",
        "lookfor",
        "add_newdoc",
        "frompyfunc",
        "environ",
        "modules",
        "system",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "func_globals",
        "func_code",
        "func_closure",
        "func_dict",
        "mro",
        "format",
        "format_map",
    }
)

# Attributes that reach the memory behind an array or read it as another type. A State's read-only
# array is made through a read-only memoryview (`.base`), whose `.obj` is the writable buffer the
# simulator fills; `.data` is a memoryview of the array, `.view` and `.getfield` read its bytes as
# another dtype, numpy's `frombuffer` and `stride_tricks.as_strided` make arrays over any memory, and
# `object_` is numpy's type for arrays of Python object pointers (with a buffer, a forged pointer is
# any object). `.obj` is also an AttributeError's object, whatever raised it. A body or joint called
# `base` (common in robot models) is `base_` in the State.
REFUSED_FOR_MEMORY = frozenset(
    {
        "base",
        "obj",
        "data",
        "view",
        "getfield",
        "frombuffer",
        "from_dlpack",
        "stride_tricks",
        "as_strided",
        "object_",
    }
)
FORBIDDEN_ATTRIBUTES = FORBIDDEN_ATTRIBUTES | REFUSED_FOR_MEMORY
