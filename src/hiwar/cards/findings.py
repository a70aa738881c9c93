"""The statements both cards make, each built from the gathered facts (facts.py): README.md writes them as
prose and croissant.json as its Responsible-AI fields, so the two say the same thing with the same numbers."""

from __future__ import annotations

from hiwar.cards import pii
from hiwar.cards.facts import Facts

STUDY = ("Misbah, Farouk, AbdulAzim. Fine-Tuning Arabic Large Language Models for improved multi-turn dialogue: "
         "A blueprint for synthetic data generation and benchmarking. PLOS One, 2026. "
         "doi:10.1371/journal.pone.0341905")
STUDY_BIBTEX = """@article{misbah2026hiwar,
  title = {Fine-Tuning Arabic Large Language Models for improved multi-turn dialogue: A blueprint for synthetic data generation and benchmarking},
  author = {Misbah and Farouk and AbdulAzim},
  journal = {PLOS One},
  year = {2026},
  doi = {10.1371/journal.pone.0341905}
}"""
REHEARSAL = ("{what}, so its text is not fluent Arabic and says nothing about dialogue quality: this data "
             "rehearses the pipeline. Do not train or evaluate models on it.")


def some(names: list[str], k: int = 12) -> str:
    """A list of names, cut after k."""
    shown = ", ".join(f"`{n}`" for n in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "") if names else "none"


def share(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def generators(f: Facts) -> str:
    g = f.generator
    ids = ", ".join(f"`{i}`" for i in g["ids"])
    revision = f" at revision `{g['revision']}`" if g["revision"] else " (no revision pinned)"
    return {"stand-in": f"{ids}, a stand-in the pipeline's `models` stage trains on hiwar's bundled hand-written "
                        "conversations (tiny profile)",
            "fake": f"{ids}: the fake backend, which answers every prompt with one of hiwar's bundled hand-written "
                    "conversations (test data)"}.get(g["kind"], f"{ids}{revision}, served through the `{g['backend']}` backend")


def rehearsal(f: Facts) -> str | None:
    """The warning a stand-in's or the fake backend's data carries everywhere, or None for a real generator."""
    kind = f.generator["kind"]
    if kind == "stand-in":
        return REHEARSAL.format(what="Every conversation was written by a small stand-in model trained on a few "
                                     "hundred hand-written conversations")
    if kind in ("fake", "mixed"):
        return REHEARSAL.format(what="The conversations come from a test backend, not a language model")
    return None


def summary(f: Facts) -> str:
    s, g = f.stats, f.grid
    return (f"{s.total} synthetic Arabic multi-turn conversations between a user and an assistant, written by "
            f"{generators(f)} from a grid of {g['topics']} topics x {g['countries']} countries (with a user persona "
            f"and a number of exchanges per conversation), cleaned by Arabic-aware rules and split leak-free into "
            f"train ({s.rows['train']}), validation ({s.rows['validation']}) and test ({s.rows['test']}). "
            f"Built by hiwar's DVC pipeline, which reproduces the recipe of {STUDY}.")


def languages(f: Facts) -> str:
    s = f.stats
    arabic = "n/a" if s.arabic_share() is None else f"{s.arabic_share():.2%}"
    return (f"Language: Arabic (`ar`), meant to be {f.params.card.variety} (no dialect identification was run); "
            f"Arabic script is {arabic} of all letters, with {s.latin_per_1000_words()} Latin-script words per 1,000 "
            f"words. Conversations are set in {len(s.all_of(s.countries))} countries; they are not written by "
            "people of those countries.")


def collection(f: Facts) -> str:
    g, gen, d = f.grid, f.generate, f.generator["decoding"]
    few = f" with {f.generator['few_shot']} bundled example dialogue(s) on the same topic" if f.generator["few_shot"] else ""
    return (f"Synthetic: no text was collected from people. The grid asked for {g['conversations']} conversations "
            f"over {g['cells']} topic x country cells; each prompt was rendered from the template "
            f"`{f.generator['template']}`{few} with the topic's Arabic name and description, the country's Arabic "
            f"name, one of {len(g['personas'])} user personas and the number of exchanges, and sent to "
            f"{generators(f)}. Decoding: temperature {d['temperature']}, top-p {d['top_p']}, at most "
            f"{d['max_new_tokens']} new tokens, seed {d['seed']}. {gen['succeeded']} of {gen['requested']} requests "
            f"were answered ({gen['failed']} failed, {gen['empty']} empty, {gen['hit_max_tokens']} stopped at the "
            f"token limit).")


def missing(f: Facts) -> str:
    gen, c, cov = f.generate, f.clean, f.quality["coverage"]
    return (f"{gen['failed']} of {gen['requested']} requests got no answer; cleaning rejected {c['rejected']} of "
            f"{c['input']} generations (each kept outside this folder with its reason codes); {cov['cells_empty']} "
            f"of {cov['cells_requested']} requested topic x country cells hold no conversation."
            + (f" {topup(f)}" if topup(f) else ""))


def topup(f: Facts) -> str:
    """The top-up rounds and the cells they left short of the quota, plainly."""
    t = f.topup
    if not t:
        return ""
    if t["status"] == "off":
        return (f"No top-up rounds (topup.quota {t['quota']}, max_rounds {t['max_rounds']}): every cell got only "
                "its first-round requests.")
    short, why = t["shortfall"], ", ".join(f"{k} {v}" for k, v in t["shortfall"]["why"].items())
    reasons = ", ".join(f"{k} {v}" for k, v in list(short["first_reasons"].items())[:5])
    return (f"Top-up: cells below the quota of {t['quota']} kept conversation(s) per cell got {t['extra_requests']} "
            f"more requests in {t['rounds_run']} round(s) (budget {t['budget_requests']}, {t['budget']:g} x the "
            f"first round's {t['first_round_requests']}), of which {t['kept']} were kept; cells at quota went from "
            f"{t['cells_at_quota']['before']} to {t['cells_at_quota']['after']} of {t['cells']}. Shortfall: "
            f"{short['cells']} cells are still below quota ({short['missing_conversations']} conversations "
            f"missing; why: {why or 'none'}; what cleaning rejected in them: {reasons or 'nothing'}); each is "
            "listed with its rounds and reasons in the top-up stage's shortfall file.")


def preprocessing(f: Facts) -> list[str]:
    c, p, sp = f.clean, f.params.clean, f.params.split
    moved = f.split["independent_leaks"]["moved_to_train"]
    return [
        "Parsing: the generator's text is cut into turns by its speaker labels and becomes `messages` "
        "(`user` / `assistant`); a last turn cut off at the token limit is trimmed "
        f"({c['trimmed_truncated_turn']} conversations).",
        f"Rules (reason codes below): {p.min_exchanges} to {p.max_exchanges} exchanges, alternating roles; turns of "
        f"{p.min_turn_chars} to {p.max_turn_chars} characters; at least {p.min_arabic_ratio:.0%} of a turn's letters "
        f"in Arabic script and at most {p.max_latin_words} Latin-script words; no loops (over "
        f"{p.max_repeated_ngram_ratio:.0%} repeated {p.repetition_ngram}-grams in turns of {p.repetition_min_words} "
        "words or more), no refusals, no talk about being an AI or about the task, no unfilled placeholders.",
        f"Duplicates: exact duplicates and near-duplicates (MinHash over normalised character {p.shingle_chars}-grams, "
        f"Jaccard >= {p.near_dup_threshold}) are removed, the first kept. {c['kept']} of {c['input']} generations kept.",
        f"Splitting: conversations of one grid cell, and near-duplicates (Jaccard >= {sp.leak_threshold}), go to one "
        f"split; groups are dealt out by topic (validation {sp.validation}, test {sp.test}, seed {sp.seed}). An "
        "independent check (shared turns of 8 words or more, shared 13-grams) moved "
        f"{moved.get('validation', 0)} validation and {moved.get('test', 0)} test conversations to train.",
    ]


def biases(f: Facts) -> list[str]:
    cov, fid, div, cv = f.quality["coverage"], f.quality["fidelity"], f.quality["diversity"], f.coverage
    out = [
        f"Coverage: {cov['cells_kept']} of {cov['cells_requested']} requested topic x country cells kept a "
        f"conversation ({cov['cells_empty']} empty). {len(cv['topic_none_kept'])} of {cv['topic_requested']} topics "
        f"kept none ({some(cv['topic_none_kept'])}); {len(cv['country_none_kept'])} of {cv['country_requested']} "
        f"countries kept none ({some(cv['country_none_kept'])}). Kept conversations are unequal across topics "
        f"(Gini {cov['gini_topic']}) and countries (Gini {cov['gini_country']}).",
        *([topup(f)] if topup(f) else []),
        f"Selection by cleaning: {f.clean['kept']} of {f.clean['input']} first-round generations kept "
        f"({share(f.clean['kept_fraction'])}); the kept share per topic ranges from "
        f"{share(cv['topic_kept_rate']['min'])} to {share(cv['topic_kept_rate']['max'])} and per country from "
        f"{share(cv['country_kept_rate']['min'])} to {share(cv['country_kept_rate']['max'])}: what the generator "
        "writes badly is under-represented.",
        f"Fidelity to the cell: a conversation's own topic ranks first among all topics for "
        f"{share(fid['topic_top1'])} of {fid['embedded_conversations']} embedded conversations (top 5: "
        f"{share(fid['topic_top5'])}), and its country is named in {share(fid['country_mention'])} of them; a "
        "conversation's `topic` and `country` say what was asked for, not necessarily what it is about.",
        f"Diversity: distinct-2 {div['distinct_2']}, self-BLEU {div['self_bleu']} (lower is more varied), "
        f"{share(div['shared_opening_share'])} of conversations open with a user turn another one shares.",
        f"One generator ({', '.join(f.generator['ids'])}) wrote every conversation: its picture of the topics and "
        "countries, and its mistakes, are in every row. Synthetic dialogue is not a sample of how people in these "
        f"countries talk. Users are one of {len(f.grid['personas'])} personas "
        f"({', '.join(f.grid['personas'])}), always talking to an assistant.",
    ]
    return out


def limitations(f: Facts) -> list[str]:
    s, x = f.stats, f.quality["contamination"]
    longest = max(f.params.quality.ngrams)
    out = [rehearsal(f)] if rehearsal(f) else []
    out += [
        "No person read these conversations: the cleaning rules and the quality figures are automatic. Nothing "
        "checks that what the assistant says is true; do not use it as a source of facts.",
        languages(f),
        f"Contamination: {x['test'][f'train_conversations_{longest}gram']} train conversations share a normalised "
        f"{longest}-gram with the {x['test']['texts']} test conversations"
        + "".join(f"; {v[f'train_conversations_{longest}gram']} with `{name}`" for name, v in x["eval_files"].items())
        + f" ({x['train_removed']} removed from train; this folder's train is the split as made).",
    ]
    small = [n for n in ("validation", "test") if s.rows[n] < 100]
    if small:
        out.append(f"Small held-out splits ({', '.join(f'{n} {s.rows[n]}' for n in small)} conversations): "
                   "figures measured on them have wide intervals.")
    return out


def personal(f: Facts) -> list[str]:
    scan = f.stats.scan
    found = scan.findings()
    result = (f"Found nothing in {scan.turns} turns of {scan.conversations} conversations." if not found else
              f"Found, in {scan.turns} turns of {scan.conversations} conversations (made up by the generator, not "
              "removed; review them before use): " + "; ".join(found) + ".")
    return ["No personal data went in: every prompt is built from hiwar's topic, country and persona tables, and "
            "no text written by a person is part of any conversation.",
            f"How that was checked: {pii.method()}. {result}",
            "Conversations touch on sensitive subjects when their topic does (health, religion, finance, family). "
            "Their users and assistants are not real persons, though a generator may name public figures it knows "
            "of."]


def use_cases(f: Facts) -> list[str]:
    if rehearsal(f):
        return ["Rehearsing and testing the pipeline end to end (loading, fine-tuning, evaluation code paths); "
                "not training or evaluating models."]
    return ["Supervised fine-tuning of Arabic chat models on multi-turn dialogue (`messages` with `user` / "
            "`assistant` roles go straight into TRL's SFTTrainer or the HF Trainer).",
            "Evaluation on the held-out test split, which shares no grid cell and no near-duplicate with train.",
            "Research on synthetic data: generation, cleaning, leak-free splitting."]


def maintenance(f: Facts) -> str:
    return (f"Version {f.params.card.version}. Versioned with DVC: a release is a git tag made by `hiwar publish`, "
            "with every file pinned by its md5 in dvc.lock. Both cards are rewritten by the pipeline's `card` stage "
            "whenever the data, the metrics they quote or the card params change. MAJOR versions change or move "
            "records, MINOR add records or fields, PATCH change metadata only.")


def social_impact(f: Facts) -> str:
    return ("Meant to widen the Arabic dialogue data available for chat models. Models trained on synthetic "
            "dialogue take on the generator's stereotypes about countries and peoples; evaluate for them.")


def bibtex(f: Facts) -> str:
    c = f.params.card
    # Each creator braced: BibTeX would read "hiwar contributors" as a person called contributors, hiwar.
    fields = {"title": c.pretty_name, "author": " and ".join(f"{{{name}}}" for name in c.creators), "version": c.version}
    if c.date_published:
        fields["year"] = c.date_published[:4]
    if c.url:
        fields["url"] = c.url
    fields["note"] = "Synthetic Arabic multi-turn dialogues built with the hiwar pipeline, doi:10.1371/journal.pone.0341905"
    key = "hiwar-" + c.version.replace(".", "-")
    return "@misc{" + key + ",\n" + ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items()) + "\n}"
