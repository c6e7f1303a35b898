"""``Module`` and ``Parameter``: PyTorch-style containers of trainable state.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it; ``state_dict`` and
``load_state_dict`` use the dotted names PyTorch would use, so weights move between the two.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._dtype import get_default_dtype
from ..tensor import Tensor, _to_array

_MODULES: weakref.WeakSet[Module] = weakref.WeakSet()

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A tensor that a ``Module`` registers as trainable (``requires_grad=True`` by default).

    >>> import tinyrnn as tr
    >>> p = tr.nn.Parameter(tr.zeros(2))
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=get_default_dtype())
        super().__init__(_to_array(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: holds parameters, buffers and submodules.

    Subclasses set parameters and submodules as attributes in ``__init__`` and define
    ``forward``; calling the module runs ``forward``.

    >>> import tinyrnn as tr
    >>> class Affine(tr.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = tr.nn.Parameter(tr.ones(2))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> m = Affine()
    >>> [name for name, _ in m.named_parameters()]
    ['w']
    >>> m(tr.tensor([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        _MODULES.add(self)

    # ---- registration ----

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called in "
                f"{type(self).__name__}.__init__"
            )
        kind = type(self).__name__
        if name in self._parameters and not (value is None or isinstance(value, Parameter)):
            # as PyTorch: replacing a parameter by a plain value would silently untrain it
            raise TypeError(
                f"cannot assign {type(value).__name__} as parameter {name!r} of {kind} "
                "(nn.Parameter or None expected)"
            )
        if name in self._modules and not (value is None or isinstance(value, Module)):
            raise TypeError(
                f"cannot assign {type(value).__name__} as child module {name!r} of {kind} "
                "(nn.Module or None expected)"
            )
        if name in self._buffers and not (value is None or isinstance(value, Tensor)):
            raise TypeError(
                f"cannot assign {type(value).__name__} as buffer {name!r} of {kind} "
                "(Tensor or None expected)"
            )
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value
            return
        for store in (self._parameters, self._modules, self._buffers):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif value is None and name in ("_parameters", "_modules", "_buffers"):
            raise AttributeError(f"cannot assign None to {name!r}: it is Module bookkeeping")
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_modules", "_buffers"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._modules, self._buffers):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add (or, with None, declare absent) a parameter under ``name``."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Add non-trainable state that ``state_dict`` saves (running statistics, masks)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: cannot register {type(tensor).__name__} as buffer {name!r} "
                "(Tensor or None expected)"
            )
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as the child ``name`` (what ``self.name = module`` does)."""
        setattr(self, name, module)

    # ---- traversal ----

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, with dotted names, depth first (no recursion)."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [
                (f"{name}.{k}" if name else k, m) for k, m in mod._modules.items() if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every submodule, depth first, each once."""
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        """The direct submodules, in registration order."""
        for m in self._modules.values():
            if m is not None:
                yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules with their attribute names."""
        for k, m in self._modules.items():
            if m is not None:
                yield k, m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name, in registration order, depth first; a parameter
        shared by two modules appears once (under its first name). ``recurse=False``: only
        this module's own parameters."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, mod in mods:
            for k, p in mod._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (see ``named_parameters``), for an optimiser."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """Every buffer (non-trainable saved state) with its dotted name."""
        for mname, mod in self.named_modules():
            for k, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mname}.{k}" if mname else k), b

    # ---- modes and grads ----

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and every
        submodule; layers such as ``Dropout`` read ``self.training``. Returns ``self``.

        >>> import tinyrnn as tr
        >>> net = tr.nn.Sequential(tr.nn.Dropout(0.5)).train(False)
        >>> net[0].training
        False
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode (``train(False)``): dropout off. Returns ``self``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros.

        >>> import tinyrnn as tr
        >>> layer = tr.nn.Linear(2, 1)
        >>> layer(tr.ones(1, 2)).sum().backward(); layer.zero_grad()
        >>> layer.weight.grad is None
        True
        """
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data = np.zeros_like(p.grad.data)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient tracking of every parameter on or off (freezing). Returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Cast every parameter and floating buffer to ``dtype`` in place."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad.data = p.grad.data.astype(dtype)
        for _, b in self.named_buffers():
            if b.dtype.kind == "f":
                b.data = b.data.astype(dtype)
        return self

    def double(self) -> Module:
        """Cast parameters and floating buffers to float64 in place. Returns ``self``."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast parameters and floating buffers to float32 in place. Returns ``self``."""
        return self.to(np.float32)

    # ---- state ----

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and buffer as a NumPy array (a copy), under its dotted name."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mname, mod in self.named_modules():
            for store in (mod._parameters, mod._buffers):
                for k, t in store.items():
                    if t is not None:
                        out[f"{mname}.{k}" if mname else k] = t.data.copy()
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into parameters and buffers by name, cast to each one's dtype.

        Everything is validated before anything changes: with ``strict``, a missing or unexpected
        key raises; a shape mismatch always raises. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(
                "load_state_dict: expected a mapping of names to arrays, got "
                f"{type(state_dict).__name__}"
            )
        targets: dict[str, Tensor] = {}
        for mname, mod in self.named_modules():
            for store in (mod._parameters, mod._buffers):
                for k, t in store.items():
                    if t is not None:
                        targets[f"{mname}.{k}" if mname else k] = t
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        errors = []
        if strict and (missing or unexpected):
            if missing:
                errors.append(f"missing key(s): {', '.join(missing)}")
            if unexpected:
                errors.append(f"unexpected key(s): {', '.join(map(str, unexpected))}")
        staged: list[tuple[Tensor, np.ndarray]] = []
        for k, t in targets.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            try:
                arr = np.asarray(v.data if isinstance(v, Tensor) else v)
            except Exception as e:  # noqa: BLE001 - anything unconvertible is reported
                errors.append(f"{k}: cannot convert to an array ({e})")
                continue
            if arr.shape != t.shape:
                errors.append(f"{k}: shape {arr.shape} in the state dict, {t.shape} in the model")
                continue
            if arr.dtype.kind not in "fiub":
                errors.append(f"{k}: dtype {arr.dtype} cannot be loaded into {t.dtype}")
                continue
            staged.append((t, arr.astype(t.dtype, copy=True)))
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(errors)
            )
        for t, arr in staged:
            if t.data.flags.writeable:
                np.copyto(t.data, arr)  # in place, as PyTorch's copy_: views of .data follow
            else:
                t.data = arr
        return IncompatibleKeys(missing, unexpected)

    # ---- calling ----

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it and call the module, not ``forward``."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside this module's ``repr`` parentheses (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for k, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return "\n".join(lines) + ("\n)" if len(lines) > 1 else ")")


def parameter_names() -> dict[int, str]:
    """Map ``id(parameter)`` to its dotted name in the outermost live module that holds it.

    Graph pictures use it to label weights (``lstm.weight_hh_l0``) with no ``params=`` argument.
    """
    modules = list(_MODULES)
    inner = {id(c) for m in modules for c in m._modules.values() if c is not None}
    names: dict[int, str] = {}
    for root in modules:
        if id(root) in inner:
            continue
        for name, p in root.named_parameters():
            names.setdefault(id(p), name)
    return names


class Sequential(Module):
    """Modules applied one after another.

    >>> import tinyrnn as tr
    >>> net = tr.nn.Sequential(tr.nn.Linear(3, 4), tr.nn.Linear(4, 2))
    >>> net(tr.ones(5, 3)).shape
    (5, 2)
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules, registered so their parameters are found.

    >>> import tinyrnn as tr
    >>> layers = tr.nn.ModuleList([tr.nn.Linear(2, 2) for _ in range(3)])
    >>> len(list(layers.parameters()))
    6
    """

    def __init__(self, modules: Any = None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end (named by its position). Returns ``self``."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Any) -> ModuleList:
        """Append every module of an iterable. Returns ``self``."""
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
