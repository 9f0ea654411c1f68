"""Method strings: ``FLOW+GENERATOR`` such as ``raft+pervfi``, ``gma+pervfi-vb``, ``dis+splat``."""
from __future__ import annotations

from dataclasses import dataclass

from pervfi.core.errors import UnknownNameError

from . import registry


@dataclass(frozen=True)
class Method:
    """A parsed method: a flow estimator name (or ``module:callable``) and a generator name."""

    flow: str
    generator: str

    @property
    def name(self) -> str:
        return f"{self.flow}+{self.generator}"


def parse_method(text: str) -> Method:
    """Split ``FLOW+GENERATOR`` and check both names; one clear error line otherwise."""
    flow, plus, generator = text.strip().rpartition("+")
    if not plus or not flow or not generator:
        raise UnknownNameError(
            f"method {text!r} is not of the form FLOW+GENERATOR; "
            f"FLOW is one of {', '.join(registry.names('flow'))} or module:callable, "
            f"GENERATOR one of {', '.join(generator_names())}"
        )
    try:
        generator_entry = registry.get_entry(generator, kind="generator")
    except UnknownNameError:
        raise UnknownNameError(
            f"unknown generator {generator!r} in method {text!r}; choose one of: {', '.join(generator_names())}"
        ) from None
    if ":" not in flow:
        try:
            flow = registry.get_entry(flow, kind="flow").name
        except UnknownNameError:
            raise UnknownNameError(
                f"unknown flow estimator {flow!r} in method {text!r}; choose one of: "
                f"{', '.join(registry.names('flow'))}, or module:callable"
            ) from None
    return Method(flow=flow, generator=generator_entry.name)


def generator_names() -> list[str]:
    """Generator names as a method string may spell them (aliases first, e.g. ``pervfi``)."""
    out = []
    for name in registry.names("generator"):
        entry = registry.get_entry(name)
        out.extend([*entry.aliases, name])
    return out
