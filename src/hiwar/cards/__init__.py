"""The published folder's two cards, written by the `card` stage after `quality`, beside the split files:

- README.md, a Hugging Face dataset card (hf.py): YAML front matter that `datasets.load_dataset(folder)` and the
  hub read, and the template's prose sections;
- croissant.json, Croissant 1.1 metadata with its Responsible-AI fields (croissant.py).

facts.py gathers every input once (the split files as written, the metrics of generate, clean, split and
quality, the grid, the coverage cells, the prompt template, the params), stats.py reads the files, pii.py scans
them for personal data, and findings.py words the statements both cards make. run.py writes them.
"""
