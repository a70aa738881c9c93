"""Stage `models`: train the tiny profile's stand-in generator and base models from the bundled conversations,
and import the real models `models.imports` names from their GGUF files (the smollm2 profile)."""

from pathlib import Path

import click

from hiwar.bundled import load_bundled
from hiwar.io import atomic_path, write_json, write_run_facts
from hiwar.models_import import gguf_source, import_gguf
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage
from hiwar.standins import GENERATOR_TOKENS, build_standin, dialogue_corpus, text_corpus


@click.command()
@path_option("--bundled", "folder of the bundled conversations the stand-ins learn from")
@path_option("--generators", "folder for the stand-in generators, one model folder each")
@path_option("--bases", "folder for the base models (stand-ins and imports), one model folder each")
@path_option("--metrics", "final losses and sizes to write (JSON)")
def main(bundled, generators, bases, metrics):
    params = load_section("models")
    for folder in (generators, bases):  # both are outputs, even when a profile leaves one empty
        Path(folder).mkdir(parents=True, exist_ok=True)
    corpus = load_bundled(bundled)
    jobs = [(Path(generators) / name, spec, dialogue_corpus(corpus, "tiny"), GENERATOR_TOKENS)
            for name, spec in params.generator.items()]
    jobs += [(Path(bases) / name, spec, text_corpus(corpus), []) for name, spec in params.bases.items()]
    report, facts = {}, {}
    for out, spec, texts, special in jobs:
        tokenizer, model, figures = build_standin(spec, texts, params.seed, out.name, special)
        with atomic_path(out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        facts[out.name] = {"train_seconds": figures.pop("train_seconds")}
        report[out.name] = figures
    for name, source in params.imports.items():
        report[name] = import_gguf(gguf_source(source), Path(bases) / name)
    write_json(metrics, report)
    write_run_facts("models", facts)


if __name__ == "__main__":
    run_stage(main)
