"""The methods the demo offers: every flow estimator with every generator the registry knows,
each marked ready, fetched on first use, or unavailable (with the reason)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import is_offline_mode

from pervfi.models import registry
from pervfi.models.checkpoints import checkpoint_path

# Needs no weights and runs anywhere: the fallback default.
WEIGHT_FREE_METHOD = "dis+splat"
# The paper's method: the default when its weights are on disk.
REFERENCE_METHOD = "raft+pervfi"


@dataclass(frozen=True)
class MethodChoice:
    """A method string and whether it can run here."""

    name: str
    available: bool
    note: str  # what the user should know: nothing, a download, or why it cannot run

    @property
    def label(self) -> str:
        return f"{self.name} ({self.note})" if self.note else self.name


def method_choices(checkpoint_dir: str | Path) -> list[MethodChoice]:
    """Every FLOW+GENERATOR pair, generators in registry order, each with its availability."""
    flows = [registry.get_entry(name) for name in registry.names("flow")]
    generators = [registry.get_entry(name) for name in registry.names("generator")]
    return [_choice(flow, generator, Path(checkpoint_dir)) for generator in generators for flow in flows]


def default_method(choices: list[MethodChoice]) -> str:
    """The reference method when it is ready to run without a download, else the weight-free one."""
    ready = {choice.name for choice in choices if choice.available and not choice.note}
    return REFERENCE_METHOD if REFERENCE_METHOD in ready else WEIGHT_FREE_METHOD


def _choice(flow: registry.ModelEntry, generator: registry.ModelEntry, checkpoint_dir: Path) -> MethodChoice:
    name = f"{flow.name}+{(generator.aliases or (generator.name,))[0]}"
    missing = [checkpoint_path(entry, checkpoint_dir) for entry in (flow, generator)
               if entry.checkpoint is not None and not checkpoint_path(entry, checkpoint_dir).is_file()]
    if not missing:
        return MethodChoice(name, True, "")
    files = ", ".join(str(path.relative_to(checkpoint_dir)) for path in missing)
    if is_offline_mode():
        return MethodChoice(name, False, f"unavailable: {files} missing and HF_HUB_OFFLINE is set")
    return MethodChoice(name, True, f"downloads {files} on first use")
