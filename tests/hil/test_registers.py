"""Register encode/decode: round trips, signs, scales, 32-bit word order, flagged bad values."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from powergrid_hil.registers import CLAMPED, MALFORMED, NOT_AVAILABLE, OK, Register, RegisterMap


@pytest.mark.parametrize("value", [0.0, 0.001, 1.234, -1.234, 32.767, -32.767, -0.5])
def test_signed_16_round_trip(value: float) -> None:
    reg = Register(10, 0.001)
    words, flag = reg.encode(value)
    assert flag == OK and len(words) == 1 and 0 <= words[0] <= 0xFFFF
    reading = reg.decode(words)
    assert reading.ok and reading.value == pytest.approx(value, abs=1e-9)


def test_twos_complement_and_scale() -> None:
    reg = Register(0, 0.001)
    assert reg.encode(-1.234)[0] == [0x10000 - 1234]
    assert reg.decode([0xFFFF]).value == pytest.approx(-0.001)
    assert Register(0, 0.1).encode(12.34)[0] == [123]  # rounded to the resolution
    assert Register(0, 0.1, type="uint16").decode([0x8000]).value == pytest.approx(3276.8)  # unsigned: no sign bit


@pytest.mark.parametrize("order", ["big", "little"])
@pytest.mark.parametrize("value", [100.5, -100.5, 0.0, -0.0001, 214748.3647])
def test_32_bit_round_trip(order: str, value: float) -> None:
    reg = Register(0, 0.0001, type="int32", word_order=order)
    words, flag = reg.encode(value)
    assert flag == OK and len(words) == 2
    assert reg.decode(words).value == pytest.approx(value, abs=1e-9)


def test_32_bit_word_order() -> None:
    big = Register(0, 1.0, type="int32")
    little = Register(0, 1.0, type="int32", word_order="little")
    assert big.encode(0x12345)[0] == [0x0001, 0x2345]
    assert little.encode(0x12345)[0] == [0x2345, 0x0001]
    assert big.encode(-2)[0] == [0xFFFF, 0xFFFE]


def test_encode_out_of_range_is_clamped_and_flagged() -> None:
    reg = Register(0, 0.001)
    words, flag = reg.encode(40.0)  # > 32.767 MW
    assert flag == CLAMPED and reg.decode(words).value == pytest.approx(32.767)
    words, flag = reg.encode(-40.0)
    assert flag == CLAMPED and reg.decode(words).value == pytest.approx(-32.767)
    soc = Register(2, 0.0001, type="uint16", min_value=0.0, max_value=1.0)
    words, flag = soc.encode(1.5)
    assert flag == CLAMPED and soc.decode(words).value == 1.0


@pytest.mark.parametrize("value", [math.nan, math.inf, "bad", None])
def test_encode_non_number_is_not_available(value: object) -> None:
    reg = Register(0, 0.001)
    words, flag = reg.encode(value)  # type: ignore[arg-type]
    assert flag == NOT_AVAILABLE and words == [0x8000]


def test_decode_not_available_keeps_fallback() -> None:
    assert Register(0, 0.001).decode([0x8000], fallback=0.25) == (r := Register(0, 0.001).decode([0x8000], 0.25))
    assert r.value == 0.25 and r.flag == NOT_AVAILABLE and not r.ok
    assert Register(0, 1.0, type="uint16").decode([0xFFFF], fallback=7.0).flag == NOT_AVAILABLE
    assert Register(0, 1.0, type="int32").decode([0x8000, 0x0000], fallback=1.0).flag == NOT_AVAILABLE


@pytest.mark.parametrize("words", [[], [1, 2], [0x10000], [-1], None, ["x"]])
def test_decode_malformed_keeps_fallback(words: object) -> None:
    reading = Register(0, 0.001).decode(words, fallback=0.42)  # type: ignore[arg-type]
    assert reading.flag == MALFORMED and reading.value == 0.42


def test_decode_outside_plausible_range_is_clamped() -> None:
    soc = Register(2, 0.0001, type="uint16", min_value=0.0, max_value=1.0)
    reading = soc.decode([12000])  # 1.2
    assert reading.flag == CLAMPED and reading.value == 1.0
    assert soc.decode([5000]) == (soc.decode([5000]))
    assert soc.decode([5000]).ok and soc.decode([5000]).value == pytest.approx(0.5)


def test_register_validation() -> None:
    with pytest.raises(ValueError):
        Register(70000)
    with pytest.raises(ValueError):
        Register(0, 0.0)
    with pytest.raises(ValueError):
        Register(65535, type="float32")
    with pytest.raises(ValueError, match="unknown type 'int24'"):
        Register(0, type="int24")
    with pytest.raises(ValueError, match="unknown table 'coil'"):
        Register(0, table="coil")
    with pytest.raises(ValueError, match="read-only"):
        Register(0, table="input", access="RW")


def test_register_map_overlap_and_span() -> None:
    default = RegisterMap()
    assert default.span("holding") == (0, 1) and default.span("input") == (0, 3)
    with pytest.raises(ValueError, match="overlaps"):
        RegisterMap(p=Register(0, 0.001, type="int32", table="input"))  # P's second word is Q's register
    wide = RegisterMap(setpoint=Register(100, 0.0001, type="int32", access="RW"),
                       p=Register(10, 0.0001, type="int32", table="input"),
                       q=None, soc=Register(12, 0.0001, type="uint16", table="input"))
    assert wide.span("holding") == (100, 2) and wide.span("input") == (10, 3)


@pytest.mark.parametrize("order", ["big", "little"])
@pytest.mark.parametrize("value", [0.0, 1.5, -1234.5678, 3.0e-3])
def test_float32_round_trip(order: str, value: float) -> None:
    reg = Register(0, 1.0, type="float32", word_order=order)
    words, flag = reg.encode(value)
    assert flag == OK and len(words) == 2
    assert reg.decode(words).value == pytest.approx(value, rel=1e-7)
    assert reg.decode(reg.encode(math.nan)[0]).flag == NOT_AVAILABLE


@pytest.mark.parametrize(("words", "said"), [([0x7FC0, 0], "not a number"), ([0x7F80, 0], "infinite (+inf)"),
                                             ([0xFF80, 0], "infinite (-inf)")])
def test_a_non_finite_float32_says_which(words, said) -> None:
    reading = Register(0, type="float32").decode(words)
    assert reading.flag == NOT_AVAILABLE and reading.detail == f"read 0x{words[0]:04X}0000, {said}"  # ±inf was "not a number"


def test_float32_word_order() -> None:
    # 1.0f is 0x3F800000: high word first by default
    assert Register(0, type="float32").encode(1.0)[0] == [0x3F80, 0x0000]
    assert Register(0, type="float32", word_order="little").encode(1.0)[0] == [0x0000, 0x3F80]


def test_unsigned_32_bit() -> None:
    reg = Register(0, 1.0, type="uint32")
    assert reg.encode(70000)[0] == [0x0001, 0x1170]
    assert reg.decode([0xFFFF, 0xFFFE]).value == 0xFFFFFFFE  # no sign bit
    assert reg.encode(-1)[1] == CLAMPED


def test_yaml_map_entries_replace_the_defaults() -> None:
    m = RegisterMap.from_mapping({"setpoint": {"address": 100, "type": "float32", "word_order": "little",
                                               "units": "MW"},
                                  "p": {"address": 10, "type": "int32", "scale": 0.0001, "table": "holding"},
                                  "soc": None})
    assert m.setpoint == Register(100, 1.0, type="float32", word_order="little", units="MW", access="RW")
    assert m.p.table == "holding" and m.p.words == 2 and m.q == RegisterMap().q and m.soc is None


def test_yaml_units_scale_values_and_limits_to_mw_mvar_and_fractions() -> None:
    m = RegisterMap.from_mapping({"p": {"address": 0, "scale": 10, "units": "W", "min": -5000},
                                  "q": {"address": 1, "units": "kvar"},
                                  "soc": {"address": 2, "scale": 0.1, "units": "%", "max": 90}})
    assert (m.p.scale, m.p.min_value, m.p.units) == (pytest.approx(1e-5), pytest.approx(-5e-3), "MW")
    assert m.p.decode([250]).value == pytest.approx(0.0025)  # 250 counts of 10 W
    assert (m.q.scale, m.q.units) == (pytest.approx(1e-3), "Mvar")
    assert (m.soc.scale, m.soc.max_value, m.soc.units) == (pytest.approx(1e-3), pytest.approx(0.9), "1")
    assert m.soc.decode([500]).value == pytest.approx(0.5)  # 50.0 %


def test_yaml_map_entries_take_numpy_numbers() -> None:
    m = RegisterMap.from_mapping({"p": {"address": np.int64(10), "scale": np.float32(0.5)},
                                  "soc": {"address": np.int16(2), "min": np.float32(0.25), "max": np.int64(1)}})
    assert m.p == Register(10, 0.5, table="input", units="MW") and type(m.p.address) is int
    assert (m.soc.address, m.soc.min_value, m.soc.max_value) == (2, 0.25, 1.0)
    with pytest.raises(ValueError, match=re.escape("registers.p.address: expected an integer register address")):
        RegisterMap.from_mapping({"p": {"address": np.bool_(True)}})


@pytest.mark.parametrize(("raw", "message"), [
    ({"p": {"address": 0, "type": "int24"}}, "registers.p: unknown type 'int24'"),
    ({"q": {"address": 0}}, "registers.q overlaps registers.p at input address 0"),
    ({"setpoint": {"address": 0, "table": "input"}}, "registers.setpoint: the setpoint is written, but input"),
    ({"soc": {"address": 5, "access": "RW"}}, "registers.soc: input register 5 is read-only"),
    ({"power": {"address": 5}}, "registers.power: unknown entry"),
    ({"p": {"address": 5, "colour": "red"}}, "registers.p: unknown key 'colour'"),
    ({"p": None}, "registers.p: required"),
    # these used to be truncated (1.7 -> address 1, true -> 1) or raised without the entry's name
    ({"p": {"address": 1.7}}, "registers.p.address: expected an integer register address, got 1.7"),
    ({"p": {"address": True}}, "registers.p.address: expected an integer register address, got True"),
    ({"soc": {"address": 2, "min": "abc"}}, "registers.soc.min: expected a number, got 'abc'"),
    ({"p": {"address": 5, "max": [1]}}, "registers.p.max: expected a number, got [1]"),
    ({"p": {"address": 5, "scale": "0.5"}}, "registers.p.scale: expected a number, got '0.5'"),
    ({"soc": {"address": 5, "units": "Ah"}}, "registers.soc.units: 'Ah' is not converted (expected one of 1, pu, %)"),
])
def test_bad_yaml_maps_name_the_entry(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RegisterMap.from_mapping(raw)
