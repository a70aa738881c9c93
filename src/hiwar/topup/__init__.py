"""Top-up rounds: after the first round is cleaned, grid cells below a quota of kept conversations get new
requests (new sample indexes, so new cache keys and seeds), cleaned by the clean stage's own code and rules,
round by round until each cell reaches the quota, the rounds run out or the budget is spent.

allocate.py is the allocation rule, rounds.py runs the rounds through hiwar.generation.asking and
hiwar.cleaning, accounts.py counts every extra request and lists the cells still short with their reasons.
"""
