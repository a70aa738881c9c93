"""`hiwar report`, `compare`, `diff`, `pull`, `publish`, `verify`: read, compare, share and check results."""

from __future__ import annotations

import click

from hiwar.cli import main, remote_option


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


@main.command("verify")
@click.argument("stages", nargs=-1)
@click.option("--rev", default="HEAD", show_default=True, help="The committed revision to rebuild and check.")
@click.option("--tolerant", is_flag=True, help="Pass when outputs differ but every metric lies within the "
              "tolerance configs/verify.yaml states for it (for CPUs outside the guarantee).")
@click.option("--workdir", default=None, type=click.Path(file_okay=False),
              help="An empty or missing folder for the scratch clone (default: a new temporary folder).")
def verify_command(stages, rev, tolerant, workdir):
    """Rebuild REV from scratch and compare every output with its committed dvc.lock.

    The revision is cloned into a scratch folder with no DVC cache, no run-cache and no generation cache;
    `dvc repro --force` then builds STAGES and everything upstream of them (default: every stage). Each
    stage is reported identical, changed because its input differed from the lock, or changed from the
    same inputs (not reproducible here); the first difference is named, and every metric that moved is
    listed with its delta. Exit 0 only when every output is byte-identical, or with --tolerant when every
    moved metric lies within its stated tolerance. docs/reproducibility.md says what is guaranteed where.
    """
    from pathlib import Path

    from hiwar.verify import verify

    if workdir and Path(workdir).exists() and any(Path(workdir).iterdir()):
        raise click.BadParameter(f"{workdir} is not empty", param_hint="--workdir")
    report = verify(Path("."), list(stages), rev=rev, workdir=Path(workdir) if workdir else None)
    click.echo(f"hiwar verify {rev}: {len(report.verdicts)} stages rebuilt")
    for line in report.lines():
        click.echo(line)
    if report.identical:
        click.echo("verified: byte-identical to the committed dvc.lock")
    elif tolerant and report.within_tolerance:
        click.echo("verified within tolerance: outputs differ, every moved metric is within its tolerance")
    else:
        click.echo("not verified" + ("" if tolerant else " (outputs differ; --tolerant would accept stated "
                                     "metric tolerances)"), err=True)
        raise SystemExit(1)
