from careloop.core.errors import CareloopError, ErrorDetail, all_error_types


def test_every_error_has_a_unique_stable_code_and_an_http_status():
    types = all_error_types()
    codes = [cls.code for cls in types]
    assert len(codes) == len(set(codes))
    assert all(400 <= cls.http_status < 600 for cls in types)


def test_error_details_name_the_place():
    err = CareloopError(
        "Bad file", details=[ErrorDetail("a.csv:3:age", "expected an integer", "x")]
    )
    assert err.as_dict()["details"] == [
        {"location": "a.csv:3:age", "message": "expected an integer", "value": "x"}
    ]
    assert "a.csv:3:age" in str(err)
