"""An LLM judge: rubric prompts (rubric.py), strict answer parsing (parse.py), asking through the generation
backends and cache (engine.py), dataset scoring and gate (scoring.py), pairwise model comparison
(pairwise.py) and agreement with human raters (agreement.py). steps.py ties them together for the stages."""
