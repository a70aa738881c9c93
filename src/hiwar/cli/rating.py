"""`hiwar rate export|import|serve`: blinded human rating, by sheet or on the rating page."""

from __future__ import annotations

import sys

import click

from hiwar.cli import main
from hiwar.errors import HiwarError


def _ratings_folder(ctx, param, value):
    """--dir, or the project's ratings folder, as a path from here."""
    if value is not None:
        return value
    import os

    from hiwar.paths import project_path

    return os.path.relpath(project_path("ratings"))


@main.group()
def rate():
    """Blinded human evaluation: export sheets, import filled ones, or rate on a local page (see ratings/README.md)."""


@rate.command("export")
@click.option("--dir", "out_dir", default=None, type=click.Path(file_okay=False), callback=_ratings_folder,
              help="The ratings folder. Default: dvc.yaml's paths.ratings.")
def rate_export(out_dir):
    """Write a blinded rating sheet (sheet.csv), the same items for the rating page (items.jsonl) and their key
    (key.csv) from the evaluate stage's replies; rating.mode chooses single replies or pairs."""
    from pathlib import Path

    from hiwar.io import atomic_path, read_parquet, write_jsonl
    from hiwar.params import load_section
    from hiwar.paths import project_path
    from hiwar.rating.sheets import export_pairs, export_sheet, page_items

    params = load_section("rating")
    replies = read_parquet(project_path("replies"), ["model", "kind", "turn", "history", "reply"])
    export = export_pairs if params.mode == "pairwise" else export_sheet
    sheet, key = export(replies, params.criteria, params.sample, params.seed)
    for name, frame in (("sheet.csv", sheet), ("key.csv", key)):
        with atomic_path(Path(out_dir) / name) as tmp:
            frame.to_csv(tmp, index=False)
    # The same items for the rating page (`hiwar rate serve`), blinded like the sheet.
    write_jsonl(Path(out_dir) / "items.jsonl", page_items(replies, key))
    what, answers = ("pairs of replies", "A, B or tie") if params.mode == "pairwise" else ("replies", f"1-{params.scale}")
    click.echo(f"{out_dir}/sheet.csv: {len(sheet)} {what} to rate on {', '.join(params.criteria)} ({answers}), "
               f"{out_dir}/items.jsonl for `hiwar rate serve`; the key is in {out_dir}/key.csv")


@rate.command("import")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False))
@click.option("--rater", required=True, help="A short name for the rater (becomes filled/NAME.csv).")
@click.option("--dir", "out_dir", default=None, type=click.Path(file_okay=False), callback=_ratings_folder,
              help="The ratings folder. Default: dvc.yaml's paths.ratings.")
def rate_import(sheet, rater, out_dir):
    """Check a filled sheet against the key and store it for the `ratings` stage."""
    import shutil
    from pathlib import Path

    import pandas as pd

    from hiwar.params import load_section
    from hiwar.rating.sheets import read_filled

    params = load_section("rating")
    key_path = Path(out_dir) / "key.csv"
    if not key_path.is_file():
        raise HiwarError(f"{key_path}: not found (run `hiwar rate export` first)")
    scores = read_filled(Path(sheet), pd.read_csv(key_path, dtype={"item": str}), params.criteria, params.scale,
                         params.mode)
    target = Path(out_dir) / "filled" / f"{rater}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sheet, target)
    click.echo(f"{target}: {len(scores)} scores from {rater}")


@rate.command("serve")
@click.option("--rater", "raters", required=True, multiple=True,
              help="A rater's short name (letters, digits, - and _); repeat for several raters.")
@click.option("--host", default=None, help="Address to listen on. Default: rating.host (127.0.0.1, this machine only).")
@click.option("--port", default=None, type=int, help="Default: rating.port; 0 picks a free port.")
@click.option("--dir", "out_dir", default=None, type=click.Path(file_okay=False), callback=_ratings_folder,
              help="The ratings folder. Default: dvc.yaml's paths.ratings.")
def rate_serve(raters, host, port, out_dir):
    """Serve the rating page and print one private address per rater.

    Raters see one blinded item at a time (the conversation so far and the reply, or two replies in
    pairwise mode), right to left, and answer with the mouse or the keyboard (1-5, Enter or the left arrow
    for next, the right arrow for back). Every answer is stored at once in DIR/answers.sqlite; a rater who
    comes back to the same address continues where they stopped. Anyone with a rater's address can rate
    as that rater: send each address only to its rater. Needs `hiwar rate export` first (DIR/items.jsonl).
    """
    from pathlib import Path

    from werkzeug.serving import make_server

    from hiwar.rating.answers import AnswerStore
    from hiwar.rating.app import create_app, read_items
    from hiwar.params import load_section

    params = load_section("rating")
    ratings = Path(out_dir)
    items = sorted(read_items(ratings / "items.jsonl", params.mode))
    host, port = host or params.host, params.port if port is None else port
    try:
        server = make_server(host, port, create_app(ratings, params), threaded=True)
    except (OSError, SystemExit):  # werkzeug exits by itself when the port is taken
        raise HiwarError(f"cannot listen on {host}:{port} (in use, or not an address of this machine); "
                         "pass --port (0 picks a free one) or --host") from None
    store = AnswerStore(ratings / "answers.sqlite")  # raters are added only once the page can be served
    tokens = {name: store.add_rater(name, items, params.seed, params.repeat_share, params.mode) for name in raters}
    stale = store.unknown_items(set(items))
    store.close()
    if stale:
        raise HiwarError(f"{ratings / 'answers.sqlite'}: holds answers for item {stale[0]}, which is not in "
                         f"{ratings / 'items.jsonl'} (exported again?); move the old database aside")
    shown_host = server.host if ":" not in server.host else f"[{server.host}]"
    click.echo(f"rating page for {len(items)} items ({params.mode}); answers in {ratings / 'answers.sqlite'}")
    for name, token in tokens.items():
        click.echo(f"{name}: http://{shown_host}:{server.port}/r/{token}/")
    click.echo("Ctrl-C stops the server; every answer given so far is already saved.")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
