"""Automatic evaluation of the fine-tuned models: `metrics` (perplexity over assistant tokens, greedy
replies, the embedding score, chrF), `run` (the evaluate stage's loop over models) and `report`
(`hiwar report`, the paper-style table and charts across stages).

Human rating is its own package (hiwar/rating); the sentence encoder, bootstrap intervals, win/tie/loss
and agreement statistics sit on the ground floor, shared with quality and the judge.
"""
