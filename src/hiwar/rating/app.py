"""The rating page: `hiwar rate serve` (Flask, server-rendered, a little JavaScript in static/rate.js).

The page reads only ratings/items.jsonl (what `hiwar rate export` writes for it: history and replies, no
model names) and the answers database; it never opens the key. Each address carries a rater's token, and
every query is scoped to that rater, so a rater sees and writes only their own answers. Templates are
autoescaped and the Content-Security-Policy allows scripts from this server only, so model text that holds
`<script>` is shown as text and never runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, abort, g, jsonify, redirect, render_template, request, url_for

from hiwar.errors import HiwarError
from hiwar.rating.answers import AnswerStore
from hiwar.rating.sheets import PAIR_CHOICES, check_answer

LABEL = {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"}
CRITERION_LABEL = {"fluency": "الطلاقة", "relevance": "الصلة بالسياق", "helpfulness": "الفائدة",
                   "correctness": "الصحة", "overall": "التقييم العام"}


def read_items(path: Path, mode: str) -> dict[str, dict]:
    """The page's items by id; one clear error if the file is missing or from the other mode."""
    if not path.is_file():
        raise HiwarError(f"{path}: not found (run `hiwar rate export` first)")
    items = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HiwarError(f"{path}: line {number}: not valid JSON ({exc.msg}); export again") from None
        needed = ("reply_a", "reply_b") if mode == "pairwise" else ("reply",)
        if any(k not in item for k in ("item", "history", *needed)):
            raise HiwarError(f"{path}: line {number}: expected item, history and {' and '.join(needed)} "
                             f"(rating.mode is {mode}; export again after changing it)")
        items[item["item"]] = item
    return items


def create_app(ratings_dir: Path, params) -> Flask:
    """The web app over ratings_dir/items.jsonl and ratings_dir/answers.sqlite for the `rating` params."""
    app = Flask(__name__)
    items = read_items(ratings_dir / "items.jsonl", params.mode)
    db_path = ratings_dir / "answers.sqlite"
    choices = [str(s) for s in range(1, params.scale + 1)] if params.mode == "likert" else list(PAIR_CHOICES)

    def store() -> AnswerStore:
        if "store" not in g:
            g.store = AnswerStore(db_path)  # sqlite connections stay in the thread that opened them
        return g.store

    @app.teardown_appcontext
    def close_store(_):
        if "store" in g:
            g.store.close()

    def rater_for(token: str) -> str:
        name = store().rater(token)
        if name is None:
            abort(404)  # the same answer for a wrong token as for a wrong page: nothing to probe
        return name

    def rater_at(token: str, n: int) -> tuple[str, dict]:
        """The rater and their item at position n, or 404."""
        name = rater_for(token)
        position = store().position(name, n)
        if position is None:
            abort(404)
        return name, position

    def save(name: str, n: int, position: dict, criterion: str, value: str, seconds: float) -> None:
        """An answer as the page showed it, stored as the key's sides (a pairwise position may be swapped)."""
        stored = _from_shown(check_answer(value, params.mode, params.scale), position["swapped"])
        store().save(name, n, criterion, str(stored), seconds)

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                                       "connect-src 'self'; form-action 'self'; img-src 'self'")
        response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/r/<token>/")
    def resume(token):
        name = rater_for(token)
        n = store().first_open(name, params.criteria)
        return redirect(url_for("done", token=token) if n is None else url_for("page", token=token, n=n))

    @app.get("/r/<token>/<int:n>")
    def page(token, n):
        name, position = rater_at(token, n)
        item = items[position["item"]]
        if params.mode == "pairwise":
            replies = [item["reply_b"], item["reply_a"]] if position["swapped"] else [item["reply_a"], item["reply_b"]]
        else:
            replies = [item["reply"]]
        shown = {c: _to_shown(v, position["swapped"]) for c, v in position["answers"].items()}
        total = store().count(name)
        return render_template(
            "rate.html", mode=params.mode, token=token, n=n, total=total, history=item["history"],
            replies=replies, criteria=params.criteria, labels=CRITERION_LABEL, roles=LABEL, choices=choices,
            answers=shown, comment=position["comment"], answered=store().answered(name, params.criteria),
            previous=n - 1 if n > 1 else None, following=n + 1 if n < total else None)

    @app.post("/r/<token>/<int:n>/answer")
    def answer(token, n):
        """One answer (criterion and value) or the comment, stored at once; JSON in, JSON out."""
        name, position = rater_at(token, n)
        data = request.get_json(silent=True) or {}
        seconds = data.get("seconds", 0)
        if not isinstance(seconds, (int, float)):
            return jsonify(error="seconds must be a number"), 400
        if "comment" in data:
            store().save_comment(name, n, str(data["comment"])[:4000], seconds)
            return jsonify(saved="comment")
        criterion, value = data.get("criterion"), str(data.get("value", ""))
        if criterion not in params.criteria or value not in choices:
            return jsonify(error=f"expected a criterion of {params.criteria} and a value of {choices}"), 400
        save(name, n, position, criterion, value, seconds)
        return jsonify(saved=criterion, answered=store().answered(name, params.criteria))

    @app.post("/r/<token>/<int:n>")
    def submit(token, n):
        """The same answers from the plain form (a browser without JavaScript), then the next item."""
        name, position = rater_at(token, n)
        for criterion in params.criteria:
            value = request.form.get(criterion, "")
            if value in choices:
                save(name, n, position, criterion, value, 0)
        if "comment" in request.form:
            store().save_comment(name, n, request.form["comment"][:4000], 0)
        following = n + 1 if n < store().count(name) else None
        return redirect(url_for("page", token=token, n=following) if following else url_for("done", token=token))

    @app.get("/r/<token>/done")
    def done(token):
        name = rater_for(token)
        total = store().count(name)
        return render_template("done.html", token=token, total=total,
                               answered=store().answered(name, params.criteria),
                               first_open=store().first_open(name, params.criteria))

    return app


def _to_shown(value, swapped: bool):
    """A stored pairwise answer (key's sides) as the page shows it (sides swapped for this position)."""
    return {"A": "B", "B": "A"}.get(value, value) if swapped else value


def _from_shown(value, swapped: bool):
    return _to_shown(value, swapped)  # swapping is its own inverse
