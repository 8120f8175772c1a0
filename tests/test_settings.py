from pathlib import Path

from app.settings import Settings, describe


def test_env_overrides_parse_types():
    s = Settings.from_env(
        {
            "MASKSCOPE_MAX_TOKENS": "123",
            "MASKSCOPE_ALLOW_HUB": "false",
            "MASKSCOPE_HOME": "/tmp/x",
            "MASKSCOPE_TOKENIZER_ROOTS": "/a:/b",
        }
    )
    assert s.max_tokens == 123
    assert s.allow_hub is False
    assert s.home == Path("/tmp/x")
    assert s.tokenizer_roots == [Path("/a"), Path("/b")]


def test_every_setting_has_help():
    rows = describe()
    assert rows and all(help_text.strip() for _, _, help_text in rows)
