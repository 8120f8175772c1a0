"""The /inspect page: upload, poll until done, summary, drill into a row, downloads."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.helpers.datasets import CHAT, tokenized_row

HX = {"HX-Request": "true"}
FORM = {
    "v": "1",
    "tokenizer": "qwen3",
    "dialect": "chatml",
    "train_on": "assistant",
    "train_on_eot": "on",
}


def upload(client, rows, headers=HX, **form):
    data = ("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n").encode()
    return client.post(
        "/inspect/runs",
        files={"file": ("d.jsonl", data)},
        data={**FORM, **form},
        headers=headers,
        follow_redirects=False,
    )


def wait_done(client, run_id: str) -> str:
    for _ in range(200):
        body = client.get(f"/inspect/runs/{run_id}", headers=HX).text
        if "Summary" in body or "Inspection failed" in body:
            return body
        assert 'hx-trigger="load delay:500ms"' in body  # still polling
        time.sleep(0.05)
    raise AssertionError("inspection did not finish")


@pytest.fixture()
def finished(client):
    response = upload(client, [{"messages": CHAT}, "{bad", tokenized_row("shifted")])
    assert response.status_code == 200, response.text
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    return run_id, wait_done(client, run_id)


def test_page_has_the_form(client):
    body = client.get("/inspect").text
    assert 'hx-encoding="multipart/form-data"' in body and 'name="file"' in body
    assert "/static/css/inspect.css" in body


def test_summary_and_rows(finished):
    _, body = finished
    assert '<b data-stat="rows">3</b>' in body
    assert '<b data-stat="bad_rows">1</b>' in body
    assert "labels-shifted" in body and "not valid JSON" in body


def test_drill_into_a_row_shows_chips_and_findings(client, finished):
    run_id, _ = finished
    body = client.get(f"/inspect/runs/{run_id}/rows/3", headers=HX).text
    assert "<h2>Line 3</h2>" in body and "data-tokens" in body
    assert 'class="a t' in body  # trained assistant chips
    assert "labels-shifted" in body


def test_drilled_shifted_row_chips_carry_the_rows_own_labels(client, finished):
    """A shifted row's trained label is the next token's id: the chips must say so (data-l),
    since the tooltip otherwise shows label = id, which is exactly what the row does not do."""
    run_id, _ = finished
    row = tokenized_row("shifted")
    body = client.get(f"/inspect/runs/{run_id}/rows/3", headers=HX).text
    chips = re.findall(r'<span class="([^"]*)" data-id="(\d+)"((?: data-[a-z]+="[^"]*")*)>', body)
    assert [int(i) for _, i, _ in chips] == row["input_ids"]
    shown = []
    for classes, tid, attrs in chips:
        own = re.search(r'data-l="(-?\d+)"', attrs)
        shown.append(int(own.group(1)) if own else int(tid) if " t" in classes else -100)
    assert shown == row["labels"]
    pairs = zip(row["input_ids"], row["labels"], strict=True)
    assert any(label not in (-100, tid) for tid, label in pairs)


def test_drill_into_unreadable_line_is_422(client, finished):
    run_id, _ = finished
    response = client.get(f"/inspect/runs/{run_id}/rows/2", headers=HX)
    assert response.status_code == 422 and "not valid JSON" in response.text


def test_processed_download(client, finished):
    run_id, _ = finished
    lines = client.get(f"/inspect/runs/{run_id}/processed.jsonl").text.splitlines()
    assert len(lines) == 2 and set(json.loads(lines[0])) == {
        "input_ids",
        "labels",
        "attention_mask",
        "line",
        "row",
    }
    # Source line and row index: the unreadable line 2 is skipped, the rows still map back.
    assert [(json.loads(x)["line"], json.loads(x)["row"]) for x in lines] == [(1, 0), (3, 2)]


def test_generation_template_download(client):
    response = upload(client, [{"messages": CHAT}], tokenizer="smollm2", dialect="tokenizer")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    wait_done(client, run_id)
    template = client.get(f"/inspect/runs/{run_id}/template.jinja")
    assert template.status_code == 200 and "{% generation %}" in template.text


def test_without_javascript_redirects_to_the_run(client):
    response = upload(client, [{"messages": CHAT}], headers={})
    assert response.status_code == 303
    assert re.fullmatch(r"/inspect\?run=[0-9a-f]{16}", response.headers["location"])
    assert client.get(response.headers["location"]).status_code == 200


@pytest.mark.parametrize(
    "form, text", [({"dialect": "nope"}, "Unknown dialect"), ({"max_length": "x"}, "whole number")]
)
def test_bad_form_gives_the_error_fragment(client, form, text):
    response = upload(client, [{"messages": CHAT}], **form)
    assert response.status_code == 422 and text in response.text
    assert 'role="alert"' in response.text


def test_unknown_run_is_404(client):
    assert client.get("/inspect/runs/0000000000000000", headers=HX).status_code == 404


def test_store_bounds_uploads_and_clears_stale_files(tmp_path):
    import io as _io

    from app.inspect.runs import store_for
    from app.service.inspect import prepare
    from app.settings import Settings

    (tmp_path / "old.jsonl").write_text("{}\n")
    store = store_for(tmp_path, max_runs=2)
    assert not (tmp_path / "old.jsonl").exists()
    options = prepare(Settings.from_env(), tokenizer="qwen3", dialect="chatml")
    runs = []
    for _ in range(3):  # one after another: at most max_runs may wait or run at once
        run = store.start(_io.BytesIO(json.dumps({"messages": CHAT}).encode()), options)
        runs.append(run)
        for _ in range(200):
            if run.done:
                break
            time.sleep(0.05)
    store.start(_io.BytesIO(b"{}\n"), options)
    assert len(store.runs) == 2
    assert not runs[0].path.exists() and not runs[1].path.exists() and runs[2].path.exists()


def test_upload_that_is_not_what_its_name_says_is_refused_at_once(client):
    response = client.post(
        "/inspect/runs",
        files={"file": ("rows.parquet", b'{"messages": []}\n')},
        data=FORM,
        headers=HX,
    )
    assert response.status_code == 422 and "is not a Parquet file" in response.text


def test_run_keeps_its_settings_in_the_form_the_summary_and_the_url(client):
    response = upload(client, [{"messages": CHAT}], dialect="tokenizer", max_length="77")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    assert response.headers["HX-Push-Url"] == f"/inspect?run={run_id}"
    body = wait_done(client, run_id)
    assert '<code data-setting="dialect">tokenizer</code>' in body
    assert '<code data-setting="max_length">77</code>' in body
    page = client.get(f"/inspect?run={run_id}").text
    assert '<option value="tokenizer" selected>' in page
    assert re.search(r'name="max_length"[^>]*value="77"', page)


def test_preference_row_drills_into_both_answers_side_by_side(client):
    answer = {"role": "assistant", "content": "Paris."}
    wrong = {"role": "assistant", "content": "Lyon."}
    response = upload(client, [{"prompt": CHAT[:1], "chosen": [answer], "rejected": [wrong]}])
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    wait_done(client, run_id)
    body = client.get(f"/inspect/runs/{run_id}/rows/1", headers=HX).text
    assert 'class="pair"' in body
    assert "<h3>chosen</h3>" in body and "<h3>rejected</h3>" in body
    assert body.count("data-tokens") == 2
    chosen, rejected = body.split("<h3>rejected</h3>")
    assert "Paris" in chosen and "Paris" not in rejected


def noisy_rows():
    """SmolLM2 under its own template: pad-is-eos (info) and default-system-injected (warning)
    on every row, and three real errors (nothing trained) at the end of the file."""
    good = [{"messages": CHAT} for _ in range(30)]
    bad = [{"messages": CHAT[:1]} for _ in range(3)]
    return good + bad


def test_real_errors_are_on_top_and_info_is_hidden(client):
    response = upload(client, noisy_rows(), tokenizer="smollm2", dialect="tokenizer")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    lines = [int(n) for n in re.findall(r'/inspect/runs/[0-9a-f]{16}/rows/(\d+)"', body)[::2]]
    assert lines[:3] == [31, 32, 33]
    errors = client.get(f"/inspect/runs/{run_id}?severity=error", headers=HX).text
    listed = re.findall(r'/rows/(\d+)" hx-get', errors)
    assert listed == ["31", "32", "33"] and "30 listed row(s) hidden" in errors
    assert "pad-is-eos</span>" not in body  # info chips hidden by default
    everything = client.get(f"/inspect/runs/{run_id}?severity=info&sort=line", headers=HX).text
    assert "pad-is-eos</span>" in everything
    assert re.findall(r'/rows/(\d+)" hx-get', everything)[0] == "1"


def test_clicking_a_code_in_the_summary_lists_its_rows(client):
    response = upload(client, noisy_rows(), tokenizer="smollm2", dialect="tokenizer")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    link = re.search(r'hx-get="(/inspect/runs/[0-9a-f]{16}\?code=no-trained-tokens)"', body)
    assert link, body
    only = client.get(link.group(1), headers=HX).text
    assert re.findall(r'/rows/(\d+)" hx-get', only) == ["31", "32", "33"]
    assert "default-system-injected</span>" not in only
    assert f'hx-push-url="/inspect?run={run_id}&amp;code=no-trained-tokens"' in body
    page = client.get(f"/inspect?run={run_id}&code=no-trained-tokens")
    assert page.status_code == 200 and "only <code>no-trained-tokens</code>" in page.text


def test_bad_listing_values_are_422(client):
    response = upload(client, [{"messages": CHAT}])
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    wait_done(client, run_id)
    assert client.get(f"/inspect/runs/{run_id}?sort=size", headers=HX).status_code == 422
    assert client.get(f"/inspect/runs/{run_id}?severity=fatal", headers=HX).status_code == 422


def test_the_summary_draws_the_plots_as_svg(client):
    response = upload(client, noisy_rows(), max_length="40")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    assert 'aria-label="tokens per row"' in body and "<rect x=" in body
    assert re.search(r"<title>[\d,–]+ tokens: [\d,]+ rows</title>", body)
    assert "max_length 40" in body and 'data-plot="rows_per_pack"' in body


def test_fine_tune_on_these_rows_opens_the_job_form_with_them(client):
    rows = [{"messages": CHAT}, "{bad", {"prompt": CHAT[:1], "completion": CHAT[1:]}]
    response = upload(client, rows, dialect="chatml", max_length="128")
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    assert f'href="/jobs?inspection={run_id}"' in body
    page = client.get(f"/jobs?inspection={run_id}").text
    presets = json.loads(re.search(r'id="job-presets">(.*?)</script>', page, re.S).group(1))
    first = presets[0]
    assert first["name"] == "inspection" and "2 conversations" in first["label"]
    spec = first["spec"]
    assert (spec["dialect"], spec["train_on"], spec["max_length"]) == ("chatml", "assistant", 128)
    assert spec["tokenizer"] == "qwen3"
    assert [m["content"] for m in spec["data"]["conversations"][0]["messages"]] == [
        m["content"] for m in CHAT
    ]
    from app.train.data import parse_conversations
    from app.train.spec import JobSpec

    JobSpec.model_validate(spec)  # the form submits it as it is
    assert len(parse_conversations(spec["data"]["conversations"])) == 2
    assert client.get("/jobs?inspection=0000000000000000").status_code == 200  # no preset


def test_a_parquet_upload_drills_into_its_rows(client):
    import io as _io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _io.BytesIO()
    rows = [{"messages": CHAT}, {"messages": CHAT[:1]}, {"messages": CHAT}]
    pq.write_table(pa.Table.from_pylist(rows), sink)
    response = client.post(
        "/inspect/runs", files={"file": ("rows.parquet", sink.getvalue())}, data=FORM, headers=HX
    )
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    assert "no-trained-tokens" in body
    detail = client.get(f"/inspect/runs/{run_id}/rows/2", headers=HX).text
    assert "<h2>Line 2</h2>" in detail and "no-trained-tokens" in detail


def test_the_summary_names_the_row_shapes_and_kto_labels(client):
    rows = [
        {"prompt": CHAT[:1], "completion": CHAT[1:], "label": True},
        {"prompt": CHAT[:1], "completion": CHAT[1:], "label": False},
        {"messages": CHAT},
    ]
    response = upload(client, rows)
    run_id = re.search(r"/inspect/runs/([0-9a-f]{16})", response.text).group(1)
    body = wait_done(client, run_id)
    assert "2 kto, 1 conversation" in body
    assert "(KTO: 1 desirable, 1 undesirable)" in body
