"""croissant.json of the published folder: Croissant 1.1 metadata with the Responsible-AI (RAI 1.0) fields, as
the reference reader `mlcroissant` validates and reads it.

- distribution: one FileObject per split file, with its sha256 and md5 (DVC's hash of the same bytes), and a
  FileSet naming the three files, which the record set reads so that every record carries its split;
- record sets: `splits` (cr:Split: train, validation, test as cr:TrainingSplit, ...) and `conversations`, one
  field per column of the split files (`messages` an array of role/content sub-fields) plus `split`;
- provenance (PROV-O): the generation, cleaning and splitting activities and the generator as their agent;
- RAI: how the data was collected, preprocessed, what is missing, its biases and limitations, personal data.

mlcroissant 1.1.1 checks a FileObject's hash only when a record set reads that FileObject itself; the record
set here reads the FileSet, so the hashes are for consumers and for hiwar's tests, which check them."""

from __future__ import annotations

import pyarrow as pa

from hiwar.cards import findings
from hiwar.cards.facts import Facts
from hiwar.cards.stats import SPLITS
from hiwar.params.card import LICENSES

CROISSANT = "http://mlcommons.org/croissant/1.1"
RAI = "http://mlcommons.org/croissant/RAI/1.0"
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "prov": "http://www.w3.org/ns/prov#",
    "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileObject": "cr:fileObject", "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5",
    "name": {"@container": "@language"}, "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "samplingRate": "cr:samplingRate", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform",
}
SPLIT_URLS = {"train": "cr:TrainingSplit", "validation": "cr:ValidationSplit", "test": "cr:TestSplit"}
FILES = "split-files"
RECORDS = "conversations"


def spdx_url(license_id: str) -> str:
    """Croissant recommends naming a licence by its SPDX URL."""
    return f"https://spdx.org/licenses/{LICENSES[license_id]}.html"


def data_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "sc:Boolean"
    if pa.types.is_integer(kind):
        return "sc:Integer"
    if pa.types.is_floating(kind):
        return "sc:Float"
    return "sc:Text"


def _source(column: str, path: str | None = None) -> dict:
    source = {"fileSet": {"@id": FILES}, "extract": {"column": column}}
    return source | ({"transform": {"jsonPath": path}} if path else {})


def field(column: pa.Field, description: str) -> dict:
    base = {"@type": "cr:Field", "@id": f"{RECORDS}/{column.name}", "name": column.name, "description": description}
    kind = column.type
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_struct(kind.value_type):
        inner = kind.value_type
        return base | {"isArray": True, "subField": [
            {"@type": "cr:Field", "@id": f"{RECORDS}/{column.name}/{inner.field(i).name}", "name": inner.field(i).name,
             "dataType": data_type(inner.field(i).type), "source": _source(column.name, inner.field(i).name)}
            for i in range(inner.num_fields)]}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return base | {"dataType": data_type(kind.value_type), "isArray": True, "source": _source(column.name)}
    return base | {"dataType": data_type(kind), "source": _source(column.name)}


def record_sets(f: Facts, columns: dict[str, str]) -> list[dict]:
    names = "|".join(SPLITS)
    splits = {
        "@type": "cr:RecordSet", "@id": "splits", "name": "splits", "dataType": "cr:Split",
        "description": "The three splits: no grid cell and no near-duplicate is in two of them.",
        "key": {"@id": "splits/name"},
        "field": [{"@type": "cr:Field", "@id": "splits/name", "name": "name", "dataType": "sc:Text"},
                  {"@type": "cr:Field", "@id": "splits/url", "name": "url", "dataType": "sc:URL"}],
        "data": [{"splits/name": s, "splits/url": SPLIT_URLS[s]} for s in SPLITS],
    }
    split_field = {
        "@type": "cr:Field", "@id": f"{RECORDS}/split", "name": "split", "dataType": "sc:Text",
        "description": "The split the conversation belongs to (the file it is read from).",
        # The suffix is optional because mlcroissant applies a referencing field's transform twice (once to
        # join, once to read): the second time it sees `train`, not `train.parquet`.
        "source": {"fileSet": {"@id": FILES}, "extract": {"fileProperty": "filename"},
                   "transform": {"regex": rf"^({names})(?:\.parquet)?$"}},
        "references": {"field": {"@id": "splits/name"}},
    }
    conversations = {
        "@type": "cr:RecordSet", "@id": RECORDS, "name": RECORDS,
        "description": f"{f.stats.total} conversations, one per row of the split files.",
        "key": {"@id": f"{RECORDS}/conversation_id"},
        "field": [split_field] + [field(c, columns.get(c.name, f"Column `{c.name}`.")) for c in f.schema],
    }
    return [splits, conversations]


def distribution(f: Facts) -> list[dict]:
    files = [{"@type": "cr:FileObject", "@id": x.name, "name": x.name, "contentUrl": x.name,
              "description": f"The {s} split: {x.rows} conversations.", "encodingFormat": "application/x-parquet",
              "contentSize": f"{x.bytes} B", "sha256": x.sha256, "md5": x.md5} for s, x in f.files.items()]
    return files + [{"@type": "cr:FileSet", "@id": FILES, "name": FILES,
                     "description": "The three split files, read together by the `conversations` record set.",
                     "encodingFormat": "application/x-parquet", "includes": [x.name for x in f.files.values()]}]


def provenance(f: Facts) -> dict:
    steps = findings.preprocessing(f)
    agent = {"@type": "prov:SoftwareAgent", "prov:label": ", ".join(f.generator["ids"])
             + (f" (revision {f.generator['revision']})" if f.generator["revision"] else "")}
    return {
        "prov:wasAttributedTo": agent,
        "prov:wasGeneratedBy": [
            {"@type": "prov:Activity", "prov:label": "generation", "prov:wasAssociatedWith": agent,
             "description": findings.collection(f)},
            {"@type": "prov:Activity", "prov:label": "cleaning", "description": " ".join(steps[:3])},
            {"@type": "prov:Activity", "prov:label": "splitting", "description": steps[3]},
        ],
    }


def croissant(f: Facts, columns: dict[str, str]) -> dict:
    c = f.params.card
    doc = {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": [CROISSANT, RAI],
        "name": c.pretty_name, "description": " ".join(
            [findings.summary(f), findings.languages(f)] + ([findings.rehearsal(f)] if findings.rehearsal(f) else [])),
        "version": c.version, "license": spdx_url(c.license), "inLanguage": ["ar"],
        "keywords": list(c.tags), "citeAs": findings.bibtex(f), "isLiveDataset": False,
        "creator": [{"@type": "sc:Organization", "name": name} for name in c.creators],
    }
    if c.date_published:
        doc["datePublished"] = c.date_published
    if c.url:
        doc["url"] = c.url
    doc |= provenance(f)
    doc |= {
        "rai:dataCollection": findings.collection(f),
        "rai:dataCollectionType": ["Others: synthetic, written by a language model from a prompt grid"],
        "rai:dataCollectionMissingData": findings.missing(f),
        "rai:dataCollectionRawData": "The generator's raw answers, and the rejected ones with their reason codes, "
                                     "are outputs of the pipeline's generate and clean stages; they are not in this "
                                     "folder.",
        "rai:dataPreprocessingProtocol": findings.preprocessing(f),
        "rai:dataManipulationProtocol": "Text is kept as the generator wrote it, except the trimmed cut-off last "
                                        f"turns ({f.clean['trimmed_truncated_turn']} conversations).",
        "rai:dataAnnotationProtocol": ["None: no labels; the provenance columns record what each conversation "
                                       "was asked for."],
        "rai:dataUseCases": findings.use_cases(f),
        "rai:dataBiases": findings.biases(f),
        "rai:dataLimitations": findings.limitations(f),
        "rai:personalSensitiveInformation": findings.personal(f),
        "rai:dataSocialImpact": findings.social_impact(f),
        "rai:dataReleaseMaintenancePlan": findings.maintenance(f),
        "distribution": distribution(f),
        "recordSet": record_sets(f, columns),
    }
    return doc
