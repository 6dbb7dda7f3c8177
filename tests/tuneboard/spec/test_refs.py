from __future__ import annotations

import pytest

from tuneboard.spec import StandardRef


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("vision-baseline", "vision-baseline", None),
        ("vision-baseline@3", "vision-baseline", 3),
        ("a.b_c-1@120", "a.b_c-1", 120),
    ],
)
def test_parse_and_print_round_trip(text: str, name: str, version: int | None) -> None:
    ref = StandardRef.parse(text)
    assert (ref.name, ref.version) == (name, version)
    assert str(ref) == text


@pytest.mark.parametrize(
    "text", ["", "@1", "name@", "name@0", "name@01", "name@x", "name@1@2", "a b", "x" * 201]
)
def test_refuses_what_is_not_a_reference(text: str) -> None:
    with pytest.raises(ValueError, match="not a standard reference"):
        StandardRef.parse(text)
