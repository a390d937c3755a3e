"""SunSpec layouts from pysunspec2's model definitions: positions, scale factors, "not implemented", repeating groups."""

from __future__ import annotations

import math

import pytest
from sunspec2 import device as ss_device

from powergrid_hil.sunspec import (
    BASE_ADDRESS,
    ModelLayout,
    SunSpecError,
    SunSpecMap,
    best_exponent,
    to_bytes,
)


def pysunspec2_offsets(group, prefix: str = "") -> dict[str, int]:
    """Point offsets as pysunspec2's own model parser places them (repeating instances named ``g[i]``)."""
    found = {prefix + name: point.offset for name, point in group.points.items()}
    for name, sub in group.groups.items():
        if isinstance(sub, list):
            for i, instance in enumerate(sub, start=1):
                found.update(pysunspec2_offsets(instance, f"{prefix}{name}[{i}]."))
        else:
            found.update(pysunspec2_offsets(sub, f"{prefix}{name}."))
    return found


@pytest.mark.parametrize(("model_id", "repeats"), [
    (1, {}), (701, {}), (702, {}), (704, {}), (713, {}), (802, {}), (103, {}), (124, {}),
    (160, {"module": 3}),
])
def test_layout_matches_pysunspec2_parser(model_id: int, repeats: dict[str, int]) -> None:
    layout = ModelLayout.build(model_id, repeats=repeats)
    words = SunSpecMap([layout], base=0).blank()[2:2 + layout.length + 2]
    if repeats:  # the count point tells pysunspec2 how many instances follow
        n = layout.points["N"]
        words[n.offset] = repeats["module"]
    parsed = ss_device.Model(model_id=model_id, model_addr=0, model_len=layout.length, data=to_bytes(words))
    assert not parsed.error_info, parsed.error_info
    assert {name: p.offset for name, p in layout.points.items()} == pysunspec2_offsets(parsed)
    assert parsed.len == layout.length + 2  # pysunspec2 counts the id and length registers too


def test_repeating_group_count_from_the_model_length() -> None:
    three = ModelLayout.build(160, repeats={"module": 3})
    inferred = ModelLayout.build(160, length=three.length)
    assert inferred.points == three.points
    assert inferred.points["module[3].DCW"].sf == "DCW_SF"  # a model-level scale factor
    assert ModelLayout.build(160, repeats={"module": 0}).length == three.length - 3 * 20
    with pytest.raises(SunSpecError, match="does not fit whole instances"):
        ModelLayout.build(160, length=three.length + 1)
    with pytest.raises(SunSpecError, match="Model definition not found"):
        ModelLayout.build(9999)


def test_fixed_subgroups_keep_their_names() -> None:
    layout = ModelLayout.build(704)
    assert layout.points["PFWInj.PF"].sf == "PF_SF" and layout.points["PFWInj.PF"].writable
    assert layout.points["WSet"].type == "int32" and layout.points["WSet"].sf == "WSet_SF"
    assert layout.points["ID"].static == 704 and layout.points["L"].static == layout.length == 65


def test_scale_factors_and_not_implemented() -> None:
    w = ModelLayout.build(701).points["W"]  # int16 with W_SF
    words, clamped = w.encode(-123456.0, 2)
    assert words == [(-1235) & 0xFFFF] and not clamped
    assert w.decode(words, 2) == pytest.approx(-123500.0)
    assert w.encode(None)[0] == [0x8000] and w.decode([0x8000]) is None
    assert w.encode(math.nan)[0] == [0x8000]
    assert w.encode(5e6, 2) == ([32767], True)  # clamped, never the "not implemented" pattern
    soc = ModelLayout.build(713).points["SoC"]  # uint16
    assert soc.encode(None)[0] == [0xFFFF] and soc.encode(-1.0, -2) == ([0], True)
    wset = ModelLayout.build(704).points["WSet"]  # int32
    assert wset.encode(None)[0] == [0x8000, 0x0000]
    assert wset.decode(wset.encode(-2_000_000.5, -1)[0], -1) == pytest.approx(-2_000_000.5)
    sn = ModelLayout.build(1).points["SN"]  # string(16)
    assert sn.decode(sn.encode("bess")[0]) == "bess" and sn.encode(None)[0] == [0] * 16
    assert best_exponent("int16", 550_000.0) == 2 and best_exponent("uint16", 100.0) == -2
    assert best_exponent("int32", 550_000.0) == -3


def test_map_scan_reads_what_blank_lays_out() -> None:
    layouts = [ModelLayout.build(1), ModelLayout.build(701), ModelLayout.build(160, repeats={"module": 2})]
    image = SunSpecMap(layouts).blank()

    def read(address: int, count: int) -> list[int]:
        return image[address - BASE_ADDRESS:address - BASE_ADDRESS + count]

    found = SunSpecMap.scan(read)
    assert [m.id for m in found.models] == [1, 701, 160] and found.size == len(image)
    assert found.find(160, "module[2].DCW").address == SunSpecMap(layouts).find(160, "module[2].DCW").address
    w = found.find(701, "W")
    assert found.scale_of(w).point.name == "W_SF" and found.scale_of(found.find(701, "ACType")) is None
    with pytest.raises(KeyError, match="not in the map"):
        found.find(704, "WSet")
    with pytest.raises(SunSpecError, match="no SunS marker"):
        SunSpecMap.scan(lambda a, c: [0] * c)


def test_map_scan_ends_at_an_end_model_without_its_length() -> None:
    # some devices end their map at the end model's id (pysunspec2 reads id and length apart for them): the scan
    # read both at once and got an illegal-address answer at every step (/work/notes/R5s30/end_model_no_length.py)
    layouts = [ModelLayout.build(1), ModelLayout.build(701), ModelLayout.build(704)]
    image = SunSpecMap(layouts).blank()[:-1]

    def read(address: int, count: int) -> list[int]:
        if address - BASE_ADDRESS + count > len(image):
            raise LookupError(f"illegal address {address}+{count}")
        return image[address - BASE_ADDRESS:address - BASE_ADDRESS + count]

    assert [m.id for m in SunSpecMap.scan(read).models] == [1, 701, 704]
