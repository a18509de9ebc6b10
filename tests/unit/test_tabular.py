"""CSV parsing and typed tables."""

import math

import numpy as np
import pytest

from shared.tabular import InvalidDataset, TabularData, parse_csv


def test_columns_are_typed_from_their_values() -> None:
    data = parse_csv(
        b"age,income,member,city,note\n"
        b"31,52000.5,true,Paris,\n"
        b"45,61000,FALSE,Lyon,\n"
        b",1e3,True, Nice ,\n"
    )

    assert data.columns == {
        "age": [31, 45, None],
        "income": [52000.5, 61000.0, 1000.0],
        "member": [True, False, True],
        "city": ["Paris", "Lyon", "Nice"],
        "note": [None, None, None],
    }
    assert type(data.columns["age"][0]) is int
    assert type(data.columns["income"][1]) is float
    assert data.column_kind("age") == "integer"
    assert data.column_kind("income") == "number"
    assert data.column_kind("member") == "boolean"
    assert data.column_kind("city") == "text"
    assert data.column_kind("note") == "empty"


def test_numeric_strings_mixed_with_words_stay_text() -> None:
    data = parse_csv(b"code\n42\nA7\n")

    assert data.columns["code"] == ["42", "A7"]


def test_rows_and_row_count() -> None:
    data = parse_csv(b"a,b\n1,x\n2,y\n")

    assert data.row_count == 2
    assert data.column_names == ["a", "b"]
    assert list(data.rows()) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_quoted_fields_bom_crlf_and_blank_lines() -> None:
    data = parse_csv(b'\xef\xbb\xbfname,text\r\n\r\nx,"a, b"\r\n"y","line1\nline2"\r\n\r\n')

    assert data.column_names == ["name", "text"]
    assert data.columns["text"] == ["a, b", "line1\nline2"]
    assert data.row_count == 2


def test_integers_beyond_int64_become_floats() -> None:
    data = parse_csv(b"big\n1\n99999999999999999999\n")

    assert data.columns["big"] == [1.0, 1e20]


def test_feature_matrix_is_float_with_nan_for_missing_and_bools_as_0_1() -> None:
    data = parse_csv(b"a,b,c\n1,2.5,true\n,3.5,false\n")

    matrix = data.feature_matrix(["c", "a"])

    assert matrix.dtype == np.float64
    assert matrix.shape == (2, 2)
    assert matrix[0].tolist() == [1.0, 1.0]
    assert matrix[1, 0] == 0.0
    assert math.isnan(matrix[1, 1])


def test_feature_matrix_refuses_text_and_unknown_columns() -> None:
    data = parse_csv(b"a,b\n1,x\n")

    with pytest.raises(InvalidDataset, match="'b' holds text"):
        data.feature_matrix(["a", "b"])
    with pytest.raises(InvalidDataset, match="no column named 'zz'"):
        data.feature_matrix(["zz"])


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(InvalidDataset, match="different lengths"):
        TabularData({"a": [1, 2], "b": [1]})


def test_column_kind_refuses_mixed_and_non_finite_values() -> None:
    data = TabularData({"mixed": [1, "x"], "flag_or_int": [True, 1], "nan": [1.0, math.nan]})

    with pytest.raises(InvalidDataset, match="'mixed' mixes value types: int, str"):
        data.column_kind("mixed")
    with pytest.raises(InvalidDataset, match="mixes value types: bool, int"):
        data.column_kind("flag_or_int")
    with pytest.raises(InvalidDataset, match="non-finite"):
        data.column_kind("nan")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b" \n\r\n", "the file is empty"),
        (b"1,2\n3,4\n", "no header row"),
        (b"a,,c\n1,2,3\n", "column 2 has a blank name"),
        (b"a,b,a\n1,2,3\n", "duplicate column name 'a' \\(columns 1 and 3\\)"),
        (b"a,b\n1,2\n3,4\n5\n", "line 4: expected 2 fields as in the header, found 1"),
        (b"a,b\n1,2,3\n", "line 2: expected 2 fields as in the header, found 3"),
        (b"a,b\n1,\xff\n", "not UTF-8 text: invalid byte 0xff on line 2"),
        (b"a,b\n", "header but no data rows"),
        (b'a,b\n"x"y,1\n', "line 2: malformed CSV"),
        (b"a\n1\n1e999\n", "line 3, column 'a': 1e999 is too large"),
    ],
)
def test_unusable_files_get_specific_messages(data: bytes, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message):
        parse_csv(data)


def test_row_limit() -> None:
    assert parse_csv(b"a\n1\n2\n", max_rows=2).row_count == 2
    with pytest.raises(InvalidDataset, match="too many rows: the limit is 2"):
        parse_csv(b"a\n1\n2\n3\n", max_rows=2)


def test_invalid_dataset_is_a_value_error() -> None:
    assert issubclass(InvalidDataset, ValueError)
