import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siliconomics.errors import SiliconomicsError
from siliconomics.units import dtype_bytes, fmt_si, fmt_time, parse_positive, parse_quantity


def test_parse_binary_and_decimal():
    assert parse_quantity("80 GiB", "bytes") == 80 * 2**30
    assert parse_quantity("80GB", "bytes") == 80e9
    assert parse_quantity("3.35 TB/s", "bytes_per_s") == 3.35e12
    assert parse_quantity("989.4 TFLOP/s", "flops_per_s") == pytest.approx(989.4e12)
    assert parse_quantity("1978.9 TOP/s", "flops_per_s") == pytest.approx(1978.9e12)
    assert parse_quantity("50ms", "seconds") == pytest.approx(0.05)
    assert parse_quantity("2s", "seconds") == 2.0
    assert parse_quantity("700 W", "watts") == 700.0
    assert parse_quantity("1.83 GHz", "hertz") == pytest.approx(1.83e9)
    assert parse_quantity("1T", "count") == 1e12
    assert parse_quantity(12.5, "bytes") == 12.5


def test_parse_rejects_wrong_dimension_and_garbage():
    with pytest.raises(SiliconomicsError, match="not a unit of bytes"):
        parse_quantity("3 TB/s", "bytes")
    with pytest.raises(SiliconomicsError, match="cannot read"):
        parse_quantity("fast", "seconds", what="--tpot")
    with pytest.raises(SiliconomicsError, match="--ttft must be a positive"):
        parse_positive("-1s", "seconds", what="--ttft")


def test_dtype_bytes():
    assert dtype_bytes("bf16") == 2 and dtype_bytes("fp8") == 1 and dtype_bytes("int4") == 0.5
    with pytest.raises(SiliconomicsError, match="allowed"):
        dtype_bytes("fp7")


def test_format():
    assert fmt_si(3.35e12, "B/s") == "3.35 TB/s"
    assert fmt_si(80 * 2**30, "B", binary=True) == "80 GiB"
    assert fmt_time(0.0123) == "12.3 ms"
    assert fmt_time(float("nan")) == "n/a"


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False))
def test_roundtrip_seconds(x):
    assert math.isclose(parse_quantity(f"{x}ms", "seconds"), x * 1e-3, rel_tol=1e-12)
