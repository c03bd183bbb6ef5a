"""Property answers: Mol-Instructions style numbers."""

from __future__ import annotations

import random

from llamo_plugin.tasks import PROPERTIES, Property, format_property_value
from llamo_plugin.train.build_property import property_records


def test_format() -> None:
    assert format_property_value(-0.2482) == "-0.2482"
    assert format_property_value(0.0829) == "0.0829"
    assert format_property_value(-0.00004) == "0.0000"


def test_three_records_per_molecule() -> None:
    values = {Property.HOMO: -0.2482, Property.LUMO: 0.0171, Property.GAP: 0.2653}
    records = property_records("CCO", values, "train", random.Random(0))
    assert [r.qtype for r in records] == ["homo", "lumo", "gap"]
    assert [r.answer for r in records] == ["-0.2482", "0.0171", "0.2653"]
    for r in records:
        assert r.instruction in PROPERTIES[Property(r.qtype)].instructions
        assert r.task == "property" and r.source == "qm9"
    test = property_records("CCO", values, "test", None)
    assert [r.instruction for r in test] == [PROPERTIES[p].default_instruction for p in Property]
