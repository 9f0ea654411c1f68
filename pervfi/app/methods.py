"""The methods the demo offers: every flow estimator with every generator the registry knows,
each marked ready, fetched on first use, or unavailable (with the reason)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import is_offline_mode

from pervfi.models import registry
from pervfi.models.checkpoints import checkpoint_path, hub_unreachable

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
    """Every FLOW+GENERATOR pair, generators in registry order, each with its availability.
    When weights are missing, whether they can be downloaded is judged once, as the tool does
    before a download: HF_HUB_OFFLINE, else one quick request to the Hub."""
    folder = Path(checkpoint_dir)
    flows = [registry.get_entry(name) for name in registry.names("flow")]
    generators = [registry.get_entry(name) for name in registry.names("generator")]
    pairs = [(flow, generator, _missing((flow, generator), folder)) for generator in generators for flow in flows]
    blocked = _why_no_download() if any(missing for *_, missing in pairs) else None
    return [_choice(flow, generator, missing, folder, blocked) for flow, generator, missing in pairs]


def default_method(choices: list[MethodChoice]) -> str:
    """The reference method when it is ready to run without a download, else the weight-free one."""
    ready = {choice.name for choice in choices if choice.available and not choice.note}
    return REFERENCE_METHOD if REFERENCE_METHOD in ready else WEIGHT_FREE_METHOD


def _missing(pair: tuple[registry.ModelEntry, registry.ModelEntry], folder: Path) -> list[Path]:
    return [checkpoint_path(entry, folder) for entry in pair
            if entry.checkpoint is not None and not checkpoint_path(entry, folder).is_file()]


def _why_no_download() -> str | None:
    """Why missing weights cannot be fetched now, or None when the Hub answers."""
    if is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    unreachable = hub_unreachable()
    return f"the Hub cannot be reached ({unreachable})" if unreachable else None


def _choice(flow: registry.ModelEntry, generator: registry.ModelEntry, missing: list[Path], checkpoint_dir: Path,
            blocked: str | None) -> MethodChoice:
    name = f"{flow.name}+{(generator.aliases or (generator.name,))[0]}"
    if not missing:
        return MethodChoice(name, True, "")
    files = ", ".join(str(path.relative_to(checkpoint_dir)) for path in missing)
    if blocked:
        return MethodChoice(name, False, f"unavailable: {files} missing and {blocked}")
    return MethodChoice(name, True, f"downloads {files} on first use")
