"""Stage `models`: train the tiny profile's stand-in generator and base models from the bundled conversations."""

from pathlib import Path

from hiwar.io import atomic_path, write_json, write_run_facts
from hiwar.params import load_section
from hiwar.bundled import load_bundled
from hiwar.stage import run_stage
from hiwar.standins import GENERATOR_TOKENS, build_standin, dialogue_corpus, text_corpus


def main():
    params = load_section("models")
    bundled = load_bundled()
    jobs = [(Path("models/generator") / name, spec, dialogue_corpus(bundled, "tiny"), GENERATOR_TOKENS)
            for name, spec in params.generator.items()]
    jobs += [(Path("models/base") / name, spec, text_corpus(bundled), []) for name, spec in params.bases.items()]
    report, facts = {}, {}
    for out, spec, texts, special in jobs:
        tokenizer, model, metrics = build_standin(spec, texts, params.seed, out.name, special)
        with atomic_path(out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        facts[out.name] = {"train_seconds": metrics.pop("train_seconds")}
        report[out.name] = metrics
    write_json("metrics/models.json", report)
    write_run_facts("models", facts)


if __name__ == "__main__":
    run_stage(main)
