"""Fine-tuning: `models` loads, saves and wraps models (LoRA); `data` encodes, packs and collates conversations;
`trainer` runs the HF Trainer with checkpoints and DVCLive; `chat_format` is the conversation format and its
assistant-only labels; `packed_attention` keeps packed conversations from attending to each other.

Evaluation and `hiwar chat` import only `models` and `chat_format`, so editing the trainer reruns fine-tuning
but not evaluation.
"""
