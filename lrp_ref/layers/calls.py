"""Per-call state: the path of a layer in the call that runs it, and what its forward kept.

One layer object can sit in two networks, at two nodes of one Graph (a torch
module called twice), and be explained from two threads at once. So neither its
path nor what its forward remembers for ``relevance`` and ``backward`` (its
input, its output shape, a linear layer's ``z``, ...) is a property of the
object:

* **the path belongs to the network**: a container names each child as it runs
  it (``with inside(name): child.forward(a)``), so the same object has one path
  per position, ``"3"``, ``"4.body.0"``, ``"relu:2"``;
* **the kept arrays belong to the call**: a :class:`Trace`, which
  ``Network.explain`` and ``Network.gradient`` make afresh for every call, holds
  one slot per path, ``{path: {"input": a, "output_shape": ..., "z": ...}}``.
  A slot holds references to the forward's arrays, never copies.

The current call is a context variable, ``(trace, path)``, which every thread
(and every asyncio task) has for itself:

* inside a network's call: that call's trace and the path of the running layer;
* a layer used on its own (``layer.forward(a)`` then ``layer.relevance(R, rule)``
  or ``layer.backward(g)``, the teaching API): no trace; the layer keeps its
  state on itself, in one slot of its own. A container used on its own runs in a
  Trace of its own, which it keeps as its ``trace`` for the ``backward`` and
  ``relevance`` that follow.

A layer declares every attribute its forward keeps as a :class:`Kept`
(``_input = Kept()``); reading and assigning that attribute reads and writes the
current call's slot, so the layer code itself reads like ``self._input``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class Trace:
    """What the layers' forwards kept in one call, one slot per layer path.

    ``trace[path]`` is a read-only view of the slot of the layer at ``path``
    (keys without the attribute's leading underscore: ``"input"``,
    ``"output_shape"``, ``"z"``, ...).

    ``replaces``, the trace of a finished earlier call, is released slot by slot
    as this call's layers first write theirs: the memory of one call is handed
    to the next layer by layer, as when the state lived on the layer objects
    (freeing a whole trace at once lets the allocator return its pages to the
    system, and the next call pays to touch them again: ~40% of a small CNN's
    explanation). Nothing of ``replaces`` is ever read.
    """

    def __init__(self, replaces: Trace | None = None) -> None:
        self._slots: dict[str, dict[str, Any]] = {}
        self._replaces = replaces

    def slot(self, path: str) -> dict[str, Any]:
        """The slot of ``path``, created empty on first use."""
        slot = self._slots.get(path)
        if slot is None:
            slot = self._slots[path] = {}
            if self._replaces is not None:
                self._replaces._slots.pop(path, None)
        return slot

    def finish(self) -> Trace:
        """Release what is left of the trace it replaces; returns itself."""
        if self._replaces is not None:
            self._replaces._slots.clear()
            self._replaces = None
        return self

    def __getitem__(self, path: str) -> Mapping[str, Any]:
        if path not in self._slots:
            raise KeyError(f"no layer at path {path!r} ran in this trace; paths are "
                           f"{list(self._slots)}")
        return MappingProxyType(self._slots[path])

    def __contains__(self, path: object) -> bool:
        return path in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __repr__(self) -> str:
        return f"Trace({list(self._slots)})"


@dataclass(frozen=True)
class Call:
    """The current call: its trace (None for a layer used on its own) and the layer's path."""

    trace: Trace | None
    path: str


#: Outside any call: no trace, no path.
OUTSIDE = Call(None, "")
_CURRENT: ContextVar[Call | None] = ContextVar("lrp_ref_call", default=None)


def current() -> Call:
    """The call the running code belongs to (:data:`OUTSIDE` when none)."""
    return _CURRENT.get() or OUTSIDE


def join(path: str, name: str) -> str:
    """The path of child ``name`` of the layer at ``path``: ``"4.body"``, ``"body"`` at the top."""
    return f"{path}.{name}" if path else name


class _entered:
    """``with _entered(call):`` runs the block in ``call`` (a plain class: it runs per layer)."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def __enter__(self) -> None:
        self.token = _CURRENT.set(self.call)

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self.token)


def inside(name: str) -> Any:
    """Run a container's child ``name``: same trace, path ``join(path, name)``."""
    call = current()
    return _entered(Call(call.trace, join(call.path, name)))


def at(path: str) -> Any:
    """Run the layer at ``path`` (from the top of the current call), same trace."""
    return _entered(Call(current().trace, path))


def tracing(trace: Trace) -> Any:
    """Run a whole call in ``trace``, the network at the top at path ``""``."""
    return _entered(Call(trace, ""))


def slot_of(layer: Any) -> dict[str, Any]:
    """The slot ``layer`` keeps its state in for the current call."""
    call = current()
    if call.trace is not None:
        return call.trace.slot(call.path)
    own = layer.__dict__.get("_own_slot")
    if own is None:                         # a layer used on its own keeps its state on itself
        own = layer.__dict__["_own_slot"] = {}
    return own


#: The attributes that do live on the object and that calls (of other threads too) set:
#: the parameter gradients of the last backward, which an optimiser reads there
#: (``LinearLayer``, ``LSTM``, ``Embedding``), a network's traces (``Container.trace``,
#: ``Network._finished``) and the slot of the layer used on its own.
OBJECT_ATTRIBUTES = frozenset({"_last_backward", "_parameter_gradients", "trace", "_finished",
                               "_own_slot"})


def own_attributes(layer: Any) -> dict[str, Any] | None:
    """Inside a call, a copy of ``layer``'s own attributes, for :func:`check_own_attributes`."""
    return None if current().trace is None else dict(vars(layer))


def check_own_attributes(layer: Any, before: dict[str, Any] | None) -> None:
    """Raise when a forward inside a call set an attribute on the layer object itself.

    Such an attribute would be shared by every call of the object (other threads,
    other nodes): what a forward keeps must be declared ``name = Kept()``.
    """
    if before is None:
        return
    changed = [name for name, value in vars(layer).items()
               if before.get(name, before) is not value and name not in OBJECT_ATTRIBUTES]
    if changed:
        raise AttributeError(
            f"{type(layer).__name__}.forward set {', '.join(changed)} on the layer object; what "
            f"a forward keeps belongs to the call: declare it in the class body as "
            f"`{changed[0]} = Kept()` (lrp_ref.layers.calls)")


class Kept:
    """A layer attribute that forward sets for relevance and backward: kept per call.

    ``_z = Kept()`` in a class body makes ``self._z`` read and write the slot of the
    current call (:func:`slot_of`) under the key ``"z"``; ``default`` before a
    forward.
    """

    def __init__(self, default: Any = None) -> None:
        self.default = default

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.key = attribute.lstrip("_")

    def __get__(self, layer: Any, owner: type) -> Any:
        if layer is None:
            return self
        return slot_of(layer).get(self.key, self.default)

    def __set__(self, layer: Any, value: Any) -> None:
        slot_of(layer)[self.key] = value


__all__ = ["Call", "Kept", "Trace", "at", "check_own_attributes", "current", "inside", "join",
           "own_attributes", "slot_of", "tracing"]
