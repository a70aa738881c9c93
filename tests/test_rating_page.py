"""The rating page's server without a browser (Flask's test client): tokens keep raters apart, model text is
escaped, answers are checked and stored at once, pairwise sides are swapped per rater and stored in the
key's terms, hidden repeats come later than their first showing, and self-agreement is computed from them."""

from __future__ import annotations

import re
from html import unescape

import pandas as pd
import pytest

from hiwar.io import write_jsonl
from hiwar.params.rating import RatingParams
from hiwar.rating.answers import AnswerStore, rater_sequence
from hiwar.rating.app import create_app
from hiwar.rating.sheets import export_pairs, export_sheet, page_items
from hiwar.rating.sources import quality, self_agreement
from rating_project import HOSTILE, MODEL_WORDS, replies_frame

CRITERIA = ["fluency", "relevance", "helpfulness"]


def setup(tmp_path, mode="likert", repeat_share=0.0):
    params = RatingParams(seed=0, sample=4, criteria=CRITERIA, scale=5, bootstrap=20, mode=mode,
                          repeat_share=repeat_share)
    replies = replies_frame()
    export = export_pairs if mode == "pairwise" else export_sheet
    _, key = export(replies, CRITERIA, params.sample, params.seed)
    items = page_items(replies, key)
    write_jsonl(tmp_path / "items.jsonl", items)
    store = AnswerStore(tmp_path / "answers.sqlite")
    tokens = {r: store.add_rater(r, sorted(i["item"] for i in items), 0, repeat_share, mode) for r in ("huda", "omar")}
    client = create_app(tmp_path, params).test_client()
    return client, tokens, store, {i["item"]: i for i in items}, key


def test_tokens_keep_raters_apart(tmp_path):
    client, tokens, store, _, _ = setup(tmp_path)
    huda, omar = tokens["huda"], tokens["omar"]
    assert client.post(f"/r/{huda}/1/answer", json={"criterion": "fluency", "value": "5", "seconds": 3}).status_code == 200
    assert client.post(f"/r/{huda}/1/answer", json={"comment": "ملاحظة هدى"}).status_code == 200
    page = client.get(f"/r/{omar}/1").get_data(as_text=True)
    assert "checked" not in page and "ملاحظة هدى" not in page  # Omar sees none of Huda's answers
    assert 'value="5" checked' in client.get(f"/r/{huda}/1").get_data(as_text=True)
    assert store.long()["rater"].tolist() == ["huda"]
    # a guessed or another session's token reaches nothing, and a rater cannot address positions past theirs
    assert client.get("/r/not-a-token/1").status_code == 404
    assert client.post("/r/not-a-token/1/answer", json={"criterion": "fluency", "value": "1"}).status_code == 404
    assert client.get(f"/r/{huda}/999").status_code == 404
    assert client.get(f"/r/{huda}/").headers["Location"].endswith(f"/r/{huda}/1")  # fluency only: still open
    assert store.add_rater("huda", [], 0, 0.0, "likert") == huda  # a known rater keeps their address


def test_answers_are_checked(tmp_path):
    client, tokens, store, _, _ = setup(tmp_path)
    for body in ({"criterion": "fluency", "value": "6"}, {"criterion": "beauty", "value": "3"},
                 {"criterion": "fluency", "value": "3", "seconds": "soon"}):
        assert client.post(f"/r/{tokens['huda']}/1/answer", json=body).status_code == 400
    assert store.long().empty


def test_model_text_is_shown_as_text_and_nothing_names_a_model(tmp_path):
    client, tokens, store, items, _ = setup(tmp_path)
    hostile = next(n for n in range(1, 17) if store.position("huda", n)["item"] in
                   [i for i, v in items.items() if v["reply"] == HOSTILE])
    response = client.get(f"/r/{tokens['huda']}/{hostile}")
    html = response.get_data(as_text=True)
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;&lt;b&gt;" in html
    assert "<script>document" not in html and "<b>" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for n in range(1, 17):
        html = client.get(f"/r/{tokens['huda']}/{n}").get_data(as_text=True).lower()
        assert not [w for w in MODEL_WORDS if w in html]
        assert not re.search(r"R\d{4}", html)  # no item id either: a hidden repeat must not be recognisable


def test_pairwise_sides_are_swapped_per_position_and_stored_in_key_terms(tmp_path):
    client, tokens, store, items, key = setup(tmp_path, mode="pairwise", repeat_share=0.25)
    token = tokens["huda"]
    total = store.count("huda")
    swapped = next(n for n in range(1, total + 1) if store.position("huda", n)["swapped"])
    item = items[store.position("huda", swapped)["item"]]
    html = client.get(f"/r/{token}/{swapped}").get_data(as_text=True)
    shown = [unescape(t) for t in re.findall(r'<bdi class="text" dir="auto">(.*?)</bdi>', html, re.S)[-2:]]
    assert shown == [item["reply_b"], item["reply_a"]]
    client.post(f"/r/{token}/{swapped}/answer", json={"criterion": "fluency", "value": "A"})
    assert store.long()["value"].tolist() == ["B"]  # the first reply shown was the key's B
    assert 'value="A" checked' in client.get(f"/r/{token}/{swapped}").get_data(as_text=True)
    # the repeats: shown later, the other way round
    sequence = [(p["item"], p["showing"], p["swapped"]) for p in (store.position("huda", n) for n in range(1, total + 1))]
    assert total == len(key) + round(0.25 * len(key))
    for at, (name, showing, side) in enumerate(sequence):
        if showing == 1:
            first = sequence.index((name, 0, not side))
            assert at >= first + 3


def test_orders_differ_between_raters_and_are_fixed_per_rater():
    items = [f"R{i:04d}" for i in range(1, 31)]
    huda = rater_sequence(items, "huda", 0, 0.1, "likert")
    assert huda == rater_sequence(items, "huda", 0, 0.1, "likert")
    assert [i for i, s, _ in huda if s == 0] != [i for i, s, _ in rater_sequence(items, "omar", 0, 0.1, "likert") if s == 0]
    assert sorted(i for i, s, _ in huda if s == 0) == items and sum(s for _, s, _ in huda) == 3


def test_self_agreement_and_quality_match_hand_counts():
    rows = pd.DataFrame({
        "rater": "huda", "item": ["R1", "R1", "R2", "R2", "R1", "R1", "R2", "R2"],
        "showing": [0, 0, 0, 0, 1, 1, 1, 1], "criterion": ["f", "r"] * 4,
        "score": [5, 4, 3, 3, 5, 2, 3, 4], "seconds": [10.0, 10.0, 20.0, 20.0, 5.0, 5.0, 7.0, 7.0]})
    # pairs (5,5) (4,2) (3,3) (3,4): 2 of 4 identical, |diff| 0+2+0+1 over 4
    assert self_agreement(rows, "likert") == {"pairs": 4, "identical_share": 0.5, "mean_abs_difference": 0.75}
    params = RatingParams(seed=0, sample=1, criteria=["f", "r"], scale=5, bootstrap=10)
    first = rows[rows["showing"] == 0][["item", "criterion", "score"]]
    result = quality({"huda": first, "omar": first}, rows, params)
    assert result["raters"]["huda"]["seconds_per_item_median"] == 15.0
    assert result["raters"]["omar"] == {"source": "sheet", "items": 2}


def test_gold_items_are_scored(tmp_path):
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"item": ["R1", "R2"], "criterion": ["f", "f"], "expected": ["5", "1"]}).to_csv(gold, index=False)
    params = RatingParams(seed=0, sample=1, criteria=["f"], scale=5, bootstrap=10, gold=str(gold))
    answers = pd.DataFrame({"item": ["R1", "R2", "R3"], "criterion": "f", "score": [5, 2, 3]})
    empty = pd.DataFrame(columns=["rater", "item", "showing", "criterion", "score", "seconds"])
    assert quality({"huda": answers}, empty, params)["raters"]["huda"]["gold"] == {"answers": 2, "as_expected_share": 0.5}


@pytest.mark.parametrize("name", ["", "../x", "a b", "huda;drop"])
def test_rater_names_must_be_plain(tmp_path, name):
    from hiwar.errors import HiwarError

    with pytest.raises(HiwarError, match="letters, digits"):
        AnswerStore(tmp_path / "a.sqlite").add_rater(name, ["R0001"], 0, 0.0, "likert")


def test_commands_and_stage_say_what_is_wrong_in_one_line(tmp_path):
    import socket

    from rating_project import hiwar, make_project, run_stage

    project = make_project(tmp_path / "p", sample=2, mode="pairwise")
    result = hiwar(project, "rate", "serve", "--rater", "huda", "--port", "0")
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: ratings/items.jsonl: not found (run `hiwar rate export` first)"
    assert hiwar(project, "rate", "export").returncode == 0
    first = (project / "ratings/items.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert '"reply_a"' in first and "P0001" in first
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = hiwar(project, "rate", "serve", "--rater", "huda", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2 and "cannot listen on 127.0.0.1:" in result.stderr
    assert not (project / "ratings/answers.sqlite").exists()  # no rater was added by a server that never ran
    # page answers for an item the key does not know (a database kept from another export)
    store = AnswerStore(project / "ratings/answers.sqlite")
    store.add_rater("huda", ["P9999"], 0, 0.0, "pairwise")
    store.save("huda", 1, "fluency", "A", 1.0)
    store.close()
    result = hiwar(project, "rate", "serve", "--rater", "omar", "--port", "0")
    assert result.returncode == 2 and "answers.sqlite: holds answers for item P9999" in result.stderr
    result = run_stage(project)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: ratings/answers.sqlite: item P9999 is not in ratings/key.csv "
                                     "(answers from another export?)")
    assert not (project / "metrics/rating.json").exists()  # nothing half-written
