"""The one JSON error shape, checked in one place.

Example: assert_error(client.post("/api/render", json={}), 422, "messages") -> the error object
"""

from __future__ import annotations


def assert_error(response, status: int, *needles: str) -> dict:
    """Check the one JSON error shape and that the message names what to change."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) >= {"status", "code", "message", "field", "setting"}, err
    assert err["status"] == status
    for needle in needles:
        assert needle in err["message"], (needle, err["message"])
    return err
