"""The `hiwar` command. The pipeline itself runs with `dvc repro`; these commands help a person check
params and read what the pipeline will do or did.

One module per group of commands: `data` (params, grid, cache, inspect), `models` (chat, import),
`rating` (rate export|import|serve), `experiments` (report, compare, diff, pull, publish).
"""

from __future__ import annotations

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


remote_option = click.option("-r", "--remote", default=None,
                             help="DVC remote name (default: the project's default remote).")
cache_dir_option = click.option("--dir", "directory", default=None,
                                help="Default: generate.cache_dir from params.yaml.")


# Register the commands (each module adds its own to `main`).
from hiwar.cli import data, experiments, models, rating  # noqa: E402,F401
