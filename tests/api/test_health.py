from app import __version__


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__}


def test_unknown_route_has_error_shape(client):
    from tests.helpers.errors import assert_error

    assert_error(client.get("/api/nope"), 404)
