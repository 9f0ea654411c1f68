"""The model table: every name and alias means one model; a name given twice is an error."""
from pathlib import Path

import pytest

from pervfi.core.errors import RegistryError
from pervfi.models import registry

ENTRY = "  {name}:\n    kind: generator\n    builder: pervfi.models.generators.splat:build_splat\n    aliases: {aliases}\n"


def _table(tmp_path: Path, *entries: tuple[str, list[str]]) -> Path:
    text = "models:\n" + "".join(ENTRY.format(name=name, aliases=aliases) for name, aliases in entries)
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_the_shipped_table_names_each_model_once():
    entries = registry.read_table(Path(registry.__file__).with_name("models.yaml"))
    assert registry.get_entry("PerVFI") is registry.get_entry("v00") and registry.get_entry("pervfi-vb").name == "vb"
    assert set(entries) == set(registry.names())


@pytest.mark.parametrize("entries, message", [
    ([("fast", []), ("fast", [])], "'fast' is given twice (line 6)"),  # PyYAML alone keeps the last
    ([("fast", []), ("slow", ["fast"])], "'fast' names both 'fast' and 'slow'"),
    ([("fast", ["quick"]), ("slow", ["Quick"])], "'quick' names both 'fast' and 'slow'"),
])
def test_a_name_or_alias_given_twice_is_an_error(tmp_path, entries, message):
    path = _table(tmp_path, *entries)
    with pytest.raises(RegistryError) as err:
        registry.read_table(path)
    assert str(err.value) == f"{path}: {message}"


def test_distinct_names_and_aliases_load(tmp_path):
    entries = registry.read_table(_table(tmp_path, ("fast", ["quick", "Quick"]), ("slow", [])))
    assert list(entries) == ["fast", "slow"] and entries["fast"].aliases == ("quick", "Quick")
