"""README.md of the published folder: a Hugging Face dataset card. Its YAML front matter is what the hub and
`datasets.load_dataset(folder)` read (`configs` names each split's file; `dataset_info` gives the features and
each split's size, which `datasets` checks against the files when it loads them); its sections follow the hub's
dataset card template. Every number comes from the gathered facts (facts.py, findings.py)."""

from __future__ import annotations

import pyarrow as pa
import yaml

from hiwar.cards import findings
from hiwar.cards.facts import Facts, size_category
from hiwar.cards.stats import SPLITS, summary
from hiwar.errors import HiwarError

COLUMNS = {  # what each column of the split files holds
    "conversation_id": "id of the conversation, fixed by the grid (a hash of the grid seed, cell and sample index)",
    "cell_id": "the grid cell the conversation was asked for, `topic:country`",
    "topic": "topic id from hiwar's topic table (the prompt gave its Arabic name and description)",
    "country": "ISO 3166-1 alpha-2 code of the country the conversation was asked to be set in",
    "sample_index": "which sample of its cell the conversation is (0, 1, ...)",
    "exchanges": "number of user/assistant exchanges the prompt asked for",
    "persona": "id of the user persona the prompt asked for",
    "generator": "the model that wrote the conversation",
    "template": "the prompt template",
    "prompt_hash": "first 16 hex digits of the sha256 of the rendered prompt",
    "messages": "the conversation: `[{role, content}]`, roles `user` and `assistant` alternating from the user's",
    "language": "the language cleaning found (`ar`; other languages are rejected as `not_arabic`)",
    "variety": "`msa`, or the dialect its marker words name (coarse: a dialect conversation without marker "
               "words counts as `msa`)",
    "parsed_as": "the generator's answer as cleaning read it: `text` (labelled turns), `json` (a message list in "
                 "free text) or `json_schema` (the structured shape the server was held to)",
}
REASONS = {  # cleaning's reason codes (src/hiwar/cleaning/rules.py), as the rules table names them
    "generation_failed": "the request got no answer", "empty_output": "the answer was empty",
    "truncated": "cut off at the token limit, mid-turn", "unparseable": "no dialogue found in the answer",
    "not_arabic": "written in another language (Persian, Urdu ... in Arabic script)",
    "echo": "an assistant turn repeats the question or recites its instructions",
    "refusal": "an assistant turn declines", "meta_talk": "talk about being an AI or about the task",
    "placeholder": "an unfilled template slot", "low_arabic_ratio": "too few Arabic letters in a turn",
    "latin_leakage": "Latin-script prose inside a turn", "repetition": "a turn loops",
    "empty_turn": "a turn with no text", "bad_alternation": "roles do not alternate user/assistant",
    "too_few_exchanges": "fewer exchanges than allowed", "too_many_exchanges": "more exchanges than allowed",
    "turn_too_long": "a turn above the length limit", "turn_too_short": "a turn below the length limit",
    "exact_duplicate": "the same text as a kept conversation", "near_duplicate": "nearly the same as a kept one",
}
DTYPES = [(pa.types.is_large_string, "large_string"), (pa.types.is_string, "string"), (pa.types.is_boolean, "bool")]


def feature(kind: pa.DataType):
    """The `datasets` YAML form of an Arrow type (the types the split files use)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = feature(kind.value_type)
        return {"list": inner["struct"]} if "struct" in inner else {"list": inner["dtype"]}
    if pa.types.is_struct(kind):
        return {"struct": [{"name": kind.field(i).name, **feature(kind.field(i).type)} for i in range(kind.num_fields)]}
    for test, name in DTYPES:
        if test(kind):
            return {"dtype": name}
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return {"dtype": {"double": "float64", "float": "float32", "halffloat": "float16"}.get(str(kind), str(kind))}
    raise HiwarError(f"split files: column type {kind} has no dataset card form (expected text, numbers, lists, structs)")


def front_matter(f: Facts) -> dict:
    c = f.params.card
    return {
        "pretty_name": c.pretty_name,
        "language": ["ar"],
        "license": c.license,
        "task_categories": list(c.task_categories),
        "size_categories": [size_category(f.stats.total)],
        "tags": list(c.tags),
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "multilinguality": ["monolingual"],
        "source_datasets": ["original"],
        "configs": [{"config_name": "default", "default": True,
                     "data_files": [{"split": s, "path": f.files[s].name} for s in SPLITS]}],
        "dataset_info": {
            "config_name": "default",
            "features": [{"name": field.name, **feature(field.type)} for field in f.schema],
            "splits": [{"name": s, "num_bytes": f.files[s].arrow_bytes, "num_examples": f.files[s].rows} for s in SPLITS],
            "download_size": sum(x.bytes for x in f.files.values()),
            "dataset_size": sum(x.arrow_bytes for x in f.files.values()),
        },
    }


def _triple(values) -> str:
    s = summary(values)
    return "-" if s["mean"] is None else f"{s['mean']} / {s['median']:g} / {s['max']}"


def structure(f: Facts) -> list[str]:
    s, leaks = f.stats, f.split["independent_leaks"]
    lines = ["## Dataset Structure", "", "### Files", "",
             "| split | file | conversations | bytes | sha256 | md5 (as in dvc.lock) |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | `{x.name}` | {x.rows} | {x.bytes} | `{x.sha256}` | `{x.md5}` |" for n, x in f.files.items()]
    lines += ["", "### Fields", "", "One conversation per row.", "", "| column | type | description |", "| --- | --- | --- |"]
    lines += [f"| `{fld.name}` | `{fld.type}` | {COLUMNS.get(fld.name, '')} |" for fld in f.schema]
    lines += ["", "### Splits", "", "| split | conversations | cells | topics | countries | exchanges (mean / median / max) "
              "| user words per turn | assistant words per turn |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in SPLITS:
        lines.append(f"| {n} | {s.rows[n]} | {len(s.cells[n])} | {len(s.topics[n])} | {len(s.countries[n])} | "
                     f"{_triple(s.exchanges[n])} | {_triple(s.words[n]['user'])} | {_triple(s.words[n]['assistant'])} |")
    lines += ["", "Words are whitespace-separated, the same for every tokenizer.", "", "### Leakage between splits", "",
              f"Grouping check: {f.split['cells_in_several_splits']} grid cells and "
              f"{f.split['near_duplicate_pairs_across_splits']} near-duplicate pairs in more than one split. "
              "Independent check (conversations of the second split sharing a normalised turn of 8 words or more, "
              "a 13-gram or an 8-gram with the first; 8-grams are reported, not acted on):", "",
              "| splits | shared turns (before / after the fix) | 13-grams | 8-grams |", "| --- | --- | --- | --- |"]
    for pair, before in leaks["before_fix"].items():
        after = leaks["after_fix"][pair]
        lines.append(f"| {pair} | {before['turn']} / {after['turn']} | {before['13gram']} / {after['13gram']} | "
                     f"{before['8gram']} / {after['8gram']} |")
    lines += ["", "### Topics per split", "", "| topic | train | validation | test |", "| --- | --- | --- | --- |"]
    for topic in sorted(s.all_of(s.topics)):
        lines.append(f"| {topic} | " + " | ".join(str(s.topics[n].get(topic, 0)) for n in SPLITS) + " |")
    return lines + [""]


def creation(f: Facts) -> list[str]:
    g, gen, c = f.grid, f.generator, f.clean
    note = (" (rendered as the user's request; the model's own chat template wraps it)"
            if gen["template"] == "chat" else "")
    lines = ["## Dataset Creation", "", "### Curation Rationale", "",
             "The study this pipeline reproduces writes Arabic dialogue synthetically over a grid of topics and "
             "countries, so that every topic is discussed in the setting of many countries. This dataset is that "
             "recipe's output, published with the figures that say what the recipe gives.", "",
             "### Source Data", "", "#### Data Collection and Processing", "", findings.collection(f), "",
             f"The grid: {g['conversations']} conversations over {g['topics']} topics and {g['countries']} "
             f"countries ({g['cells']} cells); exchanges asked for: "
             + ", ".join(f"{k} ({v} conversations)" for k, v in g["exchanges"].items()) + "; personas: "
             + ", ".join(f"`{k}` ({v})" for k, v in g["personas"].items()) + ".", "",
             f"The prompt template `{gen['template']}`{note}:", "", "```jinja", gen["template_text"], "```", ""]
    lines += [f"- {step}" for step in findings.preprocessing(f)]
    lines += ["", f"Reason codes of the {c['rejected']} rejected generations (a rejected generation has one or more; "
              "the first is its cause):", "", "| reason | rule | generations | first reason of |", "| --- | --- | --- | --- |"]
    lines += [f"| `{code}` | {REASONS.get(code, '')} | {n} | {c['first_reasons'].get(code, 0)} |"
              for code, n in sorted(c["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += ["", "#### Who are the source data producers?", "",
              f"A language model: {findings.generators(f)}. No person wrote or edited a conversation; people wrote "
              "the topic, country and persona tables and the prompt template.", "",
              "### Annotations", "", "None. The provenance columns record the grid row each conversation was asked "
              "for; they are not labels of its content.", "", "### Personal and Sensitive Information", ""]
    return lines + [f"- {line}" for line in findings.personal(f)] + [""]


def render(f: Facts) -> str:
    c, warning = f.params.card, findings.rehearsal(f)
    body = [f"# Dataset Card for {c.pretty_name}", "", findings.summary(f), ""]
    if warning:
        body += [f"> **Rehearsal data.** {warning}", ""]
    body += ["## Dataset Details", "", "### Dataset Description", "",
             f"- **Curated by:** {', '.join(c.creators)}",
             f"- **Language(s) (NLP):** Arabic (`ar`), meant to be {c.variety}",
             f"- **License:** `{c.license}`", f"- **Version:** {c.version}",
             f"- **Published:** {c.date_published or 'not released yet'}", "",
             "### Dataset Sources", "", f"- **Repository:** {c.url or 'not given'}",
             f"- **Paper (the recipe):** {findings.STUDY}",
             "- **Croissant:** `croissant.json` beside this card (Croissant 1.1 with its Responsible-AI fields)", "",
             "## Uses", "", "### Direct Use", ""]
    body += [f"- {u}" for u in findings.use_cases(f)]
    body += ["", "```python", "from datasets import load_dataset", "",
             f'ds = load_dataset("{f.folder}")  # this folder: the card\'s configs name the three files', "```", "",
             "### Out-of-Scope Use", "",
             "- Answering factual questions, or any use that needs the assistant's statements to be true.",
             "- Studying a dialect, or how people in a given country talk: conversations are set in a country, "
             "not written by its people.", ""]
    body += structure(f) + creation(f)
    body += ["## Bias, Risks, and Limitations", ""] + [f"- {b}" for b in findings.biases(f)]
    body += [f"- {x}" for x in findings.limitations(f)]
    body += ["", "### Recommendations", "",
             "- Read the quality figures above before training; rerun the pipeline at a larger scale to fill the "
             "empty cells rather than up-sampling the few conversations of a topic or country.",
             "- Evaluate models trained on this data on human-written Arabic dialogue as well.", "",
             "## Citation", "", "**BibTeX:**", "", "```bibtex", findings.bibtex(f), "", findings.STUDY_BIBTEX, "```",
             "", "## More Information", "", findings.maintenance(f), "",
             "## Dataset Card Authors", "",
             f"Written by hiwar's `card` stage from the pipeline's outputs, for {', '.join(c.creators)}.", ""]
    meta = yaml.safe_dump(front_matter(f), sort_keys=False, allow_unicode=True, width=1000)
    return "---\n" + meta + "---\n\n" + "\n".join(body)
