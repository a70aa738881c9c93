"""`hiwar params`, `hiwar grid`, `hiwar cache`, `hiwar inspect`: check params and look at the data."""

from __future__ import annotations

import sys

import click

from hiwar.cli import cache_dir_option, main, remote_option
from hiwar.errors import HiwarError


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
@click.option("--dir", "clean_dir", default=None, type=click.Path(file_okay=False),
              help="A folder with conversations.parquet and rejected.parquet. Default: the clean stage's outputs "
                   "(dvc.yaml's paths.clean and paths.rejected).")
def inspect(n_kept, n_rejected, reason, seed, rtl, clean_dir):
    """Show a sample of kept and rejected conversations from the clean stage, with reasons."""
    from pathlib import Path

    from hiwar.io import read_parquet
    from hiwar.terminal import rtl_line

    mode = rtl or ("isolate" if sys.stdout.isatty() else "plain")
    from hiwar.paths import project_path

    kept_path, rejected_path = ((Path(clean_dir) / "conversations.parquet", Path(clean_dir) / "rejected.parquet")
                                if clean_dir else (project_path("clean"), project_path("rejected")))
    kept = read_parquet(kept_path, ["conversation_id", "messages"])
    rejected = read_parquet(rejected_path, ["conversation_id", "messages", "reasons"])
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
