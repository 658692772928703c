"""The run directory's data-only encoding: every cell kind round-trips, nothing else is read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepstone import codec

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary()
)
cells = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(scalars))


@given(cells)
def test_cells_round_trip_and_encode_the_same_way_twice(cell):
    blob = codec.pack(cell)
    assert codec.unpack(blob) == cell and hash(codec.unpack(blob)) == hash(cell)
    assert codec.pack(codec.unpack(blob)) == blob


def test_numpy_values_come_back_as_equal_plain_or_numeric_values():
    assert codec.unpack(codec.pack((np.int64(3), np.float32(0.5), np.bool_(True)))) == (3, 0.5, 1)
    state = {"qpos": np.arange(6, dtype=np.float64).reshape(2, 3), "steps": 7}
    back = codec.unpack(codec.pack(state))
    assert back["steps"] == 7 and np.array_equal(back["qpos"], state["qpos"])
    assert back["qpos"].dtype == np.float64


@pytest.mark.parametrize("value", [object(), [1, {2}], np.array(["a"], dtype=object)])
def test_what_is_not_data_is_refused_with_its_type(value):
    with pytest.raises(codec.Unencodable, match="cannot store a value of type"):
        codec.pack(value)


def test_a_pickle_is_not_read():
    with pytest.raises(ValueError):
        codec.unpack(pickle.dumps(("cell", 1)))
    with pytest.raises(ValueError):
        codec.unpack(b'{"a": ["|O", [1], "AAAA"]}')  # an object array: refused, not built
